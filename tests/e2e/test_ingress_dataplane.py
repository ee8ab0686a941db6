"""Real HTTP(S) through an Ingress's VIP: Host picks the backend, a TLS host redirects and answers over SNI.

The pods' backends run in a network namespace (``test_host``); the simulator
runs its data plane and may forward to that namespace's network only.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.x509.oid import NameOID
from kubernetes import client
from kubernetes.client.rest import ApiException

from albus.broker import NatsServer
from albus.testhosts import TestHost
from services.common.sealing import write_key_file
from tests.e2e.conftest import e2e_pipeline
from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import run_pod
from tests.e2e.test_ingress import ingress, ingress_class, ingress_ips, net, secret_body
from tests.tls_certs import self_signed

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]


@pytest.fixture
def sim_args(test_host: TestHost) -> list[str]:
    return ["--dataplane", "--probe-network", test_host.cidr, "--health-interval", "0.5"]


@pytest.fixture
def tls_pipeline(control_plane: Any, fresh_nats: NatsServer, tmp_path: Path, sim_args: list[str],
                 request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    key_file = write_key_file(tmp_path / "sealing.key")
    with e2e_pipeline(control_plane, fresh_nats.url, tmp_path, sim_args, request,
                      albus={"sealingKeyFile": str(key_file)}) as p:
        yield p


def backend(p: Pipeline, name: str, ip: str, target: int) -> None:
    p.core.create_namespaced_service(p.namespace, client.V1Service(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1ServiceSpec(type="ClusterIP", selector={"app": name}, ports=[
            client.V1ServicePort(name="http", port=80, target_port=target, protocol="TCP")])))
    run_pod(p.core, p.namespace, f"{name}-1", {"app": name}, ip, [("http", target, "TCP")])


def get(vip: str, host: str) -> requests.Response | None:
    try:
        return requests.get(f"http://{vip}/x", headers={"Host": host}, timeout=3, allow_redirects=False)
    except requests.RequestException:
        return None


def https_get(vip: str, host: str) -> tuple[str, dict[str, Any]] | None:
    """The certificate's CN the VIP presents for SNI ``host`` and the backend's JSON answer."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((vip, 443), timeout=3) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
            der = s.getpeercert(binary_form=True)
            s.sendall(f"GET /secure HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            out = b""
            while data := s.recv(65536):
                out += data
    except OSError:
        return None
    if der is None or b"\r\n\r\n" not in out or not out.startswith(b"HTTP/1.1 200"):
        return None
    cn = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return str(cn), json.loads(out.split(b"\r\n\r\n", 1)[1])


def test_host_header_and_sni_reach_the_right_backend_through_the_shared_vip(
        tls_pipeline: Pipeline, test_host: TestHost) -> None:
    p = tls_pipeline
    c = p.cluster
    cls = f"avi-{c}"
    test_host.serve("a-1", 9001)
    test_host.serve("b-1", 9002)
    try:
        backend(p, "a", test_host.address, 9001)
        backend(p, "b", test_host.address, 9002)
        ingress_class(p, cls, "ako.vmware.com/avi-lb")
        plain_a, plain_b, secure = f"a.{c}.example", f"b.{c}.example", f"s.{c}.example"
        p.core.create_namespaced_secret(p.namespace, secret_body(self_signed(secure)))
        ingress(p, p.namespace, "a", cls, plain_a, service="a")
        ingress(p, p.namespace, "b", cls, plain_b, service="b")
        ingress(p, p.namespace, "s", cls, secure, service="b", tls_secret="cert")
        vips = {h: wait_for(lambda n=n: (ips := ingress_ips(p, p.namespace, n)) and ips[0], 180,  # type: ignore[misc]
                            f"Ingress {n}'s VIP") for h, n in ((plain_a, "a"), (plain_b, "b"), (secure, "s"))}

        def answered(host: str) -> str | None:
            r = get(vips[host], host)
            return str(r.json()["backend"]) if r is not None and r.status_code == 200 else None

        assert wait_for(lambda: answered(plain_a), 90, f"{plain_a} through {vips[plain_a]}") == "a-1"
        assert wait_for(lambda: answered(plain_b), 90, f"{plain_b} through {vips[plain_b]}") == "b-1"
        # The TLS host's plain HTTP is redirected by its parent; over TLS its SNI child serves it.
        r = wait_for(lambda: (x := get(vips[secure], secure)) is not None and x.status_code == 302 and x, 90,
                     "the redirect to HTTPS")
        assert r.headers["Location"] == f"https://{secure}/x"
        cn, body = wait_for(lambda: https_get(vips[secure], secure), 90, f"HTTPS to {secure} over SNI")
        assert cn == secure and (body["backend"], body["path"], body["host"]) == ("b-1", "/secure", secure)
        # A host no Ingress names: the parent's last rule answers 404.
        r404 = get(vips[plain_a], f"nobody.{c}.example")
        assert r404 is not None and r404.status_code == 404
    finally:
        for name in ("a", "b", "s"):
            try:
                net(p).delete_namespaced_ingress(name, p.namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        net(p).delete_ingress_class(cls)
