"""The watcher service: while this process holds the cluster's Lease, reflect the cluster onto the bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from services.common import kube
from services.common.bus import Bus
from services.common.config import Config, ConfigError
from services.common.service_main import service_main
from services.watcher.kinds import KINDS, KindSpec
from services.watcher.lease import LeaderElector, LeaseTiming, default_identity, lease_name
from services.watcher.reflectors import ReflectorSet

log = logging.getLogger("albus.watcher")

RESTART_DELAY_SECONDS = 5.0


async def run(
    cfg: Config,
    stop: asyncio.Event,
    *,
    identity: str | None = None,
    timing: LeaseTiming | None = None,
    kinds: Sequence[KindSpec] = KINDS,
    watch_timeout: int = 300,
) -> None:
    """Stand by, lead, and stand by again after a lost lease, until ``stop`` is set."""
    if not cfg.albus.natsUrl:
        raise ConfigError("albus.natsUrl: the watcher needs a NATS URL")
    api = kube.api_client(cfg)
    bus = await Bus.connect(cfg.albus.natsUrl, name=f"albus-watcher-{cfg.cluster}", replicas=cfg.albus.natsReplicas)
    elector = LeaderElector(
        api, kube.albus_namespace(cfg), lease_name(cfg.cluster), identity or default_identity(), timing
    )
    try:
        await bus.ensure_streams()
        while not stop.is_set():
            if not await elector.acquire(stop):
                break
            term = ReflectorSet(api, bus, cfg.cluster, kinds, watch_timeout=watch_timeout)
            try:
                await term.start()
            except Exception:
                # Most likely the bus (reading the stream's state): give the
                # lease to a standby that may fare better, and try again later.
                log.exception("could not start watching")
                await term.stop()
                await elector.release()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RESTART_DELAY_SECONDS)
                continue
            try:
                await elector.hold(stop)
            finally:
                # Stop publishing before the lease is handed back or runs out.
                await term.stop()
    finally:
        await elector.release()
        await bus.close()
        api.close()


def main(argv: list[str] | None = None) -> int:
    return service_main("watcher", __doc__, argv, lambda cfg, stop, _args: run(cfg, stop))


if __name__ == "__main__":
    raise SystemExit(main())
