"""The watcher service: while this process holds the cluster's Lease, reflect the cluster onto the bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from services.common import kube, probes, subjects
from services.common.bus import Bus
from services.common.config import Config, ConfigError
from services.common.reflector import KindSpec
from services.common.resync import Resync, Round, set_when_any, unless_stopped
from services.common.sealing import Keyring
from services.common.service_main import service_main
from services.watcher import metrics
from services.watcher.kinds import KINDS, with_keyring
from services.watcher.lease import LeaderElector, LeaseTiming, default_identity, lease_name
from services.watcher.reflectors import ReflectorSet

log = logging.getLogger("albus.watcher")

RESTART_DELAY_SECONDS = 5.0
LISTED_POLL_SECONDS = 0.2
# What the watcher's state is read from (the control stream is watched anyway).
STREAMS = (subjects.STREAM_K8S,)


async def run(
    cfg: Config,
    stop: asyncio.Event,
    *,
    identity: str | None = None,
    timing: LeaseTiming | None = None,
    kinds: Sequence[KindSpec] = KINDS,
    watch_timeout: int = 300,
) -> None:
    """Stand by, lead, and stand by again after a lost lease, until ``stop`` is set.

    While leading, a full resync (``albus resync``, or the K8S stream lost
    with NATS's data) ends the term and starts a new one, lease kept: a new
    term forgets what it believed the bus holds and reads it again, so an
    emptied stream gets every object again.
    """
    if not cfg.albus.natsUrl:
        raise ConfigError("albus.natsUrl: the watcher needs a NATS URL")
    keyring = Keyring.from_config(cfg)  # a key file that is configured but unusable stops the watcher here
    if not keyring.can_seal:
        log.warning("no sealing key (albus.sealingKeyFile): TLS Secrets are published without their keys and "
                    "HTTPS listeners say so (docs/tls-secrets.md)")
    kinds = with_keyring(kinds, keyring)
    api = kube.api_client(cfg)
    bus = await Bus.connect(cfg.albus.natsUrl, name=f"albus-watcher-{cfg.cluster}", replicas=cfg.albus.natsReplicas)
    elector = LeaderElector(
        api, kube.albus_namespace(cfg), lease_name(cfg.cluster), identity or default_identity(), timing
    )
    resync = Resync(bus, cfg.cluster, "watcher", elector.identity, STREAMS)
    current: list[ReflectorSet] = []  # this term's reflectors, while leading
    watch(bus, elector, current)
    try:
        await bus.ensure_streams()
        await resync.start()
        while not stop.is_set():
            if not await elector.acquire(stop):
                break
            rnd = await unless_stopped(resync.begin_round(), stop)
            if rnd is None:
                break
            term = ReflectorSet(api, bus, cfg.cluster, kinds, watch_timeout=watch_timeout,
                                incarnation=rnd.incarnation(subjects.STREAM_K8S))
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
            current[:] = [term]
            leave = asyncio.Event()  # stop, or a resync: the term ends either way
            relay = asyncio.create_task(set_when_any(leave, stop, resync.needed))
            answer = asyncio.create_task(_answer_when_listed(term, resync, rnd))
            try:
                await elector.hold(leave)
            finally:
                relay.cancel()
                answer.cancel()
                # Stop publishing before the lease is handed back or runs out.
                current.clear()
                await term.stop()
            if resync.needed.is_set() and not stop.is_set():
                log.info("new term for a full resync (%s); keeping the lease", resync.reason)
    finally:
        probes.READINESS.drop("nats")
        probes.READINESS.drop("reflecting")
        await resync.stop()
        await elector.release()
        await bus.close()
        api.close()


def watch(bus: Bus, elector: LeaderElector, current: list[ReflectorSet]) -> None:
    """Readiness and gauges: connected; a leader once every kind is listed this term, a standby as it is."""
    probes.READINESS.require("nats", probes.connected(bus))

    def reflecting() -> str | None:
        # A standby is ready to take over: marking it unready would stall a rollout of two replicas.
        if not elector.is_leader:
            return None
        if not current or not current[0].listed():
            return "leading; not every kind listed yet"
        return None

    probes.READINESS.require("reflecting", reflecting)
    metrics.LEADER.set_function(lambda: float(elector.is_leader))
    metrics.KINDS_LISTED.set_function(
        lambda: sum(1 for t in current for p in t.publishers.values() if p.relists > 0))


async def _answer_when_listed(term: ReflectorSet, resync: Resync, rnd: Round) -> None:
    """Answer the round's resync request once every kind was listed and published this term."""
    while not term.listed():
        await asyncio.sleep(LISTED_POLL_SECONDS)
    await resync.finish(rnd, epoch=term.epoch, detail=f"{len(term.reflectors)} kinds listed")


def main(argv: list[str] | None = None) -> int:
    return service_main("watcher", __doc__, argv, lambda cfg, stop, _args: run(cfg, stop))


if __name__ == "__main__":
    raise SystemExit(main())
