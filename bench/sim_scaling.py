"""The simulator at 10,000 virtual services: macro cost per Service as VSes accumulate, and event-loop lag
under health checks of every pool.

    .venv/bin/python -m bench.sim_scaling [--services 10000] [--marks 0,5000,10000] [--lag-seconds 30]
        [--label after] [--out bench/results/simulator_scaling/after.json]

In-process, one asyncio loop, as the simulator process runs: a ``SimServer`` (health checks on, the
monitors' own intervals) fed the macro bodies albus itself sends for the cold scenario's Services
(``bench.workload`` documents -> translator engine -> ``services.syncer.macro.macro_body``, no bus,
no HTTP). Phase 1: at each mark of existing VSes, the CPU time of the next ``--sample`` macro calls (what
the handler does: the transaction and rendering its reply). Phase 2: with every Service created (~2
pools each), how late a 10 ms ticker on the same loop wakes over ``--lag-seconds`` and the process's CPU
share while idle — the cost of health checking alone. A benchmark, not a test: nothing asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from albus.sim import SimServer
from albus.stack import write_config
from bench.machine import ROOT, git_sha, machine
from bench.stack import SIM_SEED, VIP_NET
from bench.workload import documents
from services.common.config import load_config
from services.common.contracts import VsTree
from services.syncer.macro import macro_body
from services.translator.offline import _sent, as_kube_object

OUT = ROOT / "bench" / "results" / "simulator_scaling"
MEMBERS = {"pods": "10.x addresses, as the cold scenario's (outside the probe networks: not probed)",
           "loopback": "127.0.0.2 / 127.0.0.3 (probed: TCP connects, nothing listening)"}


def _on_loopback(value: Any) -> None:
    """Move every pool member to 127.0.0.2/127.0.0.3 (in place): members the simulator does probe."""
    if isinstance(value, dict):
        for i, srv in enumerate(value.get("servers", []) if isinstance(value.get("servers"), list) else []):
            srv["ip"] = {"addr": f"127.0.0.{2 + i % 2}", "type": "V4"}
        for v in value.values():
            _on_loopback(v)
    elif isinstance(value, list):
        for v in value:
            _on_loopback(v)


def macro_bodies(n: int) -> list[dict[str, Any]]:
    """The macro bodies of n cold-scenario Services, as the syncer would send them, in Service order."""
    from services.translator.engine import Engine

    with tempfile.TemporaryDirectory() as d:
        cfg = load_config(write_config(
            Path(d) / "config.yaml", cluster="simscale", controller="http://127.0.0.1:1", username="u",
            password="p", nats_url="nats://127.0.0.1:1", kubeconfig="/dev/null", vip_networks=[VIP_NET]))
    engine = Engine(cfg)
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}
    for doc in [ns, *documents("ns", range(n))]:
        ko = as_kube_object(doc, cfg.cluster)
        if ko is not None:
            engine.observe(ko)
    engine.mark_all()
    trees: list[VsTree] = sorted(engine.flush().trees, key=lambda t: t.vs_name)
    return [macro_body(t, _sent) for t in trees]


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else 0.0


async def _macro_costs(sim: SimServer, bodies: list[dict[str, Any]], marks: list[int], sample: int,
                       total: int) -> list[dict[str, Any]]:
    """The macro cost at each mark; then the rest of the `total` Services created."""
    ctl = sim.ctl
    base = sim.url
    done = 0
    out = []

    def one(body: dict[str, Any]) -> float:
        t0 = time.process_time()
        recs = ctl.macro.run(body, "admin", update=False)
        json.dumps([ctl.objects.render(r, base, include_name=True) for r in recs])
        return time.process_time() - t0

    for mark in marks:
        while done < mark:
            one(bodies[done])
            done += 1
            if done % 100 == 0:
                await asyncio.sleep(0)  # let the store hooks' follow-ups (health reconcile) run, as a server would
        costs = []
        for _ in range(sample):
            costs.append(one(bodies[done]))
            done += 1
            await asyncio.sleep(0)
        vses = len(ctl.store.by_type.get("virtualservice", {}))
        out.append({"existing_vs": mark, "vs_after_sample": vses, "calls": sample,
                    "mean_ms": round(1000 * statistics.fmean(costs), 3),
                    "p50_ms": round(1000 * _pct(costs, 0.5), 3), "p99_ms": round(1000 * _pct(costs, 0.99), 3)})
        print(json.dumps(out[-1]), flush=True)
    while done < len(bodies) and done < max(marks[-1] + sample, total):
        one(bodies[done])
        done += 1
        if done % 100 == 0:
            await asyncio.sleep(0)
    return out


async def _loop_lag(sim: SimServer, seconds: float, tick: float = 0.01) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    # the collector's pauses per generation: (wall, CPU) seconds; on a shared box the wall time of a
    # pause includes waiting for a core, its CPU time does not
    pauses: dict[int, list[tuple[float, float]]] = {0: [], 1: [], 2: []}
    began = [0.0, 0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[:] = [time.perf_counter(), time.process_time()]
        else:
            pauses[info["generation"]].append((time.perf_counter() - began[0], time.process_time() - began[1]))

    gc.callbacks.append(on_gc)
    probes0 = getattr(sim.ctl.health, "probes", 0)
    cpu0, wall0 = time.process_time(), time.monotonic()
    end = wall0 + seconds
    while time.monotonic() < end:
        t = loop.time()
        await asyncio.sleep(tick)
        lags.append(loop.time() - t - tick)
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    gc.callbacks.remove(on_gc)
    probes = getattr(sim.ctl.health, "probes", 0) - probes0
    pools = sim.ctl.store.by_type.get("pool", {})
    return {"seconds": round(wall, 1), "ticks": len(lags), "tick_ms": tick * 1000,
            "lag_p50_ms": round(1000 * _pct(lags, 0.5), 2), "lag_p99_ms": round(1000 * _pct(lags, 0.99), 2),
            "lag_max_ms": round(1000 * max(lags), 2), "cpu_share": round(cpu / wall, 3),
            "pools": len(pools),
            "pools_with_monitor": sum(1 for p in pools.values() if p.data.get("health_monitor_refs")),
            "members": sum(len(p.data.get("servers", []) or []) for p in pools.values()),
            "probes": probes, "probes_per_s": round(probes / wall, 1),
            "gc_pauses": {f"gen{g}": {"count": len(v), "total_s": round(sum(w for w, _ in v), 3),
                                      "max_ms": round(1000 * max(w for w, _ in v), 1) if v else 0.0,
                                      "cpu_total_s": round(sum(c for _, c in v), 3),
                                      "cpu_max_ms": round(1000 * max(c for _, c in v), 1) if v else 0.0}
                          for g, v in pauses.items()},
            "heap_settles": getattr(getattr(sim, "_settler", None), "settles", None)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    sha = git_sha()  # the code this run loaded (HEAD may move while it runs: a shared tree)
    t0 = time.monotonic()
    bodies = macro_bodies(args.services + args.sample)
    if args.members == "loopback":
        for b in bodies:
            _on_loopback(b)
    print(f"{len(bodies)} macro bodies in {time.monotonic() - t0:.1f}s", flush=True)
    marks = sorted({min(int(m), args.services) for m in args.marks.split(",")})
    # settle_heap as `albus sim` runs it (off for the "before" code, which has no such option)
    opts = {"settle_heap": True} if "settle_heap" in inspect.signature(SimServer).parameters else {}
    async with SimServer(port=0, seed=yaml.safe_load(SIM_SEED), **opts) as sim:
        costs = await _macro_costs(sim, bodies, marks, args.sample, args.services)
        await asyncio.sleep(args.settle)  # the checks of the last pools created start
        lag = await _loop_lag(sim, args.lag_seconds)
        print(json.dumps(lag), flush=True)
    return {"benchmark": "sim_scaling", "label": args.label, "git_sha": sha,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(),
            "parameters": {"services": args.services, "sample": args.sample, "lag_seconds": args.lag_seconds,
                           "settle_s": args.settle, "members": MEMBERS[args.members],
                           "health_interval": "the monitors' own send_interval"},
            "figures": {"macro_cost": costs, "idle_loop": lag}}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--marks", default="0,5000,10000")
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--lag-seconds", type=float, default=30.0)
    ap.add_argument("--settle", type=float, default=12.0)
    ap.add_argument("--members", choices=sorted(MEMBERS), default="pods",
                    help="pods: the cold scenario's 10.x members (not probed); loopback: probed, nothing listening")
    ap.add_argument("--label", default="after")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    doc = asyncio.run(run(args))
    out = args.out or OUT / f"{args.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
