"""Three clusters, identical namespaces and Service names, one controller.

Each cluster has its own kube-apiserver and etcd, its own watcher,
translator and health (as that cluster's NATS identity), and its own
syncer (as the syncer pool's identity); cluster C lives in tenant
``team-c``. The controller must hold each cluster's objects separately, and
one cluster's deletions must touch nothing of the others.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import OBJECT_TYPES, Names, wait_for
from tests.e2e.kube import lb_service, run_pod
from tests.multicluster.fleet import APP_NS, SELECTOR, Member, ensure_namespace

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

WORKLOAD = {
    "web": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
    "dns": [{"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}],
}
CONVERGE_S = 180  # three clusters' worth of processes share two busy cores


def deploy(m: Member, index: int) -> None:
    """The same namespace, Services and pod names in every cluster (pod IPs differ)."""
    ensure_namespace(m.core, APP_NS, SELECTOR)
    existing = {s.metadata.name for s in m.core.list_namespaced_service(APP_NS).items}
    pods = {p.metadata.name for p in m.core.list_namespaced_pod(APP_NS).items}
    for name, ports in WORKLOAD.items():
        if name not in existing:
            m.core.create_namespaced_service(APP_NS, lb_service(name, ports))
        if f"{name}-1" not in pods:
            run_pod(m.core, APP_NS, f"{name}-1", {"app": name}, f"10.244.{index}.{len(name)}",
                    [(p["name"], p["targetPort"], p["protocol"]) for p in ports])


def converged(m: Member) -> Names | None:
    want = m.expected()
    return want if m.actual() == want and all(m.vips(n) for n in WORKLOAD) else None


def deploy_everywhere(fleet: dict[str, Member]) -> dict[str, Names]:
    for i, m in enumerate(fleet.values(), start=1):
        deploy(m, i)
    return {name: wait_for(lambda m=m: converged(m), CONVERGE_S, f"cluster {name} converged")
            for name, m in fleet.items()}


def owners(stamps: dict[str, dict[tuple[str, str], tuple[str, Any]]]) -> dict[str, str]:
    """uuid → cluster, from each cluster's :meth:`Member.stamps`."""
    return {uuid: cluster for cluster, objs in stamps.items() for uuid, _ in objs.values()}


def writes_by_cluster(m: Member, known: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """The controller writes since the last log reset, by the cluster prefix of the object written.

    A call the controller answered before finding its object (a DELETE answered 404) has no name in
    the log: its uuid says whose object it was meant for.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for w in m.writes():
        name = str(w.get("name") or "")
        cluster = name.split("--", 1)[0] if "--" in name else known.get(str(w.get("uuid")), "?")
        out.setdefault(cluster, []).append(w)
    return out


def assert_only_deleted(m: Member, cluster: str, had: set[tuple[str, str]], known: dict[str, str]) -> None:
    """Every controller write since the log reset was to ``cluster``'s objects, and each of them was deleted."""
    writes = writes_by_cluster(m, known)
    assert set(writes) == {cluster}, {k: [(w["method"], w.get("type"), w.get("name"), w.get("uuid"), w.get("status"))
                                          for w in v] for k, v in writes.items()}
    deleted = {(str(w.get("type")), str(w.get("name"))) for w in writes[cluster] if w["method"] == "DELETE"
               and w.get("name")}
    assert deleted == had, (deleted ^ had)


def test_identical_names_in_three_clusters_stay_separate(fleet: dict[str, Member]) -> None:
    names = deploy_everywhere(fleet)
    for cluster, m in fleet.items():
        assert names[cluster]["virtualservice"] == {f"{cluster}--{APP_NS}-{n}" for n in WORKLOAD}
        for t in OBJECT_TYPES:
            for name, obj in m.objects(t).items():
                assert name.startswith(f"{cluster}--")
                assert obj["created_by"] == f"ako-{cluster}"
                assert obj["markers"][0] == {"key": "clustername", "values": [cluster]}
                assert obj["tenant_ref"].rsplit("#", 1)[-1] == m.tenant
    # Three clusters, three disjoint sets of objects: no (type, name) is shared.
    every = [(t, n) for names_ in names.values() for t in OBJECT_TYPES for n in names_[t]]
    assert len(every) == len(set(every))


def test_deleting_every_service_of_b_removes_exactly_bs_objects(fleet: dict[str, Member]) -> None:
    deploy_everywhere(fleet)
    a, b, c = fleet.values()
    stamps = {m.cluster: m.stamps() for m in (a, b, c)}
    before = {m.cluster: stamps[m.cluster] for m in (a, c)}
    b_had = set(stamps[b.cluster])
    known = owners(stamps)
    a.reset_log()
    for name in WORKLOAD:
        b.core.delete_namespaced_service(name, APP_NS)
    wait_for(lambda: not any(b.actual().values()), CONVERGE_S, "every object of cluster B gone")
    for m in (a, c):
        assert m.stamps() == before[m.cluster], f"cluster {m.cluster}'s objects were touched"
    assert_only_deleted(a, b.cluster, b_had, known)


def test_wiping_cs_namespace_while_its_watcher_is_down_removes_only_cs_objects(fleet: dict[str, Member]) -> None:
    deploy_everywhere(fleet)
    a, b, c = fleet.values()
    assert any(c.actual().values())
    stamps = {m.cluster: m.stamps() for m in (a, b, c)}
    before = {m.cluster: stamps[m.cluster] for m in (a, b)}
    c_had = set(stamps[c.cluster])
    known = owners(stamps)
    c.children["watcher"].stop()
    c.core.delete_namespace(APP_NS)
    # No kubelet runs the pods: finish their deletion as one would, or the namespace never goes.
    for pod in c.core.list_namespaced_pod(APP_NS).items:
        c.core.delete_namespaced_pod(pod.metadata.name, APP_NS, grace_period_seconds=0)
    wait_for(lambda: APP_NS not in {n.metadata.name for n in c.core.list_namespace().items}, CONVERGE_S,
             "cluster C's namespace deleted")
    a.reset_log()
    c.start_one("watcher")
    wait_for(lambda: not any(c.actual().values()), CONVERGE_S, "every object of cluster C gone")
    for m in (a, b):
        assert m.stamps() == before[m.cluster], f"cluster {m.cluster}'s objects were touched"
    assert_only_deleted(a, c.cluster, c_had, known)
