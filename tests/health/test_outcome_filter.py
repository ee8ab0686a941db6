"""Health's Gateway and Ingress loops follow every outcome of the cluster; they decode only those that may
concern them (most outcomes serve Services alone), and the route loop does not follow outcomes at all."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.bus import Delivery
from services.common.contracts import ApplyOutcome, ObjRef, encode
from services.health import gateway_writer, ingress_status
from services.health.gateway_writer import GatewayReconciler, RouteReconciler
from services.health.ingress_status import IngressReconciler


def _delivery(vs: str, *sources: tuple[str, str]) -> Delivery:
    out = ApplyOutcome(cluster="c1", tenant="admin", vs_name=vs, checksum="x", ok=True, vips=("10.0.0.1",),
                       sources=tuple(ObjRef(kind=k, namespace="ns", name=n) for k, n in sources))
    return Delivery(subject=f"outcome.c1.admin.{vs}", data=encode(out), headers={}, stream_seq=1)


@pytest.mark.parametrize("loop_class,module,kind", [(GatewayReconciler, gateway_writer, "Gateway"),
                                                    (IngressReconciler, ingress_status, "Ingress")])
async def test_an_outcome_for_services_alone_is_not_decoded_unless_its_subject_served_the_kind(
        loop_class: Any, module: Any, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = loop_class(None, None, "c1", "me")
    decoded: list[str] = []
    real = module.decode

    def counting(raw: bytes, expect: Any) -> Any:
        msg = real(raw, expect)
        decoded.append(msg.vs_name)
        return msg

    monkeypatch.setattr(module, "decode", counting)
    await loop._on_outcome(_delivery("svc-only", ("Service", "web")))
    assert decoded == [] and not loop._dirty
    await loop._on_outcome(_delivery("shared", ("Service", "web"), (kind, "front")))
    assert decoded == ["shared"] and ("ns", "front") in loop._dirty
    loop._dirty.first.clear()
    # The same virtual service no longer serving it: decoded (its subject held one), the object looked at again.
    await loop._on_outcome(_delivery("shared", ("Service", "web")))
    assert decoded == ["shared", "shared"] and ("ns", "front") in loop._dirty


def test_the_route_loop_follows_no_outcomes() -> None:
    assert not RouteReconciler.FOLLOWS_OUTCOMES and GatewayReconciler.FOLLOWS_OUTCOMES
