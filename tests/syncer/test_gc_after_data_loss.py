"""Garbage collection after NATS lost its data: nothing is deleted from the partial view of a rebuild.

A real nats-server whose store is really wiped (stopped, JetStream directory
deleted, started again empty), the simulator, and the syncer's GC. While the
translator republishes, the AVI stream holds only some trees; the objects of
the others are still on the controller and must stay. GC may run only from a
``TreesSynced`` that names the current incarnation of the AVI stream, and the
stream must still be that one once the trees were read.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from syncer_helpers import make_applier, our_objects
from syncer_trees import deleted_tree, l4_tree

from albus.broker import NatsServer
from albus.sim.server import SimServer
from albus.sim.testing import SimAdmin
from services.common import subjects
from services.common.bus import Bus
from services.common.contracts import TreesSynced, VsTree
from services.common.incarnation import incarnation
from services.syncer import gc
from services.syncer.avi_client import ControllerClient
from services.syncer.gc import collect_garbage
from tests.resync.wipe import wipe

CLUSTER = "dr-gc"


async def _fence() -> None:
    return None


async def _streams_back(bus: Bus, timeout: float = 30.0) -> None:
    """The client has reconnected to the emptied server and the streams exist again (as the syncer makes them)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await bus.ensure_streams()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _publish_trees(bus: Bus, *trees: VsTree) -> None:
    for t in trees:
        await bus.publish(subjects.avi_tree(t.cluster, t.tenant, t.vs_name), t)


async def _marker(bus: Bus, names: tuple[str, ...], stamp: str | None = None) -> None:
    """TreesSynced as the translator publishes it: stamped with the AVI stream it read (or ``stamp``)."""
    inc = await incarnation(bus, subjects.STREAM_AVI) if stamp is None else stamp
    await bus.publish(subjects.trees_synced(CLUSTER),
                      TreesSynced(cluster=CLUSTER, epoch=f"e-{time.monotonic_ns()}", vs_names=names, incarnation=inc))


@pytest.fixture
async def converged(fresh_nats: NatsServer, sim: SimServer, client_factory: list[ControllerClient]):  # type: ignore[no-untyped-def]
    """Two trees applied to the controller and on the bus with the translator's full view; GC has nothing to do."""
    bus = await Bus.connect(fresh_nats.url, "dr-gc-test")
    await bus.ensure_streams()
    applier = make_applier(sim, CLUSTER, client_factory)
    keep, late = l4_tree(CLUSTER, "keep"), l4_tree(CLUSTER, "late")
    for t in (keep, late):
        assert (await applier.apply(t)).ok
    await _publish_trees(bus, keep, late)
    await _marker(bus, (keep.vs_name, late.vs_name))
    report = await collect_garbage(bus, applier, CLUSTER, {"admin"}, _fence)
    assert report.ran and report.deleted == []
    try:
        yield bus, applier, keep, late
    finally:
        await bus.close()


async def test_gc_deletes_nothing_until_the_translators_full_view_of_the_new_stream(
        converged, fresh_nats: NatsServer, sim_admin: SimAdmin) -> None:  # type: ignore[no-untyped-def]
    bus, applier, keep, late = converged
    old = await incarnation(bus, subjects.STREAM_AVI)

    await asyncio.to_thread(wipe, fresh_nats)
    await _streams_back(bus)
    assert await incarnation(bus, subjects.STREAM_AVI) != old
    # The rebuild is under way: one tree republished so far. A marker of the
    # lost stream (a translator that has not noticed yet) or an unstamped one
    # must not open the gate.
    await _publish_trees(bus, keep)
    for stamp in (old, ""):
        await _marker(bus, (keep.vs_name, late.vs_name), stamp=stamp)
        report = await collect_garbage(bus, applier, CLUSTER, {"admin"}, _fence)
        assert not report.ran and "another incarnation" in report.reason, report
    assert len(our_objects(sim_admin, late.vs_name)) == 4, "nothing deleted from the partial view"

    # The translator's new full view: every tree, then the marker of this stream.
    await _publish_trees(bus, late)
    await _marker(bus, (keep.vs_name, late.vs_name))
    sim_admin.reset_log()
    report = await collect_garbage(bus, applier, CLUSTER, {"admin"}, _fence)
    assert report.ran and report.deleted == []
    assert not [r for r in sim_admin.requests() if r["method"] == "DELETE"]
    assert len(our_objects(sim_admin, late.vs_name)) == 4 and len(our_objects(sim_admin, keep.vs_name)) == 4

    # The gate opens for real: objects no tree claims are collected from that view (those of a
    # deleted tree are its worker's to delete, not GC's).
    stray = l4_tree(CLUSTER, "stray")
    assert (await applier.apply(stray)).ok
    await _publish_trees(bus, deleted_tree(late))
    await _marker(bus, (keep.vs_name,))
    report = await collect_garbage(bus, applier, CLUSTER, {"admin"}, _fence)
    assert report.ran and {n for _, _, n in report.deleted} == {stray.vs_name, f"{stray.vs_name}-TCP-80"}
    assert report.left_to_trees == 4
    assert our_objects(sim_admin, stray.vs_name) == []
    assert len(our_objects(sim_admin, keep.vs_name)) == 4 and len(our_objects(sim_admin, late.vs_name)) == 4


async def test_gc_stops_when_the_stream_is_replaced_while_it_reads(
        converged, fresh_nats: NatsServer, sim_admin: SimAdmin,
        monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    bus, applier, keep, late = converged
    read_trees = gc._claims
    reads = 0

    async def wiped_before_the_read(b: Bus, cluster: str) -> gc.Claims:
        # The read that decides what is claimed, after the controller was
        # listed: NATS loses everything right before it, and the rebuild has
        # republished only one tree.
        nonlocal reads
        reads += 1
        if reads == 1:
            await asyncio.to_thread(wipe, fresh_nats)
            await _streams_back(b)
            await _publish_trees(b, keep)
        return await read_trees(b, cluster)

    monkeypatch.setattr(gc, "_claims", wiped_before_the_read)
    sim_admin.reset_log()
    report = await collect_garbage(bus, applier, CLUSTER, {"admin"}, _fence)
    assert reads == 1, "the trees are read once, after the listing (tenants come from their subjects)"
    assert not report.ran and "replaced" in report.reason, report
    assert not [r for r in sim_admin.requests() if r["method"] == "DELETE"]
    assert len(our_objects(sim_admin, late.vs_name)) == 4, "the trees of a half-rebuilt stream claimed nothing"
