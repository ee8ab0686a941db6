"""The pending conditions of a Service, through the real pipeline: every service a process, the real kube-apiserver.

* **Not applied yet** (``VipPending``): the syncer is stopped; the
  translator publishes the Service's tree, no apply outcome comes. The
  Service gets ``LoadBalancerProgrammed`` False/VipPending (and Ready the
  same), no VIP, in one write. Once the syncer runs, it turns ``Programmed``
  with its VIP.
* **HealthCheckPending**: the controller's runtime cannot be read (the
  simulator answers ``virtualservice-inventory`` with 503), so the applied
  virtual service is not in health's runtime view: ``LoadBalancerReady`` is
  Unknown/HealthCheckPending while ``LoadBalancerProgrammed`` is True. With
  the runtime readable again Ready follows it.

With ``ALBUS_DESCRIBE_DIR`` set, ``kubectl describe service`` is captured at
each stage (docs/health.md shows them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from albus.broker import NatsServer
from services.common import subjects
from services.common.bus import Bus
from services.common.contracts import ApplyOutcome, VsTree, decode
from tests.e2e.conftest import e2e_pipeline
from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import lb_service
from tests.e2e.lb_status import condition, events
from tests.e2e.test_health_runtime import describe, ready, ready_is

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

POLL = 1.0  # health's runtime sweeps
PORTS = [{"name": "tcp", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
INVENTORY_DOWN = {"method": "GET", "path": "^/api/virtualservice-inventory", "status": 503,
                  "body": {"error": "Injected: runtime unavailable"}}


@pytest.fixture
def pipeline(control_plane: Any, nats_server: NatsServer, tmp_path: Path,
             request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    with e2e_pipeline(control_plane, nats_server.url, tmp_path, [], request,
                      albus={"healthPollSeconds": POLL}) as p:
        yield p


def bus_names(p: Pipeline) -> tuple[set[str], set[str]]:
    """The virtual services of the pipeline's cluster with a tree on the bus, and those with an apply outcome."""

    async def read() -> tuple[set[str], set[str]]:
        bus = await Bus.connect(p.nats_url, "pending-test")
        try:
            trees = {decode(m.data, VsTree).vs_name for m in (await bus.snapshot(subjects.avi_cluster(p.cluster))).values()}
            outs = {decode(m.data, ApplyOutcome).vs_name
                    for m in (await bus.snapshot(subjects.outcome_cluster(p.cluster))).values()}
            return trees, outs
        finally:
            await bus.close()

    return asyncio.run(read())


def published_not_applied(p: Pipeline) -> set[str] | None:
    trees, outs = bus_names(p)
    return (trees - outs) or None


def test_a_service_waits_unprogrammed_without_the_syncer_then_turns_programmed(
        pipeline: Pipeline, control_plane: Any) -> None:
    p = pipeline
    p.children["syncer"].stop()
    p.core.create_namespaced_service(p.namespace, lb_service("pending", PORTS))
    waiting = wait_for(lambda: published_not_applied(p), 60, "the translator to publish the tree")
    # Health sweeps and reconciles for three intervals with the tree on the bus and no outcome.
    until = time.monotonic() + 3 * POLL
    while time.monotonic() < until:
        c = condition(p, "pending")
        assert not (c and c["status"] == "True"), f"programmed before any apply: {c}"
        assert p.vips("pending") == []
        time.sleep(0.2)
    assert not p.objects("virtualservice"), "nothing applied without the syncer"

    # The runtime cannot be read from now on: the applied virtual service is not in health's view.
    p.admin("POST", "faults", json=INVENTORY_DOWN)
    p.children["syncer"].start()
    c = wait_for(lambda: (c := condition(p, "pending")) and c["status"] == "True" and c, 90, "pending Programmed")
    assert c["reason"] == "Programmed" and set(waiting) <= {n for n in p.objects("virtualservice")}, c
    vips = p.vips("pending")
    assert vips and all(v in c["message"] for v in vips), (vips, c)
    r = wait_for(lambda: ready_is(p, "pending", "Unknown", "HealthCheckPending"), 30, "Ready HealthCheckPending")
    assert "not in the controller's runtime yet" in r["message"], r
    assert wait_for(lambda: [e for e in events(p, "pending") if e.reason == "Synced" and vips[0] in e.message], 30,
                    "the Synced Event with the VIP")
    describe(control_plane, p, "pending", "6-health-check-pending")
    # Pending holds while the runtime stays unreadable: sweeps fail, the view keeps what it had.
    until = time.monotonic() + 3 * POLL
    while time.monotonic() < until:
        assert (ready(p, "pending") or {}).get("reason") == "HealthCheckPending"
        time.sleep(0.2)

    # The runtime readable again: Ready follows it (no pod, so no member at all).
    p.admin("DELETE", "faults")
    r = wait_for(lambda: ready_is(p, "pending", "False", "NoHealthyMembers"), 30, "Ready from the runtime")
    assert "0 of 0 members up" in r["message"], r


def test_a_service_not_applied_yet_is_vip_pending_then_programmed(pipeline: Pipeline, control_plane: Any) -> None:
    p = pipeline
    p.children["syncer"].stop()
    p.core.create_namespaced_service(p.namespace, lb_service("pending", PORTS))
    [vs] = wait_for(lambda: published_not_applied(p), 60, "the translator to publish the tree")
    c = wait_for(lambda: (c := condition(p, "pending")) and c["reason"] == "VipPending" and c, 10 * POLL,
                 "pending VipPending")
    assert c["status"] == "False" and c["message"] == f"virtualservice {vs} not applied yet", c
    r = wait_for(lambda: ready_is(p, "pending", "False", "VipPending"), 10 * POLL, "Ready VipPending")
    assert r["message"] == c["message"], r
    # One write: the Service stays as it is over three poll intervals (health sweeps and reconciles meanwhile).
    rv = p.core.read_namespaced_service_status("pending", p.namespace).metadata.resource_version
    until = time.monotonic() + 3 * POLL
    while time.monotonic() < until:
        assert p.core.read_namespaced_service_status("pending", p.namespace).metadata.resource_version == rv
        time.sleep(0.2)
    assert p.vips("pending") == [] and events(p, "pending") == []
    describe(control_plane, p, "pending", "0-vip-pending")
    assert not p.objects("virtualservice"), "nothing applied without the syncer"

    p.children["syncer"].start()
    c = wait_for(lambda: (c := condition(p, "pending")) and c["status"] == "True" and c, 90, "pending Programmed")
    assert c["reason"] == "Programmed" and vs in p.objects("virtualservice"), c
    vips = p.vips("pending")
    assert vips and all(v in c["message"] for v in vips), (vips, c)
    assert wait_for(lambda: (r := ready(p, "pending")) and r["reason"] != "VipPending" and r, 30, "Ready to follow")
