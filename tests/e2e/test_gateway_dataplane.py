"""Real traffic through a Gateway's VIP: TCPRoute and UDPRoute to pods, and a weighted split.

The pods' backends run in a network namespace (`test_host`); the simulator
runs its data plane and may forward to that namespace's network only.
"""

from __future__ import annotations

import socket
from collections import Counter

import pytest
from kubernetes import client

from albus.testhosts import TestHost, exchange
from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import run_pod
from tests.e2e.test_gateway_l4routes import l4_route
from tests.e2e.test_gateway_labels import GROUP, VERSION, custom, gateway_class, programmed_vip

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]


@pytest.fixture
def sim_args(test_host: TestHost) -> list[str]:
    return ["--dataplane", "--probe-network", test_host.cidr, "--health-interval", "0.5"]


def udp_exchange(addr: str, port: int, payload: bytes, timeout: float = 2.0) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(payload, (addr, port))
        try:
            return s.recv(65536)
        except TimeoutError:
            return b""


def service(p: Pipeline, name: str, ip: str, ports: list[tuple[int, str, int]]) -> None:
    """A ClusterIP Service with one pod at ``ip`` (the test host) listening on the target ports."""
    p.core.create_namespaced_service(p.namespace, client.V1Service(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1ServiceSpec(type="ClusterIP", selector={"app": name}, ports=[
            client.V1ServicePort(name=f"p{n}-{proto.lower()}", port=n, target_port=t, protocol=proto)
            for n, proto, t in ports])))
    run_pod(p.core, p.namespace, f"{name}-1", {"app": name}, ip,
            [(f"p{n}-{proto.lower()}", t, proto) for n, proto, t in ports])


def test_tcp_and_udp_routes_carry_traffic_through_the_vip_and_weights_split_it(
        gateway_experimental_routes: list[str], pipeline: Pipeline, test_host: TestHost) -> None:
    p = pipeline
    test_host.serve("sip-1", 9001)
    test_host.serve("blue-1", 9002)
    test_host.serve("green-1", 9003)
    cls = gateway_class(p)
    try:
        custom(p).create_namespaced_custom_object(GROUP, VERSION, p.namespace, "gateways", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Gateway", "metadata": {"name": "core"},
            "spec": {"gatewayClassName": cls, "listeners": [
                {"name": "sip-tcp", "port": 5060, "protocol": "TCP"},
                {"name": "sip-udp", "port": 5060, "protocol": "UDP"},
                {"name": "web", "port": 8080, "protocol": "TCP"}]}})
        addr = test_host.address
        service(p, "sip", addr, [(5060, "TCP", 9001), (5060, "UDP", 9001)])
        service(p, "blue", addr, [(80, "TCP", 9002)])
        service(p, "green", addr, [(80, "TCP", 9003)])
        l4_route(p, "TCPRoute", p.namespace, "sip", "sip-tcp", [{"name": "sip", "port": 5060}])
        l4_route(p, "UDPRoute", p.namespace, "sip", "sip-udp", [{"name": "sip", "port": 5060}])
        l4_route(p, "TCPRoute", p.namespace, "web", "web", [{"name": "blue", "port": 80, "weight": 3},
                                                            {"name": "green", "port": 80, "weight": 1}])
        vip = wait_for(lambda: programmed_vip(p), 120, "the Gateway programmed with a VIP")

        # The VIP listens once the VS is on the controller; members take traffic once their monitor saw them up.
        assert wait_for(lambda: exchange(vip, 5060, b"INVITE"), 60, f"a TCP answer through {vip}:5060") \
            == b"sip-1:INVITE"
        assert wait_for(lambda: udp_exchange(vip, 5060, b"OPTIONS"), 60, f"a UDP answer through {vip}:5060") \
            == b"sip-1:OPTIONS"
        wait_for(lambda: {exchange(vip, 8080, b"x") for _ in range(8)} == {b"blue-1:x", b"green-1:x"}, 60,
                 "both weighted backends answering through the VIP")
        # Weights 3:1 as pool group ratios: any 8 consecutive connections split 6:2.
        got = Counter(exchange(vip, 8080, b"x") for _ in range(8))
        assert got == {b"blue-1:x": 6, b"green-1:x": 2}, got
        stats = p.admin("GET", "dataplane")["virtualservices"][f"{p.cluster}--{p.namespace}-core"]
        assert {m["server"] for m in stats["members"]} >= {f"{addr}:9001", f"{addr}:9002", f"{addr}:9003"}
    finally:
        custom(p).delete_cluster_custom_object(GROUP, VERSION, "gatewayclasses", cls)
