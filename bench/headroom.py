"""Scenario 8: the simulator's own capacity (bench/sim_throughput.py), next to the peak rate scenarios 1-7 asked of it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.machine import ROOT


def run(outdir: Path, seconds: float, repeat: int) -> dict[str, Any]:
    out = outdir / "simulator.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "sim_throughput.py"), "--seconds", str(seconds),
                    "--repeat", str(repeat), "--out", str(out)], check=True, cwd=ROOT)
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


def asked(docs: list[dict[str, Any]], outdir: Path) -> dict[str, float]:
    """The highest controller request rate each pipeline scenario drove (calls / convergence seconds):
    this run's, and for a scenario not run this time, its result in ``outdir`` (``--only simulator``
    is then still compared with what the recorded runs asked)."""
    ran = {d.get("scenario") for d in docs}
    recorded = [json.loads(p.read_text()) for p in sorted(outdir.glob("*.json")) if p.stem not in ran]
    rates = {}
    for d in [*recorded, *docs]:
        f = d.get("figures", {})
        if "albus" in f and f["albus_seconds"]:
            rates[d["scenario"]] = round(f["albus"]["controller_calls"] / f["albus_seconds"], 1)
            rates[d["scenario"] + " baseline"] = round(f["baseline"]["calls"] / f["baseline_seconds"], 1)
    return rates
