"""The controller call budget that every syncer replica shares, kept in NATS KV.

The controller limits what it takes from all of albus together, so scaling
syncers out must not scale the call rate. Three parts, all in the bucket
``albus_controller_budget``:

* **rate**: key ``rate.<second>`` counts the calls granted in that wall-clock
  second, across replicas. A replica takes a *grant* of several calls with
  one compare-and-set (so the KV costs one round trip per grant, not per
  call) and spends it locally; once ``callsPerSecond`` are granted the
  second is full and everybody waits for the next.
* **concurrency**: each replica heartbeats ``member.<replica>``; a replica's
  share of ``albus.syncer.concurrency`` is that total divided by the live
  replicas (at least 1).
* **back-off together**: a replica answered 429/503 writes ``pause`` = the
  wall-clock time until which nobody calls; every replica reads it before
  its calls (at most ``PAUSE_READ_S`` old).

Wall-clock keys assume replicas' clocks agree to well under a second (NTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from types import TracebackType

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError
from nats.js.kv import KeyValue

from services.common.bus import Bus
from services.syncer.leases import open_bucket

log = logging.getLogger(__name__)

BUDGET_BUCKET = "albus_controller_budget"
BUCKET_TTL_S = 10.0  # old rate windows and dead members' heartbeats go away on their own
PAUSE_READ_S = 0.25
MAX_PAUSE_S = 30.0


class Limiter:
    """A semaphore whose limit can change while it is in use."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.in_use = 0
        self._cond = asyncio.Condition()

    async def set_limit(self, limit: int) -> None:
        async with self._cond:
            self.limit = max(1, limit)
            self._cond.notify_all()

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_use < self.limit)
            self.in_use += 1

    async def __aexit__(self, t: type[BaseException] | None, v: BaseException | None,
                        tb: TracebackType | None) -> None:
        async with self._cond:
            self.in_use -= 1
            self._cond.notify_all()


class SharedBudget:
    def __init__(self, bus: Bus, replica_id: str, *, calls_per_second: float, concurrency: int,
                 bucket: str = BUDGET_BUCKET) -> None:
        self.bus = bus
        self.replica_id = replica_id
        self.rate = max(1, int(calls_per_second))
        self.concurrency = concurrency
        self.bucket = bucket
        # Small grants keep a second's calls spread over replicas; large ones cost fewer KV trips.
        self.grant_size = max(1, self.rate // 10)
        self._kv: KeyValue | None = None
        self._tokens = 0
        self._window = -1
        self._lock = asyncio.Lock()
        self._paused_until = 0.0
        self._pause_read_at = -math.inf
        self._pause_reader: asyncio.Task[None] | None = None
        self.kv_ops = 0  # for measurements
        self.limiter = Limiter(concurrency)

    @property
    def kv(self) -> KeyValue:
        assert self._kv is not None, "open() first"
        return self._kv

    async def open(self) -> None:
        self._kv = await open_bucket(self.bus, self.bucket, BUCKET_TTL_S)

    async def heartbeat(self) -> int:
        """Say this replica is alive; take its share of the concurrency. Returns the live replicas."""
        self.kv_ops += 2
        await self.kv.put(f"member.{self.replica_id}", b"1")
        try:
            live = sum(1 for k in await self.kv.keys() if k.startswith("member."))
        except NoKeysError:
            live = 1
        await self.limiter.set_limit(max(1, self.concurrency // max(1, live)))
        return live

    async def _read_pause(self) -> None:
        started = time.monotonic()
        self.kv_ops += 1
        try:
            entry = await self.kv.get("pause")
            self._paused_until = max(self._paused_until, float((entry.value or b"0").decode()))
        except KeyNotFoundError:
            pass
        except Exception as exc:  # the bus is away: keep what we know; asked again like an answer
            # Not at once: every call would wait for a read that times out, and stall the syncer
            # for as long as the bucket cannot be read (a NATS failover).
            log.warning("shared pause not read (%s): calling on what was known", exc)
        self._pause_read_at = started  # its age counts from the question

    async def _fresh_pause(self) -> None:
        """The shared pause as read at most ``PAUSE_READ_S`` ago.

        While calls flow it is read again beside them from half that age, so a
        call rarely waits for the read: every call waiting for one bus round
        trip every quarter of a second made the calls queue behind each other
        here (hundreds of ms each at 100 edits/s). A call after a quiet spell
        waits for it.
        """
        age = time.monotonic() - self._pause_read_at
        if age < PAUSE_READ_S / 2:
            return
        if self._pause_reader is None or self._pause_reader.done():
            self._pause_reader = asyncio.create_task(self._read_pause())
        if age >= PAUSE_READ_S:
            await asyncio.shield(self._pause_reader)

    async def pause(self, seconds: float) -> None:
        """Every replica stops calling for ``seconds`` (the controller said 429/503)."""
        until = time.time() + min(MAX_PAUSE_S, seconds)
        self._paused_until = max(self._paused_until, until)
        for _ in range(5):
            try:
                self.kv_ops += 1
                entry = await self.kv.get("pause")
                if float((entry.value or b"0").decode()) >= until:
                    return
                await self.kv.update("pause", str(until).encode(), last=entry.revision)
                return
            except KeyNotFoundError:
                with contextlib.suppress(KeyWrongLastSequenceError):
                    await self.kv.create("pause", str(until).encode())
                    return
            except KeyWrongLastSequenceError:
                continue  # another replica paused meanwhile: compare again
        log.warning("could not record a shared pause; pausing this replica only")

    async def take(self) -> None:
        """Wait for a shared pause to end and for a call from this second's budget.

        A call with a token left in this second's grant takes it without
        waiting for anything; one caller at a time asks the bucket for a grant.
        """
        while True:
            await self._fresh_pause()
            wait = self._paused_until - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            second = int(time.time())
            if second != self._window:
                self._window, self._tokens = second, 0
            if self._tokens > 0:
                self._tokens -= 1
                return
            async with self._lock:
                if self._window != second or self._tokens > 0:
                    continue  # granted by another caller meanwhile, or a new second
                granted = await self._grant(second)
                if self._window == second:
                    self._tokens = granted
                if granted == 0:
                    await asyncio.sleep(max(0.0, second + 1 - time.time()))

    async def _grant(self, second: int) -> int:
        """Calls granted to this replica from ``second``'s budget (0: the second is spent)."""
        key = f"rate.{second}"
        for _ in range(20):
            self.kv_ops += 1
            try:
                entry = await self.kv.get(key)
            except KeyNotFoundError:
                n = min(self.grant_size, self.rate)
                with contextlib.suppress(KeyWrongLastSequenceError):
                    self.kv_ops += 1
                    await self.kv.create(key, str(n).encode())
                    return n
                continue
            used = int((entry.value or b"0").decode())
            n = min(self.grant_size, self.rate - used)
            if n <= 0:
                return 0
            with contextlib.suppress(KeyWrongLastSequenceError):
                self.kv_ops += 1
                await self.kv.update(key, str(used + n).encode(), last=entry.revision)
                return n
        return 0  # heavy contention: let the next second decide
