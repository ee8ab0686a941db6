"""The watcher against a real kube-apiserver/etcd and a real nats-server.

The watcher runs as the ``albus-watcher`` ClusterRole's identity, so a verb
missing from ``deploy/rbac/clusterrole.yaml`` fails these tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from watcher_helpers import BusLog, Kube, wait_for

from albus.controlplane.launcher import ControlPlane
from services.common.bus import Bus
from services.common.config import Config
from services.common.contracts import KindSynced, KubeObject
from services.common.reflector import KindSpec, custom_lister
from services.watcher.kinds import SERVICE
from services.watcher.lease import LeaseTiming, lease_name
from services.watcher.main import run
from services.watcher.reflectors import ReflectorSet
from services.watcher.trim import trim_with_spec

pytestmark = pytest.mark.k8s

ALL_KINDS = ("Service", "EndpointSlice", "Namespace", "AviInfraSetting")


@asynccontextmanager
async def running_watcher(
    cfg: Config, identity: str = "test-watcher", timing: LeaseTiming | None = None
) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(cfg, stop, identity=identity, timing=timing))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def synced(log: BusLog, kinds: tuple[str, ...] = ALL_KINDS, count: int = 1) -> None:
    for kind in kinds:

        def marked(k: str = kind) -> bool:
            return len(log.synced(k)) >= count

        await wait_for(marked, 30, f"{kind} synced marker #{count}")


def tombstones(log: BusLog, ns: str) -> list[str]:
    return [f"{m.kind}/{m.name}" for _, m, _ in log.messages
            if isinstance(m, KubeObject) and m.namespace == ns and m.deleted]


def deleted(log: BusLog, ns: str, name: str, kind: str = "Service") -> KubeObject | None:
    """The object's newest message if it is a tombstone."""
    o = log.latest(kind, ns, name)
    return o if o is not None and o.deleted else None


def svc_path(ns: str, name: str) -> str:
    return f"/api/v1/namespaces/{ns}/services/{name}"


async def test_lists_then_publishes_creates_updates_and_deletes(
    watcher_cfg: Config, kube: Kube, bus_log: BusLog, kube_namespace: str, cluster: str
) -> None:
    ns = kube_namespace
    alpha = await kube.create_service(ns, "alpha")
    beta = await kube.create_service(ns, "beta")
    await kube.call("POST", f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "alpha-manual", "labels": {"kubernetes.io/service-name": "alpha"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.0.7"], "conditions": {"ready": True}}],
        "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
    })

    async with running_watcher(watcher_cfg):
        await synced(bus_log)
        # Snapshots of the initial list come before the kind's synced marker.
        marker = bus_log.index(lambda m: isinstance(m, KindSynced) and m.kind == "Service")
        for name in ("alpha", "beta"):
            snapshot = bus_log.latest("Service", ns, name)
            assert snapshot is not None
            assert bus_log.position(snapshot) < marker
        first = bus_log.latest("Service", ns, "alpha")
        assert first is not None and first.obj is not None
        assert first.uid == alpha["metadata"]["uid"]
        assert first.obj["spec"]["ports"][0]["port"] == 80
        assert "managedFields" not in first.obj["metadata"]
        headers = next(h for _, m, h in bus_log.messages if m is first)
        assert headers["Nats-Msg-Id"] == f"{first.cluster}:{first.uid}:{first.resource_version}"
        eps = bus_log.latest("EndpointSlice", ns, "alpha-manual")
        assert eps is not None and eps.obj is not None and eps.obj["endpoints"][0]["addresses"] == ["10.1.0.7"]
        namespace = bus_log.latest("Namespace", "", ns)
        assert namespace is not None and namespace.obj is not None
        assert namespace.obj["metadata"]["labels"]["albus.test/namespace"] == "true"

        await kube.create_service(ns, "gamma")
        await wait_for(lambda: bus_log.latest("Service", ns, "gamma"), 15, "gamma's snapshot")
        # Every kind is watched, not only listed.
        await kube.merge_patch(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices/alpha-manual",
                               {"endpoints": [{"addresses": ["10.1.0.8"], "conditions": {"ready": False}}]})
        await wait_for(
            lambda: ((o := bus_log.latest("EndpointSlice", ns, "alpha-manual")) is not None and o.obj is not None
                     and o.obj["endpoints"] == [{"addresses": ["10.1.0.8"], "conditions": {"ready": False}}]),
            15, "the EndpointSlice's update",
        )
        await kube.merge_patch(f"/api/v1/namespaces/{ns}", {"metadata": {"annotations": {
            "ako.vmware.com/tenant-name": "blue"}}})
        await wait_for(
            lambda: ((o := bus_log.latest("Namespace", "", ns)) is not None and o.obj is not None
                     and o.obj["metadata"].get("annotations", {}).get("ako.vmware.com/tenant-name") == "blue"),
            15, "the Namespace's update",
        )

        await kube.merge_patch(svc_path(ns, "alpha"), {"spec": {"ports": [{"port": 8080, "protocol": "TCP"}]}})

        def alpha_on_8080() -> bool:
            o = bus_log.latest("Service", ns, "alpha")
            return o is not None and o.obj is not None and o.obj["spec"]["ports"][0]["port"] == 8080

        await wait_for(alpha_on_8080, 15, "alpha's update")

        await kube.delete(svc_path(ns, "beta"))
        tomb = await wait_for(lambda: deleted(bus_log, ns, "beta"), 15, "beta's tombstone")
        assert tomb.obj is None and tomb.uid == beta["metadata"]["uid"]
        assert "Nats-TTL" in next(h for _, m, h in bus_log.messages if m is tomb)

        # A status write like health's (a condition) changes nothing the
        # translator reads: not republished. gamma's later change proves the
        # watcher has handled alpha's event (one kind's events are in order).
        before = len(bus_log.objects("Service", ns, "alpha"))
        await kube.merge_patch(svc_path(ns, "alpha") + "/status", {"status": {"conditions": [{
            "type": "albus.io/LoadBalancerProgrammed", "status": "True", "reason": "Programmed",
            "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z",
        }]}})
        await kube.merge_patch(svc_path(ns, "gamma"), {"metadata": {"labels": {"barrier": "1"}}})
        await wait_for(
            lambda: ((o := bus_log.latest("Service", ns, "gamma")) is not None and o.obj is not None
                     and o.obj["metadata"].get("labels", {}).get("barrier") == "1"),
            15, "gamma's label",
        )
        assert len(bus_log.objects("Service", ns, "alpha")) == before
        assert tombstones(bus_log, ns) == ["Service/beta"]

    # A graceful stop hands the Lease back.
    lease = await kube.call("GET", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{lease_name(cluster)}")
    assert not lease["spec"].get("holderIdentity")


async def _compact_under_a_running_watcher(
    cfg: Config, kube: Kube, log: BusLog, ns: str, cp: ControlPlane, timing: LeaseTiming | None
) -> tuple[KindSynced, KindSynced, int]:
    """Compact (which restarts kube-apiserver) under a running watcher; the first and newest Service markers."""
    for name in ("alpha", "beta"):
        await kube.create_service(ns, name)
    async with running_watcher(cfg, timing=timing):
        await synced(log)
        first = log.synced("Service")[0]
        # History moves past every reflector's resourceVersion, so after the
        # compaction a resumed watch gets 410 Gone.
        await kube.call("POST", f"/api/v1/namespaces/{ns}/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bump"}})
        revision = await asyncio.to_thread(
            cp.compact, ("/api/v1/services", "/apis/discovery.k8s.io/v1/endpointslices")
        )
        await wait_for(
            lambda: any(int(m.resource_version) >= revision for m in log.synced("Service")),
            60, "a relist of Services after the compaction",
        )
        await kube.create_service(ns, "gamma")
        await wait_for(lambda: log.latest("Service", ns, "gamma"), 30, "gamma, watched after the relist")
        assert tombstones(log, ns) == []
        # Nothing changed for alpha and beta: the relist did not republish them.
        assert len(log.objects("Service", ns, "alpha")) == 1
        assert len(log.objects("Service", ns, "beta")) == 1
        return first, log.synced("Service")[-1], revision


async def test_compaction_under_a_running_leader_relists_without_phantom_deletes(
    watcher_cfg: Config, kube: Kube, bus_log: BusLog, kube_namespace: str, control_plane: ControlPlane
) -> None:
    # A lease that outlives the API server's restart inside compact(), so the
    # same leadership term meets the 410 and relists.
    patient = LeaseTiming(duration=90, renew_deadline=60, retry_period=2)
    first, last, _ = await _compact_under_a_running_watcher(
        watcher_cfg, kube, bus_log, kube_namespace, control_plane, patient
    )
    assert last.epoch == first.epoch


async def test_api_outage_beyond_the_renew_deadline_costs_the_lease_and_the_next_term_relists(
    watcher_cfg: Config, kube: Kube, bus_log: BusLog, kube_namespace: str, control_plane: ControlPlane
) -> None:
    # AKO's timings: the API server's restart (>10 s) outlasts the renew
    # deadline, so the watcher stops leading, then leads again in a new term.
    first, last, _ = await _compact_under_a_running_watcher(
        watcher_cfg, kube, bus_log, kube_namespace, control_plane, None
    )
    assert last.epoch != first.epoch


async def test_410_relist_publishes_what_changed_in_the_gap_and_tombstones_only_the_gone(
    cluster: str, watcher_kubeconfig: Path, bus: Bus, bus_log: BusLog, kube: Kube, kube_namespace: str,
    control_plane: ControlPlane,
) -> None:
    ns = kube_namespace
    for name in ("keep", "change", "gone"):
        await kube.create_service(ns, name)
    api: Any = control_plane.kube_client(watcher_kubeconfig)
    rs = ReflectorSet(api, bus, cluster, kinds=[SERVICE])
    try:
        await rs.start()
        await synced(bus_log, ("Service",))
        reflector = rs.reflectors["Service"]
        await reflector.stop()  # paused: keeps its resourceVersion and known set
        old_rv = reflector.resource_version
        assert old_rv

        await kube.delete(svc_path(ns, "gone"))
        await kube.merge_patch(svc_path(ns, "change"), {"spec": {"ports": [{"port": 81, "protocol": "TCP"}]}})
        await kube.create_service(ns, "fresh")
        await asyncio.to_thread(control_plane.compact, ("/api/v1/services",))

        reflector.start()  # watches from old_rv: 410, then a relist
        await synced(bus_log, ("Service",), count=2)
        assert reflector.expired >= 1
        gone = bus_log.latest("Service", ns, "gone")
        assert gone is not None and gone.deleted
        change = bus_log.latest("Service", ns, "change")
        assert change is not None and change.obj is not None and change.obj["spec"]["ports"][0]["port"] == 81
        assert bus_log.latest("Service", ns, "fresh") is not None
        assert tombstones(bus_log, ns) == ["Service/gone"]
        assert len(bus_log.objects("Service", ns, "keep")) == 1  # unchanged: not republished
        # The tombstone and the new snapshots come before the relist's marker.
        marker = bus_log.position(bus_log.synced("Service")[1])
        at = bus_log.index(lambda m: isinstance(m, KubeObject) and m.namespace == ns and m.deleted)
        assert at < marker
    finally:
        await rs.stop()
        api.close()


async def test_object_deleted_while_the_watcher_was_down_gets_its_tombstone(
    watcher_cfg: Config, kube: Kube, bus_log: BusLog, kube_namespace: str
) -> None:
    ns = kube_namespace
    for name in ("alpha", "beta"):
        await kube.create_service(ns, name)
    async with running_watcher(watcher_cfg):
        await synced(bus_log)
        assert bus_log.latest("Service", ns, "beta") is not None
    await kube.delete(svc_path(ns, "beta"))
    await kube.create_service(ns, "gamma")
    async with running_watcher(watcher_cfg, identity="test-watcher-2"):
        await synced(bus_log, count=2)
        beta = bus_log.latest("Service", ns, "beta")
        assert beta is not None and beta.deleted
        assert bus_log.latest("Service", ns, "gamma") is not None
        assert tombstones(bus_log, ns) == ["Service/beta"]
        # The stream still held alpha unchanged: no second snapshot.
        assert len(bus_log.objects("Service", ns, "alpha")) == 1


async def test_avi_infra_setting_is_reflected_with_its_status(
    watcher_cfg: Config, kube: Kube, bus_log: BusLog, cluster: str
) -> None:
    name = f"t-{cluster}".lower().replace("_", "-")
    path = f"/apis/ako.vmware.com/v1beta1/aviinfrasettings/{name}"
    async with running_watcher(watcher_cfg):
        await synced(bus_log, ("AviInfraSetting",))
        await kube.call("POST", "/apis/ako.vmware.com/v1beta1/aviinfrasettings", {
            "apiVersion": "ako.vmware.com/v1beta1", "kind": "AviInfraSetting", "metadata": {"name": name},
            "spec": {"seGroup": {"name": "SEG-blue"}},
        })
        try:
            await kube.merge_patch(path + "/status", {"status": {"status": "Accepted"}})
            await wait_for(
                lambda: ((o := bus_log.latest("AviInfraSetting", "", name)) is not None and o.obj is not None
                         and o.obj.get("status", {}).get("status") == "Accepted" and o),
                15, "the AviInfraSetting with its status",
            )
            o = bus_log.latest("AviInfraSetting", "", name)
            assert o is not None and o.obj is not None and o.obj["spec"]["seGroup"]["name"] == "SEG-blue"
        finally:
            await kube.delete(path)
        await wait_for(lambda: deleted(bus_log, "", name, "AviInfraSetting"), 15, "the AviInfraSetting's tombstone")


async def test_an_optional_kind_whose_crd_is_missing_lists_as_empty(
    cluster: str, bus: Bus, bus_log: BusLog, control_plane: ControlPlane
) -> None:
    missing = KindSpec(
        kind="Missing", api_version="albus-test.example.com/v1", namespaced=False,
        lister=custom_lister("albus-test.example.com", "v1", "missings"), trim=trim_with_spec, optional=True,
    )
    # Admin: RBAC would refuse (403) a resource it has no rule for before
    # the API server could say it does not exist (404).
    api: Any = control_plane.kube_client()
    rs = ReflectorSet(api, bus, cluster, kinds=[missing])
    try:
        await rs.start()
        await synced(bus_log, ("Missing",))
        assert bus_log.synced("Missing")[0].count == 0
        assert rs.reflectors["Missing"].absent
    finally:
        await rs.stop()
        api.close()


def test_lease_timing_is_akos() -> None:
    t = LeaseTiming()
    assert (t.duration, t.renew_deadline, t.retry_period) == (15.0, 10.0, 2.0)
