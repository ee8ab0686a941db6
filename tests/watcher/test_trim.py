"""Trimming keeps what translation needs and nothing that changes without meaning."""

from __future__ import annotations

import copy
from typing import Any

from services.watcher.trim import LAST_APPLIED, fingerprint, trim_endpoint_slice, trim_service


def _service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": "10", "generation": 2,
            "labels": {"app": "web"},
            "annotations": {LAST_APPLIED: "{...}", "ako.vmware.com/load-balancer-ip": "10.0.0.9"},
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "managedFields": [{"manager": "kubectl"}],
            "ownerReferences": [{"kind": "Thing", "name": "x"}],
        },
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
        "status": {
            "loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]},
            "conditions": [{"type": "albus.io/LoadBalancerProgrammed", "status": "True"}],
        },
    }


def test_service_keeps_metadata_and_spec_only() -> None:
    t = trim_service(_service())
    assert set(t) == {"metadata", "spec"}
    assert set(t["metadata"]) == {
        "name", "namespace", "uid", "resourceVersion", "generation", "labels", "annotations", "creationTimestamp"
    }
    assert t["metadata"]["annotations"] == {"ako.vmware.com/load-balancer-ip": "10.0.0.9"}
    assert t["spec"]["ports"] == [{"port": 80, "protocol": "TCP"}]


def test_only_last_applied_annotation_drops_the_annotations_key() -> None:
    svc = _service()
    svc["metadata"]["annotations"] = {LAST_APPLIED: "{}"}
    assert "annotations" not in trim_service(svc)["metadata"]


def test_fingerprint_ignores_resource_version_and_status_but_not_spec() -> None:
    a = _service()
    b = copy.deepcopy(a)
    b["metadata"]["resourceVersion"] = "11"
    b["status"]["conditions"][0]["status"] = "False"  # albus's own status write
    b["metadata"]["managedFields"].append({"manager": "albus"})
    assert fingerprint(trim_service(a)) == fingerprint(trim_service(b))
    b["spec"]["ports"][0]["port"] = 81
    assert fingerprint(trim_service(a)) != fingerprint(trim_service(b))
    c = copy.deepcopy(a)
    c["status"]["loadBalancer"]["ingress"] = [{"ip": "10.0.0.10"}]  # health's VIP write
    assert fingerprint(trim_service(a)) == fingerprint(trim_service(c))


def test_endpoint_slice_keeps_addresses_readiness_ports_and_pod_refs() -> None:
    eps = {
        "metadata": {"name": "web-abc", "namespace": "shop", "uid": "u2", "resourceVersion": "5",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{
            "addresses": ["10.1.0.5"], "conditions": {"ready": True, "serving": True, "terminating": False},
            "nodeName": "n1", "hints": {"forZones": [{"name": "a"}]},
            "targetRef": {"kind": "Pod", "namespace": "shop", "name": "web-1", "uid": "p1", "resourceVersion": "7"},
        }],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }
    t = trim_endpoint_slice(eps)
    assert t["addressType"] == "IPv4"
    assert t["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert t["endpoints"] == [{
        "addresses": ["10.1.0.5"], "conditions": {"ready": True, "serving": True, "terminating": False},
        "nodeName": "n1", "targetRef": {"kind": "Pod", "namespace": "shop", "name": "web-1", "uid": "p1"},
    }]
    # A pod's resourceVersion moves all the time; it must not make the slice look changed.
    eps["endpoints"][0]["targetRef"]["resourceVersion"] = "8"  # type: ignore[index]
    assert fingerprint(trim_endpoint_slice(eps)) == fingerprint(t)
