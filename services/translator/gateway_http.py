"""An HTTP Gateway's tree (pure): one HTTP VS, the routes' rules as one ordered httppolicyset.

Objects, in dependency order: the vsvip, the HTTPS listeners'
sslkeyandcertificates, a pool per (route rule, backend), a poolgroup per
route rule (members' ``ratio`` = the backendRefs' weights), the
httppolicyset ``<VS>`` holding every attached rule in the Gateway API's
precedence order (one set, so precedence holds across routes) and a last
rule answering 404, and the virtualservice (``System-HTTP``, one service
port per HTTP listener port, one with ``enable_ssl`` per HTTPS listener
port, the certificates and ``System-Standard`` as its SSL profile).
"""

from __future__ import annotations

import json
from typing import Any

from services.common.config import Config
from services.common.contracts import AviObject, ObjRef, VsTree
from services.translator import l4, naming
from services.translator.gateway_certs import SSL_PROFILE
from services.translator.gateway_routes import Rule, weights_to_ratios
from services.translator.infra import Infra
from services.translator.refs import markers, ref

APP_PROFILE_HTTP = "System-HTTP"
REDIRECT_CODES = {301: "HTTP_REDIRECT_STATUS_CODE_301", 302: "HTTP_REDIRECT_STATUS_CODE_302"}
# The controller's local responses have no 500: a rule whose every backend is invalid answers 501.
NO_BACKEND = "HTTP_LOCAL_RESPONSE_STATUS_CODE_501"
NOT_FOUND = "HTTP_LOCAL_RESPONSE_STATUS_CODE_404"
MAX_RATIO = 1000


def _uri(value: str) -> dict[str, Any]:
    return {"type": "URI_PARAM_TYPE_TOKENIZED", "tokens": [{"type": "URI_TOKEN_TYPE_STRING", "str_value": value}]}


def path_conditions(match: dict[str, Any]) -> list[tuple[str, str]]:
    """Gateway API path semantics as controller match criteria (a prefix matches whole segments)."""
    path = match.get("path") or {}
    kind, value = path.get("type") or "PathPrefix", str(path.get("value") or "/")
    if kind == "Exact":
        return [("EQUALS", value)]
    if kind == "RegularExpression":
        return [("REGEX_MATCH", value)]
    base = value.rstrip("/")
    return [("BEGINS_WITH", "/")] if not base else [("EQUALS", base), ("BEGINS_WITH", base + "/")]


def _host_groups(hosts: tuple[str, ...]) -> list[dict[str, Any] | None]:
    if not hosts:
        return [None]
    exact = [h for h in hosts if not h.startswith("*.")]
    wild = [h[1:] for h in hosts if h.startswith("*.")]
    out: list[dict[str, Any] | None] = []
    if exact:
        out.append({"match_criteria": "HDR_EQUALS", "value": exact, "match_case": "INSENSITIVE"})
    if wild:
        out.append({"match_criteria": "HDR_ENDS_WITH", "value": wild, "match_case": "INSENSITIVE"})
    return out


def _precedence(r: Rule, match: dict[str, Any], j: int) -> tuple[Any, ...]:
    """The Gateway API's order: Exact path, longest prefix, method, most headers, most query params, oldest route."""
    path = match.get("path") or {}
    kind, value = path.get("type") or "PathPrefix", str(path.get("value") or "/")
    return (0 if kind == "Exact" else 1 if kind == "PathPrefix" else 2, -len(value), 0 if match.get("method") else 1,
            -len(match.get("headers") or []), -len(match.get("queryParams") or []), r.created, r.route_ns, r.route,
            r.index, j)


def _filters(rule: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Request-side actions of the rule's filters, and its response header actions."""
    actions: dict[str, Any] = {}
    response: list[dict[str, Any]] = []
    for f in rule.get("filters") or []:
        kind = f.get("type")
        if kind in ("RequestHeaderModifier", "ResponseHeaderModifier"):
            spec = f.get("requestHeaderModifier" if kind == "RequestHeaderModifier" else "responseHeaderModifier") or {}
            hdr = [{"action": a, "hdr": {"name": h["name"], "value": {"val": h["value"]}}}
                   for a, key in (("HTTP_REPLACE_HDR", "set"), ("HTTP_ADD_HDR", "add"))
                   for h in spec.get(key) or []]
            hdr += [{"action": "HTTP_REMOVE_HDR", "hdr": {"name": n}} for n in spec.get("remove") or []]
            (actions.setdefault("hdr_action", []) if kind == "RequestHeaderModifier" else response).extend(hdr)
        elif kind == "RequestRedirect":
            rd = f.get("requestRedirect") or {}
            action: dict[str, Any] = {"protocol": str(rd.get("scheme") or "http").upper(), "keep_query": True,
                                      "status_code": REDIRECT_CODES[int(rd.get("statusCode") or 302)]}
            if rd.get("hostname"):
                action["host"] = _uri(str(rd["hostname"]))
            if rd.get("port"):
                action["port"] = int(rd["port"])
            if (rd.get("path") or {}).get("replaceFullPath"):
                action["path"] = _uri(str(rd["path"]["replaceFullPath"]))
            actions["redirect_action"] = action
        elif kind == "URLRewrite":
            rw = f.get("urlRewrite") or {}
            action = {"query": {"keep_query": True}}
            if rw.get("hostname"):
                action["host_hdr"] = _uri(str(rw["hostname"]))
            if (rw.get("path") or {}).get("replaceFullPath"):
                action["path"] = _uri(str(rw["path"]["replaceFullPath"]))
            actions["rewrite_url_action"] = action
    return actions, response


def _match(r: Rule, m: dict[str, Any], path: tuple[str, str], host: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "vs_port": {"match_criteria": "IS_IN", "ports": list(r.ports)},
        "path": {"match_criteria": path[0], "match_str": [path[1]], "match_case": "SENSITIVE"},
    }
    if host is not None:
        out["host_hdr"] = host
    if m.get("method"):
        out["method"] = {"match_criteria": "IS_IN", "methods": [f"HTTP_METHOD_{m['method']}"]}
    if m.get("headers"):
        out["hdrs"] = [{"hdr": h["name"], "match_criteria": "HDR_EQUALS", "value": [h["value"]],
                        "match_case": "SENSITIVE"} for h in m["headers"]]
    if m.get("queryParams"):
        out["query"] = {"match_criteria": "QUERY_MATCH_CONTAINS",
                        "match_str": [f"{q['name']}={q['value']}" for q in m["queryParams"]]}
    return out


def rule_names(cluster: str, gw_ns: str, gw: str, r: Rule) -> str:
    """The poolgroup of a route rule (the policy rules of the rule carry the same name, suffixed)."""
    return naming.fit(f"{naming.prefix(cluster)}{gw_ns}-{gw}-{r.route_ns}-{r.route}-{r.index}", cluster)


def build_l7_tree(vs_name: str, gw_ns: str, gw_name: str, sources: tuple[ObjRef, ...], the_vip: dict[str, Any],
                  chosen: Infra, ports: list[int], rules: list[Rule], cfg: Config, tenant: str, *,
                  ssl_ports: list[int] | None = None, certificates: list[AviObject] | None = None) -> VsTree:
    """``ports`` plain HTTP, ``ssl_ports`` TLS-terminated with ``certificates`` (sslkeyandcertificate objects)."""
    cluster = cfg.cluster
    common = l4.common_fields(cfg, tenant)
    gw_markers = {"GatewayName": gw_name, "GatewayNamespace": gw_ns}
    pools: list[AviObject] = []
    groups: list[AviObject] = []
    request: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    response: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for r in rules:
        pg = rule_names(cluster, gw_ns, gw_name, r)
        route_markers = markers(cluster, **gw_markers, HTTPRouteName=r.route, HTTPRouteNamespace=r.route_ns)
        weights: list[tuple[str, int]] = []
        for b in r.backends:
            name = naming.fit(f"{pg}-{b.namespace}-{b.name}-{b.port['port']}", cluster)
            pools.append(l4.pool_object(l4.PortPlan(b.name, b.port, b.slices, name, route_markers), common))
            if b.weight > 0:
                weights.append((name, b.weight))
        members = [{"pool_ref": ref("pool", n), "ratio": w} for n, w in weights_to_ratios(weights, MAX_RATIO)]
        actions, resp_hdrs = _filters(r.rule)
        if members:
            groups.append(AviObject(type="poolgroup", name=pg, body={
                "name": pg, **common, "members": members, "markers": route_markers}))
        if "redirect_action" not in actions:
            actions["switching_action"] = (
                {"action": "HTTP_SWITCHING_SELECT_POOLGROUP", "pool_group_ref": ref("poolgroup", pg)} if members
                else {"action": "HTTP_SWITCHING_SELECT_LOCAL", "status_code": NO_BACKEND})
        for j, m in enumerate(r.rule.get("matches") or [{}]):
            for k, (path, host) in enumerate((p, h) for p in path_conditions(m) for h in _host_groups(r.hostnames)):
                key = (*_precedence(r, m, j), k)
                name = f"{r.route_ns}-{r.route}-{r.index}-{j}-{k}"
                match = _match(r, m, path, host)
                request.append((key, {"name": name, "enable": True, "match": match, **actions}))
                if resp_hdrs:
                    response.append((key, {"name": name, "enable": True, "match": match, "hdr_action": resp_hdrs}))
    ordered = [body for _, body in sorted(request, key=lambda x: x[0])]
    ordered.append({"name": "default-backend-rule", "enable": True,
                    "match": {"path": {"match_criteria": "BEGINS_WITH", "match_str": ["/"]}},
                    "switching_action": {"action": "HTTP_SWITCHING_SELECT_LOCAL", "status_code": NOT_FOUND}})
    policyset: dict[str, Any] = {
        "name": vs_name, **{k: v for k, v in common.items() if k != "cloud_ref"},
        "http_request_policy": {"rules": [{**b, "index": i + 1} for i, b in enumerate(ordered)]},
        "markers": markers(cluster, **gw_markers),
    }
    if response:
        policyset["http_response_policy"] = {
            "rules": [{**b, "index": i + 1} for i, (_, b) in enumerate(sorted(response, key=lambda x: x[0]))]}
    vs: dict[str, Any] = {
        "name": vs_name, **common,
        "vrf_context_ref": ref("vrfcontext", cfg.ControllerSettings.vrfName),
        "se_group_ref": ref("serviceenginegroup", chosen.se_group),
        "vsvip_ref": ref("vsvip", vs_name),
        "services": sorted([{"port": p, "enable_ssl": False} for p in set(ports)] +
                           [{"port": p, "enable_ssl": True} for p in set(ssl_ports or ())], key=lambda x: x["port"]),
        "application_profile_ref": ref("applicationprofile", APP_PROFILE_HTTP),
        "network_profile_ref": ref("networkprofile", l4.NETWORK_PROFILE["TCP"]),
        "http_policies": [{"index": 11, "http_policy_set_ref": ref("httppolicyset", vs_name)}],
        "traffic_enabled": True,
        "east_west_placement": False,
        "service_metadata": json.dumps(l4.metadata(sources), separators=(",", ":")),
        "markers": markers(cluster, **gw_markers),
    }
    certs = sorted(certificates or (), key=lambda o: o.name)
    if certs:
        vs["ssl_key_and_certificate_refs"] = [ref("sslkeyandcertificate", c.name) for c in certs]
        vs["ssl_profile_ref"] = ref("sslprofile", SSL_PROFILE)
    if chosen.enable_rhi:
        vs["enable_rhi"] = True
    objects = (l4.vsvip_object(vs_name, common, cfg, the_vip, chosen, []), *certs,
               *sorted(pools, key=lambda o: o.name), *sorted(groups, key=lambda o: o.name),
               AviObject(type="httppolicyset", name=vs_name, body=policyset),
               AviObject(type="virtualservice", name=vs_name, body=vs))
    return VsTree.checksummed(cluster=cluster, tenant=tenant, vs_name=vs_name, objects=objects, sources=sources)
