"""Which Ingresses are albus's: IngressClasses with AKO's controller string, the default class.

An Ingress names its class in ``spec.ingressClassName`` (or the older
``kubernetes.io/ingress.class`` annotation); albus takes it when that class's
``spec.controller`` is AKO's. An Ingress naming no class is albus's only
while one of albus's classes carries the standard default-class annotation
and no other controller's class does (the API server would otherwise have
given it that class at creation). The class's ``spec.parameters`` names the
AviInfraSetting (:func:`services.translator.infra.class_parameters`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CONTROLLER = "ako.vmware.com/avi-lb"
DEFAULT_CLASS = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS = "kubernetes.io/ingress.class"

Obj = dict[str, Any]


def ours(cls: Obj | None) -> bool:
    return cls is not None and (cls.get("spec") or {}).get("controller") == CONTROLLER


def is_default(cls: Obj) -> bool:
    ann = (cls.get("metadata") or {}).get("annotations") or {}
    return str(ann.get(DEFAULT_CLASS, "")).lower() == "true"


def named_class(ing: Obj) -> str:
    spec = ing.get("spec") or {}
    ann = (ing.get("metadata") or {}).get("annotations") or {}
    return str(spec.get("ingressClassName") or ann.get(LEGACY_CLASS) or "")


def class_for(ing: Obj, classes: Iterable[Obj]) -> Obj | None:
    """The IngressClass of albus's that handles ``ing``, or None when the Ingress is not albus's."""
    by_name = {str((c.get("metadata") or {}).get("name")): c for c in classes}
    name = named_class(ing)
    if name:
        cls = by_name.get(name)
        return cls if ours(cls) else None
    defaults = [by_name[n] for n in sorted(by_name) if is_default(by_name[n])]
    if defaults and all(ours(c) for c in defaults):
        return defaults[0]
    return None
