"""``python -m bench.syncer_cpu``: what applying a backlog of new trees costs in CPU, per process.

Scenario 6 without Kubernetes: a nats-server and a simulator of its own, the
trees the translator's engine makes for the benchmark's Services published
on the bus (with the translator's ``TreesSynced``), then syncer replicas in
this process (``services.syncer.main.run``, tracing as configured, as in the
service) apply them. Reported per applied tree, from the 10th percentile
outcome to the last: CPU milliseconds of the replicas (this process), the
simulator and nats-server; with ``--profile``, the event loop's own CPU by
function (cProfile on thread time) in ``<out>/profiles/syncer_apply.txt``.
Quick, and free of kubectl: the way to compare two revisions back to back
(bench/README.md, "Syncer scale-out").

With ``--restart``, last, the replicas stop and one syncer *process* starts on
what they left (every object on the controller, every tree and outcome on the
bus), as after a restart: reported apart (``restart``) as its peak RSS, the
seconds until it has applied every tree again, and the controller writes
meanwhile (0 expected). The full-size memory scenario's restarted syncer,
without kubectl's half hour before it.

With ``--edit-rounds K``, then K rounds of edits: every tree again with its
pools' members moved (as an EndpointSlice edit makes them), published a
round at a time, the next once the last round's outcomes are all on the bus;
reported apart as CPU milliseconds per edit (``edits``), the profile in
``<out>/profiles/syncer_edit.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
import requests
from nats.js.errors import KeyNotFoundError

from albus.broker import NatsServer
from albus.stack import SimProcess, service, write_config
from bench import results
from bench.machine import cpu_seconds, memory_mb
from bench.stack import SELECTOR_KEY, SIM_SEED, VIP_NET, controller_writes
from bench.translator_tput import events
from services.common import subjects, tracing
from services.common.bus import Bus
from services.common.config import load_config
from services.common.contracts import TreesSynced, VsTree, encode
from services.common.incarnation import incarnation
from services.syncer import main as syncer
from services.syncer.leases import MEMBERS_BUCKET
from services.translator.engine import Engine


async def _outcomes(url: str, cluster: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(subjects.STREAM_OUTCOME, subjects_filter=subjects.outcome_cluster(cluster))
        return len(info.state.subjects or {})
    finally:
        await nc.close()


def edited(tree: VsTree, rnd: int) -> VsTree:
    """``tree`` with every pool's members moved to round ``rnd``'s addresses, and a checksum of its own."""
    objs = []
    for o in tree.objects:
        servers = o.body.get("servers") if o.type == "pool" else None
        if servers:
            moved = [{**sv, "ip": {**sv["ip"], "addr": f"10.{100 + rnd % 100}.{i // 250}.{1 + i % 250}"}}
                     for i, sv in enumerate(servers)]
            o = o.model_copy(update={"body": {**o.body, "servers": moved}})
        objs.append(o)
    return tree.model_copy(update={"objects": tuple(objs), "checksum": f"{tree.checksum}-edit{rnd}"})


async def _edit_rounds(args: argparse.Namespace, url: str, trees: list[VsTree], replicas: list[asyncio.Task[None]],
                       pids: dict[str, int]) -> dict[str, Any]:
    """K rounds of one edit per tree, each after the last has its outcomes; CPU per edit over them all.

    The edited trees are encoded before the clock starts, and one connection
    sends them and reads the outcome stream's last sequence (one more per
    outcome: an edit's differs from the last), so this process's CPU is the
    replicas' and little else.
    """
    rounds = [[(subjects.avi_tree(e.cluster, e.tenant, e.vs_name), encode(e))
               for e in (edited(t, rnd) for t in trees)] for rnd in range(1, args.edit_rounds + 1)]
    nc = await nats.connect(url)
    js = nc.jetstream()

    async def last_seq() -> int:
        return int((await js.stream_info(subjects.STREAM_OUTCOME)).state.last_seq)

    prof = cProfile.Profile(time.thread_time) if args.profile else None
    seq = await last_seq()
    t0, c0, o0 = time.monotonic(), time.process_time(), {k: cpu_seconds(p) for k, p in pids.items()}
    if prof:
        prof.enable()
    try:
        for rnd, msgs in enumerate(rounds, 1):
            for subject, data in msgs:
                await js.publish(subject, data)
            while await last_seq() < seq + len(trees):
                for r in replicas:
                    if r.done():
                        r.result()
                if time.monotonic() - t0 > 600:
                    raise TimeoutError(f"edit round {rnd}: {await last_seq() - seq}/{len(trees)} outcomes")
                await asyncio.sleep(0.25)
            seq += len(trees)
    finally:
        if prof:
            prof.disable()
        await nc.close()
    wall, own = time.monotonic() - t0, time.process_time() - c0
    n = args.edit_rounds * len(trees)
    if prof:
        _write_profile(prof, args.out / "profiles" / "syncer_edit.txt", f"{n} edits")
    return {"edits": n, "seconds": round(wall, 2), "edits_per_s": round(n / wall, 1),
            "cpu_ms_per_edit": {"syncer": round(1000 * own / n, 2),
                                **{k: round(1000 * (cpu_seconds(p) - o0[k]) / n, 2) for k, p in pids.items()}}}


async def _settled(url: str, cluster: str, replica_id: str, since: float) -> bool:
    """Whether the replica's status (written after ``since``) says it holds every partition, all applied,
    and garbage collection has run (a restart's GC reads every tree and lists every object again)."""
    nc = await nats.connect(url)
    try:
        kv = await nc.jetstream().key_value(MEMBERS_BUCKET)
        try:
            st = json.loads((await kv.get(f"{cluster}.{replica_id}")).value or b"{}")
        except (KeyNotFoundError, ValueError):  # not yet there, or only the bare registration
            return False
        return bool(st.get("at", 0) > since and st.get("settled") and st.get("gc_epoch")
                    and len(st.get("partitions", [])) == subjects.PARTITIONS)
    finally:
        await nc.close()


async def _restart(logs: Path, cfg_path: Path, url: str, sim: SimProcess, cluster: str,
                   timeout: float) -> dict[str, Any]:
    """One syncer process on a converged controller and bus: its peak memory, its time to settle, its writes."""
    seq = int(requests.get(f"{sim.url}/_sim/requests", params={"since": 0}, timeout=30).json()["last_seq"])
    t0 = time.time()
    (logs / "syncer_restarted.log").unlink(missing_ok=True)
    proc = service("syncer", cfg_path, logs, ["--replica-id", "restarted"], suffix="_restarted").start()
    try:
        while not await _settled(url, cluster, "restarted", t0):
            if not proc.alive:
                raise RuntimeError(f"the restarted syncer exited: {proc.log_tail()}")
            if time.time() - t0 > timeout:
                raise TimeoutError(f"the restarted syncer did not settle in {timeout:.0f} s")
            await asyncio.sleep(0.5)
        settled = time.time() - t0
        mem = memory_mb(proc.pid or 0)
    finally:
        proc.stop()
    log = requests.get(f"{sim.url}/_sim/requests", params={"since": seq}, timeout=60).json()["results"]
    return {"settled_after_s": round(settled, 2), "peak_rss_mb": mem.get("peak_rss_mb"),
            "controller_writes": len(controller_writes(log)), "controller_reads": sum(1 for e in log if e["method"] == "GET")}


def _write_profile(prof: cProfile.Profile, path: Path, what: str) -> None:
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(60)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# event loop thread CPU (cProfile, thread time), {what}\n{text.getvalue()}")


async def _measure(args: argparse.Namespace, work: Path, natsd: NatsServer, sim: SimProcess) -> dict[str, Any]:
    cluster = "cpu"
    cfg_path = write_config(
        work / "config.yaml", cluster=cluster, controller=sim.url, username=sim.username, password=sim.password,
        nats_url=natsd.url, kubeconfig="", vip_networks=[VIP_NET],
        extra={"AKOSettings": {"namespaceSelector": {"labelKey": SELECTOR_KEY, "labelValue": cluster},
                               "fullSyncFrequency": 3600, "logLevel": "WARNING"},
               "ControllerSettings": {"controllerVersion": "22.1.3"},
               "albus": {"syncer": {"concurrency": args.concurrency * args.replicas, "callsPerSecond": 1e6}}})
    cfg = load_config(cfg_path)
    engine = Engine(cfg)
    for ko in events(cluster, f"{cluster}-ns", args.services):
        engine.observe(ko)
    engine.mark_all()
    trees = engine.flush().trees
    traces = tracing.setup(cfg, "albus-syncer")
    bus = await Bus.connect(natsd.url, "bench-syncer-cpu")
    try:
        await bus.ensure_streams()
        for t in trees:
            await bus.publish(subjects.avi_tree(t.cluster, t.tenant, t.vs_name), t)
        await bus.publish(subjects.trees_synced(cluster), TreesSynced(
            cluster=cluster, epoch="bench", vs_names=tuple(t.vs_name for t in trees),
            incarnation=await incarnation(bus, subjects.STREAM_AVI)))
    finally:
        await bus.close()
    if args.latency_ms:
        requests.post(f"{sim.url}/_sim/faults", json={"path": "^/api/", "latency_ms": args.latency_ms}, timeout=30)
    pids = {"simulator": sim.pid or 0, "nats-server": natsd.child.pid if natsd.child and natsd.child.pid else 0}
    stop = asyncio.Event()
    prof = cProfile.Profile(time.thread_time) if args.profile and not args.edit_rounds else None
    marks: list[tuple[float, float, int, dict[str, float]]] = []  # wall, own CPU, outcomes, others' CPU
    t0, c0 = time.monotonic(), time.process_time()
    if prof:
        prof.enable()
    rss0 = memory_mb(os.getpid()).get("rss_mb", 0.0)  # the harness, its engine and its trees
    replicas = [asyncio.create_task(syncer.run(cfg, stop, f"cpu{i}")) for i in range(args.replicas)]
    try:
        while not marks or marks[-1][2] < len(trees):
            await asyncio.sleep(0.25)
            for r in replicas:
                if r.done():
                    r.result()  # a replica that died says why
            if time.monotonic() - t0 > 600 + len(trees):
                raise TimeoutError(f"{marks[-1][2] if marks else 0}/{len(trees)} trees applied")
            marks.append((time.monotonic() - t0, time.process_time() - c0, await _outcomes(natsd.url, cluster),
                          {k: cpu_seconds(p) for k, p in pids.items()}))
        edits = await _edit_rounds(args, natsd.url, trees, replicas, pids) if args.edit_rounds else None
    finally:
        if prof:
            prof.disable()
        stop.set()
        await asyncio.gather(*replicas, return_exceptions=True)
        traces.shutdown()
    if args.restart:
        if args.latency_ms:
            requests.delete(f"{sim.url}/_sim/faults", timeout=30)
        restart = await _restart(args.out, cfg_path, natsd.url, sim, cluster, 600 + len(trees) * 0.2)
    first = next(m for m in marks if m[2] >= len(trees) // 10)
    last = marks[-1]
    n = last[2] - first[2]
    per_tree = {"syncer": 1000 * (last[1] - first[1]) / n,
                **{k: 1000 * (last[3][k] - first[3][k]) / n for k in pids}}
    out: dict[str, Any] = {
        "trees": len(trees), "seconds": round(last[0], 2), "steady_trees_per_s": round(n / (last[0] - first[0]), 1),
        "cpu_ms_per_tree": {k: round(v, 2) for k, v in per_tree.items()},
        "cpu_ms_per_tree_total": round(sum(per_tree.values()), 2),
        # this process: the harness (its engine and trees) before the replicas start, and the peak after
        "rss_before_replicas_mb": rss0, "peak_rss_mb": memory_mb(os.getpid()).get("peak_rss_mb")}
    if prof:
        _write_profile(prof, args.out / "profiles" / "syncer_apply.txt", f"{len(trees)} trees")
    if edits is not None:
        out["edits"] = edits
    if args.restart:
        out["restart"] = restart
    return out


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (a timeout) unwinds too: the simulator and nats-server are stopped


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    ap = argparse.ArgumentParser(prog="python -m bench.syncer_cpu", description=__doc__.split("\n\n")[0])
    ap.add_argument("--services", type=int, default=500)
    ap.add_argument("--replicas", type=int, default=1, help="replicas, all in this process")
    ap.add_argument("--concurrency", type=int, default=2, help="controller calls in flight per replica")
    ap.add_argument("--latency-ms", type=float, default=20.0, help="injected into every controller call")
    ap.add_argument("--profile", action="store_true", help="cProfile the event loop (slows it: figures too)")
    ap.add_argument("--edit-rounds", type=int, default=0, help="then this many rounds of one edit per tree")
    ap.add_argument("--restart", action="store_true",
                    help="then one syncer process restarted on the result: its peak memory and writes")
    ap.add_argument("--out", type=Path, default=results.RESULTS / "syncer_cpu")
    args = ap.parse_args()
    results.RUN["sizes"] = {"services": args.services}
    with tempfile.TemporaryDirectory(prefix="albus-bench-") as tmp:
        work = Path(tmp)
        (work / "seed.yaml").write_text(SIM_SEED)
        natsd = NatsServer(work / "nats").start()
        sim = SimProcess(work, seed=work / "seed.yaml").start()
        try:
            figures = asyncio.run(_measure(args, work, natsd, sim))
        finally:
            sim.stop()
            natsd.stop()
    doc = results.write(args.out, "syncer_cpu", {k: (str(v) if isinstance(v, Path) else v) for k, v in
                                                 vars(args).items()}, figures, {})
    print(json.dumps({"scenario": doc["scenario"], **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
