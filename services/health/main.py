"""The health service: apply outcomes and translation reports → Service and Gateway API status, conditions, Events."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from services.common import kube
from services.common.bus import Bus
from services.common.config import Config, ConfigError
from services.common.service_main import service_main
from services.health.avi_reader import AviReader
from services.health.gateway_writer import GatewayReconciler, RouteReconciler
from services.health.infra_status import InfraStatusWriter
from services.health.kube_writes import ServiceWriter
from services.health.reconciler import HealthReconciler

log = logging.getLogger("albus.health")


def default_identity() -> str:
    return os.environ.get("POD_NAME") or socket.gethostname()


async def run(cfg: Config, stop: asyncio.Event, *, identity: str | None = None) -> None:
    if not cfg.albus.natsUrl:
        raise ConfigError("albus.natsUrl: health needs a NATS URL")
    api = kube.api_client(cfg)
    bus = await Bus.connect(cfg.albus.natsUrl, name=f"albus-health-{cfg.cluster}", replicas=cfg.albus.natsReplicas)
    try:
        await bus.ensure_streams()
        ident = identity or default_identity()
        infra = InfraStatusWriter(api, bus, cfg.cluster, AviReader(cfg), ServiceWriter(api, ident),
                                  cfg.ControllerSettings.vrfName, recheck_seconds=cfg.albus.healthPollSeconds * 6,
                                  full_seconds=float(cfg.AKOSettings.fullSyncFrequency))
        await asyncio.gather(HealthReconciler(api, bus, cfg.cluster, ident).run(stop), infra.run(stop),
                             GatewayReconciler(api, bus, cfg.cluster, ident).run(stop),
                             RouteReconciler(api, bus, cfg.cluster, ident).run(stop))
    finally:
        await bus.close()
        api.close()


def main(argv: list[str] | None = None) -> int:
    return service_main("health", __doc__, argv, lambda cfg, stop, _args: run(cfg, stop))


if __name__ == "__main__":
    raise SystemExit(main())
