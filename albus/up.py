"""``albus up``: the whole pipeline on this machine, and ``albus status``.

Starts what is not given: an embedded NATS (JetStream on disk), the Avi
controller simulator (unless a controller is configured), a local
kube-apiserver/etcd/controller-manager (unless ``--kubeconfig``), then the
four services as child processes; applies ``--manifests``; prints how to
reach everything, then a live table of LoadBalancer Services and their VIPs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from albus.broker import NatsServer
from albus.broker_cluster import NatsCluster
from albus.stack import SERVICES, Child, ServiceProcess, SimProcess, service, write_config
from services.common.config import ConfigError, load_config
from services.common.sealing import write_key_file

DEFAULT_WORKDIR = Path(".albus")
ALBUS_NAMESPACE = "avi-system"  # where the watcher's Lease lives, as AKO's namespace
DEMO_SEED = Path(__file__).parent / "demo_seed.yaml"
DEMO_BACKEND_NET = "10.213.0.0/24"  # private to a veth pair on this machine; the demo manifest names .2
DEMO_BACKEND_PORTS = (8080, 5060)


def vip_networks_of_seed(seed: Path) -> list[dict[str, str]]:
    """NetworkSettings.vipNetworkList for the simulator's seeded networks: first v4 and v6 prefix of each."""
    import ipaddress

    out: list[dict[str, str]] = []
    for net in (yaml.safe_load(seed.read_text()) or {}).get("networks") or []:
        entry = {"networkName": net["name"]}
        for sub in net.get("subnets") or []:
            key = "v6cidr" if ipaddress.ip_network(sub["prefix"], strict=False).version == 6 else "cidr"
            entry.setdefault(key, sub["prefix"])
        out.append(entry)
    return out


def _status_path(workdir: Path) -> Path:
    return workdir / "status.json"


def show_status(workdir: Path, as_json: bool) -> int:
    path = _status_path(workdir)
    if not path.exists():
        print(f"albus: nothing is running from {workdir} (start it with `albus up`)", file=sys.stderr)
        return 1
    info = json.loads(path.read_text())
    if as_json:
        print(json.dumps(info, indent=2))
    else:
        _print_access(info)
    return 0


def _print_access(info: dict[str, Any]) -> None:
    print(f"export KUBECONFIG={info['kubeconfig']}")
    ctl = info["controller"]
    print(f"# Avi controller: {ctl['url']}  (user {ctl['username']}, password {ctl['password']})"
          if ctl.get("simulated") else f"# Avi controller: {ctl['url']}")
    print(f"# NATS: {info['nats']}   logs: {info['logs']}   cluster: {info['cluster']}")
    for name, url in (info.get("endpoints") or {}).items():
        print(f"# {name}: curl {url}/metrics   ({url}/healthz, {url}/readyz)")


def _api(kubeconfig: str) -> Any:
    from kubernetes import config

    return config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]


def apply_manifests(kubeconfig: str, paths: list[str]) -> None:
    """Server-side apply of every document, as ``kubectl apply --server-side`` would."""
    from kubernetes import dynamic

    api = dynamic.DynamicClient(_api(kubeconfig))  # type: ignore[no-untyped-call]
    for p in paths:
        for doc in yaml.safe_load_all(Path(p).read_text()):
            if not isinstance(doc, dict):
                continue
            res = api.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
            ns = doc["metadata"].get("namespace") or ("default" if res.namespaced else None)
            kwargs: dict[str, Any] = {"namespace": ns} if res.namespaced else {}
            res.server_side_apply(body=doc, name=doc["metadata"]["name"], field_manager="albus-up",
                                  force_conflicts=True, **kwargs)


def ensure_namespace(kubeconfig: str, name: str) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        client.CoreV1Api(_api(kubeconfig)).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    except ApiException as exc:
        if exc.status != 409:
            raise


def _table(kubeconfig: str) -> list[tuple[str, ...]]:
    from kubernetes import client

    api = _api(kubeconfig)
    listing = client.CoreV1Api(api).list_service_for_all_namespaces()
    rows: list[tuple[str, ...]] = []
    for s in api.sanitize_for_serialization(listing)["items"]:
        spec, status, meta = s.get("spec") or {}, s.get("status") or {}, s["metadata"]
        if spec.get("type") != "LoadBalancer":
            continue
        ports = ",".join(f"{p['port']}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
        ingress = (status.get("loadBalancer") or {}).get("ingress") or []
        vips = ",".join(i["ip"] for i in ingress if i.get("ip")) or "<pending>"
        state = "-"
        for c in status.get("conditions") or []:
            if c.get("type") == "albus.io/LoadBalancerProgrammed":
                state = "Ready" if c.get("status") == "True" else str(c.get("reason"))
        rows.append((str(meta["namespace"]), str(meta["name"]), ports, vips, state))
    return sorted(rows)


def _print_table(rows: list[tuple[str, ...]]) -> None:
    head = ("NAMESPACE", "NAME", "PORTS", "VIP", "STATE")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    print(time.strftime("%H:%M:%S"))
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    sys.stdout.flush()


class LocalStack:
    def __init__(self, workdir: Path, args: argparse.Namespace) -> None:
        self.workdir = workdir
        self.args = args
        self.children: list[Child] = []
        self.nats: NatsServer | NatsCluster | None = None
        self.cp: Any = None
        self.test_host: Any = None  # albus.testhosts.TestHost with --demo-backends

    def start(self) -> dict[str, Any]:
        wd = self.workdir
        logs = wd / "logs"
        base = load_config(self.args.config) if self.args.config else load_config(env={})
        cluster = self.args.cluster or base.cluster
        nats_url = base.albus.natsUrl
        replicas = base.albus.natsReplicas
        if not nats_url:
            nodes = self.args.nats_nodes
            if nodes > 1:
                print(f">> starting a {nodes}-node NATS cluster (streams replicated x{nodes})")
                self.nats = NatsCluster(wd / "nats-cluster", size=nodes).start()
                replicas = nodes
            else:
                self.nats = NatsServer(wd / "nats").start()
            nats_url = self.nats.url
        ctl: dict[str, Any]
        if base.ControllerSettings.controllerHost:
            ctl = {"url": base.ControllerSettings.controllerHost, "username": base.credentials.username,
                   "password": base.credentials.password, "simulated": False}
            vip_networks = [n.model_dump(exclude_defaults=True) for n in base.NetworkSettings.vipNetworkList]
        else:
            sim = SimProcess(wd, seed=DEMO_SEED, state=wd / "sim-state.json", extra=self._demo_backends())
            self.children.append(sim.start())
            ctl = {"url": sim.url, "username": sim.username, "password": sim.password, "simulated": True}
            vip_networks = vip_networks_of_seed(DEMO_SEED)
        kubeconfig = self.args.kubeconfig
        if not kubeconfig:
            from albus.controlplane.launcher import ControlPlane

            print(">> starting the local control plane (kube-apiserver, etcd, kube-controller-manager)")
            self.cp = ControlPlane(wd / "controlplane")
            self.cp.start()
            kubeconfig = str(self.cp.admin_kubeconfig)
            ensure_namespace(kubeconfig, ALBUS_NAMESPACE)
        # The cluster's key for sealing TLS private keys on the bus (docs/tls-secrets.md): made once,
        # kept with the state, so keys sealed by an earlier run still open.
        sealing = Path(base.albus.sealingKeyFile) if base.albus.sealingKeyFile else wd / "sealing.key"
        if not sealing.exists():
            write_key_file(sealing)
        cfg_path = write_config(
            wd / "config.yaml", cluster=cluster, controller=ctl["url"], username=ctl["username"],
            password=ctl["password"], nats_url=nats_url, kubeconfig=kubeconfig, vip_networks=vip_networks,
            extra={"albus": {"namespace": ALBUS_NAMESPACE, "natsReplicas": replicas,
                             "sealingKeyFile": str(sealing.resolve())}},
        )
        load_config(cfg_path, env={})  # refuse a bad combination before starting services
        for name in SERVICES:
            self.children.append(service(name, cfg_path, logs).start())
        # Each service on a free loopback port of its own: /metrics, /healthz, /readyz (docs/metrics.md).
        endpoints = {c.name: c.endpoint() for c in self.children if isinstance(c, ServiceProcess)}
        info = {"kubeconfig": kubeconfig, "controller": ctl, "nats": nats_url, "cluster": cluster,
                "config": str(cfg_path), "logs": str(logs),
                "pids": {c.name: c.pid for c in self.children}, "endpoints": endpoints}
        _status_path(wd).write_text(json.dumps(info, indent=2))
        return info

    def _demo_backends(self) -> list[str]:
        """With --demo-backends: who-am-I backends at 10.213.0.2 (a namespace) and the simulator's data plane."""
        if not self.args.demo_backends:
            return []
        from albus.testhosts import TestHost, available

        why = available()
        if why is not None:
            # The demo still runs: VIPs are allocated and shown, they just carry no traffic.
            print(f">> no demo backends ({why}): VIPs are allocated but forward nothing")
            return []
        self.test_host = TestHost(subnet=DEMO_BACKEND_NET).create()
        self.test_host.serve("demo-backend", *DEMO_BACKEND_PORTS)
        print(f">> demo backends on {self.test_host.address} ports {DEMO_BACKEND_PORTS} (network namespace "
              f"{self.test_host.ns}); the simulator forwards VIP traffic to them")
        return ["--dataplane", "--probe-network", self.test_host.cidr]

    def stop(self) -> None:
        for c in reversed(self.children):
            c.stop()
        if self.test_host is not None:
            self.test_host.destroy()
        if self.cp is not None:
            self.cp.stop()
        if self.nats is not None:
            self.nats.stop()
        _status_path(self.workdir).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="albus up", description=__doc__)
    p.add_argument("--status", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="with `albus status`: machine-readable")
    p.add_argument("--workdir", default=str(DEFAULT_WORKDIR), help="state, logs and kubeconfig (default .albus)")
    p.add_argument("--config", help="albus values file; a controllerHost there replaces the simulator")
    p.add_argument("--kubeconfig", help="use this cluster instead of starting a local control plane")
    p.add_argument("--cluster", help="cluster name (default from the config, else my-cluster)")
    p.add_argument("--manifests", action="append", default=[], help="apply these manifests once up")
    p.add_argument("--fresh", action="store_true", help="start from empty state")
    p.add_argument("--nats-nodes", type=int, choices=(1, 3, 5), default=1,
                   help="run NATS as a cluster of this many nats-servers, streams replicated on each (default 1)")
    p.add_argument("--demo-backends", action="store_true",
                   help="(root) run who-am-I backends at 10.213.0.2 in a network namespace and let the simulator "
                        "forward VIP traffic (examples/demo.yaml points its Services at them); without root "
                        "the demo runs without traffic")
    p.add_argument("--until-ready", type=float, metavar="SECONDS",
                   help="exit 0 once every LoadBalancer Service has a VIP (1 after SECONDS)")
    args = p.parse_args(argv)
    workdir = Path(args.workdir).absolute()
    if args.status:
        return show_status(workdir, args.json)
    if args.fresh and workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(workdir, args)

    def _term(*_: Any) -> None:
        raise KeyboardInterrupt

    # SIGINT too: a shell that starts us in the background leaves it ignored.
    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, _term)
    try:
        try:
            info = stack.start()
        except ConfigError as err:
            print(f"albus up: {err}", file=sys.stderr)
            return 2
        print("albus is up. From another shell:")
        _print_access(info)
        print("  kubectl get svc -A        albus status --json        Ctrl-C stops everything")
        if args.manifests:
            apply_manifests(info["kubeconfig"], args.manifests)
            print(f">> applied {', '.join(args.manifests)}")
        deadline = time.monotonic() + args.until_ready if args.until_ready else None
        last: list[tuple[str, ...]] | None = None
        while True:
            for c in stack.children:
                if not c.alive:
                    print(f"albus up: {c.name} exited; its log: {c.log_path}\n{c.log_tail(2000)}", file=sys.stderr)
                    return 1
            rows = _table(info["kubeconfig"])
            if rows != last:
                _print_table(rows)
                last = rows
            if deadline is not None:
                if rows and all(r[3] != "<pending>" for r in rows):
                    return 0
                if time.monotonic() > deadline:
                    print("albus up: not every Service got a VIP in time", file=sys.stderr)
                    return 1
            time.sleep(1.0)
    except KeyboardInterrupt:
        print("\nstopping")
        return 0
    finally:
        # Stopping takes seconds; a second signal meanwhile (make and its shell each pass one on, or an
        # impatient Ctrl-C) interrupted it and left the simulator, NATS and the services running.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
