"""Everything a scenario runs against, started by the harness itself.

One control plane and one nats-server for the whole run; per scenario a
fresh simulator process, a fresh cluster name and namespace, and the four
services as processes with the project's ClusterRole — the same pieces the
end-to-end tests use (``tests/e2e/harness.py``), sized for load.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from kubernetes import client

from albus.broker import NatsServer
from albus.controlplane.launcher import ControlPlane
from albus.stack import SERVICES, SimProcess, service, write_config
from bench.machine import Usage, child_pids
from services.common.kube import request_text
from services.common.subjects import STREAM_AVI, avi_cluster
from services.syncer.leases import assigned
from tests.e2e.harness import CLUSTERROLE, Pipeline, wait_for

# A /16 of loopback VIPs: 10,000 Services need more than the demo's /24.
SIM_SEED = """\
networks:
  - name: vip-net
    cloud: Default-Cloud
    subnets:
      - {prefix: 127.100.0.0/16, static_ranges: [127.100.0.10-127.100.255.250], type: STATIC_IPS_FOR_VIP}
"""
VIP_NET = {"networkName": "vip-net", "cidr": "127.100.0.0/16"}
# The control plane's service range is a /24 (254 ClusterIPs); 10,000 Services need more. Kubernetes
# 1.33+ takes extra ranges as ServiceCIDR objects at run time.
EXTRA_SERVICE_CIDR = {"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
                      "metadata": {"name": "albus-bench"}, "spec": {"cidrs": ["10.96.0.0/16"]}}
SELECTOR_KEY = "albus-bench"
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager")


_REQUEST_TOTAL = re.compile(r'^apiserver_request_total\{(.*)\} (\S+)$', re.M)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def kube_requests(api: Any) -> Counter[str]:  # (counts: whole numbers, sent as floats)
    """The API server's request count so far by verb and resource (``PATCH services/status``), from its
    ``/metrics``: every client's, so a scenario takes the difference over its window."""
    out: Counter[str] = Counter()
    for labels, value in _REQUEST_TOTAL.findall(request_text(api, "GET", "/metrics", accept="text/plain")):
        lab = dict(_LABEL.findall(labels))
        sub = f"/{lab['subresource']}" if lab.get("subresource") else ""
        out[f"{lab.get('verb')} {lab.get('resource')}{sub}"] += int(float(value))
    return out


def controller_writes(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The simulator's request-log entries that wrote to the controller (a login or logout is not a write)."""
    return [e for e in entries if e["method"] in ("POST", "PUT", "PATCH", "DELETE")
            and not str(e.get("path", "")).startswith(("/login", "/logout"))]
_ids = itertools.count(1)


@dataclass
class Knobs:
    """What a scenario may vary in the pipeline it gets."""

    realistic: bool = False          # the simulator's rate limit (32 req/s per client, burst 64)
    concurrency: int = 8             # syncer calls in flight, and the baseline's threads
    calls_per_second: float = 1e6    # syncer token bucket; off unless the scenario sets the controller's limit
    syncers: int = 1
    services: tuple[str, ...] = SERVICES
    env: dict[str, str] = field(default_factory=dict)  # e.g. the tracing switch


class BenchPipeline(Pipeline):
    """A pipeline with N syncer replicas and the processes' usage at hand."""

    knobs: Knobs
    infra_pids: Callable[[], dict[str, int]]  # the stack's (Stack.infra_pids)

    def start_services(self) -> None:
        for name in self.knobs.services:
            if name == "syncer":
                for i in range(self.knobs.syncers):
                    self.children[f"syncer{i}"] = service(name, self.config_path, self.workdir / "logs",
                                                          env=self.knobs.env, suffix=str(i)).start()
            else:
                self.children[name] = service(name, self.config_path, self.workdir / "logs",
                                              env=self.knobs.env).start()

    def restart_services(self) -> None:
        self.stop_services()
        for c in self.children.values():
            c.start()

    def pids(self) -> dict[str, int]:
        out = {n: c.pid for n, c in self.children.items() if c.pid}
        if self.sim.pid:
            out["simulator"] = self.sim.pid
        return out

    def usage(self, extra: dict[str, int] | None = None) -> Usage:
        """Usage of the services and simulator (plus `extra`), and of what they run on (`infra_pids`)."""
        return Usage({**self.pids(), **(extra or {})}, infra=self.infra_pids())

    def counters(self) -> dict[str, Any]:
        return dict(self.admin("GET", "counters"))

    def requests_since(self, seq: int) -> tuple[list[dict[str, Any]], int]:
        body = self.admin("GET", "requests", params={"since": seq})
        return list(body["results"]), int(body["last_seq"])

    def trees_on_bus(self) -> int:
        """How many VS trees of this cluster the translator has published (subjects in the AVI stream)."""
        async def count() -> int:
            nc = await nats.connect(self.nats_url)
            try:
                info = await nc.jetstream().stream_info(STREAM_AVI, subjects_filter=avi_cluster(self.cluster))
                return len(info.state.subjects or {})
            finally:
                await nc.close()
        return asyncio.run(count())

    def add_latency(self, ms: float) -> None:
        self.admin("POST", "faults", json={"path": "^/api/", "latency_ms": ms})

    def wait_syncers(self, n: int, timeout: float = 120) -> None:
        """Until n replicas hold all 64 partitions between them, each its own share (rebalance over)."""
        def ready() -> bool:
            st = [s for s in self.syncer_status() if s.get("at", 0) > time.time() - 6]
            members = [str(s.get("replica")) for s in st]
            # (the first replica up holds every partition until the others are seen and it lets go)
            return len(st) == n and len({p for s in st for p in s.get("partitions", [])}) == 64 and all(
                set(s.get("partitions", [])) == assigned(str(s.get("replica")), members) for s in st)
        wait_for(ready, timeout, f"{n} syncer replicas holding every partition", interval=0.5)


class Stack:
    """Control plane + NATS for the run; pipelines on demand."""

    def __init__(self, workdir: Path, service_env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.service_env = service_env or {}
        self.cp = ControlPlane(workdir / "controlplane", gateway_api=False)
        self.nats = NatsServer(workdir / "nats")

    def __enter__(self) -> Stack:
        self.cp.start()
        self.cp.apply("/apis/networking.k8s.io/v1/servicecidrs/albus-bench", EXTRA_SERVICE_CIDR)
        self.nats.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.nats.stop()
        self.cp.stop()

    def infra_pids(self) -> dict[str, int]:
        """The processes albus runs on, by name: the control plane's and nats-server (looked up now, so a
        restarted one is found)."""
        out = child_pids(CONTROL_PLANE)
        if self.nats.child is not None and self.nats.child.proc is not None:
            out["nats-server"] = self.nats.child.proc.pid
        return out

    @property
    def kubectl_env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.cp.admin_kubeconfig)}

    @contextlib.contextmanager
    def pipeline(self, label: str, knobs: Knobs | None = None, start: bool = True) -> Iterator[BenchPipeline]:
        knobs = knobs or Knobs()
        knobs.env = {**self.service_env, **knobs.env}
        cluster = f"b{os.getpid() % 1000}{label[:12]}{next(_ids)}"
        work = self.workdir / cluster
        work.mkdir(parents=True)
        (work / "seed.yaml").write_text(SIM_SEED)
        api = self.cp.kube_client()
        core = client.CoreV1Api(api)
        ns = f"{cluster}-ns"
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
            name=ns, labels={SELECTOR_KEY: cluster})))
        kubeconfig = self.cp.kubeconfig_for(f"albus-{cluster}", CLUSTERROLE)
        extra = ["--profile", "realistic"] if knobs.realistic else []
        sim = SimProcess(work, seed=work / "seed.yaml", extra=extra).start()
        cfg = write_config(
            work / "config.yaml", cluster=cluster, controller=sim.url, username=sim.username,
            password=sim.password, nats_url=self.nats.url, kubeconfig=str(kubeconfig), vip_networks=[VIP_NET],
            extra={"AKOSettings": {"namespaceSelector": {"labelKey": SELECTOR_KEY, "labelValue": cluster},
                                   "fullSyncFrequency": 3600, "logLevel": "WARNING"},
                   "ControllerSettings": {"controllerVersion": "22.1.3"},
                   "albus": {"namespace": ns, "syncer": {"concurrency": knobs.concurrency,
                                                         "callsPerSecond": knobs.calls_per_second}}})
        p = BenchPipeline(cluster=cluster, namespace=ns, workdir=work, sim=sim, api=api, config_path=cfg,
                          nats_url=self.nats.url)
        p.knobs = knobs
        p.infra_pids = self.infra_pids
        try:
            if start:
                p.start_services()
            yield p
        finally:
            p.stop_services()
            p.sim.stop()
            try:
                drain_namespace(core, ns)
            except Exception as exc:  # teardown must not hide the error that ended the run
                print(f"   namespace {ns} not deleted: {exc}", flush=True)


# The namespace controller deletes a namespace's objects after the pipeline stops: at 500 Services that is
# ~10 s of API-server and etcd work, at 10,000 ~5 minutes. Left running, it lands on the next scenario's clock
# (edit latency after priority: p99 0.06 s alone, 0.37 s behind it), so a pipeline ends when it is gone.
NAMESPACE_GONE_SECONDS = 900.0


def drain_namespace(core: client.CoreV1Api, ns: str, timeout: float = NAMESPACE_GONE_SECONDS) -> float | None:
    """Delete ``ns`` and wait until the API server no longer has it; the seconds that took, or None
    when it was still there at ``timeout`` (said, not raised: a slow cleanup is not a broken harness)."""
    t0 = time.monotonic()
    try:
        core.delete_namespace(ns)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
    while time.monotonic() - t0 < timeout:
        try:
            core.read_namespace(ns)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            took = time.monotonic() - t0
            if took > 5:
                print(f"   namespace {ns} deleted in {took:.0f}s", flush=True)
            return took
        time.sleep(0.5)
    print(f"   namespace {ns} still terminating after {timeout:.0f}s; the next scenario shares the machine with it",
          flush=True)
    return None
