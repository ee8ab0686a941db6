"""TCPRoutes, UDPRoutes and TLSRoutes on a Gateway's L4 virtual service (pure).

A TCP or UDP listener is one rule of the VS's L4 policy: it serves one
source, the oldest of the Services joined to it by label and the routes
attached to it (creation time, then namespace and name: the Gateway API's
tie-break for routes nothing else tells apart). Every attached route is
``Accepted``; a route that loses is told in its status message who serves
the listener instead, and gets its traffic once that one goes.

A route's rule becomes a pool group
``<cluster>--<gwNs>-<gw>-<routeNs>-<route>-<PROTO>-<listener port>`` whose
members' ``ratio`` are the backendRefs' weights, one pool per backend
``<pool group>-<svcNs>-<svc>-<port>``; the listener's L4 rule selects the
group. A rule without a usable backend selects nothing: the VS still listens
on the port and the controller refuses the connection.

A TLS listener in ``Passthrough`` mode is shared by server name: for each
(listener port, hostname) the oldest route wins, and the VS's datascript
(:mod:`gateway_tls`) picks the winner's pool group from the ClientHello's
server name, as AKO's passthrough VS does.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from services.common.contracts import ObjRef
from services.translator import gateway_listeners as gl
from services.translator import l4, naming
from services.translator.gateway_routes import Rule, weights_to_ratios
from services.translator.refs import markers

L4_ROUTE_KINDS = ("TCPRoute", "UDPRoute", "TLSRoute")
MAX_RATIO = 1000  # a pool group member's ratio
ANY_HOST = "*"  # a TLS route that takes every server name on its listener


@dataclass
class L4Routes:
    groups: list[l4.GroupPlan] = field(default_factory=list)
    # listener port -> server name (exact, "*.suffix" or ANY_HOST) -> pool group, for the datascript
    by_sni: dict[int, dict[str, str]] = field(default_factory=dict)
    # (kind, namespace, name, parent index) -> why the route gets no traffic somewhere
    notes: dict[tuple[str, str, str, int], list[str]] = field(default_factory=dict)


def first_routes(rules: list[Rule], listeners: list[gl.Listener]) -> dict[str, Rule]:
    """The oldest route rule on each TCP/UDP listener: joined Services younger than it lose the listener."""
    by_name = {li.name: li for li in listeners}
    out: dict[str, Rule] = {}
    for r in sorted((r for r in rules if r.kind in L4_ROUTE_KINDS), key=Rule.order):
        for li_name, _ in r.listeners:
            if by_name[li_name].protocol != "TLS":
                out.setdefault(li_name, r)
    return out


def _group(r: Rule, li: gl.Listener, cluster: str, gw_ns: str, gw: str) -> l4.GroupPlan | None:
    """The rule's pool group on this listener; None when no backend may take traffic."""
    name = naming.fit(f"{naming.prefix(cluster)}{gw_ns}-{gw}-{r.route_ns}-{r.route}-{li.protocol}-{li.port}",
                      cluster)
    route_markers = markers(cluster, GatewayName=gw, GatewayNamespace=gw_ns,
                            **{f"{r.kind}Name": r.route, f"{r.kind}Namespace": r.route_ns})
    pools: dict[str, tuple[l4.PortPlan, int]] = {}
    for b in r.backends:
        pool = naming.fit(f"{name}-{b.namespace}-{b.name}-{b.port['port']}", cluster)
        if b.weight > 0:  # the same backend twice: one pool, the weights added
            pools[pool] = (l4.PortPlan(b.name, b.port, b.slices, pool, route_markers),
                           b.weight + (pools[pool][1] if pool in pools else 0))
    if not pools:
        return None
    ratios = dict(weights_to_ratios([(n, w) for n, (_, w) in sorted(pools.items())], MAX_RATIO))
    return l4.GroupPlan(name=name, members=tuple((pools[n][0], ratios[n]) for n in sorted(pools)),
                        markers=route_markers, listener=None if li.protocol == "TLS" else (li.protocol, li.port))


def _note(out: L4Routes, r: Rule, text: str) -> None:
    notes = out.notes.setdefault((r.kind, r.route_ns, r.route, r.parent), [])
    if text not in notes:
        notes.append(text)


def plan(listeners: list[gl.Listener], rules: list[Rule], served_by_service: dict[str, ObjRef], cluster: str,
         gw_ns: str, gw: str) -> L4Routes:
    """Which route serves each L4 listener (or server name on a TLS listener), and its pool group."""
    by_name = {li.name: li for li in listeners}
    out = L4Routes()
    on_listener: dict[str, list[Rule]] = defaultdict(list)
    for r in sorted((r for r in rules if r.kind in L4_ROUTE_KINDS), key=Rule.order):
        for li_name, _ in r.listeners:
            on_listener[li_name].append(r)
    # TLS: (port, server name) -> the routes that ask for it, oldest first
    by_sni: dict[tuple[int, str], list[tuple[Rule, gl.Listener]]] = defaultdict(list)
    for li_name, attached in sorted(on_listener.items()):
        li = by_name[li_name]
        if li.protocol == "TLS":
            for r in attached:
                hosts = dict(r.listeners)[li_name] or (ANY_HOST,)
                for h in hosts:
                    by_sni[(li.port, h)].append((r, li))
            continue
        svc = served_by_service.get(li_name)
        winner = None if svc is not None else attached[0]
        for r in attached[1:] if winner is not None else attached:
            other = f"Service {svc.namespace}/{svc.name}" if svc is not None else \
                (winner.describe() if winner is not None else "")
            _note(out, r, f"listener {li_name} is served by the older {other}; this route gets no traffic there")
        group = _group(winner, li, cluster, gw_ns, gw) if winner is not None else None
        if group is not None:
            out.groups.append(group)
    for (port, host), asking in sorted(by_sni.items()):
        (r, li), rest = asking[0], asking[1:]
        for loser, _ in rest:
            _note(out, loser, f"server name {host} on port {port} is served by the older {r.describe()}; "
                              "this route gets no traffic for it")
        group = _group(r, li, cluster, gw_ns, gw)
        if group is not None:
            out.groups.append(group)
            out.by_sni.setdefault(port, {})[host] = group.name
    return out
