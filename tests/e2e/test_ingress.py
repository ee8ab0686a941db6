"""Ingress end to end: shards, one host added, TLS SNI child and rotation, another class, status, deletion.

Four service processes with a sealing key, a real kube-apiserver, NATS and
the simulator as its own process. The IngressClass's parameters name an
AviInfraSetting of shard size MEDIUM (4 parent virtual services); what each
step wrote is read from the simulator's request log.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client
from kubernetes.client.rest import ApiException

from albus.broker import NatsServer
from services.common.sealing import write_key_file
from services.translator.ingress_shards import fnv1a_32
from tests.e2e.conftest import e2e_pipeline
from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import lb_service
from tests.e2e.lb_status import InfraSettings, events, ref_name
from tests.e2e.test_gateway_https import _stream_contents, leaks
from tests.tls_certs import Pair, self_signed

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

L7_TYPES = ("virtualservice", "vsvip", "pool", "httppolicyset", "sslkeyandcertificate")


@pytest.fixture
def ingress_pipeline(control_plane: Any, fresh_nats: NatsServer, tmp_path: Path, sim_args: list[str],
                     request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    key_file = write_key_file(tmp_path / "sealing.key")
    with e2e_pipeline(control_plane, fresh_nats.url, tmp_path, sim_args, request,
                      albus={"sealingKeyFile": str(key_file)}) as p:
        yield p


def net(p: Pipeline) -> client.NetworkingV1Api:
    return client.NetworkingV1Api(p.api)


def ingress_class(p: Pipeline, name: str, controller: str, infra: str = "") -> None:
    spec: dict[str, Any] = {"controller": controller}
    if infra:
        spec["parameters"] = {"apiGroup": "ako.vmware.com", "kind": "AviInfraSetting", "name": infra}
    net(p).create_ingress_class({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                                 "metadata": {"name": name}, "spec": spec})


def ingress(p: Pipeline, ns: str, name: str, cls: str, host: str, service: str = "web",
            tls_secret: str = "") -> None:
    spec: dict[str, Any] = {"ingressClassName": cls, "rules": [{"host": host, "http": {"paths": [
        {"path": "/", "pathType": "Prefix",
         "backend": {"service": {"name": service, "port": {"number": 80}}}}]}}]}
    if tls_secret:
        spec["tls"] = [{"hosts": [host], "secretName": tls_secret}]
    net(p).create_namespaced_ingress(ns, {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                                          "metadata": {"name": name}, "spec": spec})


def secret_body(pair: Pair) -> client.V1Secret:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return client.V1Secret(metadata=client.V1ObjectMeta(name="cert"), type="kubernetes.io/tls",
                           data={"tls.crt": b64(pair.cert_pem), "tls.key": b64(pair.key_pem)})


def serial(pair: Pair) -> str:
    return str(x509.load_pem_x509_certificate(pair.cert_pem.encode()).serial_number)


def hosts_of(policyset: dict[str, Any]) -> set[str]:
    return {h for r in policyset["http_request_policy"]["rules"] if "switching_action" in r
            for h in ((r.get("match") or {}).get("host_hdr") or {}).get("value") or []}


def redirected(policyset: dict[str, Any]) -> set[str]:
    return {h for r in policyset["http_request_policy"]["rules"] if "redirect_action" in r
            for h in r["match"]["host_hdr"]["value"]}


def ingress_ips(p: Pipeline, ns: str, name: str) -> list[str]:
    ing = p.api.sanitize_for_serialization(net(p).read_namespaced_ingress_status(name, ns))
    return [i["ip"] for i in ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]


def vip_of(p: Pipeline, vsvip: str) -> str:
    return str(p.objects("vsvip")[vsvip]["vip"][0]["ip_address"]["addr"])


def test_fifty_ingresses_on_four_shards_one_more_touches_one_tls_rotates_in_place_and_all_go(
        ingress_pipeline: Pipeline, fresh_nats: NatsServer) -> None:
    p = ingress_pipeline
    c = p.cluster
    namespaces = [p.namespace, f"{c}-ns2", f"{c}-ns3"]
    infra = InfraSettings(p)
    ours, other = f"avi-{c}", f"other-{c}"
    secure = f"s.{c}.example"
    first, second = self_signed(secure), self_signed(secure, f"www.{c}.example")
    try:
        for ns in namespaces[1:]:
            p.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
                name=ns, labels={"albus-e2e": c})))
        for ns in namespaces:
            p.core.create_namespaced_service(ns, lb_service("web", [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}], type="ClusterIP"))
        setting = infra.create("medium", {"l7Settings": {"shardSize": "MEDIUM"}})
        wait_for(lambda: infra.status(setting).get("status") == "Accepted", 120, "the AviInfraSetting accepted")
        ingress_class(p, ours, "ako.vmware.com/avi-lb", setting)
        ingress_class(p, other, "example.com/other-lb")
        parents = [f"{c}--Shared-L7-{setting}-{n}" for n in range(4)]

        def shard(host: str) -> str:
            return parents[fnv1a_32(host) & 3]

        hosts = {f"h{i}.{c}.example": (namespaces[i % 3], f"ing{i}") for i in range(50)}
        started = time.monotonic()
        for host, (ns, name) in hosts.items():
            ingress(p, ns, name, ours, host)
        ingress(p, p.namespace, "elsewhere", other, f"other.{c}.example")
        ingress(p, namespaces[1], "broken", ours, f"broken.{c}.example", service="missing")

        def placed() -> dict[str, set[str]] | None:
            sets = p.objects("httppolicyset")
            got = {n: hosts_of(sets[n]) for n in parents if n in sets}
            want = {n: {h for h in [*hosts, f"broken.{c}.example"] if shard(h) == n} for n in parents}
            return got if got == want else None

        wait_for(placed, 300, "50 hosts on their 4 shards")
        print(f"\n50 Ingresses created -> on the controller: {time.monotonic() - started:.1f}s")
        vses = p.objects("virtualservice")
        assert sorted(vses) == sorted(parents), "exactly the 4 parent virtual services"
        assert all(v["type"] == "VS_TYPE_VH_PARENT" for v in vses.values())
        assert all(f"other.{c}.example" not in hosts_of(s) for s in p.objects("httppolicyset").values())
        # Bad input on one Ingress: a Warning Event; the others are served.
        wait_for(lambda: [e for e in events(p, "broken", namespaces[1], kind="Ingress")
                          if e.reason == "ServiceNotFound"], 90, "ServiceNotFound on the broken Ingress")
        # Status: each Ingress carries its parent's VIP.
        for host, (ns, name) in list(hosts.items())[:6]:
            vip = vip_of(p, shard(host))
            wait_for(lambda ns=ns, name=name, vip=vip: ingress_ips(p, ns, name) == [vip], 90,  # type: ignore[misc]
                     f"Ingress {ns}/{name} status with VIP {vip}")
        assert ingress_ips(p, p.namespace, "elsewhere") == []

        # One more host: only its own shard's objects are written.
        wait_for(lambda: p.syncers_settled(time.time() - 1), 120, "the syncers settled")
        p.reset_log()
        new = f"new.{c}.example"
        ingress(p, namespaces[2], "newcomer", ours, new)
        wait_for(lambda: new in hosts_of(p.objects("httppolicyset")[shard(new)]), 120, "the new host on its shard")
        wait_for(lambda: p.syncers_settled(time.time() - 1), 120, "the syncers settled")
        writes = [(w["method"], w.get("type"), w.get("name")) for w in p.writes()]
        own = {shard(new)}
        assert writes and all(n in own or str(n).startswith(f"{c}--{setting}-{new}") for _, _, n in writes), writes
        assert ("PUT", "httppolicyset", shard(new)) in writes and any(t == "pool" for m, t, _ in writes if m == "POST")

        # TLS: an SNI child with the certificate; the parent redirects the host's HTTP.
        p.core.create_namespaced_secret(p.namespace, secret_body(first))
        ingress(p, p.namespace, "secure", ours, secure, tls_secret="cert")
        child = f"{c}--{setting}-{secure}"

        def certificate() -> dict[str, Any] | None:
            return p.objects("sslkeyandcertificate").get(child)

        wait_for(lambda: child in p.objects("virtualservice") and certificate(), 180, "the SNI child with its cert")
        kid = p.objects("virtualservice")[child]
        assert kid["type"] == "VS_TYPE_VH_CHILD" and kid["vh_domain_name"] == [secure]
        assert ref_name(kid["vh_parent_vs_ref"]) == shard(secure)
        assert [ref_name(r) for r in kid["ssl_key_and_certificate_refs"]] == [child]
        cert = certificate()
        assert cert is not None and cert["certificate"]["serial_number"] == serial(first) and "key" not in cert
        assert secure in redirected(p.objects("httppolicyset")[shard(secure)])
        assert hosts_of(p.objects("httppolicyset")[child]) == {secure}

        # Rotation: the same certificate object updated in place, nothing deleted.
        wait_for(lambda: p.syncers_settled(time.time() - 1), 120, "the syncers settled")
        p.reset_log()
        p.core.replace_namespaced_secret("cert", p.namespace, secret_body(second))
        wait_for(lambda: (x := certificate()) and x["certificate"]["serial_number"] == serial(second), 120,
                 "the rotated certificate")
        rotated = certificate()
        assert rotated is not None and rotated["uuid"] == cert["uuid"]
        writes = [(w["method"], w.get("type")) for w in p.writes()]
        assert writes == [("PUT", "sslkeyandcertificate")], writes

        # Another class's Ingress was never touched: no status from albus, no object.
        assert ingress_ips(p, p.namespace, "elsewhere") == []

        # Everything deleted: no L7 object left behind.
        for ns in namespaces:
            net(p).delete_collection_namespaced_ingress(ns)
        wait_for(lambda: not any(p.objects(t) for t in L7_TYPES), 300, "no L7 object left")

        # The private keys never in clear: not in any stream message, nats-server's store or a service's log.
        on_bus = asyncio.run(_stream_contents(p.nats_url))
        on_disk = [f.read_bytes() for f in (fresh_nats.store_dir / "jetstream").rglob("*") if f.is_file()]
        logs = [child.log_tail(50_000_000).encode() for child in p.children.values()]
        assert len(on_bus) > 50 and on_disk
        assert not leaks([first, second], on_bus), "a private key in clear in a NATS stream"
        assert not leaks([first, second], on_disk), "a private key in clear in nats-server's store"
        assert not leaks([first, second], logs), "a private key in a service's log"
    finally:
        for name in (ours, other):
            try:
                net(p).delete_ingress_class(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        infra.delete_all()
        for ns in namespaces[1:]:
            try:
                p.core.delete_namespace(ns)
            except ApiException as exc:
                if exc.status != 404:
                    raise
