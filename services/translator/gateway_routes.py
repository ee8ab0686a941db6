"""HTTPRoutes attached to a Gateway (pure): which listeners take a route, with which hostnames and backends.

For each ``parentRefs`` entry naming the Gateway: the HTTP listeners it may
attach to (``sectionName``, ``port``, ``allowedRoutes`` namespaces and kinds,
hostnames intersected with the listener's), and for each rule the backends
it may use (a Service that exists, has the port, and is in the route's
namespace or allowed there by a ReferenceGrant). Each parentRef's result is a
:class:`RouteParentStatus` with the spec's reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.common.contracts import RouteParentStatus
from services.translator import gateway_listeners as gl

GROUP = "gateway.networking.k8s.io"
HTTP_ROUTE = f"{GROUP}/HTTPRoute"

# (namespace, name) -> (Service, its EndpointSlices), or None when it does not exist
ServiceLookup = Callable[[str, str], tuple[dict[str, Any], list[dict[str, Any]]] | None]


@dataclass(frozen=True)
class Backend:
    namespace: str
    name: str
    port: dict[str, Any]  # the Service port
    slices: list[dict[str, Any]]
    weight: int


@dataclass
class Rule:
    """One rule of one route on this Gateway, as the policy set needs it."""

    route_ns: str
    route: str
    index: int
    created: str
    rule: dict[str, Any]
    hostnames: tuple[str, ...]  # effective (listener ∩ route); () = any
    ports: tuple[int, ...]  # the listener ports the route is on
    backends: list[Backend] = field(default_factory=list)
    any_backend_invalid: bool = False


def _meta(obj: dict[str, Any]) -> tuple[str, str]:
    m = obj.get("metadata") or {}
    return str(m.get("namespace") or "default"), str(m["name"])


def _host_match(pattern: str, host: str) -> bool:
    """Does the listener or route hostname ``pattern`` (maybe ``*.``) cover ``host``?"""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host.count(".") >= pattern.count(".")
    return pattern == host


def intersect(listener_host: str, route_hosts: list[str]) -> tuple[str, ...] | None:
    """Effective hostnames; () means any; None means no overlap (the route cannot attach there)."""
    if not listener_host:
        return tuple(route_hosts)
    if not route_hosts:
        return (listener_host,)
    out = []
    for h in route_hosts:
        if _host_match(listener_host, h):
            out.append(h)
        elif _host_match(h, listener_host):
            out.append(listener_host)
    return tuple(dict.fromkeys(out)) or None


def grant_allows(grants: list[dict[str, Any]], from_kind: str, from_ns: str, to_kind: str, to_ns: str,
                 to_name: str) -> bool:
    """A ReferenceGrant in the target namespace lets ``from_kind`` objects of ``from_ns`` refer to it."""
    for g in grants:
        if _meta(g)[0] != to_ns:
            continue
        spec = g.get("spec") or {}
        frm = any(f.get("group") == GROUP and f.get("kind") == from_kind and f.get("namespace") == from_ns
                  for f in spec.get("from") or [])
        to = any((t.get("group") or "") == "" and t.get("kind") == to_kind and (t.get("name") or to_name) == to_name
                 for t in spec.get("to") or [])
        if frm and to:
            return True
    return False


def _backends(route_ns: str, rule: dict[str, Any], services: ServiceLookup,
              grants: list[dict[str, Any]]) -> tuple[list[Backend], str, str]:
    """The rule's usable backends and, for the first unusable one, (reason, message)."""
    out: list[Backend] = []
    reason = message = ""
    for b in rule.get("backendRefs") or []:
        kind, group = b.get("kind") or "Service", b.get("group") or ""
        ns, name = b.get("namespace") or route_ns, str(b.get("name") or "")
        why = ""
        found = services(ns, name) if (kind, group) == ("Service", "") else None
        svc_port = None
        if (kind, group) != ("Service", ""):
            why, msg = "InvalidKind", f"backendRef {group}/{kind} {name}: only core Services"
        elif ns != route_ns and not grant_allows(grants, "HTTPRoute", route_ns, "Service", ns, name):
            why, msg = "RefNotPermitted", f"backendRef Service {ns}/{name}: no ReferenceGrant in {ns} allows it"
        elif found is None:
            why, msg = "BackendNotFound", f"backendRef Service {ns}/{name} does not exist"
        else:
            svc_port = next((p for p in (found[0].get("spec") or {}).get("ports") or []
                             if int(p["port"]) == int(b.get("port") or 0)), None)
            if svc_port is None:
                why, msg = "BackendNotFound", f"backendRef Service {ns}/{name} has no port {b.get('port')}"
        if why:
            reason, message = reason or why, message or msg
            continue
        assert found is not None and svc_port is not None
        out.append(Backend(ns, name, svc_port, found[1], int(b.get("weight", 1))))
    return out, reason, message


SUPPORTED_FILTERS = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite")


def unsupported(rule: dict[str, Any]) -> str:
    """What in a rule albus cannot express on the controller ("" when nothing)."""
    for m in rule.get("matches") or []:
        if any((h.get("type") or "Exact") != "Exact" for h in m.get("headers") or []):
            return "header matches other than Exact"
        if any((q.get("type") or "Exact") != "Exact" for q in m.get("queryParams") or []):
            return "query parameter matches other than Exact"
    for f in rule.get("filters") or []:
        kind = f.get("type")
        if kind not in SUPPORTED_FILTERS:
            return f"filter {kind}"
        spec = f.get("requestRedirect") or f.get("urlRewrite") or {}
        if (spec.get("path") or {}).get("type") == "ReplacePrefixMatch":
            return f"{kind} path ReplacePrefixMatch"
        if kind == "RequestRedirect" and int(spec.get("statusCode") or 302) not in (301, 302):
            return f"redirect status code {spec.get('statusCode')}"
    return ""


def _parent_listeners(ref: dict[str, Any], listeners: list[gl.Listener], usable: set[str]) -> list[gl.Listener]:
    return [li for li in listeners if li.name in usable and li.protocol == "HTTP"
            and (not ref.get("sectionName") or ref["sectionName"] == li.name)
            and (not ref.get("port") or int(ref["port"]) == li.port)]


def _kind_allowed(li: gl.Listener) -> bool:
    kinds = li.allowed.get("kinds")
    return not kinds or any((k.get("group") or GROUP) == GROUP and k.get("kind") == "HTTPRoute" for k in kinds)


@dataclass
class Attached:
    rules: list[Rule]
    parents: dict[tuple[str, str], list[RouteParentStatus]]  # route (ns, name) -> its parent statuses here
    attached: dict[str, int]  # listener name -> routes attached


def attach(gw_ns: str, gw_name: str, listeners: list[gl.Listener], usable: set[str], routes: list[dict[str, Any]],
           ns_labels: Callable[[str], dict[str, str]], services: ServiceLookup,
           grants: list[dict[str, Any]]) -> Attached:
    out = Attached([], {}, {})
    for route in routes:
        r_ns, r_name = _meta(route)
        spec = route.get("spec") or {}
        statuses: list[RouteParentStatus] = []
        for ref in spec.get("parentRefs") or []:
            if (ref.get("kind") or "Gateway") != "Gateway" or (ref.get("group") or GROUP) != GROUP \
                    or (ref.get("namespace") or r_ns) != gw_ns or ref.get("name") != gw_name:
                continue
            base = RouteParentStatus(gateway_namespace=gw_ns, gateway_name=gw_name,
                                     section_name=str(ref.get("sectionName") or ""), port=int(ref.get("port") or 0))
            cands = _parent_listeners(ref, listeners, usable)
            allowed = [li for li in cands if gl.namespace_allowed(li, gw_ns, r_ns, ns_labels(r_ns)) and _kind_allowed(li)]
            hosted = [(li, h) for li in allowed if (h := intersect(
                (li.hostname or ""), [str(x) for x in spec.get("hostnames") or []])) is not None]
            if not hosted:
                reason = "NoMatchingParent" if not cands else (
                    "NotAllowedByListeners" if not allowed else "NoMatchingListenerHostname")
                statuses.append(base.model_copy(update={
                    "accepted": False, "accepted_reason": reason,
                    "message": f"no listener of Gateway {gw_ns}/{gw_name} takes this route ({reason})"}))
                continue
            bad = next((why for rule in spec.get("rules") or [] if (why := unsupported(rule))), "")
            if bad:
                statuses.append(base.model_copy(update={
                    "accepted": False, "accepted_reason": "UnsupportedValue",
                    "message": f"not supported by albus: {bad}"}))
                continue
            for li, _ in hosted:
                out.attached[li.name] = out.attached.get(li.name, 0) + 1
            hosts = tuple(dict.fromkeys(h for _, hs in hosted for h in hs))
            if any(not hs for _, hs in hosted):
                hosts = ()  # one listener takes any host
            ports = tuple(sorted({li.port for li, _ in hosted}))
            refs_reason = refs_msg = ""
            for i, rule in enumerate(spec.get("rules") or []):
                backends, why, msg = _backends(r_ns, rule, services, grants)
                refs_reason, refs_msg = refs_reason or why, refs_msg or msg
                out.rules.append(Rule(r_ns, r_name, i, str((route.get("metadata") or {}).get("creationTimestamp") or ""),
                                      rule, hosts, ports, backends, bool(why)))
            statuses.append(base.model_copy(update={
                "resolved_refs": not refs_reason, "refs_reason": refs_reason or "ResolvedRefs", "message": refs_msg}))
        out.parents[(r_ns, r_name)] = statuses
    return out
