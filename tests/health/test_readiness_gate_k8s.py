"""The pod readiness gate with the real kube-apiserver calling health's webhook over TLS on loopback.

Health runs as the ``albus-health`` identity with the simulator's real TCP
checks as its runtime. What the watcher, translator and syncer would put on
the bus and the controller is put there by the test: the Service and its
EndpointSlice (naming the pods) and the apply outcome on the bus; the pool
and virtual service on the simulator. The pods are created through the API
server, which asks the webhook.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from health_helpers import Kube, Publisher, wait_for

from albus.broker import free_port
from albus.controlplane.launcher import ControlPlane
from albus.sim.server import SimServer
from albus.sim.testing import SimClient
from services.common import subjects
from services.common.bus import Bus
from services.common.config import Config, WebhookService, parse_config
from services.common.contracts import KubeObject
from services.common.kube import api_client
from services.health import readiness_gate, webhook_tls
from services.health.reconciler import HealthReconciler
from services.health.runtime_reader import RuntimeReader
from services.health.webhook_server import WebhookServer, register, start_webhook
from tests.sim.test_health import TcpListener, pool_with

pytestmark = pytest.mark.k8s

GATE = readiness_gate.GATE_TYPE


def _cfg(sim: SimServer, cluster: str, kubeconfig: Path, cert_dir: Path) -> Config:
    return parse_config({
        "AKOSettings": {"clusterName": cluster},
        "ControllerSettings": {"controllerHost": sim.url, "controllerVersion": "22.1.3"},
        "credentials": {"username": sim.username, "password": sim.password},
        "albus": {"kubeconfig": str(kubeconfig), "healthPollSeconds": 0.5,
                  "readinessGate": {"port": free_port(), "certDir": str(cert_dir)}},
    })


@asynccontextmanager
async def health(cfg: Config, api: Any, bus: Bus) -> AsyncIterator[tuple[HealthReconciler, WebhookServer]]:
    stop = asyncio.Event()
    r = HealthReconciler(api, bus, cfg.cluster, "health-test", runtime=RuntimeReader(cfg), poll_seconds=0.5,
                         readiness_gates=True)
    assert r.gates is not None
    hook = await start_webhook(cfg, api, r.gates)
    task = asyncio.create_task(r.run(stop))
    try:
        yield r, hook
    finally:
        stop.set()
        await hook.stop()
        await asyncio.wait_for(task, 30)


async def _publish_k8s(bus: Bus, cluster: str, kind: str, ns: str, name: str, obj: dict[str, Any]) -> None:
    await bus.publish(subjects.k8s_object(cluster, kind, ns, name),
                      KubeObject(cluster=cluster, kind=kind, namespace=ns, name=name, obj=obj))


def _slice(pods: dict[str, str], port: int) -> dict[str, Any]:
    return {"metadata": {"labels": {"kubernetes.io/service-name": "web"}}, "addressType": "IPv4",
            "ports": [{"name": "tcp", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": False},
                           "targetRef": {"kind": "Pod", "name": pod}} for pod, ip in pods.items()]}


def _pod(name: str, app: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": app}},
            "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]}}


def _gate_condition(pod: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in (pod.get("status") or {}).get("conditions") or () if c["type"] == GATE), None)


async def test_gate_injected_by_the_webhook_opens_only_once_the_member_is_up_and_fail_open_is_announced(
        health_kubeconfig: Path, control_plane: ControlPlane, bus: Bus, cluster: str, kube: Kube,
        publish: Publisher, kube_namespace: str, sim: SimServer, sim_client: SimClient, tmp_path: Path) -> None:
    ns = kube_namespace
    await kube.call("PATCH", f"/api/v1/namespaces/{ns}",
                    {"metadata": {"labels": {readiness_gate.OPT_IN_LABEL: readiness_gate.OPT_IN_VALUE}}},
                    content_type="application/merge-patch+json")
    cfg = _cfg(sim, cluster, health_kubeconfig, tmp_path / "webhook")
    vs = f"{cluster}--{ns}-web"
    lst = TcpListener("127.0.6.1")
    lst.stop()  # its port is now known and closed: the member starts down
    pool = pool_with(sim_client, f"{vs}-80", [("127.0.6.1", lst.port)])
    sim_client.ok("PATCH", f"pool/{pool['uuid']}", {"replace": {"created_by": f"ako-{cluster}"}})
    sim_client.ok("POST", "virtualservice", {"name": vs, "services": [{"port": 80}], "pool_ref": pool["url"],
                                             "created_by": f"ako-{cluster}"})
    await kube.create_lb_service(ns, "web")
    await _publish_k8s(bus, cluster, "Service", ns, "web",
                       {"metadata": {"name": "web", "namespace": ns}, "spec": {"selector": {"app": "web"}}})
    await publish.outcome(ns, "web", vips=("10.10.0.8",))
    await _publish_k8s(bus, cluster, "EndpointSlice", ns, "web-abc", _slice({"web-0": "127.0.6.1"}, lst.port))

    api: Any = control_plane.kube_client(health_kubeconfig)
    again: TcpListener | None = None
    try:
        async with health(cfg, api, bus) as (rec, hook):
            await asyncio.wait_for(rec.settled.wait(), 30)
            web0 = await kube.call("POST", f"/api/v1/namespaces/{ns}/pods", _pod("web-0", "web"))
            other = await kube.call("POST", f"/api/v1/namespaces/{ns}/pods", _pod("other", "other"))
            assert web0["spec"]["readinessGates"] == [{"conditionType": GATE}]
            assert "readinessGates" not in other["spec"]  # no Service albus handles selects it
            assert hook.reviews >= 2 and hook.gated == 1

            async def ready_reason(reason: str) -> dict[str, Any] | None:
                svc = await kube.service(ns, "web")
                c = next((c for c in (svc.get("status") or {}).get("conditions") or ()
                          if c["type"] == "albus.io/LoadBalancerReady"), None)
                return c if c and c["reason"] == reason else None

            # The runtime has said the member is down: the gate stays shut.
            await wait_for(lambda: ready_reason("NoHealthyMembers"), 30, "the member seen down")
            assert _gate_condition(await kube.call("GET", f"/api/v1/namespaces/{ns}/pods/web-0")) is None

            again = TcpListener("127.0.6.1", lst.port)

            async def gate_open() -> dict[str, Any] | None:
                c = _gate_condition(await kube.call("GET", f"/api/v1/namespaces/{ns}/pods/web-0"))
                return c if c and c["status"] == "True" else None

            opened = await wait_for(gate_open, 30, "web-0's gate open")
            assert opened["reason"] == "MemberUp" and f"Service {ns}/web" in opened["message"]
            assert await ready_reason("Programmed") is not None

            # The webhook is down: the API server admits the pod without the gate (failure policy Ignore) ...
            await hook.stop()
            web1 = await kube.call("POST", f"/api/v1/namespaces/{ns}/pods", _pod("web-1", "web"))
            assert "readinessGates" not in web1["spec"]
            # ... and once its member is up, health says so in a Warning Event on the pod.
            lst2 = TcpListener("127.0.6.2")
            try:
                sim_client.ok("PATCH", f"pool/{pool['uuid']}", {"add": {"servers": [
                    {"ip": {"addr": "127.0.6.2", "type": "V4"}, "port": lst2.port}]}})
                await _publish_k8s(bus, cluster, "EndpointSlice", ns, "web-abc",
                                   _slice({"web-0": "127.0.6.1", "web-1": "127.0.6.2"}, lst.port))

                async def missing() -> list[dict[str, Any]] | None:
                    items = (await kube.call("GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events"))["items"]
                    found = [e for e in items if e["reason"] == "ReadinessGateMissing"
                             and e["regarding"]["name"] == "web-1"]
                    return found or None

                [ev] = await wait_for(missing, 30, "the ReadinessGateMissing Event on web-1")
                assert ev["type"] == "Warning" and "could not be reached" in ev["note"]
            finally:
                lst2.stop()
    finally:
        if again is not None:
            again.stop()
        api.close()
        await kube.call("DELETE", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/"
                        f"{readiness_gate.CONFIGURATION_NAME}", expect=(200, 404))


async def test_registration_by_service_replaces_the_url_as_the_health_identity(
        health_kubeconfig: Path, kube: Kube, tmp_path: Path) -> None:
    """The chart's registration, as the real API server stores it; health's RBAC lets it switch from a URL."""
    svc = WebhookService(namespace="avi-system", name="albus-webhook", port=443)
    api = api_client(parse_config({"AKOSettings": {"clusterName": "c"},
                                   "albus": {"kubeconfig": str(health_kubeconfig)}}))
    tls = webhook_tls.ensure(tmp_path, svc.host)
    path = f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{readiness_gate.CONFIGURATION_NAME}"
    try:
        await asyncio.to_thread(register, api, tls.ca_pem, "https://127.0.0.1:9/mutate-pods")
        await asyncio.to_thread(register, api, tls.ca_pem, "https://127.0.0.1:9/mutate-pods", svc)
        [hook] = (await kube.call("GET", path))["webhooks"]
        assert hook["clientConfig"] == {
            "service": {"namespace": "avi-system", "name": "albus-webhook", "port": 443, "path": readiness_gate.PATH},
            "caBundle": base64.b64encode(tls.ca_pem).decode()}
        assert hook["failurePolicy"] == "Ignore"
        assert hook["namespaceSelector"]["matchLabels"] == {readiness_gate.OPT_IN_LABEL: readiness_gate.OPT_IN_VALUE}
    finally:
        await kube.call("DELETE", path)  # nothing serves that Service here: leave no registration behind
