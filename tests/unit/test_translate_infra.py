"""AviInfraSetting, IP families, static VIPs and per-Service annotations: manifests → exact Avi JSON."""

from __future__ import annotations

import hashlib
from typing import Any

from services.common.config import parse_config
from services.common.contracts import KubeObject, Severity
from services.translator import infra
from services.translator.engine import Engine
from services.translator.offline import translate_documents

CFG = parse_config({
    "AKOSettings": {"clusterName": "c1"},
    "ControllerSettings": {"serviceEngineGroupName": "seg-default"},
    "NetworkSettings": {"vipNetworkList": [{"networkName": "vip-net", "cidr": "127.1.0.0/24"}]},
})


def svc(name: str = "web", ns: str = "shop", ann: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "annotations": ann or {}},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}], **spec}}


def namespace(name: str = "shop", ann: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "annotations": ann or {}}}


def setting(name: str, status: str | None = "Accepted", **spec: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"apiVersion": "ako.vmware.com/v1beta1", "kind": "AviInfraSetting",
                           "metadata": {"name": name}, "spec": spec}
    if status:
        doc["status"] = {"status": status, "error": "" if status == "Accepted" else "SE group seg-x not found"}
    return doc


EDGE = setting("edge", seGroup={"name": "seg-edge"},
               network={"vipNetworks": [{"networkName": "edge-net", "cidr": "127.2.0.0/24", "v6cidr": "fd00:2::/64"}],
                        "enableRhi": True, "bgpPeerLabels": ["rack-b", "rack-a"]})
ANN = "aviinfrasetting.ako.vmware.com/name"


def vs_and_vip(out: dict[str, list[dict[str, Any]]]) -> tuple[dict[str, Any], dict[str, Any]]:
    (vs,) = out["virtualservice"]
    (vsvip,) = out["vsvip"]
    return vs, vsvip


def test_cluster_defaults_without_any_setting() -> None:
    out, problems = translate_documents([svc()], CFG)
    vs, vsvip = vs_and_vip(out)
    assert problems == []
    assert vs["se_group_ref"] == "/api/serviceenginegroup/?name=seg-default"
    assert "enable_rhi" not in vs and "bgp_peer_labels" not in vsvip
    assert vsvip["vip"] == [{"vip_id": "0", "auto_allocate_ip": True, "auto_allocate_ip_type": "V4_ONLY",
                             "ipam_network_subnet": {"network_ref": "/api/network/?name=vip-net",
                                                     "subnet": {"ip_addr": {"addr": "127.1.0.0", "type": "V4"},
                                                                "mask": 24}}}]


def test_service_annotation_picks_se_group_network_rhi_and_bgp_labels() -> None:
    out, problems = translate_documents([svc(ann={ANN: "edge"}), EDGE], CFG)
    vs, vsvip = vs_and_vip(out)
    assert problems == []
    assert vs["se_group_ref"] == "/api/serviceenginegroup/?name=seg-edge"
    assert vs["enable_rhi"] is True
    assert vsvip["bgp_peer_labels"] == ["rack-a", "rack-b"]
    assert vsvip["vip"][0]["ipam_network_subnet"] == {
        "network_ref": "/api/network/?name=edge-net",
        "subnet": {"ip_addr": {"addr": "127.2.0.0", "type": "V4"}, "mask": 24}}


def test_precedence_service_over_namespace_over_defaults() -> None:
    other = setting("core", seGroup={"name": "seg-core"})
    docs = [namespace(ann={ANN: "core"}), EDGE, other,
            svc("own", ann={ANN: "edge"}), svc("inherits")]
    out, problems = translate_documents(docs, CFG)
    groups = {v["name"]: v["se_group_ref"].rsplit("=", 1)[1] for v in out["virtualservice"]}
    assert groups == {"c1--shop-own": "seg-edge", "c1--shop-inherits": "seg-core"}
    # seGroup only: the network stays the cluster default.
    inherits = next(v for v in out["vsvip"] if v["name"] == "c1--shop-inherits")
    assert inherits["vip"][0]["ipam_network_subnet"]["network_ref"] == "/api/network/?name=vip-net"
    assert problems == []


def test_class_parameters_name_a_setting_below_the_object_annotation() -> None:
    ing_class = {"kind": "IngressClass", "spec": {"controller": "ako.vmware.com/avi-lb", "parameters": {
        "apiGroup": "ako.vmware.com", "kind": "AviInfraSetting", "name": "edge"}}}
    gw_class = {"kind": "GatewayClass", "spec": {"controllerName": "ako.vmware.com/avi-lb", "parametersRef": {
        "group": "ako.vmware.com", "kind": "AviInfraSetting", "name": "core"}}}
    ns = namespace(ann={ANN: "fallback"})
    assert infra.wanted_name({"metadata": {}}, ns, ing_class) == "edge"
    assert infra.wanted_name({"metadata": {}}, ns, gw_class) == "core"
    assert infra.wanted_name({"metadata": {"annotations": {ANN: "mine"}}}, ns, gw_class) == "mine"
    assert infra.wanted_name({"metadata": {}}, ns, {"spec": {"parameters": {"kind": "Other", "name": "x"}}}) == "fallback"


def test_unknown_rejected_and_pending_settings_are_problems_not_trees() -> None:
    for docs, reason, text in (
        ([svc(ann={ANN: "nope"})], "AviInfraSettingNotFound", "AviInfraSetting nope does not exist"),
        ([svc(ann={ANN: "edge"}), setting("edge", status="Rejected")], "AviInfraSettingNotAccepted",
         "AviInfraSetting edge is rejected: SE group seg-x not found"),
    ):
        out, problems = translate_documents(docs, CFG)
        assert out == {}
        assert [(p.reason, p.message) for p in problems] == [(reason, text)]


def test_pending_setting_live_is_not_used_until_accepted() -> None:
    e = Engine(CFG)
    pending = setting("edge", status=None, seGroup={"name": "seg-edge"})
    for doc in (pending, svc(ann={ANN: "edge"})):
        e.observe(KubeObject(cluster="c1", kind=doc["kind"], namespace=doc["metadata"].get("namespace", ""),
                             name=doc["metadata"]["name"], obj=doc))
    first = e.flush()
    assert first.trees == []
    assert [p.reason for r in first.reports for p in r.problems] == ["AviInfraSettingNotAccepted"]
    accepted = {**pending, "status": {"status": "Accepted"}}
    e.observe(KubeObject(cluster="c1", kind="AviInfraSetting", name="edge", obj=accepted))
    second = e.flush()
    (tree,) = second.trees
    vs = next(o for o in tree.objects if o.type == "virtualservice")
    assert vs.body["se_group_ref"] == "/api/serviceenginegroup/?name=seg-edge"
    # Only the Service that uses the setting is recomputed.
    e.observe(KubeObject(cluster="c1", kind="Service", namespace="shop", name="plain", obj=svc("plain")))
    e.flush()
    e.observe(KubeObject(cluster="c1", kind="AviInfraSetting", name="edge",
                         obj={**accepted, "spec": {"seGroup": {"name": "seg-two"}}}))
    assert {r.name for r in e.dirty} == {"web"}


def test_dual_stack_v6_only_and_missing_family() -> None:
    dual = parse_config({"AKOSettings": {"clusterName": "c1"}, "NetworkSettings": {"vipNetworkList": [
        {"networkName": "vip-net", "cidr": "127.1.0.0/24", "v6cidr": "fd00:1::/64"}]}})
    out, _ = translate_documents([svc(ipFamilies=["IPv6", "IPv4"], ipFamilyPolicy="PreferDualStack")], dual)
    vip = out["vsvip"][0]["vip"][0]
    assert vip["auto_allocate_ip_type"] == "V4_V6"
    assert vip["ipam_network_subnet"] == {
        "network_ref": "/api/network/?name=vip-net",
        "subnet": {"ip_addr": {"addr": "127.1.0.0", "type": "V4"}, "mask": 24},
        "subnet6": {"ip_addr": {"addr": "fd00:1::", "type": "V6"}, "mask": 64}}
    out, _ = translate_documents([svc(ipFamilies=["IPv6"])], dual)
    assert out["vsvip"][0]["vip"][0]["auto_allocate_ip_type"] == "V6_ONLY"
    assert "subnet" not in out["vsvip"][0]["vip"][0]["ipam_network_subnet"]
    out, problems = translate_documents([svc(ipFamilies=["IPv4", "IPv6"], ipFamilyPolicy="RequireDualStack")], CFG)
    assert out == {}
    assert [(p.reason, p.message) for p in problems] == [
        ("IPFamilyUnavailable", "VIP network vip-net has no IPv6 CIDR for an IPv6 VIP")]


def test_static_vips_v4_v6_and_their_errors() -> None:
    dual = parse_config({"AKOSettings": {"clusterName": "c1"}, "NetworkSettings": {"vipNetworkList": [
        {"networkName": "vip-net", "cidr": "127.1.0.0/24", "v6cidr": "fd00:1::/64"}]}})
    out, _ = translate_documents([svc(ann={"ako.vmware.com/load-balancer-ip": "127.1.0.9, fd00:1::9"})], dual)
    assert out["vsvip"][0]["vip"][0] == {
        "vip_id": "0", "auto_allocate_ip": False,
        "ip_address": {"addr": "127.1.0.9", "type": "V4"}, "ip6_address": {"addr": "fd00:1::9", "type": "V6"},
        "ipam_network_subnet": {"network_ref": "/api/network/?name=vip-net",
                                "subnet": {"ip_addr": {"addr": "127.1.0.0", "type": "V4"}, "mask": 24},
                                "subnet6": {"ip_addr": {"addr": "fd00:1::", "type": "V6"}, "mask": 64}}}
    # spec.loadBalancerIP wins over the annotation, as in AKO.
    out, _ = translate_documents([svc(ann={"ako.vmware.com/load-balancer-ip": "127.1.0.8"},
                                      loadBalancerIP="127.1.0.7")], dual)
    assert out["vsvip"][0]["vip"][0]["ip_address"] == {"addr": "127.1.0.7", "type": "V4"}
    for value, reason in (("127.9.0.1", "LoadBalancerIPOutsideNetwork"), ("1.2.3", "InvalidLoadBalancerIP"),
                          ("127.1.0.1,127.1.0.2", "InvalidLoadBalancerIP")):
        out, problems = translate_documents([svc(loadBalancerIP=value)], dual)
        assert out == {} and [p.reason for p in problems] == [reason], value


def test_fqdn_and_disable_traffic_annotations() -> None:
    out, problems = translate_documents([svc(ann={"external-dns.alpha.kubernetes.io/hostname": "Web.Example.com.,api.example.com",
                                                  "ako.vmware.com/disable-traffic": "true"})], CFG)
    vs, vsvip = vs_and_vip(out)
    assert problems == []
    assert vsvip["dns_info"] == [{"fqdn": "web.example.com"}, {"fqdn": "api.example.com"}]
    assert vs["traffic_enabled"] is False
    out, problems = translate_documents([svc(ann={"external-dns.alpha.kubernetes.io/hostname": "bad_name!",
                                                  "ako.vmware.com/disable-traffic": "yes"})], CFG)
    assert out == {}
    assert sorted(p.message for p in problems) == [
        'annotation ako.vmware.com/disable-traffic: \'yes\' is not "true" or "false"',
        "annotation external-dns.alpha.kubernetes.io/hostname: bad_name! is not a DNS name"]


def test_unknown_ako_annotation_is_a_warning_and_the_tree_is_still_made() -> None:
    out, problems = translate_documents([svc(ann={"ako.vmware.com/enable-sharedvip": "x",
                                                  "example.com/other": "fine"})], CFG)
    assert [v["name"] for v in out["virtualservice"]] == ["c1--shop-web"]
    assert [(p.reason, p.severity, p.message) for p in problems] == [
        ("UnknownAnnotation", Severity.WARNING,
         "annotation ako.vmware.com/enable-sharedvip is not an AKO annotation and is ignored")]


def test_overlong_names_are_encoded_as_ako_does_and_reported() -> None:
    long_ns = "n" * 63
    long_name = "s" * 63
    cfg = parse_config({"AKOSettings": {"clusterName": "c" * 32},
                        "NetworkSettings": {"vipNetworkList": [{"networkName": "vip-net"}]}})
    doc = svc(long_name, long_ns, ann={"ako.vmware.com/enable-shared-vip": "k" * 150})
    out, problems = translate_documents([doc], cfg)
    (pool,) = out["pool"]
    full = f"{'c' * 32}--{long_ns}-{long_name}-{'k' * 150}-TCP-80"
    assert pool["name"] == f"{'c' * 32}--{hashlib.sha1(full.encode()).hexdigest()}"
    assert out["virtualservice"][0]["name"] == f"{'c' * 32}--{long_ns}-{'k' * 150}"  # 249 characters: kept
    assert [(p.reason, p.severity) for p in problems] == [("NameShortened", Severity.WARNING)]
    assert pool["name"] in problems[0].message


def test_malformed_setting_network_is_reported_on_the_service() -> None:
    bad = setting("edge", network={"vipNetworks": [{"networkName": "n", "cidr": "fd00::/64"}]})
    out, problems = translate_documents([svc(ann={ANN: "edge"}), bad], CFG)
    assert out == {}
    assert [p.reason for p in problems] == ["InvalidAviInfraSetting"]
    assert "vipNetworks[0]" in problems[0].message


def test_network_change_reallocates_with_a_new_vip_id_and_a_warning_once() -> None:
    e = Engine(CFG)
    edge = {**EDGE, "spec": {"network": {"vipNetworks": [{"networkName": "edge-net", "cidr": "127.2.0.0/24"}]}}}

    def observe(doc: dict[str, Any]) -> None:
        m = doc["metadata"]
        e.observe(KubeObject(cluster="c1", kind=doc["kind"], namespace=m.get("namespace", ""), name=m["name"], obj=doc))

    def vip_of(tree: Any) -> dict[str, Any]:
        return dict(next(o for o in tree.objects if o.type == "vsvip").body["vip"][0])

    observe(edge)
    observe(svc(ann={ANN: "edge"}))
    (first,) = e.flush().trees
    assert vip_of(first)["vip_id"] == "0"
    observe({**edge, "spec": {"seGroup": {"name": "seg-b"}}})  # back to the cluster network
    change = e.flush()
    (moved,) = change.trees
    assert vip_of(moved)["vip_id"] == "1"
    assert vip_of(moved)["ipam_network_subnet"]["network_ref"] == "/api/network/?name=vip-net"
    assert [(p.reason, p.message) for r in change.reports for p in r.problems] == [
        ("VipReallocated", "VIP network changed from edge-net to vip-net: the VIP is re-allocated and its "
                           "address changes")]
    # The next translation keeps the new vip_id and clears the warning.
    observe({**edge, "spec": {"seGroup": {"name": "seg-c"}}})
    again = e.flush()
    (tree,) = again.trees
    assert vip_of(tree)["vip_id"] == "1"
    assert [r.problems for r in again.reports] == [()]
