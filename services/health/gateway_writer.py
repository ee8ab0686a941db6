"""Health's Gateway API loop: GatewayClass and Gateway status from the reports and outcomes on the bus.

The Service loop's machinery (replay first, dirty set, back-off, conflict
retries; :class:`HealthReconciler`) with Gateway API objects in the
Service's place. Services joined to a Gateway need nothing here: the
Gateway's virtual service names them among its sources, so the Service
loop already gives them the VIP and their condition.
"""

from __future__ import annotations

from typing import Any

from services.common.bus import Bus, Delivery
from services.common.config import Config
from services.common.contracts import ApplyOutcome, GatewayStatus, SourceReport, decode
from services.common.kube import get_json_or_none, request_json, rfc3339
from services.health import gateway_status as gs
from services.health.reconciler import HealthReconciler
from services.health.service_status import EventSpec, Plan

API = "/apis/gateway.networking.k8s.io/v1"
API_VERSION = "gateway.networking.k8s.io/v1"
_TIMEOUT = 30




class GatewayReconciler(HealthReconciler):
    """GatewayClasses (namespace ``""``) and Gateways."""

    FOLLOWS_TREES = False  # their status comes from reports and outcomes only
    WATCHES_SERVICES = False  # its objects are read with a GET each
    KINDS: tuple[str, ...] = gs.GATEWAY_KINDS

    def __init__(self, api: Any, bus: Bus, cluster: str, identity: str, cfg: Config | None = None) -> None:
        super().__init__(api, bus, cluster, identity, cfg=cfg)
        self.api = api
        self.gateways = gs.GatewayState(self.KINDS)
        self.status_writes = 0

    def _kind(self, key: gs.Key) -> str:
        return "GatewayClass" if not key[0] else "Gateway"

    def _path(self, key: gs.Key) -> str:
        ns, name = key
        return f"{API}/gatewayclasses/{name}" if not ns else f"{API}/namespaces/{ns}/gateways/{name}"

    def _want(self, key: gs.Key, obj: dict[str, Any], st: GatewayStatus, now: str) -> dict[str, Any]:
        if not key[0]:
            return gs.class_status(obj, st, now)
        return gs.gateway_status(obj, st, self.gateways.outcome(key), now)

    async def _on_outcome(self, d: Delivery) -> None:
        if self._may_concern(d, "Gateway", self.gateways.outcomes):
            self._mark(self.gateways.set_outcome(d.subject, decode(d.data, ApplyOutcome)), d)

    async def _on_report(self, d: Delivery) -> None:
        self._mark(self.gateways.set_report(decode(d.data, SourceReport)), d)

    def _describe(self, key: gs.Key) -> str:
        return f"{self._kind(key)} {key[0]}/{key[1]}" if key[0] else f"{self._kind(key)} {key[1]}"

    def _read(self, key: gs.Key) -> dict[str, Any] | None:
        if key not in self.gateways.statuses:
            return None  # not albus's (or gone): never touched
        return get_json_or_none(self.api, self._path(key), timeout=_TIMEOUT)

    def _plan(self, key: gs.Key, obj: dict[str, Any]) -> Plan:
        st = self.gateways.statuses.get(key)
        if st is None:
            return Plan()
        return gs.plan(obj, self._want(key, obj, st, rfc3339()), self._kind(key))

    def _write(self, key: gs.Key, patch: dict[str, Any]) -> None:
        request_json(self.api, "PATCH", self._path(key) + "/status", patch,
                     content_type="application/merge-patch+json", timeout=_TIMEOUT)
        with self.writer.lock:  # (concurrent drains: see ServiceWriter.lock)
            self.status_writes += 1

    def _announce(self, obj: dict[str, Any], ev: EventSpec) -> None:
        self.writer.event(obj, ev, api_version=API_VERSION, kind=str(obj.get("kind") or "Gateway"))


class RouteReconciler(GatewayReconciler):
    """Every route kind's ``status.parents`` (its own loop: a route and a Gateway may share a namespace and name).

    Keys are ``(namespace, "<Kind>/<name>")`` (:func:`gateway_status.key_of`).
    """

    KINDS = gs.ROUTE_KINDS
    FOLLOWS_OUTCOMES = False  # a route's status depends on translation only

    def _kind(self, key: gs.Key) -> str:
        return gs.route_of(key)[0]

    def _describe(self, key: gs.Key) -> str:
        kind, ns, name = gs.route_of(key)
        return f"{kind} {ns}/{name}"

    def _path(self, key: gs.Key) -> str:
        kind, ns, name = gs.route_of(key)
        version, plural = gs.ROUTES[kind]
        return f"/apis/{gs.GROUP}/{version}/namespaces/{ns}/{plural}/{name}"

    def _announce(self, obj: dict[str, Any], ev: EventSpec) -> None:
        kind = str(obj.get("kind") or "HTTPRoute")
        self.writer.event(obj, ev, api_version=f"{gs.GROUP}/{gs.ROUTES.get(kind, ('v1', ''))[0]}", kind=kind)

    def _want(self, key: gs.Key, obj: dict[str, Any], st: GatewayStatus, now: str) -> dict[str, Any]:
        return gs.route_status(obj, st, now)
