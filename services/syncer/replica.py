"""One syncer replica: membership, partition claims, workers, outcomes, resync and GC.

A full resync round (``albus resync``, or a stream or KV bucket lost with
NATS's data; :mod:`services.common.resync`) drops every partition, brings
the streams and buckets back, and takes the partitions again: the cache is
listed afresh in bulk and every tree is applied again from a fresh replay,
which writes nothing where the controller already matches and publishes
the outcomes the bus no longer holds. Garbage collection meanwhile waits
for a ``TreesSynced`` of the current AVI stream (:func:`gc.trusted_marker`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from services.common import subjects
from services.common.bus import TOMBSTONE_TTL_SECONDS, Bus
from services.common.config import Config
from services.common.contracts import ApplyOutcome, TreesSynced, decode
from services.common.resync import Resync, Round, answers, first_of, unless_stopped
from services.common.sealing import Keyring
from services.syncer.apply import Fence, TreeApplier
from services.syncer.avi_client import ControllerClient
from services.syncer.cache import ObjectCache
from services.syncer.gc import GC_PARTITION, GcReport, collect_garbage, trusted_marker
from services.syncer.leases import LEASES_BUCKET, MEMBERS_BUCKET, LeaseBook, LeaseLost, assigned
from services.syncer.partition import PartitionWorker

log = logging.getLogger(__name__)

# A stop's budget for finishing in-flight applies and giving leases back: well
# inside a pod's termination grace (30 s in the chart), so the process exits
# before Kubernetes kills it.
STOP_GRACE_SECONDS = 10.0


@dataclass
class Timing:
    tick: float = 2.0  # heartbeat, lease renewal and rebalancing period
    member_ttl: float = 10.0
    lease_ttl: float = 15.0
    resync: float = 1800.0  # full resync and GC period (AKOSettings.fullSyncFrequency)
    gc_delay: float = 5.0  # first GC this long after holding partition 0
    gc_patience: float = 300.0  # how long a due GC waits for the trees being applied (a start's thousands)
    retry_base: float = 1.0
    retry_max: float = 120.0
    bucket_suffix: str = ""  # KV buckets of their own (tests with short TTLs)


def _state_digest(outcome: ApplyOutcome) -> bytes:
    """What an outcome says stands on the controller, in 16 bytes.

    Not ``writes``: that says what this apply did, not what stands; a replay that
    wrote nothing reports the same state as the apply that did the work.
    """
    state = json.dumps(outcome.model_dump(mode="json", exclude={"writes"}), sort_keys=True)
    return hashlib.blake2b(state.encode(), digest_size=16).digest()


class SyncerReplica:
    def __init__(self, bus: Bus, cfg: Config, client: ControllerClient, replica_id: str,
                 timing: Timing | None = None, *, keyring: Keyring | None = None) -> None:
        self.bus = bus
        self.cfg = cfg
        self.cluster = cfg.cluster
        self.client = client
        self.replica_id = replica_id
        self.timing = timing or Timing(resync=float(cfg.AKOSettings.fullSyncFrequency))
        self.cache = ObjectCache(client, self.cluster)
        # The cluster's sealing keys open the private keys its trees carry (docs/tls-secrets.md).
        self.applier = TreeApplier(client, self.cache, keyring or Keyring.from_config(cfg))
        self.leases = LeaseBook(bus, self.cluster, replica_id, member_ttl=self.timing.member_ttl,
                                lease_ttl=self.timing.lease_ttl, bucket_suffix=self.timing.bucket_suffix)
        self.workers: dict[int, PartitionWorker] = {}
        # The state last published per outcome subject, valid while this replica has held every
        # partition since: forgotten whenever it takes one (another replica may have published).
        self._published: dict[str, bytes] = {}
        self.last_gc: GcReport | None = None
        self.gc_runs = 0
        self.applies: Counter[tuple[str, str]] = Counter()  # per (tenant, vs), for tests and metrics
        self._next_resync = 0.0
        # GC has a clock of its own: retrying it (marker missing, lease late) must not re-apply every tree.
        self._next_gc = float("inf")
        self._refresh_since = 0.0
        # What the replica's state is read from: trees, outcomes, its KV buckets.
        streams = [subjects.STREAM_AVI, subjects.STREAM_OUTCOME,
                   f"KV_{MEMBERS_BUCKET}{self.timing.bucket_suffix}", f"KV_{LEASES_BUCKET}{self.timing.bucket_suffix}"]
        if client.budget is not None:
            streams.append(f"KV_{client.budget.bucket}")
        self.resync = Resync(bus, self.cluster, "syncer", replica_id, streams, prepare=self._prepare)
        self.round: Round | None = None
        self._gc_epoch = ""  # the TreesSynced epoch this round's last GC ran from

    # -- outcomes ----------------------------------------------------------

    async def publish(self, outcome: ApplyOutcome) -> None:
        """Publish unless the subject already holds the same outcome.

        Read from the bus every time, not from memory: after a partition moved
        and came back, the other replica's outcome may be the current one.
        """
        self.applies[(outcome.tenant, outcome.vs_name)] += 1
        subject = subjects.outcome(outcome.cluster, outcome.tenant, outcome.vs_name)
        digest = _state_digest(outcome)
        # An outcome unlike the one this replica last published there is new whatever the subject
        # holds (nobody else publishes there while the partition stays ours): no read. The read
        # is a bus round trip per apply, at 100 edits/s a tenth of the syncer's time. Nor after an
        # apply that wrote (every apply at a start: a new VS, new uuids): what stands changed, and at
        # worst the subject gets a duplicate, which its readers take as the level it is.
        if outcome.writes == 0 and self._published.get(subject, digest) == digest:
            d = await self.bus.last(subject)
            if d is not None:
                try:
                    if _state_digest(decode(d.data, ApplyOutcome)) == digest:
                        self._published[subject] = digest
                        return
                except ValueError:
                    pass  # unreadable: replace it
        await self.bus.publish(subject, outcome, ttl=TOMBSTONE_TTL_SECONDS if outcome.deleted else None)
        self._published[subject] = digest

    # -- partitions --------------------------------------------------------

    async def _take(self, part: int) -> None:
        lease = await self.leases.claim(part)
        if lease is None:
            return
        # Another replica may have written this partition's objects and outcomes: the
        # cache must be re-listed before it is trusted again, the outcomes read again.
        self._published.clear()
        self._refresh_since = self.applier.fresh_since = time.monotonic()
        worker = PartitionWorker(
            part, self.cluster, self.bus, self.applier, self._fence_for(part), self.publish,
            retry_base=self.timing.retry_base, retry_max=self.timing.retry_max,
            next_renewal=self.leases.next_renewal,
        )
        self.workers[part] = worker
        if part == GC_PARTITION:
            self._next_gc = min(self._next_gc, time.monotonic() + self.timing.gc_delay)
        log.info("replica %s: took partition %d", self.replica_id, part)

    def _fence_for(self, part: int) -> Fence:
        async def fence() -> None:
            await self.leases.check(part)
        return fence

    async def _drop(self, part: int, *, release: bool) -> None:
        worker = self.workers.pop(part, None)
        if worker is not None:
            await worker.stop()
        if release:
            await self.leases.release(part)
        else:
            self.leases.held.pop(part, None)
        log.info("replica %s: left partition %d", self.replica_id, part)

    async def _rebalance(self) -> None:
        members = await self.leases.members()
        wanted = assigned(self.replica_id, members)
        for part in sorted(set(self.workers) - wanted):
            await self._drop(part, release=True)
        # Renewed by _keep_alive; a lease it lost has left the book.
        for part in sorted(set(self.workers) - set(self.leases.held)):
            await self._drop(part, release=False)
        for part in sorted(wanted - set(self.workers)):
            await self._take(part)
        if self._refresh_since:
            since, self._refresh_since = self._refresh_since, 0.0
            await self._reload(since)
        # Every start awaited (none left running into the next tick); a failed one is tried again then.
        await self._follow_together([w for w in self.workers.values() if w.follower is None], PartitionWorker.start)

    async def _follow_together(self, workers: list[PartitionWorker],
                               follow: Callable[[PartitionWorker], Awaitable[None]]) -> None:
        """``follow`` each worker's partition, all at once: one by one, 64 consumers took seconds to create
        on a loop busy with their trees. One that fails is logged; its worker is left without a follower."""
        for w, exc in zip(workers, await asyncio.gather(*(follow(w) for w in workers), return_exceptions=True),
                          strict=True):
            if isinstance(exc, BaseException):
                log.warning("replica %s: following partition %d: %r", self.replica_id, w.part, exc)

    async def _keep_alive(self, stop: asyncio.Event) -> None:
        """Renew the leases and the membership every tick, on a clock of their own.

        In the tick loop they waited for the rebalancing, the cache reload, the
        consumers' creation, GC: under load the renewals came later than the
        fence allows (60 % of the TTL), every tree was refused, and the refused
        trees crowded the loop until the leases expired altogether.
        """
        while not stop.is_set():
            try:
                await self.leases.renew_all()
                # While the tick loop runs on time its status report keeps the membership alive; when
                # it does not, this bare heartbeat replaces that status: a late replica is not read as settled.
                if time.monotonic() - self.leases.member_written_at >= self.timing.member_ttl / 2:
                    await self.leases.heartbeat()
            except Exception as exc:  # the bus is away: the next tick tries again
                log.warning("replica %s: renewals and heartbeat: %s", self.replica_id, exc)
            await first_of(stop, timeout=self.timing.tick)

    async def _reload(self, since: float) -> None:
        tenants = set(self.cache.tenants()) | {self.cfg.tenant}
        for tenant in sorted(tenants):
            try:
                await self.cache.ensure(tenant, since=since)
            except Exception as exc:
                log.warning("reloading tenant %s: %s", tenant, exc)
                self._refresh_since = since  # try again next tick

    async def _resync_and_gc(self) -> None:
        now = time.monotonic()
        if now >= self._next_resync:
            self._next_resync = now + self.timing.resync
            self.applier.fresh_since = now
            await self._reload(now)
            # Every partition read from the bus again (applied trees are not kept); one that fails is
            # followed again at the next tick.
            await self._follow_together(list(self.workers.values()), PartitionWorker.resync)
            self._next_gc = now
        if GC_PARTITION not in self.workers or now < self._next_gc:
            return
        # Not while trees wait to be applied, for a while: at a start GC's read of every tree competed with
        # creating their VSes (the syncer is the start's slowest stage), and an orphan can wait.
        if now < self._next_gc + self.timing.gc_patience and any(w.applying for w in self.workers.values()):
            return
        self._next_gc = float("inf")  # next with the next resync
        if not await self._gc():
            # Not allowed yet: look again soon rather than after a full period.
            self._next_gc = now + min(self.timing.resync, max(self.timing.tick, self.timing.gc_delay))

    async def _gc(self) -> bool:
        """Collect garbage for the cluster (holder of partition 0 only); whether it ran."""
        try:
            self.gc_runs += 1
            self.last_gc = await collect_garbage(
                self.bus, self.applier, self.cluster, {self.cfg.tenant}, self._fence_for(GC_PARTITION)
            )
        except LeaseLost as exc:
            log.info("gc stopped: %s", exc)
            return False
        except Exception:
            log.exception("gc failed")
            return False
        gc = self.last_gc
        if gc.ran:
            self._gc_epoch = gc.epoch
            log.info("gc ran (TreesSynced %s): %d deleted, %d refused, %d left to their deleted trees, %d reads",
                     gc.epoch, len(gc.deleted), len(gc.refused), gc.left_to_trees, gc.calls.reads)
        else:
            log.info("gc not run: %s", gc.reason)
        return gc.ran

    # -- full resync rounds ------------------------------------------------

    async def _prepare(self) -> None:
        """The streams and the KV buckets this replica uses, created again if NATS lost them."""
        await self.bus.ensure_streams()
        await self.leases.open()
        if self.client.budget is not None:
            await self.client.budget.open()

    async def _begin_round(self, stop: asyncio.Event) -> None:
        """Drop every partition (in-flight applies finish first) and read the bus afresh."""
        try:
            # Streams first: an apply in flight may be waiting to publish its outcome.
            await self._prepare()
        except Exception as exc:
            log.warning("replica %s: bringing the streams back: %s", self.replica_id, exc)
        for part in sorted(self.workers):
            await self._drop(part, release=True)
        self.leases.held.clear()
        rnd = await unless_stopped(self.resync.begin_round(), stop)
        if rnd is None:
            return
        # Partitions are taken again at the next rebalance: listed afresh, replayed from scratch.
        self.round = rnd
        self._gc_epoch = ""

    async def _answer(self) -> None:
        """Answer the round's request once every tree of the translator's answering full view is applied here."""
        rnd = self.round
        if rnd is None or not rnd.request or rnd.request == self.resync.answered or not self.workers:
            return
        marker, _why = await trusted_marker(self.bus, self.cluster)
        if marker is None or not answers(marker.request, rnd.request) or (
                marker.incarnation != rnd.incarnation(subjects.STREAM_AVI)):
            return
        if GC_PARTITION in self.workers and self._gc_epoch != marker.epoch:
            await self._gc()  # from that full view, before saying the cluster converged
            if self._gc_epoch != marker.epoch:
                return
        if not all(self._applied(part, worker, marker) for part, worker in self.workers.items()):
            return
        await self.resync.finish(rnd, epoch=marker.epoch, partitions=self.workers,
                                 detail=f"{len(self.workers)} partitions re-applied")

    def _applied(self, part: int, worker: PartitionWorker, marker: TreesSynced) -> bool:
        """Every live tree of ``marker`` in this partition applied since the worker started, its outcome on the bus."""
        if not worker.settled:
            return False
        done = {name for _, name in worker.reported}
        return all(name in done for name in marker.vs_names if subjects.partition_of(self.cluster, name) == part)

    # -- life --------------------------------------------------------------

    async def _report_status(self) -> None:
        """This replica's partitions and whether all their trees are applied, for probes and tests."""
        settled = bool(self.workers) and all(w.settled for w in self.workers.values())
        status = {"replica": self.replica_id, "cluster": self.cluster, "partitions": sorted(self.workers),
                  "settled": settled, "at": time.time(),
                  # The TreesSynced epoch garbage collection last ran from in this round (holder of partition 0).
                  "gc_epoch": self._gc_epoch}
        await self.leases.report(status)

    async def run(self, stop: asyncio.Event) -> None:
        await self.leases.open()
        await self.leases.heartbeat()
        self._next_resync = time.monotonic() + self.timing.resync
        await self.resync.start()
        keep_alive = asyncio.create_task(self._keep_alive(stop), name=f"syncer {self.replica_id} leases")
        try:
            while not stop.is_set():
                try:
                    if self.round is None or self.resync.needed.is_set():
                        await self._begin_round(stop)
                        continue
                    await self._rebalance()
                    await self._resync_and_gc()
                    await self._answer()
                    await self._report_status()
                except Exception:
                    log.exception("replica %s: tick failed", self.replica_id)
                await first_of(stop, self.resync.needed, timeout=self.timing.tick)
        finally:
            # Before the leases are given back: a renewal racing a release would keep one alive.
            keep_alive.cancel()
            await asyncio.gather(keep_alive, return_exceptions=True)
            await self.resync.stop()
            await self.shutdown()

    async def shutdown(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop taking work, finish in-flight applies, give leases back, leave: all within ``grace``.

        Past it (the broker gone: an outcome's publish waits for it, and every
        release for a request timeout) what is left is dropped: a lease not
        given back expires with the bucket's TTL, and the partition's next
        owner applies again what was in flight (the controller diff makes
        that a no-op where it had landed).
        """
        parts = sorted(self.workers)
        workers = [self.workers.pop(part) for part in parts]
        try:
            async with asyncio.timeout(grace):
                # Together: one slow partition (or request timeout) for all, not one each.
                await asyncio.gather(*(w.stop() for w in workers))
                await asyncio.gather(*(self.leases.release(part) for part in parts))
                await self.leases.leave()
        except TimeoutError:
            log.warning("replica %s: stop not done within %.0fs (the broker unreachable?): leases not "
                        "given back expire with their TTL", self.replica_id, grace)
        log.info("replica %s: left partitions %s", self.replica_id, ", ".join(map(str, parts)) or "none")
