"""Gateway API translation: a Gateway of albus's class and the Services joined to it by label."""

from __future__ import annotations

import copy
from typing import Any

from services.common.config import parse_config
from services.common.contracts import KubeObject, ObjRef, Severity
from services.translator.engine import Engine
from services.translator.offline import as_kube_object, translate_documents

CFG = parse_config({
    "AKOSettings": {"clusterName": "c1"},
    "NetworkSettings": {"vipNetworkList": [{"networkName": "vip-net", "cidr": "127.1.0.0/24"}]},
})
GW_REF = ObjRef(kind="Gateway", namespace="nf", name="core")
GWAPI = "gateway.networking.k8s.io"


def mk(t: str, name: str) -> str:
    return f"/api/{t}/?name={name}"


def gwclass(name: str = "avi-lb", controller: str = "ako.vmware.com/avi-lb", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": name, "generation": 2}, "spec": {"controllerName": controller, **spec}}


def listener(name: str, port: int, proto: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "port": port, "protocol": proto, **extra}


def gw(*listeners: dict[str, Any], cls: str = "avi-lb", ns: str = "nf", name: str = "core",
       **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": name, "namespace": ns, "generation": 3},
            "spec": {"gatewayClassName": cls, "listeners": list(listeners), **spec}}


SIP = (listener("sip-tcp", 5060, "TCP"), listener("sip-udp", 5060, "UDP"), listener("sig", 8443, "TCP"))


def svc(name: str, *ports: tuple[int, str], created: str = "2026-01-01T00:00:01Z", ns: str = "nf",
        gateway: str = "core", gw_ns: str | None = "nf", svc_type: str = "LoadBalancer") -> dict[str, Any]:
    labels = {"ako.vmware.com/gateway-name": gateway}
    if gw_ns is not None:
        labels["ako.vmware.com/gateway-namespace"] = gw_ns
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": created, "labels": labels},
            "spec": {"type": svc_type, "ports": [{"port": p, "protocol": pr, "targetPort": p + 1} for p, pr in ports]}}


def eps(service: str, port: int, proto: str, *ips: str, ns: str = "nf") -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{service}-x", "namespace": ns, "labels": {"kubernetes.io/service-name": service}},
            "ports": [{"port": port, "protocol": proto}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]}


TELCO = [gwclass(), gw(*SIP),
         svc("sip-t", (5060, "TCP"), created="2026-01-01T00:00:01Z"),
         svc("sip-u", (5060, "UDP"), created="2026-01-01T00:00:02Z"),
         svc("sig", (8443, "TCP"), created="2026-01-01T00:00:03Z"),
         eps("sip-t", 5061, "TCP", "10.244.0.1", "10.244.0.2"), eps("sig", 8444, "TCP", "10.244.0.3")]


def engine(docs: list[dict[str, Any]]) -> Engine:
    e = Engine(CFG)
    for d in docs:
        ko = as_kube_object(d, "c1")
        assert ko is not None
        e.observe(ko)
    e.mark_all()
    return e


def delete(e: Engine, kind: str, ns: str, name: str) -> None:
    e.observe(KubeObject(cluster="c1", kind=kind, namespace=ns, name=name, deleted=True))


def test_three_listeners_three_services_one_vs_one_vip_three_ports() -> None:
    out, problems = translate_documents(TELCO, CFG)
    assert problems == []
    assert [v["name"] for v in out["vsvip"]] == ["c1--nf-core"]
    assert out["vsvip"][0]["vip"] == [{"vip_id": "0", "auto_allocate_ip": True, "auto_allocate_ip_type": "V4_ONLY",
                                       "ipam_network_subnet": {"network_ref": mk("network", "vip-net"), "subnet": {
                                           "ip_addr": {"addr": "127.1.0.0", "type": "V4"}, "mask": 24}}}]
    assert [p["name"] for p in out["pool"]] == [
        "c1--nf-sig-core-TCP-8443", "c1--nf-sip-t-core-TCP-5060", "c1--nf-sip-u-core-UDP-5060"]
    sip_t = out["pool"][1]
    assert [(s["ip"]["addr"], s["port"]) for s in sip_t["servers"]] == [("10.244.0.1", 5061), ("10.244.0.2", 5061)]
    assert sip_t["markers"][-1] == {"key": "GatewayName", "values": ["core"]}
    (vs,) = out["virtualservice"]
    assert vs["name"] == "c1--nf-core"
    assert vs["services"] == [
        {"port": 5060, "enable_ssl": False}, {"port": 8443, "enable_ssl": False},
        {"port": 5060, "enable_ssl": False, "override_network_profile_ref": mk("networkprofile", "System-UDP-Fast-Path")}]
    assert vs["network_profile_ref"] == mk("networkprofile", "System-TCP-Proxy")
    assert vs["markers"] == [{"key": "clustername", "values": ["c1"]}, {"key": "GatewayName", "values": ["core"]},
                             {"key": "GatewayNamespace", "values": ["nf"]}]
    assert vs["service_metadata"] == '{"namespace_svc_name":["nf/sig","nf/sip-t","nf/sip-u"],"gateway":"nf/core"}'
    rules = out["l4policyset"][0]["l4_connection_policy"]["rules"]
    assert [(r["name"], r["action"]["select_pool"]["pool_ref"]) for r in rules] == [
        ("TCP-5060", mk("pool", "c1--nf-sip-t-core-TCP-5060")), ("TCP-8443", mk("pool", "c1--nf-sig-core-TCP-8443")),
        ("UDP-5060", mk("pool", "c1--nf-sip-u-core-UDP-5060"))]


def test_gateway_status_and_listener_attachment_are_reported() -> None:
    e = engine(TELCO)
    changes = e.flush()
    reports = {r.source: r for r in changes.reports}
    st = reports[GW_REF].gateway
    assert st is not None and st.accepted and st.reason == "Accepted" and st.generation == 3
    assert [(li.name, li.accepted, li.attached, li.supported_kinds) for li in st.listeners] == [
        ("sip-tcp", True, 1, ("/Service", f"{GWAPI}/TCPRoute")), ("sip-udp", True, 1, ("/Service", f"{GWAPI}/UDPRoute")),
        ("sig", True, 1, ("/Service", f"{GWAPI}/TCPRoute"))]
    cls = reports[ObjRef(kind="GatewayClass", name="avi-lb")].gateway
    assert cls is not None and cls.accepted and cls.generation == 2
    (name,) = e.desired[GW_REF]
    tree = next(t for t in changes.trees if t.vs_name == name)
    assert tree.sources == (GW_REF, ObjRef(kind="Service", namespace="nf", name="sig"),
                            ObjRef(kind="Service", namespace="nf", name="sip-t"),
                            ObjRef(kind="Service", namespace="nf", name="sip-u"))


def test_listener_without_service_still_listens_and_gateway_alone_gets_a_vip() -> None:
    out, problems = translate_documents([gwclass(), gw(*SIP)], CFG)
    assert problems == []
    assert [s["port"] for s in out["virtualservice"][0]["services"]] == [5060, 8443, 5060]
    assert "pool" not in out
    assert out["l4policyset"][0]["l4_connection_policy"]["rules"] == []


def test_other_controllers_classes_and_gateways_are_left_alone() -> None:
    docs = [gwclass("other", "example.com/lb"), gw(*SIP, cls="other"), svc("sip-t", (5060, "TCP"))]
    e = engine(docs)
    changes = e.flush()
    assert changes.trees == []
    assert {r.source.kind for r in changes.reports} == {"Service"}
    (rep,) = changes.reports
    assert rep.problems[0].reason == "GatewayNotFound" and "not of a GatewayClass" in rep.problems[0].message


def test_port_without_listener_warns_when_another_port_joined_and_fails_when_none_did() -> None:
    docs = [gwclass(), gw(*SIP), svc("mixed", (5060, "TCP"), (9090, "TCP")), svc("lost", (7000, "UDP"))]
    e = engine(docs)
    reports = {r.source.name: r for r in e.flush().reports}
    (w,) = reports["mixed"].problems
    assert (w.reason, w.severity) == ("NoMatchingListener", Severity.WARNING) and "9090/TCP" in w.message
    (err,) = reports["lost"].problems
    assert (err.reason, err.severity) == ("NoMatchingListener", Severity.ERROR)
    assert reports["core"].problems == ()
    assert e.desired[ObjRef(kind="Service", namespace="nf", name="mixed")]
    assert ObjRef(kind="Service", namespace="nf", name="lost") not in e.desired


def test_listener_claimed_twice_goes_to_the_oldest_service() -> None:
    docs = [gwclass(), gw(*SIP), svc("young", (8443, "TCP"), created="2026-01-02T00:00:00Z"),
            svc("old", (8443, "TCP"), created="2026-01-01T00:00:00Z")]
    out, problems = translate_documents(docs, CFG)
    assert [p["name"] for p in out["pool"]] == ["c1--nf-old-core-TCP-8443"]
    (p,) = problems
    assert (p.source.name, p.reason) == ("young", "ListenerConflict") and "nf/old" in p.message


def test_missing_gateway_is_a_problem_on_the_service_only() -> None:
    docs = [gwclass(), gw(*SIP), svc("sig", (8443, "TCP")), svc("stray", (8443, "TCP"), gateway="nope")]
    out, problems = translate_documents(docs, CFG)
    assert [p["name"] for p in out["pool"]] == ["c1--nf-sig-core-TCP-8443"]
    (p,) = problems
    assert (p.source.name, p.reason) == ("stray", "GatewayNotFound") and "nf/nope" in p.message


def test_gateway_namespace_label_defaults_to_the_services_namespace() -> None:
    out, problems = translate_documents([gwclass(), gw(*SIP), svc("sig", (8443, "TCP"), gw_ns=None)], CFG)
    assert problems == [] and [p["name"] for p in out["pool"]] == ["c1--nf-sig-core-TCP-8443"]


def test_allowed_routes_namespaces() -> None:
    ns_labels = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "edge", "labels": {"tier": "sig"}}}
    foreign = svc("sig", (8443, "TCP"), ns="edge")
    same = [gwclass(), gw(*SIP), foreign, ns_labels]
    _, problems = translate_documents(same, CFG)
    assert [p.reason for p in problems] == ["NotAllowedByListener"]
    sel = {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"tier": "sig"},
                                                           "matchExpressions": [{"key": "tier", "operator": "Exists"}]}}}
    out, problems = translate_documents([gwclass(), gw(listener("sig", 8443, "TCP", allowedRoutes=sel)), foreign,
                                         ns_labels], CFG)
    assert problems == [] and [p["name"] for p in out["pool"]] == ["c1--edge-sig-core-TCP-8443"]
    all_ns = {"namespaces": {"from": "All"}}
    out, problems = translate_documents([gwclass(), gw(listener("sig", 8443, "TCP", allowedRoutes=all_ns)),
                                         foreign], CFG)
    assert problems == [] and len(out["pool"]) == 1


def test_static_addresses_ipv4_and_ipv6() -> None:
    cfg = parse_config({"AKOSettings": {"clusterName": "c1"}, "NetworkSettings": {"vipNetworkList": [
        {"networkName": "vip-net", "cidr": "127.1.0.0/24", "v6cidr": "fd00:1::/64"}]}})
    docs = [gwclass(), gw(*SIP, addresses=[{"type": "IPAddress", "value": "127.1.0.9"}, {"value": "fd00:1::9"}])]
    out, problems = translate_documents(docs, cfg)
    assert problems == []
    (v,) = out["vsvip"][0]["vip"]
    assert v["auto_allocate_ip"] is False
    assert v["ip_address"] == {"addr": "127.1.0.9", "type": "V4"}
    assert v["ip6_address"] == {"addr": "fd00:1::9", "type": "V6"}


def test_unsupported_address_rejects_the_gateway() -> None:
    e = engine([gwclass(), gw(*SIP, addresses=[{"type": "Hostname", "value": "sip.example"}])])
    (rep,) = [r for r in e.flush().reports if r.source == GW_REF]
    assert rep.gateway is not None and not rep.gateway.accepted and rep.gateway.reason == "UnsupportedAddress"
    assert GW_REF not in e.desired


def test_ipv6_only_network_allocates_an_ipv6_vip() -> None:
    cfg = parse_config({"AKOSettings": {"clusterName": "c1"}, "NetworkSettings": {"vipNetworkList": [
        {"networkName": "v6", "v6cidr": "fd00:1::/64"}]}})
    out, _ = translate_documents([gwclass(), gw(*SIP)], cfg)
    assert out["vsvip"][0]["vip"][0]["auto_allocate_ip_type"] == "V6_ONLY"


def test_http_listener_is_not_accepted_and_conflicting_listeners_are_conflicted() -> None:
    docs = [gwclass(), gw(listener("web", 80, "HTTP"), listener("a", 7000, "TCP"), listener("b", 7000, "TCP"),
                          listener("sip", 5060, "UDP"))]
    e = engine(docs)
    changes = e.flush()
    (rep,) = [r for r in changes.reports if r.source == GW_REF]
    st = rep.gateway
    assert st is not None and st.accepted and st.reason == "ListenersNotValid"
    by = {li.name: li for li in st.listeners}
    assert (by["web"].accepted, by["web"].accepted_reason) == (False, "UnsupportedProtocol")
    assert (by["a"].accepted_reason, by["a"].conflicted_reason) == ("PortUnavailable", "ProtocolConflict")
    assert by["b"].conflicted_reason == "ProtocolConflict" and by["sip"].accepted
    (name,) = e.desired[GW_REF]
    tree = next(t for t in changes.trees if t.vs_name == name)
    vs = next(o for o in tree.objects if o.type == "virtualservice").body
    assert [s["port"] for s in vs["services"]] == [5060]


def test_unsupported_route_kinds_are_unresolved_refs() -> None:
    kinds = {"kinds": [{"kind": "HTTPRoute"}]}
    e = engine([gwclass(), gw(listener("sig", 8443, "TCP", allowedRoutes=kinds))])
    (rep,) = [r for r in e.flush().reports if r.source == GW_REF]
    assert rep.gateway is not None
    (li,) = rep.gateway.listeners
    assert (li.resolved_refs, li.refs_reason, li.supported_kinds) == (False, "InvalidRouteKinds", ())


def test_class_parameters_name_the_aviinfrasetting() -> None:
    setting = {"apiVersion": "ako.vmware.com/v1beta1", "kind": "AviInfraSetting", "metadata": {"name": "edge"},
               "spec": {"seGroup": {"name": "edge-seg"},
                        "network": {"vipNetworks": [{"networkName": "edge-vip", "cidr": "127.2.0.0/24"}]}}}
    ref = {"group": "ako.vmware.com", "kind": "AviInfraSetting", "name": "edge"}
    out, problems = translate_documents([gwclass(parametersRef=ref), setting, gw(*SIP)], CFG)
    assert problems == []
    assert out["virtualservice"][0]["se_group_ref"] == mk("serviceenginegroup", "edge-seg")
    assert out["vsvip"][0]["vip"][0]["ipam_network_subnet"]["network_ref"] == mk("network", "edge-vip")
    # Missing setting: the class is not accepted (InvalidParameters) and the Gateway gets no tree.
    e = engine([gwclass(parametersRef=ref), gw(*SIP)])
    reps = {r.source.kind: r for r in e.flush().reports}
    assert reps["GatewayClass"].gateway is not None
    assert (reps["GatewayClass"].gateway.accepted, reps["GatewayClass"].gateway.reason) == (False, "InvalidParameters")
    assert reps["Gateway"].gateway is not None and not reps["Gateway"].gateway.accepted
    assert e.desired == {}
    bad = gwclass(parametersRef={"group": "example.com", "kind": "Params", "name": "x"})
    (rep,) = engine([bad]).flush().reports
    assert rep.gateway is not None and rep.gateway.reason == "InvalidParameters"


def test_removing_a_service_keeps_the_vs_and_the_others() -> None:
    e = engine(TELCO)
    e.flush()
    delete(e, "Service", "nf", "sip-u")
    changes = e.flush()
    (tree,) = changes.trees
    assert tree.vs_name == "c1--nf-core" and not tree.deleted
    assert [o.name for o in tree.objects if o.type == "pool"] == [
        "c1--nf-sip-t-core-TCP-5060", "c1--nf-sig-core-TCP-8443"]
    vs = next(o for o in tree.objects if o.type == "virtualservice").body
    # The listener stays: the VS still listens on UDP 5060, with no pool.
    assert {(s["port"], "override_network_profile_ref" in s) for s in vs["services"]} == {
        (5060, False), (8443, False), (5060, True)}


def test_deleting_the_gateway_deletes_the_tree_and_reports_the_services() -> None:
    e = engine(TELCO)
    e.flush()
    delete(e, "Gateway", "nf", "core")
    changes = e.flush()
    assert [(t.vs_name, t.deleted) for t in changes.trees] == [("c1--nf-core", True)]
    reps = {r.source: r for r in changes.reports}
    assert reps[GW_REF].gateway is None and reps[GW_REF].problems == ()
    for name in ("sip-t", "sip-u", "sig"):
        (p,) = reps[ObjRef(kind="Service", namespace="nf", name=name)].problems
        assert p.reason == "GatewayNotFound"
    assert e.desired == {}


def test_bad_change_keeps_the_working_tree() -> None:
    e = engine(TELCO)
    e.flush()
    broken = gw(*SIP, addresses=[{"value": "not-an-ip"}])
    ko = as_kube_object(broken, "c1")
    assert ko is not None
    e.observe(ko)
    changes = e.flush()
    assert changes.trees == []  # nothing deleted, nothing rewritten
    assert e.desired[GW_REF]
    (rep,) = [r for r in changes.reports if r.source == GW_REF]
    assert rep.gateway is not None and rep.gateway.reason == "UnsupportedAddress"


def test_clusterip_service_joins_and_other_lb_class_does_not() -> None:
    other = svc("x", (8443, "TCP"))
    other["spec"]["loadBalancerClass"] = "example.com/lb"
    out, problems = translate_documents([gwclass(), gw(*SIP), svc("c", (5060, "UDP"), svc_type="ClusterIP"),
                                         other], CFG)
    assert problems == [] and [p["name"] for p in out["pool"]] == ["c1--nf-c-core-UDP-5060"]


def test_replay_of_the_same_state_publishes_nothing() -> None:
    e = engine(TELCO)
    first = e.flush()
    again = Engine(CFG)
    for t in first.trees:
        again.remember_tree(t)
    for r in first.reports:
        again.remember_report(r)
    for d in TELCO:
        ko = as_kube_object(copy.deepcopy(d), "c1")
        assert ko is not None
        again.observe(ko)
    again.mark_all()
    assert not again.flush()


def test_a_service_leaving_frees_its_listener_for_the_next_one() -> None:
    e = engine([gwclass(), gw(*SIP), svc("old", (8443, "TCP"), created="2026-01-01T00:00:00Z"),
                svc("young", (8443, "TCP"), created="2026-01-02T00:00:00Z")])
    e.flush()
    young = ObjRef(kind="Service", namespace="nf", name="young")
    assert [p.reason for p in e.problems[young]] == ["ListenerConflict"]
    delete(e, "Service", "nf", "old")
    changes = e.flush()
    assert young not in e.problems
    assert [r.problems for r in changes.reports if r.source == young] == [()]
    (tree,) = changes.trees
    assert young in tree.sources and [o.name for o in tree.objects if o.type == "pool"] == [
        "c1--nf-young-core-TCP-8443"]


def test_class_handed_to_another_controller_releases_the_gateway_and_tells_the_services() -> None:
    e = engine([gwclass(), gw(*SIP), svc("sig", (8443, "TCP"))])
    e.flush()
    ko = as_kube_object(gwclass(controller="example.com/lb"), "c1")
    assert ko is not None
    e.observe(ko)
    changes = e.flush()
    assert [(t.vs_name, t.deleted) for t in changes.trees] == [("c1--nf-core", True)]
    (p,) = e.problems[ObjRef(kind="Service", namespace="nf", name="sig")]
    assert p.reason == "GatewayNotFound" and "not of a GatewayClass" in p.message
