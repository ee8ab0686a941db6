"""Health's runtime sweeps: every interval, and soon after an apply outcome arrives.

One sweep at a time: outcomes arriving during a sweep ask for one more,
however many they are, and sweeps start at least ``min_gap`` seconds apart,
so a burst of applies costs one or two sweeps, not one per apply. The reads
run in a thread; the view is changed on the event loop, so the reconciler
never sees half a sweep. A sweep that fails changes nothing: the view keeps
the last complete one and the next interval tries again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from services.health import metrics
from services.health.runtime_reader import (
    MemberState,
    PoolSummary,
    RuntimeReader,
    RuntimeReadError,
    VsSummary,
)
from services.health.runtime_view import RuntimeView

log = logging.getLogger(__name__)

Sweep = tuple[dict[str, PoolSummary], dict[str, VsSummary], dict[str, tuple[MemberState, ...]], float]


class RuntimePoller:
    def __init__(self, reader: RuntimeReader, interval: float, on_change: Callable[[set[str]], None], *,
                 refresh: float | None = None, min_gap: float | None = None) -> None:
        self.reader = reader
        self.interval = interval
        self.on_change = on_change  # called with the names of the virtual services whose runtime changed
        self.view = RuntimeView(refresh if refresh is not None else interval * 6)
        self.min_gap = min_gap if min_gap is not None else min(1.0, interval / 2)
        self._nudged = asyncio.Event()
        self.sweeps = 0
        self.failures = 0

    def nudge(self) -> None:
        """An apply happened: sweep soon."""
        self._nudged.set()

    def _read(self) -> Sweep:
        pools = self.reader.pools()
        vss = self.reader.virtual_services()
        now = time.monotonic()
        details = {p.uuid: tuple(self.reader.servers(p.uuid)) for p in self.view.details_wanted(pools, now)}
        return pools, vss, details, now

    async def sweep(self) -> set[str]:
        """One sweep; the virtual services whose runtime changed (empty when the read failed)."""
        try:
            pools, vss, details, now = await asyncio.to_thread(self._read)
        except RuntimeReadError as exc:
            self.failures += 1
            log.warning("runtime sweep failed (the view keeps the last one): %s", exc)
            return set()
        self.sweeps += 1
        changed, _ = self.view.apply(pools, vss, details, now)
        metrics.record_pool_members(metrics.member_counts(pools.values()))
        return changed

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            self._nudged.clear()
            changed = await self.sweep()
            if changed:
                self.on_change(changed)
            waits: set[asyncio.Future[bool]] = {asyncio.ensure_future(self._nudged.wait()),
                                                asyncio.ensure_future(stop.wait())}
            await asyncio.wait(waits, timeout=max(0.0, started + self.interval - time.monotonic()),
                               return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            gap = started + self.min_gap - time.monotonic()
            if gap > 0 and not stop.is_set():
                await asyncio.sleep(gap)
