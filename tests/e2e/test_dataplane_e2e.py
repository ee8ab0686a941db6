"""A real request through albus: a LoadBalancer Service's VIP forwards to its pod.

The pod's backend runs in a network namespace (`test_host`), since the
kube-apiserver refuses loopback addresses in EndpointSlices; the simulator
runs its data plane and may forward to that namespace's network only.
"""

from __future__ import annotations

import json

import pytest

from albus.testhosts import TestHost, exchange
from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import lb_service, run_pod

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]


@pytest.fixture
def sim_args(test_host: TestHost) -> list[str]:
    return ["--dataplane", "--probe-network", test_host.cidr, "--health-interval", "0.5"]


def test_tcp_round_trip_through_the_vip_reaches_the_pod(pipeline: Pipeline, test_host: TestHost) -> None:
    p = pipeline
    test_host.serve("web-1", 8080)
    p.core.create_namespaced_service(p.namespace, lb_service(
        "web", [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]))
    run_pod(p.core, p.namespace, "web-1", {"app": "web"}, test_host.address, [("http", 8080, "TCP")])
    vip = wait_for(lambda: p.vips("web"), 60, "the VIP in the Service status")[0]
    # the VIP listens once the VS is on the controller; the member takes traffic once its TCP monitor saw it up
    echoed = wait_for(lambda: exchange(vip, 80, b"hello"), 30, f"an answer through {vip}:80")
    assert echoed == b"web-1:hello"
    reply = exchange(vip, 80, b"GET /through-the-vip HTTP/1.1\r\nHost: web.example.com\r\n\r\n")
    head, body = reply.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["backend"] == "web-1" and json.loads(body)["path"] == "/through-the-vip"
    stats = p.admin("GET", "dataplane")["virtualservices"][f"{p.cluster}--{p.namespace}-web"]
    assert stats["connections"] >= 2
    assert [m["server"] for m in stats["members"]] == [f"{test_host.address}:8080"]
