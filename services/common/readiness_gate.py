"""albus's pod readiness gate, as watcher, translator and health all read it (docs/health.md#readiness-gate).

Pure. A pod carries the gate when its ``spec.readinessGates`` name
:data:`GATE_TYPE` (health's webhook adds it at creation). Such a pod is not
Ready, so its EndpointSlice endpoint is not ready, until health opens the
gate; the translator enables its member as soon as its containers are ready
(:func:`member_may_serve`), so the controller health-checks it and the gate
can open — as the AWS Load Balancer Controller registers the targets of
gated pods before they are Ready.
"""

from __future__ import annotations

from typing import Any

GATE_TYPE = "albus.io/LoadBalancerMemberUp"


def gated(pod: dict[str, Any]) -> bool:
    return any(g.get("conditionType") == GATE_TYPE for g in (pod.get("spec") or {}).get("readinessGates") or ())


def condition_true(pod: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def member_may_serve(pod: dict[str, Any]) -> bool:
    """A gated pod whose containers are ready and that is not being deleted: its member is enabled."""
    meta = pod.get("metadata") or {}
    return gated(pod) and condition_true(pod, "ContainersReady") and not meta.get("deletionTimestamp")
