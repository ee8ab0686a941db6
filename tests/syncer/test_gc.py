"""Garbage collection against the simulator and a real nats-server."""

from __future__ import annotations

import pytest
from syncer_helpers import make_applier, our_objects
from syncer_trees import l4_tree
from test_apply_ingress import CHILD, PARENT, applier, tree_for

from albus.broker import NatsServer
from albus.sim.server import SimServer
from albus.sim.testing import SimAdmin, SimClient
from services.common import subjects
from services.common.bus import Bus, Handler
from services.common.contracts import TreesSynced, VsTree
from services.common.incarnation import incarnation
from services.common.sealing import Keyring
from services.syncer.apply import TreeApplier
from services.syncer.avi_client import ControllerClient
from services.syncer.gc import collect_garbage
from tests.tls_certs import self_signed


async def _fence() -> None:
    return None


async def _applied(url: str, sim: SimServer, cluster: str, made: list[ControllerClient],
                   *names: str) -> tuple[Bus, TreeApplier, list[VsTree]]:
    """A bus with albus's streams, the cluster's applier, and an L4 tree per name applied with it."""
    bus = await Bus.connect(url, "t")
    await bus.ensure_streams()
    applier = make_applier(sim, cluster, made)
    trees = [l4_tree(cluster, n) for n in names]
    for t in trees:
        assert (await applier.apply(t)).ok
    return bus, applier, trees


async def test_gc_waits_for_trees_synced_and_deletes_only_this_clusters_orphans(
    nats_server: NatsServer, sim: SimServer, sim_admin: SimAdmin, sim_client: SimClient,
    client_factory: list[ControllerClient],
) -> None:
    cluster = "gc-a"
    bus, applier, (keep, orphan) = await _applied(nats_server.url, sim, cluster, client_factory, "keep", "orphan")
    # Another cluster's objects on the same controller, and objects without albus's stamp.
    other = make_applier(sim, "gc-b", client_factory)
    assert (await other.apply(l4_tree("gc-b", "orphan"))).ok
    sim_client.ok("POST", "pool", {"name": f"{cluster}--default-handmade", "servers": []})
    sim_client.ok("POST", "pool", {"name": f"{cluster}--default-stamped", "created_by": f"ako-{cluster}"})
    # Only "keep" is a live tree.
    await bus.publish(subjects.avi_tree(cluster, "admin", keep.vs_name), keep)

    report = await collect_garbage(bus, applier, cluster, {"admin"}, _fence)
    assert not report.ran and "TreesSynced" in report.reason
    assert len(our_objects(sim_admin, f"{cluster}--default-orphan")) == 4, "nothing deleted from a partial view"

    await bus.publish(subjects.trees_synced(cluster), TreesSynced(
        cluster=cluster, epoch="e1", vs_names=(keep.vs_name,), incarnation=await incarnation(bus, subjects.STREAM_AVI)))
    sim_admin.reset_log()
    report = await collect_garbage(bus, applier, cluster, {"admin"}, _fence)
    assert report.ran
    assert our_objects(sim_admin, f"{cluster}--default-orphan") == []
    deleted = [(t, n) for _, t, n in report.deleted]
    assert deleted[0] == ("virtualservice", orphan.vs_name), "the VS goes before what it used"
    assert deleted[-1] == ("vsvip", orphan.vs_name)
    assert len(our_objects(sim_admin, f"{cluster}--default-keep")) == 4
    assert len(our_objects(sim_admin, "gc-b--default-orphan")) == 4, "another cluster's objects are not touched"
    pools = {o["name"] for o in sim_admin.objects("pool")}
    assert f"{cluster}--default-handmade" in pools, "objects without created_by are not touched"
    assert f"{cluster}--default-stamped" in pools, "created_by without the clustername marker is not enough"
    # Nothing left to collect: a second run deletes nothing.
    again = await collect_garbage(bus, applier, cluster, {"admin"}, _fence)
    assert again.ran and again.deleted == []
    await bus.close()


async def test_gc_deletes_an_orphan_sni_child_before_its_parent(
    fresh_nats: NatsServer, sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient],
) -> None:
    ring = Keyring.ephemeral("c1")
    tree = tree_for(self_signed("s.example"), ring)
    a = applier(sim, ring, client_factory)
    assert (await a.apply(tree)).ok
    bus = await Bus.connect(fresh_nats.url, "t")
    await bus.ensure_streams()
    await bus.publish(subjects.trees_synced("c1"), TreesSynced(
        cluster="c1", epoch="e1", vs_names=(), incarnation=await incarnation(bus, subjects.STREAM_AVI)))
    report = await collect_garbage(bus, a, "c1", {"admin"}, _fence)
    await bus.close()
    assert report.ran and report.refused == [], report.refused
    deleted = [(t, n) for _, t, n in report.deleted]
    assert deleted[:2] == [("virtualservice", CHILD), ("virtualservice", PARENT)], deleted
    assert [o["name"] for o in sim_admin.objects("virtualservice") if o["name"].startswith("c1--")] == []


async def test_gc_refuses_a_read_of_the_trees_older_than_the_listing(
    nats_server: NatsServer, sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A read of the trees that says it is complete but is older than the controller (seen in a NATS failover)."""
    cluster = "gc-stale"
    bus, applier, (old,) = await _applied(nats_server.url, sim, cluster, client_factory, "old")
    fresh = l4_tree(cluster, "fresh")
    await bus.publish(subjects.avi_tree(cluster, "admin", old.vs_name), old)
    await bus.publish(subjects.trees_synced(cluster), TreesSynced(
        cluster=cluster, epoch="e1", vs_names=(old.vs_name,), incarnation=await incarnation(bus, subjects.STREAM_AVI)))
    stale = await bus.snapshot(subjects.avi_cluster(cluster))
    # A Service made since: its tree published, its objects on the controller.
    await bus.publish(subjects.avi_tree(cluster, "admin", fresh.vs_name), fresh)
    assert (await applier.apply(fresh)).ok

    async def stale_read(filter_subject: str, handler: Handler, timeout: float = 30.0) -> None:
        for d in stale.values():
            await handler(d)

    monkeypatch.setattr(bus, "read_each", stale_read)
    report = await collect_garbage(bus, applier, cluster, {"admin"}, _fence)
    assert not report.ran and "not a complete view" in report.reason
    assert len(our_objects(sim_admin, f"{cluster}--default-fresh")) == 4
    monkeypatch.undo()
    report = await collect_garbage(bus, applier, cluster, {"admin"}, _fence)  # a complete read: nothing to collect
    assert report.ran and report.deleted == []
    assert len(our_objects(sim_admin, f"{cluster}--default-fresh")) == 4
    await bus.close()


async def test_gc_lists_the_tenants_the_trees_subjects_name(
    fresh_nats: NatsServer, sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient],
) -> None:
    """A replica that never applied in a tenant (another replica's partitions) still collects there: the
    tenant comes from the tree subjects on the bus, read without reading the trees."""
    cluster = "gc-t"
    earlier = make_applier(sim, cluster, client_factory)
    keep, orphan = l4_tree(cluster, "keep", tenant="team-a"), l4_tree(cluster, "orphan", tenant="team-a")
    for t in (keep, orphan):
        assert (await earlier.apply(t)).ok
    bus = await Bus.connect(fresh_nats.url, "t")
    await bus.ensure_streams()
    await bus.publish(subjects.avi_tree(cluster, "team-a", keep.vs_name), keep)
    await bus.publish(subjects.avi_tree("gc-other", "team-b", "x"), keep)  # another cluster's: not listed
    assert await bus.subjects(subjects.avi_cluster(cluster)) == {subjects.avi_tree(cluster, "team-a", keep.vs_name)}
    await bus.publish(subjects.trees_synced(cluster), TreesSynced(
        cluster=cluster, epoch="e1", vs_names=(keep.vs_name,), incarnation=await incarnation(bus, subjects.STREAM_AVI)))
    fresh = make_applier(sim, cluster, client_factory)  # its cache has seen no tenant
    report = await collect_garbage(bus, fresh, cluster, {"admin"}, _fence)
    await bus.close()
    assert report.ran, report.reason
    assert {(t, n) for t, _, n in report.deleted} >= {("team-a", orphan.vs_name)}, report.deleted
    assert our_objects(sim_admin, f"{cluster}--default-orphan") == []
    assert len(our_objects(sim_admin, f"{cluster}--default-keep")) == 4
