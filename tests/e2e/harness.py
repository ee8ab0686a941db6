"""An albus pipeline for one test: its own cluster name, namespace, simulator and four service processes.

Everything is real: kube-apiserver/etcd (session fixture), nats-server
(session fixture, tests keep apart by cluster name), the simulator as its own
process, and ``albus watcher|translator|syncer|health`` as four processes
running with the project's ClusterRole.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import nats
import requests
from avi.sdk.avi_api import ApiSession
from kubernetes import client
from kubernetes.client.rest import ApiException

from albus.stack import SERVICES, Child, SimProcess, service, write_config
from services.common.config import load_config
from services.translator.offline import translate_documents
from tests.e2e.kube import cluster_documents

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
CLUSTERROLE = REPO / "deploy" / "rbac" / "clusterrole.yaml"
SIM_SEED = REPO / "albus" / "demo_seed.yaml"
VIP_NET = {"networkName": "vip-net", "cidr": "127.100.0.0/24", "v6cidr": "fd00:a1b::/64"}
OBJECT_TYPES = ("virtualservice", "l4policyset", "pool", "vsvip")
Names = dict[str, set[str]]
CLUSTER_IDS = itertools.count(1)  # the e2e pipelines' cluster names in this process (conftest.e2e_pipeline)


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            got = check()
            if got:
                return got
        except Exception as exc:  # the condition may not be evaluable yet
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


@dataclass
class Pipeline:
    cluster: str
    namespace: str
    workdir: Path
    sim: SimProcess
    api: client.ApiClient
    config_path: Path
    nats_url: str
    children: dict[str, Child] = field(default_factory=dict)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def discovery(self) -> client.DiscoveryV1Api:
        return client.DiscoveryV1Api(self.api)

    # -- processes ------------------------------------------------------------------
    def start_services(self) -> None:
        for name in SERVICES:
            self.children[name] = service(name, self.config_path, self.workdir / "logs").start()

    def stop_services(self) -> None:
        for c in self.children.values():
            c.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {n} ---\n{c.log_tail(3000)}" for n, c in self.children.items())

    # -- the controller --------------------------------------------------------------
    def avi(self) -> ApiSession:
        return ApiSession(self.sim.url, self.sim.username, self.sim.password, tenant="admin",
                          api_version="22.1.3")

    def objects(self, obj_type: str) -> dict[str, dict[str, Any]]:
        """This cluster's objects of one type on the controller, by name (include_name refs)."""
        s = self.avi()
        out: dict[str, dict[str, Any]] = {}
        page = 1
        while True:
            rsp = s.get(obj_type, params={"created_by": f"ako-{self.cluster}", "include_name": "true",
                                          "page_size": 200, "page": page})
            assert rsp.status_code == 200, rsp.text
            body = rsp.json()
            for o in body["results"]:
                out[o["name"]] = o
            if not body.get("next"):
                return out
            page += 1

    def all_objects(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {t: self.objects(t) for t in OBJECT_TYPES}

    def admin(self, method: str, path: str, **kw: Any) -> Any:
        rsp = requests.request(method, f"{self.sim.url}/_sim/{path}", timeout=10, **kw)
        rsp.raise_for_status()
        return rsp.json() if rsp.content else None

    def writes(self) -> list[dict[str, Any]]:
        """Every mutating call the controller got since the last reset, from the simulator's request log."""
        entries = self.requests()
        return [e for e in entries if e["method"] in ("POST", "PUT", "PATCH", "DELETE")
                and not str(e.get("path", "")).startswith(("/login", "/logout"))]

    def requests(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "requests")["results"])

    def reset_log(self) -> None:
        self.admin("DELETE", "requests")

    def syncer_status(self) -> list[dict[str, Any]]:
        """Each live syncer replica's status record (partitions held, all trees applied)."""

        async def read() -> list[dict[str, Any]]:
            nc = await nats.connect(self.nats_url.split(","))
            try:
                kv = await nc.jetstream().key_value("albus_syncer_members")
                out = []
                for key in await kv.keys():
                    if key.startswith(f"{self.cluster}."):
                        entry = await kv.get(key)
                        with contextlib.suppress(ValueError):
                            out.append(json.loads(entry.value or b""))
                return out
            finally:
                await nc.close()

        return asyncio.run(read())

    def syncers_settled(self, since: float) -> bool:
        """Every partition held by a replica that has applied all its trees since ``since`` (epoch s)."""
        st = [s for s in self.syncer_status() if s.get("at", 0) > since]
        parts = {p for s in st for p in s.get("partitions", [])}
        return len(parts) == 64 and all(s.get("settled") for s in st)

    def expected(self) -> Names:
        """The offline translation of what the cluster holds now (empty if the namespace is gone)."""
        cfg = load_config(self.config_path, env={})
        try:
            docs = cluster_documents(self.api, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            docs = []
        objects, _ = translate_documents(docs, cfg)
        return {t: {o["name"] for o in objects.get(t, [])} for t in OBJECT_TYPES}

    def actual(self) -> Names:
        """The names of this cluster's objects on the controller, by type."""
        return {t: set(objs) for t, objs in self.all_objects().items()}

    # -- Kubernetes --------------------------------------------------------------------
    def set_port(self, name: str, port: int, index: int = 0) -> Any:
        """Change a Service's port number ``index``; the Service as written.

        A JSON patch, not read-and-replace: health writing the Service's status in
        between made the replace a 409 (CI, 27 Nov).
        """
        return self.core.patch_namespaced_service(name, self.namespace, [
            {"op": "replace", "path": f"/spec/ports/{index}/port", "value": port}])

    def vips(self, name: str) -> list[str]:
        s = self.core.read_namespaced_service_status(name, self.namespace)
        ing = (s.status.load_balancer.ingress if s.status and s.status.load_balancer else None) or []
        return [i.ip for i in ing if i.ip]


def make_pipeline(workdir: Path, cluster: str, namespace: str, admin_api: client.ApiClient,
                  kubeconfig: Path, nats_url: str, seed: Path | None = None,
                  sim_args: list[str] | None = None, albus: dict[str, Any] | None = None) -> Pipeline:
    sim = SimProcess(workdir, seed=seed or SIM_SEED, extra=sim_args).start()
    cfg = write_config(
        workdir / "config.yaml", cluster=cluster, controller=sim.url, username=sim.username,
        password=sim.password, nats_url=nats_url, kubeconfig=str(kubeconfig), vip_networks=[VIP_NET],
        extra={"AKOSettings": {"namespaceSelector": {"labelKey": "albus-e2e", "labelValue": cluster},
                               "fullSyncFrequency": 3600},
               "ControllerSettings": {"controllerVersion": "22.1.3"},
               "albus": {"namespace": namespace, **(albus or {})}},
    )
    return Pipeline(cluster=cluster, namespace=namespace, workdir=workdir, sim=sim, api=admin_api,
                    config_path=cfg, nats_url=nats_url)
