"""HTTPS listeners: certificateRefs to TLS Secrets as sslkeyandcertificate objects on the Gateway's VS."""

from __future__ import annotations

import json
from typing import Any

from services.common import tls_secrets
from services.common.contracts import KubeObject, ListenerStatus, ObjRef, VsTree
from services.common.sealing import Keyring
from services.translator.engine import Engine
from services.translator.offline import as_kube_object, translate_documents
from tests.tls_certs import Pair, self_signed, tls_secret
from tests.unit.test_translate_gateway import CFG
from tests.unit.test_translate_gateway_http import CLASS, backend, prefix, route, svc

GW_REF = ObjRef(kind="Gateway", namespace="shop", name="web")
VS = "c1--shop-web"
CERT = "c1--shop-web-shop-cert"
PAIR = self_signed("www.shop.example", "*.shop.example")


def mk(t: str, name: str) -> str:
    return f"/api/{t}/?name={name}"


def https(name: str = "https", port: int = 443, hostname: str = "", *refs: dict[str, Any]) -> dict[str, Any]:
    li: dict[str, Any] = {"name": name, "port": port, "protocol": "HTTPS",
                          "tls": {"mode": "Terminate", "certificateRefs": list(refs) or [{"name": "cert"}]}}
    if hostname:
        li["hostname"] = hostname
    return li


def gateway(*listeners: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "web", "namespace": "shop", "generation": 2},
            "spec": {"gatewayClassName": "avi-lb", "listeners": list(listeners)}}


HTTP = {"name": "http", "port": 80, "protocol": "HTTP"}
ROUTE = route("r", {"matches": [prefix("/")], "backendRefs": [backend("a")]})


def docs(*extra: dict[str, Any], listeners: tuple[dict[str, Any], ...] = (HTTP, https())) -> list[dict[str, Any]]:
    return [CLASS, gateway(*listeners), svc("a"), ROUTE, *extra]


def listener(documents: list[dict[str, Any]], name: str = "https") -> ListenerStatus:
    e = Engine(CFG)
    for d in documents:
        ko = as_kube_object(d, "c1")
        assert ko is not None
        e.observe(ko)
    e.mark_all()
    st = next(r.gateway for r in e.flush().reports if r.source == GW_REF)
    assert st is not None
    return next(li for li in st.listeners if li.name == name)


def test_https_listener_is_an_ssl_port_with_the_secrets_certificate_and_the_key_never_shown() -> None:
    out, problems = translate_documents(docs(tls_secret("cert", "shop", PAIR)), CFG)
    assert problems == []
    (vs,) = out["virtualservice"]
    assert vs["services"] == [{"port": 80, "enable_ssl": False}, {"port": 443, "enable_ssl": True}]
    assert vs["ssl_key_and_certificate_refs"] == [mk("sslkeyandcertificate", CERT)]
    assert vs["ssl_profile_ref"] == mk("sslprofile", "System-Standard")
    assert vs["application_profile_ref"] == mk("applicationprofile", "System-HTTP")
    (cert,) = out["sslkeyandcertificate"]
    assert cert["name"] == CERT and cert["type"] == "SSL_CERTIFICATE_TYPE_VIRTUALSERVICE"
    assert cert["certificate"] == {"certificate": PAIR.cert_pem} and cert["key"] == "<redacted>"
    assert "cloud_ref" not in cert and cert["created_by"] == "ako-c1"
    marks = {m["key"]: m["values"] for m in cert["markers"]}
    assert marks["clustername"] == ["c1"] and marks["GatewayName"] == ["web"]
    assert len(marks["CertificateFingerprint"][0]) == 64
    # The routes serve both listeners: their policy rules match either port.
    (ps,) = out["httppolicyset"]
    assert ps["http_request_policy"]["rules"][0]["match"]["vs_port"]["ports"] == [80, 443]
    assert not [f for f in PAIR.key_forms() if f in json.dumps(out).encode()], "albus translate shows no key"
    li = listener(docs(tls_secret("cert", "shop", PAIR)))
    assert (li.accepted, li.resolved_refs, li.attached) == (True, True, 1)
    assert li.supported_kinds == ("gateway.networking.k8s.io/HTTPRoute",)


def test_tree_order_and_the_sealed_key_travels_outside_the_body() -> None:
    ring = Keyring.ephemeral("c1")
    trees = engine_trees(docs(), secret(PAIR, ring))
    (tree,) = trees
    assert [o.type for o in tree.objects] == ["vsvip", "sslkeyandcertificate", "pool", "poolgroup",
                                              "httppolicyset", "virtualservice"]
    cert = tree.objects[1]
    assert "key" not in cert.body and "certificate" not in cert.body
    assert cert.write_only == {"certificate": {"certificate": PAIR.cert_pem}}
    assert ring.open(cert.sealed["key"]).decode() == PAIR.key_pem


def secret(pair: Pair, ring: Keyring, name: str = "cert", ns: str = "shop", **kw: Any) -> KubeObject:
    return KubeObject(cluster="c1", kind="Secret", namespace=ns, name=name,
                      obj=tls_secrets.trim(tls_secret(name, ns, pair, **kw), ring))


def engine_trees(documents: list[dict[str, Any]], *secrets: KubeObject, e: Engine | None = None) -> list[VsTree]:
    e = e or Engine(CFG)
    for d in documents:
        ko = as_kube_object(d, "c1")
        assert ko is not None
        e.observe(ko)
    for s in secrets:
        e.observe(s)
    e.mark_all()
    return e.flush().trees


def test_the_checksum_does_not_change_when_the_same_key_is_sealed_again() -> None:
    ring = Keyring.ephemeral("c1")
    (a,) = engine_trees(docs(), secret(PAIR, ring))
    (b,) = engine_trees(docs(), secret(PAIR, ring))
    box = [next(o for o in t.objects if o.sealed).sealed["key"].box for t in (a, b)]
    assert box[0] != box[1] and a.checksum == b.checksum
    (c,) = engine_trees(docs(), secret(self_signed("www.shop.example"), ring))
    assert c.checksum != a.checksum, "a new pair is a new tree"


def test_a_bad_secret_is_invalid_certificate_ref_and_the_http_listener_still_serves() -> None:
    mismatched = tls_secret("cert", "shop", PAIR, key_pem=self_signed("www.shop.example").key_pem)
    li = listener(docs(mismatched))
    assert (li.accepted, li.resolved_refs, li.refs_reason) == (True, False, "InvalidCertificateRef")
    assert "certificateRef Secret shop/cert: tls.key does not match" in li.message
    assert li.attached == 1, "the route is not at fault: it attaches"
    out, _ = translate_documents(docs(mismatched), CFG)
    (vs,) = out["virtualservice"]
    assert vs["services"] == [{"port": 80, "enable_ssl": False}] and "ssl_key_and_certificate_refs" not in vs
    assert "sslkeyandcertificate" not in out


def test_missing_expired_and_wrong_kind_refs() -> None:
    li = listener(docs())
    assert li.refs_reason == "InvalidCertificateRef" and "does not exist" in li.message
    expired = self_signed("www.shop.example", expired=True)
    li = listener(docs(tls_secret("cert", "shop", expired)))
    assert li.refs_reason == "InvalidCertificateRef" and "expired" in li.message
    wrong = https("https", 443, "", {"group": "example.com", "kind": "Vault", "name": "cert"})
    li = listener(docs(tls_secret("cert", "shop", PAIR), listeners=(HTTP, wrong)))
    assert li.refs_reason == "InvalidCertificateRef" and "only core Secrets" in li.message
    no_refs = {"name": "https", "port": 443, "protocol": "HTTPS"}
    assert listener(docs(listeners=(HTTP, no_refs))).refs_reason == "InvalidCertificateRef"


def test_only_https_listeners_and_none_can_be_served_is_not_accepted() -> None:
    e = Engine(CFG)
    for d in docs(listeners=(https(),)):
        ko = as_kube_object(d, "c1")
        assert ko is not None
        e.observe(ko)
    e.mark_all()
    changes = e.flush()
    assert changes.trees == []
    (rep,) = [r for r in changes.reports if r.source == GW_REF]
    assert rep.gateway is not None and not rep.gateway.accepted and "does not exist" in rep.gateway.message


def test_cross_namespace_certificate_needs_a_reference_grant_from_gateways() -> None:
    ref = https("https", 443, "", {"name": "wild", "namespace": "certs"})
    certs = tls_secret("wild", "certs", PAIR)
    li = listener(docs(certs, listeners=(HTTP, ref)))
    assert (li.resolved_refs, li.refs_reason) == (False, "RefNotPermitted")
    assert "no ReferenceGrant in certs" in li.message

    def grant(from_kind: str) -> dict[str, Any]:
        return {"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
                "metadata": {"name": "g", "namespace": "certs"},
                "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": from_kind, "namespace": "shop"}],
                         "to": [{"group": "", "kind": "Secret"}]}}

    assert listener(docs(certs, grant("HTTPRoute"), listeners=(HTTP, ref))).refs_reason == "RefNotPermitted"
    li = listener(docs(certs, grant("Gateway"), listeners=(HTTP, ref)))
    assert (li.resolved_refs, li.refs_reason) == (True, "ResolvedRefs")
    out, _ = translate_documents(docs(certs, grant("Gateway"), listeners=(HTTP, ref)), CFG)
    assert [c["name"] for c in out["sslkeyandcertificate"]] == ["c1--shop-web-certs-wild"]


def test_a_secret_that_goes_bad_or_away_keeps_the_certificate_on_the_bus() -> None:
    ring = Keyring.ephemeral("c1")
    e = Engine(CFG)
    (good,) = engine_trees(docs(), secret(PAIR, ring), e=e)
    # The Secret is rotated to a key that does not match: the tree stays as it was (nothing published).
    e.observe(secret(PAIR, ring, key_pem=self_signed("x.example").key_pem))
    changes = e.flush()
    assert changes.trees == []
    st = next(r.gateway for r in changes.reports if r.source == GW_REF)
    assert st is not None
    li = next(x for x in st.listeners if x.name == "https")
    assert li.refs_reason == "InvalidCertificateRef" and "keeps serving the certificate it had" in li.message
    # Deleted: the same. A restarted translator (fresh engine, the tree from the bus) decides the same.
    e.observe(KubeObject(cluster="c1", kind="Secret", namespace="shop", name="cert", deleted=True))
    assert e.flush().trees == []
    fresh = Engine(CFG)
    fresh.remember_tree(good)
    assert engine_trees(docs(), e=fresh) == []
    # Fixed with a new pair: the certificate is updated (same object name).
    new = self_signed("www.shop.example")
    e.observe(secret(new, ring))
    (fixed,) = e.flush().trees
    cert = next(o for o in fixed.objects if o.type == "sslkeyandcertificate")
    assert cert.name == CERT and cert.write_only["certificate"]["certificate"] == new.cert_pem


def test_a_secrets_change_recomputes_only_the_gateways_naming_it() -> None:
    e = Engine(CFG)
    engine_trees(docs(), e=e)
    other = tls_secret("unrelated", "shop", PAIR)
    ko = as_kube_object(other, "c1")
    assert ko is not None and e.observe(ko) == set()
    ko = as_kube_object(tls_secret("cert", "shop", PAIR), "c1")
    assert ko is not None and e.observe(ko) == {GW_REF}
    assert as_kube_object({**tls_secret("x", "shop", PAIR), "type": "Opaque"}, "c1") is None


def test_hostname_the_certificate_does_not_name_is_a_warning_in_the_message() -> None:
    fine = listener(docs(tls_secret("cert", "shop", PAIR), listeners=(HTTP, https("https", 443, "a.shop.example"))))
    assert fine.resolved_refs and fine.message == ""
    li = listener(docs(tls_secret("cert", "shop", PAIR), listeners=(HTTP, https("https", 443, "api.other.example"))))
    assert li.resolved_refs and "does not name api.other.example" in li.message


def test_two_https_listeners_on_one_port_share_the_ssl_port_and_list_both_certificates() -> None:
    other = self_signed("api.shop.example")
    out, _ = translate_documents(docs(tls_secret("cert", "shop", PAIR), tls_secret("api", "shop", other),
                                      listeners=(https("www", 443, "www.shop.example"),
                                                 https("api", 443, "api.shop.example", {"name": "api"}))), CFG)
    (vs,) = out["virtualservice"]
    assert vs["services"] == [{"port": 443, "enable_ssl": True}]
    assert vs["ssl_key_and_certificate_refs"] == [mk("sslkeyandcertificate", "c1--shop-web-shop-api"),
                                                  mk("sslkeyandcertificate", CERT)]


def test_https_on_an_l4_gateway_and_tls_terminate_are_still_unsupported() -> None:
    l4 = listener(docs(tls_secret("cert", "shop", PAIR),
                       listeners=(https(), {"name": "sip", "port": 5060, "protocol": "UDP"})))
    assert (l4.accepted, l4.accepted_reason) == (False, "UnsupportedProtocol")
    term = {"name": "https", "port": 443, "protocol": "TLS", "tls": {"mode": "Terminate",
                                                                     "certificateRefs": [{"name": "cert"}]}}
    li = listener(docs(tls_secret("cert", "shop", PAIR), listeners=(term, {"name": "t", "port": 22,
                                                                           "protocol": "TCP"})))
    assert (li.accepted, li.accepted_reason) == (False, "UnsupportedProtocol")
