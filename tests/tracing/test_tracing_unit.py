"""Tracing pieces on their own: propagation over a real nats-server, causes, routes, Events, timelines, logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time

import pytest
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import TracerProvider

from albus.broker import NatsServer
from albus.trace import SETTLE_NS, Target, _latest_that_went_somewhere, load, render, timeline
from services.common import subjects, tracing
from services.common.bus import Bus, Delivery
from services.common.config import parse_config
from services.common.contracts import ChangeTraced, KubeObject, ObjRef, SpanBatch, SpanRecord, decode
from services.translator.causes import Causes

REAL_TRACER = tracing.tracer  # before the fixture below replaces it


@pytest.fixture(autouse=True)
def sdk_tracer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real SDK tracer for these tests only (the global provider stays as it is for other tests)."""
    provider = TracerProvider()
    monkeypatch.setattr(tracing, "tracer", lambda: provider.get_tracer(tracing.TRACER_NAME))


def _change(name: str) -> KubeObject:
    return KubeObject(cluster="tr-unit", kind="Service", namespace="ns", name=name, uid=f"u-{name}",
                      resource_version="7", obj={"metadata": {"name": name}})


async def test_context_and_baggage_cross_the_bus_in_headers(nats_server: NatsServer) -> None:
    bus = await Bus.connect(nats_server.url, "tracing-unit")
    try:
        await bus.ensure_streams()
        msg = _change("web")
        subject = subjects.k8s_object("tr-unit", "Service", "ns", "web")
        with tracing.change_span(msg) as root:
            await bus.publish(subject, msg)
        await bus.publish(subjects.k8s_object("tr-unit", "Service", "ns", "untraced"), _change("untraced"))
        got = await bus.snapshot(subjects.k8s_cluster("tr-unit"))
    finally:
        await bus.close()
    d = got[subject]
    assert "traceparent" in d.headers
    sc = d.span_context()
    assert sc is not None and sc.trace_id == root.get_span_context().trace_id
    assert sc.span_id == root.get_span_context().span_id
    assert baggage.get_baggage(tracing.BAGGAGE_OBJECT, tracing.extract(d.headers)) == "Service/ns/web"
    assert "traceparent" not in got[subjects.k8s_object("tr-unit", "Service", "ns", "untraced")].headers

    # The receiving side: a child of the sender, the redelivery an event on it, not a new trace.
    with tracing.handling("work", d.headers, redelivered=True) as span:
        assert span.get_span_context().trace_id == sc.trace_id
        assert span.parent is not None and span.parent.span_id == sc.span_id
        assert [e.name for e in span.events] == ["albus.redelivered"]


def test_a_tree_is_the_child_of_its_earliest_cause_and_links_them_all() -> None:
    tracer = tracing.tracer()
    first, second = (tracer.start_span(n).get_span_context() for n in ("a", "b"))
    causes = Causes()
    svc, other = ObjRef(kind="Service", namespace="ns", name="web"), ObjRef(kind="Service", namespace="ns", name="x")
    causes.add({svc}, first)
    causes.add({svc, other}, second)
    causes.add({svc}, first)  # the same change seen again
    taken = causes.take()
    assert taken.of([svc]) == [first, second] and taken.of([other]) == [second]
    assert causes.of([svc]) == []
    with tracing.caused_by("translate", taken.of([svc]), about=("c", "Service/ns/web")) as span:
        assert span.parent is not None and span.parent.span_id == first.span_id
        assert {lk.context.span_id for lk in span.links} == {first.span_id, second.span_id}
        assert baggage.get_baggage(tracing.BAGGAGE_OBJECT) == "Service/ns/web"
    with tracing.caused_by("stale", []) as span:
        assert span.parent is None


def test_work_no_traced_change_caused_makes_no_span() -> None:
    cause = tracing.tracer().start_span("change").get_span_context()
    with tracing.if_caused("translate", [], {"avi.vs_name": "v"}, about=("c", "Service/ns/web")) as span:
        assert span is trace.INVALID_SPAN and not trace.get_current_span().get_span_context().is_valid
        assert tracing.inject({}) == {}  # nothing travels on with what it publishes
    with tracing.if_caused("translate", [cause], {"avi.vs_name": "v"}, about=("c", "Service/ns/web")) as span:
        assert span.parent is not None and span.parent.span_id == cause.span_id
        assert "traceparent" in tracing.inject({})


def test_a_failure_inside_a_span_is_recorded_and_the_span_ended() -> None:
    cause = tracing.tracer().start_span("change").get_span_context()
    before = trace.get_current_span()
    with pytest.raises(ValueError), \
            tracing.caused_by("translate", [cause], about=("c", "Service/ns/web")) as span:
        assert trace.get_current_span() is span and baggage.get_baggage(tracing.BAGGAGE_CLUSTER) == "c"
        raise ValueError("boom")
    assert trace.get_current_span() is before and baggage.get_baggage(tracing.BAGGAGE_CLUSTER) is None
    assert not span.is_recording() and span.end_time is not None  # type: ignore[attr-defined]
    assert span.status.status_code == trace.StatusCode.ERROR  # type: ignore[attr-defined]
    assert span.status.description == "ValueError: boom"  # type: ignore[attr-defined]
    assert [e.name for e in span.events] == ["exception"]  # type: ignore[attr-defined]


def test_the_tracer_is_looked_up_once_per_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = TracerProvider(), TracerProvider()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: first)
    t1 = REAL_TRACER()
    assert REAL_TRACER() is t1
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: second)
    t2 = REAL_TRACER()
    assert t2 is not t1 and REAL_TRACER() is t2
    with t2.start_as_current_span("x") as span:
        assert span.is_recording()


def test_route_templates_hide_object_ids() -> None:
    assert tracing.route_template("pool/pool-1234?x=1") == ("/api/pool/{uuid}", "pool")
    assert tracing.route_template("macro") == ("/api/macro", "macro")
    assert tracing.route_template("/virtualservice") == ("/api/virtualservice", "virtualservice")


def test_the_event_carries_the_trace_id_within_the_note_limit() -> None:
    body = {"note": "x" * 2000, "metadata": {"name": "e"}}
    tracing.stamp_event(body)
    assert "annotations" not in body["metadata"]  # no span, no stamp
    with tracing.tracer().start_as_current_span("status") as span:
        tracing.stamp_event(body)
    tid = trace.format_trace_id(span.get_span_context().trace_id)
    assert body["metadata"]["annotations"][tracing.TRACE_ANNOTATION] == tid
    assert body["note"].endswith(f"(trace {tid})") and len(body["note"]) == tracing.EVENT_NOTE_MAX


def test_json_logs_carry_trace_and_span_ids() -> None:
    cfg = parse_config({"albus": {"logFormat": "json"}})
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        tracing.setup_logging(cfg, "albus-test")
        out = io.StringIO()
        root.handlers[0].setStream(out)  # type: ignore[attr-defined]
        logging.getLogger("t").info("outside")
        with tracing.tracer().start_as_current_span("s") as span:
            logging.getLogger("t").info("inside")
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    outside, inside = (json.loads(x) for x in out.getvalue().splitlines())
    assert "trace_id" not in outside and outside["service"] == "albus-test"
    sc = span.get_span_context()
    assert inside["trace_id"] == trace.format_trace_id(sc.trace_id)
    assert inside["span_id"] == trace.format_span_id(sc.span_id)


def test_tracing_off_sets_up_nothing() -> None:
    assert tracing.setup(parse_config({}), "albus-x", env={"OTEL_SDK_DISABLED": "true"}).provider is None
    assert tracing.setup(parse_config({"albus": {"tracing": {"enabled": False}}}), "albus-x", env={}).provider is None


def test_timeline_orders_hops_and_accounts_for_the_time() -> None:
    def rec(span_id: str, parent: str, service: str, start: int, end: int, kind: str = "INTERNAL",
            **attrs: object) -> SpanRecord:
        return SpanRecord(trace_id="t" * 32, span_id=span_id, parent_span_id=parent, name=f"{service} work",
                          service=service, kind=kind, start_ns=start, end_ns=end, attributes=dict(attrs))

    ms = 1_000_000
    spans = [
        rec("h", "s", "albus-health", 90 * ms, 100 * ms),
        rec("w", "", "albus-watcher", 0, 2 * ms),
        rec("t", "w", "albus-translator", 10 * ms, 12 * ms),
        rec("s", "t", "albus-syncer", 20 * ms, 80 * ms),
        rec("c", "s", "albus-syncer", 30 * ms, 70 * ms, kind="CLIENT", **{"http.response.status_code": 200}),
    ]
    view = timeline("t" * 32, spans)
    assert [(r["depth"], r["span_id"]) for r in view["spans"]] == [(0, "w"), (1, "t"), (2, "s"), (3, "c"), (3, "h")]
    assert view["total_ms"] == 100 and view["complete"]
    busy = 2 + 2 + 60 + 10
    assert view["time"]["between_hops_ms"] == 100 - busy
    assert view["time"]["controller_ms"] == 40 and view["time"]["controller_calls"] == 1
    assert view["time"]["by_service_ms"]["albus-syncer"] == 60
    text = render(view)
    assert "-> 200" in text and "between hops 26.0" in text


async def test_history_reads_every_message_of_a_subject(nats_server: NatsServer) -> None:
    bus = await Bus.connect(nats_server.url, "tracing-unit-history")
    try:
        await bus.ensure_streams()
        subject = subjects.trace_index("tr-hist", "Service", "ns", "web")
        for rv in ("1", "2", "3"):
            ref = ObjRef(kind="Service", namespace="ns", name="web")
            await bus.publish(subject, ChangeTraced(cluster="tr-hist", object=ref, resource_version=rv,
                                                    trace_id=rv * 32, start_ns=0))
        got: list[Delivery] = await asyncio.wait_for(bus.history(subject), 30)
    finally:
        await bus.close()
    assert [decode(d.data, ChangeTraced).resource_version for d in got] == ["1", "2", "3"]


def test_trace_target_takes_kinds_in_any_case_as_kubectl_does() -> None:
    assert Target.parse("service/demo/web") == Target("Service", "demo", "web")
    assert Target.parse("Service/demo/web") == Target("Service", "demo", "web")
    assert Target.parse("aviinfrasetting/blue") == Target("AviInfraSetting", "", "blue")
    assert Target.parse("Widget/a/b") == Target("Widget", "a", "b")  # unknown kinds pass as given


async def test_the_default_trace_passes_over_changes_that_went_no_further_than_the_watcher(
        nats_server: NatsServer) -> None:
    """After a Service gets its VIP, its latest change is albus's own status write (only the watcher saw
    it): ``albus trace`` without --rv shows the change before it, and says so; one still on its way is
    shown (and waited for), never passed over."""
    cluster, target = "tr-skip", Target("Service", "ns", "web")
    ref = ObjRef(kind="Service", namespace="ns", name="web")
    old = time.time_ns() - 2 * SETTLE_NS

    def span(trace_id: str, span_id: str, parent: str, service: str) -> SpanRecord:
        return SpanRecord(trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=f"{service} work",
                          service=service, kind="INTERNAL", start_ns=old, end_ns=old + 1_000_000, attributes={})

    bus = await Bus.connect(nats_server.url, "tracing-unit-skip")
    try:
        await bus.ensure_streams()

        async def change(rv: str, start_ns: int, services: list[str]) -> None:
            tid = rv * 32
            await bus.publish(subjects.trace_index(cluster, "Service", "ns", "web"),
                              ChangeTraced(cluster=cluster, object=ref, resource_version=rv, trace_id=tid,
                                           start_ns=start_ns))
            spans = [span(tid, f"{i:016x}", f"{i - 1:016x}" if i else "", svc) for i, svc in enumerate(services)]
            await bus.publish(subjects.trace_spans(cluster, tid), SpanBatch(spans=tuple(spans)))

        await change("1", old, ["albus-watcher", "albus-translator", "albus-syncer", "albus-health"])
        await change("2", old, ["albus-watcher"])  # the status write's echo
        view = await asyncio.wait_for(_latest_that_went_somewhere(bus, cluster, target), 30)
        assert view["change"]["resource_version"] == "1" and view["skipped"] == 1 and view["complete"]
        assert "passed over 1 later change(s)" in render(view)

        await change("3", time.time_ns(), ["albus-watcher"])  # just made: the rest may still come
        view = await asyncio.wait_for(_latest_that_went_somewhere(bus, cluster, target), 30)
        assert view["change"]["resource_version"] == "3" and not view["complete"] and view["skipped"] == 0
        # --rv still shows exactly the change asked for, however far it went.
        view = await load(nats_server.url, cluster, target, "2", None, 0)
        assert view["change"]["resource_version"] == "2"
    finally:
        await bus.close()
