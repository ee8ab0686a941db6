"""Gateway API, the telco way: a Gateway with SIP and signalling listeners, Services joined by label.

Four service processes, real NATS, a real kube-apiserver with the Gateway API
CRDs and the real EndpointSlice controller, and the simulator as its own process.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import lb_service, run_pod
from tests.e2e.lb_status import condition, events, failed_with

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

GROUP, VERSION = "gateway.networking.k8s.io", "v1"
CONTROLLER = "ako.vmware.com/avi-lb"
LISTENERS = [{"name": "sip-tcp", "port": 5060, "protocol": "TCP"},
             {"name": "sip-udp", "port": 5060, "protocol": "UDP"},
             {"name": "sig", "port": 8443, "protocol": "TCP"}]
# name -> (port, protocol, target port, pod IP)
SERVICES = {"sip-t": (5060, "TCP", 5061, "10.244.8.1"), "sip-u": (5060, "UDP", 5062, "10.244.8.2"),
            "sig": (8443, "TCP", 8444, "10.244.8.3")}


def custom(p: Pipeline) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(p.api)


def gateway_class(p: Pipeline) -> str:
    name = f"{p.cluster}-avi"
    custom(p).create_cluster_custom_object(GROUP, VERSION, "gatewayclasses", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "GatewayClass", "metadata": {"name": name},
        "spec": {"controllerName": CONTROLLER}})
    return name


def gateway(p: Pipeline, name: str = "core") -> dict[str, Any]:
    return dict(custom(p).get_namespaced_custom_object_status(GROUP, VERSION, p.namespace, "gateways", name))


def cond(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_)


def programmed_vip(p: Pipeline, name: str = "core") -> str | None:
    gw = gateway(p, name)
    addrs = (gw.get("status") or {}).get("addresses") or []
    if cond(gw, "Programmed")["status"] == "True" and addrs:
        return str(addrs[0]["value"])
    return None


def joined_service(p: Pipeline, name: str, port: int, proto: str, target: int) -> None:
    svc = lb_service(name, [{"name": "p", "port": port, "targetPort": target, "protocol": proto}])
    svc["metadata"]["labels"] = {"ako.vmware.com/gateway-name": "core",
                                 "ako.vmware.com/gateway-namespace": p.namespace}
    p.core.create_namespaced_service(p.namespace, svc)


def servers(p: Pipeline, pool: str) -> set[tuple[str, int]]:
    return {(s["ip"]["addr"], s["port"]) for s in (p.objects("pool").get(pool) or {}).get("servers") or []}


def test_gateway_with_three_listeners_and_three_joined_services(pipeline: Pipeline) -> None:
    p = pipeline
    cls = gateway_class(p)
    try:
        _run(p, cls)
    finally:
        try:
            custom(p).delete_cluster_custom_object(GROUP, VERSION, "gatewayclasses", cls)
        except ApiException as exc:
            if exc.status != 404:
                raise


def _run(p: Pipeline, cls: str) -> None:
    custom(p).create_namespaced_custom_object(GROUP, VERSION, p.namespace, "gateways", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Gateway", "metadata": {"name": "core"},
        "spec": {"gatewayClassName": cls, "listeners": LISTENERS}})
    for name, (port, proto, target, ip) in SERVICES.items():
        joined_service(p, name, port, proto, target)
        run_pod(p.core, p.namespace, f"{name}-1", {"app": name}, ip, [("p", target, proto)])
    # A Service port no listener has: a problem on that Service only.
    joined_service(p, "stray", 7000, "TCP", 7001)

    vs = f"{p.cluster}--{p.namespace}-core"
    pools = {name: f"{p.cluster}--{p.namespace}-{name}-core-{proto}-{port}"
             for name, (port, proto, _, _) in SERVICES.items()}
    vip = wait_for(lambda: programmed_vip(p) if all(servers(p, pl) for pl in pools.values()) else None, 120,
                   "the Gateway programmed with a VIP and every pool with its pod")
    wait_for(lambda: all(p.vips(n) == [vip] for n in SERVICES), 60, "the Gateway's VIP on all three Services")

    objs = p.all_objects()
    assert set(objs["virtualservice"]) == {vs} and set(objs["vsvip"]) == {vs}
    assert objs["vsvip"][vs]["vip"][0]["ip_address"]["addr"] == vip
    assert sorted((s["port"], "override_network_profile_ref" in s) for s in objs["virtualservice"][vs]["services"]) \
        == [(5060, False), (5060, True), (8443, False)]
    assert set(objs["pool"]) == set(pools.values())
    for name, (_, _, target, ip) in SERVICES.items():
        assert servers(p, pools[name]) == {(ip, target)}

    gw = gateway(p)
    assert cond(gw, "Accepted")["status"] == "True"
    assert cond(gw, "Programmed")["observedGeneration"] == gw["metadata"]["generation"]
    assert gw["status"]["addresses"] == [{"type": "IPAddress", "value": vip}]
    listeners = {li["name"]: li for li in gw["status"]["listeners"]}
    assert {n: li["attachedRoutes"] for n, li in listeners.items()} == {"sip-tcp": 1, "sip-udp": 1, "sig": 1}
    for li in listeners.values():
        got = {c["type"]: (c["status"], c["reason"]) for c in li["conditions"]}
        assert got == {"Accepted": ("True", "Accepted"), "Programmed": ("True", "Programmed"),
                       "ResolvedRefs": ("True", "ResolvedRefs"), "Conflicted": ("False", "NoConflicts")}
    gc = custom(p).get_cluster_custom_object_status(GROUP, VERSION, "gatewayclasses", cls)
    assert cond(gc, "Accepted")["status"] == "True"
    stray = wait_for(lambda: failed_with(p, "stray", "NoMatchingListener"), 60, "the stray Service's condition")
    assert "7000/TCP" in stray["message"] and p.vips("stray") == []
    wait_for(lambda: [e for e in events(p, "stray") if e.reason == "NoMatchingListener"], 30, "its Warning Event")

    # One Service leaves: its pool goes, the VIP and the other two stay.
    p.core.delete_namespaced_service("sip-u", p.namespace)
    wait_for(lambda: pools["sip-u"] not in p.objects("pool"), 60, "the UDP pool removed")
    objs = p.all_objects()
    assert set(objs["pool"]) == {pools["sip-t"], pools["sig"]}
    assert objs["vsvip"][vs]["vip"][0]["ip_address"]["addr"] == vip
    assert p.vips("sip-t") == [vip] and p.vips("sig") == [vip] and programmed_vip(p) == vip
    # Health writes the Gateway's status after the apply it reports on, so it may trail the pool's removal.
    wait_for(lambda: {li["name"]: li["attachedRoutes"] for li in gateway(p)["status"]["listeners"]}
             == {"sip-tcp": 1, "sip-udp": 0, "sig": 1}, 30, "the UDP listener with no route attached")

    # The Gateway goes: everything it caused goes, the joined Services say why.
    custom(p).delete_namespaced_custom_object(GROUP, VERSION, p.namespace, "gateways", "core")
    wait_for(lambda: not p.objects("virtualservice") and not p.objects("vsvip") and not p.objects("pool")
             and not p.objects("l4policyset"), 60, "the Gateway's VS, vsvip, pools and policy set deleted")
    for name in ("sip-t", "sig"):
        c = wait_for(lambda n=name: failed_with(p, n, "GatewayNotFound"), 60, f"{name}: GatewayNotFound")
        assert f"{p.namespace}/core" in c["message"]
        wait_for(lambda n=name: p.vips(n) == [], 30, f"{name}: VIP cleared")
    assert condition(p, "stray") is not None


def test_restart_converges_without_rewrites_and_other_controllers_gateways_stay_untouched(pipeline: Pipeline) -> None:
    p = pipeline
    cls = gateway_class(p)
    other = f"{p.cluster}-other"
    custom(p).create_cluster_custom_object(GROUP, VERSION, "gatewayclasses", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "GatewayClass", "metadata": {"name": other},
        "spec": {"controllerName": "example.com/other-lb"}})
    try:
        for name, klass in (("core", cls), ("theirs", other)):
            custom(p).create_namespaced_custom_object(GROUP, VERSION, p.namespace, "gateways", {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "Gateway", "metadata": {"name": name},
                "spec": {"gatewayClassName": klass, "listeners": LISTENERS}})
        joined_service(p, "sig", 8443, "TCP", 8444)
        vip = wait_for(lambda: programmed_vip(p), 120, "the Gateway programmed")
        wait_for(lambda: p.vips("sig") == [vip], 60, "the VIP on the joined Service")
        before = cond(gateway(p), "Accepted")

        # Translator and health die and come back; then one more Service joins.
        for name in ("translator", "health"):
            p.children[name].kill()
        p.reset_log()
        for name in ("translator", "health"):
            p.children[name].restart()
        joined_service(p, "sip-u", 5060, "UDP", 5062)
        wait_for(lambda: p.vips("sip-u") == [vip], 120, "the new Service joined after the restart")
        wait_for(lambda: {li["name"]: li["attachedRoutes"] for li in gateway(p)["status"]["listeners"]}
                 == {"sip-tcp": 0, "sip-udp": 1, "sig": 1}, 60, "attachedRoutes counted again")
        assert cond(gateway(p), "Accepted")["lastTransitionTime"] == before["lastTransitionTime"]
        # Only the change went to the controller: a new pool, the VS and policy set updated. No vsvip write.
        written = {(w.get("object_type", w.get("type")), w["method"]) for w in p.writes()}
        assert ("pool", "POST") in written and ("vsvip", "PUT") not in written and ("vsvip", "POST") not in written, written

        theirs = custom(p).get_namespaced_custom_object_status(GROUP, VERSION, p.namespace, "gateways", "theirs")
        assert all(c["reason"] == "Pending" and c["status"] == "Unknown"
                   for c in theirs["status"]["conditions"]), theirs["status"]
        assert "addresses" not in theirs["status"] and "listeners" not in theirs["status"]
        theirs_cls = custom(p).get_cluster_custom_object_status(GROUP, VERSION, "gatewayclasses", other)
        assert all(c["status"] == "Unknown" for c in theirs_cls["status"]["conditions"])
    finally:
        for name in (cls, other):
            custom(p).delete_cluster_custom_object(GROUP, VERSION, "gatewayclasses", name)
