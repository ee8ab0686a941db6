"""The chaos run at length (issue #10): the harness of tests/chaos for ``duration`` seconds, into chaos.json.

CI runs five minutes of it as a test (`make test`); here it runs as long as
asked, on one nats-server or a NATS cluster, and the result keeps every
round's fault and convergence time with a plot of them.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench import results
from tests.chaos.run import run as chaos_run


def run(outdir: Path, seed: int, duration: float, nats_nodes: int = 1) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="albus-bench-chaos-") as tmp:
        report = chaos_run(Path(tmp), seed, duration, nats_nodes=nats_nodes)
    by_fault: dict[str, list[float]] = defaultdict(list)
    for r in report.rounds:
        by_fault[r.kind].append(r.converged_s)
    worst = {f: max(v) for f, v in sorted(by_fault.items())}
    results.plot_bars(outdir / "chaos.png", f"Chaos, {duration:.0f} s, seed {seed}: worst convergence per fault",
                      "seconds", worst)
    figures = {
        "rounds": [{"fault": r.fault, "changes": r.changes, "converged_s": r.converged_s} for r in report.rounds],
        "worst_converged_s": max((r.converged_s for r in report.rounds), default=0.0),
        "worst_by_fault_s": worst,
        "faults_injected": {f: len(v) for f, v in sorted(by_fault.items())},
        "foreign_untouched": report.foreign_untouched,
        "resync_writes": report.resync_writes,
        "objects": report.objects,
    }
    return results.write(outdir, "chaos", {"seed": seed, "duration_s": duration, "nats_nodes": nats_nodes},
                         figures, {"resync_writes": 0, "foreign_untouched": True})
