"""``encode`` dumps fields as Python values: the bytes must be those of their JSON forms, as before."""

from __future__ import annotations

from typing import Any

import msgpack

from bench.workload import documents
from services.common.contracts import (
    ApplyOutcome,
    Contract,
    ObjRef,
    ResyncDone,
    SpanBatch,
    SpanEvent,
    SpanRecord,
    TreesSynced,
    decode_any,
    encode,
    may_contain,
)
from services.translator.engine import Engine
from services.translator.offline import as_kube_object
from tests.tls_certs import self_signed, tls_secret
from tests.unit.test_translate_gateway import CFG
from tests.unit.test_translate_gateway_http import CLASS, backend, prefix, route, svc
from tests.unit.test_translate_gateway_https import HTTP, gateway, https
from tests.unit.test_translate_l4 import svc as l4_svc


def _as_json_dumped(msg: Contract) -> bytes:
    """The encoding before: the fields in their JSON form."""
    raw: bytes = msgpack.packb({"k": msg.kind_name, "d": msg.model_dump(mode="json")}, use_bin_type=True)
    return raw


def _translated(docs: list[dict[str, Any]]) -> list[Contract]:
    engine = Engine(CFG)
    kos = [ko for ko in (as_kube_object(d, "c1") for d in docs) if ko is not None]
    for ko in kos:
        engine.observe(ko)
    engine.mark_all()
    changes = engine.flush()
    return [*kos, *changes.trees, *changes.reports, *engine.stale().trees]


def test_every_message_encodes_as_its_json_form_did() -> None:
    pair = self_signed("www.shop.example")
    msgs = _translated([
        # An HTTPS Gateway (a sealed key, listener statuses), a route with a missing backend (a problem).
        CLASS, gateway(HTTP, https()), svc("a"), tls_secret("cert", "shop", pair),
        route("r", {"matches": [prefix("/")], "backendRefs": [backend("a"), backend("gone")]}),
        *documents("l4", range(3)),  # L4 Services and their EndpointSlices
        l4_svc(loadBalancerIP="not-an-ip"),  # a problem (its Severity enum)
    ])
    span = SpanRecord(trace_id="a" * 32, span_id="b" * 16, name="translate x", service="albus-translator",
                      kind="CONSUMER", start_ns=1, end_ns=2, attributes={"albus.deleted": False, "n": 1.5,
                                                                           "list": ("x", "y")},
                      events=(SpanEvent(name="albus.retry", time_ns=3, attributes={"status": 503}),),
                      links=(("c" * 32, "d" * 16),))
    msgs += [SpanBatch(spans=(span,)),
             ApplyOutcome(cluster="c1", tenant="admin", vs_name="v", checksum="x", ok=False, error=None,
                          vips=("10.0.0.1",), uuids={"pool": "pool-1"},
                          sources=(ObjRef(kind="Service", namespace="n", name="s"),)),
             TreesSynced(cluster="c1", epoch="e", vs_names=("v",)),
             ResyncDone(cluster="c1", service="syncer", instance="i", request="r", partitions=(0, 3))]
    kinds = {type(m).__name__ for m in msgs}
    assert {"KubeObject", "VsTree", "SourceReport"} <= kinds
    assert any(o.sealed for m in msgs if type(m).__name__ == "VsTree" for o in getattr(m, "objects", ()))
    assert any(getattr(m, "problems", ()) for m in msgs) and any(getattr(m, "gateway", None) for m in msgs)
    for m in msgs:
        assert encode(m) == _as_json_dumped(m), type(m).__name__
        assert encode(decode_any(encode(m))) == encode(m)


def test_may_contain_finds_a_string_at_any_depth_and_rules_out_only_what_is_absent() -> None:
    def outcome(*kinds: str) -> bytes:
        return encode(ApplyOutcome(cluster="c1", tenant="admin", vs_name="v", checksum="x", ok=True,
                                   sources=tuple(ObjRef(kind=k, namespace="n", name=f"o{i}")
                                                 for i, k in enumerate(kinds))))

    assert may_contain(outcome("Service", "Gateway"), "Gateway")
    assert may_contain(outcome("Ingress"), "Ingress")
    assert not may_contain(outcome("Service"), "Gateway") and not may_contain(outcome("Service"), "Ingress")
    # A longer string holding the word is not the word (its length is packed before it).
    named = encode(ApplyOutcome(cluster="c1", tenant="admin", vs_name="MyGateway", checksum="x", ok=True))
    assert not may_contain(named, "Gateway")
    # The long form too (msgpack's str 8 past 31 bytes).
    long_name = "g" * 40
    assert may_contain(encode(TreesSynced(cluster="c1", epoch="e", vs_names=(long_name,))), long_name)
