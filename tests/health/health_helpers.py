"""Helpers of the health tests: waiting on conditions, admin calls, outcomes to publish."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml

from albus.controlplane.launcher import ControlPlane
from services.common import subjects
from services.common.bus import Bus
from services.common.config import Config
from services.common.contracts import ApplyOutcome, ObjRef, Problem, SourceReport, VsTree
from services.health.reconciler import HealthReconciler

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac" / "clusterrole.yaml"
CONDITION = "albus.io/LoadBalancerProgrammed"
T = TypeVar("T")


def cluster_role(name: str) -> dict[str, Any]:
    for doc in yaml.safe_load_all(RBAC.read_text()):
        if doc and doc.get("kind") == "ClusterRole" and doc["metadata"]["name"] == name:
            return dict(doc)
    raise LookupError(f"no ClusterRole {name} in {RBAC}")


async def wait_for(probe: Callable[[], Awaitable[T | None]], timeout: float, what: str) -> T:
    """Await ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        last = await probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(0.1)


@asynccontextmanager
async def reconciler(api: Any, bus: Bus, cluster: str, cfg: Config | None = None) -> AsyncIterator[HealthReconciler]:
    """Health's Service loop alone, running until the block ends."""
    stop = asyncio.Event()
    r = HealthReconciler(api, bus, cluster, "health-test", cfg=cfg)
    task = asyncio.create_task(r.run(stop))
    try:
        yield r
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


class Kube:
    """Admin requests to the control plane, off the event loop."""

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self.cp.request_json, method, path, body, **kw)

    async def create_lb_service(self, ns: str, name: str) -> dict[str, Any]:
        return await self.call("POST", f"/api/v1/namespaces/{ns}/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
        })

    async def service(self, ns: str, name: str) -> dict[str, Any]:
        return await self.call("GET", f"/api/v1/namespaces/{ns}/services/{name}")

    async def listed_service(self, ns: str, name: str) -> dict[str, Any]:
        """The Service read with a LIST (so a test counting the API server's GETs of Services adds none)."""
        items = (await self.call("GET", f"/api/v1/namespaces/{ns}/services?fieldSelector=metadata.name%3D{name}"))
        [svc] = items["items"]
        return dict(svc)

    async def events(self, ns: str, name: str) -> list[dict[str, Any]]:
        items = (await self.call("GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events"))["items"]
        return [e for e in items if e.get("regarding", {}).get("name") == name]


def ips(svc: dict[str, Any]) -> list[str]:
    return [i.get("ip") for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]


def condition(svc: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in (svc.get("status") or {}).get("conditions") or [] if c["type"] == CONDITION), None)


class Publisher:
    """Publishes what the syncer and translator would, for one cluster."""

    def __init__(self, bus: Bus, cluster: str) -> None:
        self.bus = bus
        self.cluster = cluster

    async def outcome(
        self, ns: str, svc: str, *, ok: bool = True, vips: tuple[str, ...] = (), error: str | None = None,
        deleted: bool = False,
    ) -> None:
        vs = f"{self.cluster}--{ns}-{svc}"
        msg = ApplyOutcome(
            cluster=self.cluster, tenant="admin", vs_name=vs, checksum=f"{ok}{vips}{deleted}", ok=ok,
            deleted=deleted, error=error, vips=vips, sources=(ObjRef(kind="Service", namespace=ns, name=svc),),
        )
        await self.bus.publish(subjects.outcome(self.cluster, "admin", vs), msg)

    async def tree(self, ns: str, svc: str, *, deleted: bool = False) -> None:
        """The translator's tree for the Service (no objects: health reads only whom it serves)."""
        vs = f"{self.cluster}--{ns}-{svc}"
        sources = () if deleted else (ObjRef(kind="Service", namespace=ns, name=svc),)
        msg = VsTree(cluster=self.cluster, tenant="admin", vs_name=vs, deleted=deleted, sources=sources)
        await self.bus.publish(subjects.avi_tree(self.cluster, "admin", vs), msg.with_checksum())

    async def lose_outcome(self, ns: str, svc: str) -> None:
        """Purge the Service's outcome from the stream, as a stream lost with NATS's data would."""
        await self.bus.js.purge_stream(subjects.STREAM_OUTCOME,
                                       subject=subjects.outcome(self.cluster, "admin", f"{self.cluster}--{ns}-{svc}"))

    async def report(self, ns: str, svc: str, *problems: tuple[str, str]) -> None:
        ref = ObjRef(kind="Service", namespace=ns, name=svc)
        msg = SourceReport(
            cluster=self.cluster, source=ref,
            problems=tuple(Problem(source=ref, reason=r, message=m) for r, m in problems),
        )
        await self.bus.publish(subjects.report(self.cluster, "Service", ns, svc), msg)


def merge_status_patch(svc: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """What the API server stores after a merge patch of status (enough for these fields)."""
    status = dict(svc.get("status") or {})
    for k, v in patch["status"].items():
        if v is None or v == {"ingress": None}:
            status.pop(k, None)
        else:
            status[k] = v
    return {**svc, "status": status}
