"""Helpers of the watcher tests: waiting on conditions, recording the bus, admin calls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from albus.controlplane.launcher import ControlPlane
from services.common import subjects
from services.common.bus import Bus, Delivery, Follower
from services.common.config import Config, parse_config
from services.common.contracts import Contract, KindSynced, KubeObject, decode_any

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac" / "clusterrole.yaml"
T = TypeVar("T")


def cluster_role(name: str) -> dict[str, Any]:
    for doc in yaml.safe_load_all(RBAC.read_text()):
        if doc and doc.get("kind") == "ClusterRole" and doc["metadata"]["name"] == name:
            return dict(doc)
    raise LookupError(f"no ClusterRole {name} in {RBAC}")


def make_config(cluster: str, nats_url: str, kubeconfig: Path, namespace: str) -> Config:
    return parse_config({
        "AKOSettings": {"clusterName": cluster},
        "albus": {"natsUrl": nats_url, "kubeconfig": str(kubeconfig), "namespace": namespace},
    })


async def wait_for(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


class BusLog:
    """Every message on ``k8s.<cluster>.>`` from the moment it starts, in order."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.messages: list[tuple[str, Contract, dict[str, str]]] = []
        self._follower: Follower | None = None

    async def start(self, bus: Bus) -> None:
        async def on(d: Delivery) -> None:
            self.messages.append((d.subject, decode_any(d.data), d.headers))

        self._follower = await bus.follow(subjects.k8s_cluster(self.cluster), on)

    async def stop(self) -> None:
        if self._follower is not None:
            await self._follower.stop()

    def objects(self, kind: str, namespace: str, name: str | None = None) -> list[KubeObject]:
        return [
            m for _, m, _ in self.messages
            if isinstance(m, KubeObject) and m.kind == kind and m.namespace == namespace
            and (name is None or m.name == name)
        ]

    def latest(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        objs = self.objects(kind, namespace, name)
        return objs[-1] if objs else None

    def synced(self, kind: str) -> list[KindSynced]:
        return [m for _, m, _ in self.messages if isinstance(m, KindSynced) and m.kind == kind]

    def position(self, msg: Contract) -> int:
        return next(i for i, (_, m, _) in enumerate(self.messages) if m is msg)

    def index(self, pred: Callable[[Contract], bool]) -> int:
        return next(i for i, (_, m, _) in enumerate(self.messages) if pred(m))


class Kube:
    """Admin requests to the control plane, off the event loop."""

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self.cp.request_json, method, path, body, **kw)

    async def create_service(self, ns: str, name: str, port: int = 80, **spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"type": "ClusterIP", "ports": [{"port": port, "protocol": "TCP"}], **spec},
        }
        return await self.call("POST", f"/api/v1/namespaces/{ns}/services", body)

    async def delete(self, path: str) -> None:
        await self.call("DELETE", path, expect=(200, 202))

    async def merge_patch(self, path: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self.call("PATCH", path, patch, content_type="application/merge-patch+json")
