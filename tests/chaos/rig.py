"""What the chaos harness runs: one API server, a secured nats-server on disk, the simulator, a fleet.

Two clusters (``chaos-a``, ``chaos-b``) share one kube-apiserver, each with
its own namespace and namespace selector, its own watcher, translator and
health; a pool of two syncers serves both. NATS is one nats-server, or a
cluster of three with every stream replicated x3 (``nats_nodes=3``).
Everything is a real process that a fault can kill.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from kubernetes import client

from albus import natsconfig
from albus.broker import NatsServer
from albus.broker_cluster import NatsCluster
from albus.controlplane import builder
from albus.controlplane.launcher import ControlPlane
from albus.stack import Child, SimProcess
from tests.multicluster.fleet import Member, ensure_namespace, make_member, seed_with_tenants, syncer_pool

CLUSTERS = {"chaos-a": "admin", "chaos-b": "team-b"}
LABEL = "albus-chaos"
# Made by someone else: must never be touched.
FOREIGN: dict[str, dict[str, Any]] = {
    "not-albus-pool": {},
    "other--apps-web-TCP-80": {"created_by": "ako-other", "markers": [{"key": "clustername", "values": ["other"]}]},
}


@dataclass
class Rig:
    workdir: Path
    plane: ControlPlane
    nats: NatsServer | NatsCluster
    sim: SimProcess
    members: dict[str, Member]
    pool: list[Child]
    ids: dict[str, natsconfig.Identity] = field(default_factory=dict)

    def admin(self, method: str, path: str, **kw: Any) -> Any:
        rsp = requests.request(method, f"{self.sim.url}/_sim/{path}", timeout=30, **kw)
        rsp.raise_for_status()
        return rsp.json() if rsp.content else None

    def processes(self) -> dict[str, Child]:
        out = {f"{m.cluster}/{n}": c for m in self.members.values() for n, c in m.children.items()}
        out.update({p.name: p for p in self.pool})
        return out

    def foreign(self) -> dict[str, tuple[str, Any]]:
        s = next(iter(self.members.values())).avi()
        out = {}
        for name in FOREIGN:
            obj = s.get_object_by_name("pool", name)
            out[name] = (obj["uuid"], obj.get("_last_modified")) if obj else ("missing", None)
        return out

    def logs(self) -> str:
        parts = [f"===== {m.cluster} =====\n{m.logs()}" for m in self.members.values()]
        parts += [f"--- {p.name} ---\n{p.log_tail(3000)}" for p in self.pool]
        return "\n".join(parts)


def _make_foreign_objects(m: Member) -> None:
    """Objects albus did not make: one of nobody's, one of a third cluster (same stamp layout)."""
    s = m.avi()
    for name, extra in FOREIGN.items():
        rsp = s.post("pool", data={"name": name, **extra})
        assert rsp.status_code in (200, 201), rsp.text


@contextlib.contextmanager
def rig(workdir: Path, nats_nodes: int = 1) -> Iterator[Rig]:
    """The rig; with ``nats_nodes`` > 1 NATS is a cluster of that many nodes and every stream has that many copies."""
    assets = builder.locate() or builder.ensure()
    plane = ControlPlane(workdir / "controlplane", assets=assets, gateway_api=False, start_timeout=120)
    ids = {i.user: i for i in natsconfig.identities(list(CLUSTERS))}
    nats: NatsServer | NatsCluster
    if nats_nodes > 1:
        nats = NatsCluster(workdir / "nats", size=nats_nodes, identities=list(ids.values()))
    else:
        conf = workdir / "nats.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(natsconfig.render(list(ids.values())))
        nats = NatsServer(workdir / "nats", config_file=conf)
    sim = SimProcess(workdir, seed=seed_with_tenants(workdir / "seed.yaml", ["team-b"]))
    members: dict[str, Member] = {}
    pool: list[Child] = []
    try:
        plane.start()
        nats.start()
        sim.start()
        pool = syncer_pool(workdir, 2, CLUSTERS, sim, nats, ids, nats_replicas=nats_nodes)
        for name, tenant in CLUSTERS.items():
            m = make_member(workdir / name, name, tenant, plane, sim, nats, ids, namespace=f"{name}-apps",
                            selector=(LABEL, name), nats_replicas=nats_nodes)
            ensure_namespace(client.CoreV1Api(m.api), m.namespace, {LABEL: name})
            m.start_services()
            members[name] = m
        _make_foreign_objects(next(iter(members.values())))
        yield Rig(workdir, plane, nats, sim, members, pool, ids)
    finally:
        for m in members.values():
            m.stop_services()
        for p in pool:
            p.stop()
        sim.stop()
        nats.stop()
        plane.stop()
