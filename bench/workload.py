"""The Services a scenario applies, how they are applied, and when their VIPs come back."""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, watch

PROTOS = ("TCP", "UDP", "TCP")


def ports_of(i: int) -> list[dict[str, Any]]:
    """1-3 ports per Service, cycling, so the mix is the same at every N."""
    return [{"name": f"p{k}", "port": 80 + k, "targetPort": 8080 + k, "protocol": PROTOS[k]}
            for k in range(i % 3 + 1)]


def endpoint_ip(i: int, gen: int = 0) -> str:
    # Pod addresses nothing ever connects to (the simulator probes loopback members only).
    return f"10.{244 + gen % 8}.{i // 250 % 250}.{i % 250 + 1}"


def service_doc(ns: str, name: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    # No selector: the harness writes the EndpointSlices itself, as a fleet of ready pods would.
    # No node ports: 10,000 Services with 1-3 ports each would exhaust the 2,768 of the default range.
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": False, "ports": ports}}


def slice_doc(ns: str, name: str, ports: list[dict[str, Any]], ips: list[str]) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{name}-bench", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": name,
                                    "endpointslice.kubernetes.io/managed-by": "bench"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips],
            "ports": [{"name": p["name"], "port": p["targetPort"], "protocol": p["protocol"]} for p in ports]}


def name_of(i: int) -> str:
    return f"svc-{i:05d}"


def documents(ns: str, indexes: range) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for i in indexes:
        ports = ports_of(i)
        docs.append(service_doc(ns, name_of(i), ports))
        docs.append(slice_doc(ns, name_of(i), ports, [endpoint_ip(i), endpoint_ip(i, 1)]))
    return docs


def kubectl_apply(docs: list[dict[str, Any]], workdir: Path, env: dict[str, str], parallel: int = 4) -> float:
    """``kubectl apply --server-side`` of the documents, in `parallel` bulk files at once; returns seconds."""
    workdir.mkdir(parents=True, exist_ok=True)
    chunks = [docs[k::parallel] for k in range(parallel)]
    files = []
    for k, chunk in enumerate(chunks):
        if chunk:
            f = workdir / f"apply-{k}.yaml"
            f.write_text(yaml.safe_dump_all(chunk, sort_keys=False))
            files.append(f)
    t0 = time.monotonic()

    running: list[subprocess.Popen[str]] = []

    def run(f: Path) -> None:
        # --validate=false: the API server validates anyway; kubectl's client-side schema check costs
        # ~50 ms of CPU per object, which at 10,000 Services would make kubectl the benchmark.
        proc = subprocess.Popen(["kubectl", "apply", "--server-side", "--validate=false", "--field-manager=bench",
                                 "-f", str(f)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        running.append(proc)
        _, err = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"kubectl apply failed: {err[-2000:]}")

    ex = ThreadPoolExecutor(len(files))
    try:
        list(ex.map(run, files))
    except BaseException:
        # Interrupted (SIGTERM unwinds as Ctrl-C does): the applies stop too, not minutes later.
        for proc in running:
            proc.kill()
        raise
    finally:
        ex.shutdown()
    return time.monotonic() - t0


class VipWatch:
    """Wall-clock time each Service of a namespace first had a VIP in its status (a watch, not polling)."""

    def __init__(self, api: client.ApiClient, ns: str) -> None:
        self.core = client.CoreV1Api(api)
        self.ns = ns
        self.first: dict[str, float] = {}
        self._w = watch.Watch()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rv = self.core.list_namespaced_service(self.ns).metadata.resource_version
        while True:
            try:
                for ev in self._w.stream(self.core.list_namespaced_service, self.ns, resource_version=rv,
                                         timeout_seconds=300):
                    svc = ev["object"]
                    rv = svc.metadata.resource_version
                    lb = svc.status.load_balancer if svc.status else None
                    if lb and lb.ingress and any(i.ip for i in lb.ingress) and svc.metadata.name not in self.first:
                        with self._changed:
                            self.first[svc.metadata.name] = time.time()
                            self._changed.notify_all()
            except Exception:  # a watch expiring or failing is resumed; the harness deadline bounds it
                if self._stopped:
                    return
                time.sleep(0.5)
                rv = self.core.list_namespaced_service(self.ns).metadata.resource_version
            if self._stopped:
                return

    _stopped = False

    def wait(self, names: set[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not names <= self.first.keys():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 5))
        return True

    def stop(self) -> None:
        self._stopped = True
        self._w.stop()
