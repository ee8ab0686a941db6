"""The simulator's heap and CPython's cyclic garbage collector.

At 10,000 virtual services the store holds millions of containers for the life of the process. The
collector traverses all of them in every full collection, and starts one each time the heap has grown
by a quarter — and, once health probes churn futures and exceptions, several times a minute: measured
with 20,000 probed pools (bench/sim_scaling.py, 27 Nov), six full collections in 32 s took 16.6 s, up to
5.1 s each, with the event loop (every API request) stopped meanwhile.

:class:`HeapSettler` checks the store every ``CHECK_S``; when its record count has changed by
``MIN_RECORDS`` since the last settle (or ``PERIOD_S`` have passed, for a store that large), it collects what is not frozen yet and freezes the survivors
(``gc.freeze``: out of later collections' sight; reference counting still frees them). A collection
then traverses only what came after, so it costs in proportion to the change, not to the store. Store
records make no reference cycles; a cycle frozen by accident (a transient asyncio object alive at that
instant) is collected by a deep settle — unfreeze, collect everything, freeze — ``STALE_S`` after a
light one. Small stores (tests) never reach ``MIN_RECORDS``. The freeze is process-wide,
so only the simulator's own process turns it on (``albus sim``).
"""

from __future__ import annotations

import asyncio
import gc
import time

from albus.sim.store import Store
from albus.sim.tasks import cancel

CHECK_S = 5.0
MIN_RECORDS = 1000
PERIOD_S = 30.0
STALE_S = 600.0


class HeapSettler:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.records = 0      # store records at the last settle
        self.frozen_since_deep = False  # a light settle froze things since the last deep one
        self.at = time.monotonic()      # of the last deep settle
        self.light_at = self.at         # of the last settle of either kind
        self.settles = 0
        self._task: asyncio.Task[None] | None = None

    def due(self, now: float) -> bool:
        n = len(self.store.by_uuid)
        # also now and then while a large store stands still: what the health checks keep (a state per
        # member) becomes long-lived without a record changing
        return abs(n - self.records) >= MIN_RECORDS or (n >= MIN_RECORDS and now - self.light_at >= PERIOD_S)

    def deep_due(self, now: float) -> bool:
        return self.frozen_since_deep and now - self.at >= STALE_S

    def settle(self, *, deep: bool = False) -> None:
        """Collect what is not frozen (with ``deep``, everything, so a frozen cycle goes too); freeze the rest."""
        if deep and gc.get_freeze_count():
            gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.records = len(self.store.by_uuid)
        self.frozen_since_deep = not deep
        self.light_at = time.monotonic()
        if deep:
            self.at = time.monotonic()
        self.settles += 1

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_S)
            if self.deep_due(time.monotonic()):
                self.settle(deep=True)
            elif self.due(time.monotonic()):
                self.settle()
