"""A real OTLP/gRPC endpoint for tests: the ``TraceService`` of opentelemetry-proto on a loopback port.

It keeps what exporters sent, decoded from the protobuf they put on the
wire, flattened to one dict per span (ids in hex, attributes as Python values).
"""

from __future__ import annotations

import threading
from concurrent import futures
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, which) if which else None


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs if isinstance(kv, KeyValue)}


class _Service(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: OtlpReceiver) -> None:
        self.sink = sink

    def Export(self, request: Any, context: Any) -> Any:
        self.sink.take(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.requests = 0
        self._lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Service(self), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OtlpReceiver:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(grace=1).wait()

    def take(self, request: Any) -> None:
        out = []
        for rs in request.resource_spans:
            resource = _attrs(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out.append({
                        "service": resource.get("service.name"), "resource": resource,
                        "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(), "name": s.name, "kind": s.kind,
                        "start_ns": s.start_time_unix_nano, "end_ns": s.end_time_unix_nano,
                        "attributes": _attrs(s.attributes), "status_code": s.status.code,
                        "events": [{"name": e.name, "attributes": _attrs(e.attributes)} for e in s.events],
                        "links": [(lk.trace_id.hex(), lk.span_id.hex()) for lk in s.links],
                    })
        with self._lock:
            self.requests += 1
            self.spans.extend(out)

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [s for s in self.spans if s["trace_id"] == trace_id]
