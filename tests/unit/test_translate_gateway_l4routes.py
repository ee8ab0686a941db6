"""TCPRoutes and UDPRoutes on a Gateway's L4 listeners: pools, pool groups, precedence, route status."""

from __future__ import annotations

from typing import Any

from services.common.contracts import ObjRef, RouteParentStatus, Severity
from services.translator.offline import as_kube_object, translate_documents
from tests.unit.test_translate_gateway import CFG, GWAPI, delete, engine, eps, gw, gwclass, listener, mk, svc

V1A2 = f"{GWAPI}/v1alpha2"
SECTION = {"TCPRoute": "sip-tcp", "UDPRoute": "sip-udp"}  # the listener a test route names by default


def route(kind: str, name: str, *backends: dict[str, Any], ns: str = "nf", created: str = "2026-01-01T00:00:05Z",
          parent: dict[str, Any] | None = None, rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"apiVersion": V1A2, "kind": kind,
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": created, "generation": 7},
            "spec": {"parentRefs": [parent or {"name": "core", "namespace": "nf", "sectionName": SECTION.get(kind)}],
                     "rules": rules if rules is not None else [{"backendRefs": list(backends)}]}}


def backend(name: str, port: int, weight: int | None = None, ns: str | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {"name": name, "port": port}
    if weight is not None:
        b["weight"] = weight
    if ns:
        b["namespace"] = ns
    return b


def plain(name: str, *ports: tuple[int, str, int], ns: str = "nf") -> dict[str, Any]:
    """A ClusterIP Service a route sends to (not joined by label)."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"type": "ClusterIP", "ports": [{"name": f"p{p}-{pr.lower()}", "port": p, "protocol": pr,
                                                     "targetPort": t} for p, pr, t in ports]}}


def slice_for(service: str, port_name: str, port: int, proto: str, *ips: str, ns: str = "nf") -> dict[str, Any]:
    s = eps(service, port, proto, *ips, ns=ns)
    s["metadata"]["name"] = f"{service}-{port_name}"
    s["ports"][0]["name"] = port_name
    return s


SIP = (listener("sip-tcp", 5060, "TCP"), listener("sip-udp", 5060, "UDP"), listener("sig", 8443, "TCP"))
# One Service with SIP on TCP and UDP (same port number), and a canary.
BASE = [gwclass(), gw(*SIP),
        plain("sip", (5060, "TCP", 5061), (5060, "UDP", 5062)), plain("sip-canary", (5060, "TCP", 5061)),
        slice_for("sip", "p5060-tcp", 5061, "TCP", "10.244.1.1"), slice_for("sip", "p5060-udp", 5062, "UDP", "10.244.1.2"),
        slice_for("sip-canary", "p5060-tcp", 5061, "TCP", "10.244.1.3")]


def statuses(docs: list[dict[str, Any]]) -> dict[ObjRef, Any]:
    return {r.source: r.gateway for r in engine(docs).flush().reports}


def parent(docs: list[dict[str, Any]], kind: str, name: str, ns: str = "nf") -> RouteParentStatus:
    (p,) = statuses(docs)[ObjRef(kind=kind, namespace=ns, name=name)].parents
    assert isinstance(p, RouteParentStatus)
    return p


def l4_rules(out: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    (ps,) = out["l4policyset"]
    return {r["name"]: r["action"]["select_pool"] for r in ps["l4_connection_policy"]["rules"]}


def test_tcp_and_udp_routes_to_one_service_pick_the_port_of_their_protocol() -> None:
    docs = [*BASE, route("TCPRoute", "sip", backend("sip", 5060)), route("UDPRoute", "sip", backend("sip", 5060))]
    out, problems = translate_documents(docs, CFG)
    assert problems == []
    tcp_pg, udp_pg = "c1--nf-core-nf-sip-TCP-5060", "c1--nf-core-nf-sip-UDP-5060"
    assert l4_rules(out) == {
        "TCP-5060": {"action_type": "L4_RULE_ACTION_SELECT_POOLGROUP", "pool_group_ref": mk("poolgroup", tcp_pg)},
        "UDP-5060": {"action_type": "L4_RULE_ACTION_SELECT_POOLGROUP", "pool_group_ref": mk("poolgroup", udp_pg)}}
    pools = {p["name"]: p for p in out["pool"]}
    assert set(pools) == {f"{tcp_pg}-nf-sip-5060", f"{udp_pg}-nf-sip-5060"}
    # The UDPRoute's pool is the Service's UDP port: its pods on the UDP target port, a UDP monitor.
    udp_pool = pools[f"{udp_pg}-nf-sip-5060"]
    assert [(s["ip"]["addr"], s["port"]) for s in udp_pool["servers"]] == [("10.244.1.2", 5062)]
    assert udp_pool["health_monitor_refs"] == [mk("healthmonitor", "System-UDP")]
    assert [(s["ip"]["addr"], s["port"]) for s in pools[f"{tcp_pg}-nf-sip-5060"]["servers"]] == [("10.244.1.1", 5061)]
    assert {g["name"]: [(m["pool_ref"], m["ratio"]) for m in g["members"]] for g in out["poolgroup"]} == {
        tcp_pg: [(mk("pool", f"{tcp_pg}-nf-sip-5060"), 1)], udp_pg: [(mk("pool", f"{udp_pg}-nf-sip-5060"), 1)]}
    assert out["poolgroup"][0]["markers"][-2:] == [{"key": "TCPRouteName", "values": ["sip"]},
                                                   {"key": "TCPRouteNamespace", "values": ["nf"]}]
    (vs,) = out["virtualservice"]
    # Every listener is a service port, the one nothing serves yet (8443) too.
    assert sorted((s["port"], "override_network_profile_ref" in s) for s in vs["services"]) == [
        (5060, False), (5060, True), (8443, False)]
    for kind in ("TCPRoute", "UDPRoute"):
        p = parent(docs, kind, "sip")
        assert (p.accepted, p.accepted_reason, p.resolved_refs, p.refs_reason) == (True, "Accepted", True, "ResolvedRefs")
    gw_st = statuses(docs)[ObjRef(kind="Gateway", namespace="nf", name="core")]
    assert {li.name: li.attached for li in gw_st.listeners} == {"sip-tcp": 1, "sip-udp": 1, "sig": 0}


def test_weighted_backends_are_a_pool_group_with_ratios() -> None:
    docs = [*BASE, route("TCPRoute", "sip", backend("sip", 5060, 80), backend("sip-canary", 5060, 20),
                         backend("sip-canary", 5060, 0, ns=None) | {"name": "sip"})]
    out, _ = translate_documents(docs, CFG)
    (g,) = out["poolgroup"]
    pg = "c1--nf-core-nf-sip-TCP-5060"
    # A weight of 0 is no member at all (the last backendRef names "sip" again with weight 0: dropped).
    assert sorted((m["pool_ref"], m["ratio"]) for m in g["members"]) == [
        (mk("pool", f"{pg}-nf-sip-5060"), 80), (mk("pool", f"{pg}-nf-sip-canary-5060"), 20)]
    big = [*BASE, route("TCPRoute", "sip", backend("sip", 5060, 900000), backend("sip-canary", 5060, 100000))]
    (g,) = translate_documents(big, CFG)[0]["poolgroup"]
    assert sorted(m["ratio"] for m in g["members"]) == [111, 1000]


def test_oldest_route_serves_the_listener_the_younger_is_accepted_and_told() -> None:
    docs = [*BASE, route("TCPRoute", "old", backend("sip", 5060), created="2026-01-01T00:00:01Z"),
            route("TCPRoute", "new", backend("sip-canary", 5060), created="2026-01-01T00:00:09Z")]
    out, _ = translate_documents(docs, CFG)
    assert l4_rules(out)["TCP-5060"]["pool_group_ref"] == mk("poolgroup", "c1--nf-core-nf-old-TCP-5060")
    assert [g["name"] for g in out["poolgroup"]] == ["c1--nf-core-nf-old-TCP-5060"]
    young = parent(docs, "TCPRoute", "new")
    assert young.accepted and "served by the older TCPRoute nf/old" in young.message
    assert parent(docs, "TCPRoute", "old").message == ""
    gw_st = statuses(docs)[ObjRef(kind="Gateway", namespace="nf", name="core")]
    assert {li.name: li.attached for li in gw_st.listeners}["sip-tcp"] == 2
    # The oldest goes: the younger takes the listener.
    e = engine(docs)
    e.flush()
    delete(e, "TCPRoute", "nf", "old")
    changes = e.flush()
    (tree,) = changes.trees
    groups = [o.name for o in tree.objects if o.type == "poolgroup"]
    assert groups == ["c1--nf-core-nf-new-TCP-5060"]
    reports = {r.source: r.gateway for r in changes.reports}
    assert reports[ObjRef(kind="TCPRoute", namespace="nf", name="new")].parents[0].message == ""


def test_joined_service_and_route_on_one_listener_the_older_wins() -> None:
    joined = svc("sip-j", (5060, "TCP"), created="2026-01-01T00:00:03Z")
    older_route = [*BASE, joined, route("TCPRoute", "r", backend("sip", 5060), created="2026-01-01T00:00:01Z")]
    out, problems = translate_documents(older_route, CFG)
    assert l4_rules(out)["TCP-5060"]["action_type"] == "L4_RULE_ACTION_SELECT_POOLGROUP"
    (p,) = [p for p in problems if p.source.name == "sip-j"]
    assert (p.reason, p.severity) == ("ListenerConflict", Severity.ERROR) and "TCPRoute nf/r" in p.message
    older_svc = [*BASE, joined, route("TCPRoute", "r", backend("sip", 5060), created="2026-01-01T00:00:09Z")]
    out, problems = translate_documents(older_svc, CFG)
    assert l4_rules(out)["TCP-5060"] == {"action_type": "L4_RULE_ACTION_SELECT_POOL",
                                         "pool_ref": mk("pool", "c1--nf-sip-j-core-TCP-5060")}
    assert problems == [] and "poolgroup" not in out
    assert "served by the older Service nf/sip-j" in parent(older_svc, "TCPRoute", "r").message


def test_route_status_reasons() -> None:
    other_gw = gw(listener("web", 80, "HTTP"), name="web")
    docs = [*BASE, other_gw,
            route("TCPRoute", "no-such-listener", backend("sip", 5060), parent={"name": "core", "sectionName": "zz"}),
            route("UDPRoute", "wrong-protocol", backend("sip", 5060), parent={"name": "core", "sectionName": "sig"}),
            route("TCPRoute", "on-http", backend("sip", 5060), parent={"name": "web"}),
            route("TCPRoute", "other-ns", backend("sip", 5060, ns="nf"), ns="elsewhere"),
            route("TCPRoute", "two-rules", rules=[{"backendRefs": [backend("sip", 5060)]},
                                                  {"backendRefs": [backend("sip-canary", 5060)]}]),
            route("UDPRoute", "missing", backend("nope", 5060), created="2026-01-01T00:00:00Z"),
            route("UDPRoute", "no-udp-port", backend("sip-canary", 5060), created="2026-01-01T00:00:00Z")]
    assert parent(docs, "TCPRoute", "no-such-listener").accepted_reason == "NoMatchingParent"
    assert parent(docs, "UDPRoute", "wrong-protocol").accepted_reason == "NotAllowedByListeners"
    assert parent(docs, "TCPRoute", "on-http").accepted_reason == "NotAllowedByListeners"
    assert parent(docs, "TCPRoute", "other-ns", ns="elsewhere").accepted_reason == "NotAllowedByListeners"
    two = parent(docs, "TCPRoute", "two-rules")
    assert (two.accepted, two.accepted_reason) == (False, "UnsupportedValue") and "2 rules" in two.message
    missing = parent(docs, "UDPRoute", "missing")
    assert (missing.accepted, missing.resolved_refs, missing.refs_reason) == (True, False, "BackendNotFound")
    no_port = parent(docs, "UDPRoute", "no-udp-port")
    assert (no_port.refs_reason, "5060/UDP" in no_port.message) == ("BackendNotFound", True)


def test_a_route_without_section_name_takes_every_listener_of_its_protocol() -> None:
    docs = [*BASE, route("TCPRoute", "all", backend("sip", 5060), parent={"name": "core"})]
    out, _ = translate_documents(docs, CFG)
    assert {n: s["pool_group_ref"] for n, s in l4_rules(out).items()} == {
        "TCP-5060": mk("poolgroup", "c1--nf-core-nf-all-TCP-5060"),
        "TCP-8443": mk("poolgroup", "c1--nf-core-nf-all-TCP-8443")}
    gw_st = statuses(docs)[ObjRef(kind="Gateway", namespace="nf", name="core")]
    assert {li.name: li.attached for li in gw_st.listeners} == {"sip-tcp": 1, "sip-udp": 0, "sig": 1}


def test_a_rule_without_usable_backends_selects_nothing_but_the_port_listens() -> None:
    docs = [*BASE, route("UDPRoute", "missing", backend("nope", 5060))]
    out, _ = translate_documents(docs, CFG)
    assert "UDP-5060" not in l4_rules(out) and "poolgroup" not in out
    (vs,) = out["virtualservice"]
    assert {"port": 5060, "enable_ssl": False,
            "override_network_profile_ref": mk("networkprofile", "System-UDP-Fast-Path")} in vs["services"]


def test_cross_namespace_backend_needs_a_grant_for_the_route_kind() -> None:
    remote = plain("db", (5060, "TCP", 5061), ns="data")
    r = route("TCPRoute", "x", backend("db", 5060, ns="data"))
    assert parent([*BASE, remote, r], "TCPRoute", "x").refs_reason == "RefNotPermitted"

    def grant(kind: str) -> dict[str, Any]:
        return {"apiVersion": f"{GWAPI}/v1beta1", "kind": "ReferenceGrant",
                "metadata": {"name": f"g-{kind.lower()}", "namespace": "data"},
                "spec": {"from": [{"group": GWAPI, "kind": kind, "namespace": "nf"}],
                         "to": [{"group": "", "kind": "Service", "name": "db"}]}}

    # A grant for HTTPRoutes does not let a TCPRoute in.
    assert parent([*BASE, remote, r, grant("HTTPRoute")], "TCPRoute", "x").refs_reason == "RefNotPermitted"
    p = parent([*BASE, remote, r, grant("TCPRoute")], "TCPRoute", "x")
    assert (p.resolved_refs, p.refs_reason) == (True, "ResolvedRefs")
    out, _ = translate_documents([*BASE, remote, r, grant("TCPRoute")], CFG)
    assert [p["name"] for p in out["pool"]] == ["c1--nf-core-nf-x-TCP-5060-data-db-5060"]


def test_allowed_route_kinds_on_an_l4_listener() -> None:
    only_routes = listener("sip-tcp", 5060, "TCP", allowedRoutes={"kinds": [{"kind": "TCPRoute"}]})
    docs = [gwclass(), gw(only_routes), svc("sip-j", (5060, "TCP")), plain("sip", (5060, "TCP", 5061)),
            route("TCPRoute", "r", backend("sip", 5060))]
    out, problems = translate_documents(docs, CFG)
    (p,) = problems
    assert (p.source.name, p.reason) == ("sip-j", "NotAllowedByListener") and "allowedRoutes.kinds" in p.message
    assert l4_rules(out)["TCP-5060"]["action_type"] == "L4_RULE_ACTION_SELECT_POOLGROUP"
    gw_st = statuses(docs)[ObjRef(kind="Gateway", namespace="nf", name="core")]
    (li,) = gw_st.listeners
    assert li.supported_kinds == (f"{GWAPI}/TCPRoute",) and li.resolved_refs
    udp_kind = listener("x", 5060, "TCP", allowedRoutes={"kinds": [{"kind": "UDPRoute"}]})
    (li,) = statuses([gwclass(), gw(udp_kind)])[ObjRef(kind="Gateway", namespace="nf", name="core")].listeners
    assert (li.resolved_refs, li.refs_reason) == (False, "InvalidRouteKinds")


def test_a_backend_service_change_moves_the_pool_members() -> None:
    e = engine([*BASE, route("TCPRoute", "sip", backend("sip", 5060))])
    e.flush()
    ko = as_kube_object(slice_for("sip", "p5060-tcp", 5061, "TCP", "10.244.1.9"), "c1")
    assert ko is not None
    e.observe(ko)
    (tree,) = e.flush().trees
    (pool,) = [o for o in tree.objects if o.type == "pool"]
    assert [s["ip"]["addr"] for s in pool.body["servers"]] == ["10.244.1.9"]


def test_a_route_whose_gateway_goes_gets_an_empty_parent_list_until_it_goes_too() -> None:
    e = engine([*BASE, route("TCPRoute", "sip", backend("sip", 5060))])
    e.flush()
    src = ObjRef(kind="TCPRoute", namespace="nf", name="sip")
    delete(e, "Gateway", "nf", "core")
    reports = {r.source: r for r in e.flush().reports}
    # Health removes albus's entries from status.parents on an empty list; generation kept current.
    st = reports[src].gateway
    assert st is not None and st.parents == () and st.generation == 7
    e.mark_all()
    assert src not in {r.source for r in e.flush().reports}  # settled: nothing more to say
    delete(e, "TCPRoute", "nf", "sip")
    (gone,) = [r for r in e.flush().reports if r.source == src]
    assert gone.gateway is None  # the route is gone: nothing to write
    # A route albus never reported on (another controller's) gets nothing at all.
    other = engine([*BASE, route("TCPRoute", "theirs", backend("sip", 5060), parent={"name": "elsewhere"})])
    assert ObjRef(kind="TCPRoute", namespace="nf", name="theirs") not in {r.source for r in other.flush().reports}
