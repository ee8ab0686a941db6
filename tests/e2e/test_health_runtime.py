"""Pool member health back into Kubernetes: every part a separate process, the simulator's real TCP checks.

A LoadBalancer Service with three pods, each pod's backend in a network
namespace of its own (three pod IPs; the kube-apiserver refuses loopback
in EndpointSlices). Stopping one backend turns that pod's member down on
the simulator, which health reads from the inventory and that pool's
member list: the Service's ``albus.io/LoadBalancerReady`` condition becomes
PartiallyHealthy and a Warning Event names the pod, within two health
intervals plus one poll interval (plus the time to write and read it back).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from albus.broker import NatsServer
from albus.testhosts import TestHost, available
from tests.e2e.conftest import e2e_pipeline
from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import lb_service, run_pod
from tests.e2e.lb_status import events

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

READY = "albus.io/LoadBalancerReady"
HEALTH_INTERVAL = 0.5  # the simulator's health checks
POLL = 1.0  # health's runtime sweeps
# Writing the status and reading it back, on a loaded 2-core machine: not part of the bound.
SLACK = 3.0
BOUND = 2 * HEALTH_INTERVAL + POLL


@pytest.fixture
def hosts() -> Iterator[list[TestHost]]:
    why = available()
    if why is not None:
        pytest.skip(f"no test host: {why}")
    made: list[TestHost] = []
    try:
        for _ in range(3):
            made.append(TestHost().create())
        yield made
    finally:
        for h in made:
            h.destroy()


@pytest.fixture
def pipeline(control_plane: Any, nats_server: NatsServer, tmp_path: Path, hosts: list[TestHost],
             request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    args = ["--health-interval", str(HEALTH_INTERVAL)]
    for h in hosts:
        args += ["--probe-network", h.cidr]
    with e2e_pipeline(control_plane, nats_server.url, tmp_path, args, request,
                      albus={"healthPollSeconds": POLL}) as p:
        yield p


def ready(p: Pipeline, name: str) -> dict[str, Any] | None:
    s = p.api.sanitize_for_serialization(p.core.read_namespaced_service_status(name, p.namespace))
    return next((c for c in (s.get("status") or {}).get("conditions") or [] if c["type"] == READY), None)


def ready_is(p: Pipeline, name: str, status: str, reason: str) -> dict[str, Any] | None:
    c = ready(p, name)
    return c if c and c["status"] == status and c["reason"] == reason else None


def describe(cp: Any, p: Pipeline, name: str, stage: str) -> None:
    """``kubectl describe service`` at a stage, into $ALBUS_DESCRIBE_DIR when set (docs/health.md shows them)."""
    out_dir = os.environ.get("ALBUS_DESCRIBE_DIR")
    kubectl = shutil.which("kubectl")
    if not out_dir or kubectl is None:
        return
    base = [kubectl, "--kubeconfig", str(cp.admin_kubeconfig), "-n", p.namespace]
    text = subprocess.run([*base, "describe", "service", name], capture_output=True, text=True, timeout=60,
                          check=True).stdout
    # kubectl describe does not print a Service's status.conditions: they follow, one a line.
    fmt = '{range .status.conditions[*]}{.type}  {.status}  {.reason}  gen={.observedGeneration}  {.message}{"\\n"}{end}'
    text += "\n$ kubectl get service " + name + " -o jsonpath='<conditions>'\n" + subprocess.run(
        [*base, "get", "service", name, "-o", f"jsonpath={fmt}"], capture_output=True, text=True, timeout=60,
        check=True).stdout
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / f"{stage}.txt").write_text(text)


def event_about(p: Pipeline, name: str, reason: str, words: str) -> Any:
    return next((e for e in events(p, name) if e.reason == reason and words in (e.message or "")), None)


def test_a_stopped_backend_turns_its_pods_member_down_and_back(pipeline: Pipeline, hosts: list[TestHost],
                                                              control_plane: Any) -> None:
    p = pipeline
    pods = [f"web-{i}" for i in range(3)]
    for pod, h in zip(pods, hosts, strict=True):
        h.serve(pod, 8080)
    p.core.create_namespaced_service(p.namespace, lb_service(
        "web", [{"name": "tcp", "port": 80, "targetPort": 8080, "protocol": "TCP"}]))
    for pod, h in zip(pods, hosts, strict=True):
        run_pod(p.core, p.namespace, pod, {"app": "web"}, h.address, [("tcp", 8080, "TCP")])

    c = wait_for(lambda: ready_is(p, "web", "True", "Programmed"), 90, "web Ready, every member up")
    assert "3 of 3 members up" in c["message"], c
    assert wait_for(lambda: event_about(p, "web", "Synced", "(VIP "), 30, "the Synced Event with the VIP")
    describe(control_plane, p, "web", "1-programmed")
    # Coming up is no outage: nothing said the virtual service was down.
    assert not [e.message for e in events(p, "web") if e.reason == "VirtualServiceDown"]

    # One backend stops: its pod's member goes down.
    hosts[1].stop_serving()
    t0 = time.monotonic()
    c = wait_for(lambda: ready_is(p, "web", "True", "PartiallyHealthy"), 30, "web PartiallyHealthy",
                 interval=0.05)
    took = time.monotonic() - t0
    assert took <= BOUND + SLACK, f"PartiallyHealthy after {took:.2f}s (bound {BOUND}s + {SLACK}s to write)"
    assert c["message"].endswith(f"down: {p.namespace}/web-1") and "2 of 3 members up" in c["message"], c
    ev = wait_for(lambda: event_about(p, "web", "MemberDown", f"pod {p.namespace}/web-1 is down"), 15,
                  "a Warning Event naming the pod")
    assert ev.type == "Warning" and hosts[1].address in ev.message
    print(f"member down -> PartiallyHealthy in {took:.2f}s (bound {BOUND}s)")
    describe(control_plane, p, "web", "2-partially-healthy")

    # It comes back: Programmed again, and an Event says so.
    hosts[1].serve("web-1", 8080)
    wait_for(lambda: ready_is(p, "web", "True", "Programmed"), 30, "web Programmed again")
    assert wait_for(lambda: event_about(p, "web", "MemberUp", f"pod {p.namespace}/web-1 is up again"), 15,
                    "the MemberUp Event")
    describe(control_plane, p, "web", "3-restored")

    # Every backend stops: no healthy member, the virtual service is down.
    for h in hosts:
        h.stop_serving()
    c = wait_for(lambda: ready_is(p, "web", "False", "NoHealthyMembers"), 30, "web NoHealthyMembers")
    assert "0 of 3 members up" in c["message"], c
    assert wait_for(lambda: event_about(p, "web", "VirtualServiceDown", "0 of 3"), 15, "VirtualServiceDown Event")
    describe(control_plane, p, "web", "4-no-healthy-members")
    # One write per transition: the status stays as it is while nothing changes.
    rv = p.core.read_namespaced_service_status("web", p.namespace).metadata.resource_version
    later = time.monotonic() + 3 * POLL
    while time.monotonic() < later:
        assert p.core.read_namespaced_service_status("web", p.namespace).metadata.resource_version == rv
        time.sleep(0.2)


def test_a_refused_apply_is_controller_error_in_both_conditions(pipeline: Pipeline, control_plane: Any) -> None:
    p = pipeline
    p.admin("POST", "faults", json={"method": "POST", "path": "/api/macro", "status": 400,
                                   "body": {"error": "Injected: the controller refused the virtual service"}})
    p.core.create_namespaced_service(p.namespace, lb_service(
        "refused", [{"name": "tcp", "port": 80, "targetPort": 8080, "protocol": "TCP"}]))
    c = wait_for(lambda: ready_is(p, "refused", "False", "ControllerError"), 90, "refused ControllerError")
    assert "refused the virtual service" in c["message"], c
    describe(control_plane, p, "refused", "5-controller-error")
