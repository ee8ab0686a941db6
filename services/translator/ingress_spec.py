"""One Ingress read into what routing needs (pure): host/path rules, its default backend, TLS hosts.

* ``pathType`` ``Exact`` is an exact match; ``Prefix`` and
  ``ImplementationSpecific`` are element-wise prefixes (``/a`` matches ``/a``
  and ``/a/b``, never ``/ab``); a missing path is ``/``.
* Rules need a host: AKO places hosts on shards, and a rule without one has
  nowhere to go (a warning names it). Wildcard hosts are not served.
* ``spec.tls[]`` entries name the Secret (in the Ingress's namespace) for
  their hosts; ``spec.defaultBackend`` serves whatever the Ingress's own paths
  do not match on its hosts.
* ``albus.io/http-redirect: "false"`` keeps TLS hosts answering plain HTTP
  instead of redirecting it to HTTPS (AKO's default, on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.common.contracts import ObjRef, Problem, Severity

REDIRECT_ANNOTATION = "albus.io/http-redirect"

Obj = dict[str, Any]


@dataclass(frozen=True, order=True)
class Owner:
    """An Ingress, ordered oldest first (creation time, then namespace and name): who wins a conflict."""

    created: str
    namespace: str
    name: str

    @property
    def ref(self) -> ObjRef:
        return ObjRef(kind="Ingress", namespace=self.namespace, name=self.name)


@dataclass(frozen=True)
class Backend:
    service: str
    port: int | str  # a number, or a Service port's name


@dataclass(frozen=True)
class PathRule:
    host: str
    path: str
    exact: bool
    backend: Backend
    owner: Owner

    @property
    def key(self) -> tuple[str, str, bool]:
        return self.host, self.path, self.exact


@dataclass
class Parsed:
    owner: Owner
    hosts: list[str] = field(default_factory=list)  # every host the Ingress serves, in spec order
    paths: list[PathRule] = field(default_factory=list)
    default: Backend | None = None
    tls: dict[str, str] = field(default_factory=dict)  # host -> Secret name
    redirect: bool = True
    problems: list[Problem] = field(default_factory=list)


def owner_of(ing: Obj, namespace: str) -> Owner:
    meta = ing.get("metadata") or {}
    return Owner(str(meta.get("creationTimestamp") or ""), namespace, str(meta.get("name") or ""))


def _backend(raw: Obj | None, where: str, src: ObjRef, problems: list[Problem]) -> Backend | None:
    svc = (raw or {}).get("service") or {}
    port = svc.get("port") or {}
    value = port.get("number") or port.get("name")
    if not svc.get("name") or not value:
        what = "a resource backend" if (raw or {}).get("resource") else "a backend without a Service name and port"
        problems.append(Problem(source=src, reason="UnsupportedBackend",
                                message=f"{where}: {what} is not supported; it gets no traffic"))
        return None
    return Backend(str(svc["name"]), int(value) if isinstance(value, int) else str(value))


def _add_host(out: Parsed, host: str) -> None:
    if host not in out.hosts:
        out.hosts.append(host)


def parse(ing: Obj, namespace: str) -> Parsed:
    owner = owner_of(ing, namespace)
    src = owner.ref
    spec = ing.get("spec") or {}
    ann = (ing.get("metadata") or {}).get("annotations") or {}
    out = Parsed(owner=owner, redirect=str(ann.get(REDIRECT_ANNOTATION, "true")).lower() != "false")
    for i, rule in enumerate(spec.get("rules") or []):
        host = str(rule.get("host") or "").lower()
        if not host or host.startswith("*"):
            why = "has no host" if not host else f"has the wildcard host {host}"
            out.problems.append(Problem(source=src, reason="UnsupportedHost", severity=Severity.WARNING,
                                        message=f"spec.rules[{i}] {why}, which albus does not place; it is ignored"))
            continue
        _add_host(out, host)
        for j, p in enumerate((rule.get("http") or {}).get("paths") or []):
            backend = _backend(p.get("backend"), f"spec.rules[{i}].http.paths[{j}]", src, out.problems)
            if backend is not None:
                path = str(p.get("path") or "/")
                out.paths.append(PathRule(host, path, p.get("pathType") == "Exact", backend, owner))
    if spec.get("defaultBackend"):
        out.default = _backend(spec["defaultBackend"], "spec.defaultBackend", src, out.problems)
    for i, tls in enumerate(spec.get("tls") or []):
        secret = str(tls.get("secretName") or "")
        if not secret:
            out.problems.append(Problem(source=src, reason="UnsupportedTLS", severity=Severity.WARNING,
                                        message=f"spec.tls[{i}] names no Secret; its hosts are served as plain HTTP"))
            continue
        for host in (str(h).lower() for h in tls.get("hosts") or []):
            if host in out.hosts:
                out.tls.setdefault(host, secret)
    if not out.hosts and (out.default is not None or spec.get("rules")):
        out.problems.append(Problem(source=src, reason="UnsupportedHost", message=(
            "the Ingress names no host: albus places hosts on shared virtual services, so it serves nothing")))
    return out
