"""Translation of LoadBalancer Services: input objects → the exact Avi JSON."""

from __future__ import annotations

from typing import Any

from services.common.config import parse_config
from services.common.contracts import KubeObject, ObjRef
from services.translator.engine import Engine
from services.translator.offline import translate_documents

CFG = parse_config({
    "AKOSettings": {"clusterName": "c1"},
    "NetworkSettings": {"vipNetworkList": [{"networkName": "vip-net", "cidr": "127.1.0.0/24", "v6cidr": "fd00:1::/64"}]},
})


def svc(name: str = "web", ns: str = "shop", ports: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "LoadBalancer", "selector": {"app": name},
                 "ports": ports if ports is not None else [
                     {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                     {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}],
                 **spec},
    }


def slice_(svc_name: str, ns: str, name: str, ips: list[tuple[str, bool]], ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": svc_name}},
        "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}} for ip, ready in ips],
        "ports": ports if ports is not None else [
            {"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "dns", "port": 5353, "protocol": "UDP"}],
    }


COMMON = {"tenant_ref": "/api/tenant/?name=admin", "cloud_ref": "/api/cloud/?name=Default-Cloud", "created_by": "ako-c1"}


def test_two_port_tcp_udp_service_gives_exact_objects() -> None:
    out, problems = translate_documents(
        [svc(), slice_("web", "shop", "web-abc", [("10.0.0.2", True), ("10.0.0.1", True), ("10.0.0.3", False)])], CFG)
    assert problems == []
    assert sorted(out) == ["l4policyset", "pool", "virtualservice", "vsvip"]
    assert out["vsvip"] == [{
        "name": "c1--shop-web", **COMMON, "vrf_context_ref": "/api/vrfcontext/?name=global",
        "vip": [{"vip_id": "0", "auto_allocate_ip": True, "auto_allocate_ip_type": "V4_ONLY",
                 "ipam_network_subnet": {"network_ref": "/api/network/?name=vip-net",
                                         "subnet": {"ip_addr": {"addr": "127.1.0.0", "type": "V4"}, "mask": 24}}}],
        "markers": [{"key": "clustername", "values": ["c1"]}],
    }]
    tcp, udp = out["pool"]
    assert tcp == {
        "name": "c1--shop-web-TCP-80", **COMMON, "default_server_port": 8080,
        "servers": [
            {"ip": {"addr": "10.0.0.1", "type": "V4"}, "port": 8080, "enabled": True},
            {"ip": {"addr": "10.0.0.2", "type": "V4"}, "port": 8080, "enabled": True},
            {"ip": {"addr": "10.0.0.3", "type": "V4"}, "port": 8080, "enabled": False},
        ],
        "health_monitor_refs": ["/api/healthmonitor/?name=System-TCP"],
        "markers": [{"key": "clustername", "values": ["c1"]}, {"key": "Namespace", "values": ["shop"]},
                    {"key": "ServiceName", "values": ["web"]}, {"key": "Port", "values": ["80"]},
                    {"key": "Protocol", "values": ["TCP"]}],
    }
    assert udp["name"] == "c1--shop-web-UDP-53"
    assert udp["default_server_port"] == 5353
    assert [s["port"] for s in udp["servers"]] == [5353, 5353, 5353]
    assert udp["health_monitor_refs"] == ["/api/healthmonitor/?name=System-UDP"]
    assert out["l4policyset"] == [{
        "name": "c1--shop-web", "tenant_ref": "/api/tenant/?name=admin", "created_by": "ako-c1",
        "l4_connection_policy": {"rules": [
            {"name": "TCP-80", "index": 1, "enable": True,
             "match": {"port": {"match_criteria": "IS_IN", "ports": [80]},
                       "protocol": {"match_criteria": "IS_IN", "protocol": "PROTOCOL_TCP"}},
             "action": {"select_pool": {"action_type": "L4_RULE_ACTION_SELECT_POOL",
                                        "pool_ref": "/api/pool/?name=c1--shop-web-TCP-80"}}},
            {"name": "UDP-53", "index": 2, "enable": True,
             "match": {"port": {"match_criteria": "IS_IN", "ports": [53]},
                       "protocol": {"match_criteria": "IS_IN", "protocol": "PROTOCOL_UDP"}},
             "action": {"select_pool": {"action_type": "L4_RULE_ACTION_SELECT_POOL",
                                        "pool_ref": "/api/pool/?name=c1--shop-web-UDP-53"}}},
        ]},
        "markers": [{"key": "clustername", "values": ["c1"]}, {"key": "Namespace", "values": ["shop"]},
                    {"key": "ServiceName", "values": ["web"]}, {"key": "Protocol", "values": ["TCP,UDP"]}],
    }]
    assert out["virtualservice"] == [{
        "name": "c1--shop-web", **COMMON,
        "vrf_context_ref": "/api/vrfcontext/?name=global",
        "se_group_ref": "/api/serviceenginegroup/?name=Default-Group",
        "vsvip_ref": "/api/vsvip/?name=c1--shop-web",
        "services": [{"port": 80, "enable_ssl": False},
                     {"port": 53, "enable_ssl": False,
                      "override_network_profile_ref": "/api/networkprofile/?name=System-UDP-Fast-Path"}],
        "application_profile_ref": "/api/applicationprofile/?name=System-L4-Application",
        "network_profile_ref": "/api/networkprofile/?name=System-TCP-Proxy",
        "l4_policies": [{"index": 1, "l4_policy_set_ref": "/api/l4policyset/?name=c1--shop-web"}],
        "traffic_enabled": True, "east_west_placement": False,
        "service_metadata": '{"namespace_svc_name":["shop/web"]}',
        "markers": [{"key": "clustername", "values": ["c1"]}, {"key": "Namespace", "values": ["shop"]},
                    {"key": "ServiceName", "values": ["web"]}],
    }]


def test_udp_only_service_uses_udp_profile_without_overrides() -> None:
    out, _ = translate_documents([svc(ports=[{"port": 53, "protocol": "UDP"}])], CFG)
    (vs,) = out["virtualservice"]
    assert vs["network_profile_ref"] == "/api/networkprofile/?name=System-UDP-Fast-Path"
    assert vs["services"] == [{"port": 53, "enable_ssl": False}]
    assert out["pool"][0]["default_server_port"] == 53
    assert out["pool"][0]["servers"] == []


def test_foreign_class_and_non_lb_services_are_left_alone() -> None:
    out, problems = translate_documents([
        svc("a", loadBalancerClass="example.com/other"),
        {**svc("b"), "spec": {**svc("b")["spec"], "type": "ClusterIP"}},
    ], CFG)
    assert out == {} and problems == []
    ours, _ = translate_documents([svc("a", loadBalancerClass="ako.vmware.com/avi-lb")], CFG)
    assert [v["name"] for v in ours["virtualservice"]] == ["c1--shop-a"]


def test_dual_stack_and_static_vip() -> None:
    out, _ = translate_documents([svc(ipFamilies=["IPv4", "IPv6"], ipFamilyPolicy="RequireDualStack")], CFG)
    vip = out["vsvip"][0]["vip"][0]
    assert vip["auto_allocate_ip_type"] == "V4_V6"
    assert vip["ipam_network_subnet"]["subnet6"] == {"ip_addr": {"addr": "fd00:1::", "type": "V6"}, "mask": 64}
    out, _ = translate_documents([svc(loadBalancerIP="127.1.0.50")], CFG)
    vip = out["vsvip"][0]["vip"][0]
    assert vip["auto_allocate_ip"] is False
    assert vip["ip_address"] == {"addr": "127.1.0.50", "type": "V4"}


def test_bad_static_ip_and_missing_network_are_problems_not_trees() -> None:
    out, problems = translate_documents([svc(loadBalancerIP="not-an-ip")], CFG)
    assert out == {}
    assert [(p.source.name, p.reason) for p in problems] == [("web", "InvalidLoadBalancerIP")]
    out, problems = translate_documents([svc()], parse_config({"AKOSettings": {"clusterName": "c1"}}))
    assert out == {} and [p.reason for p in problems] == ["NoVipNetwork"]


def _ko(doc: dict[str, Any], deleted: bool = False) -> KubeObject:
    m = doc["metadata"]
    return KubeObject(cluster="c1", kind=doc["kind"], namespace=m.get("namespace", ""), name=m["name"],
                      deleted=deleted, obj=None if deleted else doc)


def test_engine_publishes_only_changes_and_deletes_when_source_goes() -> None:
    e = Engine(CFG)
    e.observe(_ko(svc()))
    e.observe(_ko(slice_("web", "shop", "web-1", [("10.0.0.1", True)])))
    first = e.flush()
    assert [t.vs_name for t in first.trees] == ["c1--shop-web"]
    # Same input again: nothing to publish.
    e.observe(_ko(svc()))
    assert not e.flush()
    # Endpoint change: the tree changes only in its pools.
    e.observe(_ko(slice_("web", "shop", "web-1", [("10.0.0.1", True), ("10.0.0.9", True)])))
    (changed,) = e.flush().trees
    before = {o.name: o.body for o in first.trees[0].objects}
    after = {o.name: o.body for o in changed.objects}
    assert [n for n in after if after[n] != before[n]] == ["c1--shop-web-TCP-80", "c1--shop-web-UDP-53"]
    # Source deleted: one deletion tree.
    e.observe(_ko(svc(), deleted=True))
    (gone,) = e.flush().trees
    assert gone.deleted and gone.vs_name == "c1--shop-web" and gone.objects == ()
    assert e.live_vs_names() == ()


def test_restarted_engine_seeded_from_bus_publishes_nothing_and_finds_stale() -> None:
    e1 = Engine(CFG)
    e1.observe(_ko(svc("a")))
    e1.observe(_ko(svc("b")))
    trees = e1.flush().trees
    e2 = Engine(CFG)
    for t in trees:
        e2.remember_tree(t)
    e2.observe(_ko(svc("a")))  # b was deleted while the translator was down
    e2.mark_all()
    assert not e2.flush()
    stale = e2.stale().trees
    assert [(t.vs_name, t.deleted) for t in stale] == [("c1--shop-b", True)]


def test_problem_report_is_published_once_and_cleared() -> None:
    e = Engine(CFG)
    e.observe(_ko(svc(loadBalancerIP="bad")))
    (rep,) = e.flush().reports
    assert rep.source == ObjRef(kind="Service", namespace="shop", name="web") and rep.problems
    e.observe(_ko(svc(loadBalancerIP="bad")))
    assert not e.flush()
    e.observe(_ko(svc()))
    ch = e.flush()
    assert [r.problems for r in ch.reports] == [()] and len(ch.trees) == 1


def test_namespace_selector_limits_handled_services() -> None:
    cfg = parse_config({**CFG.model_dump(mode="json"),
                        "AKOSettings": {"clusterName": "c1", "namespaceSelector": {"labelKey": "lb", "labelValue": "avi"}}})
    ns_plain = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    out, _ = translate_documents([ns_plain, svc()], cfg)
    assert out == {}
    ns_lab = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"lb": "avi"}}}
    out, _ = translate_documents([ns_lab, svc()], cfg)
    assert [v["name"] for v in out["virtualservice"]] == ["c1--shop-web"]
    # Labelling the namespace later brings its Services in.
    e = Engine(cfg)
    e.observe(_ko(ns_plain))
    e.observe(_ko(svc()))
    assert not e.flush().trees
    e.observe(_ko(ns_lab))
    assert [t.vs_name for t in e.flush().trees] == ["c1--shop-web"]


def test_bad_input_keeps_the_last_good_tree_until_fixed_or_deleted() -> None:
    e = Engine(CFG)
    e.observe(_ko(svc()))
    (tree,) = e.flush().trees
    bad = svc()
    bad["metadata"]["annotations"] = {"ako.vmware.com/load-balancer-ip": "300.1.1.1"}
    e.observe(_ko(bad))
    ch = e.flush()
    assert ch.trees == [] and [p.reason for r in ch.reports for p in r.problems] == ["InvalidLoadBalancerIP"]
    assert e.live_vs_names() == (tree.vs_name,)
    e.mark_all()
    assert not e.stale().trees  # a full resync does not collect it either
    e.observe(_ko(bad, deleted=True))
    assert [t.deleted for t in e.flush().trees] == [True]


def test_pool_members_are_ordered_by_address_value_ipv4_before_ipv6() -> None:
    """Numeric order (10.0.0.9 before 10.0.0.10, as strings would not), one family after the other, so a
    tree's checksum does not depend on the order the slices list their endpoints."""
    v4 = slice_("web", "shop", "web-4", [("10.0.0.10", True), ("10.0.0.9", True), ("9.255.0.1", True)])
    v6 = {**slice_("web", "shop", "web-6", [("fd00::10", True), ("fd00::9", True), ("::ffff:1.2.3.4", True)]),
          "addressType": "IPv6"}
    out, problems = translate_documents([svc(ports=[{"name": "http", "port": 80, "protocol": "TCP"}]), v6, v4], CFG)
    assert problems == []
    assert [(s["ip"]["addr"], s["ip"]["type"]) for s in out["pool"][0]["servers"]] == [
        ("9.255.0.1", "V4"), ("10.0.0.9", "V4"), ("10.0.0.10", "V4"),
        ("::ffff:1.2.3.4", "V6"), ("fd00::9", "V6"), ("fd00::10", "V6")]
