"""The controller call budget shared by syncer replicas, against a real nats-server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from albus.broker import NatsServer
from services.common.bus import Bus
from services.syncer.budget import PAUSE_READ_S, SharedBudget

MakeBudget = Callable[..., Awaitable[SharedBudget]]


@pytest.fixture
async def make_budget(nats_server: NatsServer) -> AsyncIterator[MakeBudget]:
    bucket = f"albus_budget_test_{uuid.uuid4().hex[:8]}"
    buses: list[Bus] = []

    async def make(replica: str, *, rate: float = 20, concurrency: int = 8) -> SharedBudget:
        bus = await Bus.connect(nats_server.url, f"budget-{replica}")
        buses.append(bus)
        b = SharedBudget(bus, replica, calls_per_second=rate, concurrency=concurrency, bucket=bucket)
        await b.open()
        return b

    yield make
    for bus in buses:
        await bus.close()


async def test_replicas_together_never_exceed_the_rate(make_budget: MakeBudget) -> None:
    replicas = [await make_budget(f"r{i}", rate=20) for i in range(3)]
    per_second: Counter[int] = Counter()
    end = time.time() + 3.5

    async def hammer(b: SharedBudget) -> None:
        while time.time() < end:
            await b.take()
            per_second[int(time.time())] += 1

    await asyncio.gather(*(hammer(b) for b in replicas))
    full = [n for s, n in per_second.items() if s not in (min(per_second), max(per_second))]
    assert full, per_second
    assert max(per_second.values()) <= 20, per_second  # never more than the budget in a second
    assert min(full) >= 15, per_second  # and the budget is used, not starved by contention


async def test_a_pause_stops_every_replica(make_budget: MakeBudget) -> None:
    a, b = await make_budget("a", rate=1000), await make_budget("b", rate=1000)
    await b.take()
    await a.pause(1.0)  # a was told 429
    await asyncio.sleep(0.3)  # b's cached view of the pause is at most PAUSE_READ_S old
    started = time.monotonic()
    await b.take()
    assert time.monotonic() - started >= 0.4


async def test_concurrency_is_shared_among_live_replicas(make_budget: MakeBudget) -> None:
    a = await make_budget("a", concurrency=8)
    assert await a.heartbeat() == 1 and a.limiter.limit == 8
    b = await make_budget("b", concurrency=8)
    assert await b.heartbeat() == 2 and await a.heartbeat() == 2
    assert a.limiter.limit == 4 and b.limiter.limit == 4


async def test_budget_overhead_per_call_is_small(make_budget: MakeBudget) -> None:
    """Measurement: KV round trips per grant (rate/10 calls) and per pause read, not per call."""
    b = await make_budget("solo", rate=100_000)
    calls = 1000
    started = time.perf_counter()
    for _ in range(calls):
        await b.take()
    per_call_ms = (time.perf_counter() - started) * 1000 / calls
    print(f"shared budget: {per_call_ms:.3f} ms per call, {b.kv_ops / calls:.3f} KV ops per call")
    assert b.kv_ops / calls <= 0.05  # one grant (get + update) covers 10 000 calls; plus a pause read per 0.25 s


async def test_a_call_does_not_wait_for_the_pause_read_while_what_was_read_is_fresh(
        make_budget: MakeBudget, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every call waiting for a bus round trip each quarter second queued the calls behind each other."""
    b = await make_budget("solo", rate=1000)
    await b.take()  # a grant and a first read
    answer = asyncio.Event()
    read = b.kv.get
    asked: list[str] = []

    async def slow_get(key: str) -> object:
        asked.append(key)
        await answer.wait()
        return await read(key)

    monkeypatch.setattr(b.kv, "get", slow_get)
    b._pause_read_at = time.monotonic() - PAUSE_READ_S * 0.75  # due for a new read, not yet stale
    await asyncio.wait_for(b.take(), 5.0)
    assert asked == ["pause"]  # asked ahead, beside the call, before a call would have to wait for it
    b._pause_read_at = time.monotonic() - PAUSE_READ_S  # stale now: the next call waits for the answer
    waiting = asyncio.create_task(b.take())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiting.done()
    answer.set()
    await asyncio.wait_for(waiting, 5.0)


async def test_a_pause_that_cannot_be_read_holds_no_call_up_for_long(
        make_budget: MakeBudget, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bucket unreadable (a NATS failover): one call waits for the failed read, the next ones do not."""
    b = await make_budget("solo", rate=1000)
    await b.take()
    asked: list[str] = []

    async def failing_get(key: str) -> object:
        asked.append(key)
        raise TimeoutError("nats: timeout")

    monkeypatch.setattr(b.kv, "get", failing_get)
    b._pause_read_at = time.monotonic() - PAUSE_READ_S
    await asyncio.wait_for(b.take(), 5.0)
    assert asked == ["pause"]
    for _ in range(50):
        await asyncio.wait_for(b.take(), 5.0)
    assert len(asked) <= 2  # asked again at most once in the time these took, not once per call
