"""Cutting Kubernetes objects down to what translation (and status) needs.

Objects keep their JSON shape (camelCase, ``metadata``/``spec``/``status``), so
the translator reads a trimmed object exactly as it would read the original.
:func:`fingerprint` digests a trimmed object without its resourceVersion: two
objects with the same fingerprint translate the same, so the watcher need not
publish the second (a status write, albus's own or anyone's, bumps only the
resourceVersion of what it keeps).
"""

from __future__ import annotations

import hashlib
import json

from services.common import readiness_gate, tls_secrets
from services.common.reflector import Obj

# kubectl's copy of the whole object: large, and never an input to translation.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

_METADATA_KEEP = (
    "name", "namespace", "uid", "resourceVersion", "generation",
    "labels", "annotations", "creationTimestamp", "deletionTimestamp",
)


def trim_metadata(meta: Obj) -> Obj:
    out = {k: meta[k] for k in _METADATA_KEEP if meta.get(k) is not None}
    annotations = out.get("annotations")
    if isinstance(annotations, dict) and LAST_APPLIED in annotations:
        rest = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
        if rest:
            out["annotations"] = rest
        else:
            del out["annotations"]
    return out


def _base(obj: Obj) -> Obj:
    return {"metadata": trim_metadata(obj.get("metadata") or {})}


def trim_metadata_only(obj: Obj) -> Obj:
    """Namespaces: only their labels and annotations matter (tenant, AviInfraSetting)."""
    return _base(obj)


def trim_with_spec(obj: Obj) -> Obj:
    out = _base(obj)
    if obj.get("spec") is not None:
        out["spec"] = obj["spec"]
    return out


def trim_service(obj: Obj) -> Obj:
    """Spec only: a Service's status is health's output, never translation's input. Keeping
    ``status.loadBalancer`` made every VIP health wrote come back through the watcher and the
    translator as a change (a second message per new Service, for nothing)."""
    return trim_with_spec(obj)


_ENDPOINT_KEEP = ("addresses", "conditions", "hostname", "nodeName", "zone", "targetRef")
_TARGET_REF_KEEP = ("kind", "namespace", "name", "uid")


def trim_endpoint_slice(obj: Obj) -> Obj:
    """Addresses, readiness and ports; ``targetRef`` lets health map pool members back to pods."""
    out = _base(obj)
    if "addressType" in obj:
        out["addressType"] = obj["addressType"]
    endpoints = []
    for ep in obj.get("endpoints") or ():
        kept = {k: ep[k] for k in _ENDPOINT_KEEP if ep.get(k) is not None}
        ref = kept.get("targetRef")
        if isinstance(ref, dict):
            kept["targetRef"] = {k: ref[k] for k in _TARGET_REF_KEEP if ref.get(k) is not None}
        endpoints.append(kept)
    out["endpoints"] = endpoints
    out["ports"] = list(obj.get("ports") or ())
    return out


_POD_METADATA_KEEP = ("name", "namespace", "uid", "resourceVersion", "deletionTimestamp")


def trim_gated_pod(obj: Obj) -> Obj:
    """A pod carrying albus's readiness gate: the gate and ContainersReady, nothing else.

    What the translator needs to enable the member of a pod that is not Ready
    only because the gate is shut (:mod:`services.common.readiness_gate`);
    the pod's other conditions change often and would each be a publish.
    """
    meta = obj.get("metadata") or {}
    out: Obj = {"metadata": {k: meta[k] for k in _POD_METADATA_KEEP if meta.get(k) is not None},
                "spec": {"readinessGates": [{"conditionType": readiness_gate.GATE_TYPE}]}}
    ready = next((c.get("status") for c in (obj.get("status") or {}).get("conditions") or ()
                  if c.get("type") == "ContainersReady"), None)
    if ready is not None:
        out["status"] = {"conditions": [{"type": "ContainersReady", "status": ready}]}
    return out


def trim_with_spec_and_status(obj: Obj) -> Obj:
    """CRDs whose status decides whether they apply (AviInfraSetting is used only when Accepted)."""
    out = trim_with_spec(obj)
    if obj.get("status") is not None:
        out["status"] = obj["status"]
    return out


def fingerprint(trimmed: Obj) -> str:
    """Digest of a trimmed object, ignoring its resourceVersion and a TLS Secret's sealed box.

    The box differs each time the same key is sealed (a new nonce); its
    ``tls.fingerprint`` and key id stand for it, so a relist does not publish
    every TLS Secret again.
    """
    meta = {k: v for k, v in (trimmed.get("metadata") or {}).items() if k != "resourceVersion"}
    body = tls_secrets.stable_view({**trimmed, "metadata": meta})
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:32]
