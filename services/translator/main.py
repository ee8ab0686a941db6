"""The translator service: ``k8s.<cluster>.>`` in, ``avi.>`` trees and ``report.>`` out.

It runs in rounds (:mod:`services.common.resync`): each round starts from
nothing but the bus (a fresh graph, the trees and reports the streams hold)
and reaches its full view once every required kind's synced marker *of the
K8S stream it reads* is in; then it publishes every tree that differs, the
deletions of trees nobody wants, and ``TreesSynced`` naming the AVI stream
it read. A full resync (``albus resync``, or a stream lost with NATS's data)
ends the round and starts another.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from services.common import probes, subjects, tracing
from services.common.bus import TOMBSTONE_TTL_SECONDS, Bus, BusRefused, Delivery
from services.common.config import Config
from services.common.contracts import KindSynced, KubeObject, SourceReport, TreesSynced, VsTree, decode
from services.common.resync import Resync, Round, first_of, instance_id, unless_stopped
from services.common.service_main import service_main
from services.common.waves import waves
from services.translator import metrics
from services.translator.causes import Causes
from services.translator.engine import Changes, Engine
from services.translator.published import Published

log = logging.getLogger("albus.translator")

# What a round's state is read from: objects, trees, reports (the control stream is watched anyway).
STREAMS = (subjects.STREAM_K8S, subjects.STREAM_AVI, subjects.STREAM_OUTCOME)
ROUND_RETRY_SECONDS = 2.0
PUBLISH_WINDOW = 64  # messages whose acknowledgements are awaited together (waves.py)
# Sources translated per part of a flush, each part published before the next is built: a full
# view's 10,000 trees held at once until published were ~170 MB of the translator's peak memory.
FLUSH_PART = 500

# Kinds whose full list must be on the bus before the translator may decide
# that a tree is no longer wanted. AviInfraSetting too: without it a Service
# naming one looks invalid, and its tree must not be judged unwanted (the
# watcher marks the kind synced, empty, when its CRD is not installed). Secret
# (TLS ones only): without them an HTTPS listener's certificate looks missing.
# Ingress and IngressClass: a shard's tree holds every Ingress placed on it.
# Pod (gated ones only): without them a gated pod's member would look disabled.
REQUIRED_KINDS = ("Service", "EndpointSlice", "Namespace", "AviInfraSetting", "GatewayClass", "Gateway",
                  "HTTPRoute", "ReferenceGrant", "TCPRoute", "UDPRoute", "TLSRoute", "Secret", "Ingress",
                  "IngressClass", "Pod")


class Translator:
    """One round of translation: a fresh graph fed from the K8S stream the round read."""

    def __init__(self, cfg: Config, bus: Bus, resync: Resync, rnd: Round,
                 vip_memory: dict[str, Published] | None = None) -> None:
        self.cfg = cfg
        self.bus = bus
        self.resync = resync
        self.round = rnd
        self.engine = Engine(cfg)
        self.engine.vip_memory = dict(vip_memory or {})
        self.stale_markers = 0
        self.synced: dict[str, str] = {}
        self.wake = asyncio.Event()
        self.full_view = False
        self.epoch = uuid.uuid4().hex[:12]
        self.causes = Causes()  # the traced changes behind what is dirty
        self.dirty_since: float | None = None  # when the first untranslated change came (monotonic)
        metrics.PENDING_SOURCES.set_function(lambda: len(self.engine.dirty))

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
            if marker.incarnation != self.round.incarnation(subjects.STREAM_K8S):
                # Listed against another incarnation of the stream (one lost
                # with NATS's data): it says nothing about what this one holds.
                self.stale_markers += 1
                log.info("ignoring %s synced marker of another K8S stream (%s)", marker.kind,
                         marker.incarnation or "unstamped")
                return
            self.synced[marker.kind] = marker.epoch
        else:
            self.causes.add(self.engine.observe(decode(d.data, KubeObject)), d.span_context())
            if self.dirty_since is None:
                self.dirty_since = time.monotonic()
        self.wake.set()

    async def publish(self, changes: Changes, causes: Causes) -> None:
        """The trees, then the reports, each in waves (waves.py); all acknowledged when it returns."""
        trees = [(subjects.avi_tree(t.cluster, t.tenant, t.vs_name), t) for t in changes.trees]
        for tree_wave in waves(trees, PUBLISH_WINDOW):
            await asyncio.gather(*(self._publish_tree(subj, tree, causes) for subj, tree in tree_wave))
        reports = [(subjects.report(r.cluster, r.source.kind, r.source.namespace, r.source.name), r)
                   for r in changes.reports]
        for report_wave in waves(reports, PUBLISH_WINDOW):
            await asyncio.gather(*(self._publish_report(subj, rep, causes) for subj, rep in report_wave))

    async def _publish_tree(self, subj: str, tree: VsTree, causes: Causes) -> None:
        with tracing.if_caused(f"translate {tree.vs_name}", causes.of(tree.sources),
                               {"avi.vs_name": tree.vs_name, "albus.deleted": tree.deleted},
                               about=(tree.cluster, ",".join(s.key() for s in tree.sources))):
            await self.bus.publish(subj, tree, ttl=TOMBSTONE_TTL_SECONDS if tree.deleted else None)
            log.info("%s tree %s (%s)", "deleted" if tree.deleted else "published", tree.vs_name,
                     tree.checksum[:8])

    async def _publish_report(self, subj: str, rep: SourceReport, causes: Causes) -> None:
        with tracing.if_caused(f"report {rep.source.key()}", causes.of((rep.source,)),
                               {"albus.problems": len(rep.problems)}, about=(rep.cluster, rep.source.key())):
            await self.bus.publish(subj, rep, ttl=None if rep.problems or rep.gateway else TOMBSTONE_TTL_SECONDS)

    def _taken(self) -> float | None:
        """The start of the changes a flush is about to take (those arriving meanwhile start anew)."""
        since, self.dirty_since = self.dirty_since, None
        return since

    @staticmethod
    def _translated(since: float | None) -> None:
        if since is not None:
            metrics.TRANSLATE_SECONDS.observe(time.monotonic() - since)

    async def flush(self, causes: Causes) -> None:
        """Translate what is dirty and publish it, a part at a time (FLUSH_PART)."""
        while True:
            await self.publish(self.engine.flush(FLUSH_PART), causes)
            if not self.engine.flushing:
                return

    async def step(self, caught_up: bool) -> None:
        if self.full_view:
            since = self._taken()
            await self.flush(self.causes.take())
            self._translated(since)
            return
        if not caught_up or any(k not in self.synced for k in REQUIRED_KINDS):
            return
        # Complete on the streams this round read, if they still are the current ones.
        if not await self.resync.still_valid(self.round):
            return
        self.engine.mark_all()
        causes = self.causes.take()
        since = self._taken()
        await self.flush(causes)
        await self.publish(self.engine.stale(), causes)
        self._translated(since)
        self.full_view = True
        marker = TreesSynced(cluster=self.cfg.cluster, epoch=self.epoch, vs_names=self.engine.live_vs_names(),
                             incarnation=self.round.incarnation(subjects.STREAM_AVI), request=self.round.request)
        await self.bus.publish(subjects.trees_synced(self.cfg.cluster), marker)
        log.info("full view: %d trees live", len(marker.vs_names))
        await self.resync.finish(self.round, epoch=self.epoch, detail=f"{len(marker.vs_names)} trees live")

    async def serve(self, stop: asyncio.Event) -> None:
        """Seed, follow the cluster's objects and translate, until ``stop`` or a full resync is needed."""
        await self.seed()
        follower = await self.bus.follow(subjects.k8s_cluster(self.cfg.cluster), self.on_k8s, name="translator")
        self.wake.set()
        try:
            while not stop.is_set() and not self.resync.needed.is_set():
                await first_of(self.wake, stop, self.resync.needed)
                if stop.is_set() or self.resync.needed.is_set():
                    break
                self.wake.clear()
                # Let a burst of events land before recomputing: one tree per burst.
                await asyncio.sleep(0.01)
                await self.step(follower.caught_up.is_set())
        finally:
            await follower.stop()


async def run(cfg: Config, stop: asyncio.Event) -> None:
    bus = await Bus.connect(cfg.albus.natsUrl, f"albus-translator-{cfg.cluster}", replicas=cfg.albus.natsReplicas)
    resync = Resync(bus, cfg.cluster, "translator", instance_id(), STREAMS)
    probes.READINESS.require("nats", probes.connected(bus))
    try:
        await bus.ensure_streams()
        await resync.start()
        # The trees this process published, kept across rounds for the VIP ids
        # they carry (a re-allocated VIP keeps its id after the AVI stream is lost).
        memory: dict[str, Published] = {}
        while not stop.is_set():
            rnd = await unless_stopped(resync.begin_round(), stop)
            if rnd is None:
                break
            tr = Translator(cfg, bus, resync, rnd, memory)
            try:
                await tr.serve(stop)
            except BusRefused:
                raise  # wrong credentials: another round cannot help
            except Exception:
                # Whatever went wrong, the bus still holds the truth: start over from it.
                log.exception("translation round failed; starting a new one from the bus")
                resync.trigger("the translation round failed")
                await first_of(stop, timeout=ROUND_RETRY_SECONDS)
            memory = {**memory, **tr.engine.published}
    finally:
        probes.READINESS.drop("nats")
        await resync.stop()
        await bus.close()


def main(argv: list[str] | None = None) -> int:
    return service_main("translator", __doc__, argv, lambda cfg, stop, _args: run(cfg, stop))
