"""The bus on a real 3-node NATS cluster: streams replicated x3, a node lost and caught up, R1 scaled to R3."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from albus import natsconfig
from albus.broker_cluster import NatsCluster
from services.common import subjects
from services.common.bus import Bus, BusRefused
from services.common.contracts import KubeObject, decode
from services.syncer.leases import open_bucket
from tests.e2e.harness import wait_for


def _svc(name: str, rv: str) -> KubeObject:
    return KubeObject(cluster="nc", kind="Service", namespace="default", name=name, uid=f"u-{name}",
                      resource_version=rv, obj={"metadata": {"name": name}})


def _subject(name: str) -> str:
    return subjects.k8s_object("nc", "Service", "default", name)


async def until(check: Callable[[], object], timeout: float, what: str) -> None:
    """``wait_for`` in a thread: the monitoring calls block, the bus's event loop must not."""
    await asyncio.to_thread(wait_for, check, timeout, what)


def replicas_current(c: NatsCluster, stream: str) -> int:
    """How many copies of ``stream`` its leader counts as current, itself included (0: no leader)."""
    leader = c.stream_leader(stream)
    if leader is None:
        return 0
    cl = c.streams(leader)[stream]["cluster"]
    return 1 + sum(1 for r in cl.get("replicas") or [] if r.get("current"))


async def test_every_stream_has_three_current_copies_and_outlives_its_leader(nats_cluster: NatsCluster) -> None:
    c = nats_cluster
    bus = await Bus.connect(c.url, "cluster-test", replicas=3)
    try:
        await bus.ensure_streams()
        for name in subjects.STREAMS:
            assert (await bus.js.stream_info(name)).config.num_replicas == 3, name
            await until(lambda n=name: replicas_current(c, n) == 3, 30, f"three current copies of {name}")
        for i in range(20):
            await bus.publish(_subject(f"s{i}"), _svc(f"s{i}", "1"))

        victim = c.stream_leader("ALBUS_K8S")
        assert victim is not None
        c.kill_node(victim)
        await until(lambda: c.stream_leader("ALBUS_K8S") not in (None, victim), 60, "a new leader of ALBUS_K8S")
        # Reading creates a consumer, which needs the meta leader: the victim may have been that too.
        await until(lambda: c.meta_leader() not in (None, victim), 60, "a JetStream meta leader")
        # Everything acknowledged before the crash is there, and the stream takes writes again.
        snap = await bus.snapshot(subjects.k8s_cluster("nc"))
        assert sorted(decode(d.data, KubeObject).name for d in snap.values()) == sorted(f"s{i}" for i in range(20))
        for i in range(20, 30):
            await bus.publish(_subject(f"s{i}"), _svc(f"s{i}", "1"))

        await asyncio.to_thread(c.start_node, victim)  # returns once the leaders count it current again
        assert c.caught_up(victim)
        mine = c.streams(victim)["ALBUS_K8S"]["state"]
        theirs = c.streams(c.stream_leader("ALBUS_K8S"))["ALBUS_K8S"]["state"]
        assert mine["last_seq"] == theirs["last_seq"] and mine["messages"] == theirs["messages"] == 30
    finally:
        await bus.close()


async def test_an_r1_stream_is_scaled_to_r3_in_place_keeping_its_messages(nats_cluster: NatsCluster) -> None:
    """Existing single-copy streams and buckets (albus run before with natsReplicas 1) gain copies, losing nothing."""
    c = nats_cluster
    one = await Bus.connect(c.url, "r1", replicas=1)
    three = await Bus.connect(c.url, "r3", replicas=3)
    try:
        await one.ensure_streams()
        probe = await open_bucket(one, "albus_scale_probe", ttl=60)
        # Returned led: a write right away found no responder before (a CI failure).
        assert (await one.js.stream_info("KV_albus_scale_probe")).cluster.leader
        await probe.put("k", b"v")
        for i in range(10):
            await one.publish(_subject(f"old{i}"), _svc(f"old{i}", "1"))
        assert (await one.js.stream_info("ALBUS_K8S")).config.num_replicas == 1
        await three.ensure_streams()
        info = await three.js.stream_info("ALBUS_K8S")
        assert info.config.num_replicas == 3
        await until(lambda: replicas_current(c, "ALBUS_K8S") == 3, 30, "three current copies after the scale-up")
        for i in range(c.size):
            assert c.streams(i)["ALBUS_K8S"]["state"]["messages"] == 10, f"node {i}"
        # The syncers' KV buckets likewise, when a replica opens them.
        kv = await open_bucket(three, "albus_scale_probe", ttl=60)
        assert (await three.js.stream_info("KV_albus_scale_probe")).config.num_replicas == 3
        assert (await kv.get("k")).value == b"v"
        await until(lambda: replicas_current(c, "KV_albus_scale_probe") == 3, 30, "three copies of the bucket")
    finally:
        await one.close()
        await three.close()


async def test_every_node_enforces_the_same_per_cluster_identities(tmp_path: Path) -> None:
    ids = {i.user: i for i in natsconfig.identities(["east", "west"])}
    with NatsCluster(tmp_path / "nats", identities=list(ids.values())) as c:
        pool = await Bus.connect(ids[natsconfig.SYNCER_USER].url(c.url), "pool", replicas=3)
        await pool.ensure_streams()
        # Nodes do not advertise each other: an address learnt that way has no credentials, and a
        # reconnect to it would fail authorization. NATS_URL lists every node with them.
        assert pool.nc.discovered_servers == []
        east_url = ids[natsconfig.cluster_user("east")].url
        for i, node in enumerate(c.nodes):
            east = await Bus.connect(east_url(node.url), f"east-on-{i}", replicas=3)
            try:
                await east.publish(subjects.k8s_object("east", "Service", "default", f"n{i}"), _svc(f"n{i}", "1"))
                try:
                    await asyncio.wait_for(east.publish(subjects.k8s_object("west", "Service", "default", "x"),
                                                        _svc("x", "1")), 30)
                except BusRefused:
                    pass
                else:
                    raise AssertionError(f"node {i} let east publish on west's subjects")
            finally:
                await east.close()
        snap = await pool.snapshot("k8s.>")
        assert sorted(snap) == sorted(subjects.k8s_object("east", "Service", "default", f"n{i}") for i in range(3))
        await pool.close()




async def test_a_service_configured_with_fewer_replicas_never_lowers_a_stream(nats_cluster: NatsCluster) -> None:
    three = await Bus.connect(nats_cluster.url, "r3", replicas=3)
    one = await Bus.connect(nats_cluster.url, "r1", replicas=1)
    try:
        await three.ensure_streams()
        await one.ensure_streams()
        for name in subjects.STREAMS:
            assert (await one.js.stream_info(name)).config.num_replicas == 3, name
    finally:
        await one.close()
        await three.close()


async def test_a_cluster_identity_that_may_not_raise_replicas_goes_on(tmp_path: Path) -> None:
    """A cluster's services started with natsReplicas 3 before the pool raised the streams: no crash."""
    ids = {i.user: i for i in natsconfig.identities(["east"])}
    with NatsCluster(tmp_path / "nats", identities=list(ids.values())) as c:
        pool = await Bus.connect(ids[natsconfig.SYNCER_USER].url(c.url), "pool", replicas=1)
        east = await Bus.connect(ids[natsconfig.cluster_user("east")].url(c.url), "east", replicas=3)
        try:
            await pool.ensure_streams()
            await east.ensure_streams()  # may not update: logs it and goes on
            assert (await east.js.stream_info("ALBUS_K8S")).config.num_replicas == 1
            await east.publish(subjects.k8s_object("east", "Service", "default", "x"), _svc("x", "1"))
        finally:
            await east.close()
            await pool.close()


async def test_a_service_starting_while_jetstream_has_no_quorum_waits_for_it(nats_cluster: NatsCluster) -> None:
    """Streams are ensured once the cluster answers again: a service that exited on the first timeout
    left the pipeline without it when every service started during the cluster's first election."""
    c = nats_cluster
    bus = await Bus.connect(c.url, "early", replicas=3)
    try:
        c.stop_node(1)
        c.stop_node(2)  # one node of three: no meta leader, JetStream cannot answer
        task = asyncio.create_task(bus.ensure_streams())
        done, _ = await asyncio.wait([task], timeout=8)  # past a JetStream request's 5 s timeout
        assert not done, f"ensure_streams gave up: {task.exception() if task.done() else ''}"
        await asyncio.to_thread(c.start_node, 1)
        await asyncio.to_thread(c.start_node, 2)
        await asyncio.wait_for(task, 120)
        for name in subjects.STREAMS:
            assert (await bus.js.stream_info(name)).config.num_replicas == 3, name
    finally:
        await bus.close()
