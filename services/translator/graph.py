"""The translator's view of one cluster: objects by key, with the indexes translation needs.

``upsert`` and ``remove`` return the *sources* (objects that own trees) whose
translation may have changed, so only those are recomputed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from services.common.config import Config
from services.common.contracts import KubeObject, ObjRef
from services.translator import l4

Key = tuple[str, str, str]  # kind, namespace, name

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def key_of(ref: ObjRef) -> Key:
    return (ref.kind, ref.namespace, ref.name)


class Graph:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.objects: dict[Key, dict[str, Any]] = {}
        # (namespace, service) -> names of its EndpointSlices
        self._slices: dict[tuple[str, str], set[str]] = defaultdict(set)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace, name))

    def upsert(self, ko: KubeObject) -> set[ObjRef]:
        if ko.deleted or ko.obj is None:
            return self.remove(ko.kind, ko.namespace, ko.name)
        key = (ko.kind, ko.namespace, ko.name)
        old = self.objects.get(key)
        self.objects[key] = ko.obj
        affected = self._unindex(key, old)
        affected |= self._index(key, ko.obj)
        return affected

    def remove(self, kind: str, namespace: str, name: str) -> set[ObjRef]:
        key = (kind, namespace, name)
        old = self.objects.pop(key, None)
        return self._unindex(key, old) if old is not None else set()

    def _service_of_slice(self, obj: dict[str, Any]) -> str | None:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        svc = labels.get(SERVICE_NAME_LABEL)
        return str(svc) if svc else None

    def _index(self, key: Key, obj: dict[str, Any]) -> set[ObjRef]:
        kind, ns, name = key
        if kind == "Service":
            return {ObjRef(kind="Service", namespace=ns, name=name)}
        if kind == "EndpointSlice":
            svc = self._service_of_slice(obj)
            if svc:
                self._slices[(ns, svc)].add(name)
                return {ObjRef(kind="Service", namespace=ns, name=svc)}
        if kind == "Namespace":
            return {ObjRef(kind="Service", namespace=name, name=n)
                    for (k, n_ns, n) in self.objects if k == "Service" and n_ns == name}
        return set()

    def _unindex(self, key: Key, old: dict[str, Any] | None) -> set[ObjRef]:
        if old is None:
            return set()
        kind, ns, name = key
        if kind == "Service":
            return {ObjRef(kind="Service", namespace=ns, name=name)}
        if kind == "EndpointSlice":
            svc = self._service_of_slice(old)
            if svc:
                self._slices[(ns, svc)].discard(name)
                return {ObjRef(kind="Service", namespace=ns, name=svc)}
        return set()

    def slices_of(self, namespace: str, service: str) -> list[dict[str, Any]]:
        names = sorted(self._slices.get((namespace, service), ()))
        return [o for n in names if (o := self.objects.get(("EndpointSlice", namespace, n))) is not None]

    def sources(self) -> set[ObjRef]:
        return {ObjRef(kind=k, namespace=ns, name=n) for (k, ns, n) in self.objects if k == "Service"}

    def namespace_selected(self, namespace: str) -> bool:
        """AKO's namespaceSelector: with one set, only labelled namespaces are handled."""
        sel = self.cfg.AKOSettings.namespaceSelector
        if not sel.labelKey:
            return True
        ns = self.objects.get(("Namespace", "", namespace))
        labels = ((ns or {}).get("metadata") or {}).get("labels") or {}
        return bool(labels.get(sel.labelKey) == sel.labelValue)

    def translate(self, src: ObjRef) -> l4.Translation:
        """Desired trees and problems of one source; empty when it is gone or not ours."""
        if src.kind != "Service":
            return l4.Translation()
        svc = self.objects.get(key_of(src))
        if svc is None or not l4.handles(svc, self.cfg) or not self.namespace_selected(src.namespace):
            return l4.Translation()
        return l4.translate_service(svc, self.slices_of(src.namespace, src.name), self.cfg)
