"""Which pod stands behind a pool member: the Service's EndpointSlices, by address, through ``targetRef``.

Pure. Fed the EndpointSlices the watcher publishes (trimmed, ``targetRef``
kept: ``services/watcher/trim.py``). A member is matched by its IP among
the slices of the Service it serves: pod IPs are unique in a cluster, and a
member's port is the endpoint's port, so the IP alone names the pod.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.contracts import KubeObject
from services.health.desired import SvcKey

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class Endpoint:
    pod: str  # "namespace/name", "" when the endpoint is not a pod
    ready: bool


class EndpointPods:
    def __init__(self) -> None:
        self._slices: dict[tuple[str, str], tuple[SvcKey, dict[str, Endpoint]]] = {}  # (ns, slice) ->
        self._by_service: dict[SvcKey, set[tuple[str, str]]] = {}

    def set_slice(self, ko: KubeObject) -> set[SvcKey]:
        """Record an EndpointSlice (or its tombstone); return the Services it concerns."""
        key = (ko.namespace, ko.name)
        touched: set[SvcKey] = set()
        old = self._slices.pop(key, None)
        if old is not None:
            touched.add(old[0])
            self._by_service.get(old[0], set()).discard(key)
        if ko.deleted or ko.obj is None:
            return touched
        meta = ko.obj.get("metadata") or {}
        svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not svc:
            return touched
        eps: dict[str, Endpoint] = {}
        for ep in ko.obj.get("endpoints") or ():
            ref = ep.get("targetRef") or {}
            pod = f"{ref.get('namespace') or ko.namespace}/{ref['name']}" if ref.get("kind") == "Pod" and ref.get(
                "name") else ""
            ready = (ep.get("conditions") or {}).get("ready") is not False
            for ip in ep.get("addresses") or ():
                eps[str(ip)] = Endpoint(pod, ready)
        skey = (ko.namespace, str(svc))
        self._slices[key] = (skey, eps)
        self._by_service.setdefault(skey, set()).add(key)
        touched.add(skey)
        return touched

    def endpoints(self, service: SvcKey) -> dict[str, Endpoint]:
        """The Service's endpoints by IP."""
        out: dict[str, Endpoint] = {}
        for key in sorted(self._by_service.get(service, ())):
            for ip, ep in self._slices[key][1].items():
                # Duplicates across slices (during a slice split): ready wins.
                if ip not in out or (ep.ready and not out[ip].ready):
                    out[ip] = ep
        return out

    def services_of_pod(self, pod: str) -> set[SvcKey]:
        return {skey for skey, eps in self._slices.values() if any(e.pod == pod for e in eps.values())}
