"""Several Ingresses on one host merged into one host plan (pure), oldest Ingress first.

Ingresses naming the same host add their paths together. A (host, path,
pathType) claimed twice goes to the older Ingress (creation time, then
namespace and name, so the outcome never depends on arrival order); the
later one gets ``DuplicateHostPath`` naming the winner. The same holds for
the host's default backend and its TLS Secret (the oldest Ingress that gives
one decides; a different Secret from a later Ingress is a warning).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common.contracts import Problem, Severity
from services.translator.ingress_spec import Backend, Owner, Parsed, PathRule


@dataclass
class HostPlan:
    host: str
    paths: list[PathRule] = field(default_factory=list)
    default: tuple[Owner, Backend] | None = None
    tls: tuple[Owner, str] | None = None  # the Ingress that gives the Secret, its name
    redirect: bool = True  # as the Ingress giving the TLS Secret says
    owners: set[Owner] = field(default_factory=set)

    def ordered_paths(self) -> list[PathRule]:
        """Most specific first: exact paths, then longer prefixes (Kubernetes' precedence)."""
        return sorted(self.paths, key=lambda p: (not p.exact, -len(p.path.rstrip("/")), p.path, p.owner))


def _name(o: Owner) -> str:
    return f"{o.namespace}/{o.name}"


def merge(ingresses: list[Parsed]) -> tuple[dict[str, HostPlan], list[Problem]]:
    hosts: dict[str, HostPlan] = {}
    problems: list[Problem] = []
    claimed: dict[tuple[str, str, bool], PathRule] = {}
    for ing in sorted(ingresses, key=lambda p: p.owner):
        o = ing.owner
        for host in ing.hosts:
            plan = hosts.setdefault(host, HostPlan(host))
            plan.owners.add(o)
            if ing.default is not None:
                if plan.default is None:
                    plan.default = (o, ing.default)
                elif plan.default[0] != o:
                    problems.append(Problem(source=o.ref, reason="DuplicateHostPath", message=(
                        f"host {host}: the default backend is already given by the older Ingress "
                        f"{_name(plan.default[0])}; this one's is not used there")))
            secret = ing.tls.get(host)
            if secret is not None:
                if plan.tls is None:
                    plan.tls, plan.redirect = (o, secret), ing.redirect
                elif plan.tls[1] != secret:
                    problems.append(Problem(source=o.ref, reason="ConflictingTLSSecret", severity=Severity.WARNING,
                                            message=(f"host {host}: serves the Secret {plan.tls[1]} of the older "
                                                     f"Ingress {_name(plan.tls[0])}, not {secret}")))
        for p in ing.paths:
            first = claimed.setdefault(p.key, p)
            if first is p:
                hosts[p.host].paths.append(p)
            elif first.owner != o:
                kind = "Exact" if p.exact else "Prefix"
                problems.append(Problem(source=o.ref, reason="DuplicateHostPath", message=(
                    f"host {p.host} path {p.path} ({kind}) is already served by the older Ingress "
                    f"{_name(first.owner)}; this one's backend {p.backend.service} gets no traffic there")))
    return hosts, problems
