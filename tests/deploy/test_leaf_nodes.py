"""The charts' NATS topology: a hub nats-server and one leaf node per cluster, two clusters, one pipeline.

The hub runs the ``nats.conf`` that the albus-hub chart renders (JetStream,
the leafnode port, one user per cluster with natsconfig's permissions,
passwords from the environment as the StatefulSet gives them); each
cluster's leaf runs the ``nats.conf`` that the albus chart renders with
``nats.leaf.enabled`` (no JetStream, one remote: the hub's leafnode port as
that cluster's user). Real nats-server processes on loopback ports (only
the listen addresses and ports are set for the test). Each cluster has its
own kube-apiserver and its own watcher, translator and health connected to
its leaf without credentials; one syncer connects to the hub as the pool.
Both clusters' Services get their VIPs, and a leaf cannot publish on the
other cluster's subjects: the hub holds it to its user's permissions.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets as pysecrets
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError

from albus import natsconfig
from albus.broker import free_port, nats_server_binary
from albus.controlplane import builder
from albus.controlplane.launcher import ControlPlane
from albus.procs import Child
from albus.stack import SimProcess
from tests.deploy.charts import ALBUS, HUB, find, render
from tests.deploy.test_chart_rbac import resolve_env
from tests.e2e.conftest import pytest_runtest_makereport  # noqa: F401 - rep_call on items
from tests.e2e.harness import SIM_SEED, wait_for
from tests.e2e.kube import lb_service, run_pod
from tests.multicluster.fleet import (
    APP_NS,
    CLUSTER_SERVICES,
    SELECTOR,
    Member,
    ensure_namespace,
    make_member,
    syncer_pool,
)

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

_RUN = f"{os.getpid() % 1000}"
CLUSTERS = {f"leaf{_RUN}a": "admin", f"leaf{_RUN}b": "admin"}
CONVERGE_S = 180
PORTS = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]


@dataclass
class Hub:
    url: str  # client URL (no credentials), what syncer_pool and make_member expect of a server
    leafnode_port: int
    monitor: str


def _nats(name: str, conf: str, env: dict[str, str], workdir: Path) -> Child:
    path = workdir / f"{name}.conf"
    path.write_text(conf)
    return Child(name, [nats_server_binary(), "--config", str(path)], workdir / f"{name}.log", env=env).start()


def _monitor(url: str, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}{path}", timeout=5) as rsp:
        data: dict[str, Any] = json.loads(rsp.read())
        return data


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, dict[str, str], dict[str, natsconfig.Identity]]]:
    """The hub and a leaf per cluster; yields the hub, each cluster's leaf URL, the identities."""
    workdir = tmp_path_factory.mktemp("leaf-nats")
    # Passwords that nats-server would misread if the chart gave them unquoted (a digit, a dash first).
    first_cluster = natsconfig.cluster_user(next(iter(CLUSTERS)))
    awkward = {natsconfig.SYNCER_USER: "7" + pysecrets.token_urlsafe(16), first_cluster: "-" + pysecrets.token_urlsafe(16)}
    ids = {i.user: i for i in natsconfig.identities(list(CLUSTERS), awkward)}
    client, leafnodes, monitor = free_port(), free_port(), free_port()
    first, second = CLUSTERS
    hub_objs = render(HUB, namespace="albus-hub", sets={
        "clusters[0].name": first, "clusters[1].name": second, "nats.replicas": "1",
        "nats.bindAddress": "127.0.0.1", "nats.ports.client": str(client),
        "nats.ports.leafnodes": str(leafnodes), "nats.ports.monitor": str(monitor),
        "nats.jetstream.storeDir": str(workdir / "jetstream")})
    stateful = find(hub_objs, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    passwords = {("albus-nats-passwords", f"{u}.password"): i.password for u, i in ids.items()}
    children = [_nats("hub", find(hub_objs, "ConfigMap", "-nats")["data"]["nats.conf"],
                      resolve_env(stateful, passwords, {"metadata.name": "hub-0"}), workdir)]
    hub = Hub(f"nats://127.0.0.1:{client}", leafnodes, f"http://127.0.0.1:{monitor}")
    leaf_urls: dict[str, str] = {}
    try:
        wait_for(lambda: _monitor(hub.monitor, "/healthz?js-enabled-only=true").get("status") == "ok", 30, "the hub")
        for cluster in CLUSTERS:
            port, leaf_monitor = free_port(), free_port()
            objs = render(ALBUS, namespace="avi-system", sets={
                "AKOSettings.clusterName": cluster, "nats.leaf.enabled": "true", "nats.leaf.bindAddress": "127.0.0.1",
                "nats.leaf.port": str(port), "nats.leaf.monitorPort": str(leaf_monitor)})
            user = ids[natsconfig.cluster_user(cluster)]
            secrets = {("albus-nats", "leafUrl"): f"nats-leaf://{user.user}:{user.password}@127.0.0.1:{leafnodes}"}
            container = find(objs, "Deployment", "-nats-leaf")["spec"]["template"]["spec"]["containers"][0]
            env = resolve_env(container, secrets, {"metadata.name": f"{cluster}-leaf"})
            children.append(_nats(f"leaf-{cluster}", find(objs, "ConfigMap", "-nats-leaf")["data"]["nats.conf"],
                                  env, workdir))
            # The services' URL, as the chart gives it, with the Service name resolved to loopback.
            watcher = find(objs, "Deployment", "-watcher")["spec"]["template"]["spec"]["containers"][0]
            chart_url = resolve_env(watcher, {}, {"metadata.name": "w", "metadata.namespace": "avi-system"})["NATS_URL"]
            assert chart_url == f"nats://albus-nats-leaf:{port}" and "@" not in chart_url
            leaf_urls[cluster] = f"nats://127.0.0.1:{port}"
        wait_for(lambda: len(_monitor(hub.monitor, "/leafz").get("leafs") or []) == len(CLUSTERS), 30,
                 "both leaf nodes connected to the hub")
        yield hub, leaf_urls, ids
    finally:
        for c in children:
            if not c.alive:
                print(f"--- {c.name} exited ---\n{c.log_tail()}")
            c.stop()


@pytest.fixture(scope="module")
def members(topology: tuple[Hub, dict[str, str], dict[str, natsconfig.Identity]],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Member]]:
    hub, leaf_urls, ids = topology
    assets = builder.locate()
    if assets is None:
        pytest.fail("the Kubernetes control plane is not built: run `make controlplane`", pytrace=False)
    workdir = tmp_path_factory.mktemp("leaf-fleet")
    planes: list[ControlPlane] = []
    out: dict[str, Member] = {}
    sim = SimProcess(workdir, seed=SIM_SEED).start()
    pool = []
    try:
        pool = syncer_pool(workdir, 1, CLUSTERS, sim, hub, ids)  # type: ignore[arg-type]
        for cluster, tenant in CLUSTERS.items():
            # A kube-apiserver per cluster, as real clusters have.
            cp = ControlPlane(tmp_path_factory.mktemp(f"cp-{cluster}"), assets=assets, gateway_api=False)
            cp.start()
            planes.append(cp)
            m = make_member(workdir / cluster, cluster, tenant, cp, sim, hub, ids)  # type: ignore[arg-type]
            m.nats_urls = {name: leaf_urls[cluster] for name in CLUSTER_SERVICES}  # no credentials: the leaf's
            m.start_services()
            out[cluster] = m
        yield out
    finally:
        for m in out.values():
            m.stop_services()
        for child in pool:
            child.stop()
        sim.stop()
        for cp in planes:
            cp.stop()


def _deploy(m: Member, index: int) -> None:
    ensure_namespace(m.core, APP_NS, SELECTOR)
    m.core.create_namespaced_service(APP_NS, lb_service("web", PORTS))
    run_pod(m.core, APP_NS, "web-1", {"app": "web"}, f"10.244.{index}.10", [("http", 8080, "TCP")])


def test_two_clusters_converge_through_their_leaf_nodes(members: dict[str, Member]) -> None:
    for i, m in enumerate(members.values(), start=1):
        _deploy(m, i)
    for cluster, m in members.items():
        def converged(m: Member = m) -> bool:
            want = m.expected()
            return bool(m.actual() == want and m.vips("web"))

        wait_for(converged, CONVERGE_S, f"cluster {cluster} converged through its leaf")
        assert m.objects("virtualservice").keys() == {f"{cluster}--{APP_NS}-web"}
    for m in members.values():
        for name, child in m.children.items():
            assert child.alive, f"{m.cluster} {name} exited: {child.log_tail()}"


def test_a_leaf_cannot_publish_for_the_other_cluster(
        topology: tuple[Hub, dict[str, str], dict[str, natsconfig.Identity]], members: dict[str, Member]) -> None:
    hub, leaf_urls, ids = topology
    a, b = list(CLUSTERS)
    forged = f"k8s.{b}.Service.{APP_NS}.forged"
    own = f"k8s.{a}.Service.{APP_NS}.probe"

    async def attempt() -> tuple[bool, bool]:
        leaf = await nats.connect(leaf_urls[a])
        pool = await nats.connect(ids[natsconfig.SYNCER_USER].url(hub.url))
        try:
            js = leaf.jetstream()
            await js.publish(own, b"{}", timeout=10)  # the leaf's own subjects reach the hub's stream
            refused = False
            try:
                await js.publish(forged, b"{}", timeout=3)
            except Exception:  # no acknowledgement: the hub dropped it at the leaf connection
                refused = True
            reader = pool.jetstream()
            try:
                await reader.get_last_msg("ALBUS_K8S", forged)
                stored = True
            except NotFoundError:
                stored = False
            await reader.purge_stream("ALBUS_K8S", subject=own)
            return refused, stored
        finally:
            await leaf.close()
            await pool.close()

    refused, stored = asyncio.run(attempt())
    assert refused and not stored
