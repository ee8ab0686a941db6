"""Which Ingresses a change touches, so only they are translated again.

An Ingress's own change touches it, the Ingresses sharing one of its hosts
(a path conflict may move), and the Ingresses the last translation placed on
the same VSes (their shared tree changes, and a source of that tree must
publish it again). A Service or EndpointSlice touches the Ingresses whose
backends name it; a TLS Secret those naming it; a Namespace its Ingresses;
an IngressClass or an AviInfraSetting every Ingress.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from services.common.contracts import ObjRef
from services.translator import infra

Obj = dict[str, Any]
NsName = tuple[str, str]


def _ref(key: NsName) -> ObjRef:
    return ObjRef(kind="Ingress", namespace=key[0], name=key[1])


def _named(ing: Obj) -> tuple[set[str], set[str], set[str]]:
    """The hosts, backend Services and TLS Secrets an Ingress names."""
    spec = ing.get("spec") or {}
    hosts = {str(r.get("host") or "").lower() for r in spec.get("rules") or []} - {""}
    backends = [spec.get("defaultBackend")] + [p.get("backend") for r in spec.get("rules") or []
                                               for p in (r.get("http") or {}).get("paths") or []]
    services = {str(((b or {}).get("service") or {}).get("name") or "") for b in backends} - {""}
    secrets = {str(t.get("secretName") or "") for t in spec.get("tls") or []} - {""}
    return hosts, services, secrets



def file_under(index: dict[Any, set[Any]], keys: Iterable[Any], key: Any, adding: bool) -> None:
    """Add ``key`` to (or take it from) each of ``keys``' sets in a reverse index; empty sets go."""
    for k in keys:
        if adding:
            index[k].add(key)
        else:
            index[k].discard(key)
            if not index[k]:
                del index[k]

class IngressIndex:
    def __init__(self) -> None:
        self.keys: set[NsName] = set()
        self.classes: set[str] = set()
        self._by_host: dict[str, set[NsName]] = defaultdict(set)
        self._by_service: dict[NsName, set[NsName]] = defaultdict(set)
        self._by_secret: dict[NsName, set[NsName]] = defaultdict(set)
        self._vs_of: dict[NsName, set[str]] = {}
        self._on_vs: dict[str, set[NsName]] = defaultdict(set)

    def placed(self, placed: dict[ObjRef, set[str]]) -> None:
        """Where the last translation put every Ingress."""
        self._vs_of = {(r.namespace, r.name): set(v) for r, v in placed.items()}
        self._on_vs = defaultdict(set)
        for key, names in self._vs_of.items():
            for n in names:
                self._on_vs[n].add(key)

    def _with_mates(self, keys: set[NsName]) -> set[ObjRef]:
        out = set(keys)
        for k in keys:
            for vs in self._vs_of.get(k, ()):
                out |= self._on_vs.get(vs, set())
        return {_ref(k) for k in out}

    def _all(self) -> set[ObjRef]:
        return {_ref(k) for k in self.keys}

    def touched(self, key: tuple[str, str, str], obj: Obj, adding: bool, slice_service: str | None) -> set[ObjRef]:
        """Index (or unindex) ``obj``; the Ingresses its change touches."""
        kind, ns, name = key
        if kind == "Ingress":
            me = (ns, name)
            hosts, services, secrets = _named(obj)
            sharing = {k for h in hosts for k in self._by_host.get(h, ())}
            if adding:
                self.keys.add(me)
            else:
                self.keys.discard(me)
            file_under(self._by_host, hosts, me, adding)
            file_under(self._by_service, {(ns, s) for s in services}, me, adding)
            file_under(self._by_secret, {(ns, s) for s in secrets}, me, adding)
            return self._with_mates({me} | sharing)
        if kind in ("Service", "EndpointSlice"):
            svc = name if kind == "Service" else slice_service
            return {_ref(k) for k in self._by_service.get((ns, svc), ())} if svc else set()
        if kind == "Secret":
            return {_ref(k) for k in self._by_secret.get((ns, name), ())}
        if kind == "Namespace":
            return self._with_mates({k for k in self.keys if k[0] == name})
        if kind == "IngressClass":
            (self.classes.add if adding else self.classes.discard)(name)
            return self._all()
        if kind == infra.KIND:
            return self._all()
        return set()
