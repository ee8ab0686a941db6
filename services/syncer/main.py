"""``albus syncer``: apply VS trees from the bus to the Avi controller."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import socket

from services.common.bus import Bus
from services.common.config import Config, ConfigError
from services.common.service_main import service_main
from services.syncer.avi_client import ControllerClient
from services.syncer.replica import SyncerReplica

log = logging.getLogger("albus.syncer")


def default_replica_id() -> str:
    """Pod name (hostname) plus pid: unique per process, readable in the KV buckets."""
    raw = f"{socket.gethostname()}-{os.getpid()}"
    return re.sub(r"[^A-Za-z0-9_-]", "-", raw)[:64]


async def run(cfg: Config, stop: asyncio.Event, replica_id: str | None = None) -> None:
    if not cfg.albus.natsUrl:
        raise ConfigError("albus.natsUrl (or NATS_URL) is required")
    if not cfg.ControllerSettings.controllerHost:
        raise ConfigError("ControllerSettings.controllerHost (or CTRL_IPADDRESS) is required")
    rid = replica_id or default_replica_id()
    bus = await Bus.connect(cfg.albus.natsUrl, f"albus-syncer-{rid}")
    client = ControllerClient.from_config(cfg)
    try:
        await bus.ensure_streams()
        replica = SyncerReplica(bus, cfg, client, rid)
        log.info("syncer %s for cluster %s, controller %s", rid, cfg.cluster, cfg.ControllerSettings.controllerHost)
        await replica.run(stop)
    finally:
        client.close()
        await bus.close()


def main(argv: list[str] | None = None) -> int:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--replica-id", help="this replica's name in the members bucket (default host-pid)")

    async def serve(cfg: Config, stop: asyncio.Event, args: argparse.Namespace) -> None:
        # avisdk logs request headers at debug level (redacted, but keep it quiet anyway).
        logging.getLogger("avi").setLevel(max(logging.INFO, logging.getLogger().level))
        await run(cfg, stop, args.replica_id)

    return service_main("syncer", __doc__, argv, serve, add_arguments)


if __name__ == "__main__":
    raise SystemExit(main())
