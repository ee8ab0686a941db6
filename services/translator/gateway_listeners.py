"""A Gateway's listeners judged one by one: which albus can serve, which conflict, what may attach.

Pure. The statuses use the Gateway API's standard condition reasons. This
release serves the L4 listener protocols (TCP, UDP, and SCTP as an albus
extension), to which Services join by label and TCPRoutes/UDPRoutes attach,
TLS listeners in ``Passthrough`` mode for TLSRoutes, or HTTP and HTTPS
listeners for HTTPRoutes — not HTTP(S) and the others on one Gateway (its VS
is either L4 or HTTP); TLS ``Terminate`` is reported ``Accepted=False`` with
``UnsupportedProtocol`` (docs/gateway-api.md). An HTTPS listener's
certificates are judged in :mod:`gateway_certs`; their verdict comes in as
``refs``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from services.common.contracts import ListenerStatus

L4_PROTOCOLS = ("TCP", "UDP", "SCTP")
# The transport a listener protocol occupies its port with: two listeners on
# one port conflict only when they share it.
TRANSPORT = {"HTTP": "TCP", "HTTPS": "TCP", "TLS": "TCP", "TCP": "TCP", "UDP": "UDP", "SCTP": "SCTP"}
GROUP = "gateway.networking.k8s.io"
SERVICE_KIND = "/Service"  # a joined Service, as a "<group>/<Kind>" with the core group
HTTP_ROUTE_KIND = f"{GROUP}/HTTPRoute"
TCP_ROUTE_KIND = f"{GROUP}/TCPRoute"
UDP_ROUTE_KIND = f"{GROUP}/UDPRoute"
TLS_ROUTE_KIND = f"{GROUP}/TLSRoute"
# What may attach to a listener of each protocol, as "<group>/<Kind>" (the order is supportedKinds').
KINDS_BY_PROTOCOL: dict[str, tuple[str, ...]] = {
    "HTTP": (HTTP_ROUTE_KIND,), "HTTPS": (HTTP_ROUTE_KIND,), "TCP": (SERVICE_KIND, TCP_ROUTE_KIND), "UDP": (SERVICE_KIND, UDP_ROUTE_KIND),
    "SCTP": (SERVICE_KIND,), "TLS": (TLS_ROUTE_KIND,),
}
# The listener protocol each route kind attaches to (HTTPRoutes to HTTPS listeners too).
ROUTE_PROTOCOL = {"HTTPRoute": "HTTP", "TCPRoute": "TCP", "UDPRoute": "UDP", "TLSRoute": "TLS"}


@dataclass(frozen=True)
class Listener:
    name: str
    port: int
    protocol: str
    allowed: dict[str, Any]  # spec.allowedRoutes
    hostname: str = ""
    tls_mode: str = ""  # spec.listeners[].tls.mode ("Terminate" when tls is given without a mode)
    certificate_refs: tuple[dict[str, Any], ...] = ()  # spec.listeners[].tls.certificateRefs

    @property
    def transport(self) -> str:
        return TRANSPORT.get(self.protocol, self.protocol)


def _tls_mode(li: dict[str, Any]) -> str:
    tls = li.get("tls")
    return str(tls.get("mode") or "Terminate") if isinstance(tls, dict) else ""


def _certificate_refs(li: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    tls = li.get("tls")
    refs = tls.get("certificateRefs") if isinstance(tls, dict) else None
    return tuple(r for r in refs or () if isinstance(r, dict))


def listeners_of(gateway: dict[str, Any]) -> list[Listener]:
    return [Listener(name=str(li.get("name") or ""), port=int(li.get("port") or 0),
                     protocol=str(li.get("protocol") or ""), allowed=li.get("allowedRoutes") or {},
                     hostname=str(li.get("hostname") or ""), tls_mode=_tls_mode(li),
                     certificate_refs=_certificate_refs(li))
            for li in (gateway.get("spec") or {}).get("listeners") or []]


def _conflicts(listeners: list[Listener]) -> dict[str, str]:
    """Listener name -> Conflicted reason: more than one listener on one port and transport."""
    by_port: dict[tuple[int, str], list[Listener]] = defaultdict(list)
    for li in listeners:
        by_port[(li.port, li.transport)].append(li)
    out: dict[str, str] = {}
    for group in by_port.values():
        # HTTP-family listeners may share a port when their hostnames differ.
        l4_or_mixed = any(li.protocol in L4_PROTOCOLS for li in group) or len({li.protocol for li in group}) > 1
        if len(group) > 1 and l4_or_mixed:
            out.update({li.name: "ProtocolConflict" for li in group})
        elif len(group) > 1:
            hosts = [li.hostname for li in group]
            out.update({li.name: "HostnameConflict" for li in group if hosts.count(li.hostname) > 1})
    return out


def _asked_kinds(li: Listener) -> list[str] | None:
    asked = li.allowed.get("kinds")
    if not asked:
        return None
    return [f"{k.get('group', GROUP)}/{k.get('kind', '')}" for k in asked]


def _route_kinds(li: Listener) -> tuple[bool, tuple[str, ...]]:
    """(every asked-for kind is supported, the supported kinds) for ``allowedRoutes.kinds``."""
    native = KINDS_BY_PROTOCOL.get(li.protocol, ())
    kinds = _asked_kinds(li)
    if kinds is None:
        return True, native
    ok = tuple(k for k in native if k in kinds)
    return len(ok) == len(kinds), ok


def kind_allowed(li: Listener, kind: str) -> bool:
    """May ``kind`` ("<group>/<Kind>") attach to this listener (its protocol and ``allowedRoutes.kinds``)?"""
    asked = _asked_kinds(li)
    return kind in KINDS_BY_PROTOCOL.get(li.protocol, ()) and (asked is None or kind in asked)


def _is_l4(li: Listener) -> bool:
    """A listener of the L4 VS: TCP, UDP, SCTP, and TLS (served as passthrough)."""
    return li.protocol in L4_PROTOCOLS or li.protocol == "TLS"


L7_PROTOCOLS = ("HTTP", "HTTPS")
# ResolvedRefs reasons of a listener's certificateRefs: such a listener still takes routes (they are
# not at fault); it serves while it has a certificate (docs/tls-secrets.md).
CERTIFICATE_REASONS = ("InvalidCertificateRef", "RefNotPermitted")


def _unserved(li: Listener, l7_gateway: bool) -> str:
    """Why albus cannot serve this listener ("" when it can)."""
    if li.protocol in L7_PROTOCOLS:
        if not l7_gateway:
            return (f"{li.protocol} listeners are served on Gateways without TCP/UDP/SCTP/TLS listeners; "
                    "use a second Gateway")
        if li.protocol == "HTTPS" and li.tls_mode == "Passthrough":
            return "HTTPS listeners terminate TLS (tls.mode Terminate); Passthrough is for TLS listeners"
        return ""
    if li.protocol == "TLS" and li.tls_mode != "Passthrough":
        return "TLS listeners are served in mode Passthrough only (Terminate is not built yet; HTTPS listeners are)"
    if not _is_l4(li):
        return f"protocol {li.protocol} is not served by albus yet; HTTP, HTTPS, TCP, UDP, SCTP and TLS listeners are"
    return ""


def is_l7(listeners: list[Listener]) -> bool:
    """An HTTP Gateway: HTTP/HTTPS listeners and no L4 one (the VS is an HTTP VS)."""
    return any(li.protocol in L7_PROTOCOLS for li in listeners) and not any(_is_l4(li) for li in listeners)


def judge(listeners: list[Listener], attached: dict[str, int],
          refs: dict[str, tuple[str, str]] | None = None) -> list[ListenerStatus]:
    """Each listener's status; ``refs``: listener name -> (ResolvedRefs reason or "", message) of its certificates."""
    refs = refs or {}
    conflicts = _conflicts(listeners)
    l7 = is_l7(listeners)
    out: list[ListenerStatus] = []
    for li in listeners:
        all_kinds, kinds = _route_kinds(li)
        why = _unserved(li, l7)
        if why:
            out.append(ListenerStatus(
                name=li.name, accepted=False, accepted_reason="UnsupportedProtocol", supported_kinds=(),
                resolved_refs=False, refs_reason="InvalidRouteKinds", message=why))
            continue
        conflicted = conflicts.get(li.name, "")
        cert_reason, cert_message = refs.get(li.name, ("", ""))
        refs_reason = "InvalidRouteKinds" if not all_kinds else (cert_reason or "ResolvedRefs")
        out.append(ListenerStatus(
            name=li.name, accepted=not conflicted, accepted_reason="PortUnavailable" if conflicted else "Accepted",
            conflicted_reason=conflicted, resolved_refs=refs_reason == "ResolvedRefs",
            refs_reason=refs_reason, supported_kinds=kinds,
            attached=attached.get(li.name, 0),
            message=f"another listener uses port {li.port}/{li.transport}" if conflicted else
            (cert_message if all_kinds else
             f"allowedRoutes.kinds: only {KINDS_BY_PROTOCOL.get(li.protocol, ())} attach to {li.protocol}")))
    return out


def usable(status: ListenerStatus) -> bool:
    return status.accepted and status.resolved_refs


def takes_routes(status: ListenerStatus) -> bool:
    """Routes (and Services) may attach: usable, or only its certificates are wrong."""
    return usable(status) or (status.accepted and status.refs_reason in CERTIFICATE_REASONS)


def _expression_holds(expr: dict[str, Any], labels: dict[str, str]) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False


def namespace_allowed(li: Listener, gateway_ns: str, ns: str, ns_labels: dict[str, str]) -> bool:
    """``allowedRoutes.namespaces``: Same (default), All, or Selector on the Namespace's labels."""
    spec = li.allowed.get("namespaces") or {}
    frm = spec.get("from") or "Same"
    if frm == "All":
        return True
    if frm == "Selector":
        sel = spec.get("selector") or {}
        return (all(ns_labels.get(k) == v for k, v in (sel.get("matchLabels") or {}).items())
                and all(_expression_holds(e, ns_labels) for e in sel.get("matchExpressions") or []))
    return ns == gateway_ns
