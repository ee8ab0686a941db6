"""The pod readiness gate: which pods get it, the admission answer that adds it, the condition that opens it.

Pure. Opt-in per namespace: the label ``albus.io/readiness-gate=enabled``
(the MutatingWebhookConfiguration's namespaceSelector, so the API server
calls albus for those namespaces only). A pod is gated when a Service albus
handles (one with a live virtual service) selects it; any other pod is
admitted unchanged. Health sets the pod condition ``albus.io/LoadBalancerMemberUp``
to True once the pod's member is up on the controller (``lb_ready``), and
never back to False: the gate holds a rollout until the load balancer has
seen the new pod healthy, as AWS's and GKE's load balancer controllers do.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from services.common.config import WebhookService
from services.common.contracts import KubeObject

# GATE_TYPE and gated re-exported: health's modules and tests read them here.
from services.common.readiness_gate import GATE_TYPE as GATE_TYPE
from services.common.readiness_gate import condition_true
from services.common.readiness_gate import gated as gated
from services.health.desired import SvcKey

OPT_IN_LABEL = "albus.io/readiness-gate"
OPT_IN_VALUE = "enabled"
WEBHOOK_NAME = "readiness-gate.albus.io"
CONFIGURATION_NAME = "albus-readiness-gate"
PATH = "/mutate-pods"


class Selectors:
    """The selector of every Service the watcher published, by namespace."""

    def __init__(self) -> None:
        self._by_ns: dict[str, dict[str, dict[str, str]]] = {}

    def set_service(self, ko: KubeObject) -> None:
        services = self._by_ns.setdefault(ko.namespace, {})
        spec = (ko.obj or {}).get("spec") or {}
        selector = spec.get("selector") or {}
        if ko.deleted or ko.obj is None or not selector:
            services.pop(ko.name, None)  # no selector: its endpoints are not pods albus could gate
        else:
            services[ko.name] = {str(k): str(v) for k, v in selector.items()}

    def selecting(self, namespace: str, labels: dict[str, str]) -> list[SvcKey]:
        return [(namespace, name) for name, sel in sorted(self._by_ns.get(namespace, {}).items())
                if all(labels.get(k) == v for k, v in sel.items())]


def gate_open(pod: dict[str, Any]) -> bool:
    return condition_true(pod, GATE_TYPE)


def mutation(pod: dict[str, Any], namespace: str, selectors: Selectors,
             handled: Callable[[SvcKey], bool]) -> list[dict[str, Any]]:
    """The JSON patch adding the gate to ``pod``, empty when albus does not gate it."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if gated(pod) or not any(handled(k) for k in selectors.selecting(namespace, labels)):
        return []
    gate = {"conditionType": GATE_TYPE}
    if (pod.get("spec") or {}).get("readinessGates"):
        return [{"op": "add", "path": "/spec/readinessGates/-", "value": gate}]
    return [{"op": "add", "path": "/spec/readinessGates", "value": [gate]}]


def review_response(review: dict[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
    """The AdmissionReview answer: always allowed, with the patch when there is one."""
    uid = (review.get("request") or {}).get("uid", "")
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


def registration(ca_pem: bytes, url: str, service: WebhookService | None = None) -> dict[str, Any]:
    """The MutatingWebhookConfiguration: pods created in opted-in namespaces; fail open.

    Called by ``service`` when given (the API server resolves it in the
    cluster), else at ``url``.
    """
    client: dict[str, Any] = {"url": url}
    if service is not None:
        client = {"service": {"namespace": service.namespace, "name": service.name, "port": service.port,
                              "path": PATH}}
    client["caBundle"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": CONFIGURATION_NAME, "labels": {"app.kubernetes.io/name": "albus"}},
        "webhooks": [{
            "name": WEBHOOK_NAME,
            "clientConfig": client,
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"],
                       "scope": "Namespaced"}],
            "namespaceSelector": {"matchLabels": {OPT_IN_LABEL: OPT_IN_VALUE}},
            # Albus down must not stop pods from being created: they are admitted without the gate.
            "failurePolicy": "Ignore",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 5,
            "reinvocationPolicy": "Never",
        }],
    }


def open_patch(now: str, message: str) -> dict[str, Any]:
    """Strategic merge patch of the pod's status: conditions merge by type."""
    return {"status": {"conditions": [{"type": GATE_TYPE, "status": "True", "reason": "MemberUp",
                                       "message": message, "lastTransitionTime": now}]}}
