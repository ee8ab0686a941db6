"""Gateway API: a Gateway of albus's class is one virtual service with one VIP (pure functions).

The telco case (AKO's "labels" approach, ``shared/research/ako.md`` §10):
Services labelled ``ako.vmware.com/gateway-name`` / ``gateway-namespace``
join a Gateway; each Service port whose port and protocol match a listener
becomes that listener's pool. The tree is an L4 tree (:mod:`l4`) named
after the Gateway: VS, vsvip and l4policyset ``<cluster>--<gwNs>-<gw>``,
pools ``<cluster>--<svcNs>-<svc>-<gw>-<PROTO>-<port>``. One service port
per usable listener, whether or not a Service has joined it yet.

A Gateway of HTTP and HTTPS listeners is an HTTP VS instead, built from the
HTTPRoutes attached to it (:mod:`gateway_routes`, :mod:`gateway_http`), with
the HTTPS listeners' certificates (:mod:`gateway_certs`).

Services are taken oldest first (creation time, then name); a listener
already claimed by an older Service, a port no listener matches, or a
listener whose ``allowedRoutes.namespaces`` excludes the Service's
namespace is a problem on that Service, never on the others.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.common import service_ownership as ownership
from services.common.config import Config
from services.common.contracts import GatewayStatus, ObjRef, Problem, RouteParentStatus, Severity
from services.translator import gateway_certs, gateway_http, gateway_l4, gateway_tls, l4, naming, vip
from services.translator import gateway_listeners as gl
from services.translator import gateway_routes as gr
from services.translator import infra as infra_mod
from services.translator.infra import Infra
from services.translator.refs import markers

CONTROLLER = "ako.vmware.com/avi-lb"
ROUTE_KINDS = gr.ROUTE_KINDS
L4_ROUTE_KINDS = gateway_l4.L4_ROUTE_KINDS
NAME_LABEL = ownership.GATEWAY_NAME_LABEL
NAMESPACE_LABEL = ownership.GATEWAY_NAMESPACE_LABEL


def ours(gateway_class: dict[str, Any] | None) -> bool:
    return gateway_class is not None and (gateway_class.get("spec") or {}).get("controllerName") == CONTROLLER


def class_name(gateway: dict[str, Any]) -> str:
    return str((gateway.get("spec") or {}).get("gatewayClassName") or "")


def joined_to(svc: dict[str, Any]) -> tuple[str, str] | None:
    """The (namespace, name) of the Gateway a Service's labels name; the namespace defaults to the Service's."""
    meta = svc.get("metadata") or {}
    labels = meta.get("labels") or {}
    name = str(labels.get(NAME_LABEL) or "").strip()
    if not name:
        return None
    return str(labels.get(NAMESPACE_LABEL) or meta.get("namespace") or "default").strip(), name


def _generation(obj: dict[str, Any]) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 0)


def class_status(gateway_class: dict[str, Any], infra_problems: list[Problem]) -> GatewayStatus:
    """``Accepted`` of one of albus's GatewayClasses: its parametersRef must name a usable AviInfraSetting."""
    gen = _generation(gateway_class)
    p = (gateway_class.get("spec") or {}).get("parametersRef")
    if p and not infra_mod.class_parameters(gateway_class):
        return GatewayStatus(generation=gen, accepted=False, reason="InvalidParameters",
                             message=f"parametersRef must name an {infra_mod.GROUP} {infra_mod.KIND}, got "
                                     f"{p.get('group')}/{p.get('kind')} {p.get('name')}")
    if infra_problems:
        return GatewayStatus(generation=gen, accepted=False, reason="InvalidParameters",
                             message="; ".join(x.message for x in infra_problems))
    return GatewayStatus(generation=gen, message=f"handled by {CONTROLLER}")


@dataclass(frozen=True)
class Joined:
    """A Service that joins the Gateway, with what its pools need."""

    svc: dict[str, Any]
    slices: list[dict[str, Any]]
    ns_labels: dict[str, str]  # its Namespace's labels, for allowedRoutes selectors

    @property
    def ref(self) -> ObjRef:
        m = self.svc["metadata"]
        return ObjRef(kind="Service", namespace=m.get("namespace") or "default", name=m["name"])

    def order(self) -> tuple[str, str, str]:
        m = self.svc["metadata"]
        return (str(m.get("creationTimestamp") or ""), self.ref.namespace, self.ref.name)


def _addresses(gateway: dict[str, Any], src: ObjRef) -> tuple[list[vip.IpAddr], list[Problem]]:
    """``spec.addresses``: at most one IPv4 and one IPv6 address (a static VIP)."""
    out: list[vip.IpAddr] = []
    for a in (gateway.get("spec") or {}).get("addresses") or []:
        kind, value = a.get("type") or "IPAddress", str(a.get("value") or "")
        try:
            if kind != "IPAddress":
                raise ValueError(f"address type {kind} is not supported, only IPAddress")
            out.append(ipaddress.ip_address(value))
        except ValueError as exc:
            return [], [Problem(source=src, reason="UnsupportedAddress", message=f"spec.addresses: {value}: {exc}")]
    if len({a.version for a in out}) != len(out):
        return [], [Problem(source=src, reason="UnsupportedAddress",
                            message="spec.addresses: at most one IPv4 and one IPv6 address")]
    return out, []


def auto_families(chosen: Infra) -> list[str]:
    """An allocated VIP is IPv4, or IPv6 on a VIP network that has only an IPv6 CIDR."""
    net = chosen.vip_networks[0] if chosen.vip_networks else None
    return ["IPv6"] if net is not None and net.v6cidr and not net.cidr else ["IPv4"]


@dataclass
class _Assignment:
    ports: list[l4.PortPlan]
    sources: list[ObjRef]
    problems: list[Problem]
    attached: dict[str, int]
    claimed: dict[str, ObjRef]  # listener name -> the Service serving it


def _assign(gw_ns: str, gw_name: str, listeners: list[gl.Listener], open_names: set[str],
            joined: list[Joined], cluster: str, first_routes: dict[str, gr.Rule]) -> _Assignment:
    """Each joined Service port to the listener of the same port and protocol, first come first served.

    ``first_routes``: the oldest route on each listener; a Service younger than it does not get the listener.
    """
    out = _Assignment([], [], [], {}, {})
    claimed = out.claimed
    for j in sorted(joined, key=Joined.order):
        src, took, why = j.ref, 0, []
        ports = (j.svc.get("spec") or {}).get("ports") or []
        for p in ports:
            proto, number = str(p.get("protocol") or "TCP"), int(p["port"])
            li = next((x for x in listeners if x.name in open_names and x.port == number and x.protocol == proto),
                      None)
            if li is None:
                why.append(("NoMatchingListener", f"port {number}/{proto}: no listener of Gateway "
                                                  f"{gw_ns}/{gw_name} has this port and protocol"))
            elif not gl.namespace_allowed(li, gw_ns, src.namespace, j.ns_labels):
                why.append(("NotAllowedByListener", f"port {number}/{proto}: listener {li.name} does not allow "
                                                    f"namespace {src.namespace} (allowedRoutes.namespaces)"))
            elif not gl.kind_allowed(li, gl.SERVICE_KIND):
                why.append(("NotAllowedByListener", f"port {number}/{proto}: listener {li.name} does not allow "
                                                    "Services (allowedRoutes.kinds)"))
            elif li.name in claimed:
                other = claimed[li.name]
                why.append(("ListenerConflict", f"port {number}/{proto}: listener {li.name} is already served by "
                                                f"Service {other.namespace}/{other.name}"))
            elif li.name in first_routes and first_routes[li.name].order()[:3] < j.order():
                why.append(("ListenerConflict", f"port {number}/{proto}: listener {li.name} is already served by "
                                                f"the older {first_routes[li.name].describe()}"))
            else:
                claimed[li.name] = src
                took += 1
                out.attached[li.name] = out.attached.get(li.name, 0) + 1
                out.ports.append(l4.PortPlan(
                    src.name, p, j.slices,
                    naming.gateway_pool(cluster, src.namespace, src.name, gw_name, proto, number),
                    markers(cluster, Namespace=src.namespace, ServiceName=src.name, Port=str(number),
                            Protocol=proto, GatewayName=gw_name)))
        if not ports:
            why.append(("NoPorts", "the Service has no ports"))
        # A Service that serves some listener only warns about its other ports.
        severity = Severity.WARNING if took else Severity.ERROR
        out.problems += [Problem(source=src, reason=r, message=m, severity=severity) for r, m in why]
        if took:
            out.sources.append(src)
    return out


@dataclass(frozen=True)
class RouteInputs:
    """What the routes on the Gateway need from the graph."""

    routes: list[gr.Route]  # (kind, route) of every route whose parentRefs name the Gateway
    ns_labels: Callable[[str], dict[str, str]]
    services: gr.ServiceLookup
    grants: list[dict[str, Any]]


NO_ROUTES = RouteInputs([], lambda _ns: {}, lambda _ns, _n: None, [])


def _route_statuses(parents: dict[gr.RouteKey, list[RouteParentStatus]],
                    routes: list[gr.Route]) -> dict[ObjRef, GatewayStatus]:
    out: dict[ObjRef, GatewayStatus] = {}
    for kind, r in routes:
        m = r["metadata"]
        key = (kind, m.get("namespace") or "default", m["name"])
        out[ObjRef(kind=kind, namespace=key[1], name=key[2])] = GatewayStatus(
            generation=_generation(r), parents=tuple(parents.get(key, ())))
    return out


def _with_notes(parents: dict[gr.RouteKey, list[RouteParentStatus]],
                notes: dict[tuple[str, str, str, int], list[str]]) -> dict[gr.RouteKey, list[RouteParentStatus]]:
    """Parent statuses with the L4 notes (who serves a listener instead) added to their messages."""
    out = dict(parents)
    for (kind, ns, name, i), texts in notes.items():
        st = list(out[(kind, ns, name)])
        msg = "; ".join(x for x in (st[i].message, *texts) if x)
        st[i] = st[i].model_copy(update={"message": msg})
        out[(kind, ns, name)] = st
    return out


def _certificates(ns: str, name: str, listeners: list[gl.Listener], grants: list[dict[str, Any]],
                  certs: gateway_certs.CertInputs, cfg: Config, tenant: str) -> dict[str, gateway_certs.ListenerCerts]:
    """Each HTTPS listener's certificates (an L4 Gateway serves none: its HTTPS listeners are refused anyway)."""
    if not gl.is_l7(listeners):
        return {}
    return {li.name: gateway_certs.resolve(ns, name, li, grants, certs, cfg, tenant)
            for li in listeners if li.protocol == "HTTPS"}


def translate_gateway(gateway: dict[str, Any], chosen: Infra | None, infra_problems: list[Problem],
                      joined: list[Joined], cfg: Config, tenant: str,
                      http: RouteInputs = NO_ROUTES,
                      certs: gateway_certs.CertInputs = gateway_certs.NO_CERTS) -> l4.Translation:
    """The Gateway's tree, its status, every joined Service's problems and every route's standing here."""
    meta = gateway["metadata"]
    ns, name = meta.get("namespace") or "default", meta["name"]
    src = ObjRef(kind="Gateway", namespace=ns, name=name)
    gen = _generation(gateway)
    listeners = gl.listeners_of(gateway)
    tls = _certificates(ns, name, listeners, http.grants, certs, cfg, tenant)
    cert_refs = {n: (c.reason, c.message) for n, c in tls.items()}
    first = gl.judge(listeners, {}, cert_refs)
    open_names = {s.name for s in first if gl.takes_routes(s)}
    att = gr.attach(ns, name, listeners, open_names, http.routes, http.ns_labels, http.services, http.grants)
    assigned = _assign(ns, name, listeners, open_names, joined, cfg.cluster,
                       gateway_l4.first_routes(att.rules, listeners))
    statuses = gl.judge(listeners, {n: assigned.attached.get(n, 0) + att.attached.get(n, 0)
                                    for n in {*assigned.attached, *att.attached}}, cert_refs)
    l4_routes = gateway_l4.plan(listeners, att.rules, assigned.claimed, cfg.cluster, ns, name)
    routes = _route_statuses(_with_notes(att.parents, l4_routes.notes), http.routes)
    bad = [s.name for s in statuses if not s.accepted]
    accepted = GatewayStatus(generation=gen, reason="ListenersNotValid" if bad else "Accepted",
                             message=f"listeners not valid: {', '.join(bad)}" if bad else "", listeners=tuple(statuses))

    static, problems = _addresses(gateway, src)
    the_vip = None
    if not problems:
        if chosen is None:
            problems = infra_problems
        else:
            the_vip, problems = vip.build_for(static, auto_families(chosen), chosen, src)
    if not open_names:
        problems.append(Problem(source=src, reason="ListenersNotValid", message="no listener albus can serve"))
    serving = [li for li in listeners if li.name in open_names and (li.protocol != "HTTPS" or tls[li.name].objects)]
    if open_names and not serving:
        why = "; ".join(f"listener {n}: {c.message}" for n, c in tls.items() if c.message)
        problems.append(Problem(source=src, reason="ListenersNotValid",
                                message=f"no listener can be served yet ({why})" if why else "no listener can be served"))
    if the_vip is None or chosen is None or problems:
        reason = "UnsupportedAddress" if any(p.reason == "UnsupportedAddress" for p in problems) else "Invalid"
        status = accepted.model_copy(update={"accepted": False, "reason": reason,
                                             "message": "; ".join(p.message for p in problems)})
        gone = [Problem(source=j.ref, reason="GatewayNotAccepted",
                        message=f"Gateway {ns}/{name} is not accepted: {status.message}") for j in joined]
        return l4.Translation(problems=problems + gone, statuses={src: status, **routes})

    vs_name = naming.gateway_vs(cfg.cluster, ns, name)
    if gl.is_l7(listeners):
        ports = [li.port for li in serving if li.protocol == "HTTP"]
        ssl_ports = [li.port for li in serving if li.protocol == "HTTPS"]
        cert_objects = {o.name: o for li in serving if li.protocol == "HTTPS" for o in tls[li.name].objects}
        rules = [r for r in att.rules if r.kind == "HTTPRoute"]
        tree = gateway_http.build_l7_tree(vs_name, ns, name, (src,), the_vip, chosen, ports, rules, cfg, tenant,
                                          ssl_ports=ssl_ports,
                                          certificates=[cert_objects[n] for n in sorted(cert_objects)])
        return l4.Translation(trees=[tree], problems=assigned.problems, statuses={src: accepted, **routes})
    served = {(p.protocol, p.number) for p in assigned.ports} | {g.listener for g in l4_routes.groups if g.listener}
    # A TLS listener's port is a TCP port of the VS (the datascript reads the server name).
    listen_only = tuple(sorted({(li.transport, li.port) for li in listeners
                                if li.name in open_names and (li.transport, li.port) not in served}))
    plan = l4.L4Plan(
        vs_name=vs_name, namespace=ns, sources=(src, *sorted(assigned.sources, key=lambda r: r.key())),
        vip=the_vip, infra=chosen, ports=assigned.ports,
        vs_markers=markers(cfg.cluster, GatewayName=name, GatewayNamespace=ns),
        policy_markers=markers(cfg.cluster, GatewayName=name, GatewayNamespace=ns,
                               Protocol=",".join(sorted({li.protocol for li in listeners if li.name in open_names}))),
        listen_only=listen_only,
        groups=l4_routes.groups,
        datascript=gateway_tls.datascript(vs_name, l4_routes.by_sni, cfg, tenant, ns, name)
        if l4_routes.by_sni else None,
    )
    return l4.Translation(trees=[l4.build_tree(plan, cfg, tenant)], problems=assigned.problems,
                          statuses={src: accepted, **routes})
