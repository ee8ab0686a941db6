"""Syncer replicas end to end: real nats-server, real simulator, trees written by hand."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from syncer_helpers import api_calls, make_applier, make_client, our_objects, syncer_config
from syncer_trees import deleted_tree, l4_tree

from albus.broker import NatsServer
from albus.sim.server import SimServer
from albus.sim.testing import SimAdmin
from services.common import subjects
from services.common.bus import Bus
from services.common.contracts import ApplyOutcome, TreesSynced, VsTree, decode
from services.common.incarnation import incarnation
from services.syncer.avi_client import ControllerClient
from services.syncer.replica import SyncerReplica, Timing


async def until(cond: Callable[[], Any] | Callable[[], Awaitable[Any]], timeout: float = 60.0,
                what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if asyncio.iscoroutine(v):
            v = await v
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class Running:
    replica: SyncerReplica
    stop: asyncio.Event
    task: asyncio.Task[None]
    bus: Bus

    async def halt(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 20)
        await self.bus.close()


@pytest.fixture
async def replicas(
    nats_server: NatsServer, client_factory: list[ControllerClient]
) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    started: list[Running] = []
    suffix = f"_t{uuid.uuid4().hex[:8]}"  # KV buckets of this test, with short TTLs

    async def start(sim: SimServer, cluster: str, rid: str, **timing: float) -> Running:
        bus = await Bus.connect(nats_server.url, f"syncer-{rid}")
        await bus.ensure_streams()
        cfg = syncer_config(sim, cluster, nats_server.url)
        t = Timing(tick=0.2, member_ttl=2.0, lease_ttl=3.0, resync=3600.0, gc_delay=0.2,
                   retry_base=0.2, retry_max=1.0, bucket_suffix=suffix)
        for k, v in timing.items():
            setattr(t, k, v)
        replica = SyncerReplica(bus, cfg, make_client(cfg, client_factory), rid, t)
        stop = asyncio.Event()
        run = Running(replica, stop, asyncio.create_task(replica.run(stop)), bus)
        started.append(run)
        return run

    yield start
    for r in started:
        if not r.task.done():
            await r.halt()


async def _outcome(bus: Bus, tree: VsTree) -> ApplyOutcome | None:
    d = await bus.last(subjects.outcome(tree.cluster, tree.tenant, tree.vs_name))
    return decode(d.data, ApplyOutcome) if d else None


async def _publish(bus: Bus, tree: VsTree) -> None:
    await bus.publish(subjects.avi_tree(tree.cluster, tree.tenant, tree.vs_name), tree)


async def test_one_replica_applies_replays_deletes_and_collects(
    nats_server: NatsServer, sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient],
    replicas: Callable[..., Awaitable[Running]],
) -> None:
    cluster = "rep-one"
    run = await replicas(sim, cluster, "r1")
    bus = run.bus
    await until(lambda: len(run.replica.workers) == subjects.PARTITIONS, what="all partitions")

    tree = l4_tree(cluster, "web")
    await _publish(bus, tree)

    async def applied() -> ApplyOutcome | None:
        o = await _outcome(bus, tree)
        return o if o is not None and o.checksum == tree.checksum else None

    out = await until(applied, what="first outcome")
    assert out.ok and out.vips and out.writes == 1
    subj = subjects.outcome(cluster, tree.tenant, tree.vs_name)
    first = await bus.last(subj)
    assert first is not None

    # A duplicate of the same tree: applied again, writes nothing, publishes nothing new.
    sim_admin.reset_log()
    before = run.replica.applies[(tree.tenant, tree.vs_name)]
    await _publish(bus, tree)
    await until(lambda: run.replica.applies[(tree.tenant, tree.vs_name)] > before, what="replay applied")
    assert api_calls(sim_admin, writes_only=True) == []
    again = await bus.last(subj)
    assert again is not None and again.stream_seq == first.stream_seq

    # An orphan of this cluster: not collected before TreesSynced, collected after.
    stray = make_applier(sim, cluster, client_factory)
    orphan = l4_tree(cluster, "orphan")
    assert (await stray.apply(orphan)).ok
    runs = run.replica.gc_runs
    await until(lambda: run.replica.gc_runs > runs + 1, what="GC attempts without the marker")
    assert run.replica.last_gc is not None and not run.replica.last_gc.ran
    assert len(our_objects(sim_admin, f"{cluster}--default-orphan")) == 4
    await bus.publish(subjects.trees_synced(cluster), TreesSynced(
        cluster=cluster, epoch="e", vs_names=(tree.vs_name,), incarnation=await incarnation(bus, subjects.STREAM_AVI)))
    await until(lambda: not our_objects(sim_admin, f"{cluster}--default-orphan"), what="orphan collected")
    assert len(our_objects(sim_admin, f"{cluster}--default-web")) == 4

    # Deleting the tree removes everything and says so.
    await _publish(bus, deleted_tree(tree))

    async def gone() -> bool:
        o = await _outcome(bus, tree)
        return o is not None and o.deleted and o.ok

    await until(gone, what="deleted outcome")
    assert our_objects(sim_admin, f"{cluster}--default-web") == []


async def test_two_replicas_split_partitions_and_never_apply_one_vs_together(
    nats_server: NatsServer, sim: SimServer, sim_admin: SimAdmin, replicas: Callable[..., Awaitable[Running]],
) -> None:
    cluster = "rep-two"
    a = await replicas(sim, cluster, "ra")
    await until(lambda: len(a.replica.workers) == subjects.PARTITIONS, what="a holds everything")
    trees = [l4_tree(cluster, f"svc{i}") for i in range(12)]

    # Watch every apply: the same VS must never be in flight on two replicas.
    active: dict[str, str] = {}
    overlaps: list[str] = []

    def watch(run: Running) -> None:
        inner = run.replica.applier.apply

        async def apply(tree: VsTree, fence: Any = None) -> ApplyOutcome:
            holder = active.setdefault(tree.vs_name, run.replica.replica_id)
            if holder != run.replica.replica_id:
                overlaps.append(tree.vs_name)
            try:
                return await inner(tree, fence) if fence else await inner(tree)
            finally:
                if active.get(tree.vs_name) == run.replica.replica_id:
                    del active[tree.vs_name]

        run.replica.applier.apply = apply  # type: ignore[method-assign]

    watch(a)
    for t in trees:
        await _publish(a.bus, t)

    b = await replicas(sim, cluster, "rb")
    watch(b)

    def split() -> bool:
        pa, pb = set(a.replica.workers), set(b.replica.workers)
        assert not pa & pb, f"both hold {sorted(pa & pb)}"
        return bool(pa) and bool(pb) and len(pa | pb) == subjects.PARTITIONS

    await until(split, what="partitions split between a and b")

    async def all_applied(ts: list[VsTree]) -> bool:
        for t in ts:
            o = await _outcome(a.bus, t)
            if o is None or o.checksum != t.checksum or not o.ok:
                return False
        return True

    await until(lambda: all_applied(trees), what="every tree applied")
    moved = [l4_tree(cluster, f"svc{i}", endpoints=["10.0.0.9"]) for i in range(12)]
    for t in moved:
        await _publish(a.bus, t)
    await until(lambda: all_applied(moved), what="every update applied")
    assert any(t.vs_name in {k[1] for k in b.replica.applies} for t in moved), "b did some of the work"
    assert any(t.vs_name in {k[1] for k in a.replica.applies} for t in moved), "a did some of the work"

    writes = api_calls(sim_admin, writes_only=True)
    assert writes.count(("POST", "macro")) == 12, "each VS created exactly once"
    assert writes.count(("PUT", "pool")) == 12, "each update applied exactly once"
    assert not [r for r in sim_admin.requests() if r["status"] in (409, 412)]
    assert overlaps == []

    # b leaves: a takes its partitions back and applies what b used to own.
    b_vs = next(t for t in moved if ("admin", t.vs_name) in b.replica.applies)
    await b.halt()
    await until(lambda: len(a.replica.workers) == subjects.PARTITIONS, what="a takes everything back")
    final = l4_tree(cluster, b_vs.vs_name.split("--default-")[1], endpoints=["10.0.0.10"])
    await _publish(a.bus, final)
    await until(lambda: all_applied([final]), what="a applies b's former VS")
    assert overlaps == []


async def test_resync_with_nothing_changed_writes_nothing(
    nats_server: NatsServer, sim: SimServer, sim_admin: SimAdmin, replicas: Callable[..., Awaitable[Running]],
) -> None:
    cluster = "rep-resync"
    run = await replicas(sim, cluster, "rs", resync=0.5)
    tree = l4_tree(cluster, "web")
    await _publish(run.bus, tree)

    async def applied() -> bool:
        o = await _outcome(run.bus, tree)
        return o is not None and o.ok and o.checksum == tree.checksum

    await until(applied, what="applied")
    subj = subjects.outcome(cluster, tree.tenant, tree.vs_name)
    first = await run.bus.last(subj)
    sim_admin.reset_log()
    n = run.replica.applies[(tree.tenant, tree.vs_name)]
    await until(lambda: run.replica.applies[(tree.tenant, tree.vs_name)] >= n + 2, what="two resyncs")
    calls = api_calls(sim_admin)
    assert calls, "resync re-lists the controller"
    assert [c for c in calls if c[0] != "GET"] == []
    after = await run.bus.last(subj)
    assert first is not None and after is not None and after.stream_seq == first.stream_seq, "no new outcome"


async def test_a_crashed_replicas_partitions_move_when_its_leases_expire(
    nats_server: NatsServer, sim: SimServer, sim_admin: SimAdmin, replicas: Callable[..., Awaitable[Running]],
) -> None:
    cluster = "rep-crash"
    a = await replicas(sim, cluster, "ca")
    b = await replicas(sim, cluster, "cb")

    def split() -> bool:
        pa, pb = set(a.replica.workers), set(b.replica.workers)
        return bool(pa) and bool(pb) and not pa & pb and len(pa | pb) == subjects.PARTITIONS

    await until(split, what="partitions split")
    a_part = min(a.replica.workers)
    # A tree in one of a's partitions.
    name = next(f"svc{i}" for i in range(1000)
                if subjects.partition_of(cluster, f"{cluster}--default-svc{i}") == a_part)
    tree = l4_tree(cluster, name)

    # a dies without a word: no release, no leave; its connection just goes.
    async def no_goodbye() -> None:
        return None

    a.replica.shutdown = no_goodbye  # type: ignore[method-assign]
    a.task.cancel()
    await asyncio.gather(a.task, return_exceptions=True)
    await a.bus.nc.close()

    t0 = time.monotonic()
    await _publish(b.bus, tree)
    await until(lambda: len(b.replica.workers) == subjects.PARTITIONS, timeout=20, what="b takes over")
    assert time.monotonic() - t0 < 10, "leases expire within seconds"

    async def applied() -> bool:
        o = await _outcome(b.bus, tree)
        return o is not None and o.ok and o.checksum == tree.checksum

    await until(applied, what="b applies the tree that was a's")
    assert api_calls(sim_admin, writes_only=True).count(("POST", "macro")) == 1


async def test_a_failed_tree_is_retried_until_it_converges_and_blocks_no_other(
    nats_server: NatsServer, sim: SimServer, sim_admin: SimAdmin, replicas: Callable[..., Awaitable[Running]],
) -> None:
    cluster = "rep-retry"
    run = await replicas(sim, cluster, "rr")
    bad, good = l4_tree(cluster, "bad"), l4_tree(cluster, "good")
    sim_admin.add_fault(method="POST", path="/api/macro", status=400, body={"error": "No available free IPs"},
                        count=2)
    await _publish(run.bus, bad)

    async def failed() -> ApplyOutcome | None:
        o = await _outcome(run.bus, bad)
        return o if o is not None and not o.ok else None

    err = await until(failed, what="the failure reported")
    assert err.error is not None and "No available free IPs" in err.error and err.error_status == 400
    await _publish(run.bus, good)

    async def ok(t: VsTree) -> bool:
        o = await _outcome(run.bus, t)
        return o is not None and o.ok and o.checksum == t.checksum

    await until(lambda: ok(good), what="another tree applied meanwhile")
    await until(lambda: ok(bad), what="the failed tree retried until it succeeds")
    assert len(our_objects(sim_admin, f"{cluster}--default-bad")) == 4


async def test_leases_are_renewed_and_trees_applied_while_the_tick_loop_is_held_up(
    sim: SimServer, replicas: Callable[..., Awaitable[Running]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seen under load: the tick loop ran late (cache reload, consumers' creation), the renewals waited
    for it, the fence refused every tree, and the leases expired: trees on the bus were not applied."""
    cluster = "rep-late-tick"
    run = await replicas(sim, cluster, "r1")
    replica, bus = run.replica, run.bus
    await until(lambda: len(replica.workers) == subjects.PARTITIONS, what="all partitions")
    workers = dict(replica.workers)
    entered, release = asyncio.Event(), asyncio.Event()
    answer = replica._answer

    async def held_up() -> None:  # a tick step that takes longer than the leases last
        entered.set()
        await release.wait()
        await answer()

    monkeypatch.setattr(replica, "_answer", held_up)
    try:
        await until(entered.is_set, what="the tick loop held up")
        since = time.monotonic()
        # Past the lease's TTL with the tick loop still held up.
        await until(lambda: time.monotonic() - since > replica.timing.lease_ttl, what="a lease's lifetime")
        tree = l4_tree(cluster, "late-tick")
        await _publish(bus, tree)

        async def applied() -> bool:
            o = await _outcome(bus, tree)
            return o is not None and o.ok and o.checksum == tree.checksum

        await until(applied, timeout=30, what="the tree applied while the tick loop is held up")
        assert not release.is_set()
        # Nothing was lost and taken again meanwhile.
        assert replica.workers == workers and set(replica.leases.held) == set(workers)
    finally:
        release.set()


async def test_an_outcome_unlike_the_last_one_published_is_published_without_reading_the_subject(
    sim: SimServer, replicas: Callable[..., Awaitable[Running]],
) -> None:
    cluster = "rep-memo"
    run = await replicas(sim, cluster, "memo")
    await until(lambda: len(run.replica.workers) > 0, what="partitions taken")
    reads: list[str] = []
    last = run.replica.bus.last
    subj = subjects.outcome(cluster, "admin", "memo-vs")
    other = subjects.outcome(cluster, "admin", "made-vs")

    async def counted(subject: str) -> Any:
        if subject in (subj, other):  # the replica reads other subjects too (its resync round)
            reads.append(subject)
        return await last(subject)

    run.replica.bus.last = counted  # type: ignore[method-assign]
    one = ApplyOutcome(cluster=cluster, tenant="admin", vs_name="memo-vs", checksum="c1", ok=True, writes=0)
    two = one.model_copy(update={"checksum": "c2", "writes": 1})
    await run.replica.publish(one)  # nothing known of the subject, nothing written: read it first
    assert reads == [subj]
    await run.replica.publish(two)  # unlike what this replica published there: no read
    assert reads == [subj]
    seq = (await last(subj)).stream_seq
    await run.replica.publish(two.model_copy(update={"writes": 0}))  # the same state again: read, not published
    assert reads == [subj, subj] and (await last(subj)).stream_seq == seq
    part = next(iter(run.replica.workers))
    await run.replica._drop(part, release=True)
    await until(lambda: part in run.replica.workers, what="the partition taken again")
    await run.replica.publish(one)  # after a partition is taken, what it published is not trusted
    assert reads == [subj, subj, subj]
    assert decode((await last(subj)).data, ApplyOutcome).checksum == "c1"
    # An apply that wrote (a start's creations: new uuids) is news without a read, even unknown.
    await run.replica.publish(one.model_copy(update={"vs_name": "made-vs", "writes": 1}))
    assert reads == [subj, subj, subj] and await last(other) is not None


async def test_gc_waits_for_the_trees_being_applied(
    nats_server: NatsServer, sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient],
    replicas: Callable[..., Awaitable[Running]],
) -> None:
    """GC is due moments after partition 0 is held, when a start has thousands of trees to apply: reading
    every tree for it then slowed their creation. It waits until none is waiting or being applied."""
    cluster = "rep-gc-wait"
    assert (await make_applier(sim, cluster, client_factory).apply(l4_tree(cluster, "orphan"))).ok
    bus = await Bus.connect(nats_server.url, "publisher")
    await bus.ensure_streams()
    slow = l4_tree(cluster, "slow")
    await _publish(bus, slow)
    await bus.publish(subjects.trees_synced(cluster), TreesSynced(
        cluster=cluster, epoch="e", vs_names=(slow.vs_name,), incarnation=await incarnation(bus, subjects.STREAM_AVI)))
    await bus.close()
    sim_admin.add_fault(method="POST", path="/api/macro", latency_ms=2000, count=1)
    sim_admin.reset_log()
    run = await replicas(sim, cluster, "gw")
    await until(lambda: not our_objects(sim_admin, f"{cluster}--default-orphan"), what="orphan collected")
    await until(lambda: _outcome(run.bus, slow), what="the slow tree applied")
    created = [r for r in sim_admin.requests() if r["method"] == "POST" and r["path"].startswith("/api/macro")]
    deleted = [r for r in sim_admin.requests() if r["method"] == "DELETE"]
    assert len(created) == 1 and deleted
    assert min(float(r["start"]) for r in deleted) >= float(created[0]["end"]), "GC ran while a tree was applied"
    assert run.replica.gc_runs == 1, "and then once, not refused in between"
