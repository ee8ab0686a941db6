"""Pods on the bus: only those carrying albus's readiness gate, trimmed to what the translator reads.

Against a real kube-apiserver, as the ``albus-watcher`` ClusterRole's identity.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_watcher_k8s import deleted, running_watcher, synced, tombstones
from watcher_helpers import BusLog, Kube, wait_for

from services.common.config import Config
from services.common.readiness_gate import GATE_TYPE

pytestmark = pytest.mark.k8s


def pod(name: str, gated: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}
    if gated:
        spec["readinessGates"] = [{"conditionType": "example.com/other"}, {"conditionType": GATE_TYPE}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}}, "spec": spec}


def conditions(containers_ready: str, ready: str = "False") -> dict[str, Any]:
    """A kubelet-like status (a merge patch replaces the whole list)."""
    return {"status": {"phase": "Running", "conditions": [
        {"type": "PodScheduled", "status": "True"}, {"type": "Initialized", "status": "True"},
        {"type": "ContainersReady", "status": containers_ready}, {"type": "Ready", "status": ready}]}}


async def test_only_gated_pods_are_published_trimmed_and_tombstoned(
    watcher_cfg: Config, kube: Kube, bus_log: BusLog, kube_namespace: str
) -> None:
    ns = kube_namespace
    pods = f"/api/v1/namespaces/{ns}/pods"
    gated = await kube.call("POST", pods, pod("gated", True))
    await kube.call("POST", pods, pod("plain", False))

    def containers_ready(status: str) -> Any:
        def probe() -> Any:
            o = bus_log.latest("Pod", ns, "gated")
            return o if o is not None and o.obj is not None and o.obj.get("status") == {
                "conditions": [{"type": "ContainersReady", "status": status}]} else None
        return probe

    async with running_watcher(watcher_cfg):
        await synced(bus_log, ("Pod",))
        first = bus_log.latest("Pod", ns, "gated")
        assert first is not None and first.obj is not None and first.uid == gated["metadata"]["uid"]
        # Only the gate is kept of the spec, nothing of the metadata but its identity.
        assert first.obj == {"metadata": {"name": "gated", "namespace": ns, "uid": gated["metadata"]["uid"],
                                          "resourceVersion": gated["metadata"]["resourceVersion"]},
                             "spec": {"readinessGates": [{"conditionType": GATE_TYPE}]}}

        await kube.merge_patch(f"{pods}/gated/status", conditions("False"))
        await kube.merge_patch(f"{pods}/plain/status", conditions("True", "True"))
        await wait_for(containers_ready("False"), 15, "gated's ContainersReady=False")
        # A change of another condition is not published; ContainersReady's is (and proves the first was read).
        await kube.merge_patch(f"{pods}/gated/status", {"status": {"conditions": [
            {"type": "PodScheduled", "status": "True"}, {"type": "ContainersReady", "status": "False"}]}})
        await kube.merge_patch(f"{pods}/gated/status", conditions("True"))
        await wait_for(containers_ready("True"), 15, "gated's ContainersReady=True")
        assert len(bus_log.objects("Pod", ns, "gated")) == 3

        await kube.call("POST", pods, pod("gated-2", True))
        await wait_for(lambda: bus_log.latest("Pod", ns, "gated-2"), 15, "gated-2, watched")
        await kube.delete(f"{pods}/gated-2")
        await wait_for(lambda: deleted(bus_log, ns, "gated-2", "Pod"), 15, "gated-2's tombstone")

    # Deleted while nobody watched: the next term's list tombstones it.
    await kube.delete(f"{pods}/gated")
    await kube.delete(f"{pods}/plain")
    async with running_watcher(watcher_cfg, identity="test-watcher-2"):
        await synced(bus_log, ("Pod",), count=2)
        await wait_for(lambda: deleted(bus_log, ns, "gated", "Pod"), 15, "gated's tombstone")
    assert bus_log.objects("Pod", ns, "plain") == []
    assert sorted(tombstones(bus_log, ns)) == ["Pod/gated", "Pod/gated-2"]
