"""Disaster recovery: NATS loses every stream while the services run; the system converges again.

The pipeline converges with several Services; then nats-server is stopped,
its JetStream store deleted, and started again, empty, on the same port.
The services reconnect, notice that their streams were created again and
rebuild them from the cluster and the controller (automatically, or on
``albus resync``). The controller must see no write at all (no DELETE, no
PUT, no POST), the Services' status no write either (resourceVersion
unchanged), and a Service edit afterwards must flow through.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import pytest

from albus.broker import NatsServer
from services.common import subjects
from services.common.bus import Bus
from services.common.contracts import ApplyOutcome, TreesSynced, VsTree, decode
from services.common.incarnation import incarnation
from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import lb_service, run_pod
from tests.e2e.lb_status import condition
from tests.resync.wipe import wipe

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

PLAIN = ("alpha", "bravo", "charlie", "delta")
WEB_PORTS = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
             {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}]
POD_PORTS = [("http", 8080, "TCP"), ("dns", 5353, "UDP")]
SERVICES = ("web", *PLAIN)


@pytest.fixture
def nats_server(fresh_nats: NatsServer) -> NatsServer:
    """A broker of this test's own: the test wipes its store."""
    return fresh_nats


def vs_name(p: Pipeline, svc: str) -> str:
    return f"{p.cluster}--{p.namespace}-{svc}"


def converge(p: Pipeline) -> None:
    p.core.create_namespaced_service(p.namespace, lb_service("web", WEB_PORTS))
    run_pod(p.core, p.namespace, "web-1", {"app": "web"}, "10.244.1.11", POD_PORTS)
    run_pod(p.core, p.namespace, "web-2", {"app": "web"}, "10.244.1.12", POD_PORTS)
    for i, name in enumerate(PLAIN):
        p.core.create_namespaced_service(p.namespace, lb_service(name, [{"port": 7000 + i, "protocol": "TCP"}]))
    for name in SERVICES:
        wait_for(lambda n=name: _programmed(p, n), 90, f"{name} programmed with a VIP")
    wait_for(lambda: len(p.objects("pool")[f"{vs_name(p, 'web')}-TCP-80"].get("servers") or []) == 2, 60,
             "both web pods in the pool")
    wait_for(lambda: p.syncers_settled(0), 60, "the syncer to have applied every tree")
    # Health's runtime condition follows the controller's checks within a sweep: let it settle too,
    # so the status taken as "before" is final.
    for name in SERVICES:
        wait_for(lambda n=name: _runtime_settled(p, n), 60, f"{name}'s LoadBalancerReady condition settled")


def _runtime_settled(p: Pipeline, name: str) -> bool:
    s = p.core.read_namespaced_service_status(name, p.namespace)
    ready = [c for c in s.status.conditions or () if c.type == "albus.io/LoadBalancerReady"]
    return bool(ready) and ready[0].reason != "HealthCheckPending"


def _programmed(p: Pipeline, name: str) -> bool:
    c = condition(p, name)
    return bool(p.vips(name)) and c is not None and c["status"] == "True"


def service_status(p: Pipeline) -> dict[str, tuple[str, list[str], str]]:
    """Per Service: resourceVersion (any status write changes it), VIPs, albus condition status."""
    out = {}
    for name in SERVICES:
        s = p.core.read_namespaced_service_status(name, p.namespace)
        c = condition(p, name) or {}
        out[name] = (s.metadata.resource_version, p.vips(name), str(c.get("status")))
    return out


async def _bus_state(url: str, cluster: str) -> dict[str, Any]:
    bus = await Bus.connect(url, "dr-test")
    try:
        d = await bus.last(subjects.trees_synced(cluster))
        trees = {decode(x.data, VsTree).vs_name: decode(x.data, VsTree)
                 for x in (await bus.snapshot(subjects.avi_cluster(cluster))).values()}
        outcomes = {decode(x.data, ApplyOutcome).vs_name: decode(x.data, ApplyOutcome)
                    for x in (await bus.snapshot(subjects.outcome_cluster(cluster))).values()}
        return {"marker": decode(d.data, TreesSynced) if d else None, "trees": trees, "outcomes": outcomes,
                "avi": await incarnation(bus, subjects.STREAM_AVI)}
    finally:
        await bus.close()


def rebuild_gaps(p: Pipeline, since: float) -> list[str]:
    """What the bus still lacks: every tree, a full view of the current AVI stream, every outcome applied
    from it, garbage collection run from that view (empty: rebuilt)."""
    st = asyncio.run(_bus_state(p.nats_url, p.cluster))
    marker: TreesSynced | None = st["marker"]
    want = {vs_name(p, s) for s in SERVICES}
    if marker is None or marker.incarnation != st["avi"] or set(marker.vs_names) != want:
        return [f"TreesSynced {marker} on AVI {st['avi']}"]
    gaps = [f"tree {n} missing" for n in sorted(want - set(st["trees"]))]
    for name, tree in st["trees"].items():
        out = st["outcomes"].get(name)
        if out is None or not out.ok or out.checksum != tree.checksum:
            gaps.append(f"outcome of {name}: {out}")
    if not any(s.get("at", 0) > since and s.get("gc_epoch") == marker.epoch for s in p.syncer_status()):
        gaps.append(f"no GC from epoch {marker.epoch} yet")
    if not p.syncers_settled(since):
        gaps.append("syncer not settled")
    return gaps


def assert_nothing_written(p: Pipeline, objects_before: dict[str, Any],
                           status_before: dict[str, tuple[str, list[str], str]]) -> None:
    writes = p.writes()
    assert not [w for w in writes if w["method"] == "DELETE"], writes
    assert writes == [], f"the rebuild wrote to the controller: {writes}"
    assert p.all_objects() == objects_before
    assert service_status(p) == status_before, "a Service's status was written during the rebuild"
    for name, child in p.children.items():
        assert child.alive, f"{name} died: {child.log_tail()}"


def edit_flows_through(p: Pipeline) -> None:
    p.set_port("alpha", 7100)
    pool = f"{vs_name(p, 'alpha')}-TCP-7100"
    wait_for(lambda: pool in p.objects("pool") and f"{vs_name(p, 'alpha')}-TCP-7000" not in p.objects("pool"),
             90, "the edited port's pool on the controller after the rebuild")
    wait_for(lambda: _programmed(p, "alpha"), 60, "alpha still programmed after the edit")


def test_wiped_nats_is_rebuilt_automatically_without_a_write(pipeline: Pipeline, nats_server: NatsServer) -> None:
    p = pipeline
    converge(p)
    objects_before = p.all_objects()
    status_before = service_status(p)
    p.reset_log()
    wiped_at = time.time()
    wipe(nats_server)
    t0 = time.monotonic()
    wait_for(lambda: not rebuild_gaps(p, wiped_at), 240, "the streams rebuilt and re-applied after the wipe")
    print(f"\nrebuilt {len(SERVICES)} Services {time.monotonic() - t0:.1f}s after nats-server came back empty")
    assert_nothing_written(p, objects_before, status_before)
    for name in ("translator", "syncer", "watcher", "health"):
        assert "full resync" in p.children[name].log_tail(200_000), f"{name} did not notice the wipe"
    edit_flows_through(p)


def albus_resync(p: Pipeline, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "albus.cli", "resync", "--config", str(p.config_path),
                           "--timeout", str(timeout)], capture_output=True, text=True, timeout=timeout + 60)


def test_albus_resync_reports_convergence_before_and_after_a_wipe(pipeline: Pipeline,
                                                                  nats_server: NatsServer) -> None:
    p = pipeline
    converge(p)
    objects_before = p.all_objects()
    status_before = service_status(p)

    # Nothing lost: a full resync on demand converges and writes nothing.
    p.reset_log()
    started = time.monotonic()
    run = albus_resync(p, 180)
    print(f"\nalbus resync, nothing lost: rc {run.returncode} in {time.monotonic() - started:.1f}s\n{run.stdout}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "converged" in run.stdout
    for svc in ("watcher", "translator", "syncer", "health"):
        assert f": {svc} " in run.stdout, run.stdout
    assert_nothing_written(p, objects_before, status_before)

    # NATS lost everything: the same command brings it back and says when.
    wiped_at = time.time()
    wipe(nats_server)
    started = time.monotonic()
    run = albus_resync(p, 240)
    print(f"albus resync after the wipe: rc {run.returncode} in {time.monotonic() - started:.1f}s\n{run.stdout}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert rebuild_gaps(p, wiped_at) == [], "albus resync said converged, the bus says otherwise"
    assert_nothing_written(p, objects_before, status_before)
    edit_flows_through(p)


def test_albus_resync_times_out_with_exit_status_1_when_a_service_is_down(pipeline: Pipeline) -> None:
    p = pipeline
    converge(p)
    p.children["health"].stop()
    run = albus_resync(p, 20)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "not converged" in run.stderr and "health: no answer yet" in run.stderr, run.stderr
