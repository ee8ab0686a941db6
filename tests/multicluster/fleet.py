"""Several clusters on one controller: real API servers, one simulator, one secured nats-server.

Each cluster has its own kube-apiserver/etcd and its own watcher,
translator and health, connected as that cluster's NATS identity (from
`albus nats-config`); the syncers connect as the syncer pool's identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from avi.sdk.avi_api import ApiSession
from kubernetes import client
from kubernetes.client.rest import ApiException

from albus import natsconfig
from albus.broker import NatsServer
from albus.broker_cluster import NatsCluster
from albus.controlplane.launcher import ControlPlane
from albus.stack import SERVICES, Child, SimProcess, service, write_config
from tests.e2e.harness import CLUSTERROLE, SIM_SEED, VIP_NET, Pipeline

APP_NS = "shop"  # the same namespace in every cluster
SYSTEM_NS = "albus-system"  # where each cluster's watcher keeps its leader Lease
SELECTOR = {"albus-fleet": "yes"}
# Per cluster; the syncers are one pool for the whole fleet (see syncer_pool).
CLUSTER_SERVICES = tuple(s for s in SERVICES if s != "syncer")


@dataclass
class Member(Pipeline):
    """One cluster of the fleet: a Pipeline whose controller view is its own tenant."""

    tenant: str = "admin"
    plane: ControlPlane | None = None
    nats_urls: dict[str, str] = field(default_factory=dict)  # per service

    def avi(self) -> ApiSession:
        return ApiSession(self.sim.url, self.sim.username, self.sim.password, tenant=self.tenant,
                          api_version="22.1.3")

    def start_services(self) -> None:
        for name in CLUSTER_SERVICES:
            self.start_one(name)

    def start_one(self, name: str) -> None:
        # A stable pod name, as a container restarted by Kubernetes keeps: a
        # killed service started again resumes under its own leases.
        env = {"NATS_URL": self.nats_urls[name], "POD_NAME": f"{self.cluster}-{name}"}
        self.children[name] = service(name, self.config_path, self.workdir / "logs", env=env).start()

    def stamps(self) -> dict[tuple[str, str], tuple[str, Any]]:
        """(type, name) → (uuid, _last_modified): changes if the object is rewritten or recreated."""
        return {(t, n): (o["uuid"], o.get("_last_modified")) for t, objs in self.all_objects().items()
                for n, o in objs.items()}


def seed_with_tenants(path: Path, tenants: list[str]) -> Path:
    data = yaml.safe_load(SIM_SEED.read_text()) or {}
    data["tenants"] = list(tenants)
    path.write_text(yaml.safe_dump(data))
    return path


def ensure_namespace(core: client.CoreV1Api, name: str, labels: dict[str, str] | None = None) -> None:
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
    except ApiException as exc:
        if exc.status != 409:
            raise


def make_member(workdir: Path, cluster: str, tenant: str, plane: ControlPlane, sim: SimProcess,
                nats: NatsServer | NatsCluster, ids: dict[str, natsconfig.Identity], namespace: str = APP_NS,
                selector: tuple[str, str] = next(iter(SELECTOR.items())), nats_replicas: int = 1) -> Member:
    """One cluster's services; it handles the namespaces labelled ``selector``, ``namespace`` is its workload's."""
    api = plane.kube_client()
    core = client.CoreV1Api(api)
    ensure_namespace(core, SYSTEM_NS)
    kubeconfig = plane.kubeconfig_for(f"albus-{cluster}", CLUSTERROLE)
    cfg = write_config(
        workdir / "config.yaml", cluster=cluster, controller=sim.url, username=sim.username,
        password=sim.password, nats_url="set-per-service", kubeconfig=str(kubeconfig), vip_networks=[VIP_NET],
        extra={"AKOSettings": {"namespaceSelector": {"labelKey": selector[0], "labelValue": selector[1]},
                               "fullSyncFrequency": 3600},
               "ControllerSettings": {"controllerVersion": "22.1.3", "tenantName": tenant},
               "albus": {"namespace": SYSTEM_NS, "natsReplicas": nats_replicas}},
    )
    own = ids[natsconfig.cluster_user(cluster)].url(nats.url)
    return Member(cluster=cluster, namespace=namespace, workdir=workdir, sim=sim, api=api, config_path=cfg,
                  nats_url=ids[natsconfig.SYNCER_USER].url(nats.url), tenant=tenant, plane=plane,
                  nats_urls={name: own for name in CLUSTER_SERVICES})


def syncer_pool(workdir: Path, replicas: int, clusters: dict[str, str], sim: SimProcess,
                nats: NatsServer | NatsCluster, ids: dict[str, natsconfig.Identity],
                nats_replicas: int = 1) -> list[Child]:
    """``replicas`` syncer processes serving every cluster (``albus.syncer.clusters``), as the pool's identity."""
    cfg = write_config(
        workdir / "syncer-pool.yaml", cluster=next(iter(clusters)), controller=sim.url, username=sim.username,
        password=sim.password, nats_url=ids[natsconfig.SYNCER_USER].url(nats.url), kubeconfig="",
        vip_networks=[VIP_NET],
        extra={"AKOSettings": {"fullSyncFrequency": 3600}, "ControllerSettings": {"controllerVersion": "22.1.3"},
               "albus": {"natsReplicas": nats_replicas,
                         "syncer": {"clusters": [{"name": c, "tenantName": t} for c, t in clusters.items()]}}},
    )
    return [service("syncer", cfg, workdir / "logs", suffix=f"-{i}", env={"POD_NAME": f"syncer-{i}"}).start()
            for i in range(replicas)]
