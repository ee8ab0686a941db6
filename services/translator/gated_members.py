"""Enabling the members of pods that are not Ready only because albus's readiness gate is shut.

Pure. A pod carrying the gate is not Ready until health opens the gate, and
health opens it only once the pod's member is up on the controller: were
its member added disabled (as every not-ready endpoint is), the controller
would never check it and the gate would never open. So an endpoint that is
not ready, not terminating, and whose pod (``targetRef``, same uid) carries
the gate with its containers ready counts as ready: its member is enabled
(:mod:`services.common.readiness_gate`). Every other endpoint is as the
EndpointSlice says.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.common.readiness_gate import member_may_serve

Obj = dict[str, Any]
# (namespace, pod name) -> the published gated pod, or None
PodLookup = Callable[[str, str], Obj | None]


def pod_named(endpoint: Obj, namespace: str) -> tuple[str, str] | None:
    """The (namespace, name) of the pod behind an endpoint, if it names one."""
    ref = endpoint.get("targetRef") or {}
    if ref.get("kind") != "Pod" or not ref.get("name"):
        return None
    return str(ref.get("namespace") or namespace), str(ref["name"])


def _gate_holds_back(endpoint: Obj, namespace: str, pods: PodLookup) -> bool:
    cond = endpoint.get("conditions") or {}
    if cond.get("ready") is not False or cond.get("terminating"):
        return False
    named = pod_named(endpoint, namespace)
    pod = pods(*named) if named is not None else None
    if pod is None or not member_may_serve(pod):
        return False
    uid = (endpoint.get("targetRef") or {}).get("uid")
    # A pod recreated under the same name (StatefulSet) speaks for its own endpoint only.
    return not uid or uid == (pod.get("metadata") or {}).get("uid")


def with_gated_ready(slice_: Obj, namespace: str, pods: PodLookup) -> Obj:
    """``slice_`` (of ``namespace``) with the endpoints held back only by the gate marked ready (a copy if any)."""
    endpoints = slice_.get("endpoints") or []
    if not any(_gate_holds_back(ep, namespace, pods) for ep in endpoints):
        return slice_
    out = []
    for ep in endpoints:
        if _gate_holds_back(ep, namespace, pods):
            ep = {**ep, "conditions": {**(ep.get("conditions") or {}), "ready": True}}
        out.append(ep)
    return {**slice_, "endpoints": out}


def pods_of(slice_: Obj, namespace: str) -> set[tuple[str, str]]:
    return {p for ep in slice_.get("endpoints") or [] if (p := pod_named(ep, namespace)) is not None}
