"""The health service: apply outcomes and translation reports → Service and Gateway API status, conditions, Events.

A full resync (``albus resync``, or a stream lost with NATS's data) re-reads
the bus: every loop replays its subjects again on top of what it knows, and
writes only where a Service's status differs from what the bus says.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor

from services.common import kube, probes, subjects
from services.common.bus import Bus
from services.common.config import Config, ConfigError
from services.common.resync import Resync, Round, instance_id, set_when_any, unless_stopped
from services.common.service_main import service_main
from services.health.avi_reader import AviReader
from services.health.gateway_writer import GatewayReconciler, RouteReconciler
from services.health.infra_status import InfraStatusWriter
from services.health.ingress_status import IngressReconciler
from services.health.kube_writes import ServiceWriter
from services.health.reconciler import HealthReconciler
from services.health.runtime_reader import RuntimeReader
from services.health.webhook_server import WebhookServer, start_webhook

log = logging.getLogger("albus.health")

# What health reads: trees, outcomes and reports, AviInfraSettings (the control stream is watched anyway).
STREAMS = (subjects.STREAM_AVI, subjects.STREAM_OUTCOME, subjects.STREAM_K8S)
SETTLED_POLL_SECONDS = 0.2


def default_identity() -> str:
    return os.environ.get("POD_NAME") or socket.gethostname()


async def run(cfg: Config, stop: asyncio.Event, *, identity: str | None = None) -> None:
    if not cfg.albus.natsUrl:
        raise ConfigError("albus.natsUrl: health needs a NATS URL")
    # Every API call runs in a thread (the official client blocks): enough for the Service loop's
    # concurrent drain and the other loops beside it, whatever the machine's CPU count.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(cfg.albus.healthStatusConcurrency + 4, thread_name_prefix="health"))
    api = kube.api_client(cfg)
    bus = await Bus.connect(cfg.albus.natsUrl, name=f"albus-health-{cfg.cluster}", replicas=cfg.albus.natsReplicas)
    resync = Resync(bus, cfg.cluster, "health", instance_id(), STREAMS)
    probes.READINESS.require("nats", probes.connected(bus))
    webhook: WebhookServer | None = None
    try:
        await bus.ensure_streams()
        ident = identity or default_identity()
        infra = InfraStatusWriter(api, bus, cfg.cluster, AviReader(cfg),
                                  ServiceWriter(api, ident, normal_events=cfg.AKOSettings.enableEvents),
                                  cfg.ControllerSettings.vrfName, recheck_seconds=cfg.albus.healthPollSeconds * 6,
                                  full_seconds=float(cfg.AKOSettings.fullSyncFrequency))
        runtime = RuntimeReader(cfg) if cfg.ControllerSettings.controllerHost else None
        services = HealthReconciler(api, bus, cfg.cluster, ident, runtime=runtime,
                                    poll_seconds=cfg.albus.healthPollSeconds,
                                    readiness_gates=bool(cfg.albus.readinessGate.port), cfg=cfg)
        webhook = await start_webhook(cfg, api, services.gates) if services.gates is not None else None
        loops = [services,
                 GatewayReconciler(api, bus, cfg.cluster, ident, cfg),
                 RouteReconciler(api, bus, cfg.cluster, ident, cfg), IngressReconciler(api, bus, cfg.cluster, ident, cfg)]
        await resync.start()
        while not stop.is_set():
            rnd = await unless_stopped(resync.begin_round(), stop)
            if rnd is None:
                break
            round_stop = asyncio.Event()
            relay = asyncio.create_task(set_when_any(round_stop, stop, resync.needed))
            answer = asyncio.create_task(_answer_when_settled(loops, infra, resync, rnd))
            try:
                await asyncio.gather(*(r.run(round_stop) for r in loops), infra.run(round_stop))
            finally:
                relay.cancel()
                answer.cancel()
    finally:
        if webhook is not None:
            await webhook.stop()
        probes.READINESS.drop("nats")
        await resync.stop()
        await bus.close()
        api.close()


async def _answer_when_settled(loops: list[HealthReconciler], infra: InfraStatusWriter, resync: Resync,
                               rnd: Round) -> None:
    """Answer the round's resync request once every loop has replayed the bus and brought status in line."""
    while not (all(r.settled.is_set() for r in loops) and infra.replayed):
        await asyncio.sleep(SETTLED_POLL_SECONDS)
    await resync.finish(rnd, detail="outcomes and reports re-read")


def main(argv: list[str] | None = None) -> int:
    return service_main("health", __doc__, argv, lambda cfg, stop, _args: run(cfg, stop))


if __name__ == "__main__":
    raise SystemExit(main())
