"""A pool of 4 syncer processes serving two clusters, 400 trees, two replicas killed -9 mid-apply.

The trees are published on the bus as the translators would; the syncers
are real processes against the simulator process. Afterwards the controller
holds exactly the 400 trees' objects, and the simulator's request log shows
no two writes to one virtual service's objects in flight at the same time
(one replica applies a VS's writes one after another, so an overlap could
only be two replicas racing).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from albus.broker import NatsServer
from albus.stack import SimProcess, service, write_config
from services.common import subjects
from services.common.bus import Bus
from services.common.contracts import TreesSynced, VsTree
from services.common.incarnation import incarnation
from tests.e2e.harness import OBJECT_TYPES, Pipeline, wait_for
from tests.syncer.syncer_trees import l4_tree

pytestmark = [pytest.mark.e2e, pytest.mark.sim]

CLUSTERS = ("poola", "poolb")
PER_CLUSTER = 200
REPLICAS = 4
# Room for 400 VIPs on loopback.
SEED = {"networks": [{"name": "vip-net", "cloud": "Default-Cloud", "subnets": [
    {"prefix": "127.64.0.0/16", "static_ranges": ["127.64.0.10-127.64.3.250"], "type": "STATIC_IPS_FOR_VIP"}]}]}


def trees() -> list[VsTree]:
    return [l4_tree(c, f"svc{i}", ns="shop", subnet=("127.64.0.0", 16), endpoints=[f"10.9.{i % 250}.1"])
            for c in CLUSTERS for i in range(PER_CLUSTER)]


async def publish(url: str, all_trees: list[VsTree]) -> None:
    bus = await Bus.connect(url, "scale-test-translator")
    try:
        await bus.ensure_streams()
        for t in all_trees:
            await bus.publish(subjects.avi_tree(t.cluster, t.tenant, t.vs_name), t)
        for c in CLUSTERS:
            names = tuple(t.vs_name for t in all_trees if t.cluster == c)
            await bus.publish(subjects.trees_synced(c), TreesSynced(
                cluster=c, epoch="e1", vs_names=names, incarnation=await incarnation(bus, subjects.STREAM_AVI)))
    finally:
        await bus.close()


def vs_of(name: str) -> str:
    """The virtual service a written object belongs to (pools are ``<vs>-<PROTO>-<port>``)."""
    for proto in ("-TCP-", "-UDP-", "-SCTP-"):
        if proto in name:
            return name.split(proto, 1)[0]
    return name


def concurrent_writes(writes: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Pairs of writes to one VS's objects whose [start, end] overlap."""
    by_vs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for w in writes:
        by_vs[vs_of(str(w.get("name") or ""))].append(w)
    out = []
    for vs, ws in by_vs.items():
        ws.sort(key=lambda w: w["start"])
        out += [(vs, a, b) for a, b in itertools.pairwise(ws) if b["start"] < a["end"]]
    return out


def test_four_syncers_two_killed_mid_apply_converge_without_racing(fresh_nats: NatsServer, tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(yaml.safe_dump(SEED))
    sim = SimProcess(tmp_path, seed=seed).start()
    cfg = write_config(
        tmp_path / "pool.yaml", cluster=CLUSTERS[0], controller=sim.url, username=sim.username,
        password=sim.password, nats_url=fresh_nats.url, kubeconfig="", vip_networks=[],
        extra={"AKOSettings": {"fullSyncFrequency": 3600}, "ControllerSettings": {"controllerVersion": "22.1.3"},
               "albus": {"syncer": {"callsPerSecond": 40, "concurrency": 16,
                                    "clusters": [{"name": c} for c in CLUSTERS]}}},
    )
    syncers = [service("syncer", cfg, tmp_path / "logs", suffix=f"-{i}").start() for i in range(REPLICAS)]
    views = [Pipeline(cluster=c, namespace="shop", workdir=tmp_path, sim=sim, api=None,  # type: ignore[arg-type]
                      config_path=cfg, nats_url=fresh_nats.url) for c in CLUSTERS]
    try:
        all_trees = trees()
        asyncio.run(publish(fresh_nats.url, all_trees))
        count = lambda: sum(len(v.objects("virtualservice")) for v in views)  # noqa: E731
        wait_for(lambda: count() >= 60, 180, "the first 60 virtual services")
        for victim in syncers[:2]:
            victim.kill()
        at_kill = count()
        assert at_kill < len(all_trees), "everything was applied before the kill: the test proves nothing"
        want = {c: {t: {o.name for tr in all_trees if tr.cluster == c for o in tr.objects if o.type == t}
                    for t in OBJECT_TYPES} for c in CLUSTERS}
        wait_for(lambda: all({t: set(o) for t, o in v.all_objects().items()} == want[v.cluster] for v in views),
                 300, "exactly the 400 trees' objects on the controller")
        writes = views[0].writes()
        assert not concurrent_writes(writes), concurrent_writes(writes)[:5]
        posts = [w for w in writes if w["method"] == "POST" and w["status"] < 300]
        print(f"killed 2 of {REPLICAS} syncers at {at_kill}/{len(all_trees)} VSes; "
              f"{len(writes)} writes ({len(posts)} creates), statuses "
              f"{sorted({w['status'] for w in writes})}; conflicts "
              f"{[(w['method'], w['type'], w['name']) for w in writes if w['status'] == 409][:8]}")
    finally:
        for s in syncers:
            s.stop()
        sim.stop()
