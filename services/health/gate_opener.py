"""Opening pods' readiness gates once their members are up, and saying so when a pod missed its gate.

After a Service's status is brought in line, each pod of it whose member
the controller reports up (``Readiness.up_pods``) is read once: a gated pod
whose gate is not open gets ``albus.io/LoadBalancerMemberUp=True`` (a patch
of ``pods/status``); a pod that should have been gated but was not — it was
created while the webhook was unreachable, and the API server admitted it
(failure policy Ignore) — gets a Warning Event ``ReadinessGateMissing``.
That Event is how a fail-open shows: the API server itself records none.

A pod is read once per name while this process runs (a pod recreated
under the same name, as a StatefulSet does, is not read again until
health restarts: not handled).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from services.common.kube import rfc3339
from services.health import readiness_gate
from services.health.desired import SvcKey
from services.health.kube_writes import ServiceWriter
from services.health.lb_ready import Readiness
from services.health.service_status import EventSpec


class GateOpener:
    def __init__(self, writer: ServiceWriter, selectors: readiness_gate.Selectors,
                 handled: Callable[[SvcKey], bool]) -> None:
        self.writer = writer
        self.selectors = selectors
        self.handled = handled
        self._done: set[str] = set()  # pods ("ns/name") read and dealt with
        self.opened = 0
        self.missing = 0

    def mutate(self, pod: dict[str, object], namespace: str) -> list[dict[str, object]]:
        """The webhook's decision for a pod being created."""
        return readiness_gate.mutation(pod, namespace, self.selectors, self.handled)

    async def open(self, key: SvcKey, ready: Readiness) -> None:
        for pod_ref in sorted(ready.up_pods - self._done):
            ns, name = pod_ref.split("/", 1)
            pod = await asyncio.to_thread(self.writer.get_pod, ns, name)
            if pod is None:
                continue
            if readiness_gate.gated(pod):
                if not readiness_gate.gate_open(pod):
                    msg = f"its member is up on the load balancer of Service {key[0]}/{key[1]}"
                    await asyncio.to_thread(self.writer.patch_pod_status, ns, name,
                                            readiness_gate.open_patch(rfc3339(), msg))
                    self.opened += 1
            elif self.mutate(pod, ns):
                labels = await asyncio.to_thread(self.writer.namespace_labels, ns)
                if labels.get(readiness_gate.OPT_IN_LABEL) == readiness_gate.OPT_IN_VALUE:
                    self.missing += 1
                    await asyncio.to_thread(self.writer.event, pod, EventSpec(
                        "Warning", "ReadinessGateMissing", "Admit",
                        f"pod {pod_ref} has no {readiness_gate.GATE_TYPE} readiness gate although namespace {ns} "
                        f"asks for it: it was created while albus's webhook could not be reached (failure policy "
                        f"Ignore), so a rollout does not wait for the load balancer for it"), api_version="v1",
                        kind="Pod")
            self._done.add(pod_ref)
