"""HTTPRoutes on an HTTP Gateway: matches, filters, weights, hostnames, ReferenceGrant, route status."""

from __future__ import annotations

from typing import Any

from services.common.contracts import ObjRef, RouteParentStatus
from services.translator.offline import as_kube_object, translate_documents
from tests.unit.test_translate_gateway import CFG, engine

GWAPI = "gateway.networking.k8s.io"
CLASS = {"apiVersion": f"{GWAPI}/v1", "kind": "GatewayClass", "metadata": {"name": "avi-lb"},
         "spec": {"controllerName": "ako.vmware.com/avi-lb"}}


def mk(t: str, name: str) -> str:
    return f"/api/{t}/?name={name}"


def gw(*listeners: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GWAPI}/v1", "kind": "Gateway", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"gatewayClassName": "avi-lb", "listeners": list(listeners or [
                {"name": "http", "port": 80, "protocol": "HTTP"}])}}


def route(name: str, *rules: dict[str, Any], ns: str = "shop", created: str = "2026-01-01T00:00:00Z",
          hostnames: list[str] | None = None, parent: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"parentRefs": [parent or {"name": "web", "namespace": "shop"}], "rules": list(rules)}
    if hostnames:
        spec["hostnames"] = hostnames
    return {"apiVersion": f"{GWAPI}/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": created, "generation": 5}, "spec": spec}


def backend(name: str, weight: int | None = None, ns: str | None = None, port: int = 80) -> dict[str, Any]:
    b: dict[str, Any] = {"name": name, "port": port}
    if weight is not None:
        b["weight"] = weight
    if ns:
        b["namespace"] = ns
    return b


def svc(name: str, ns: str = "shop") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}


def prefix(value: str) -> dict[str, Any]:
    return {"path": {"type": "PathPrefix", "value": value}}


def statuses(docs: list[dict[str, Any]]) -> dict[ObjRef, Any]:
    return {r.source: r.gateway for r in engine(docs).flush().reports}


def parent(docs: list[dict[str, Any]], name: str, ns: str = "shop") -> RouteParentStatus:
    st = statuses(docs)[ObjRef(kind="HTTPRoute", namespace=ns, name=name)]
    (p,) = st.parents
    assert isinstance(p, RouteParentStatus)
    return p


def request_rules(out: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    (ps,) = out["httppolicyset"]
    rules: list[dict[str, Any]] = ps["http_request_policy"]["rules"]
    return rules


BASE = [CLASS, gw(), svc("a"), svc("b"), svc("canary")]


def test_two_routes_split_paths_and_a_weighted_backend() -> None:
    docs = [*BASE, route("ra", {"matches": [prefix("/a")], "backendRefs": [backend("a")]}),
            route("rb", {"matches": [prefix("/b")],
                         "backendRefs": [backend("b", 80), backend("canary", 20)]})]
    out, problems = translate_documents(docs, CFG)
    assert problems == []
    (vs,) = out["virtualservice"]
    assert vs["name"] == "c1--shop-web"
    assert vs["application_profile_ref"] == mk("applicationprofile", "System-HTTP")
    assert vs["services"] == [{"port": 80, "enable_ssl": False}]
    assert vs["http_policies"] == [{"index": 11, "http_policy_set_ref": mk("httppolicyset", "c1--shop-web")}]
    groups = {g["name"]: g["members"] for g in out["poolgroup"]}
    assert groups == {
        "c1--shop-web-shop-ra-0": [{"pool_ref": mk("pool", "c1--shop-web-shop-ra-0-shop-a-80"), "ratio": 1}],
        "c1--shop-web-shop-rb-0": [{"pool_ref": mk("pool", "c1--shop-web-shop-rb-0-shop-b-80"), "ratio": 80},
                                   {"pool_ref": mk("pool", "c1--shop-web-shop-rb-0-shop-canary-80"), "ratio": 20}]}
    rules = request_rules(out)
    got = [(r["match"]["path"]["match_criteria"], r["match"]["path"]["match_str"],
            (r.get("switching_action") or {}).get("pool_group_ref")) for r in rules]
    # A prefix matches whole segments: "/a" and "/a/...", never "/abc".
    assert got == [
        ("EQUALS", ["/a"], mk("poolgroup", "c1--shop-web-shop-ra-0")),
        ("BEGINS_WITH", ["/a/"], mk("poolgroup", "c1--shop-web-shop-ra-0")),
        ("EQUALS", ["/b"], mk("poolgroup", "c1--shop-web-shop-rb-0")),
        ("BEGINS_WITH", ["/b/"], mk("poolgroup", "c1--shop-web-shop-rb-0")),
        ("BEGINS_WITH", ["/"], None)]
    assert rules[-1]["switching_action"] == {"action": "HTTP_SWITCHING_SELECT_LOCAL",
                                             "status_code": "HTTP_LOCAL_RESPONSE_STATUS_CODE_404"}
    assert [r["index"] for r in rules] == [1, 2, 3, 4, 5]
    assert all(r["match"].get("vs_port") == {"match_criteria": "IS_IN", "ports": [80]} for r in rules[:-1])


def test_precedence_exact_then_longest_prefix_then_method_headers_query_then_oldest() -> None:
    docs = [*BASE,
            route("old", {"matches": [prefix("/")], "backendRefs": [backend("a")]}, created="2026-01-01T00:00:00Z"),
            route("new", {"matches": [prefix("/")], "backendRefs": [backend("b")]}, created="2026-01-02T00:00:00Z"),
            route("rich", {"matches": [
                {"path": {"type": "Exact", "value": "/x"}},
                {"path": {"type": "PathPrefix", "value": "/long/er"}},
                {"path": {"type": "PathPrefix", "value": "/long"}, "method": "POST"},
                {"path": {"type": "PathPrefix", "value": "/long"},
                 "headers": [{"name": "x-v", "value": "2"}], "queryParams": [{"name": "q", "value": "1"}]},
                {"path": {"type": "RegularExpression", "value": "^/re/[0-9]+$"}}],
                "backendRefs": [backend("canary")]}, created="2026-01-03T00:00:00Z")]
    rules = request_rules(translate_documents(docs, CFG)[0])
    order = [(r["match"]["path"]["match_criteria"], r["match"]["path"]["match_str"][0], "method" in r["match"],
              "hdrs" in r["match"]) for r in rules]
    assert order == [
        ("EQUALS", "/x", False, False),
        ("EQUALS", "/long/er", False, False), ("BEGINS_WITH", "/long/er/", False, False),
        ("EQUALS", "/long", True, False), ("BEGINS_WITH", "/long/", True, False),
        ("EQUALS", "/long", False, True), ("BEGINS_WITH", "/long/", False, True),
        ("BEGINS_WITH", "/", False, False), ("BEGINS_WITH", "/", False, False),
        ("REGEX_MATCH", "^/re/[0-9]+$", False, False),
        ("BEGINS_WITH", "/", False, False)]
    # The two "/" routes: the older first.
    assert rules[7]["switching_action"]["pool_group_ref"] == mk("poolgroup", "c1--shop-web-shop-old-0")
    m = rules[5]["match"]
    assert m["hdrs"] == [{"hdr": "x-v", "match_criteria": "HDR_EQUALS", "value": ["2"], "match_case": "SENSITIVE"}]
    assert m["query"] == {"match_criteria": "QUERY_MATCH_CONTAINS", "match_str": ["q=1"]}
    assert rules[3]["match"]["method"] == {"match_criteria": "IS_IN", "methods": ["HTTP_METHOD_POST"]}


def test_filters() -> None:
    docs = [*BASE, route("f", {
        "matches": [prefix("/h")],
        "filters": [
            {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                "set": [{"name": "x-a", "value": "1"}], "add": [{"name": "x-b", "value": "2"}], "remove": ["x-c"]}},
            {"type": "ResponseHeaderModifier", "responseHeaderModifier": {"set": [{"name": "x-r", "value": "3"}]}},
            {"type": "URLRewrite", "urlRewrite": {"hostname": "in.example", "path": {
                "type": "ReplaceFullPath", "replaceFullPath": "/new"}}}],
        "backendRefs": [backend("a")]}, {
        "matches": [prefix("/old")],
        "filters": [{"type": "RequestRedirect", "requestRedirect": {
            "scheme": "https", "hostname": "shop.example", "port": 8443, "statusCode": 301}}]})]
    out, problems = translate_documents(docs, CFG)
    assert problems == []
    rules = request_rules(out)
    h = next(r for r in rules if r["match"]["path"]["match_str"] == ["/h"])
    assert h["hdr_action"] == [
        {"action": "HTTP_REPLACE_HDR", "hdr": {"name": "x-a", "value": {"val": "1"}}},
        {"action": "HTTP_ADD_HDR", "hdr": {"name": "x-b", "value": {"val": "2"}}},
        {"action": "HTTP_REMOVE_HDR", "hdr": {"name": "x-c"}}]
    tok = {"type": "URI_PARAM_TYPE_TOKENIZED", "tokens": [{"type": "URI_TOKEN_TYPE_STRING", "str_value": "in.example"}]}
    assert h["rewrite_url_action"]["host_hdr"] == tok
    assert h["rewrite_url_action"]["path"]["tokens"][0]["str_value"] == "/new"
    redirect = next(r for r in rules if r["match"]["path"]["match_str"] == ["/old"])
    assert "switching_action" not in redirect
    assert redirect["redirect_action"] == {
        "protocol": "HTTPS", "keep_query": True, "status_code": "HTTP_REDIRECT_STATUS_CODE_301", "port": 8443,
        "host": {"type": "URI_PARAM_TYPE_TOKENIZED",
                 "tokens": [{"type": "URI_TOKEN_TYPE_STRING", "str_value": "shop.example"}]}}
    resp = out["httppolicyset"][0]["http_response_policy"]["rules"]
    assert [r["hdr_action"] for r in resp] == [[{"action": "HTTP_REPLACE_HDR",
                                                 "hdr": {"name": "x-r", "value": {"val": "3"}}}]] * 2


def test_unsupported_filter_rejects_the_route_only() -> None:
    docs = [*BASE, route("mirror", {"filters": [{"type": "RequestMirror", "requestMirror": {
        "backendRef": {"name": "b", "port": 80}}}], "backendRefs": [backend("a")]}),
        route("ok", {"backendRefs": [backend("b")]})]
    p = parent(docs, "mirror")
    assert (p.accepted, p.accepted_reason) == (False, "UnsupportedValue") and "RequestMirror" in p.message
    assert parent(docs, "ok").accepted
    out, _ = translate_documents(docs, CFG)
    assert [g["name"] for g in out["poolgroup"]] == ["c1--shop-web-shop-ok-0"]


def test_cross_namespace_backend_needs_a_reference_grant() -> None:
    docs = [*BASE, svc("db", ns="data"), route("x", {"backendRefs": [backend("db", ns="data")]})]
    p = parent(docs, "x")
    assert p.accepted and (p.resolved_refs, p.refs_reason) == (False, "RefNotPermitted")
    rules = request_rules(translate_documents(docs, CFG)[0])
    assert rules[0]["switching_action"] == {"action": "HTTP_SWITCHING_SELECT_LOCAL",
                                            "status_code": "HTTP_LOCAL_RESPONSE_STATUS_CODE_501"}
    grant = {"apiVersion": f"{GWAPI}/v1beta1", "kind": "ReferenceGrant", "metadata": {"name": "g", "namespace": "data"},
             "spec": {"from": [{"group": GWAPI, "kind": "HTTPRoute", "namespace": "shop"}],
                      "to": [{"group": "", "kind": "Service"}]}}
    p = parent([*docs, grant], "x")
    assert (p.resolved_refs, p.refs_reason) == (True, "ResolvedRefs")
    out, _ = translate_documents([*docs, grant], CFG)
    assert [p["name"] for p in out["pool"]] == ["c1--shop-web-shop-x-0-data-db-80"]
    wrong = {**grant, "metadata": {"name": "g", "namespace": "shop"}}  # a grant must live in the target namespace
    assert parent([*docs, wrong], "x").refs_reason == "RefNotPermitted"


def test_missing_backend_and_missing_port() -> None:
    assert parent([*BASE, route("x", {"backendRefs": [backend("nope")]})], "x").refs_reason == "BackendNotFound"
    assert parent([*BASE, route("x", {"backendRefs": [backend("a", port=81)]})], "x").refs_reason == "BackendNotFound"


def test_hostnames_intersect_with_the_listener() -> None:
    listener = {"name": "http", "port": 80, "protocol": "HTTP", "hostname": "*.shop.example"}
    docs = [CLASS, gw(listener), svc("a"),
            route("in", {"backendRefs": [backend("a")]}, hostnames=["www.shop.example", "other.example"]),
            route("out", {"backendRefs": [backend("a")]}, hostnames=["other.example"])]
    assert parent(docs, "out").accepted_reason == "NoMatchingListenerHostname"
    assert parent(docs, "in").accepted
    rules = request_rules(translate_documents(docs, CFG)[0])
    assert rules[0]["match"]["host_hdr"] == {"match_criteria": "HDR_EQUALS", "value": ["www.shop.example"],
                                             "match_case": "INSENSITIVE"}
    wild = [CLASS, gw(listener), svc("a"), route("any", {"backendRefs": [backend("a")]})]
    assert request_rules(translate_documents(wild, CFG)[0])[0]["match"]["host_hdr"] == {
        "match_criteria": "HDR_ENDS_WITH", "value": [".shop.example"], "match_case": "INSENSITIVE"}


def test_section_name_and_port_select_the_listener_and_attached_routes_are_counted() -> None:
    two = gw({"name": "a", "port": 80, "protocol": "HTTP"}, {"name": "b", "port": 8080, "protocol": "HTTP"})
    docs = [CLASS, two, svc("a"),
            route("r1", {"backendRefs": [backend("a")]}, parent={"name": "web", "sectionName": "b"}),
            route("r2", {"backendRefs": [backend("a")]}, parent={"name": "web", "port": 80}),
            route("r3", {"backendRefs": [backend("a")]}, parent={"name": "web", "sectionName": "zz"})]
    st = statuses(docs)
    gw_st = st[ObjRef(kind="Gateway", namespace="shop", name="web")]
    assert {li.name: li.attached for li in gw_st.listeners} == {"a": 1, "b": 1}
    assert {li.supported_kinds for li in gw_st.listeners} == {(f"{GWAPI}/HTTPRoute",)}
    assert parent(docs, "r3").accepted_reason == "NoMatchingParent"
    assert parent(docs, "r1").section_name == "b"
    rules = request_rules(translate_documents(docs, CFG)[0])
    ports = {r["name"].split("-")[1]: r["match"]["vs_port"]["ports"] for r in rules[:-1]}
    assert ports == {"r1": [8080], "r2": [80]}


def test_route_from_a_namespace_the_listener_does_not_allow() -> None:
    docs = [*BASE, route("x", {"backendRefs": [backend("a", ns="shop")]}, ns="other")]
    assert parent(docs, "x", ns="other").accepted_reason == "NotAllowedByListeners"


def test_routes_to_other_gateways_are_not_ours() -> None:
    docs = [*BASE, route("x", {"backendRefs": [backend("a")]}, parent={"name": "elsewhere"})]
    assert ObjRef(kind="HTTPRoute", namespace="shop", name="x") not in statuses(docs)


def test_weights_are_scaled_to_the_controllers_ratio_range_and_zero_weight_is_left_out() -> None:
    docs = [*BASE, route("w", {"backendRefs": [backend("a", 1_000_000), backend("b", 1), backend("canary", 0)]})]
    out, _ = translate_documents(docs, CFG)
    (pg,) = out["poolgroup"]
    assert [m["ratio"] for m in pg["members"]] == [1000, 1]
    assert len(out["pool"]) == 3  # the zero-weight backend's pool exists, unused


def test_mixed_gateway_keeps_l4_listeners_and_refuses_http() -> None:
    mixed = gw({"name": "http", "port": 80, "protocol": "HTTP"}, {"name": "sip", "port": 5060, "protocol": "UDP"})
    st = statuses([CLASS, mixed])[ObjRef(kind="Gateway", namespace="shop", name="web")]
    by = {li.name: li for li in st.listeners}
    assert (by["http"].accepted, by["http"].accepted_reason) == (False, "UnsupportedProtocol")
    assert by["sip"].accepted


def test_a_change_recomputes_only_what_it_can_alter() -> None:
    docs = [*BASE, route("ra", {"backendRefs": [backend("a")]}), route("rb", {"backendRefs": [backend("b")]})]
    e = engine(docs)
    e.flush()
    gw_ref = ObjRef(kind="Gateway", namespace="shop", name="web")

    def refs(*names: str) -> set[ObjRef]:
        return {ObjRef(kind="HTTPRoute", namespace="shop", name=n) for n in names}

    changed = route("ra", {"backendRefs": [backend("canary")]})
    ko = as_kube_object(changed, "c1")
    assert ko is not None
    assert e.observe(ko) == refs("ra") | {gw_ref}  # not rb: a route's status never depends on another route
    assert e.graph.take_route_fanout() == set()
    ko = as_kube_object(svc("b"), "c1")
    assert ko is not None
    assert e.observe(ko) == refs("rb") | {gw_ref, ObjRef(kind="Service", namespace="shop", name="b")}
    assert e.graph.take_route_fanout() == set()
    ko = as_kube_object(gw(), "c1")
    assert ko is not None
    assert e.observe(ko) == {gw_ref}
    # Every route of the Gateway, listed once when the engine flushes (not on each change).
    fanout = e.graph.take_route_fanout()
    assert fanout == refs("ra", "rb")
    e.dirty |= fanout
    out = e.flush()
    (tree,) = out.trees
    pools = [o.name for o in tree.objects if o.type == "pool"]
    assert pools == ["c1--shop-web-shop-ra-0-shop-canary-80", "c1--shop-web-shop-rb-0-shop-b-80"]
