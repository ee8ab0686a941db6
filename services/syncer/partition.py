"""The trees of one partition: follow them, keep the newest per VS, apply each VS in order.

One worker per VS keeps that VS's applies in order; a tree that arrives
while its VS is being applied replaces the pending one (coalescing: only
the newest is applied next). A failed apply is retried with back-off, on
the newest tree at that time (level-based). A tree applied is not kept:
the bus holds it, and a resync reads the partition from the bus again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from opentelemetry.trace import SpanContext

from services.common import subjects, tracing
from services.common.bus import Bus, Delivery, Follower
from services.common.contracts import ApplyOutcome, VsTree, decode
from services.common.resync import first_of
from services.syncer.apply import Fence, TreeApplier
from services.syncer.lanes import EDIT_LANE
from services.syncer.leases import LeaseLost
from services.syncer.metrics import APPLY_SECONDS

log = logging.getLogger(__name__)

Publish = Callable[[ApplyOutcome], Awaitable[None]]
# What came of one apply of a VS's newest tree: what its worker does next.
_Step = Literal["unreadable", "fenced", "failed", "ok", "gone"]


@dataclass
class _Slot:
    # The newest tree as it came (decoded when applied: 10,000 decoded trees cost memory), until
    # applied: then dropped, the bus keeps it (10,000 kept trees were ~35 MB of a restarted syncer).
    latest: bytes | None
    seq: int = 0  # the stream sequence of ``latest``
    applied_seq: int = 0  # of the tree last applied: its replay by a resync is no change's
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    busy: bool = False
    failures: int = 0
    headers: dict[str, str] = field(default_factory=dict)  # of the latest tree: its trace context
    superseded: list[SpanContext] = field(default_factory=list)  # trees replaced before being applied
    new_tree: bool = True  # False when only a resync brought the tree again: that apply is no change's


class PartitionWorker:
    def __init__(
        self,
        part: int,
        cluster: str,
        bus: Bus,
        applier: TreeApplier,
        fence: Fence,
        publish: Publish,
        *,
        retry_base: float = 1.0,
        retry_max: float = 120.0,
        next_renewal: Callable[[], asyncio.Event] | None = None,
    ) -> None:
        self.part = part
        self.cluster = cluster
        self.bus = bus
        self.applier = applier
        self.fence = fence
        self.publish = publish
        self.retry_base = retry_base
        self.retry_max = retry_max
        # What a fenced VS waits for (the lease's next renewal); without it, it polls every retry_base.
        self.next_renewal = next_renewal
        self.slots: dict[tuple[str, str], _Slot] = {}
        self.follower: Follower | None = None
        self._stopping = False
        self.evaluated: set[tuple[str, str]] = set()  # VSes applied (or tried) since this worker started
        self.reported: set[tuple[str, str]] = set()  # VSes whose last apply's outcome is on the bus

    @property
    def settled(self) -> bool:
        """Every tree of the partition seen and applied at least once, none pending."""
        if self.follower is None or not self.follower.caught_up.is_set():
            return False
        return all(key in self.evaluated and not slot.busy and not slot.wake.is_set()
                   for key, slot in self.slots.items())

    @property
    def backlog(self) -> int:
        """VSes with a tree waiting, being applied, or waiting to be retried."""
        return sum(1 for s in self.slots.values() if s.wake.is_set() or s.busy or s.failures > 0)

    @property
    def applying(self) -> bool:
        """Trees to read or apply now: the partition not read yet, or a tree waiting or being applied (one
        waiting for its retry is not: a tree that keeps failing must not hold garbage collection off)."""
        if self.follower is None or not self.follower.caught_up.is_set():
            return True
        return any(s.wake.is_set() or s.busy for s in self.slots.values())

    @property
    def filter_subject(self) -> str:
        # Only this cluster's trees: credentials, owner stamp and GC are per cluster.
        return f"avi.{self.part}.{subjects.esc(self.cluster)}.>"

    async def start(self) -> None:
        self.follower = await self.bus.follow(self.filter_subject, self._on_tree, name=f"partition {self.part}")

    async def _on_tree(self, d: Delivery) -> None:
        # Whose tree it is, from its subject: the tree itself is decoded once, when applied.
        named = subjects.parse_avi_tree(d.subject)
        if named is None:
            tree = decode(d.data, VsTree)
            named = (tree.cluster, tree.tenant, tree.vs_name)
        cluster, tenant, vs_name = named
        if self._stopping or cluster != self.cluster:
            return
        key = (tenant, vs_name)
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = _Slot(latest=d.data)
            slot.task = asyncio.create_task(self._run(key, slot), name=f"vs {vs_name}")
        else:
            if slot.wake.is_set() and (sc := tracing.span_context_of(slot.headers)) is not None:
                slot.superseded.append(sc)
            slot.latest = d.data
        slot.seq = d.stream_seq
        slot.headers = d.headers
        slot.new_tree = d.stream_seq != slot.applied_seq
        slot.wake.set()

    async def resync(self) -> None:
        """Apply every VS's newest tree again, read afresh from the bus (a replay writes nothing if
        nothing changed). Until the partition is read again the worker is not settled."""
        if self.follower is not None:
            await self.follower.stop()
            self.follower = None  # the replica follows it again at its next tick if this start fails
        await self.start()

    async def _run(self, key: tuple[str, str], slot: _Slot) -> None:
        while not self._stopping:
            await slot.wake.wait()
            # Admitted a few at a time: thousands of trees decoded and diffed in one pass of the
            # event loop (a replay, a partition taken) held the lease renewals up past the fence.
            # The tree still counts as pending meanwhile (its wake stays set until admitted).
            # A VS that already stands is an edit: its trees pass the creation backlog at every gate
            # (admission, writing, controller calls), up to a share of each (lanes.py). Decided each
            # time: a VS created by the last apply is an edit from then on.
            EDIT_LANE.set(self.applier.is_edit(*key))
            async with self.applier.admission.lane():
                if self._stopping:
                    return
                step = await self._apply_latest(key, slot)
            if step == "unreadable":
                continue  # nothing to apply: as if it had not come, until the next one
            if step == "fenced":
                await self._fenced_wait(slot)
                slot.wake.set()
                continue
            if step == "gone":
                self.slots.pop(key, None)  # nothing left to do for it
                return
            if step == "ok":
                slot.failures = 0
                continue
            slot.failures += 1
            delay = min(self.retry_max, self.retry_base * 2 ** (slot.failures - 1)) * random.uniform(0.5, 1.0)
            # A newer tree ends the wait at once; otherwise retry the newest after the delay.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(slot.wake.wait(), delay)
            slot.wake.set()

    async def _apply_latest(self, key: tuple[str, str], slot: _Slot) -> _Step:
        """Decode and apply the slot's newest tree; what came of it.

        In a frame of its own that ends with the apply: the decoded tree, its
        bytes and the outcome are not kept alive while the worker waits for the
        next tree (~29 KB per VS: ~290 MB at 10,000 VSes, most of them idle).
        """
        slot.wake.clear()
        raw, seq = slot.latest, slot.seq
        if raw is None:
            return "ok"  # applied already, nothing newer: nothing to do
        tree = self._readable(key, raw)
        if tree is None:
            self.evaluated.add(key)
            return "unreadable"
        slot.busy = True
        outcome: ApplyOutcome | None = None
        try:
            outcome = await self._apply(tree, slot)
        except LeaseLost as exc:
            self.reported.discard(key)
            # Often only a late renewal on a busy machine. If the partition
            # really moved, the replica stops this worker; until then the VS
            # stays pending (not settled) and is tried again shortly.
            log.info("partition %d: %s; %s waits", self.part, exc, tree.vs_name)
            return "fenced"
        except Exception:
            log.exception("partition %d: applying %s failed unexpectedly", self.part, tree.vs_name)
            self.reported.discard(key)
        else:
            self.reported.add(key)
        finally:
            slot.busy = False
            # Evaluated once an outcome (an error's too) is on the bus. One that failed without
            # any (a bus or fence request timing out on a busy loop) is still pending: counted
            # settled, it left Services without a VIP while the replica said it was done.
            if outcome is not None:
                self.evaluated.add(key)
        if outcome is None or not outcome.ok:
            return "failed"
        if slot.latest is raw:  # nothing newer came meanwhile
            if tree.deleted:
                return "gone"
            slot.latest, slot.applied_seq, slot.headers = None, seq, {}
        return "ok"

    def _readable(self, key: tuple[str, str], raw: bytes) -> VsTree | None:
        """The tree, if it decodes and is the one its subject named."""
        try:
            tree = decode(raw, VsTree)
        except Exception as exc:
            log.warning("partition %d: unreadable tree for %s: %s", self.part, key[1], exc)
            return None
        if (tree.cluster, tree.tenant, tree.vs_name) != (self.cluster, *key):
            log.warning("partition %d: the tree on %s's subject is %s/%s of cluster %s", self.part, key[1],
                        tree.tenant, tree.vs_name, tree.cluster)
            return None
        return tree

    async def _fenced_wait(self, slot: _Slot) -> None:
        """Until the lease is renewed (or a newer tree comes), then try again.

        Not a poll: thousands of VSes re-reading and re-diffing their trees every
        retry_base crowded the event loop that renews the lease, so renewals got
        later still and the fence refused every tree for good.
        """
        if self.next_renewal is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(slot.wake.wait(), self.retry_base)
            return
        # The deadline only backs the event up; the replica stops this worker if the lease is really lost.
        await first_of(slot.wake, self.next_renewal(), timeout=self.retry_max)

    async def _apply(self, tree: VsTree, slot: _Slot) -> ApplyOutcome:
        """Apply and publish the outcome in a span caused by the tree's; retries are events on it.

        A periodic resync's apply belongs to no change: it is not traced.
        """
        links, slot.superseded = slot.superseded, []
        traced, slot.new_tree = slot.new_tree or slot.failures > 0, False
        with tracing.handling(f"apply {tree.vs_name}", slot.headers,
                              {"avi.vs_name": tree.vs_name, "avi.tenant": tree.tenant, "albus.deleted": tree.deleted},
                              links=links, enabled=traced) as span, tracing.for_vs(tree.vs_name):
            if slot.failures:
                span.add_event("albus.retry", {"albus.attempt": slot.failures + 1})
            started = time.monotonic()
            outcome = await self.applier.apply(tree, self.fence)
            APPLY_SECONDS.labels("ok" if outcome.ok else "error").observe(time.monotonic() - started)
            span.set_attributes({"albus.ok": outcome.ok, "albus.writes": outcome.writes})
            if not outcome.ok:
                tracing.record_error(span, outcome.error or "apply failed")
            await self.publish(outcome)
            return outcome

    async def stop(self) -> None:
        """Stop taking trees, let in-flight applies finish, then stop the workers."""
        self._stopping = True
        if self.follower is not None:
            await self.follower.stop()
        tasks = [s.task for s in self.slots.values() if s.task is not None]
        for s in self.slots.values():
            if not s.busy and s.task is not None:
                s.task.cancel()
        for s in self.slots.values():
            s.wake.set()  # a busy worker exits after its apply
        await asyncio.gather(*tasks, return_exceptions=True)
        self.slots.clear()
