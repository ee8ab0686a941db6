"""The pod readiness gate through the whole pipeline: every part a separate process, real health checks.

In a namespace labelled ``albus.io/readiness-gate=enabled`` health's
webhook (registered with the real kube-apiserver, called on loopback) adds
albus's gate to the pods of a Service albus handles. Such a pod is not Ready
until the gate opens, so its EndpointSlice endpoint is not ready; the watcher
publishes the gated pod (trimmed), and once its containers are ready the
translator enables its member anyway, so the simulator health-checks it; health
opens the gate once the simulator reports the member up — and never for a pod
whose backend does not answer.

There is no kubelet: the test writes pod status as one would (``kubelet_sync``):
``ContainersReady`` as the containers are, ``Ready`` = ContainersReady and every
readiness gate True, written again when a gate changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from albus.broker import NatsServer, free_port
from albus.testhosts import TestHost, available
from services.common.readiness_gate import GATE_TYPE
from services.health.readiness_gate import CONFIGURATION_NAME, OPT_IN_LABEL, OPT_IN_VALUE
from services.translator import naming
from tests.e2e.conftest import e2e_pipeline
from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import NODE, ensure_node, lb_service

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

HEALTH_INTERVAL = 0.5  # the simulator's health checks
POLL = 1.0  # health's runtime sweeps
PORT = 8080


@pytest.fixture
def hosts() -> Iterator[list[TestHost]]:
    why = available()
    if why is not None:
        pytest.skip(f"no test host: {why}")
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(TestHost()) for _ in range(2)]


@pytest.fixture
def pipeline(control_plane: Any, nats_server: NatsServer, tmp_path: Path, hosts: list[TestHost],
             request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    args = ["--health-interval", str(HEALTH_INTERVAL)]
    for h in hosts:
        args += ["--probe-network", h.cidr]
    gate = {"port": free_port(), "certDir": str(tmp_path / "webhook")}
    admission = client.AdmissionregistrationV1Api(control_plane.kube_client())
    try:
        with e2e_pipeline(control_plane, nats_server.url, tmp_path, args, request,
                          albus={"healthPollSeconds": POLL, "readinessGate": gate}) as p:
            yield p
    finally:
        with contextlib.suppress(client.ApiException):
            admission.delete_mutating_webhook_configuration(CONFIGURATION_NAME)


def condition(p: Pipeline, pod: str, kind: str) -> dict[str, Any] | None:
    s = p.api.sanitize_for_serialization(p.core.read_namespaced_pod_status(pod, p.namespace))
    return next((c for c in (s.get("status") or {}).get("conditions") or [] if c["type"] == kind), None)


def kubelet_sync(p: Pipeline, pod: str, ip: str, containers_ready: bool) -> None:
    """The pod status a kubelet writes: Ready = ContainersReady and every readiness gate True."""
    obj = p.core.read_namespaced_pod(pod, p.namespace)
    have = {c.type: c.status for c in (obj.status.conditions or [])}
    gates = [g.condition_type for g in obj.spec.readiness_gates or []]
    ready = containers_ready and all(have.get(g) == "True" for g in gates)
    p.core.patch_namespaced_pod_status(pod, p.namespace, {"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "ContainersReady", "status": str(containers_ready)},
                       {"type": "Ready", "status": str(ready)}]}})


def create_pod(p: Pipeline, name: str) -> client.V1Pod:
    ensure_node(p.core)
    return p.core.create_namespaced_pod(p.namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": "web"}),
        spec=client.V1PodSpec(node_name=NODE, containers=[client.V1Container(
            name="app", image="example.invalid/app:1",
            ports=[client.V1ContainerPort(name="tcp", container_port=PORT, protocol="TCP")])])))


def members(p: Pipeline) -> dict[str, dict[str, Any]]:
    """The pool's servers on the simulator (enabled, oper_status), by address."""
    pool = p.objects("pool").get(naming.l4_pool(p.cluster, p.namespace, "web", "TCP", 80))
    if pool is None:
        return {}
    rsp = p.avi().get(f"pool/{pool['uuid']}/runtime/server/detail")
    assert rsp.status_code == 200, rsp.text
    return {s["ip_addr"]["addr"]: s for s in rsp.json()}


def service_condition(p: Pipeline, kind: str, status: str, words: str = "") -> dict[str, Any] | None:
    s = p.api.sanitize_for_serialization(p.core.read_namespaced_service_status("web", p.namespace))
    c = next((c for c in (s.get("status") or {}).get("conditions") or [] if c["type"] == kind), None)
    return c if c and c["status"] == status and words in c["message"] else None


def test_a_gated_pods_member_is_checked_before_it_is_ready_and_its_gate_opens_once_it_is_up(
        pipeline: Pipeline, hosts: list[TestHost]) -> None:
    p = pipeline
    p.core.patch_namespace(p.namespace, {"metadata": {"labels": {OPT_IN_LABEL: OPT_IN_VALUE}}})
    p.core.create_namespaced_service(p.namespace, lb_service(
        "web", [{"name": "tcp", "port": 80, "targetPort": PORT, "protocol": "TCP"}]))
    # Health gates the pods of Services albus serves: wait until it knows this one does.
    wait_for(lambda: service_condition(p, "albus.io/LoadBalancerProgrammed", "True"), 90, "web Programmed")

    pods = {"web-0": hosts[0].address, "web-1": hosts[1].address}  # web-1's backend never answers
    for name in pods:
        assert [g.condition_type for g in create_pod(p, name).spec.readiness_gates or []] == [GATE_TYPE]
    # Started, containers not ready yet: the endpoints exist, not ready; the members are there, disabled.
    for name, ip in pods.items():
        kubelet_sync(p, name, ip, containers_ready=False)
    wait_for(lambda: (m := members(p)) and set(m) == set(pods.values())
             and not any(s["enabled"] for s in m.values()), 60, "both members, disabled")

    # Containers ready: the pods are still not Ready (their gates are shut), yet both members are enabled ...
    for name, ip in pods.items():
        kubelet_sync(p, name, ip, containers_ready=True)
    wait_for(lambda: (m := members(p)) and all(s["enabled"] for s in m.values()) and len(m) == 2, 60,
             "both members enabled")
    for name in pods:
        assert condition(p, name, "Ready")["status"] == "False", (  # type: ignore[index]
            condition(p, name, GATE_TYPE), members(p))
    # ... and health-checked: down, as no backend answers yet. Health has seen it, and opened no gate.
    wait_for(lambda: all(s["oper_status"]["state"] == "OPER_DOWN" for s in members(p).values()), 30,
             "both members checked and down")
    wait_for(lambda: service_condition(p, "albus.io/LoadBalancerReady", "False", "0 of 2 members up"), 30,
             "health seeing no member up")
    assert condition(p, "web-0", GATE_TYPE) is None and condition(p, "web-1", GATE_TYPE) is None

    # web-0's backend answers: its member comes up, and only then its gate opens.
    hosts[0].serve("web-0", PORT)
    gate = wait_for(lambda: (c := condition(p, "web-0", GATE_TYPE)) and c["status"] == "True" and c, 30,
                    "web-0's gate open")
    up = members(p)[pods["web-0"]]["oper_status"]
    assert up["state"] == "OPER_UP", up
    opened = datetime.fromisoformat(gate["lastTransitionTime"]).timestamp()
    assert opened >= up["last_changed_time"]["secs"], (gate, up)  # the gate's second is not before the member's
    kubelet_sync(p, "web-0", pods["web-0"], containers_ready=True)  # the kubelet sees the gate: Ready
    assert condition(p, "web-0", "Ready")["status"] == "True"  # type: ignore[index]

    # web-0 Ready: its endpoint is ready, its member stays enabled and up. web-1 stays down, its gate shut,
    # after health's sweep that saw web-0 up and web-1 down.
    wait_for(lambda: any(e.conditions.ready and e.target_ref.name == "web-0"
                         for s in p.discovery.list_namespaced_endpoint_slice(p.namespace).items
                         for e in s.endpoints or []), 30, "web-0's endpoint ready")
    wait_for(lambda: service_condition(p, "albus.io/LoadBalancerReady", "True", "1 of 2 members up"), 30,
             "health seeing web-0 up and web-1 down")
    m = members(p)
    assert m[pods["web-0"]]["enabled"] and m[pods["web-0"]]["oper_status"]["state"] == "OPER_UP"
    assert m[pods["web-1"]]["enabled"] and m[pods["web-1"]]["oper_status"]["state"] == "OPER_DOWN"
    assert condition(p, "web-1", GATE_TYPE) is None
    assert condition(p, "web-1", "Ready")["status"] == "False"  # type: ignore[index]
