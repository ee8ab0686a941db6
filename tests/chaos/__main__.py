"""``python -m tests.chaos --seed N --duration S``: the chaos run on its own, report on stdout."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tests.chaos.faults import CLUSTER_FAULTS, FAULTS, Fault
from tests.chaos.run import run


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, default=300.0, help="seconds of faults")
    p.add_argument("--workdir", help="keep state and logs here (default: a temporary directory)")
    p.add_argument("--report", help="also write the report as JSON here")
    p.add_argument("--faults", help="comma-separated fault names to draw from (default: all): "
                   + ", ".join(f.__name__ for f in FAULTS + CLUSTER_FAULTS))
    p.add_argument("--nats-nodes", type=int, choices=(1, 3, 5), default=1,
                   help="NATS as a cluster of this many nodes, every stream replicated on each")
    args = p.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="albus-chaos-"))
    faults: list[Fault] | None = None
    if args.faults:
        by_name = {f.__name__: f for f in FAULTS + CLUSTER_FAULTS}
        unknown = [n for n in args.faults.split(",") if n not in by_name]
        if unknown:
            p.error(f"unknown fault(s) {', '.join(unknown)}")
        faults = [by_name[n] for n in args.faults.split(",")]
    report = run(workdir, args.seed, args.duration, Path(args.report) if args.report else None, faults=faults,
                 nats_nodes=args.nats_nodes)
    print(report.text())
    ok = report.foreign_untouched and report.resync_writes == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
