"""Services sharing one VIP (ako.vmware.com/enable-shared-vip): one tree for the group, exact Avi JSON."""

from __future__ import annotations

from typing import Any

from services.common.config import parse_config
from services.common.contracts import KubeObject
from services.translator.engine import Engine
from services.translator.offline import translate_documents

CFG = parse_config({
    "AKOSettings": {"clusterName": "c1"},
    "NetworkSettings": {"vipNetworkList": [{"networkName": "vip-net", "cidr": "127.1.0.0/24"}]},
})
SHARED = "ako.vmware.com/enable-shared-vip"
COMMON = {"tenant_ref": "/api/tenant/?name=admin", "cloud_ref": "/api/cloud/?name=Default-Cloud", "created_by": "ako-c1"}


def svc(name: str, port: int, proto: str, created: str, key: str = "core", **ann: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "nf", "creationTimestamp": created,
                         "annotations": {SHARED: key, **ann}},
            "spec": {"type": "LoadBalancer", "ports": [{"port": port, "protocol": proto}]}}


AMF = svc("amf", 38412, "SCTP", "2026-01-01T00:00:01Z")
DNS = svc("dns", 53, "UDP", "2026-01-01T00:00:02Z")
WEB = svc("web", 80, "TCP", "2026-01-01T00:00:03Z")


def mk(t: str, name: str) -> str:
    return f"/api/{t}/?name={name}"


def test_three_protocols_one_vs_one_vsvip_three_ports_three_pools() -> None:
    out, problems = translate_documents([WEB, DNS, AMF], CFG)
    assert problems == []
    assert [v["name"] for v in out["vsvip"]] == ["c1--nf-core"]
    assert [p["name"] for p in out["pool"]] == [
        "c1--nf-amf-core-SCTP-38412", "c1--nf-dns-core-UDP-53", "c1--nf-web-core-TCP-80"]
    pool = out["pool"][0]
    assert pool["markers"] == [{"key": "clustername", "values": ["c1"]}, {"key": "Namespace", "values": ["nf"]},
                               {"key": "ServiceName", "values": ["amf"]}, {"key": "Port", "values": ["38412"]},
                               {"key": "Protocol", "values": ["SCTP"]}, {"key": "GatewayName", "values": ["core"]}]
    assert pool["health_monitor_refs"] == [mk("healthmonitor", "System-SCTP")]
    (vs,) = out["virtualservice"]
    assert vs == {
        "name": "c1--nf-core", **COMMON,
        "vrf_context_ref": mk("vrfcontext", "global"),
        "se_group_ref": mk("serviceenginegroup", "Default-Group"),
        "vsvip_ref": mk("vsvip", "c1--nf-core"),
        "services": [
            {"port": 38412, "enable_ssl": False,
             "override_network_profile_ref": mk("networkprofile", "System-SCTP-Proxy")},
            {"port": 80, "enable_ssl": False},
            {"port": 53, "enable_ssl": False,
             "override_network_profile_ref": mk("networkprofile", "System-UDP-Fast-Path")}],
        "application_profile_ref": mk("applicationprofile", "System-L4-Application"),
        "network_profile_ref": mk("networkprofile", "System-TCP-Proxy"),
        "l4_policies": [{"index": 1, "l4_policy_set_ref": mk("l4policyset", "c1--nf-core")}],
        "traffic_enabled": True, "east_west_placement": False,
        "service_metadata": '{"namespace_svc_name":["nf/amf","nf/dns","nf/web"]}',
        "markers": [{"key": "clustername", "values": ["c1"]}, {"key": "Namespace", "values": ["nf"]},
                    {"key": "GatewayName", "values": ["core"]}],
    }
    (ps,) = out["l4policyset"]
    assert [(r["name"], r["index"], r["action"]["select_pool"]["pool_ref"]) for r in ps["l4_connection_policy"]["rules"]] == [
        ("SCTP-38412", 1, mk("pool", "c1--nf-amf-core-SCTP-38412")),
        ("TCP-80", 2, mk("pool", "c1--nf-web-core-TCP-80")),
        ("UDP-53", 3, mk("pool", "c1--nf-dns-core-UDP-53"))]


def test_groups_are_per_namespace_and_per_key() -> None:
    other_ns = {**WEB, "metadata": {**WEB["metadata"], "namespace": "edge"}}
    out, _ = translate_documents([WEB, DNS, other_ns, svc("solo", 9, "TCP", "2026-01-01T00:00:09Z", key="other")], CFG)
    assert [v["name"] for v in out["virtualservice"]] == ["c1--edge-core", "c1--nf-core", "c1--nf-other"]


def test_port_clash_marks_only_the_newcomer_naming_the_other() -> None:
    clash = svc("web2", 80, "TCP", "2026-01-01T00:00:09Z")
    same_port_other_proto = svc("web-udp", 80, "UDP", "2026-01-01T00:00:08Z")
    out, problems = translate_documents([WEB, DNS, clash, same_port_other_proto], CFG)
    (vs,) = out["virtualservice"]
    assert vs["service_metadata"] == '{"namespace_svc_name":["nf/dns","nf/web","nf/web-udp"]}'
    assert [(p.source.name, p.reason, p.message) for p in problems] == [
        ("web2", "SharedVipPortConflict", "shared VIP core: port 80/TCP is already used by Service web")]


def test_different_infra_setting_or_static_vip_is_refused_for_the_later_member() -> None:
    late_infra = svc("late", 90, "TCP", "2026-01-01T00:00:09Z", **{"aviinfrasetting.ako.vmware.com/name": "edge"})
    late_ip = svc("pinned", 91, "TCP", "2026-01-01T00:00:10Z", **{"ako.vmware.com/load-balancer-ip": "127.1.0.5"})
    out, problems = translate_documents([WEB, late_infra, late_ip], CFG)
    assert [p["name"] for p in out["pool"]] == ["c1--nf-web-core-TCP-80"]
    assert [(p.source.name, p.message) for p in problems] == [
        ("late", "shared VIP core: asks for AviInfraSetting edge, Service web uses (cluster default)"),
        ("pinned", "shared VIP core: asks for VIP 127.1.0.5, Service web uses (allocated)")]


def test_static_vip_for_the_whole_group_and_empty_key() -> None:
    ip = {"ako.vmware.com/load-balancer-ip": "127.1.0.5"}
    out, problems = translate_documents([svc("a", 1, "TCP", "t1", **ip), svc("b", 2, "UDP", "t2", **ip)], CFG)
    assert problems == []
    assert out["vsvip"][0]["vip"][0]["ip_address"] == {"addr": "127.1.0.5", "type": "V4"}
    out, problems = translate_documents([svc("a", 1, "TCP", "t1", key=" ")], CFG)
    assert out == {}
    assert [(p.reason, p.message) for p in problems] == [
        ("InvalidAnnotation", f"annotation {SHARED} is empty: name the group of Services to share")]


def _ko(doc: dict[str, Any], deleted: bool = False) -> KubeObject:
    m = doc["metadata"]
    return KubeObject(cluster="c1", kind="Service", namespace="nf", name=m["name"], deleted=deleted,
                      obj=None if deleted else doc)


def test_engine_one_tree_members_come_and_go_tree_deleted_with_the_last() -> None:
    e = Engine(CFG)
    for d in (WEB, DNS, AMF):
        e.observe(_ko(d))
    first = e.flush()
    assert [t.vs_name for t in first.trees] == ["c1--nf-core"]  # once, not once per member
    assert {s.name for s in first.trees[0].sources} == {"amf", "dns", "web"}
    e.observe(_ko(DNS, deleted=True))
    second = e.flush()
    (tree,) = second.trees
    assert not tree.deleted and {s.name for s in tree.sources} == {"amf", "web"}
    # An endpoint change of one member recomputes the others too, but publishes one tree.
    e.observe(KubeObject(cluster="c1", kind="EndpointSlice", namespace="nf", name="web-x", obj={
        "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": "web-x", "namespace": "nf", "labels": {"kubernetes.io/service-name": "web"}},
        "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 8080, "protocol": "TCP"}]}))
    assert {r.name for r in e.dirty} == {"amf", "web"}
    assert len(e.flush().trees) == 1
    e.observe(_ko(WEB, deleted=True))
    assert [t.deleted for t in e.flush().trees] == [False]
    e.observe(_ko(AMF, deleted=True))
    assert [(t.vs_name, t.deleted) for t in e.flush().trees] == [("c1--nf-core", True)]


def test_leaving_the_group_moves_the_service_to_its_own_vs() -> None:
    e = Engine(CFG)
    for d in (WEB, DNS):
        e.observe(_ko(d))
    e.flush()
    alone = {**DNS, "metadata": {**DNS["metadata"], "annotations": {}}}
    e.observe(_ko(alone))
    names = sorted((t.vs_name, t.deleted, tuple(s.name for s in t.sources)) for t in e.flush().trees)
    assert names == [("c1--nf-core", False, ("web",)), ("c1--nf-dns", False, ("dns",))]
