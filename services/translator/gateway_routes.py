"""Routes attached to a Gateway (pure): which listeners take a route, with which hostnames and backends.

HTTPRoutes, TCPRoutes, UDPRoutes and TLSRoutes alike. For each
``parentRefs`` entry naming the Gateway: the listeners it may attach to (of
the protocol its kind takes; ``sectionName``, ``port``, ``allowedRoutes``
namespaces and kinds, hostnames intersected with the listener's for HTTP and
TLS), and for each rule the backends it may use (a Service that exists, has
the port — of the route's transport for L4 routes — and is in the route's
namespace or allowed there by a ReferenceGrant). Each parentRef's result is
a :class:`RouteParentStatus` with the spec's reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.common.contracts import RouteParentStatus
from services.translator import gateway_listeners as gl

GROUP = gl.GROUP
ROUTE_KINDS = tuple(gl.ROUTE_PROTOCOL)  # HTTPRoute, TCPRoute, UDPRoute, TLSRoute
# The Service port protocol an L4 route's backendRef port must have.
BACKEND_PROTOCOL = {"TCPRoute": "TCP", "UDPRoute": "UDP", "TLSRoute": "TCP"}
# Route kinds whose listeners have a hostname to intersect with.
HOSTNAME_KINDS = ("HTTPRoute", "TLSRoute")

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
    """One rule of one route on this Gateway, as the policy set (or the L4 VS) needs it."""

    route_ns: str
    route: str
    index: int
    created: str
    rule: dict[str, Any]
    hostnames: tuple[str, ...]  # effective (listener ∩ route); () = any
    ports: tuple[int, ...]  # the listener ports the route is on
    backends: list[Backend] = field(default_factory=list)
    any_backend_invalid: bool = False
    kind: str = "HTTPRoute"
    # The listeners the route is on, with the effective hostnames on each (L4 routes pick per listener).
    listeners: tuple[tuple[str, tuple[str, ...]], ...] = ()
    parent: int = 0  # index of the route's parent status this rule came from (for notes added later)

    def order(self) -> tuple[str, str, str, str]:
        """The Gateway API's tie-break between routes: oldest first, then namespace/name."""
        return (self.created, self.route_ns, self.route, self.kind)

    def describe(self) -> str:
        return f"{self.kind} {self.route_ns}/{self.route}"


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


def _backends(route_kind: str, route_ns: str, rule: dict[str, Any], services: ServiceLookup,
              grants: list[dict[str, Any]]) -> tuple[list[Backend], str, str]:
    """The rule's usable backends and, for the first unusable one, (reason, message)."""
    proto = BACKEND_PROTOCOL.get(route_kind)
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
        elif ns != route_ns and not grant_allows(grants, route_kind, route_ns, "Service", ns, name):
            why, msg = "RefNotPermitted", f"backendRef Service {ns}/{name}: no ReferenceGrant in {ns} allows it"
        elif found is None:
            why, msg = "BackendNotFound", f"backendRef Service {ns}/{name} does not exist"
        else:
            svc_port = next((p for p in (found[0].get("spec") or {}).get("ports") or []
                             if int(p["port"]) == int(b.get("port") or 0)
                             and (proto is None or (p.get("protocol") or "TCP") == proto)), None)
            if svc_port is None:
                what = f"{b.get('port')}/{proto}" if proto else str(b.get("port"))
                why, msg = "BackendNotFound", f"backendRef Service {ns}/{name} has no port {what}"
        if why:
            reason, message = reason or why, message or msg
            continue
        assert found is not None and svc_port is not None
        out.append(Backend(ns, name, svc_port, found[1], int(b.get("weight", 1))))
    return out, reason, message


SUPPORTED_FILTERS = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite")


def unsupported(kind: str, rules: list[dict[str, Any]]) -> str:
    """What in a route's rules albus cannot express on the controller ("" when nothing)."""
    if kind != "HTTPRoute":
        # No matches on TCP/UDP/TLS rules: nothing would choose between two of them.
        return f"{kind} with {len(rules)} rules (one rule per route)" if len(rules) > 1 else ""
    return next((why for rule in rules if (why := _unsupported_http(rule))), "")


def _unsupported_http(rule: dict[str, Any]) -> str:
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
    return [li for li in listeners if li.name in usable
            and (not ref.get("sectionName") or ref["sectionName"] == li.name)
            and (not ref.get("port") or int(ref["port"]) == li.port)]


Route = tuple[str, dict[str, Any]]  # (kind, the route object)
RouteKey = tuple[str, str, str]  # (kind, namespace, name)


@dataclass
class Attached:
    rules: list[Rule]
    parents: dict[RouteKey, list[RouteParentStatus]]  # route -> its parent statuses here
    attached: dict[str, int]  # listener name -> routes attached


def attach(gw_ns: str, gw_name: str, listeners: list[gl.Listener], usable: set[str], routes: list[Route],
           ns_labels: Callable[[str], dict[str, str]], services: ServiceLookup,
           grants: list[dict[str, Any]]) -> Attached:
    out = Attached([], {}, {})
    for kind, route in routes:
        r_ns, r_name = _meta(route)
        spec = route.get("spec") or {}
        statuses: list[RouteParentStatus] = []
        full_kind = f"{GROUP}/{kind}"
        for ref in spec.get("parentRefs") or []:
            if (ref.get("kind") or "Gateway") != "Gateway" or (ref.get("group") or GROUP) != GROUP \
                    or (ref.get("namespace") or r_ns) != gw_ns or ref.get("name") != gw_name:
                continue
            base = RouteParentStatus(gateway_namespace=gw_ns, gateway_name=gw_name,
                                     section_name=str(ref.get("sectionName") or ""), port=int(ref.get("port") or 0))
            # Listeners of another protocol exist but do not take this kind: NotAllowedByListeners.
            cands = _parent_listeners(ref, listeners, usable)
            allowed = [li for li in cands if gl.namespace_allowed(li, gw_ns, r_ns, ns_labels(r_ns))
                       and gl.kind_allowed(li, full_kind)]
            route_hosts = [str(x) for x in spec.get("hostnames") or []] if kind in HOSTNAME_KINDS else []
            hosted = [(li, h) for li in allowed if (h := intersect((li.hostname or ""), route_hosts)) is not None]
            if not hosted:
                reason = "NoMatchingParent" if not cands else (
                    "NotAllowedByListeners" if not allowed else "NoMatchingListenerHostname")
                statuses.append(base.model_copy(update={
                    "accepted": False, "accepted_reason": reason,
                    "message": f"no listener of Gateway {gw_ns}/{gw_name} takes this route ({reason})"}))
                continue
            bad = unsupported(kind, list(spec.get("rules") or []))
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
            on = tuple((li.name, hs) for li, hs in hosted)
            for i, rule in enumerate(spec.get("rules") or []):
                backends, why, msg = _backends(kind, r_ns, rule, services, grants)
                refs_reason, refs_msg = refs_reason or why, refs_msg or msg
                out.rules.append(Rule(r_ns, r_name, i, str((route.get("metadata") or {}).get("creationTimestamp") or ""),
                                      rule, hosts, ports, backends, bool(why), kind, on, len(statuses)))
            statuses.append(base.model_copy(update={
                "resolved_refs": not refs_reason, "refs_reason": refs_reason or "ResolvedRefs", "message": refs_msg}))
        out.parents[(kind, r_ns, r_name)] = statuses
    return out


def weights_to_ratios(weights: list[tuple[str, int]], top_ratio: int) -> list[tuple[str, int]]:
    """backendRef weights go to 1,000,000, the controller's ratios to ``top_ratio``: scaled down when needed."""
    top = max((w for _, w in weights), default=0)
    if top <= top_ratio:
        return weights
    return [(n, max(1, round(w * top_ratio / top))) for n, w in weights]
