"""One Kubernetes change, one trace: four service processes exporting to a real OTLP/gRPC receiver.

What is checked is what the receiver decoded off the wire (and what the
local span store on the bus gives ``albus trace``), never in-process objects.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from services.common.tracing import TRACE_ANNOTATION
from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import lb_service, run_pod
from tests.tracing.otlp_receiver import OtlpReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

SERVICES = {"albus-watcher", "albus-translator", "albus-syncer", "albus-health"}
PORTS = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
CLIENT = 3  # SpanKind.CLIENT in OTLP's enum
DOC = Path(__file__).resolve().parents[2] / "docs" / "tracing.md"
SECRET_MARKERS = ("sessionid", "csrftoken", "cookie", "authorization", "x-csrftoken", "private key")


def albus_trace(p: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "albus.cli", "trace", *args, "--config", str(p.config_path)],
        capture_output=True, text=True, timeout=120,
    )


def synced_event(p: Pipeline, name: str) -> Any:
    evs = client.EventsV1Api(p.api).list_namespaced_event(p.namespace).items
    return next((e for e in evs if e.regarding and e.regarding.name == name and e.reason == "Synced"), None)


def by_id(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["span_id"]: s for s in spans}


def one(spans: list[dict[str, Any]], service: str) -> dict[str, Any]:
    mine = [s for s in spans if s["service"] == service and s["kind"] != CLIENT]
    assert len(mine) == 1, (service, [s["name"] for s in mine])
    return mine[0]


def complete(otlp: OtlpReceiver, trace_id: str) -> list[dict[str, Any]] | None:
    spans = otlp.trace(trace_id)
    return spans if {s["service"] for s in spans} >= SERVICES else None


def test_a_service_edit_is_one_trace_through_all_four_services(
    traced_env: OtlpReceiver, pipeline: Pipeline
) -> None:
    otlp, p = traced_env, pipeline
    run_pod(p.core, p.namespace, "web-1", {"app": "web"}, "10.244.7.11", [("http", 8080, "TCP")])
    p.core.create_namespaced_service(p.namespace, lb_service("web", PORTS))
    vs_name = f"{p.cluster}--{p.namespace}-web"
    wait_for(lambda: p.vips("web"), 90, "the VIP in the Service status")

    # The Event reporting the outcome carries the trace id, in its annotation and its note.
    ev = wait_for(lambda: synced_event(p, "web"), 60, "the Synced Event")
    created = ev.metadata.annotations[TRACE_ANNOTATION]
    assert ev.note.endswith(f"(trace {created})")
    spans = wait_for(lambda: complete(otlp, created), 60, "the creation's trace from all four services")
    assert {s["service"] for s in spans} == SERVICES

    # The edit: a new port number (the EndpointSlice does not change with it).
    p.reset_log()
    p.admin("POST", "faults", json={"method": "PUT", "path": "virtualservice", "status": 503, "count": 1})
    svc = p.set_port("web", 8080)
    rv = svc.metadata.resource_version
    wait_for(lambda: 8080 in [s["port"] for s in p.objects("virtualservice")[vs_name]["services"]], 60,
             "the new port on the virtual service")

    # albus trace, from the local span store on the bus, finds that change and its trace.
    out = albus_trace(p, f"Service/{p.namespace}/web", "--json", "--wait", "60")
    assert out.returncode == 0, out.stderr
    view = json.loads(out.stdout)
    assert view["change"]["resource_version"] == rv and view["complete"]
    tid = view["trace_id"]
    assert tid != created

    spans = wait_for(lambda: complete(otlp, tid), 60, "the edit's trace from all four services at the receiver")
    ids = by_id(spans)
    roots = [s for s in spans if not s["parent_span_id"]]
    assert len(roots) == 1
    root = roots[0]
    assert root["service"] == "albus-watcher"
    assert root["attributes"]["k8s.object.kind"] == "Service"
    assert root["attributes"]["k8s.object.name"] == "web"
    assert root["attributes"]["k8s.object.resource_version"] == rv
    assert root["attributes"]["k8s.object.uid"] == svc.metadata.uid
    translate = one(spans, "albus-translator")
    apply = one(spans, "albus-syncer")
    # Health writes the outcome; the new port's pool starts with its members unchecked, so a second
    # write may follow when they come up (LoadBalancerReady HealthCheckPending -> Programmed), caused
    # by the same change. On a quick machine the check lands first and there is one.
    statuses = [s for s in spans if s["service"] == "albus-health"]
    assert 1 <= len(statuses) <= 2 and all(s["name"] == f"status Service {p.namespace}/web" for s in statuses), \
        [s["name"] for s in statuses]
    assert translate["parent_span_id"] == root["span_id"]
    assert translate["attributes"]["avi.vs_name"] == vs_name
    assert apply["parent_span_id"] == translate["span_id"]
    assert all(s["parent_span_id"] == apply["span_id"] for s in statuses)

    # A child span per controller call, HTTP semantic conventions, the retry an event on it.
    calls = [s for s in spans if s["kind"] == CLIENT]
    assert calls and all(ids[c["parent_span_id"]] is apply for c in calls)
    for c in calls:
        a = c["attributes"]
        assert {"http.request.method", "url.template", "http.response.status_code", "avi.object_type",
                "server.address"} <= set(a), a
        assert a["avi.vs_name"] == vs_name
        assert c["name"] == f"{a['http.request.method']} {a['url.template']}"
    put_vs = [c for c in calls if c["name"] == "PUT /api/virtualservice/{uuid}"]
    assert len(put_vs) == 1 and put_vs[0]["attributes"]["http.response.status_code"] == 200
    assert [e["name"] for e in put_vs[0]["events"]] == ["albus.retry"]
    # Every create and update the controller saw during the edit is one of the trace's calls (the
    # retry is one call). A stale pool may be deleted by the periodic GC first, which is no change's.
    seen = {(w["method"], w["path"].split("?")[0].strip("/").split("/")[1]) for w in p.writes()}
    traced = {(c["attributes"]["http.request.method"], c["attributes"]["avi.object_type"])
              for c in calls if c["attributes"]["http.request.method"] != "GET"}
    assert traced <= seen and all(m == "DELETE" for m, _ in seen - traced), (seen, traced)

    # The same trace in the local store, and its text timeline.
    assert {r["span_id"] for r in view["spans"]} == set(ids)
    text = albus_trace(p, f"Service/{p.namespace}/web")
    assert text.returncode == 0, text.stderr
    assert f"trace {tid}" in text.stdout and f"rv {rv}" in text.stdout
    assert "PUT /api/virtualservice/{uuid}  -> 200" in text.stdout and "[retry]" in text.stdout
    for service in SERVICES:
        assert service in text.stdout
    print(text.stdout)  # what docs/tracing.md shows
    # The same hops as docs/tracing.md shows (the old pool's DELETE may have gone to the GC).
    # (and one status line however many writes health made: see above).
    def same(h: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [x for i, x in enumerate(h) if not x[1].startswith("DELETE") and (i == 0 or x != h[i - 1])]
    assert same(hops(text.stdout, p)) == same(hops(documented_example(), None))

    # JSON logs carry the trace: the translator's line about the tree names this trace.
    lines = [json.loads(x) for x in p.children["translator"].log_tail(200_000).splitlines() if x.startswith("{")]
    assert any(x.get("trace_id") == tid and vs_name in x["message"] for x in lines)

    # Nothing secret anywhere: span attributes, events, resources, and every service log line.
    assert_no_secrets(otlp.spans, [p.children[n].log_tail(2_000_000) for n in p.children], p.sim.password)


def documented_example() -> str:
    doc = DOC.read_text()
    start = doc.index("```\n", doc.index("The output of a port change")) + 4
    return doc[start:doc.index("```", start)]


def hops(output: str, p: Pipeline | None) -> list[tuple[str, str]]:
    """(service, span) of each line of an `albus trace` timeline, this test's names made generic."""
    out = []
    for line in output.splitlines()[2:-1]:
        service, span = line.split(None, 3)[2:]
        span = span.split("  ")[0].strip()
        if p is not None:
            span = span.replace(f"{p.cluster}--{p.namespace}-", "my-cluster--demo-")
            span = span.replace(f" {p.namespace}/", " demo/")
        out.append((service, span))
    return out


def assert_no_secrets(spans: list[dict[str, Any]], logs: list[str], password: str) -> None:
    def strings(obj: Any) -> list[str]:
        if isinstance(obj, dict):
            return [k.lower() for k in obj] + [x for v in obj.values() for x in strings(v)]
        if isinstance(obj, (list, tuple)):
            return [x for v in obj for x in strings(v)]
        return [str(obj).lower()]

    found = [s for s in strings(spans) if password in s or any(m in s for m in SECRET_MARKERS)]
    assert not found, found
    for text in logs:
        assert text, "a service wrote no log at all?"
        low = text.lower()
        assert password not in low
        assert not [m for m in SECRET_MARKERS if m in low]
