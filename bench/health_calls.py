"""Runtime calls health makes per interval with 1,000 pools, counted by the simulator.

    .venv/bin/python -m bench.health_calls [--pools 1000] [--degraded 10]

A simulator in this process's thread holds ``--pools`` pools of 3 members
(and one virtual service per pool) stamped ``created_by=ako-bench``; health's
own sweep (``services/health/runtime_poller.py``, one sweep = what it does
each interval) runs against it, and the simulator's request counters say
what each sweep cost, by endpoint. Then ``--degraded`` pools get one member
pinned down (the simulator's fault injection) and the sweeps are counted
again. Writes bench/results/health_calls.json. Nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from albus.sim.server import SimServer  # noqa: E402
from albus.sim.testing import SimAdmin, SimClient  # noqa: E402
from bench.machine import git_sha, machine  # noqa: E402
from services.common.config import parse_config  # noqa: E402
from services.health.runtime_poller import RuntimePoller  # noqa: E402
from services.health.runtime_reader import RuntimeReader  # noqa: E402

CLUSTER = "bench"
OUT = ROOT / "bench" / "results" / "health_calls.json"


def _populate(client: SimClient, pools: int) -> None:
    for i in range(pools):
        pool = client.ok("POST", "pool", {
            "name": f"{CLUSTER}--p{i}", "created_by": f"ako-{CLUSTER}",
            "servers": [{"ip": {"addr": f"127.0.5.{m + 1}", "type": "V4"}, "port": 8000 + i % 1000}
                        for m in range(3)]})
        client.ok("POST", "virtualservice", {"name": f"{CLUSTER}--vs{i}", "created_by": f"ako-{CLUSTER}",
                                             "services": [{"port": 80}], "pool_ref": pool["url"]})


def _gets(admin: SimAdmin) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in admin.counters()["detail"]:
        if row["method"] == "GET":
            key = "pool/<uuid>/runtime/server/detail" if row["type"] == "pool" else row["type"]
            out[key] = out.get(key, 0) + row["count"]
    return out


async def _counted(poller: RuntimePoller, admin: SimAdmin, label: str) -> dict[str, Any]:
    admin.reset_log()
    t0 = time.monotonic()
    changed = await poller.sweep()
    took = time.monotonic() - t0
    calls = _gets(admin)
    print(f"{label:<44} {sum(calls.values()):>5} calls {took:6.2f}s  {calls}")
    return {"sweep": label, "calls": sum(calls.values()), "by_endpoint": calls, "seconds": round(took, 3),
            "virtual_services_changed": len(changed)}


async def run(pools: int, degraded: int) -> dict[str, Any]:
    sim = SimServer(health_interval=0.5).start_in_thread()
    try:
        client = SimClient(sim.url, sim.username, sim.password)
        client.login()
        admin = SimAdmin(sim.url)
        t0 = time.monotonic()
        _populate(client, pools)
        print(f"populated {pools} pools and virtual services in {time.monotonic() - t0:.1f}s")
        cfg = parse_config({"AKOSettings": {"clusterName": CLUSTER},
                            "ControllerSettings": {"controllerHost": sim.url, "controllerVersion": "22.1.3"},
                            "credentials": {"username": sim.username, "password": sim.password}})
        reader = RuntimeReader(cfg)
        poller = RuntimePoller(reader, interval=5.0, on_change=lambda _: None)
        sweeps = [await _counted(poller, admin, "first sweep, every member up"),
                  await _counted(poller, admin, "steady, every member up")]
        for i in range(degraded):
            admin.set_server(f"{CLUSTER}--p{i}", "127.0.5.2", "OPER_DOWN", port=8000 + i)
        sweeps.append(await _counted(poller, admin, f"{degraded} pools just degraded"))
        sweeps.append(await _counted(poller, admin, f"{degraded} pools still degraded"))
        poller.view.refresh = 0.0  # as when the member lists are older than the refresh period (6 intervals)
        sweeps.append(await _counted(poller, admin, f"{degraded} pools degraded, refresh due"))
        return {"pools": pools, "virtual_services": pools, "members_per_pool": 3, "degraded_pools": degraded,
                "page_size": 200, "refresh_intervals": 6, "sweeps": sweeps,
                "one_call_per_pool_would_be": pools + sweeps[1]["calls"],
                "machine": machine(), "git": git_sha()}
    finally:
        sim.stop_thread()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pools", type=int, default=1000)
    ap.add_argument("--degraded", type=int, default=10)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    result = asyncio.run(run(args.pools, args.degraded))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
