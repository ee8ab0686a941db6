"""The local span store: finished spans on the bus, in the bounded stream ``ALBUS_TRACES``.

The default exporter when no tracing backend is configured, read by
``albus trace``. Spans go to ``trace.span.<cluster>.<trace id>`` (one
message per trace per export batch); the watcher's root span of each change
also goes to ``trace.obj.<cluster>.<kind>.<ns>.<name>``, the index by object.

The OpenTelemetry SDK calls :meth:`BusSpanExporter.export` from its own
thread, so the exporter keeps its own event loop and NATS connection in a
thread of its own: a service's loop never waits on its telemetry.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import nats
from nats.aio.client import Client as NATS
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from services.common import subjects
from services.common.contracts import ChangeTraced, Contract, ObjRef, SpanBatch, SpanEvent, SpanRecord, encode

log = logging.getLogger(__name__)

EXPORT_TIMEOUT_SECONDS = 10.0
_SCALARS = (str, bool, int, float)


def _attrs(raw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in dict(raw or {}).items():
        out[k] = v if isinstance(v, _SCALARS) else [x for x in v if isinstance(x, _SCALARS)]
    return out


def record_of(span: ReadableSpan, service: str) -> SpanRecord:
    sc = span.context
    assert sc is not None
    return SpanRecord(
        trace_id=trace.format_trace_id(sc.trace_id),
        span_id=trace.format_span_id(sc.span_id),
        parent_span_id=trace.format_span_id(span.parent.span_id) if span.parent else "",
        name=span.name,
        service=service,
        kind=span.kind.name,
        start_ns=span.start_time or 0,
        end_ns=span.end_time or 0,
        error=span.status.status_code == trace.StatusCode.ERROR,
        attributes=_attrs(span.attributes),
        events=tuple(SpanEvent(name=e.name, time_ns=e.timestamp, attributes=_attrs(e.attributes))
                     for e in span.events),
        links=tuple((trace.format_trace_id(lk.context.trace_id), trace.format_span_id(lk.context.span_id))
                    for lk in span.links),
    )


def change_of(rec: SpanRecord, cluster: str) -> ChangeTraced | None:
    """The index entry of a watcher change span, None for any other span."""
    a = rec.attributes
    if not a.get("albus.change"):
        return None
    ref = ObjRef(kind=str(a.get("k8s.object.kind", "")), namespace=str(a.get("k8s.namespace.name", "")),
                 name=str(a.get("k8s.object.name", "")))
    return ChangeTraced(
        cluster=cluster, object=ref, uid=str(a.get("k8s.object.uid", "")),
        resource_version=str(a.get("k8s.object.resource_version", "")),
        deleted=bool(a.get("albus.deleted", False)), trace_id=rec.trace_id, start_ns=rec.start_ns,
    )


def messages_of(spans: Sequence[ReadableSpan], cluster: str, service: str) -> list[tuple[str, Contract]]:
    """The store's messages for one export batch: spans by trace, then index entries."""
    by_trace: dict[str, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        if span.context is not None:
            rec = record_of(span, service)
            by_trace[rec.trace_id].append(rec)
    out: list[tuple[str, Contract]] = [
        (subjects.trace_spans(cluster, tid), SpanBatch(spans=tuple(recs))) for tid, recs in by_trace.items()
    ]
    for recs in by_trace.values():
        for rec in recs:
            if (ch := change_of(rec, cluster)) is not None and ch.object.name:
                ref = ch.object
                out.append((subjects.trace_index(cluster, ref.kind, ref.namespace, ref.name), ch))
    return out


class BusSpanExporter(SpanExporter):
    def __init__(self, nats_url: str, cluster: str, service: str) -> None:
        self.nats_url = nats_url
        self.cluster = cluster
        self.service = service
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="span-store", daemon=True)
        self._thread.start()
        self._nc: NATS | None = None
        self._failed = 0

    async def _send(self, msgs: list[tuple[str, Contract]]) -> None:
        if self._nc is None or self._nc.is_closed:
            self._nc = await nats.connect(servers=self.nats_url.split(","), name=f"albus-spans-{self.service}",
                                          max_reconnect_attempts=-1, reconnect_time_wait=0.5)
        js = self._nc.jetstream()
        # All in flight at once: one round trip per batch, not one per trace.
        await asyncio.gather(*(js.publish(subject, encode(msg)) for subject, msg in msgs))

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        msgs = messages_of(spans, self.cluster, self.service)
        try:
            asyncio.run_coroutine_threadsafe(self._send(msgs), self._loop).result(EXPORT_TIMEOUT_SECONDS)
        except Exception as exc:
            # Telemetry must never hurt the service: count, say so once in a while, go on.
            self._failed += 1
            if self._failed in (1, 10, 100) or self._failed % 1000 == 0:
                log.warning("span store: %d export(s) failed, last: %s", self._failed, type(exc).__name__)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        async def _close() -> None:
            if self._nc is not None and not self._nc.is_closed:
                await self._nc.drain()

        try:
            asyncio.run_coroutine_threadsafe(_close(), self._loop).result(EXPORT_TIMEOUT_SECONDS)
        except Exception as exc:
            log.debug("span store: closing: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(EXPORT_TIMEOUT_SECONDS)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
