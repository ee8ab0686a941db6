"""Scenario 6: syncer scale-out with controller latency injected, so the controller is not the limit.

Every API call gets `latency_ms` at the simulator; each replica keeps
`concurrency` calls in flight. The Services are applied and translated
first, with no syncer running; then the replicas start and apply the backlog.
Throughput is new Services per second between the 10th and the 90th
percentile macro call in the simulator's log, so start-up, partition
rebalancing and the tail do not count, nor do Kubernetes and the watcher.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import results
from bench.cold import watch_convergence
from bench.stack import SERVICES, Knobs, Stack
from bench.workload import documents, kubectl_apply
from tests.e2e.harness import wait_for


def run(stack: Stack, outdir: Path, n: int, replicas: tuple[int, ...], latency_ms: float,
        concurrency: int) -> dict[str, Any]:
    per: dict[int, dict[str, Any]] = {}
    for k in replicas:
        knobs = Knobs(syncers=k, concurrency=concurrency, services=tuple(x for x in SERVICES if x != "syncer"))
        with stack.pipeline(f"scale{k}", knobs) as p:
            p.add_latency(latency_ms)
            kubectl_apply(documents(p.namespace, range(n)), p.workdir / "manifests", stack.kubectl_env)
            wait_for(lambda: p.trees_on_bus() >= n, 600, f"{n} trees on the bus", interval=1)
            p.knobs.services = ("syncer",)
            p.reset_log()
            done, use, _ = watch_convergence(p, n, 600 + n * 0.5, p.start_services)
            entries, _ = p.requests_since(0)
            ends = sorted(float(e["end"]) for e in entries if e.get("type") == "macro" and e["method"] == "POST")
            lo, hi = ends[len(ends) // 10], ends[len(ends) * 9 // 10]
            per[k] = {"services_per_s": round((len(ends) * 8 // 10) / (hi - lo), 1), "macro_calls": len(ends),
                      "steady_window_s": round(hi - lo, 2), "convergence_s": round(done[-1], 2),
                      "cpu_share": use["cpu_share"], "machine_cpu_busy": use["machine_cpu_busy"]}
    one = per[replicas[0]]["services_per_s"] / replicas[0]
    for k, f in per.items():
        f["vs_linear"] = round(f["services_per_s"] / (one * k), 2)
    xs = [float(k) for k in per]
    results.plot_lines(outdir / "syncer_scaleout.png", f"Syncer scale-out, {latency_ms:g} ms per call",
                       "replicas", "Services applied/s",
                       {"measured": (xs, [per[k]["services_per_s"] for k in per]),
                        "linear": (xs, [one * k for k in per]),
                        "0.8x linear": (xs, [0.8 * one * k for k in per])})
    return results.write(outdir, "syncer_scaleout", {"services": n, "replicas": list(replicas),
                                                     "latency_ms": latency_ms, "concurrency_per_replica": concurrency},
                         {str(k): v for k, v in per.items()}, {"vs_linear_min": 0.8})
