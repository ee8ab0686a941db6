"""Garbage collection and the trees' workers never delete the same object twice (simulator, real nats-server)."""

from __future__ import annotations

import asyncio
from typing import Any

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
from services.syncer.apply import ApplyFailed, TreeApplier
from services.syncer.avi_client import CallCounter, ControllerClient
from services.syncer.cache import Listing
from services.syncer.gc import collect_garbage


async def _fence() -> None:
    return None


def deletes(admin: SimAdmin) -> list[tuple[str, int]]:
    """(path, status) of every DELETE the controller got since the log was reset."""
    return [(str(r["path"]), int(r["status"])) for r in admin.requests() if r["method"] == "DELETE"]


async def _bus_with(url: str, cluster: str, *trees: VsTree) -> Bus:
    """The cluster's trees on the bus, and the translator's marker that they are all there."""
    bus = await Bus.connect(url, "t")
    await bus.ensure_streams()
    for t in trees:
        await bus.publish(subjects.avi_tree(cluster, t.tenant, t.vs_name), t)
    await bus.publish(subjects.trees_synced(cluster), TreesSynced(
        cluster=cluster, epoch="e1", vs_names=tuple(t.vs_name for t in trees if not t.deleted),
        incarnation=await incarnation(bus, subjects.STREAM_AVI)))
    return bus


async def test_a_deleted_trees_objects_are_left_to_its_worker(
    nats_server: NatsServer, sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient],
) -> None:
    cluster = "gcw-a"
    applier = make_applier(sim, cluster, client_factory)
    keep, gone = l4_tree(cluster, "keep"), l4_tree(cluster, "gone")
    for t in (keep, gone):
        assert (await applier.apply(t)).ok
    tombstone = deleted_tree(gone)
    bus = await _bus_with(nats_server.url, cluster, keep, tombstone)
    try:
        sim_admin.reset_log()
        report = await collect_garbage(bus, applier, cluster, {"admin"}, _fence)
        assert report.ran and report.deleted == [] and report.left_to_trees == 4, report
        assert len(our_objects(sim_admin, gone.vs_name)) == 4, "the deleted tree's objects are its worker's"
        assert deletes(sim_admin) == []
        # The worker and GC at once: each object deleted once, by the worker.
        outcome, again = await asyncio.gather(applier.apply(tombstone),
                                              collect_garbage(bus, applier, cluster, {"admin"}, _fence))
        assert outcome.ok and again.ran and again.deleted == []
        assert our_objects(sim_admin, gone.vs_name) == []
        assert len(our_objects(sim_admin, keep.vs_name)) == 4
        done = deletes(sim_admin)
        assert len(done) == 4 and all(status == 204 for _, status in done), done
    finally:
        await bus.close()


async def test_gc_does_not_delete_again_what_a_worker_deleted_after_the_listing(
    nats_server: NatsServer, sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tree drops a pool; its worker applies it, deleting the pool, between GC's listing and GC's deletions."""
    cluster = "gcw-b"
    applier = make_applier(sim, cluster, client_factory)
    both = l4_tree(cluster, "web", ports=[("TCP", 80), ("TCP", 443)])
    assert (await applier.apply(both)).ok
    narrowed = l4_tree(cluster, "web", ports=[("TCP", 80)])
    dropped = ("pool", f"{both.vs_name}-TCP-443")
    bus = await _bus_with(nats_server.url, cluster, narrowed)
    listing = applier.cache.list_owned

    async def listed_then_worker_deletes(tenant: str, counter: CallCounter | None = None) -> Listing:
        out = await listing(tenant, counter)
        assert dropped in out.packed
        assert (await applier.apply(narrowed)).ok
        return out

    monkeypatch.setattr(applier.cache, "list_owned", listed_then_worker_deletes)
    try:
        sim_admin.reset_log()
        report = await collect_garbage(bus, applier, cluster, {"admin"}, _fence)
    finally:
        await bus.close()
    assert report.ran and ("admin", *dropped) not in report.deleted, report
    done = deletes(sim_admin)
    assert len(done) == 1 and done[0][1] == 204, f"one DELETE of the dropped pool, not a second answered 404: {done}"


def _one_pool(tree: VsTree) -> tuple[str, str]:
    pool = next(o for o in tree.objects if o.type == "pool")
    return ("pool", pool.name)


async def _applied_web(sim: SimServer, cluster: str, made: list[ControllerClient]) -> tuple[TreeApplier, VsTree]:
    """The cluster's applier, and the L4 tree of Service "web" it applied."""
    applier = make_applier(sim, cluster, made)
    tree = l4_tree(cluster, "web")
    assert (await applier.apply(tree)).ok
    return applier, tree


async def test_a_delete_under_way_is_not_sent_again(
    sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient],
) -> None:
    applier, tree = await _applied_web(sim, "gcw-c", client_factory)
    # The pool is in use by the VS's policy set: the controller refuses to delete it, and both
    # askers hear that refusal from the one DELETE sent.
    key = _one_pool(tree)
    sim_admin.reset_log()
    got: list[Any] = await asyncio.gather(
        *(applier.delete_owned("admin", key, CallCounter(), _fence) for _ in range(2)), return_exceptions=True)
    assert all(isinstance(g, ApplyFailed) and "referred" in g.message for g in got), got
    assert len(deletes(sim_admin)) == 1
    # Not in use any more: one DELETE again, the first asker's; the second waited for it.
    for obj in ("virtualservice", "l4policyset"):
        assert await applier.delete_owned("admin", (obj, tree.vs_name), CallCounter(), _fence)
    sim_admin.reset_log()
    first, second = await asyncio.gather(
        *(applier.delete_owned("admin", key, CallCounter(), _fence) for _ in range(2)))
    assert (first, second) == (True, False)
    assert [status for _, status in deletes(sim_admin)] == [204]


async def test_a_404_for_an_object_made_anew_keeps_the_new_one_cached(
    sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient],
) -> None:
    """GC deletes an orphan as it listed it; a tree's worker has made it anew since: the 404 is for the old uuid."""
    applier, tree = await _applied_web(sim, "gcw-d", client_factory)
    listed = applier.cache.tenant_objects("admin").get("vsvip", tree.vs_name)
    assert listed is not None
    assert (await applier.apply(deleted_tree(tree))).ok
    assert (await applier.apply(tree)).ok  # the Service came back: every object made anew
    fresh = applier.cache.tenant_objects("admin").facts(("vsvip", tree.vs_name))
    assert fresh is not None and fresh.uuid != listed["uuid"]
    assert await applier.delete_owned("admin", ("vsvip", tree.vs_name), CallCounter(), _fence, listed=listed)
    kept = applier.cache.tenant_objects("admin").facts(("vsvip", tree.vs_name))
    assert kept is not None and kept.uuid == fresh.uuid, "the new object stays cached"
