"""Another controller's Service keeps its status: health writes only on Services albus handles.

A LoadBalancer Service (no class: albus's by class) in a namespace the
namespace selector does not admit, whose status another controller set (a
VIP, its own condition and, as a second albus install on the cluster would,
albus's condition types). The watcher publishes its EndpointSlice as it
publishes every namespace's; health once reconciled any Service whose slice
it saw and nulled the VIP (commit 24e5a4f). Four service processes, real
kube-apiserver with the real EndpointSlice controller, the simulator.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import lb_service, run_pod
from tests.e2e.lb_status import condition, events

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

PORTS = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
POD_PORTS = [("http", 8080, "TCP")]
FOREIGN_VIP = "192.0.2.7"
T0 = "2026-01-01T00:00:00Z"
FOREIGN_CONDITIONS = [
    {"type": "example.com/LoadBalancerReady", "status": "True", "reason": "Serving", "message": "theirs",
     "lastTransitionTime": T0},
    # What another albus install (another cluster name, another selector) writes.
    {"type": "albus.io/LoadBalancerProgrammed", "status": "True", "reason": "Programmed",
     "message": f"virtualservice other--apps-web has VIP {FOREIGN_VIP}", "lastTransitionTime": T0},
]


def _slice_ips(disc: client.DiscoveryV1Api, ns: str, service: str) -> set[str]:
    slices = disc.list_namespaced_endpoint_slice(ns, label_selector=f"kubernetes.io/service-name={service}").items
    return {a for s in slices for e in (s.endpoints or []) for a in e.addresses}


def _status(p: Pipeline, ns: str, name: str) -> dict[str, Any]:
    s = p.api.sanitize_for_serialization(p.core.read_namespaced_service_status(name, ns))
    return {"resourceVersion": s["metadata"]["resourceVersion"], "status": s.get("status") or {}}


def test_service_outside_the_selector_keeps_its_status_and_gets_no_event(pipeline: Pipeline) -> None:
    p = pipeline
    foreign_ns = f"{p.cluster}-foreign"  # no albus-e2e label: outside the selector
    p.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=foreign_ns)))
    try:
        p.core.create_namespaced_service(foreign_ns, lb_service("web", PORTS))
        # Another controller's status, then the pods: the slice changes after it is there.
        p.core.patch_namespaced_service_status("web", foreign_ns, {"status": {
            "loadBalancer": {"ingress": [{"ip": FOREIGN_VIP, "ipMode": "VIP"}]},
            "conditions": FOREIGN_CONDITIONS}})
        before = _status(p, foreign_ns, "web")
        run_pod(p.core, foreign_ns, "web-0", {"app": "web"}, "10.244.9.10", POD_PORTS)
        wait_for(lambda: _slice_ips(p.discovery, foreign_ns, "web") == {"10.244.9.10"}, 60,
                 "the foreign Service's EndpointSlice with its pod")

        # albus's own Service converges (its slices reach health after the foreign one's).
        p.core.create_namespaced_service(p.namespace, lb_service("web", PORTS))
        run_pod(p.core, p.namespace, "web-0", {"app": "web"}, "10.244.1.10", POD_PORTS)
        wait_for(lambda: p.vips("web"), 60, "albus's VIP on its own Service")
        wait_for(lambda: (c := condition(p, "web")) and c["status"] == "True", 60,
                 "albus's Programmed condition on its own Service")
        # One more change of the foreign slice, then of albus's: health follows them in this order.
        run_pod(p.core, foreign_ns, "web-1", {"app": "web"}, "10.244.9.11", POD_PORTS)
        wait_for(lambda: _slice_ips(p.discovery, foreign_ns, "web") == {"10.244.9.10", "10.244.9.11"}, 60,
                 "the foreign slice with both pods")
        run_pod(p.core, p.namespace, "web-1", {"app": "web"}, "10.244.1.11", POD_PORTS)
        pool = f"{p.cluster}--{p.namespace}-web-TCP-80"
        wait_for(lambda: len(p.objects("pool").get(pool, {}).get("servers") or []) == 2, 60,
                 "albus's pool with both of its pods")
        wait_for(lambda: "2 of 2 members" in str((next(
            (c for c in _status(p, p.namespace, "web")["status"].get("conditions") or []
             if c["type"] == "albus.io/LoadBalancerReady"), None) or {}).get("message")), 60,
            "health's Ready condition counting both of albus's members")

        after = _status(p, foreign_ns, "web")
        assert after == before, "health wrote the status of a Service outside its namespace selector"
        assert [i["ip"] for i in after["status"]["loadBalancer"]["ingress"]] == [FOREIGN_VIP]
        assert events(p, "web", foreign_ns) == []
        assert "foreign/web" not in p.logs()
    finally:
        p.core.delete_namespace(foreign_ns)


def _albus_conditions(status: dict[str, Any]) -> list[str]:
    return [c["type"] for c in status.get("conditions") or [] if c["type"].startswith("albus.io/")]


def test_unlabelled_namespace_releases_albus_status_once(pipeline: Pipeline) -> None:
    """A Service that stops being albus's loses albus's conditions and VIP once; a VIP written later stays."""
    p = pipeline
    p.core.create_namespaced_service(p.namespace, lb_service("web", PORTS))
    run_pod(p.core, p.namespace, "web-0", {"app": "web"}, "10.244.1.10", POD_PORTS)
    vip = wait_for(lambda: p.vips("web"), 60, "albus's VIP")
    wait_for(lambda: (c := condition(p, "web")) and c["status"] == "True", 60, "albus's Programmed condition")

    p.core.patch_namespace(p.namespace, {"metadata": {"labels": {"albus-e2e": None}}})
    released = wait_for(lambda: (s := _status(p, p.namespace, "web")["status"]) and not _albus_conditions(s)
                        and not (s.get("loadBalancer") or {}).get("ingress") and s, 60,
                        "albus's conditions and VIP taken back")
    assert not released.get("conditions")
    wait_for(lambda: [e for e in events(p, "web") if e.reason == "Removed"], 60, "the Removed Event")

    # Another controller takes the Service over; then albus converges a Service elsewhere.
    p.core.patch_namespaced_service_status("web", p.namespace, {"status": {
        "loadBalancer": {"ingress": [{"ip": FOREIGN_VIP}]}}})
    before = _status(p, p.namespace, "web")
    run_pod(p.core, p.namespace, "web-1", {"app": "web"}, "10.244.1.11", POD_PORTS)
    other_ns = f"{p.cluster}-more"
    p.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=other_ns, labels={"albus-e2e": p.cluster})))
    try:
        p.core.create_namespaced_service(other_ns, lb_service("api", PORTS))
        run_pod(p.core, other_ns, "api-0", {"app": "api"}, "10.244.2.10", POD_PORTS)
        wait_for(lambda: (s := _status(p, other_ns, "api")["status"]) and "albus.io/LoadBalancerReady"
                 in _albus_conditions(s), 60, "albus's status on a Service in another selected namespace")
        assert _status(p, p.namespace, "web") == before
        assert vip != [FOREIGN_VIP]
        assert [e.reason for e in events(p, "web")].count("Removed") == 1
    finally:
        p.core.delete_namespace(other_ns)
