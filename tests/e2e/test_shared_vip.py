"""Services sharing one VIP end to end (ako.vmware.com/enable-shared-vip): TCP, UDP and SCTP behind one address."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import lb_service
from tests.e2e.lb_status import events, failed_with

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

SHARED = "ako.vmware.com/enable-shared-vip"
MEMBERS = {"web": (80, "TCP"), "dns": (53, "UDP"), "amf": (38412, "SCTP")}


def member(name: str, port: int, proto: str, key: str = "core") -> dict[str, Any]:
    doc = lb_service(name, [{"name": "p", "port": port, "protocol": proto}])
    doc["metadata"]["annotations"] = {SHARED: key}
    return doc


def service_ports(p: Pipeline, vs_name: str) -> list[int]:
    return sorted(s["port"] for s in p.objects("virtualservice").get(vs_name, {}).get("services", []))


def converge_group(p: Pipeline) -> tuple[str, str]:
    for name, (port, proto) in MEMBERS.items():
        p.core.create_namespaced_service(p.namespace, member(name, port, proto))
    vs_name = f"{p.cluster}--{p.namespace}-core"

    def same_vip() -> str | None:
        vips = {n: p.vips(n) for n in MEMBERS}
        first = vips["web"]
        return first[0] if len(first) == 1 and all(v == first for v in vips.values()) else None

    vip = wait_for(same_vip, 120, "the same VIP on all three Services")
    wait_for(lambda: service_ports(p, vs_name) == [53, 80, 38412], 60, "one VS with the three ports")
    return vs_name, vip


def test_three_protocols_share_one_vip_and_survive_a_member_leaving(pipeline: Pipeline) -> None:
    p = pipeline
    vs_name, vip = converge_group(p)
    objs = p.all_objects()
    assert set(objs["virtualservice"]) == {vs_name} and set(objs["vsvip"]) == {vs_name}
    assert set(objs["pool"]) == {f"{vs_name.rsplit('-core', 1)[0]}-{n}-core-{proto}-{port}"
                                 for n, (port, proto) in MEMBERS.items()}
    assert objs["vsvip"][vs_name]["vip"][0]["ip_address"]["addr"] == vip

    p.reset_log()
    p.core.delete_namespaced_service("dns", p.namespace)
    wait_for(lambda: service_ports(p, vs_name) == [80, 38412], 60, "the VS without port 53")
    wait_for(lambda: len(p.objects("pool")) == 2, 60, "the dns pool deleted")
    assert p.vips("web") == [vip] and p.vips("amf") == [vip]
    assert p.objects("vsvip")[vs_name]["vip"][0]["ip_address"]["addr"] == vip
    touched = {(w["method"], w.get("object_type", w.get("type"))) for w in p.writes()}
    assert ("PUT", "vsvip") not in touched and ("DELETE", "vsvip") not in touched, touched


def test_port_clash_marks_only_the_newcomer(pipeline: Pipeline) -> None:
    p = pipeline
    vs_name, vip = converge_group(p)
    p.core.create_namespaced_service(p.namespace, member("web2", 80, "TCP"))
    cond = wait_for(lambda: failed_with(p, "web2", "SharedVipPortConflict"), 60, "the newcomer's condition")
    assert cond["message"] == "shared VIP core: port 80/TCP is already used by Service web"
    assert wait_for(lambda: [e for e in events(p, "web2") if e.reason == "SharedVipPortConflict"], 30,
                    "a Warning Event on the newcomer")
    assert p.vips("web2") == []
    for n in MEMBERS:
        assert p.vips(n) == [vip]
        c = failed_with(p, n, "SharedVipPortConflict")
        assert c is None, c
    assert service_ports(p, vs_name) == [53, 80, 38412]
    assert len(p.objects("pool")) == 3
