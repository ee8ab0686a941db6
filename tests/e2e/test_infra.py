"""AviInfraSetting, IP families and static VIPs end to end: real API server, NATS, four services, simulator."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from kubernetes.client.rest import ApiException

from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import lb_service
from tests.e2e.lb_status import condition, events, failed_with, infra_settings, ref_name

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

CONTROLLER_SEED = Path(__file__).with_name("infra_seed.yaml")
TCP80 = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
ANN = "aviinfrasetting.ako.vmware.com/name"


def with_annotations(doc: dict[str, object], ann: dict[str, str]) -> dict[str, object]:
    return {**doc, "metadata": {**doc["metadata"], "annotations": ann}}  # type: ignore[dict-item]


def test_dual_stack_service_gets_one_v4_and_one_v6_address(pipeline: Pipeline) -> None:
    p = pipeline
    p.core.create_namespaced_service(p.namespace, lb_service(
        "dual", TCP80, ipFamilies=["IPv4", "IPv6"], ipFamilyPolicy="RequireDualStack"))
    vips = wait_for(lambda: v if len(v := p.vips("dual")) == 2 else None, 90, "two VIPs in the Service status")
    addrs = [ipaddress.ip_address(v) for v in vips]
    assert sorted(a.version for a in addrs) == [4, 6]
    assert any(a in ipaddress.ip_network("127.100.0.0/24") for a in addrs)
    assert any(a in ipaddress.ip_network("fd00:a1b::/64") for a in addrs)
    vip = p.objects("vsvip")[f"{p.cluster}--{p.namespace}-dual"]["vip"][0]
    assert vip["auto_allocate_ip_type"] == "V4_V6"
    assert {vip["ip_address"]["addr"], vip["ip6_address"]["addr"]} == set(vips)
    assert wait_for(lambda: (c := condition(p, "dual")) and c["status"] == "True", 30, "Programmed")


def test_infra_setting_places_vs_and_bgp_labels_and_moves_se_group_keeping_the_vip(pipeline: Pipeline) -> None:
    p = pipeline
    with infra_settings(p) as infra:
        name = infra.create("edge", {"seGroup": {"name": "seg-a"},
                                     "network": {"vipNetworks": [{"networkName": "edge-net", "cidr": "127.101.0.0/24"}],
                                                 "enableRhi": True, "bgpPeerLabels": ["rack-a"]}})
        wait_for(lambda: infra.status(name).get("status") == "Accepted", 60, "the AviInfraSetting Accepted")
        p.core.create_namespaced_service(p.namespace, with_annotations(lb_service("nf", TCP80), {ANN: name}))
        vs_name = f"{p.cluster}--{p.namespace}-nf"
        vips = wait_for(lambda: p.vips("nf"), 90, "the VIP in the Service status")
        (vip,) = vips
        assert ipaddress.ip_address(vip) in ipaddress.ip_network("127.101.0.0/24")
        vs = p.objects("virtualservice")[vs_name]
        vsvip = p.objects("vsvip")[vs_name]
        assert ref_name(vs["se_group_ref"]) == "seg-a"
        assert vs["enable_rhi"] is True
        assert vsvip["bgp_peer_labels"] == ["rack-a"]

        p.reset_log()
        infra.patch_spec(name, {"seGroup": {"name": "seg-b"}})
        wait_for(lambda: ref_name(p.objects("virtualservice")[vs_name]["se_group_ref"]) == "seg-b", 90,
                 "the VS moved to seg-b")
        assert p.vips("nf") == [vip]
        assert p.objects("vsvip")[vs_name]["vip"][0]["ip_address"]["addr"] == vip
        writes = p.writes()
        assert [(w["method"], w.get("object_type", w.get("type"))) for w in writes] == [("PUT", "virtualservice")], writes

        # A network change re-allocates the VIP, and says so.
        infra.patch_spec(name, {"network": {"vipNetworks": [{"networkName": "vip-net", "cidr": "127.100.0.0/24"}]}})
        (moved,) = wait_for(lambda: v if (v := p.vips("nf")) and v != [vip] else None, 90, "a VIP from vip-net")
        assert ipaddress.ip_address(moved) in ipaddress.ip_network("127.100.0.0/24")
        assert [v["ip_address"]["addr"] for v in p.objects("vsvip")[vs_name]["vip"]] == [moved]
        ev = wait_for(lambda: [e for e in events(p, "nf") if e.reason == "VipReallocated"], 30, "the Event")
        assert ev[0].message.startswith("VIP network changed from edge-net to vip-net: the VIP is re-allocated "
                                        "and its address changes")


def test_rejected_infra_setting_says_why_and_its_services_wait(pipeline: Pipeline) -> None:
    p = pipeline
    with infra_settings(p) as infra:
        # The API server enforces the schema: BGP labels without RHI never get stored.
        with pytest.raises(ApiException) as refused:
            infra.create("norhi", {"network": {"bgpPeerLabels": ["rack-a"]}})
        assert refused.value.status == 422 and "bgpPeerLabels requires enableRhi" in str(refused.value.body)
        name = infra.create("bad", {"seGroup": {"name": "seg-missing"},
                                    "network": {"vipNetworks": [{"networkName": "vip-net", "cidr": "127.99.0.0/24"}],
                                                "enableRhi": True, "bgpPeerLabels": ["rack-a", "rack-z"]}})
        st = wait_for(lambda: s if (s := infra.status(name)).get("status") == "Rejected" else None, 60,
                      "the AviInfraSetting Rejected")
        assert st["error"] == ("Service Engine group seg-missing not found; cidr 127.99.0.0/24 is not a subnet of "
                               "network vip-net (it has 127.100.0.0/24, fd00:a1b::/64); BGP peer label(s) rack-z "
                               "not configured on any BGP peer of VRF global")
        wait_for(lambda: any(e.reason == "Rejected" for e in events(p, name, "default", "AviInfraSetting")), 30,
                 "a Rejected Event on the AviInfraSetting")
        p.core.create_namespaced_service(p.namespace, with_annotations(lb_service("waits", TCP80), {ANN: name}))
        cond = wait_for(lambda: failed_with(p, "waits", "AviInfraSettingNotAccepted"), 60, "the Service's condition")
        assert cond["message"] == f"AviInfraSetting {name} is rejected: {st['error']}"
        assert wait_for(lambda: [e for e in events(p, "waits") if e.reason == "AviInfraSettingNotAccepted"], 30,
                        "a Warning Event on the Service")
        assert p.objects("virtualservice") == {} and p.objects("vsvip") == {}
        assert p.vips("waits") == []


def test_taken_static_vip_gives_a_condition_and_leaves_the_controller_clean(pipeline: Pipeline) -> None:
    p = pipeline
    p.core.create_namespaced_service(p.namespace, lb_service("first", TCP80))
    (vip,) = wait_for(lambda: p.vips("first"), 90, "the first Service's VIP")
    before = p.all_objects()
    p.core.create_namespaced_service(p.namespace, lb_service("second", TCP80, loadBalancerIP=vip))
    cond = wait_for(lambda: failed_with(p, "second", "ControllerError"), 90, "the second Service's condition")
    assert f"IP address {vip} is already in use" in cond["message"]
    assert wait_for(lambda: [e for e in events(p, "second") if e.type == "Warning"], 30, "a Warning Event")
    after = p.all_objects()
    assert {t: set(o) for t, o in after.items()} == {t: set(o) for t, o in before.items()}
    assert p.vips("second") == [] and p.vips("first") == [vip]
    # An address outside the network never reaches the controller.
    p.core.create_namespaced_service(p.namespace, lb_service("outside", TCP80, loadBalancerIP="127.55.0.1"))
    cond = wait_for(lambda: failed_with(p, "outside", "LoadBalancerIPOutsideNetwork"), 60, "the outside condition")
    assert cond["message"] == "127.55.0.1 is not in 127.100.0.0/24 of VIP network vip-net"
