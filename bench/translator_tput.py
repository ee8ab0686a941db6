"""Scenario 5: translator throughput, in-process (the engine alone) and through the bus (a translator process).

Events are Kubernetes objects as the watcher publishes them: per Service the
Service and its EndpointSlice. In-process: the engine observes every event
and flushes once (the initial list), then observes and flushes one event at
a time (steady state). Through the bus: a translator process with a full
view already gets the events published in bulk to ``k8s.>``; events/s from
the first publish to the last tree seen on ``avi.>``. The in-process bulk
path is profiled with pyinstrument (bench/results/profiles/). Each way runs
``translator_repeat`` times (a cluster of its own each time) and the median
run is reported, every run's figure beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
from pyinstrument import Profiler

from albus.stack import service, write_config
from bench import report, results
from bench.machine import cpu_seconds, memory_mb
from bench.stack import SELECTOR_KEY, VIP_NET, Stack
from bench.workload import documents, endpoint_ip
from services.common import subjects
from services.common.bus import Bus
from services.common.config import Config, load_config
from services.common.contracts import KindSynced, KubeObject
from services.common.incarnation import incarnation
from services.translator.engine import Engine
from services.translator.main import FLUSH_PART, REQUIRED_KINDS
from services.translator.offline import as_kube_object


def events(cluster: str, ns: str, n: int) -> list[KubeObject]:
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {SELECTOR_KEY: cluster}}},
            *documents(ns, range(n))]
    out = []
    for k, d in enumerate(docs):
        d["metadata"]["uid"] = f"uid-{k}"
        d["metadata"]["resourceVersion"] = str(k + 1)
        ko = as_kube_object(d, cluster)
        assert ko is not None
        out.append(ko)
    return out


def in_process(cfg: Config, evs: list[KubeObject], profile_to: Path | None) -> dict[str, Any]:
    # The figures first, from the process's first full view, as in the translator service (a
    # second one in the same process first collects what the first froze: services/translator/heap.py).
    rss0 = memory_mb(os.getpid()).get("rss_mb")  # the harness and its events
    engine = Engine(cfg)
    t0, c0 = time.perf_counter(), time.process_time()
    trees, digest = _bulk(engine, evs)
    bulk, bulk_cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = memory_mb(os.getpid()).get("peak_rss_mb")  # before the steady phase and the profile add to it
    # steady state: endpoints change one at a time, each flushed on its own
    edits = [ko for ko in evs if ko.kind == "EndpointSlice"][:2000]
    t1, c1 = time.perf_counter(), time.process_time()
    for g, ko in enumerate(edits):
        obj = dict(ko.obj or {})
        obj["endpoints"] = [{"addresses": [endpoint_ip(g, 3)], "conditions": {"ready": True}}]
        engine.observe(ko.model_copy(update={"obj": obj, "resource_version": f"e{g}"}))
        engine.flush()
    steady, steady_cpu = time.perf_counter() - t1, time.process_time() - c1
    del engine
    if profile_to is not None:
        # the profile is taken on a separate engine, so its overhead is not in the figures
        prof = Profiler(interval=0.005)
        with prof:
            _bulk(Engine(cfg), evs)
        profile_to.parent.mkdir(parents=True, exist_ok=True)
        profile_to.write_text(prof.output_text(unicode=False, color=False))
    # per CPU second too: on a shared machine wall time is mostly waiting for a core
    return {"bulk_events": len(evs), "bulk_seconds": round(bulk, 3), "trees": trees,
            "bulk_events_per_s": round(len(evs) / bulk), "bulk_events_per_cpu_s": round(len(evs) / bulk_cpu),
            "steady_events": len(edits), "steady_events_per_s": round(len(edits) / steady),
            "steady_events_per_cpu_s": round(len(edits) / steady_cpu),
            "rss_before_engine_mb": rss0, "peak_rss_after_bulk_mb": peak, "trees_digest": digest}


def _bulk(engine: Engine, evs: list[KubeObject]) -> tuple[int, str]:
    """The initial list: every event observed, then one flush in parts as the service takes it (each
    part's trees dropped before the next, as once published); the number of trees and a digest of them.

    The digest (of every tree's name and checksum) tells whether two revisions translate the same
    (within one run: the cluster's name, in every tree, changes from run to run).
    """
    for ko in evs:
        engine.observe(ko)
    engine.mark_all()
    named: list[str] = []
    while True:
        named += (f"{t.vs_name} {t.checksum}" for t in engine.flush(FLUSH_PART).trees)
        if not engine.flushing:
            break
    return len(named), hashlib.sha256("\n".join(sorted(named)).encode()).hexdigest()[:16]


async def _through_bus(stack: Stack, cfg: Config, evs: list[KubeObject], cfg_path: Path) -> dict[str, Any]:
    cluster = cfg.cluster
    bus = await Bus.connect(stack.nats.url, "bench-translator")
    await bus.ensure_streams()
    nc = await nats.connect(stack.nats.url)
    seen: dict[str, float] = {}
    published = [0]  # tree messages: more than trees when one was translated before all its events came
    synced = asyncio.Event()

    async def on_tree(msg: Any) -> None:
        seen[msg.subject] = time.time()
        published[0] += 1

    async def on_synced(msg: Any) -> None:
        synced.set()

    await nc.subscribe(subjects.avi_cluster(cluster), cb=on_tree)
    await nc.subscribe(subjects.trees_synced(cluster), cb=on_synced)
    for kind in REQUIRED_KINDS:
        await bus.publish(subjects.k8s_synced(cluster, kind),
                          KindSynced(cluster=cluster, kind=kind, resource_version="0", count=0, epoch="bench",
                                     incarnation=await incarnation(bus, subjects.STREAM_K8S)))
    proc = service("translator", cfg_path, cfg_path.parent / "logs").start()
    try:
        await asyncio.wait_for(synced.wait(), 120)  # full view of an empty cluster
        pid = proc.pid or 0
        cpu0 = cpu_seconds(pid)
        t0 = time.time()
        # batches of 100 acks in flight: larger ones time out on a starved machine
        for k in range(0, len(evs), 100):
            await asyncio.gather(*(bus.publish(subjects.k8s_object(cluster, ko.kind, ko.namespace, ko.name), ko)
                                   for ko in evs[k:k + 100]))
        publish_s = time.time() - t0
        n_trees = sum(1 for ko in evs if ko.kind == "Service")
        deadline = time.monotonic() + 600
        while len(seen) < n_trees and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        last = max(seen.values()) - t0 if seen else float("nan")
        cpu = cpu_seconds(pid) - cpu0
        peak = memory_mb(pid).get("peak_rss_mb")  # the service process, its full view published
    finally:
        proc.stop()
        await nc.close()
        await bus.close()
    return {"events": len(evs), "trees_seen": len(seen), "trees_expected": n_trees, "tree_messages": published[0],
            "publish_seconds": round(publish_s, 3), "seconds_to_last_tree": round(last, 3),
            "events_per_s": round(len(evs) / last), "translator_cpu_s": round(cpu, 2),
            "events_per_translator_cpu_s": round(len(evs) / cpu) if cpu else None, "translator_peak_rss_mb": peak}


def _cluster(stack: Stack, n: int, name: str) -> tuple[Config, Path, list[KubeObject]]:
    """A cluster of its own for one repetition: a translator that found an earlier one's trees on the
    bus would publish nothing."""
    cfg_path = write_config(stack.workdir / name / "config.yaml", cluster=name, controller="http://127.0.0.1:9",
                            username="u", password="p", nats_url=stack.nats.url, kubeconfig="",
                            vip_networks=[VIP_NET],
                            extra={"AKOSettings": {"namespaceSelector": {"labelKey": SELECTOR_KEY, "labelValue": name},
                                                   "logLevel": "WARNING"}})
    return load_config(cfg_path), cfg_path, events(name, f"{name}-ns", n)


def _median(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r[key])[len(runs) // 2]


def run(stack: Stack, outdir: Path, n: int, repeat: int = 1) -> dict[str, Any]:
    """``repeat`` times each way, the median run reported: on a shared machine one run's figure moves by
    a fifth from one run to the next (bench/README.md)."""
    base = f"btr{int(time.time()) % 100000}"
    inprocs: list[dict[str, Any]] = []
    buses: list[dict[str, Any]] = []
    for k in range(repeat):
        cfg, cfg_path, evs = _cluster(stack, n, f"{base}r{k}")
        inprocs.append(in_process(cfg, evs, outdir / "profiles" / "translator_bulk.txt" if k == 0 else None))
        buses.append(asyncio.run(_through_bus(stack, cfg, evs, cfg_path)))
    inproc = {**_median(inprocs, "bulk_events_per_s"),
              "steady_events_per_s": _median(inprocs, "steady_events_per_s")["steady_events_per_s"],
              "runs": [{k: r[k] for k in ("bulk_events_per_s", "steady_events_per_s")} for r in inprocs]}
    bus = {**_median(buses, "events_per_s"), "runs": [r["events_per_s"] for r in buses]}
    results.plot_bars(outdir / "translator.png", f"Translator events/s ({n} Services, {len(evs)} events)",
                      "events/s", {"in-process bulk": inproc["bulk_events_per_s"],
                                   "in-process one by one": inproc["steady_events_per_s"],
                                   "process via bus": bus["events_per_s"]}, (5000, "goal 5,000/s"))
    return results.write(outdir, "translator", {"services": n, "events": len(evs), "repeat": repeat},
                         {"in_process": inproc, "through_bus": bus}, {"events_per_s_min": 5000})


def main() -> int:
    """``python -m bench.translator_tput [--services N] [--out DIR]``: this scenario alone.

    It needs no Kubernetes, so it runs on a nats-server of its own without
    the control plane: quick enough to compare two revisions back to back on
    the same machine (how the translator's tuning was measured, bench/README.md).
    """
    ap = argparse.ArgumentParser(prog="python -m bench.translator_tput")
    ap.add_argument("--services", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=results.RESULTS / "translator_alone")
    args = ap.parse_args()
    results.RUN["sizes"] = {"translator": args.services, "translator_repeat": args.repeat}
    with tempfile.TemporaryDirectory(prefix="albus-bench-") as tmp:
        stack = Stack(Path(tmp))  # its nats-server only: started here, the control plane never is
        stack.nats.start()
        try:
            doc = run(stack, args.out, args.services, args.repeat)
        finally:
            stack.nats.stop()
    print(json.dumps({"scenario": doc["scenario"], **report.headline(doc)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
