"""Scenario 6: syncer scale-out with controller latency injected, so the controller is not the limit.

Every API call gets `latency_ms` at the simulator; each replica keeps
`concurrency` calls in flight (the pool's `albus.syncer.concurrency` is
shared among live replicas, so the harness sets it to concurrency x
replicas). The Services go to Kubernetes with only the watcher running;
then the replicas start and share out the partitions while there is
nothing to apply; then the translator starts, and its first full view
publishes every tree at once: the backlog. The health service does not
run (it is not measured, and on a small machine its CPU would be taken from
the syncers). Throughput is new Services per second between the 10th and
the 90th percentile successful macro call in the simulator's log, so
start-up and the tail do not count, nor do Kubernetes and the watcher.
Over the same window: the CPU seconds each process (the replicas, the
simulator, nats-server, the translator) and the whole machine used per
Service, which says whether the machine's cores, not the replicas, set the
pace.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import nats

from bench import results
from bench.machine import MACHINE, Usage
from bench.stack import BenchPipeline, Knobs, Stack
from bench.workload import documents, kubectl_apply
from services.common import subjects
from tests.e2e.harness import wait_for


def _on_bus(p: BenchPipeline, kind: str) -> int:
    """How many objects of a kind in the bench's namespace the watcher has published."""
    async def count() -> int:
        nc = await nats.connect(p.nats_url)
        try:
            every = subjects.k8s_object(p.cluster, kind, p.namespace, "x").rsplit(".", 1)[0] + ".*"
            info = await nc.jetstream().stream_info(subjects.STREAM_K8S, subjects_filter=every)
            return len(info.state.subjects or {})
        finally:
            await nc.close()
    return asyncio.run(count())


def _macro_created(p: BenchPipeline) -> int:
    return sum(int(d["count"]) for d in p.counters()["detail"]
               if d["method"] == "POST" and d["type"] == "macro" and d["status"] in (200, 201))


def run(stack: Stack, outdir: Path, n: int, replicas: tuple[int, ...], latency_ms: float,
        concurrency: int) -> dict[str, Any]:
    per: dict[int, dict[str, Any]] = {}
    for k in replicas:
        # Each replica its `concurrency`: the configured value is shared among the live replicas.
        knobs = Knobs(syncers=k, concurrency=concurrency * k, services=("watcher",))
        with stack.pipeline(f"scale{k}", knobs) as p:
            p.add_latency(latency_ms)
            kubectl_apply(documents(p.namespace, range(n)), p.workdir / "manifests", stack.kubectl_env)
            wait_for(lambda: _on_bus(p, "Service") >= n and _on_bus(p, "EndpointSlice") >= n, 600,
                     f"{n} Services and EndpointSlices on the bus", interval=1)
            p.knobs.services = ("syncer",)
            p.start_services()
            p.wait_syncers(k)  # the partitions shared out before there is anything to apply
            p.reset_log()
            t0 = time.time()
            p.knobs.services = ("translator",)
            p.start_services()  # its first full view publishes every tree at once: the backlog
            nats_pid = stack.nats.child.pid if stack.nats.child else None
            usage = Usage({**p.pids(), **({"nats-server": nats_pid} if nats_pid else {})}, interval=0.25)
            wait_for(lambda: _macro_created(p) >= n, 600 + n * 0.5, f"{n} trees created on the controller",
                     interval=0.5)
            use = usage.stop()
            entries, _ = p.requests_since(0)
            macros = [e for e in entries if e.get("type") == "macro" and e["method"] == "POST"]
            ends = sorted(float(e["end"]) for e in macros if e["status"] in (200, 201))
            lo, hi = ends[len(ends) // 10], ends[len(ends) * 9 // 10]
            done = sum(1 for e in ends if lo < e <= hi)
            cpu = usage.cpu_between(lo, hi)
            ours = {name: v for name, v in cpu.items() if name not in (MACHINE, "watcher")}
            api = [e for e in entries if str(e.get("path", "")).startswith("/api/")]
            per[k] = {"services_per_s": round(done / (hi - lo), 1), "services": len(ends),
                      "steady_window_s": round(hi - lo, 2), "last_created_s": round(ends[-1] - t0, 2),
                      # macro calls refused because another replica had made the tree (wasted work)
                      "macro_conflicts": sum(1 for e in macros if e["status"] == 409),
                      "calls_per_service": round(len(api) / n, 2),
                      "cpu_ms_per_service": {name: round(1000 * v / done, 2) for name, v in ours.items()},
                      "cpu_ms_per_service_total": round(1000 * sum(ours.values()) / done, 2),
                      "machine_cpu_busy_in_window": round(cpu[MACHINE] / (hi - lo), 2),
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
                                                     "latency_ms": latency_ms, "concurrency_per_replica": concurrency,
                                                     "running": "watcher, translator (started on the backlog), "
                                                                "syncers; no health service"},
                         {str(k): v for k, v in per.items()}, {"vs_linear_min": 0.8})
