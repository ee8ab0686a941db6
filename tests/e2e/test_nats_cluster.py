"""The pipeline on a 3-node NATS cluster (streams x3): losing one node loses no change and stalls only for the failover.

Real processes throughout: three clustered nats-servers, kube-apiserver/etcd,
the simulator and the four services, configured with ``albus.natsReplicas: 3``
and given every node's URL. A node is killed with SIGKILL while Service
changes are in flight; the changes keep coming; the controller must end
holding exactly the offline translation of the cluster, and the killed node,
started again, must catch up.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from albus.broker_cluster import NatsCluster
from services.common import subjects
from services.syncer.budget import BUDGET_BUCKET
from services.syncer.leases import LEASES_BUCKET, MEMBERS_BUCKET
from tests.e2e.conftest import e2e_pipeline
from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import lb_service

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

CONVERGE_S = 120.0
# What albus keeps on the bus: its streams and the syncers' KV buckets (streams named KV_<bucket>).
REPLICATED = [*subjects.STREAMS, *(f"KV_{b}" for b in (MEMBERS_BUCKET, LEASES_BUCKET, BUDGET_BUCKET))]


@pytest.fixture
def cluster_pipeline(control_plane: Any, nats_cluster: NatsCluster, tmp_path: Path,
                     request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    with e2e_pipeline(control_plane, nats_cluster.url, tmp_path, [], request, albus={"natsReplicas": 3}) as p:
        yield p


def _ports(port: int) -> list[dict[str, Any]]:
    return [{"name": "tcp", "port": port, "protocol": "TCP"}]


def converged(p: Pipeline) -> bool:
    want = p.expected()
    return p.actual() == want and all(p.vips(s.metadata.name) for s in p.core.list_namespaced_service(p.namespace).items)


def seconds_until_applied(p: Pipeline, name: str, since: float) -> float:
    """Create Service ``name`` and wait for its virtual service: seconds from ``since`` (monotonic)."""
    p.core.create_namespaced_service(p.namespace, lb_service(name, _ports(7000)))
    vs = f"{p.cluster}--{p.namespace}-{name}"
    wait_for(lambda: vs in p.objects("virtualservice"), CONVERGE_S, f"the virtual service of {name}", interval=0.2)
    return time.monotonic() - since


def copies(c: NatsCluster, stream: str) -> tuple[int, int]:
    """(configured replicas, copies its leader counts current, itself included) of ``stream``."""
    leader = c.stream_leader(stream)
    if leader is None:
        return (0, 0)
    s = c.streams(leader)[stream]
    current = 1 + sum(1 for r in s["cluster"].get("replicas") or [] if r.get("current"))
    return (int(s["config"]["num_replicas"]), current)


def _boxed(node: int | None) -> list[int] | None:
    """A node index that ``wait_for`` takes as found even when it is 0."""
    return None if node is None else [node]


def same_last_seq(c: NatsCluster, node: int, stream: str) -> bool:
    leader = c.stream_leader(stream)
    return leader is not None and (c.streams(node)[stream]["state"]["last_seq"]
                                   == c.streams(leader)[stream]["state"]["last_seq"])


def kill_during_changes(p: Pipeline, c: NatsCluster, victim: int, round_: int) -> tuple[float, float]:
    """Change Services around a kill -9 of node ``victim``; (probe latency, time to converge), from the kill."""
    core, ns = p.core, p.namespace
    names = sorted(s.metadata.name for s in core.list_namespaced_service(ns).items if s.metadata.name.startswith("s"))
    # In flight when the node dies: the watcher, translator and syncer are still busy with these.
    p.set_port(names[0], 7100 + round_)
    core.create_namespaced_service(ns, lb_service(f"s-new{round_}a", _ports(7000)))
    c.kill_node(victim)
    killed = time.monotonic()
    # And after: the stream may have no leader for a few seconds.
    core.delete_namespaced_service(names[1], ns)
    p.set_port(names[2], 7200 + round_)
    core.create_namespaced_service(ns, lb_service(f"s-new{round_}b", _ports(7000)))
    probe = seconds_until_applied(p, f"probe{round_}", killed)
    wait_for(lambda: converged(p), CONVERGE_S, "the controller to hold exactly the translation", interval=0.5)
    return probe, time.monotonic() - killed


def test_killing_nats_nodes_loses_no_change(cluster_pipeline: Pipeline, nats_cluster: NatsCluster) -> None:
    p, c = cluster_pipeline, nats_cluster
    for i in range(4):
        p.core.create_namespaced_service(p.namespace, lb_service(f"s{i}", _ports(7000)))
    wait_for(lambda: converged(p), CONVERGE_S, "the first Services to converge", interval=0.5)
    # Every stream and bucket the services made has three copies, all current.
    for name in REPLICATED:
        wait_for(lambda n=name: copies(c, n) == (3, 3), 30, f"three current copies of {name}")
    baseline = seconds_until_applied(p, "probe", time.monotonic())

    measured: list[tuple[str, float, float]] = []
    # The node that stores the Kubernetes changes first, then whichever leads JetStream's meta group.
    for round_, (what, leader_of) in enumerate((("ALBUS_K8S leader", lambda: c.stream_leader("ALBUS_K8S")),
                                                ("meta leader", c.meta_leader))):
        victim = wait_for(lambda f=leader_of: _boxed(f()), 30, f"the {what}")[0]
        probe, converge = kill_during_changes(p, c, victim, round_)
        measured.append((f"{what} (node {victim})", probe, converge))
        # The survivors carry on with two copies; the dead node's come back when it does.
        c.start_node(victim)  # returns once every leader counts it current again
        for name in REPLICATED:
            wait_for(lambda n=name: copies(c, n) == (3, 3), 60, f"{name} current on all three nodes again")
        for name in ("ALBUS_K8S", "ALBUS_AVI"):
            wait_for(lambda n=name, v=victim: same_last_seq(c, v, n), 30, f"node {victim} holding all of {name}")

    # Nothing stopped: every service rode through both failovers without exiting.
    assert {n: c.alive for n, c in p.children.items()} == dict.fromkeys(p.children, True)
    print(f"\nNATS failover: a Service applied in {baseline:.1f}s with all nodes up")
    for what, probe, converge in measured:
        print(f"  kill -9 {what}: a Service created just after was applied {probe:.1f}s after the kill; "
              f"everything converged {converge:.1f}s after the kill")
