"""The Kubernetes calls health makes: read a Service, patch its status, record an Event.

Blocking (the official client); the reconciler runs them in threads. Events go
through ``events.k8s.io/v1`` (stored as core Events, so ``kubectl describe``
shows them), reported by controller ``albus.io/health``, rate-limited and
folded as client-go's recorder does (``event_recorder``): a repeat bumps the
existing Event's ``series.count``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kubernetes.client.exceptions import ApiException

from services.common import tracing
from services.common.kube import get_json_or_none, micro_time, request_json
from services.health.event_recorder import EventCorrelator
from services.health.service_status import EventSpec

REPORTING_CONTROLLER = "albus.io/health"
_NOTE_MAX = 1024  # the API server refuses longer notes
_TIMEOUT = 30


class ServiceWriter:
    def __init__(self, api: Any, identity: str, *, normal_events: bool = True) -> None:
        self.api = api
        self.identity = identity[:128]
        self.normal_events = normal_events  # AKOSettings.enableEvents: Warnings go out either way
        self.status_writes = 0
        self.events_written = 0
        self.events_bumped = 0
        self.correlator = EventCorrelator()
        # Health's loops call this writer from several threads at once (their drains are concurrent):
        # the correlator's memory and the counters change under this lock.
        self.lock = threading.Lock()

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return get_json_or_none(self.api, f"/api/v1/namespaces/{namespace}/services/{name}", timeout=_TIMEOUT)

    def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return get_json_or_none(self.api, f"/api/v1/namespaces/{namespace}/pods/{name}", timeout=_TIMEOUT)

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        ns = request_json(self.api, "GET", f"/api/v1/namespaces/{namespace}", timeout=_TIMEOUT)
        return dict((ns.get("metadata") or {}).get("labels") or {})

    def patch_pod_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """Strategic merge: the pod's conditions merge by type, the kubelet's stay."""
        request_json(
            self.api, "PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}/status", patch,
            content_type="application/strategic-merge-patch+json", timeout=_TIMEOUT,
        )
        with self.lock:
            self.status_writes += 1

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the status subresource, answered with the Service as written; raises ApiException 409
        when the Service moved on."""
        written = request_json(
            self.api, "PATCH", f"/api/v1/namespaces/{namespace}/services/{name}/status", patch,
            content_type="application/merge-patch+json", timeout=_TIMEOUT,
        )
        with self.lock:
            self.status_writes += 1
        return written

    def event(self, service: dict[str, Any], ev: EventSpec, *, api_version: str = "v1", kind: str = "Service") -> None:
        """An Event about ``service`` (or any object of ``kind``; cluster-scoped ones get theirs in ``default``)."""
        if ev.type == "Normal" and not self.normal_events:
            return
        meta = service.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        obj = str(meta.get("uid") or f"{kind}/{namespace}/{meta['name']}")
        with self.lock:
            d = self.correlator.decide(obj, ev.type, ev.reason, ev.note[:_NOTE_MAX], time.monotonic())
        if d.action == "drop":
            return
        if d.action == "bump":
            try:
                request_json(self.api, "PATCH", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events/{d.name}",
                             {"series": {"count": d.count, "lastObservedTime": micro_time()}},
                             content_type="application/merge-patch+json", timeout=_TIMEOUT)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                with self.lock:
                    self.correlator.forget(obj, ev.type, ev.reason, d.note)  # expired: write a new one
            else:
                with self.lock:
                    self.correlator.written(obj, ev.type, ev.reason, d.note, d.name, d.count)
                    self.events_bumped += 1
                return
        ev_name = f"{meta['name']}.{time.time_ns():x}"
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            # client-go's naming: the object's name and the time in hex.
            "metadata": {"name": ev_name, "namespace": namespace},
            "eventTime": micro_time(),
            "reportingController": REPORTING_CONTROLLER,
            "reportingInstance": self.identity,
            "action": ev.action,
            "reason": ev.reason,
            "type": ev.type,
            "note": d.note[:_NOTE_MAX],
            "regarding": {k: v for k, v in {
                "apiVersion": api_version, "kind": kind, "namespace": meta.get("namespace"), "name": meta["name"],
                "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion"),
            }.items() if v},
        }
        tracing.stamp_event(body)
        request_json(
            self.api, "POST", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events", body,
            timeout=_TIMEOUT,
        )
        with self.lock:
            self.correlator.written(obj, ev.type, ev.reason, d.note, ev_name, 1)
            self.events_written += 1
