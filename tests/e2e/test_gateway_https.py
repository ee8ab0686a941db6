"""HTTPS Gateways end to end: a TLS Secret's certificate on the controller, its private key never in clear on the bus.

Four service processes with a sealing key, a NATS server of the test's own
(its store is read raw afterwards), a real kube-apiserver with the Gateway
API CRDs, and the simulator as its own process (it checks, as the
controller does, that a key it is sent parses and matches its certificate).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from cryptography import x509
from kubernetes import client
from nats.js.errors import NotFoundError

from albus.broker import NatsServer
from services.common.sealing import write_key_file
from tests.e2e.conftest import e2e_pipeline
from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.lb_status import events, ref_name
from tests.e2e.test_disaster_recovery import albus_resync
from tests.e2e.test_gateway_httproute import backend_service, http_route
from tests.e2e.test_gateway_labels import GROUP, VERSION, custom, gateway, gateway_class, programmed_vip
from tests.tls_certs import Pair, self_signed

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

HOST = "www.shop.example"


@pytest.fixture
def https_pipeline(control_plane: Any, fresh_nats: NatsServer, tmp_path: Path, sim_args: list[str],
                   request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    key_file = write_key_file(tmp_path / "sealing.key")
    with e2e_pipeline(control_plane, fresh_nats.url, tmp_path, sim_args, request,
                      albus={"sealingKeyFile": str(key_file)}) as p:
        yield p


def secret_body(pair: Pair, key_pem: str | None = None) -> client.V1Secret:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return client.V1Secret(metadata=client.V1ObjectMeta(name="cert"), type="kubernetes.io/tls",
                           data={"tls.crt": b64(pair.cert_pem), "tls.key": b64(key_pem or pair.key_pem)})


def serial(pair: Pair) -> str:
    return str(x509.load_pem_x509_certificate(pair.cert_pem.encode()).serial_number)


def listener_condition(p: Pipeline, name: str, type_: str) -> dict[str, Any] | None:
    li = next((x for x in (gateway(p, "web").get("status") or {}).get("listeners") or [] if x["name"] == name), None)
    return next((c for c in li["conditions"] if c["type"] == type_), None) if li else None


async def _stream_contents(url: str) -> list[bytes]:
    """Every message every stream holds, subject, headers and payload, read one by one."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        out: list[bytes] = []
        for info in await js.streams_info():
            st = info.state
            for seq in range(max(1, st.first_seq), st.last_seq + 1 if st.messages else 0):
                try:
                    m = await js.get_msg(info.config.name, seq)
                except NotFoundError:
                    continue
                out.append((m.subject or "").encode() + repr(m.headers).encode() + (m.data or b""))
        return out
    finally:
        await nc.close()


def leaks(pairs: list[Pair], blobs: list[bytes]) -> list[str]:
    return [f"key piece {f[:12]!r}" for pair in pairs for f in pair.key_forms() for b in blobs if f in b]


def test_https_listener_certificate_rotated_in_place_and_keys_never_on_the_bus(
        https_pipeline: Pipeline, fresh_nats: NatsServer) -> None:
    p = https_pipeline
    cls = gateway_class(p)
    first, second = self_signed(HOST), self_signed(HOST, "shop.example")
    wrong_key = self_signed(HOST).key_pem
    vs, cert_name = f"{p.cluster}--{p.namespace}-web", f"{p.cluster}--{p.namespace}-web-{p.namespace}-cert"
    try:
        p.core.create_namespaced_secret(p.namespace, secret_body(first))
        backend_service(p, "a", "10.244.7.1")
        custom(p).create_namespaced_custom_object(GROUP, VERSION, p.namespace, "gateways", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Gateway", "metadata": {"name": "web"},
            "spec": {"gatewayClassName": cls, "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP"},
                {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": HOST,
                 "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": "cert"}]}}]}})
        http_route(p, p.namespace, "r", "/", [{"name": "a", "port": 80}])

        def certificate() -> dict[str, Any] | None:
            return p.objects("sslkeyandcertificate").get(cert_name)

        wait_for(lambda: programmed_vip(p, "web") and certificate(), 180,
                 "the HTTPS Gateway programmed with its certificate")
        cert = certificate()
        assert cert is not None and cert["certificate"]["serial_number"] == serial(first)
        assert "key" not in cert, "the controller never shows a key"
        vs_obj = p.objects("virtualservice")[vs]
        assert [ref_name(r) for r in vs_obj["ssl_key_and_certificate_refs"]] == [cert_name]
        assert ref_name(vs_obj["ssl_profile_ref"]) == "System-Standard"
        assert sorted((s["port"], s["enable_ssl"]) for s in vs_obj["services"]) == [(80, False), (443, True)]
        ok = wait_for(lambda: (c := listener_condition(p, "https", "Programmed")) and c["status"] == "True" and c,
                      60, "the HTTPS listener programmed")
        assert ok["reason"] == "Programmed"
        assert listener_condition(p, "https", "ResolvedRefs")["status"] == "True"
        wait_for(lambda: p.syncers_settled(0), 90, "the syncer to have applied every tree")

        # Rotation: the same object, updated in place, and nothing else written.
        p.reset_log()
        started = time.monotonic()
        p.core.replace_namespaced_secret("cert", p.namespace, secret_body(second))
        wait_for(lambda: (c := certificate()) and c["certificate"]["serial_number"] == serial(second), 120,
                 "the rotated certificate on the controller", interval=0.05)
        print(f"\nSecret replaced -> certificate updated on the controller: {time.monotonic() - started:.2f}s")
        rotated = certificate()
        assert rotated is not None and rotated["uuid"] == cert["uuid"]
        writes = [(w["method"], w["path"]) for w in p.writes()]
        assert writes == [("PUT", f"/api/sslkeyandcertificate/{cert['uuid']}")], writes

        # A full resync afterwards finds everything in place: no write at all.
        wait_for(lambda: p.syncers_settled(0), 90, "the syncer settled after the rotation")
        p.reset_log()
        run = albus_resync(p, 180)
        assert run.returncode == 0, run.stdout + run.stderr
        assert p.writes() == [], "a resync after the rotation wrote to the controller"

        # A bad rotation (a key that does not match): a condition and an Event, the working certificate stays.
        p.core.replace_namespaced_secret("cert", p.namespace, secret_body(second, key_pem=wrong_key))
        bad = wait_for(lambda: (c := listener_condition(p, "https", "ResolvedRefs")) and c["status"] == "False"
                       and c, 90, "ResolvedRefs=False on the HTTPS listener")
        assert bad["reason"] == "InvalidCertificateRef" and "does not match" in bad["message"], bad
        assert "keeps serving" in bad["message"]
        wait_for(lambda: [e for e in events(p, "web", kind="Gateway") if e.reason == "InvalidCertificateRef"], 60,
                 "a Warning Event on the Gateway")
        assert certificate() == rotated
        assert [ref_name(r) for r in p.objects("virtualservice")[vs]["ssl_key_and_certificate_refs"]] == [cert_name]
    finally:
        custom(p).delete_cluster_custom_object(GROUP, VERSION, "gatewayclasses", cls)
        pairs = [first, second, Pair(first.cert_pem, wrong_key)]
        on_bus = asyncio.run(_stream_contents(p.nats_url))
        on_disk = [f.read_bytes() for f in (fresh_nats.store_dir / "jetstream").rglob("*") if f.is_file()]
        logs = [c.log_tail(50_000_000).encode() for c in p.children.values()]
    assert len(on_bus) > 20 and on_disk
    assert not leaks(pairs, on_bus), "a private key in clear in a NATS stream"
    assert not leaks(pairs, on_disk), "a private key in clear in nats-server's store"
    assert not leaks(pairs, logs), "a private key in a service's log"
