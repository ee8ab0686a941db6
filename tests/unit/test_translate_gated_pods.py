"""A pod held back only by albus's readiness gate gets an enabled member, whatever order its inputs come in."""

from __future__ import annotations

import itertools
from typing import Any

from services.common.contracts import KubeObject, ObjRef, VsTree
from services.common.readiness_gate import GATE_TYPE
from services.translator.engine import Changes, Engine
from tests.unit.test_translate_l4 import CFG, _ko, svc


def pod(name: str, containers_ready: bool | None = True, gate: bool = True, uid: str = "",
        terminating: bool = False) -> dict[str, Any]:
    """A pod as the watcher publishes it (services/watcher/trim.py: trim_gated_pod)."""
    meta: dict[str, Any] = {"name": name, "namespace": "shop", "uid": uid or f"uid-{name}"}
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    out: dict[str, Any] = {"kind": "Pod", "metadata": meta,
                           "spec": {"readinessGates": [{"conditionType": GATE_TYPE}] if gate else []}}
    if containers_ready is not None:
        out["status"] = {"conditions": [{"type": "ContainersReady",
                                         "status": "True" if containers_ready else "False"}]}
    return out


def slice_(*eps: tuple[str, str, dict[str, Any]], name: str = "web-1", service: str = "web") -> dict[str, Any]:
    """Endpoints (ip, pod name, conditions) naming their pods, as the EndpointSlice controller writes them."""
    return {
        "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": name, "namespace": "shop", "labels": {"kubernetes.io/service-name": service}},
        "endpoints": [{"addresses": [ip], "conditions": cond,
                       "targetRef": {"kind": "Pod", "namespace": "shop", "name": p, "uid": f"uid-{p}"}}
                      for ip, p, cond in eps],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


HTTP = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
NOT_READY = {"ready": False, "serving": False, "terminating": False}
READY = {"ready": True, "serving": True, "terminating": False}


class OnBus(Engine):
    """An engine whose flushed trees are kept, as the bus would (the engine keeps only their summary)."""

    def __init__(self) -> None:
        super().__init__(CFG)
        self.bus: dict[str, VsTree] = {}

    def flush(self, limit: int | None = None) -> Changes:
        out = super().flush(limit)
        self.bus.update((t.vs_name, t) for t in out.trees)
        return out


def enabled(e: OnBus) -> dict[str, bool]:
    """Each member's ``enabled`` in the Service's pool, as last published."""
    tree = e.bus["c1--shop-web"]
    (pool,) = [o.body for o in tree.objects if o.type == "pool"]
    return {s["ip"]["addr"]: s["enabled"] for s in pool["servers"]}


def run(docs: list[KubeObject]) -> OnBus:
    e = OnBus()
    for ko in docs:
        e.observe(ko)
        e.flush()  # a flush after every message: the worst case for order
    return e


def test_gated_pod_with_ready_containers_is_enabled_and_nothing_else_changes() -> None:
    sl = slice_(("10.0.0.1", "a", NOT_READY), ("10.0.0.2", "b", NOT_READY), ("10.0.0.3", "c", NOT_READY),
                ("10.0.0.4", "d", NOT_READY), ("10.0.0.5", "e", {"ready": False, "terminating": True}),
                ("10.0.0.6", "f", READY), ("10.0.0.7", "g", NOT_READY))
    e = run([_ko(svc(ports=HTTP)), _ko(sl),
             _ko(pod("a")),  # gated, containers ready: enabled
             _ko(pod("b", containers_ready=False)),  # its containers are not ready
             _ko(pod("c", terminating=True)),  # being deleted
             _ko(pod("d", uid="another")),  # a pod of that name, but not the endpoint's
             _ko(pod("e")),  # the endpoint is terminating
             _ko(pod("f", containers_ready=None))])  # ready endpoints stay ready; g: no gated pod published
    assert enabled(e) == {"10.0.0.1": True, "10.0.0.2": False, "10.0.0.3": False, "10.0.0.4": False,
                          "10.0.0.5": False, "10.0.0.6": True, "10.0.0.7": False}


def test_any_order_of_pod_slice_and_service_gives_the_same_tree() -> None:
    final = [_ko(svc(ports=HTTP)),
             _ko(slice_(("10.0.0.1", "a", NOT_READY), ("10.0.0.2", "b", NOT_READY))),
             _ko(pod("a")), _ko(pod("b", containers_ready=False))]
    want = run(final).published["c1--shop-web"].checksum
    for order in itertools.permutations(final):
        e = run(list(order))
        assert e.published["c1--shop-web"].checksum == want, [k.kind for k in order]
        assert enabled(e) == {"10.0.0.1": True, "10.0.0.2": False}


def test_a_pods_changes_retranslate_its_service_only_and_its_tombstone_disables_the_member() -> None:
    e = run([_ko(svc(ports=HTTP)), _ko(svc("other", ports=HTTP)),
             _ko(slice_(("10.0.0.1", "a", NOT_READY))),
             _ko(slice_(("10.0.0.9", "z", NOT_READY), name="other-1", service="other"))])
    assert enabled(e) == {"10.0.0.1": False}
    assert e.observe(_ko(pod("a", containers_ready=False))) == {ObjRef(kind="Service", namespace="shop",
                                                                       name="web")}
    assert not e.flush().trees  # still disabled: nothing to publish
    e.observe(_ko(pod("a")))
    (tree,) = e.flush().trees
    assert tree.vs_name == "c1--shop-web" and enabled(e) == {"10.0.0.1": True}
    # The gate opened: the pod is Ready, and so is its endpoint; the member stays enabled, nothing to publish.
    e.observe(_ko(slice_(("10.0.0.1", "a", READY))))
    assert not e.flush().trees
    e.observe(_ko(slice_(("10.0.0.1", "a", NOT_READY))))
    assert not e.flush().trees
    # The pod is gone (or lost the gate): its tombstone disables the member again.
    e.observe(_ko(pod("a"), deleted=True))
    e.flush()
    assert enabled(e) == {"10.0.0.1": False}
    # A slice that no longer names the pod: its changes touch nothing.
    e.observe(_ko(slice_(("10.0.0.2", "b", NOT_READY))))
    e.flush()
    assert e.observe(_ko(pod("a"))) == set()
