"""The health service: apply outcomes and translation reports → Service status, conditions, Events."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket

from services.common import kube
from services.common.bus import Bus
from services.common.config import Config, ConfigError, load_config
from services.health.reconciler import HealthReconciler

log = logging.getLogger("albus.health")


def default_identity() -> str:
    return os.environ.get("POD_NAME") or socket.gethostname()


async def run(cfg: Config, stop: asyncio.Event, *, identity: str | None = None) -> None:
    if not cfg.albus.natsUrl:
        raise ConfigError("albus.natsUrl: health needs a NATS URL")
    api = kube.api_client(cfg)
    bus = await Bus.connect(cfg.albus.natsUrl, name=f"albus-health-{cfg.cluster}")
    try:
        await bus.ensure_streams()
        await HealthReconciler(api, bus, cfg.cluster, identity or default_identity()).run(stop)
    finally:
        await bus.close()
        api.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="albus health", description=__doc__)
    parser.add_argument("--config", help="albus values file (default: $ALBUS_CONFIG)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except (ConfigError, OSError) as exc:
        print(f"albus health: {exc}")
        return 2
    logging.basicConfig(
        level=cfg.AKOSettings.logLevel.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return asyncio.run(_serve(cfg))


async def _serve(cfg: Config) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run(cfg, stop)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
