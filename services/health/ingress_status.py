"""Health's Ingress loop: ``status.loadBalancer.ingress`` and Warning Events, from outcomes and reports.

The Service loop's machinery (replay first, dirty set, back-off, conflict
retries; :class:`HealthReconciler`) with Ingresses in the Service's place.
An Ingress's VIPs are those of the virtual services that name it among their
sources (its shard parents, or its hosts' dedicated VSes): one
``{ip: <vip>}`` entry per address. An Ingress has no conditions in its
status, so each problem translation reports on it (a missing Service, a bad
TLS Secret, a duplicate path, an AviInfraSetting not accepted), and each
failed apply of a virtual service serving it (``SyncFailed``, the
controller's error), is a Warning Event, announced when this process first
sees it; the Event correlator folds repeats. albus writes only Ingresses that translation or an outcome
names, so other controllers' Ingresses are never touched.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubernetes.client.exceptions import ApiException
from opentelemetry.trace import Span

from services.common.bus import Bus, Delivery
from services.common.config import Config
from services.common.contracts import ApplyOutcome, ObjRef, SourceReport, decode
from services.common.kube import get_json_or_none, request_json
from services.health.reconciler import HealthReconciler
from services.health.service_status import EventSpec, Plan

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)
KIND = "Ingress"
API_VERSION = "networking.k8s.io/v1"
_TIMEOUT = 30
_CONFLICT_RETRIES = 5
SYNC_FAILED = "SyncFailed"  # the reason a Service's Warning carries for a failed apply, too


def _keys(refs: tuple[ObjRef, ...]) -> set[Key]:
    return {(r.namespace, r.name) for r in refs if r.kind == KIND}


class IngressState:
    """The newest reports on Ingresses and the outcomes of the virtual services that serve them (pure)."""

    def __init__(self) -> None:
        self.reports: dict[Key, SourceReport] = {}
        self.outcomes: dict[str, ApplyOutcome] = {}  # by subject, only those with an Ingress source
        self._by_ingress: dict[Key, set[str]] = {}

    def set_report(self, report: SourceReport) -> set[Key]:
        if report.source.kind != KIND:
            return set()
        key = (report.source.namespace, report.source.name)
        self.reports[key] = report
        return {key}

    def set_outcome(self, subject: str, outcome: ApplyOutcome) -> set[Key]:
        before = self.outcomes.pop(subject, None)
        old = _keys(before.sources) if before else set()
        for k in old:
            self._by_ingress.get(k, set()).discard(subject)
        now = _keys(outcome.sources)
        if now:
            self.outcomes[subject] = outcome
            for k in now:
                self._by_ingress.setdefault(k, set()).add(subject)
        return old | now

    def known(self, key: Key) -> bool:
        return key in self.reports or bool(self._by_ingress.get(key))

    def vips(self, key: Key) -> list[str]:
        live = sorted((self.outcomes[s] for s in self._by_ingress.get(key, ()) if not self.outcomes[s].deleted),
                      key=lambda o: o.vs_name)
        out: list[str] = []
        for o in live:
            out += [v for v in o.vips if v not in out]
        return out

    def problems(self, key: Key) -> list[tuple[str, str]]:
        report = self.reports.get(key)
        return [(p.reason, p.message) for p in (report.problems if report else ())]

    def failures(self, key: Key) -> list[tuple[str, str]]:
        """``SyncFailed`` for each live virtual service serving the Ingress whose last apply failed."""
        failed = sorted((o for s in self._by_ingress.get(key, ()) if not (o := self.outcomes[s]).deleted and not o.ok),
                        key=lambda o: o.vs_name)
        return [(SYNC_FAILED, f"virtualservice {o.vs_name}: {o.error or 'apply failed'}") for o in failed]

    def warnings(self, key: Key) -> list[tuple[str, str]]:
        """What the Ingress's Warning Events say: translation problems, then failed applies."""
        return self.problems(key) + self.failures(key)


def plan(ing: dict[str, Any], vips: list[str], problems: list[tuple[str, str]], announced: set[tuple[str, str]]
         ) -> Plan:
    """The status patch (None when ``status.loadBalancer.ingress`` already lists ``vips``) and new Warnings."""
    meta = ing.get("metadata") or {}
    want = [{"ip": v} for v in vips]
    have = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    patch = None if have == want else {"metadata": {"resourceVersion": meta.get("resourceVersion")},
                                       "status": {"loadBalancer": {"ingress": want}}}
    ref = f"Ingress {meta.get('namespace')}/{meta.get('name')}"
    events = [EventSpec("Warning", reason, "Apply" if reason == SYNC_FAILED else "Translate", f"{ref}: {message}")
              for reason, message in problems if (reason, message) not in announced]
    return Plan(patch, events)


class IngressReconciler(HealthReconciler):
    FOLLOWS_TREES = False  # their status comes from reports and outcomes only
    WATCHES_SERVICES = False  # its objects are read with a GET each

    def __init__(self, api: Any, bus: Bus, cluster: str, identity: str, cfg: Config | None = None) -> None:
        super().__init__(api, bus, cluster, identity, cfg=cfg)
        self.api = api
        self.ingresses = IngressState()
        self._announced: dict[Key, set[tuple[str, str]]] = {}
        self.status_writes = 0

    async def _on_outcome(self, d: Delivery) -> None:
        if self._may_concern(d, KIND, self.ingresses.outcomes):
            self._mark(self.ingresses.set_outcome(d.subject, decode(d.data, ApplyOutcome)), d)

    async def _on_report(self, d: Delivery) -> None:
        self._mark(self.ingresses.set_report(decode(d.data, SourceReport)), d)

    def _describe(self, key: Key) -> str:
        return f"Ingress {key[0]}/{key[1]}"

    def _path(self, key: Key) -> str:
        return f"/apis/networking.k8s.io/v1/namespaces/{key[0]}/ingresses/{key[1]}"

    def _read(self, key: Key) -> dict[str, Any] | None:
        if not self.ingresses.known(key):
            return None
        return get_json_or_none(self.api, self._path(key), timeout=_TIMEOUT)

    def _plan(self, key: Key, obj: dict[str, Any]) -> Plan:
        return plan(obj, self.ingresses.vips(key), self.ingresses.warnings(key), self._announced.get(key, set()))

    def _write(self, key: Key, patch: dict[str, Any]) -> None:
        request_json(self.api, "PATCH", self._path(key) + "/status", patch,
                     content_type="application/merge-patch+json", timeout=_TIMEOUT)
        with self.writer.lock:  # (concurrent drains: see ServiceWriter.lock)
            self.status_writes += 1

    def _announce(self, obj: dict[str, Any], ev: EventSpec) -> None:
        self.writer.event(obj, ev, api_version=API_VERSION, kind=KIND)

    async def _reconcile(self, key: Key, span: Span) -> None:
        """As the Service loop's, but Events go out even when the status needs no write (no conditions here)."""
        for _ in range(_CONFLICT_RETRIES):
            ing = await asyncio.to_thread(self._read, key)
            if ing is None:
                self._announced.pop(key, None)
                return
            p = self._plan(key, ing)
            if p.patch is not None:
                try:
                    await asyncio.to_thread(self._write, key, p.patch)
                except ApiException as exc:
                    if exc.status == 409:
                        span.add_event("albus.conflict")
                        continue
                    raise
                span.set_attribute("albus.status_written", True)
            for ev in p.events:
                span.add_event("albus.k8s_event", {"reason": ev.reason})
                try:
                    await asyncio.to_thread(self._announce, ing, ev)
                except Exception as exc:
                    log.warning("%s: event %s not recorded: %s", self._describe(key), ev.reason, exc)
            # Remember only what is still reported: a problem that goes and comes back is announced again.
            self._announced[key] = set(self.ingresses.warnings(key))
            return
        raise RuntimeError(f"status of Ingress {key[0]}/{key[1]} kept changing ({_CONFLICT_RETRIES} conflicts)")

