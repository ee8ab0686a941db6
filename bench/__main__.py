"""``python -m bench [--smoke] [--only a,b] [--service-env K=V]``: run the benchmarks, write bench/results/.

``--smoke`` (CI, `make bench-smoke`) runs every scenario at small sizes into
bench/results/smoke/ and fails only on a broken harness or a controller
write during an idle resync; figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import chaos_long, cold, edits, headroom, report, results, scaleout, translator_tput
from bench.results import RESULTS
from bench.stack import Stack

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"cold": 1000, "cold_limited": 200, "priority": 500, "hot": 20, "hot_rate": 5.0,
              "edit_services": 200, "edit_rate": 20.0, "edit_seconds": 15.0, "translator": 2000, "translator_repeat": 1,
              "scale": 200, "scale_concurrency": 2, "scale_latency_ms": 20.0, "sim_seconds": 3.0, "sim_repeat": 1,
              "chaos_seconds": 0.0, "chaos_seed": 10, "chaos_nats_nodes": 1},  # CI runs chaos as a test
    "full": {"cold": 10000, "cold_limited": 10000, "priority": 10000, "hot": 50, "hot_rate": 10.0,
             "edit_services": 2000, "edit_rate": 100.0, "edit_seconds": 60.0, "translator": 10000, "translator_repeat": 3,
             "scale": 2000, "scale_concurrency": 2, "scale_latency_ms": 20.0, "sim_seconds": 5.0, "sim_repeat": 3,
             "chaos_seconds": 1800.0, "chaos_seed": 10, "chaos_nats_nodes": 1},
}
SCENARIOS = ("cold", "populated", "cold_limited", "priority", "edit_latency", "translator", "syncer_scaleout", "simulator",
             "chaos")


def _stop(signum: int, frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so every process the harness started is stopped
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    ap = argparse.ArgumentParser(prog="python -m bench")
    ap.add_argument("--smoke", action="store_true", help="small sizes, into bench/results/smoke/ (CI)")
    ap.add_argument("--only", default="", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    ap.add_argument("--set", action="append", default=[], metavar="SIZE=N",
                    help="override a size, e.g. --set cold=5000 (keys: see bench/__main__.py SIZES)")
    ap.add_argument("--service-env", action="append", default=[], metavar="K=V",
                    help="environment for the four services, e.g. the tracing switch, to measure it on and off")
    ap.add_argument("--tracing", choices=("on", "off"),
                    help="force tracing on or off in the services (OTEL_SDK_DISABLED); default: as configured")
    ap.add_argument("--out", type=Path, help="results directory")
    args = ap.parse_args()
    sz = dict(SIZES["smoke" if args.smoke else "full"])
    for kv in args.set:
        k, v = kv.split("=", 1)
        sz[k] = type(sz[k])(v)
    only = set(args.only.split(",")) - {""} or set(SCENARIOS)
    unknown = only - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    outdir = args.out or (RESULTS / "smoke" if args.smoke else RESULTS)
    outdir.mkdir(parents=True, exist_ok=True)
    env = dict(kv.split("=", 1) for kv in args.service_env)
    if args.tracing:
        env["OTEL_SDK_DISABLED"] = "true" if args.tracing == "off" else "false"
    results.RUN["service_env"] = env
    results.RUN["sizes"] = sz
    docs: list[dict[str, Any]] = []
    failures: list[str] = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="albus-bench-") as tmp, Stack(Path(tmp), env) as stack:
        plan = [
            ("cold", lambda: cold.run(stack, outdir, sz["cold"], realistic=False, with_resync=True)),
            # (cold runs it too, at its end, against its own baseline figure)
            ("populated", lambda: cold.populated(stack, outdir, sz["cold"]) if "cold" not in only else []),
            ("cold_limited", lambda: cold.run(stack, outdir, sz["cold_limited"], realistic=True, with_resync=False)),
            ("priority", lambda: [edits.priority(stack, outdir, sz["priority"], sz["hot"], sz["hot_rate"])]),
            ("edit_latency", lambda: [edits.edit_latency(stack, outdir, sz["edit_services"], sz["edit_rate"],
                                                         sz["edit_seconds"])]),
            ("translator", lambda: [translator_tput.run(stack, outdir, sz["translator"], sz["translator_repeat"])]),
            ("syncer_scaleout", lambda: [scaleout.run(stack, outdir, sz["scale"], (1, 2, 4),
                                                      sz["scale_latency_ms"], sz["scale_concurrency"])]),
        ]
        for name, fn in plan:
            if name not in only:
                continue
            print(f">> {name} ({time.monotonic() - t0:.0f}s into the run)", flush=True)
            try:
                for d in fn():
                    docs.append(d)
                    print(json.dumps({"scenario": d["scenario"], **report.headline(d)}), flush=True)
            except Exception as exc:  # one broken scenario must not hide the others' figures
                failures.append(f"{name}: {exc!r}")
                print(f"!! {name} failed: {exc!r}", file=sys.stderr, flush=True)
    if "simulator" in only:
        print(">> simulator", flush=True)
        sim = headroom.run(outdir, sz["sim_seconds"], sz["sim_repeat"])
        sim["asked_by_scenarios_per_s"] = headroom.asked(docs, outdir)
        (outdir / "simulator.json").write_text(json.dumps(sim, indent=2) + "\n")
    if "chaos" in only and sz["chaos_seconds"] > 0:
        print(f">> chaos ({sz['chaos_seconds']:.0f} s of faults)", flush=True)
        try:
            d = chaos_long.run(outdir, int(sz["chaos_seed"]), sz["chaos_seconds"], int(sz["chaos_nats_nodes"]))
            docs.append(d)
            print(json.dumps({"scenario": "chaos", **report.headline(d)}), flush=True)
            if d["figures"]["resync_writes"] != 0 or not d["figures"]["foreign_untouched"]:
                failures.append(f"chaos did not end clean: {report.headline(d)}")
        except Exception as exc:
            failures.append(f"chaos: {exc!r}")
            print(f"!! chaos failed: {exc!r}", file=sys.stderr, flush=True)
    report.write_readme()
    for d in docs:
        if d["scenario"] == "idle_resync" and d["figures"]["controller_writes"] != 0:
            failures.append(f"idle resync wrote to the controller: {d['figures']['writes']}")
    print(f">> done in {time.monotonic() - t0:.0f}s; results in {outdir}")
    for f in failures:
        print(f"FAILED {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
