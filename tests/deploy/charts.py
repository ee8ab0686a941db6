"""Render the charts with the helm built from the Go module proxy (``make helm``)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from albus.tools import helm as helm_tool

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "deploy" / "charts"
ALBUS = CHARTS / "albus"
HUB = CHARTS / "albus-hub"
AKO_VALUES = Path(__file__).resolve().parent / "ako_values.yaml"
HUB_VALUES = Path(__file__).resolve().parent / "hub_values.yaml"


def helm_binary() -> Path:
    found = helm_tool.locate()
    if found is None:
        pytest.fail(f"helm is not built: run `make helm` (cache {helm_tool.cache_path()})", pytrace=False)
    return found


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm_binary()), *args], capture_output=True, text=True, timeout=120, check=False)


def render(chart: Path, values: list[Path] | None = None, sets: dict[str, str] | None = None,
           release: str = "albus", namespace: str = "albus-system", crds: bool = False) -> list[dict[str, Any]]:
    """``helm template``'s objects (``crds``: with the chart's CRDs first)."""
    args = ["template", release, str(chart), "--namespace", namespace]
    for v in values or []:
        args += ["-f", str(v)]
    for k, val in (sets or {}).items():
        # Numbers and booleans as such, anything else as a string (a name like "0x1" stays one).
        plain = val.isdigit() or val in ("true", "false")
        args += ["--set" if plain else "--set-string", f"{k}={val}"]
    if crds:
        args.append("--include-crds")
    out = helm(*args)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def find(objs: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    hits = [o for o in objs if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)]
    assert len(hits) == 1, f"{kind} *{name_suffix}: {[o['metadata']['name'] for o in hits]}"
    return hits[0]
