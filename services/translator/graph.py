"""The translator's view of one cluster: objects by key, with the indexes translation needs.

``upsert`` and ``remove`` return the *sources* (objects that own trees) whose
translation may have changed, so only those are recomputed: a Service and
the other members of its shared-VIP group, the Services of a Namespace, the
Services that use an AviInfraSetting (and only those); a Gateway and the
Services joined to it by label, the Gateways of a GatewayClass, the Gateways
whose HTTPS listeners name a TLS Secret.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from services.common import service_ownership as ownership
from services.common.config import Config
from services.common.contracts import AviObject, GatewayStatus, KubeObject, ObjRef, Problem, Severity
from services.translator import ako_annotations as ann_keys
from services.translator import (
    gated_members,
    gateway,
    gateway_certs,
    infra,
    ingress,
    ingress_spec,
    l4,
    naming,
    shared_vip,
)
from services.translator.ingress_graph import IngressIndex, file_under

Key = tuple[str, str, str]  # kind, namespace, name
GroupKey = tuple[str, str]  # namespace, shared-VIP key

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
ROUTE_KINDS = gateway.ROUTE_KINDS  # HTTPRoute, TCPRoute, UDPRoute, TLSRoute
L4_ROUTE_KINDS = gateway.L4_ROUTE_KINDS
SOURCE_KINDS = ("Service", "Gateway", "GatewayClass", "Ingress", *ROUTE_KINDS)
RouteKey = tuple[str, str, str]  # kind, namespace, name


def key_of(ref: ObjRef) -> Key:
    return (ref.kind, ref.namespace, ref.name)


def _svc_ref(ns: str, name: str) -> ObjRef:
    return ObjRef(kind="Service", namespace=ns, name=name)


def _group_of(obj: dict[str, Any] | None) -> str:
    return ann_keys.of(obj).get(ann_keys.SHARED_VIP, "").strip()


def _gw_ref(ns: str, name: str) -> ObjRef:
    return ObjRef(kind="Gateway", namespace=ns, name=name)


def _parents(route: dict[str, Any], route_ns: str) -> set[tuple[str, str]]:
    """The (namespace, name) of the Gateways a route's parentRefs name."""
    return {(str(p.get("namespace") or route_ns), str(p.get("name"))) for p in (route.get("spec") or {}).get(
        "parentRefs") or [] if (p.get("kind") or "Gateway") == "Gateway"}


def _backends(route: dict[str, Any], route_ns: str) -> set[tuple[str, str]]:
    return {(str(b.get("namespace") or route_ns), str(b.get("name"))) for rule in (route.get("spec") or {}).get(
        "rules") or [] for b in rule.get("backendRefs") or []}


def _secrets_named(gw: dict[str, Any], gw_ns: str) -> set[tuple[str, str]]:
    """The (namespace, name) of the Secrets a Gateway's listeners' certificateRefs name."""
    return {(str(r.get("namespace") or gw_ns), str(r.get("name") or ""))
            for li in (gw.get("spec") or {}).get("listeners") or []
            for r in ((li.get("tls") or {}).get("certificateRefs") or []) if isinstance(r, dict)}


def _route_ref(key: RouteKey) -> ObjRef:
    return ObjRef(kind=key[0], namespace=key[1], name=key[2])


def _gateway_of(svc: dict[str, Any] | None) -> set[ObjRef]:
    joined = gateway.joined_to(svc) if svc is not None else None
    return {_gw_ref(*joined)} if joined else set()


class Graph:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.objects: dict[Key, dict[str, Any]] = {}
        # (namespace, service) -> names of its EndpointSlices
        self._slices: dict[tuple[str, str], set[str]] = defaultdict(set)
        # (namespace, pod) -> names of the EndpointSlices (same namespace) whose endpoints name it; a gated
        # pod's change re-translates what those slices feed (gated_members.py)
        self._pod_slices: dict[tuple[str, str], set[str]] = defaultdict(set)
        # (namespace, shared-VIP key) -> names of the Services that carry it
        self._groups: dict[GroupKey, set[str]] = defaultdict(set)
        # Gateway (namespace, name) -> (namespace, name) of the Services whose labels join it
        self._joined: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        # A Gateway's whole translation, shared by the Gateway, its Services and its routes until
        # the next change (a flush translates them all from one state).
        self._gateway_memo: dict[tuple[str, str], l4.Translation] = {}
        # Gateway (namespace, name) / backend Service (namespace, name) -> the routes naming it
        self._routes_by_parent: dict[tuple[str, str], set[RouteKey]] = defaultdict(set)
        self._routes_by_backend: dict[tuple[str, str], set[RouteKey]] = defaultdict(set)
        # Gateways (namespace, name) whose routes are all to be recomputed at the next flush
        self._route_fanout: set[tuple[str, str]] = set()
        # Secret (namespace, name) -> the Gateways whose certificateRefs name it
        self._secret_users: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
        # (VS name, object type, object name) -> that object in the tree on the bus: a certificate whose
        # Secret went bad is kept from there (set by the Engine; nothing offline).
        self.previous: Callable[[str, str, str], AviObject | None] = lambda _vs, _t, _n: None
        # Ingresses: what each names and where the last translation placed it; the translation of all
        # of them, shared until the next change (a shard's tree depends on every Ingress on it).
        self.ingresses = IngressIndex()
        self._ingress_memo: ingress.World | None = None
        self._ingress_infra: dict[ObjRef, infra.Infra] = {}  # each Ingress's last good infrastructure
        self._ingress_parsed: dict[tuple[str, str], tuple[dict[str, Any], ingress_spec.Parsed]] = {}

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace, name))

    def upsert(self, ko: KubeObject) -> set[ObjRef]:
        if ko.deleted or ko.obj is None:
            return self.remove(ko.kind, ko.namespace, ko.name)
        key = (ko.kind, ko.namespace, ko.name)
        old = self.objects.get(key)
        self.objects[key] = ko.obj
        self._gateway_memo.clear()
        self._ingress_memo = None
        affected = self._unindex(key, old)
        affected |= self._index(key, ko.obj)
        return affected

    def remove(self, kind: str, namespace: str, name: str) -> set[ObjRef]:
        key = (kind, namespace, name)
        old = self.objects.pop(key, None)
        self._gateway_memo.clear()
        self._ingress_memo = None
        return self._unindex(key, old) if old is not None else set()

    def _service_of_slice(self, obj: dict[str, Any]) -> str | None:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        svc = labels.get(SERVICE_NAME_LABEL)
        return str(svc) if svc else None

    def _group_members(self, ns: str, group: str) -> set[ObjRef]:
        return {_svc_ref(ns, n) for n in self._groups.get((ns, group), ())} if group else set()

    def _services_in(self, namespace: str) -> set[ObjRef]:
        return {_svc_ref(n_ns, n) for (k, n_ns, n) in self.objects if k == "Service" and n_ns == namespace}

    def _services_using(self, setting: str) -> set[ObjRef]:
        """Services whose own or Namespace annotation names the AviInfraSetting (and their groups)."""
        out: set[ObjRef] = set()
        for (k, ns, n), obj in self.objects.items():
            if k == "Service" and infra.wanted_name(obj, self.get("Namespace", "", ns)) == setting:
                out |= {_svc_ref(ns, n)} | self._group_members(ns, _group_of(obj))
        return out

    def _with_groups(self, refs: set[ObjRef]) -> set[ObjRef]:
        out = set(refs)
        for r in refs:
            svc = self.get("Service", r.namespace, r.name)
            out |= self._group_members(r.namespace, _group_of(svc)) | _gateway_of(svc)
        return out

    def _routes_of(self, ns: str, name: str) -> list[tuple[str, dict[str, Any]]]:
        return [(r[0], self.objects[r]) for r in sorted(self._routes_by_parent.get((ns, name), ()))]

    def _gateways_routing_to(self, ns: str, service: str) -> set[ObjRef]:
        """The Gateways of the routes that send to a Service (its endpoints are their pools' members)."""
        return {_gw_ref(*g) for r in self._routes_by_backend.get((ns, service), ())
                for g in _parents(self.objects[r], r[1])}

    def _index_route(self, key: RouteKey, route: dict[str, Any], adding: bool) -> None:
        ns = key[1]
        file_under(self._routes_by_parent, _parents(route, ns), key, adding)
        file_under(self._routes_by_backend, _backends(route, ns), key, adding)

    def _with_dependents(self, key: Key, refs: set[ObjRef], obj: dict[str, Any]) -> set[ObjRef]:
        """With ``refs``, what a Gateway's translation decides: its joined Services and its routes.

        Joined Services always (one leaving frees a listener for another). Routes
        only when the change can alter their status: it depends on their Gateways
        (listeners, class, infrastructure, namespaces, grants) and their backend
        Services, never on other routes, so a route's own change re-translates only
        it and its Gateways.
        """
        kind, ns, name = key
        out = set(refs)
        if kind == "Service":
            out |= {_route_ref(r) for r in self._routes_by_backend.get((ns, name), ())}
        # On an L4 listener one source serves: an L4 route or a joined Service changing may
        # pass the listener to (or take it from) the other routes there.
        takes_listeners = _gateway_of(obj) if kind == "Service" else set()
        for r in refs:
            if r.kind != "Gateway":
                continue
            out |= self._joined_services(r.namespace, r.name)
            # A Secret's change alters its listeners' certificates, never what attaches to them.
            if kind not in ("Service", "EndpointSlice", "Secret", *ROUTE_KINDS) or kind in L4_ROUTE_KINDS \
                    or r in takes_listeners:
                # Expanded once per flush (take_route_fanout): listing a Gateway's routes on every
                # route's arrival would make loading n routes cost n².
                self._route_fanout.add((r.namespace, r.name))
        return out

    def take_route_fanout(self) -> set[ObjRef]:
        """The routes of the Gateways whose change may alter every route's status there, since the last call."""
        gateways, self._route_fanout = self._route_fanout, set()
        return {_route_ref(k) for g in gateways for k in self._routes_by_parent.get(g, ())}

    def _joined_services(self, ns: str, name: str) -> set[ObjRef]:
        return {_svc_ref(*k) for k in self._joined.get((ns, name), ())}

    def _gateways(self, cls: str | None = None) -> set[ObjRef]:
        return {_gw_ref(ns, n) for (k, ns, n), o in self.objects.items()
                if k == "Gateway" and (cls is None or gateway.class_name(o) == cls)}

    def _gateway_api_using(self, setting: str) -> set[ObjRef]:
        """GatewayClasses whose parametersRef names the AviInfraSetting, and their Gateways."""
        classes = {n for (k, _, n), o in self.objects.items()
                   if k == "GatewayClass" and infra.class_parameters(o) == setting}
        return {ObjRef(kind="GatewayClass", name=c) for c in classes} | {
            g for c in classes for g in self._gateways(c)}

    def _index_gateway_api(self, key: Key, obj: dict[str, Any], adding: bool) -> set[ObjRef]:
        """Index (or unindex) a Service's Gateway label; what a Gateway API kind's change touches."""
        kind, ns, name = key
        if kind in ("Service", "EndpointSlice"):
            svc = name if kind == "Service" else self._service_of_slice(obj)
            backing = self._gateways_routing_to(ns, svc) if svc else set()
        if kind == "Service":
            joined = gateway.joined_to(obj)
            if joined and adding:
                self._joined[joined].add((ns, name))
            elif joined:
                self._joined[joined].discard((ns, name))
                if not self._joined[joined]:
                    del self._joined[joined]
            return _gateway_of(obj) | backing
        if kind == "EndpointSlice":
            return backing
        if kind == "Gateway":
            for secret in _secrets_named(obj, ns):
                users = self._secret_users[secret]
                if adding:
                    users.add((ns, name))
                else:
                    users.discard((ns, name))
                    if not users:
                        del self._secret_users[secret]
            return {_gw_ref(ns, name)} | self._joined_services(ns, name)
        if kind == "Secret":
            return {_gw_ref(*g) for g in self._secret_users.get((ns, name), ())}
        if kind in ROUTE_KINDS:
            self._index_route(key, obj, adding)
            return {_route_ref(key)} | {_gw_ref(*g) for g in _parents(obj, ns)}
        if kind == "ReferenceGrant":
            return self._gateways()
        if kind == "GatewayClass":
            return {ObjRef(kind="GatewayClass", name=name)} | self._gateways(name)
        if kind == "Namespace":
            return self._gateways()  # allowedRoutes selectors read Namespace labels
        if kind == infra.KIND:
            return self._gateway_api_using(name)
        return set()

    def _pod_touches(self, ns: str, pod: str) -> set[ObjRef]:
        """What the slices naming a pod feed: indexing a slice again changes nothing and says what it touches."""
        return {r for s in sorted(self._pod_slices.get((ns, pod), ()))
                if (obj := self.objects.get(("EndpointSlice", ns, s))) is not None
                for r in self._index(("EndpointSlice", ns, s), obj)}

    def _index_pods(self, ns: str, name: str, obj: dict[str, Any], adding: bool) -> None:
        for pod in gated_members.pods_of(obj, ns):
            if adding:
                self._pod_slices[pod].add(name)
            else:
                self._pod_slices[pod].discard(name)
                if not self._pod_slices[pod]:
                    del self._pod_slices[pod]

    def _index(self, key: Key, obj: dict[str, Any]) -> set[ObjRef]:
        if key[0] == "Pod":
            return self._pod_touches(key[1], key[2])
        return self._with_dependents(key, self._index_gateway_api(key, obj, True) | self._index_l4(key, obj), obj) \
            | self.ingresses.touched(key, obj, True, self._slice_service(key, obj))

    def _index_l4(self, key: Key, obj: dict[str, Any]) -> set[ObjRef]:
        kind, ns, name = key
        if kind == "Service":
            group = _group_of(obj)
            if group:
                self._groups[(ns, group)].add(name)
            return {_svc_ref(ns, name)} | self._group_members(ns, group)
        if kind == "EndpointSlice":
            self._index_pods(ns, name, obj, True)
            svc = self._service_of_slice(obj)
            if svc:
                self._slices[(ns, svc)].add(name)
                return self._with_groups({_svc_ref(ns, svc)})
        if kind == "Namespace":
            return self._services_in(name)
        if kind == infra.KIND:
            return self._services_using(name)
        return set()

    def _unindex(self, key: Key, old: dict[str, Any] | None) -> set[ObjRef]:
        if old is None:
            return set()
        if key[0] == "Pod":
            return self._pod_touches(key[1], key[2])
        return self._with_dependents(key, self._index_gateway_api(key, old, False) | self._unindex_l4(key, old), old) \
            | self.ingresses.touched(key, old, False, self._slice_service(key, old))

    def _slice_service(self, key: Key, obj: dict[str, Any]) -> str | None:
        return self._service_of_slice(obj) if key[0] == "EndpointSlice" else None

    def _unindex_l4(self, key: Key, old: dict[str, Any]) -> set[ObjRef]:
        kind, ns, name = key
        if kind == "Service":
            group = _group_of(old)
            if group:
                self._groups[(ns, group)].discard(name)
                if not self._groups[(ns, group)]:
                    del self._groups[(ns, group)]
            return {_svc_ref(ns, name)} | self._group_members(ns, group)
        if kind == "EndpointSlice":
            self._index_pods(ns, name, old, False)
            svc = self._service_of_slice(old)
            if svc:
                self._slices[(ns, svc)].discard(name)
                return self._with_groups({_svc_ref(ns, svc)})
        if kind == "Namespace":
            # Services already re-translate through the new Namespace's _index.
            return set()
        if kind == infra.KIND:
            return self._services_using(name)
        return set()

    def slices_of(self, namespace: str, service: str) -> list[dict[str, Any]]:
        """A Service's EndpointSlices, a gated pod's endpoint ready once its containers are (gated_members.py)."""
        names = sorted(self._slices.get((namespace, service), ()))
        return [gated_members.with_gated_ready(o, namespace, self._gated_pod) for n in names
                if (o := self.objects.get(("EndpointSlice", namespace, n))) is not None]

    def _gated_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(("Pod", namespace, name))

    def sources(self) -> set[ObjRef]:
        return {ObjRef(kind=k, namespace=ns, name=n) for (k, ns, n) in self.objects if k in SOURCE_KINDS}

    def namespace_selected(self, namespace: str) -> bool:
        """AKO's namespaceSelector: with one set, only labelled namespaces are handled."""
        ns = self.objects.get(("Namespace", "", namespace))
        return ownership.namespace_selected(((ns or {}).get("metadata") or {}).get("labels"), self.cfg)

    def _ours(self, svc: dict[str, Any] | None, namespace: str) -> bool:
        return svc is not None and l4.handles(svc, self.cfg) and self.namespace_selected(namespace)

    def infra_named(self, name: str, src: ObjRef) -> tuple[infra.Infra | None, list[Problem]]:
        return infra.resolve(name, self.get(infra.KIND, "", name) if name else None, self.cfg, src)

    def translate(self, src: ObjRef) -> l4.Translation:
        """Desired trees and problems of one source; empty when it is gone or not ours."""
        if src.kind == "GatewayClass":
            return self._gateway_class(src)
        if src.kind == "Ingress":
            return self._ingress(src)
        if src.kind in ROUTE_KINDS:
            return self._route(src)
        if src.kind == "Gateway":
            full = self._gateway(src.namespace, src.name)
            return l4.Translation(trees=list(full.trees), problems=[p for p in full.problems if p.source == src],
                                  statuses=dict(full.statuses))
        if src.kind != "Service":
            return l4.Translation()
        svc = self.objects.get(key_of(src))
        if svc is not None and self._joins(svc, src.namespace):
            return self._joined_service(src, svc)
        if svc is None or not self._ours(svc, src.namespace):
            return l4.Translation()
        ann = ann_keys.of(svc)
        warnings = ann_keys.unknown_key_warnings(src, ann)
        group, problems = ann_keys.shared_vip_key(src, ann)
        if problems:
            return l4.Translation(problems=problems + warnings)
        namespace = self.get("Namespace", "", src.namespace)
        if group:
            members = [
                shared_vip.GroupMember(obj, self.slices_of(src.namespace, n), infra.wanted_name(obj, namespace))
                for n in sorted(self._groups.get((src.namespace, group), ()))
                if self._ours(obj := self.objects[("Service", src.namespace, n)], src.namespace)
            ]
            full = shared_vip.translate_group(src.namespace, group, members, self.cfg, self.infra_named,
                                              self.cfg.tenant)
            result = l4.Translation(trees=full.trees if any(src in t.sources for t in full.trees) else [],
                                    problems=[p for p in full.problems if p.source == src])
        else:
            chosen, problems = self.infra_named(infra.wanted_name(svc, namespace), src)
            if chosen is None:
                return l4.Translation(problems=problems + warnings)
            result = l4.translate_service(svc, self.slices_of(src.namespace, src.name), self.cfg, chosen)
        result.problems += warnings + self._shortened(src, result)
        return result

    def _shortened(self, src: ObjRef, result: l4.Translation) -> list[Problem]:
        names = sorted({o.name for t in result.trees for o in t.objects if naming.shortened(o.name, self.cfg.cluster)})
        if not names:
            return []
        return [Problem(source=src, reason="NameShortened", severity=Severity.WARNING, message=(
            f"{len(names)} controller object name(s) would exceed {naming.AVI_NAME_MAX} characters and are "
            f"named <cluster>--<sha1 of the full name>, as AKO encodes names: {', '.join(names)}"))]

    # -- Ingress -----------------------------------------------------------------------
    def _ingress(self, src: ObjRef) -> l4.Translation:
        """The trees an Ingress has a host in (shared with the other Ingresses there) and its problems."""
        if self._ingress_memo is None:
            self._ingress_memo = ingress.translate_all(self._ingress_inputs(), self.cfg)
            self.ingresses.placed(self._ingress_memo.placed)
        trees, problems = self._ingress_memo.result(src)
        return l4.Translation(trees=trees, problems=problems)

    def _ingress_inputs(self) -> ingress.Inputs:
        def service(ns: str, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
            svc = self.get("Service", ns, name)
            return (svc, self.slices_of(ns, name)) if svc is not None else None

        return ingress.Inputs(
            ingresses=[(ns, self.objects[("Ingress", ns, n)]) for ns, n in sorted(self.ingresses.keys)],
            classes=[self.objects[("IngressClass", "", n)] for n in sorted(self.ingresses.classes)],
            namespace=lambda ns: self.get("Namespace", "", ns), selected=self.namespace_selected,
            infra_named=self.infra_named, service=service,
            secret=lambda ns, name: self.get("Secret", ns, name), previous=self.previous,
            last_infra=self._ingress_infra, parsed=self._ingress_parsed)

    # -- Gateway API -------------------------------------------------------------------
    def _joins(self, svc: dict[str, Any], namespace: str) -> bool:
        """A labelled Service joins its Gateway instead of having its own VS (unless another LB class owns it)."""
        if gateway.joined_to(svc) is None or not self.namespace_selected(namespace):
            return False
        return (svc.get("spec") or {}).get("type") != "LoadBalancer" or l4.handles(svc, self.cfg)

    def _class_of(self, gw: dict[str, Any]) -> dict[str, Any] | None:
        cls = self.get("GatewayClass", "", gateway.class_name(gw))
        return cls if gateway.ours(cls) else None

    def _gateway_class(self, src: ObjRef) -> l4.Translation:
        cls = self.get("GatewayClass", "", src.name)
        if cls is None or not gateway.ours(cls):
            return l4.Translation()
        _, problems = self.infra_named(infra.class_parameters(cls), src)
        return l4.Translation(statuses={src: gateway.class_status(cls, problems)})

    def _gateway(self, ns: str, name: str) -> l4.Translation:
        """The whole Gateway: its tree and status, and the problems of the Gateway and of every joined Service.

        Shared (memoised): callers copy what they hand on.
        """
        if (ns, name) not in self._gateway_memo:
            self._gateway_memo[(ns, name)] = self._translate_gateway(ns, name)
        return self._gateway_memo[(ns, name)]

    def _translate_gateway(self, ns: str, name: str) -> l4.Translation:
        gw = self.get("Gateway", ns, name)
        cls = self._class_of(gw) if gw is not None else None
        if gw is None or cls is None or not self.namespace_selected(ns):
            return l4.Translation()
        src = _gw_ref(ns, name)
        chosen, problems = self.infra_named(infra.wanted_name(gw, self.get("Namespace", "", ns), cls), src)
        joined = []
        for s_ns, s_name in sorted(self._joined.get((ns, name), ())):
            svc = self.objects[("Service", s_ns, s_name)]
            if self._joins(svc, s_ns):
                labels = ((self.get("Namespace", "", s_ns) or {}).get("metadata") or {}).get("labels") or {}
                joined.append(gateway.Joined(svc, self.slices_of(s_ns, s_name), dict(labels)))
        vs_name = naming.gateway_vs(self.cfg.cluster, ns, name)
        certs = gateway_certs.CertInputs(
            secrets=lambda s_ns, s_name: self.get("Secret", s_ns, s_name),
            previous=lambda obj_name: self.previous(vs_name, "sslkeyandcertificate", obj_name))
        return gateway.translate_gateway(gw, chosen, problems, joined, self.cfg, self.cfg.tenant,
                                         self._route_inputs(ns, name), certs)

    def _route_inputs(self, ns: str, name: str) -> gateway.RouteInputs:
        def labels(n: str) -> dict[str, str]:
            return dict(((self.get("Namespace", "", n) or {}).get("metadata") or {}).get("labels") or {})

        def service(s_ns: str, s_name: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
            svc = self.get("Service", s_ns, s_name)
            return (svc, self.slices_of(s_ns, s_name)) if svc is not None else None

        grants = [o for (k, _, _), o in sorted(self.objects.items(), key=lambda x: x[0]) if k == "ReferenceGrant"]
        return gateway.RouteInputs(self._routes_of(ns, name), labels, service, grants)

    def _route(self, src: ObjRef) -> l4.Translation:
        """A route's standing with each of albus's Gateways it names (only those; others are not ours)."""
        route = self.get(src.kind, src.namespace, src.name)
        if route is None:
            return l4.Translation()
        parents = []
        for g_ns, g_name in sorted(_parents(route, src.namespace)):
            st = self._gateway(g_ns, g_name).statuses.get(src)
            parents += list(st.parents) if st is not None else []
        if not parents:
            return l4.Translation()
        gen = int((route.get("metadata") or {}).get("generation") or 0)
        return l4.Translation(statuses={src: GatewayStatus(generation=gen, parents=tuple(parents))})

    def _joined_service(self, src: ObjRef, svc: dict[str, Any]) -> l4.Translation:
        """A joined Service's share of its Gateway's translation: the tree if it serves in it, its problems."""
        gw_ns, gw_name = gateway.joined_to(svc) or ("", "")
        gw = self.get("Gateway", gw_ns, gw_name)
        if gw is None or self._class_of(gw) is None:
            why = "does not exist" if gw is None else f"is not of a GatewayClass of {gateway.CONTROLLER}"
            return l4.Translation(release=True, problems=[Problem(
                source=src, reason="GatewayNotFound",
                message=f"Gateway {gw_ns}/{gw_name} (labels {gateway.NAME_LABEL}, {gateway.NAMESPACE_LABEL}) {why}")])
        full = self._gateway(gw_ns, gw_name)
        return l4.Translation(trees=[t for t in full.trees if src in t.sources],
                              problems=[p for p in full.problems if p.source == src])
