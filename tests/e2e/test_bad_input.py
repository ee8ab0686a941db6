"""Bad input gets a condition and an Event on the Service concerned, and blocks nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import lb_service

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

CONDITION = "albus.io/LoadBalancerProgrammed"


def condition(p: Pipeline, name: str) -> dict[str, Any] | None:
    svc = p.api.sanitize_for_serialization(p.core.read_namespaced_service_status(name, p.namespace))
    for c in (svc.get("status") or {}).get("conditions") or []:
        if c["type"] == CONDITION:
            return dict(c)
    return None


def warnings_for(p: Pipeline, name: str) -> list[tuple[str, str]]:
    evs = client.EventsV1Api(p.api).list_namespaced_event(p.namespace).items
    return [(e.reason, e.note or "") for e in evs
            if e.regarding and e.regarding.name == name and e.type == "Warning"]


def test_static_vip_outside_the_network_is_a_condition_and_event_and_leaves_nothing(pipeline: Pipeline) -> None:
    """Caught in translation (the network's CIDR is known), so the controller is never asked."""
    p = pipeline
    p.core.create_namespaced_service(p.namespace, lb_service("taken", [{"port": 80, "protocol": "TCP"}],
                                                             loadBalancerIP="192.0.2.10"))
    p.core.create_namespaced_service(p.namespace, lb_service("fine", [{"port": 80, "protocol": "TCP"}]))
    wait_for(lambda: p.vips("fine"), 60, "the valid Service to get its VIP regardless")
    cond = wait_for(lambda: (c := condition(p, "taken")) and c["status"] == "False" and c, 60,
                    "a False condition on the Service with the bad static VIP")
    assert cond["reason"] == "LoadBalancerIPOutsideNetwork"
    assert "192.0.2.10" in cond["message"]
    wait_for(lambda: any(r == "LoadBalancerIPOutsideNetwork" for r, _ in warnings_for(p, "taken")), 30,
             "a Warning Event")
    assert p.vips("taken") == []
    # Nothing half-made on the controller for it.
    assert not [n for objs in p.all_objects().values() for n in objs if n.endswith("-taken") or "-taken-" in n]
    # Fixing it clears the condition and brings the VIP.
    p.core.patch_namespaced_service("taken", p.namespace, {"spec": {"loadBalancerIP": "127.100.0.200"}})
    wait_for(lambda: p.vips("taken") == ["127.100.0.200"], 60, "the fixed static VIP")
    wait_for(lambda: (c := condition(p, "taken")) and c["status"] == "True", 30, "the condition cleared")


def test_malformed_annotation_is_reported_and_never_deletes_what_was_working(pipeline: Pipeline) -> None:
    p = pipeline
    p.core.create_namespaced_service(p.namespace, lb_service("edit", [{"port": 80, "protocol": "TCP"}]))
    vip = wait_for(lambda: p.vips("edit"), 60, "the VIP")
    # spec.loadBalancerIP is validated by the API server; the AKO annotation is not.
    p.core.patch_namespaced_service("edit", p.namespace,
                                    {"metadata": {"annotations": {"ako.vmware.com/load-balancer-ip": "10.0.0.300"}}})
    cond = wait_for(lambda: (c := condition(p, "edit")) and c["status"] == "False" and c, 60, "a False condition")
    assert cond["reason"] == "InvalidLoadBalancerIP"
    wait_for(lambda: any(r == "InvalidLoadBalancerIP" for r, _ in warnings_for(p, "edit")), 30, "a Warning Event")
    vs_name = f"{p.cluster}--{p.namespace}-edit"
    assert vs_name in p.objects("virtualservice"), "the working VS must stay"
    assert p.vips("edit") == vip
    # A Service that never worked gets the condition and no controller object at all.
    p.core.create_namespaced_service(p.namespace, {
        **lb_service("never", [{"port": 80, "protocol": "TCP"}]),
        "metadata": {"name": "never", "annotations": {"ako.vmware.com/load-balancer-ip": "bad"}}})
    wait_for(lambda: (c := condition(p, "never")) and c["reason"] == "InvalidLoadBalancerIP", 60, "its condition")
    assert not [n for n in p.objects("virtualservice") if n.endswith("-never")]
