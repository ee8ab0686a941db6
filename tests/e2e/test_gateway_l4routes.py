"""TCPRoutes and UDPRoutes (experimental channel) on a Gateway's L4 listeners, end to end.

Four service processes, real NATS, a real kube-apiserver with the Gateway API
standard and experimental route CRDs and the real EndpointSlice controller,
and the simulator as its own process. Route status is written by health.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import lb_service, run_pod
from tests.e2e.test_gateway_labels import (
    CONTROLLER,
    GROUP,
    VERSION,
    custom,
    gateway,
    gateway_class,
    programmed_vip,
)

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

ALPHA = "v1alpha2"
PLURAL = {"TCPRoute": "tcproutes", "UDPRoute": "udproutes", "TLSRoute": "tlsroutes"}
LISTENERS = [{"name": "sip-tcp", "port": 5060, "protocol": "TCP"},
             {"name": "sip-udp", "port": 5060, "protocol": "UDP"},
             {"name": "sig", "port": 8443, "protocol": "TCP", "allowedRoutes": {"namespaces": {"from": "All"}}}]


def backend_service(p: Pipeline, name: str, ip: str, ports: list[tuple[int, str, int]]) -> None:
    svc = lb_service(name, [{"name": f"p{n}-{proto.lower()}", "port": n, "targetPort": t, "protocol": proto}
                            for n, proto, t in ports], type="ClusterIP")
    p.core.create_namespaced_service(p.namespace, svc)
    run_pod(p.core, p.namespace, f"{name}-1", {"app": name}, ip,
            [(f"p{n}-{proto.lower()}", t, proto) for n, proto, t in ports])


def l4_route(p: Pipeline, kind: str, ns: str, name: str, section: str, backends: list[dict[str, Any]],
             gw: str = "core", **spec: Any) -> None:
    custom(p).create_namespaced_custom_object(GROUP, ALPHA, ns, PLURAL[kind], {
        "apiVersion": f"{GROUP}/{ALPHA}", "kind": kind, "metadata": {"name": name},
        "spec": {"parentRefs": [{"name": gw, "namespace": p.namespace, "sectionName": section}],
                 "rules": [{"backendRefs": backends}], **spec}})


def route_parents(p: Pipeline, kind: str, ns: str, name: str) -> list[dict[str, Any]]:
    r = custom(p).get_namespaced_custom_object_status(GROUP, ALPHA, ns, PLURAL[kind], name)
    return [x for x in (r.get("status") or {}).get("parents") or [] if x["controllerName"] == CONTROLLER]


def route_condition(p: Pipeline, kind: str, ns: str, name: str, type_: str) -> dict[str, Any] | None:
    parents = route_parents(p, kind, ns, name)
    return next((c for c in parents[0]["conditions"] if c["type"] == type_), None) if parents else None


def ratios(group: dict[str, Any]) -> list[tuple[str, int]]:
    return sorted((m["pool_ref"].rsplit("#", 1)[-1], m["ratio"]) for m in group["members"])


def test_tcp_and_udp_routes_weighted_backends_refused_reference_and_status(
        gateway_experimental_routes: list[str], pipeline: Pipeline) -> None:
    p = pipeline
    cls = gateway_class(p)
    other_ns = f"{p.cluster}-other"
    p.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=other_ns, labels={"albus-e2e": p.cluster})))
    try:
        custom(p).create_namespaced_custom_object(GROUP, VERSION, p.namespace, "gateways", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Gateway", "metadata": {"name": "core"},
            "spec": {"gatewayClassName": cls, "listeners": LISTENERS}})
        backend_service(p, "sip", "10.244.7.1", [(5060, "TCP", 5061), (5060, "UDP", 5062)])
        backend_service(p, "sig", "10.244.7.2", [(8443, "TCP", 8444)])
        backend_service(p, "sig-canary", "10.244.7.3", [(8443, "TCP", 8444)])
        l4_route(p, "TCPRoute", p.namespace, "sip", "sip-tcp", [{"name": "sip", "port": 5060}])
        l4_route(p, "UDPRoute", p.namespace, "sip", "sip-udp", [{"name": "sip", "port": 5060}])
        l4_route(p, "TCPRoute", p.namespace, "sig", "sig", [{"name": "sig", "port": 8443, "weight": 80},
                                                            {"name": "sig-canary", "port": 8443, "weight": 20}])
        # Another namespace's route to this namespace's Service, with no ReferenceGrant.
        l4_route(p, "TCPRoute", other_ns, "sneaky", "sig", [{"name": "sip", "namespace": p.namespace, "port": 5060}])

        vs = f"{p.cluster}--{p.namespace}-core"
        pg = {k: f"{vs}-{p.namespace}-{n}" for k, n in (
            ("tcp", "sip-TCP-5060"), ("udp", "sip-UDP-5060"), ("sig", "sig-TCP-8443"))}
        pools = {"tcp": f"{pg['tcp']}-{p.namespace}-sip-5060", "udp": f"{pg['udp']}-{p.namespace}-sip-5060",
                 "sig": f"{pg['sig']}-{p.namespace}-sig-8443", "canary": f"{pg['sig']}-{p.namespace}-sig-canary-8443"}

        def members(pool: str) -> set[tuple[str, int]]:
            return {(s["ip"]["addr"], s["port"]) for s in (p.objects("pool").get(pool) or {}).get("servers") or []}

        vip = wait_for(lambda: programmed_vip(p) if all(members(x) for x in pools.values()) else None, 120,
                       "the Gateway programmed and every route's pool with its pod")
        assert members(pools["tcp"]) == {("10.244.7.1", 5061)} and members(pools["udp"]) == {("10.244.7.1", 5062)}
        groups = p.objects("poolgroup")
        assert set(groups) == set(pg.values())
        assert ratios(groups[pg["sig"]]) == [(pools["sig"], 80), (pools["canary"], 20)]
        (ps,) = p.objects("l4policyset").values()
        assert {r["name"]: (r["action"]["select_pool"]["action_type"],
                            r["action"]["select_pool"]["pool_group_ref"].rsplit("#", 1)[-1])
                for r in ps["l4_connection_policy"]["rules"]} == {
            "TCP-5060": ("L4_RULE_ACTION_SELECT_POOLGROUP", pg["tcp"]),
            "TCP-8443": ("L4_RULE_ACTION_SELECT_POOLGROUP", pg["sig"]),
            "UDP-5060": ("L4_RULE_ACTION_SELECT_POOLGROUP", pg["udp"])}
        assert p.objects("vsvip")[vs]["vip"][0]["ip_address"]["addr"] == vip

        for kind, name in (("TCPRoute", "sip"), ("UDPRoute", "sip"), ("TCPRoute", "sig")):
            acc = wait_for(lambda k=kind, n=name: route_condition(p, k, p.namespace, n, "Accepted"), 60,
                           f"{kind} {name}: status written")
            refs = route_condition(p, kind, p.namespace, name, "ResolvedRefs")
            assert (acc["status"], acc["reason"]) == ("True", "Accepted") and refs is not None
            assert (refs["status"], refs["reason"]) == ("True", "ResolvedRefs") and acc["observedGeneration"] == 1
            assert route_parents(p, kind, p.namespace, name)[0]["parentRef"]["sectionName"] in ("sip-tcp", "sip-udp",
                                                                                                 "sig")
        refused = wait_for(lambda: (c := route_condition(p, "TCPRoute", other_ns, "sneaky", "ResolvedRefs"))
                           and c["status"] == "False" and c, 60, "ResolvedRefs=False on the cross-namespace route")
        assert refused["reason"] == "RefNotPermitted"
        sneaky = route_condition(p, "TCPRoute", other_ns, "sneaky", "Accepted")
        # Accepted (the listener allows all namespaces), but the older route serves the listener.
        assert sneaky is not None and sneaky["status"] == "True" and f"TCPRoute {p.namespace}/sig" in sneaky["message"]
        wait_for(lambda: {li["name"]: li["attachedRoutes"] for li in gateway(p)["status"]["listeners"]}
                 == {"sip-tcp": 1, "sip-udp": 1, "sig": 2}, 60, "attachedRoutes counted per listener")

        # The UDPRoute goes: its pool group and pool go, the listener stays a service port, the VIP stays.
        custom(p).delete_namespaced_custom_object(GROUP, ALPHA, p.namespace, "udproutes", "sip")
        wait_for(lambda: pg["udp"] not in p.objects("poolgroup") and pools["udp"] not in p.objects("pool"), 60,
                 "the UDPRoute's pool group and pool removed")
        vs_obj = p.objects("virtualservice")[vs]
        assert sorted(s["port"] for s in vs_obj["services"]) == [5060, 5060, 8443]
        assert programmed_vip(p) == vip
    finally:
        p.core.delete_namespace(other_ns)
        custom(p).delete_cluster_custom_object(GROUP, VERSION, "gatewayclasses", cls)


def test_tls_passthrough_route_then_the_gateway_goes_and_the_route_loses_its_parent_entry(
        gateway_experimental_routes: list[str], pipeline: Pipeline) -> None:
    p = pipeline
    cls = gateway_class(p)
    try:
        custom(p).create_namespaced_custom_object(GROUP, VERSION, p.namespace, "gateways", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Gateway", "metadata": {"name": "edge"},
            "spec": {"gatewayClassName": cls, "listeners": [
                {"name": "tls", "port": 443, "protocol": "TLS", "tls": {"mode": "Passthrough"}},
                {"name": "sig", "port": 8443, "protocol": "TCP"}]}})
        backend_service(p, "shop", "10.244.7.5", [(443, "TCP", 8443)])
        l4_route(p, "TLSRoute", p.namespace, "shop", "tls", [{"name": "shop", "port": 443}], gw="edge",
                 hostnames=["shop.example.com"])
        vs = f"{p.cluster}--{p.namespace}-edge"
        pg = f"{vs}-{p.namespace}-shop-TLS-443"
        pool = f"{pg}-{p.namespace}-shop-443"
        wait_for(lambda: programmed_vip(p, "edge") and (p.objects("pool").get(pool) or {}).get("servers"), 120,
                 "the TLS Gateway programmed and the route's pool with its pod")
        (ds,) = p.objects("vsdatascriptset").values()
        assert ds["name"] == vs and [r.rsplit("#", 1)[-1] for r in ds["pool_group_refs"]] == [pg]
        assert [r.rsplit("#", 1)[-1] for r in ds["protocol_parser_refs"]] == ["Default-TLS"]
        assert '["shop.example.com"] = "' + pg + '"' in ds["datascript"][0]["script"]
        vs_obj = p.objects("virtualservice")[vs]
        assert vs_obj["vs_datascripts"][0]["vs_datascript_set_ref"].rsplit("#", 1)[-1] == vs
        assert sorted(s["port"] for s in vs_obj["services"]) == [443, 8443]
        acc = wait_for(lambda: route_condition(p, "TLSRoute", p.namespace, "shop", "Accepted"), 60,
                       "the TLSRoute's status")
        assert (acc["status"], acc["reason"]) == ("True", "Accepted")
        listeners = {li["name"]: li for li in gateway(p, "edge")["status"]["listeners"]}
        assert listeners["tls"]["supportedKinds"] == [{"group": GROUP, "kind": "TLSRoute"}]
        assert listeners["tls"]["attachedRoutes"] == 1

        # Another controller's entry on the same route: albus must leave it alone.
        theirs = {"parentRef": {"name": "other-gw", "namespace": p.namespace}, "controllerName": "example.com/other",
                  "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                                  "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]}
        current = custom(p).get_namespaced_custom_object_status(GROUP, ALPHA, p.namespace, "tlsroutes", "shop")
        custom(p).patch_namespaced_custom_object_status(GROUP, ALPHA, p.namespace, "tlsroutes", "shop", {
            "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
            "status": {"parents": [*current["status"]["parents"], theirs]}})

        # The Gateway goes: the VS, datascript, pool group and pool go, and so does albus's parent entry.
        custom(p).delete_namespaced_custom_object(GROUP, VERSION, p.namespace, "gateways", "edge")
        wait_for(lambda: not p.objects("virtualservice") and not p.objects("vsdatascriptset")
                 and not p.objects("poolgroup") and not p.objects("pool"), 60, "the Gateway's objects deleted")
        wait_for(lambda: route_parents(p, "TLSRoute", p.namespace, "shop") == [], 60,
                 "albus's parent entry removed from the TLSRoute")
        left = custom(p).get_namespaced_custom_object_status(GROUP, ALPHA, p.namespace, "tlsroutes", "shop")
        assert [x["controllerName"] for x in left["status"]["parents"]] == ["example.com/other"]
    finally:
        custom(p).delete_cluster_custom_object(GROUP, VERSION, "gatewayclasses", cls)
