"""Every Ingress of albus's classes at once (pure): hosts merged, placed on VSes, each VS's tree.

A shard's tree depends on every Ingress placed on it, so the Ingresses are
placed together (the graph memoises the result per change; each Ingress's
parse is kept while the object is the same), and each Ingress then takes
the trees it has a host in, built on first demand, and its own problems.
Bad input is a problem on the Ingress concerned, never on the others:

* no Service, or no such Service port: ``ServiceNotFound`` /
  ``ServicePortNotFound``; that path answers 501 until it resolves;
* a TLS Secret missing, unusable or expired: ``InvalidTLSSecret``; a host
  that had a certificate keeps it, one that never had one is served on the
  parent as plain HTTP (its paths, no redirect) until the Secret is good;
* an AviInfraSetting missing or not accepted: the Ingress stays where the
  last good setting put it (remembered by the graph for as long as the
  translator runs), or is not placed if it never had one;
* an unknown shard size: the Ingress is not placed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.common.config import Config
from services.common.contracts import AviObject, ObjRef, Problem, VsTree
from services.translator import (
    gateway,
    gateway_certs,
    infra,
    ingress_hosts,
    ingress_shards,
    ingress_spec,
    ingress_tree,
    l4,
    naming,
    vip,
)
from services.translator.ingress_class import class_for
from services.translator.refs import markers

Obj = dict[str, Any]
ServiceLookup = Callable[[str, str], tuple[Obj, list[Obj]] | None]  # (ns, name) -> Service and its slices
InfraLookup = Callable[[str, ObjRef], tuple[infra.Infra | None, list[Problem]]]


@dataclass(frozen=True)
class Inputs:
    """What translating Ingresses reads from the graph (and, for kept certificates, the bus)."""

    ingresses: list[tuple[str, Obj]]  # (namespace, Ingress), any order
    classes: list[Obj]
    namespace: Callable[[str], Obj | None]
    selected: Callable[[str], bool]  # AKO's namespaceSelector
    infra_named: InfraLookup
    service: ServiceLookup
    secret: Callable[[str, str], Obj | None]
    previous: Callable[[str, str, str], AviObject | None]  # (vs, type, name) -> object of the tree on the bus
    # Ingress -> the infrastructure it was last placed with; updated here (the graph keeps it between rounds)
    last_infra: dict[ObjRef, infra.Infra] = field(default_factory=dict)
    # (namespace, name) -> the Ingress object last parsed and what it parsed to (kept by the graph)
    parsed: dict[tuple[str, str], tuple[Obj, ingress_spec.Parsed]] = field(default_factory=dict)
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


@dataclass
class _Vs:
    infra: infra.Infra
    dedicated: bool
    hosts: list[ingress_hosts.HostPlan] = field(default_factory=list)


def _port(svc: Obj, want: int | str) -> Obj | None:
    for p in (svc.get("spec") or {}).get("ports") or []:
        if (p.get("port") == want) if isinstance(want, int) else (p.get("name") == want):
            return dict(p)
    return None


class World:
    """Where every Ingress is placed; each VS's tree built when an Ingress on it is first asked about."""

    def __init__(self, inp: Inputs, cfg: Config) -> None:
        self.inp = inp
        self.cfg = cfg
        self.common = l4.common_fields(cfg, cfg.tenant)
        self.problems: dict[ObjRef, list[Problem]] = defaultdict(list)
        self.placed: dict[ObjRef, set[str]] = defaultdict(set)  # Ingress -> its VS names
        self._vses: dict[str, _Vs] = {}
        self._trees: dict[str, VsTree | None] = {}

    def result(self, ref: ObjRef) -> tuple[list[VsTree], list[Problem]]:
        """The trees ``ref`` has a host in and its problems (those of building its VSes included)."""
        trees = [t for n in sorted(self.placed.get(ref, ())) if (t := self._tree_of(n)) is not None]
        return trees, sorted(self.problems.get(ref, ()), key=lambda p: (p.reason, p.message))

    def _tree_of(self, vs_name: str) -> VsTree | None:
        if vs_name not in self._trees:
            self._trees[vs_name] = self.tree(vs_name, self._vses[vs_name])
        return self._trees[vs_name]

    def problem(self, p: Problem) -> None:
        self.problems[p.source].append(p)

    def pool(self, vs: _Vs, rule_host: str, path: str, owner: ingress_spec.Owner, b: ingress_spec.Backend,
             pools: dict[str, AviObject]) -> str | None:
        found = self.inp.service(owner.namespace, b.service)
        what = f"host {rule_host} path {path}: Service {owner.namespace}/{b.service}"
        if found is None:
            self.problem(Problem(source=owner.ref, reason="ServiceNotFound", message=f"{what} does not exist"))
            return None
        svc, slices = found
        port = _port(svc, b.port)
        if port is None:
            self.problem(Problem(source=owner.ref, reason="ServicePortNotFound",
                                 message=f"{what} has no port {b.port}"))
            return None
        name = naming.ingress_pool(self.cfg.cluster, vs.infra.name, rule_host, path, owner.namespace, owner.name,
                                   b.service, port["port"])
        marks = markers(self.cfg.cluster, Namespace=owner.namespace, Host=rule_host, Path=path,
                        IngressName=owner.name, ServiceName=b.service, InfrasettingName=vs.infra.name)
        if name not in pools:
            pools[name] = l4.pool_object(l4.PortPlan(b.service, port, slices, name, marks), self.common)
        return name

    def certificate(self, vs_name: str, vs: _Vs, plan: ingress_hosts.HostPlan) -> AviObject | None:
        if plan.tls is None:
            return None
        owner, secret = plan.tls
        name = naming.ingress_sni_vs(self.cfg.cluster, vs.infra.name, plan.host)
        cert, why = gateway_certs.usable(self.inp.secret(owner.namespace, secret), self.inp.now())
        if cert is not None:
            return gateway_certs.keycert(name, cert, self.cfg, self.cfg.tenant, Host=plan.host,
                                         InfrasettingName=vs.infra.name)
        had = gateway_certs.kept(gateway_certs.CertInputs(
            secrets=self.inp.secret, previous=lambda n: self.inp.previous(vs_name, "sslkeyandcertificate", n)),
            name, self.cfg.tenant)
        then = "it keeps the certificate it had" if had is not None else \
            "it is served as plain HTTP, without TLS, until the Secret is usable"
        self.problem(Problem(source=owner.ref, reason="InvalidTLSSecret",
                             message=f"host {plan.host}: TLS Secret {owner.namespace}/{secret} {why}; {then}"))
        return had

    def host_routes(self, vs_name: str, vs: _Vs, plan: ingress_hosts.HostPlan, pools: dict[str, AviObject]
                    ) -> ingress_tree.HostRoutes:
        routes = [ingress_tree.Route(p.path, p.exact, self.pool(vs, plan.host, p.path, p.owner, p.backend, pools))
                  for p in plan.ordered_paths()]
        default = None
        if plan.default is not None:
            default = self.pool(vs, plan.host, "", plan.default[0], plan.default[1], pools)
        return ingress_tree.HostRoutes(plan.host, routes, default, self.certificate(vs_name, vs, plan),
                                       plan.redirect, vs.infra.name)

    def tree(self, vs_name: str, vs: _Vs) -> VsTree | None:
        owners = sorted({o for h in vs.hosts for o in h.owners})
        sources = tuple(o.ref for o in owners)
        the_vip, problems = vip.build_for([], gateway.auto_families(vs.infra), vs.infra, sources[0])
        if the_vip is None:
            for o in owners:
                for p in problems:
                    self.problem(p.model_copy(update={"source": o.ref}))
            return None
        pools: dict[str, AviObject] = {}
        hosts = [self.host_routes(vs_name, vs, h, pools) for h in vs.hosts]
        return ingress_tree.build(vs_name, vs.dedicated, hosts, list(pools.values()), vs.infra, the_vip, sources,
                                  self.cfg, self.cfg.tenant)

    def _parse(self, ing: Obj, ns: str) -> ingress_spec.Parsed:
        key = (ns, str((ing.get("metadata") or {}).get("name")))
        hit = self.inp.parsed.get(key)
        if hit is None or hit[0] is not ing:  # the graph replaces an object on every change
            hit = (ing, ingress_spec.parse(ing, ns))
            self.inp.parsed[key] = hit
        return hit[1]

    def place(self) -> World:
        by_infra: dict[str, tuple[infra.Infra, list[ingress_spec.Parsed]]] = {}
        seen: set[ObjRef] = set()
        for ns, ing in sorted(self.inp.ingresses, key=lambda x: (x[0], str((x[1].get("metadata") or {}).get("name")))):
            cls = class_for(ing, self.inp.classes)
            if cls is None or not self.inp.selected(ns):
                continue
            parsed = self._parse(ing, ns)
            for p in parsed.problems:
                self.problem(p)
            ref = parsed.owner.ref
            chosen, problems = self.inp.infra_named(infra.wanted_name(ing, self.inp.namespace(ns), cls), ref)
            for p in problems:
                self.problem(p)
            # A setting gone bad (or only being checked again) never takes working hosts off their VSes.
            chosen = chosen or self.inp.last_infra.get(ref)
            seen.add(ref)
            if chosen is not None:
                self.inp.last_infra[ref] = chosen
                by_infra.setdefault(chosen.name, (chosen, []))[1].append(parsed)
        for gone in set(self.inp.last_infra) - seen:
            del self.inp.last_infra[gone]
        for key in set(self.inp.parsed) - {(r.namespace, r.name) for r in seen}:
            del self.inp.parsed[key]
        vses: dict[str, _Vs] = {}
        for chosen, parsed_list in by_infra.values():
            hosts, problems = ingress_hosts.merge(parsed_list)
            for p in problems:
                self.problem(p)
            for host, plan in sorted(hosts.items()):
                where = ingress_shards.place(self.cfg.cluster, chosen.name, chosen.shard_size, host)
                if where is None:
                    for o in sorted(plan.owners):
                        self.problem(Problem(source=o.ref, reason="InvalidShardSize", message=(
                            f"shard size {chosen.shard_size!r} is none of {', '.join(ingress_shards.SHARD_SIZES)}")))
                    continue
                vses.setdefault(where.vs_name, _Vs(chosen, where.dedicated)).hosts.append(plan)
                for o in plan.owners:
                    self.placed[o.ref].add(where.vs_name)
        self._vses = vses
        return self


def translate_all(inp: Inputs, cfg: Config) -> World:
    """Place every Ingress (cheap); trees are built per VS by :meth:`World.result`."""
    return World(inp, cfg).place()
