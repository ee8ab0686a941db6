"""Tracing: one OpenTelemetry trace per Kubernetes change, carried across the bus.

Context travels in NATS message headers as W3C ``traceparent``/``tracestate``
plus ``baggage`` (the cluster and the object), through OpenTelemetry's
propagator API: :meth:`services.common.bus.Bus.publish` injects the current
context, :meth:`services.common.bus.Delivery.span_context` extracts it.

Exporters (:func:`setup`): the local span store on the bus (stream
``ALBUS_TRACES``, read by ``albus trace``) unless turned off, plus OTLP
(gRPC or HTTP/protobuf) when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``..._TRACES_ENDPOINT``) or ``albus.tracing.otlpEndpoint`` is set; the OTLP
exporters read the other standard ``OTEL_EXPORTER_OTLP_*`` variables
themselves. ``OTEL_SDK_DISABLED=true`` or ``albus.tracing.enabled: false``
turns tracing off (no spans, no headers).

Spans never carry credentials: attributes are set only by albus code, from
names, routes and statuses, never from request bodies or headers.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.common.config import Config
from services.common.contracts import KubeObject

TRACER_NAME = "albus"
_TRACE_CONTEXT = TraceContextTextMapPropagator()
_TRACEPARENT = "traceparent"
PROPAGATOR = CompositePropagator([_TRACE_CONTEXT, W3CBaggagePropagator()])
BAGGAGE_CLUSTER = "albus.cluster"
BAGGAGE_OBJECT = "albus.object"
# The watcher's root span of a change carries this attribute: the span store
# indexes such spans by object, which is how ``albus trace`` finds them.
CHANGE_ATTR = "albus.change"
# The virtual service the current controller calls are made for.
_current_vs: contextvars.ContextVar[str] = contextvars.ContextVar("albus_vs", default="")


_Call = TypeVar("_Call", bound=Callable[..., Awaitable[Any]])


# (provider, its tracer): looking the tracer up per span was a tenth of the translator's busy time
# through the bus (the SDK builds and compares an instrumentation scope on every call).
_tracer_of: tuple[trace.TracerProvider, trace.Tracer] | None = None


def tracer() -> trace.Tracer:
    """albus's tracer from the current provider (looked up again only when the provider changes)."""
    global _tracer_of
    provider = trace.get_tracer_provider()
    cached = _tracer_of
    if cached is None or cached[0] is not provider:
        cached = _tracer_of = (provider, provider.get_tracer(TRACER_NAME))
    return cached[1]


# -- propagation -------------------------------------------------------------------


def inject(headers: dict[str, str], context: Context | None = None) -> dict[str, str]:
    """Write the (current) trace context and baggage into NATS headers; returns ``headers``."""
    PROPAGATOR.inject(headers, context=context)
    return headers


def extract(headers: Mapping[str, str] | None) -> Context:
    return PROPAGATOR.extract(dict(headers or {}))


def span_context_of(headers: Mapping[str, str] | None) -> trace.SpanContext | None:
    """The sender's span context, or None when the message carries none."""
    # Only ``traceparent`` makes a span context: a message without it costs no propagator call.
    if not headers or _TRACEPARENT not in headers:
        return None
    sc = trace.get_current_span(_TRACE_CONTEXT.extract(headers)).get_span_context()
    return sc if sc.is_valid else None


def trace_id_hex(span: Span | None = None) -> str:
    """The 32-hex trace id of ``span`` (default: the current one), '' when not recording."""
    sc = (span or trace.get_current_span()).get_span_context()
    return trace.format_trace_id(sc.trace_id) if sc.is_valid else ""


# -- spans -------------------------------------------------------------------------


def change_span(msg: KubeObject) -> contextlib.AbstractContextManager[Span]:
    """The watcher's root span of a change: a new trace, the object as attributes and baggage."""
    ctx = baggage.set_baggage(BAGGAGE_CLUSTER, msg.cluster, context=Context())
    ctx = baggage.set_baggage(BAGGAGE_OBJECT, f"{msg.kind}/{msg.namespace}/{msg.name}", context=ctx)
    return _current_in(
        ctx, f"k8s change {msg.kind}", kind=SpanKind.PRODUCER,
        attributes={
            CHANGE_ATTR: True, "k8s.cluster.name": msg.cluster, "k8s.object.kind": msg.kind,
            "k8s.namespace.name": msg.namespace, "k8s.object.name": msg.name, "k8s.object.uid": msg.uid,
            "k8s.object.resource_version": msg.resource_version, "albus.deleted": msg.deleted,
        },
    )


def handling(
    name: str,
    headers: Mapping[str, str] | None,
    attributes: Mapping[str, Any] | None = None,
    *,
    links: Sequence[trace.SpanContext] = (),
    redelivered: bool = False,
    enabled: bool = True,
) -> contextlib.AbstractContextManager[Span]:
    """A span for work caused by one bus message: child of the sender's span (its baggage kept).

    Not ``enabled``: no span at all, and nothing under it is traced either.
    """
    if not enabled:
        return contextlib.nullcontext(trace.INVALID_SPAN)
    sender = span_context_of(headers)
    return caused_by(name, [sc for sc in (sender, *links) if sc is not None], attributes,
                     redelivered=redelivered, base=extract(headers))


@contextlib.contextmanager
def caused_by(
    name: str,
    causes: Sequence[trace.SpanContext],
    attributes: Mapping[str, Any] | None = None,
    *,
    redelivered: bool = False,
    base: Context | None = None,
    about: tuple[str, str] | None = None,
) -> Iterator[Span]:
    """A span child of the earliest cause, linked to every cause when there are several.

    With no cause it starts a trace of its own. ``about`` (cluster, object)
    becomes the baggage passed on; ``base`` supplies it otherwise. A
    redelivered message is an event on the span, never a new trace.
    """
    ctx = base if base is not None else Context()
    if about is not None:
        ctx = baggage.set_baggage(BAGGAGE_CLUSTER, about[0], context=ctx)
        ctx = baggage.set_baggage(BAGGAGE_OBJECT, about[1], context=ctx)
    ctx = trace.set_span_in_context(trace.NonRecordingSpan(causes[0]), ctx) if causes else \
        trace.set_span_in_context(trace.INVALID_SPAN, ctx)
    with _current_in(
        ctx, name, kind=SpanKind.CONSUMER, attributes=dict(attributes or {}),
        links=[Link(sc) for sc in _unique(causes)] if len(causes) > 1 else [],
    ) as span:
        if redelivered:
            span.add_event("albus.redelivered")
        yield span


def if_caused(
    name: str,
    causes: Sequence[trace.SpanContext],
    attributes: Mapping[str, Any] | None = None,
    *,
    about: tuple[str, str] | None = None,
) -> contextlib.AbstractContextManager[Span]:
    """:func:`caused_by` when some traced change caused the work; no span at all otherwise.

    Work no change asked for (a tree found stale after a restart, objects
    published untraced) starts no trace of its own, as the syncer's periodic
    resync and garbage collection do not: a span and its export per message
    was most of the translator's cost for such messages.
    """
    if not causes:
        return contextlib.nullcontext(trace.INVALID_SPAN)
    return caused_by(name, causes, attributes, about=about)


@contextlib.contextmanager
def _current_in(ctx: Context, name: str, **kwargs: Any) -> Iterator[Span]:
    """A span made current *within* ``ctx``: its parent and its baggage both come from there.

    (``start_as_current_span(context=...)`` takes only the parent from it; the
    baggage would not travel on.)
    """
    # What start_as_current_span does, in one context attach and no wrapper layers (their cost showed
    # per tree through the bus): the span ends on exit, an exception is recorded and sets ERROR.
    span = tracer().start_span(name, context=ctx, **kwargs)
    token = otel_context.attach(trace.set_span_in_context(span, ctx))
    try:
        yield span
    except Exception as exc:
        if span.is_recording():
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        otel_context.detach(token)
        span.end()


def _unique(links: Sequence[trace.SpanContext]) -> list[trace.SpanContext]:
    seen: set[tuple[int, int]] = set()
    out = []
    for sc in links:
        if sc.is_valid and (sc.trace_id, sc.span_id) not in seen:
            seen.add((sc.trace_id, sc.span_id))
            out.append(sc)
    return out


@contextlib.contextmanager
def for_vs(vs_name: str) -> Iterator[None]:
    """Controller calls made inside carry ``avi.vs_name``."""
    token = _current_vs.set(vs_name)
    try:
        yield
    finally:
        _current_vs.reset(token)


def route_template(path: str) -> tuple[str, str]:
    """``pool/pool-1f2e...`` -> (``/api/pool/{uuid}``, ``pool``): object ids never in span names."""
    parts = [p for p in path.split("?", 1)[0].strip("/").split("/") if p]
    obj_type = parts[0] if parts else ""
    templ = "/api/" + "/".join([obj_type, *("{uuid}" if i == 0 else p for i, p in enumerate(parts[1:]))])
    return templ.rstrip("/"), obj_type


def traced_call(call: _Call) -> _Call:
    """Decorates the controller client's ``call(method, path, *, tenant, ...)``: one CLIENT span per
    logical call with HTTP semantic-convention attributes; retries are events on it.

    Only the method, the route template, the tenant, the object type, the VS
    name and the status are recorded: never bodies, parameters or headers
    (where passwords, cookies and CSRF tokens live).
    """

    @functools.wraps(call)
    async def wrapper(self: Any, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if not trace.get_current_span().get_span_context().is_valid:
            # Not on behalf of a change (cache refresh, periodic GC): no trace of its own.
            return await call(self, method, path, *args, **kwargs)
        route, obj_type = route_template(path)
        attrs: dict[str, Any] = {
            "http.request.method": method.upper(), "url.template": route,
            "avi.object_type": obj_type, "avi.tenant": str(kwargs.get("tenant", "")),
        }
        host, port = _server(getattr(self, "server", ""))
        if host:
            attrs["server.address"] = host
        if port:
            attrs["server.port"] = port
        if vs := _current_vs.get():
            attrs["avi.vs_name"] = vs
        with tracer().start_as_current_span(f"{method.upper()} {route}", kind=SpanKind.CLIENT,
                                            attributes=attrs, record_exception=False,
                                            set_status_on_exception=False) as span:
            try:
                reply = await call(self, method, path, *args, **kwargs)
            except Exception as exc:
                record_status(span, getattr(exc, "status", None))
                span.set_status(Status(StatusCode.ERROR))
                span.set_attribute("error.type", type(exc).__name__)
                raise
            record_status(span, getattr(reply, "status", None))
            return reply

    return cast(_Call, wrapper)


def _server(controller: str) -> tuple[str, int | None]:
    if not controller:
        return "", None
    parts = urlsplit(controller if "//" in controller else f"//{controller}")
    return parts.hostname or "", parts.port


TRACE_ANNOTATION = "albus.io/trace-id"
EVENT_NOTE_MAX = 1024  # the API server refuses longer notes


def stamp_event(body: dict[str, Any]) -> None:
    """Put the current trace id on an ``events.k8s.io/v1`` Event: annotation and end of the note.

    ``kubectl describe`` shows the note, so the id is one copy away from
    ``albus trace --trace-id``.
    """
    tid = trace_id_hex()
    if not tid:
        return
    meta = body.setdefault("metadata", {})
    meta.setdefault("annotations", {})[TRACE_ANNOTATION] = tid
    suffix = f" (trace {tid})"
    body["note"] = str(body.get("note", ""))[: EVENT_NOTE_MAX - len(suffix)] + suffix


def record_status(span: Span, status: int | None) -> None:
    if status is None:
        return
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        span.set_status(Status(StatusCode.ERROR))
        span.set_attribute("error.type", str(status))


def record_error(span: Span, message: str) -> None:
    span.set_status(Status(StatusCode.ERROR, message[:200]))


def event(name: str, **attributes: Any) -> None:
    """An event on the current span (a retry, a redelivery): no new span, no new trace."""
    trace.get_current_span().add_event(name, {k: v for k, v in attributes.items() if v is not None})


# -- setup -------------------------------------------------------------------------


@dataclass
class Tracing:
    """What :func:`setup` started; :meth:`shutdown` flushes every exporter."""

    provider: TracerProvider | None = None
    exporters: list[str] = field(default_factory=list)

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def otlp_exporter(cfg: Config, env: Mapping[str, str]) -> SpanExporter | None:
    """OTLP over gRPC or HTTP/protobuf (the spec's default), per ``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL``."""
    t = cfg.albus.tracing
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") \
        or t.otlpEndpoint
    if not endpoint or "otlp" not in env.get("OTEL_TRACES_EXPORTER", "otlp"):
        return None
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or t.otlpProtocol)
    from_env = bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        # From the environment the exporter reads the endpoint (and TLS) itself.
        return Grpc() if from_env else Grpc(endpoint=endpoint, insecure=endpoint.startswith("http://"))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    if from_env:
        return Http()
    return Http(endpoint=endpoint.rstrip("/") + "/v1/traces")


def setup(cfg: Config, service: str, env: Mapping[str, str] | None = None) -> Tracing:
    """Install the tracer provider for ``service`` (``albus-watcher``, ...) from config and OTEL_* env."""
    env = os.environ if env is None else env
    t = cfg.albus.tracing
    if not t.enabled or _truthy(env.get("OTEL_SDK_DISABLED")):
        return Tracing()
    # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME over these.
    resource = Resource.create({SERVICE_NAME: service, "k8s.cluster.name": cfg.cluster})
    provider = TracerProvider(resource=resource)
    out = Tracing(provider=provider)
    exporters: list[tuple[str, SpanExporter]] = []
    if otlp := otlp_exporter(cfg, env):
        exporters.append(("otlp", otlp))
    if t.localStore and cfg.albus.natsUrl:
        from services.common.span_store import BusSpanExporter

        exporters.append(("bus", BusSpanExporter(cfg.albus.natsUrl, cfg.cluster, service)))
    for name, exporter in exporters:
        # The store is read by people waiting on `albus trace`: flush it sooner
        # than the SDK's 5 s default unless OTEL_BSP_SCHEDULE_DELAY says otherwise.
        delay = None if env.get("OTEL_BSP_SCHEDULE_DELAY") or name != "bus" else 1000
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=delay))
        out.exporters.append(name)
    trace.set_tracer_provider(provider)
    return out


# -- logs --------------------------------------------------------------------------


class _TraceIds(logging.Filter):
    """Puts the current trace and span ids on every record (empty outside a span)."""

    def filter(self, record: logging.LogRecord) -> bool:
        sc = trace.get_current_span().get_span_context()
        tid = trace.format_trace_id(sc.trace_id) if sc.is_valid else ""
        sid = trace.format_span_id(sc.span_id) if sc.is_valid else ""
        record.__dict__.update(trace_id=tid, span_id=sid,
                               trace_suffix=f" [trace={tid} span={sid}]" if tid else "")
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if tid := record.__dict__.get("trace_id"):
            doc["trace_id"] = tid
            doc["span_id"] = record.__dict__.get("span_id", "")
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(trace_suffix)s"


def setup_logging(cfg: Config, service: str) -> None:
    """Root logging for a service: text or JSON (``albus.logFormat``), both with trace/span ids."""
    import time

    handler = logging.StreamHandler()
    handler.addFilter(_TraceIds())
    if cfg.albus.logFormat == "json":
        fmt: logging.Formatter = JsonFormatter(service)
        fmt.converter = time.gmtime
    else:
        fmt = logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(fmt)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(cfg.AKOSettings.logLevel.upper())
