"""Helpers of the syncer tests: configuration, clients pointed at the simulator, request-log views."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from syncer_trees import l4_tree

from albus.sim.server import SimServer
from albus.sim.testing import SimAdmin
from services.common import subjects
from services.common.avi_session import AviSession
from services.common.bus import Bus
from services.common.config import Config, parse_config
from services.common.contracts import ApplyOutcome, VsTree
from services.syncer.apply import TreeApplier
from services.syncer.avi_client import ControllerClient
from services.syncer.cache import ObjectCache
from services.syncer.partition import PartitionWorker


def syncer_config(sim: SimServer, cluster: str, nats_url: str = "", **syncer: float) -> Config:
    return parse_config({
        "AKOSettings": {"clusterName": cluster},
        "ControllerSettings": {"controllerHost": sim.url, "controllerVersion": "22.1.3"},
        "albus": {"natsUrl": nats_url, "syncer": {"concurrency": 4, "callsPerSecond": 200.0, **syncer}},
        "credentials": {"username": sim.username, "password": sim.password},
    })


def make_client(cfg: Config, made: list[ControllerClient], **kw: float) -> ControllerClient:
    s = cfg.albus.syncer
    c = ControllerClient(AviSession.from_config(cfg, connections=s.concurrency), concurrency=s.concurrency,
                         calls_per_second=s.callsPerSecond, retry_max_seconds=s.retryMaxSeconds,
                         backoff_base=kw.get("backoff_base", 0.05))
    made.append(c)
    return c


def make_applier(sim: SimServer, cluster: str, made: list[ControllerClient], **kw: float) -> TreeApplier:
    client = make_client(syncer_config(sim, cluster), made, **kw)
    return TreeApplier(client, ObjectCache(client, cluster))


def api_calls(admin: SimAdmin, *, writes_only: bool = False) -> list[tuple[str, str]]:
    """(method, type) of each controller API call in the request log, logins excluded."""
    out = []
    for r in admin.requests():
        parts = r["path"].strip("/").split("/")
        if len(parts) < 2 or parts[0] != "api":
            continue  # login, logout
        if writes_only and r["method"] == "GET":
            continue
        # From the path: a request refused by fault injection has no type in the log.
        out.append((r["method"], parts[1]))
    return out


def our_objects(admin: SimAdmin, prefix: str) -> list[tuple[str, str]]:
    found = []
    for t in ("virtualservice", "l4policyset", "pool", "vsvip"):
        found += [(t, o["name"]) for o in admin.objects(t) if o["name"].startswith(prefix)]
    return sorted(found)


def one_partition_trees(cluster: str, count: int, among: int = 5000) -> list[VsTree]:
    """``count`` L4 trees (Services ``svc-<i>``) whose VSes all fall in the first one's partition."""
    part = subjects.partition_of(cluster, l4_tree(cluster, "svc-0").vs_name)
    names = [f"svc-{i}" for i in range(among) if subjects.partition_of(cluster, f"{cluster}--default-svc-{i}") == part]
    trees = [l4_tree(cluster, n) for n in names[:count]]
    assert len(trees) == count and all(subjects.partition_of(cluster, t.vs_name) == part for t in trees)
    return trees


class Outcomes(list[ApplyOutcome]):
    """The outcomes a worker published, in order; ``publish`` is the worker's publisher."""

    async def publish(self, o: ApplyOutcome) -> None:
        self.append(o)


async def no_fence() -> None:
    return None


@contextlib.asynccontextmanager
async def running_worker(bus: Bus, cluster: str, vs_name: str, applier: TreeApplier,
                         publish: Callable[[ApplyOutcome], Awaitable[None]],
                         fence: Callable[[], Awaitable[None]] = no_fence, **kw: Any) -> AsyncIterator[PartitionWorker]:
    """The worker of ``vs_name``'s partition, started; stopped with the bus closed on the way out."""
    worker = PartitionWorker(subjects.partition_of(cluster, vs_name), cluster, bus, applier, fence, publish, **kw)
    await worker.start()
    try:
        yield worker
    finally:
        await worker.stop()
        await bus.close()


async def until(done: Callable[[], bool], timeout: float = 60) -> None:
    """Wait, polling, until ``done()``; fail after ``timeout`` seconds."""
    async def poll() -> None:
        while not done():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)
