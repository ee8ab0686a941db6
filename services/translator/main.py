"""The translator service: ``k8s.<cluster>.>`` in, ``avi.>`` trees and ``report.>`` out."""

from __future__ import annotations

import asyncio
import logging
import uuid

from services.common import subjects, tracing
from services.common.bus import TOMBSTONE_TTL_SECONDS, Bus, Delivery
from services.common.config import Config
from services.common.contracts import KindSynced, KubeObject, SourceReport, TreesSynced, VsTree, decode
from services.common.service_main import service_main
from services.translator.causes import Causes
from services.translator.engine import Changes, Engine

log = logging.getLogger("albus.translator")

# Kinds whose full list must be on the bus before the translator may decide
# that a tree is no longer wanted. AviInfraSetting too: without it a Service
# naming one looks invalid, and its tree must not be judged unwanted (the
# watcher marks the kind synced, empty, when its CRD is not installed).
REQUIRED_KINDS = ("Service", "EndpointSlice", "Namespace", "AviInfraSetting", "GatewayClass", "Gateway",
                  "HTTPRoute", "ReferenceGrant", "TCPRoute", "UDPRoute", "TLSRoute")


class Translator:
    def __init__(self, cfg: Config, bus: Bus) -> None:
        self.cfg = cfg
        self.bus = bus
        self.engine = Engine(cfg)
        self.synced: dict[str, str] = {}
        self.wake = asyncio.Event()
        self.full_view = False
        self.epoch = uuid.uuid4().hex[:12]
        self.causes = Causes()  # the traced changes behind what is dirty

    async def seed(self) -> None:
        """What earlier runs published, so nothing unchanged is published again."""
        cluster = self.cfg.cluster
        for d in (await self.bus.snapshot(subjects.avi_cluster(cluster))).values():
            self.engine.remember_tree(decode(d.data, VsTree))
        for d in (await self.bus.snapshot(subjects.report_cluster(cluster))).values():
            self.engine.remember_report(decode(d.data, SourceReport))

    async def on_k8s(self, d: Delivery) -> None:
        parsed = subjects.parse_k8s(d.subject)
        if parsed.name is None:
            marker = decode(d.data, KindSynced)
            self.synced[marker.kind] = marker.epoch
        else:
            self.causes.add(self.engine.observe(decode(d.data, KubeObject)), d.span_context())
        self.wake.set()

    async def publish(self, changes: Changes, causes: Causes) -> None:
        for tree in changes.trees:
            subj = subjects.avi_tree(tree.cluster, tree.tenant, tree.vs_name)
            with tracing.caused_by(f"translate {tree.vs_name}", causes.of(tree.sources),
                                   {"avi.vs_name": tree.vs_name, "albus.deleted": tree.deleted},
                                   about=(tree.cluster, ",".join(s.key() for s in tree.sources))):
                await self.bus.publish(subj, tree, ttl=TOMBSTONE_TTL_SECONDS if tree.deleted else None)
                log.info("%s tree %s (%s)", "deleted" if tree.deleted else "published", tree.vs_name,
                         tree.checksum[:8])
        for rep in changes.reports:
            subj = subjects.report(rep.cluster, rep.source.kind, rep.source.namespace, rep.source.name)
            with tracing.caused_by(f"report {rep.source.key()}", causes.of((rep.source,)),
                                   {"albus.problems": len(rep.problems)}, about=(rep.cluster, rep.source.key())):
                await self.bus.publish(subj, rep, ttl=None if rep.problems or rep.gateway else TOMBSTONE_TTL_SECONDS)

    async def step(self, caught_up: bool) -> None:
        if self.full_view:
            await self.publish(self.engine.flush(), self.causes.take())
            return
        if not caught_up or any(k not in self.synced for k in REQUIRED_KINDS):
            return
        self.engine.mark_all()
        causes = self.causes.take()
        await self.publish(self.engine.flush(), causes)
        await self.publish(self.engine.stale(), causes)
        self.full_view = True
        marker = TreesSynced(cluster=self.cfg.cluster, epoch=self.epoch, vs_names=self.engine.live_vs_names())
        await self.bus.publish(subjects.trees_synced(self.cfg.cluster), marker)
        log.info("full view: %d trees live", len(marker.vs_names))


async def run(cfg: Config, stop: asyncio.Event) -> None:
    bus = await Bus.connect(cfg.albus.natsUrl, f"albus-translator-{cfg.cluster}")
    try:
        await bus.ensure_streams()
        tr = Translator(cfg, bus)
        await tr.seed()
        follower = await bus.follow(subjects.k8s_cluster(cfg.cluster), tr.on_k8s, name="translator")
        tr.wake.set()
        while not stop.is_set():
            waiter = asyncio.ensure_future(tr.wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
            if stop.is_set():
                break
            tr.wake.clear()
            # Let a burst of events land before recomputing: one tree per burst.
            await asyncio.sleep(0.01)
            await tr.step(follower.caught_up.is_set())
            if not tr.full_view and follower.caught_up.is_set():
                continue
        await follower.stop()
    finally:
        await bus.close()


def main(argv: list[str] | None = None) -> int:
    return service_main("translator", __doc__, argv, lambda cfg, stop, _args: run(cfg, stop))
