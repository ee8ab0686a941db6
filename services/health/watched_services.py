"""The Services (and, with a namespace selector, namespaces) health keeps in its caches: which, and what of each.

Health's Service loop reads Services from a list-and-watch cache
(``services.common.object_cache``) instead of a GET per reconcile
(docs/health.md, "Reading Services from a watch"). It keeps only the
Services whose status albus may have to write or take back, and of each only
what :func:`services.health.service_status.plan`, the ownership rule and an
Event need: at 10,000 Services the cache is a few megabytes.
"""

from __future__ import annotations

from services.common.reflector import KindSpec, Obj, path_lister
from services.common.service_ownership import joins_gateway
from services.health.service_status import ALBUS_CONDITION_PREFIX

_METADATA_KEEP = ("name", "namespace", "uid", "resourceVersion", "generation", "labels")
_SPEC_KEEP = ("type", "loadBalancerClass")


def relevant(svc: Obj) -> bool:
    """A LoadBalancer, a Service joining a Gateway, or one still carrying albus's conditions (to take back).

    Any other Service gets no write from health whatever the bus says
    (``service_status.plan``), so it need not be kept.
    """
    if (svc.get("spec") or {}).get("type") == "LoadBalancer" or joins_gateway(svc):
        return True
    conds = (svc.get("status") or {}).get("conditions") or ()
    return any(str(c.get("type") or "").startswith(ALBUS_CONDITION_PREFIX) for c in conds)


def trim_for_status(svc: Obj) -> Obj:
    meta = svc.get("metadata") or {}
    spec = svc.get("spec") or {}
    return {
        "metadata": {k: meta[k] for k in _METADATA_KEEP if k in meta},
        "spec": {k: spec[k] for k in _SPEC_KEEP if k in spec},
        "status": svc.get("status") or {},
    }


def trim_namespace(ns: Obj) -> Obj:
    meta = ns.get("metadata") or {}
    return {"metadata": {k: meta[k] for k in ("name", "resourceVersion", "labels") if k in meta}}


SERVICES_FOR_STATUS = KindSpec(
    kind="Service", api_version="v1", namespaced=True, lister=path_lister("/api/v1/services"),
    trim=trim_for_status, relevant=relevant,
)
# With AKOSettings.namespaceSelector set: which namespaces it admits, and when that changes.
NAMESPACES_FOR_SELECTOR = KindSpec(
    kind="Namespace", api_version="v1", namespaced=False, lister=path_lister("/api/v1/namespaces"),
    trim=trim_namespace,
)
