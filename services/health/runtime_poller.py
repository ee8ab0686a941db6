"""Health's runtime sweeps: every interval, and reads of what an apply touched soon after its outcome.

A complete sweep reads every virtual service and pool of the cluster every
``interval``, or less often on a large cluster: sweeps average at most
``sweep_calls_per_second`` controller reads (10,000 Services are ~150
inventory pages: every 5 s, that alone was a real controller's per-client
limit, and the simulator's writes queued behind the reads). In between, an
outcome names its virtual service (``nudge``): the names gathered are read alone with their pools, one such read at a time
and at least ``min_gap`` seconds apart, so a burst of applies costs one or
two small reads. (A complete sweep per outcome burst cost health a quarter
of a core at 20 edits/s over 200 Services, growing with the cluster.) The
reads run in a thread; the view is changed on the event loop, so the
reconciler never sees half a sweep. A read that fails changes nothing: the
view keeps what it had, the names are read again next time, and the next
interval sweeps everything.
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
                 refresh: float | None = None, min_gap: float | None = None,
                 sweep_calls_per_second: float | None = None) -> None:
        self.reader = reader
        self.interval = interval
        self.sweep_calls_per_second = sweep_calls_per_second
        self.on_change = on_change  # called with the names of the virtual services whose runtime changed
        self.view = RuntimeView(refresh if refresh is not None else interval * 6)
        self.min_gap = min_gap if min_gap is not None else min(1.0, interval / 2)
        self._nudged = asyncio.Event()
        self._touched: set[str] = set()  # virtual services applied since the last read
        self._sweep_all = False
        self.sweeps = 0
        self.partial_reads = 0
        self.failures = 0

    def sweep_gap(self, calls: int) -> float:
        """Seconds from one complete sweep's start to the next, for a sweep that made ``calls`` reads."""
        if not self.sweep_calls_per_second:
            return self.interval
        return max(self.interval, calls / self.sweep_calls_per_second)

    def nudge(self, vs_name: str | None = None) -> None:
        """An apply happened: read that virtual service soon (None: sweep everything soon)."""
        if vs_name is None:
            self._sweep_all = True
        else:
            self._touched.add(vs_name)
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

    def _read_some(self, names: set[str]) -> Sweep:
        vss = self.reader.virtual_services(names)
        pools = self.reader.pools({u for vs in vss.values() for u in vs.pools}) if vss else {}
        now = time.monotonic()
        details = {p.uuid: tuple(self.reader.servers(p.uuid)) for p in self.view.details_wanted(pools, now)}
        return pools, vss, details, now

    async def read_some(self, names: set[str]) -> set[str]:
        """Read these virtual services and their pools; those whose runtime changed (empty when it failed)."""
        try:
            pools, vss, details, now = await asyncio.to_thread(self._read_some, names)
        except RuntimeReadError as exc:
            self.failures += 1
            self._touched |= names  # again next time (the next sweep reads them anyway)
            log.warning("runtime read of %d virtual services failed: %s", len(names), exc)
            return set()
        self.partial_reads += 1
        return self.view.apply_some(names, pools, vss, details, now)

    async def run(self, stop: asyncio.Event) -> None:
        next_sweep = 0.0
        while not stop.is_set():
            started = time.monotonic()
            self._nudged.clear()
            if started >= next_sweep or self._sweep_all or not self.view.loaded:
                # Everything: the names gathered meanwhile are in it.
                self._sweep_all, self._touched = False, set()
                calls = self.reader.calls
                changed = await self.sweep()
                next_sweep = started + self.sweep_gap(self.reader.calls - calls)
            else:
                names, self._touched = self._touched, set()
                changed = await self.read_some(names) if names else set()
            if changed:
                self.on_change(changed)
            waits: set[asyncio.Future[bool]] = {asyncio.ensure_future(self._nudged.wait()),
                                                asyncio.ensure_future(stop.wait())}
            await asyncio.wait(waits, timeout=max(0.0, next_sweep - time.monotonic()),
                               return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            gap = started + self.min_gap - time.monotonic()
            if gap > 0 and not stop.is_set():
                await asyncio.sleep(gap)
