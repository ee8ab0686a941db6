"""The four services run as the chart deploys them, and the #4 case passes; one permission less fails it.

What comes from ``helm template`` of the albus chart: the configuration
file (its ConfigMap), each container's command and environment (resolved as
a kubelet would: Secret keys from a stand-in for the user's Secrets,
``fieldRef`` from the pod), and the identities — the ServiceAccounts,
ClusterRoles and ClusterRoleBindings are applied to the real kube-apiserver
and the watcher and health authenticate with a TokenRequest token of their
ServiceAccount (the translator and the syncer mount none). Only the probe
address is moved to loopback (tests listen on loopback only). Syncers run
in the cluster (``syncer.enabled``), as the chart's local-syncer option.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from albus.broker import NatsServer
from albus.controlplane.launcher import ControlPlane
from albus.stack import SERVICES, SimProcess, service
from tests.deploy.charts import ALBUS, find, render
from tests.deploy.rendered import Resources, allowed, apply, token_kubeconfig
from tests.e2e.conftest import pytest_runtest_makereport  # noqa: F401 - rep_call on items
from tests.e2e.harness import SIM_SEED, VIP_NET, Pipeline, wait_for
from tests.e2e.kube import lb_service, run_pod

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

_ids = itertools.count(1)
PORTS = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
CONVERGE_S = 120
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")


def resolve_env(container: dict[str, Any], secrets: dict[tuple[str, str], str],
                fields: dict[str, str]) -> dict[str, str]:
    """A container's environment as the kubelet would give it (``$(VAR)`` expansion included)."""
    env: dict[str, str] = {}
    for e in container.get("env") or []:
        if "value" in e:
            value = e["value"]
            for k, v in env.items():
                value = value.replace(f"$({k})", v)
            env[e["name"]] = value
            continue
        src = e["valueFrom"]
        if "fieldRef" in src:
            env[e["name"]] = fields[src["fieldRef"]["fieldPath"]]
        else:
            ref = src["secretKeyRef"]
            if (ref["name"], ref["key"]) in secrets:
                env[e["name"]] = secrets[(ref["name"], ref["key"])]
            else:
                assert ref.get("optional"), f"the test has no Secret {ref['name']}/{ref['key']}"
    return env


@contextlib.contextmanager
def chart_pipeline(cp: ControlPlane, nats: NatsServer, tmp_path: Path, request: pytest.FixtureRequest,
                   drop: tuple[str, str] | None = None) -> Iterator[Pipeline]:
    """The chart's services for a cluster of their own; ``drop``: (component, resource) rule removed first."""
    cluster = f"chart{os.getpid() % 1000}x{next(_ids)}"
    release, release_ns, app_ns = f"{cluster}-albus", f"{cluster}-system", f"{cluster}-apps"
    sim = SimProcess(tmp_path, seed=SIM_SEED).start()
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({
        "AKOSettings": {"clusterName": cluster, "fullSyncFrequency": 3600,
                        "namespaceSelector": {"labelKey": "albus-e2e", "labelValue": cluster}},
        "ControllerSettings": {"controllerHost": sim.url, "controllerVersion": "22.1.3"},
        "NetworkSettings": {"vipNetworkList": [VIP_NET]},
        "avicredentials": {"caKey": ""},  # the simulator speaks plain HTTP
        "syncer": {"enabled": True},
    }))
    objs = render(ALBUS, [values], release=release, namespace=release_ns)
    api = cp.kube_client()
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=release_ns)))
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=app_ns,
                                                                          labels={"albus-e2e": cluster})))
    resources = Resources(cp)
    for obj in (o for o in objs if o["kind"] in RBAC_KINDS):
        if drop and obj["kind"] == "ClusterRole" and obj["metadata"]["name"] == f"{release}-{drop[0]}":
            before = len(obj["rules"])
            obj["rules"] = [r for r in obj["rules"] if drop[1] not in r.get("resources", [])]
            assert len(obj["rules"]) == before - 1
        apply(cp, resources, obj)
    kubeconfigs = {s: token_kubeconfig(cp, release_ns, f"{release}-{s}", tmp_path / f"{s}.kubeconfig")
                   for s in ("watcher", "health")}
    # RBAC is served from an informer cache: wait until the bindings are seen.
    wait_for(lambda: allowed(cp, kubeconfigs["watcher"], "list", "", "services"), 30, "watcher's binding")
    wait_for(lambda: allowed(cp, kubeconfigs["health"], "get", "", "services"), 30, "health's binding")

    raw = yaml.safe_load(find(objs, "ConfigMap", "-config")["data"]["config.yaml"])
    assert raw["albus"]["probes"]["address"] == "0.0.0.0"
    raw["albus"]["probes"]["address"] = "127.0.0.1"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    secrets = {("albus-nats", "url"): nats.url, ("albus-nats-syncer", "url"): nats.url,
               ("avi-secret", "username"): sim.username, ("avi-secret", "password"): sim.password}
    p = Pipeline(cluster=cluster, namespace=app_ns, workdir=tmp_path, sim=sim, api=api, config_path=config,
                 nats_url=nats.url)
    try:
        for name in SERVICES:
            container = find(objs, "Deployment", f"-{name}")["spec"]["template"]["spec"]["containers"][0]
            assert container["args"][0] == name
            env = resolve_env(container, secrets, {"metadata.name": f"{release}-{name}-0",
                                                   "metadata.namespace": release_ns})
            # The token a pod of this ServiceAccount would mount; none for those that mount none.
            env["KUBECONFIG"] = str(kubeconfigs[name]) if name in kubeconfigs else ""
            p.children[name] = service(name, config, tmp_path / "logs", env=env).start()
        yield p
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(p.logs())
        p.stop_services()
        sim.stop()
        for ns in (app_ns, release_ns):
            core.delete_namespace(ns)
        for obj in (o for o in objs if o["kind"] in ("ClusterRole", "ClusterRoleBinding")):
            cp.request("DELETE", resources.url(obj), expect=(200, 202, 404))


def deploy_web(p: Pipeline) -> None:
    p.core.create_namespaced_service(p.namespace, lb_service("web", PORTS))
    run_pod(p.core, p.namespace, "web-1", {"app": "web"}, "10.244.7.11", [("http", 8080, "TCP")])


def test_services_with_the_charts_rbac_give_a_service_its_vip(control_plane: ControlPlane, nats_server: NatsServer,
                                                              tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with chart_pipeline(control_plane, nats_server, tmp_path, request) as p:
        deploy_web(p)
        vips = wait_for(lambda: p.vips("web"), CONVERGE_S, "the Service's VIP in its status")
        assert vips[0].startswith("127.100.0.")
        want = p.expected()
        assert want["virtualservice"] == {f"{p.cluster}--{p.namespace}-web"}
        wait_for(lambda: p.actual() == want, CONVERGE_S, "the controller holding the Service's tree")
        for name, child in p.children.items():
            assert child.alive, f"{name} exited: {child.log_tail()}"


def test_one_missing_permission_fails_the_case(control_plane: ControlPlane, nats_server: NatsServer,
                                               tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """health without ``patch services/status``: the tree reaches the controller, the VIP never the Service."""
    with chart_pipeline(control_plane, nats_server, tmp_path, request, drop=("health", "services/status")) as p:
        deploy_web(p)
        vs = f"{p.cluster}--{p.namespace}-web"
        wait_for(lambda: vs in p.objects("virtualservice"), CONVERGE_S, "the VS on the controller")

        def refused() -> bool:
            log = p.children["health"].log_tail(200_000)
            return f"Service {p.namespace}/web: ApiException: (403)" in log and "services/status" in log

        wait_for(refused, CONVERGE_S, "health's status write refused by RBAC (403)")
        assert p.vips("web") == []
