"""TLSRoutes on TLS listeners in Passthrough mode: pool groups chosen by server name through a datascript.

The datascript is Lua for the controller's DataScript runtime; these tests run
the generated script in a real Lua interpreter (lupa) against stand-ins for
the ``avi.*`` functions and the ``Default-TLS`` parser it calls.
"""

from __future__ import annotations

from typing import Any

from lupa import LuaRuntime

from services.common.contracts import ObjRef
from services.translator import gateway_tls
from services.translator.offline import translate_documents
from tests.unit.test_translate_gateway import CFG, GWAPI, gw, gwclass, listener, mk
from tests.unit.test_translate_gateway_l4routes import V1A2, backend, parent, plain, statuses

PASS = {"mode": "Passthrough"}


def tls_route(name: str, hosts: list[str], *backends: dict[str, Any], created: str = "2026-01-01T00:00:05Z",
              section: str = "tls") -> dict[str, Any]:
    spec: dict[str, Any] = {"parentRefs": [{"name": "core", "sectionName": section}],
                            "rules": [{"backendRefs": list(backends)}]}
    if hosts:
        spec["hostnames"] = hosts
    return {"apiVersion": V1A2, "kind": "TLSRoute",
            "metadata": {"name": name, "namespace": "nf", "creationTimestamp": created, "generation": 2},
            "spec": spec}


TLS = listener("tls", 443, "TLS", tls=PASS)
BASE = [gwclass(), gw(TLS, listener("sip-tcp", 5060, "TCP")),
        plain("a", (443, "TCP", 8443)), plain("b", (443, "TCP", 8443)), plain("c", (443, "TCP", 8443))]
GW = ObjRef(kind="Gateway", namespace="nf", name="core")


def pg(route: str) -> str:
    return f"c1--nf-core-nf-{route}-TLS-443"


def test_passthrough_routes_are_pool_groups_a_datascript_picks_by_server_name() -> None:
    docs = [*BASE, tls_route("ra", ["a.example.com"], backend("a", 443)),
            tls_route("rb", ["*.example.com"], backend("b", 443, 70), backend("c", 443, 30))]
    out, problems = translate_documents(docs, CFG)
    assert problems == []
    assert {g["name"]: sorted(m["ratio"] for m in g["members"]) for g in out["poolgroup"]} == {
        pg("ra"): [1], pg("rb"): [30, 70]}
    assert sorted(p["name"] for p in out["pool"]) == [f"{pg('ra')}-nf-a-443", f"{pg('rb')}-nf-b-443",
                                                      f"{pg('rb')}-nf-c-443"]
    (ds,) = out["vsdatascriptset"]
    assert ds["name"] == "c1--nf-core"
    assert ds["pool_group_refs"] == [mk("poolgroup", pg("ra")), mk("poolgroup", pg("rb"))]
    assert ds["protocol_parser_refs"] == [mk("protocolparser", "Default-TLS")]
    (script,) = ds["datascript"]
    assert script["evt"] == "VS_DATASCRIPT_EVT_L4_REQUEST"
    (vs,) = out["virtualservice"]
    assert vs["vs_datascripts"] == [{"index": 1, "vs_datascript_set_ref": mk("vsdatascriptset", "c1--nf-core")}]
    assert vs["application_profile_ref"] == mk("applicationprofile", "System-L4-Application")
    # 443 is a TCP service port of the L4 VS; the L4 policy has no rule there (the datascript chooses).
    assert {"port": 443, "enable_ssl": False} in vs["services"]
    (ps,) = out["l4policyset"]
    assert [r["name"] for r in ps["l4_connection_policy"]["rules"]] == []
    st = statuses(docs)[GW]
    assert {li.name: (li.accepted, li.attached, li.supported_kinds) for li in st.listeners} == {
        "tls": (True, 2, (f"{GWAPI}/TLSRoute",)), "sip-tcp": (True, 0, ("/Service", f"{GWAPI}/TCPRoute"))}
    assert parent(docs, "TLSRoute", "ra").accepted and parent(docs, "TLSRoute", "rb").resolved_refs


def test_terminate_mode_and_missing_tls_are_not_served() -> None:
    terminate = listener("t", 443, "TLS", tls={"mode": "Terminate", "certificateRefs": [{"name": "cert"}]})
    st = statuses([gwclass(), gw(terminate, listener("tcp", 80, "TCP"))])[GW]
    t = next(li for li in st.listeners if li.name == "t")
    assert (t.accepted, t.accepted_reason) == (False, "UnsupportedProtocol") and "Passthrough" in t.message


def test_hostnames_intersect_with_the_listener_and_the_oldest_route_wins_a_name() -> None:
    narrow = listener("tls", 443, "TLS", tls=PASS, hostname="*.example.com")
    docs = [gwclass(), gw(narrow), plain("a", (443, "TCP", 8443)), plain("b", (443, "TCP", 8443)),
            tls_route("old", ["a.example.com", "x.other.org"], backend("a", 443), created="2026-01-01T00:00:01Z"),
            tls_route("new", ["a.example.com"], backend("b", 443), created="2026-01-01T00:00:09Z"),
            tls_route("elsewhere", ["x.other.org"], backend("b", 443)),
            tls_route("nohosts", [], backend("b", 443), created="2026-01-01T00:00:10Z")]
    out, _ = translate_documents(docs, CFG)
    table = out["vsdatascriptset"][0]["datascript"][0]["script"].splitlines()[0]
    # x.other.org is outside the listener; a route without hostnames takes the listener's wildcard.
    assert table == ('local routes = {["443"] = {exact = {["a.example.com"] = "c1--nf-core-nf-old-TLS-443"}, '
                     'suffix = {["example.com"] = "c1--nf-core-nf-nohosts-TLS-443"}}}')
    assert parent(docs, "TLSRoute", "elsewhere").accepted_reason == "NoMatchingListenerHostname"
    young = parent(docs, "TLSRoute", "new")
    assert young.accepted and "a.example.com on port 443 is served by the older TLSRoute nf/old" in young.message
    assert [g["name"] for g in out["poolgroup"]] == [pg("nohosts"), pg("old")]


def test_a_tls_route_on_a_tcp_listener_is_not_allowed() -> None:
    docs = [*BASE, tls_route("r", ["a.example.com"], backend("a", 443), section="sip-tcp")]
    assert parent(docs, "TLSRoute", "r").accepted_reason == "NotAllowedByListeners"


# ---- the generated Lua, run ------------------------------------------------------------------------
_STANDINS = """
calls = {}
function record(what) calls[#calls + 1] = what end
avi = {vs = {}, l4 = {}, poolgroup = {}}
function avi.vs.port() return PORT end
function avi.vs.close_conn() record("close") end
function avi.l4.collect(n) record("collect " .. n); return 20 end
function avi.l4.read() return PAYLOAD end
function avi.l4.ds_done() record("done") end
function avi.poolgroup.select(pg) record("select " .. pg) end
package.preload["Default-TLS"] = function()
  return {
    get_req_buffer_size = function(p) return 60 end,
    sanity_check = function(p) return string.sub(p, 1, 4) == "TLS:" end,
    parse_record = function(p) return {sni = string.sub(p, 5)} end,
    get_sni = function(h) if h.sni == "" then return nil end return h.sni end,
  }
end
"""


def run(script: str, port: str, payload: str) -> list[str]:
    lua = LuaRuntime()
    lua.globals().PORT = port
    lua.globals().PAYLOAD = payload
    lua.execute(_STANDINS)
    lua.execute(script)
    calls = lua.globals().calls
    return [str(calls[i]) for i in range(1, len(calls) + 1)]


def test_the_datascript_selects_by_exact_name_then_longest_wildcard_then_catch_all() -> None:
    script = gateway_tls.script({443: {"a.example.com": "pg-exact", "*.example.com": "pg-wild",
                                       "*.deep.example.com": "pg-deep", "*": "pg-any"},
                                 8443: {"only.example.com": "pg-8443"}})
    assert run(script, "443", "TLS:a.example.com")[-2:] == ["select pg-exact", "done"]
    assert run(script, "443", "TLS:A.Example.COM")[-2] == "select pg-exact"  # names are case-insensitive
    assert run(script, "443", "TLS:x.y.example.com")[-2] == "select pg-wild"
    assert run(script, "443", "TLS:x.deep.example.com")[-2] == "select pg-deep"
    assert run(script, "443", "TLS:example.com")[-2] == "select pg-any"  # "*.example.com" needs a label more
    assert run(script, "443", "TLS:")[-2] == "select pg-any"  # no server name: the catch-all
    assert run(script, "8443", "TLS:a.example.com")[-2:] == ["close", "done"]  # no route for it on 8443
    assert run(script, "443", "GET / HTTP/1.1")[-2:] == ["close", "done"]  # not TLS
    # A port with no TLS route (a TCP listener of the same VS): nothing read, nothing chosen.
    assert run(script, "5060", "anything") == ["done"]
    # The whole ClientHello is waited for when the first bytes do not hold it.
    assert run(script, "443", "TLS:a.example.com")[:2] == ["collect 20", "collect 60"]
