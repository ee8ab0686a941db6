"""``albus syncer``: apply VS trees from the bus to the Avi controller."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import socket

from services.common import probes
from services.common.bus import Bus
from services.common.config import Config, ConfigError, parse_config
from services.common.sealing import Keyring
from services.common.service_main import service_main
from services.syncer import metrics
from services.syncer.avi_client import ControllerClient
from services.syncer.budget import SharedBudget
from services.syncer.replica import SyncerReplica

log = logging.getLogger("albus.syncer")


def default_replica_id() -> str:
    """The pod name (``POD_NAME``), else host name plus pid: one live process each, readable in the KV buckets.

    A pod's name survives its container's restart, so a syncer killed and
    restarted in place takes its own partition leases back at once instead
    of waiting for them to expire.
    """
    raw = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    return re.sub(r"[^A-Za-z0-9_-]", "-", raw)[:64]


def cluster_configs(cfg: Config) -> list[Config]:
    """One configuration per cluster the pool serves (``albus.syncer.clusters``), else just this one."""
    wanted = cfg.albus.syncer.clusters
    if not wanted:
        return [cfg]
    if len({c.name for c in wanted}) != len(wanted):
        raise ConfigError("albus.syncer.clusters: a cluster is named twice")
    out = []
    for c in wanted:
        data = cfg.model_dump(mode="json")
        data["AKOSettings"]["clusterName"] = c.name
        data["ControllerSettings"]["tenantName"] = c.tenantName or cfg.tenant
        # Each cluster's own sealing key; the top-level one belongs to AKOSettings.clusterName only.
        data["albus"]["sealingKeyFile"] = c.sealingKeyFile or (
            cfg.albus.sealingKeyFile if c.name == cfg.cluster else "")
        out.append(parse_config(data))
    return out


async def budget_heartbeat(budget: SharedBudget, stop: asyncio.Event, period: float = 2.0) -> None:
    """Keep this replica counted in the shared budget (its share of the concurrent calls)."""
    while not stop.is_set():
        try:
            await budget.heartbeat()
        except Exception as exc:  # the bus is away: keep the last share
            log.warning("call budget heartbeat: %s", exc)
            # Its bucket may have been lost with NATS's data: create it again if so.
            with contextlib.suppress(Exception):
                await budget.open()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period)


async def run(cfg: Config, stop: asyncio.Event, replica_id: str | None = None) -> None:
    if not cfg.albus.natsUrl:
        raise ConfigError("albus.natsUrl (or NATS_URL) is required")
    if not cfg.ControllerSettings.controllerHost:
        raise ConfigError("ControllerSettings.controllerHost (or CTRL_IPADDRESS) is required")
    configs = cluster_configs(cfg)
    # Read before anything starts: a key file that is configured but unusable is a configuration error.
    keyrings = {c.cluster: Keyring.from_config(c) for c in configs}
    for name, ring in keyrings.items():
        if not ring.can_seal:
            log.warning("cluster %s: no sealing key (albus.sealingKeyFile): trees carrying TLS keys "
                        "cannot be applied for it (docs/tls-secrets.md)", name)
    rid = replica_id or default_replica_id()
    bus = await Bus.connect(cfg.albus.natsUrl, f"albus-syncer-{rid}", replicas=cfg.albus.natsReplicas)
    # One client for every cluster: one login, one token bucket and one
    # concurrency limit per process, whatever the number of clusters.
    client = ControllerClient.from_config(cfg)
    try:
        await bus.ensure_streams()
        s = cfg.albus.syncer
        client.budget = SharedBudget(bus, rid, calls_per_second=s.callsPerSecond, concurrency=s.concurrency)
        await client.budget.open()
        # Per-cluster lease books in one process: owner stamp, tenant and GC stay per cluster.
        replicas = [SyncerReplica(bus, c, client, rid, keyring=keyrings[c.cluster]) for c in configs]
        log.info("syncer %s for clusters %s, controller %s", rid,
                 ", ".join(f"{c.cluster} (tenant {c.tenant})" for c in configs), cfg.ControllerSettings.controllerHost)
        watch(bus, replicas)
        await asyncio.gather(budget_heartbeat(client.budget, stop), *(r.run(stop) for r in replicas))
    finally:
        probes.READINESS.drop("nats")
        probes.READINESS.drop("membership")
        await client.close()
        await bus.close()


def watch(bus: Bus, replicas: list[SyncerReplica]) -> None:
    """Readiness (connected, a live member of every cluster's pool) and the backlog gauges."""
    probes.READINESS.require("nats", probes.connected(bus))

    def membership() -> str | None:
        lapsed = [r.cluster for r in replicas if not r.leases.is_member()]
        return f"no live membership for {', '.join(lapsed)}" if lapsed else None

    probes.READINESS.require("membership", membership)
    metrics.PENDING_TREES.set_function(lambda: sum(w.backlog for r in replicas for w in r.workers.values()))
    metrics.PARTITIONS_HELD.set_function(lambda: sum(len(r.workers) for r in replicas))


def main(argv: list[str] | None = None) -> int:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--replica-id", help="this replica's name in the members bucket (default host-pid)")

    async def serve(cfg: Config, stop: asyncio.Event, args: argparse.Namespace) -> None:
        await run(cfg, stop, args.replica_id)

    return service_main("syncer", __doc__, argv, serve, add_arguments)


if __name__ == "__main__":
    raise SystemExit(main())
