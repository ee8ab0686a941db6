"""A VS's worker keeps nothing of its last apply while it waits for the next tree.

10,000 idle workers each holding their last decoded tree and outcome were ~290 MB of a replica.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
import weakref
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from opentelemetry.trace import Span
from syncer_helpers import make_client, running_worker, syncer_config, until
from syncer_trees import l4_tree

from albus.broker import NatsServer
from albus.sim.seed import DEFAULT_TEST_SEED
from albus.sim.server import SimServer
from albus.stack import SimProcess
from services.common import subjects
from services.common.bus import Bus
from services.common.contracts import ApplyOutcome, VsTree
from services.syncer import partition
from services.syncer.apply import Fence, TreeApplier
from services.syncer.avi_client import ControllerClient
from services.syncer.cache import ObjectCache

C = "mem1"


class _Watched(TreeApplier):
    """The applier, keeping only weak references to the trees it was given and the outcomes it made."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.seen: list[weakref.ref[object]] = []

    async def apply(self, tree: VsTree, fence: Fence) -> ApplyOutcome:
        outcome = await super().apply(tree, fence)
        self.seen += [weakref.ref(tree), weakref.ref(outcome)]
        return outcome


async def test_an_idle_worker_holds_nothing_of_its_last_tree_and_a_resync_reads_it_again(
    sim: SimServer, nats_server: NatsServer, client_factory: list[ControllerClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Applied, a tree is dropped, bytes and all (the bus keeps it: ~35 MB of a restarted syncer at
    10,000); a resync reads it from the bus again, applies it without writing and without a trace."""
    bus = await Bus.connect(nats_server.url, "memory-test")
    await bus.ensure_streams()
    client = make_client(syncer_config(sim, C), client_factory)
    applier = _Watched(client, ObjectCache(client, C))
    tree = l4_tree(C, "svc-0")
    await bus.publish(subjects.avi_tree(C, tree.tenant, tree.vs_name), tree)
    outcomes: list[tuple[bool, int]] = []
    traced: list[bool] = []
    handling = partition.tracing.handling

    def spy(*args: Any, enabled: bool = True, **kwargs: Any) -> AbstractContextManager[Span]:
        traced.append(enabled)
        return handling(*args, enabled=enabled, **kwargs)

    monkeypatch.setattr(partition.tracing, "handling", spy)

    async def publish(o: ApplyOutcome) -> None:
        outcomes.append((o.ok, o.writes))  # not the outcome itself

    vs_name = tree.vs_name
    del tree  # only the bus has it now
    async with running_worker(bus, C, vs_name, applier, publish) as worker:
        await until(lambda: bool(outcomes) and worker.settled)
        assert outcomes == [(True, 1)] and len(applier.seen) == 2
        slot = next(iter(worker.slots.values()))
        assert slot.task is not None and not slot.task.done()  # waiting for the next tree
        assert slot.latest is None and slot.headers == {}, "the idle worker keeps its last tree's bytes"
        gc.collect()  # a cycle through the apply's span or frames is not what is asked about: references
        assert [r() for r in applier.seen] == [None, None], "the idle worker keeps its last tree or outcome"
        await worker.resync()
        await until(lambda: len(outcomes) == 2 and worker.settled)
        assert outcomes == [(True, 1), (True, 0)] and traced == [True, False]


async def test_a_cache_load_holds_its_objects_packed_and_one_page_decoded(
    tmp_path: Path, client_factory: list[ControllerClient]
) -> None:
    """Loading a tenant packs each page of the listing as it comes.

    Holding every object decoded until the whole tenant was listed made a
    restarted syncer's memory at 10,000 Services peak near 800 MB. The
    simulator runs as a process of its own here, so only the syncer's side
    is traced.
    """
    cluster = "mem2"
    servers = [{"ip": {"addr": f"10.1.0.{i + 1}", "type": "V4"}, "port": 8080} for i in range(20)]
    pools = [{"type": "pool", "data": {"name": f"{cluster}--p{i}", "created_by": f"ako-{cluster}",
                                       "servers": servers}} for i in range(4000)]  # twenty pages
    seed = tmp_path / "seed.yaml"
    seed.write_text(yaml.safe_dump({**DEFAULT_TEST_SEED, "objects": pools}))
    sim = SimProcess(tmp_path, seed=seed).start()
    try:
        client = make_client(syncer_config(cast(SimServer, sim), cluster), client_factory)
        cache = ObjectCache(client, cluster, types=("pool",))
        await cache.list_owned("admin")  # logged in, first use paid
        tracemalloc.start()
        try:
            tc = await cache.ensure("admin")
            _, peak = tracemalloc.get_traced_memory()
            before, _ = tracemalloc.get_traced_memory()
            decoded = [tc.get("pool", f"{cluster}--p{i}") for i in range(4000)]
            after, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        sim.stop()
    assert all(p is not None and len(p["servers"]) == 20 for p in decoded)
    # All 4,000 decoded at once was the old peak; now the packed listing and a page in flight.
    assert peak < 0.5 * (after - before), (peak, after - before)


async def test_gc_reads_the_trees_one_at_a_time(nats_server: NatsServer) -> None:
    """GC's read of every tree keeps what they claim, not the trees, decoded or not, on a busy loop too.

    All of them decoded at once (~20 KB each) was most of a restarted syncer's peak
    at 10,000 Services; then their bytes, all kept until the last came (~3.4 KB
    each, beside the partition workers' own copies), GC running as the restart's
    backlog was applied.
    """
    from services.syncer.gc import _claims

    cluster = "mem3"
    bus = await Bus.connect(nats_server.url, "memory-test")
    await bus.ensure_streams()
    pods = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(10)]
    trees = [l4_tree(cluster, f"svc-{i}", endpoints=pods) for i in range(1500)]
    for t in trees:
        await bus.publish(subjects.avi_tree(cluster, t.tenant, t.vs_name), t)
    expected = {(t.tenant, o.type, o.name) for t in trees for o in t.objects}
    del trees
    stop = False

    async def busy() -> None:
        """A restart's backlog being applied: the loop is slow to come back to the read."""
        while not stop:
            sum(range(20_000))
            await asyncio.sleep(0)

    tracemalloc.start()
    hogs = [asyncio.create_task(busy()) for _ in range(8)]
    try:
        claims = await _claims(bus, cluster)
        _, peak = tracemalloc.get_traced_memory()
        before, _ = tracemalloc.get_traced_memory()
        snap = await bus.snapshot(subjects.avi_cluster(cluster))
        after, _ = tracemalloc.get_traced_memory()
    finally:
        stop = True
        await asyncio.gather(*hogs)
        tracemalloc.stop()
        await bus.close()
    assert claims.objects == expected and len(snap) == 1500
    # The claims it keeps and the consumer's window: not the trees' bytes and deliveries too.
    assert peak < 0.5 * (after - before), (peak, after - before)
