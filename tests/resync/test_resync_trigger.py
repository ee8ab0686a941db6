"""The resync trigger against a real nats-server: lost streams, requests, answers."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from albus.broker import NatsServer
from albus.broker_testing import connected_bus
from services.common import subjects
from services.common.bus import Bus
from services.common.contracts import ResyncDone, ResyncRequest, decode
from services.common.incarnation import StreamMark, losses
from services.common.resync import Resync, answers, new_request_id
from tests.resync.wipe import wipe

CLUSTER = "trig"
# Long enough that only the reconnection, not the periodic look, can notice a wipe within the tests' deadlines.
NO_POLL = 3600.0


@pytest.fixture
async def bus(fresh_nats: NatsServer) -> AsyncIterator[Bus]:
    async with connected_bus(fresh_nats.url, "trigger-test") as b:
        yield b


async def _resync(bus: Bus, instance: str = "i1") -> Resync:
    r = Resync(bus, CLUSTER, "test", instance, (subjects.STREAM_K8S,), poll=NO_POLL)
    await r.start()
    return r


async def _request(bus: Bus) -> str:
    req = new_request_id()
    await bus.publish(subjects.resync_request(CLUSTER), ResyncRequest(cluster=CLUSTER, request=req))
    return req


def test_losses_name_what_happened_to_each_stream() -> None:
    base = {"A": StreamMark("t1", 10), "B": StreamMark("t1", 10), "C": StreamMark("t1", 10), "D": StreamMark("t1", 10)}
    now = {"A": None, "B": StreamMark("t2", 50), "C": StreamMark("t1", 3), "D": StreamMark("t1", 11)}
    lost = losses(base, now)
    assert lost == ["stream A is gone", "stream B was created again (t1 -> t2)",
                    "stream C lost messages (last sequence 10 -> 3)"]
    assert losses(base, base) == []


def test_a_later_request_answers_an_earlier_one() -> None:
    ids = [new_request_id() for _ in range(1000)]  # many within one millisecond
    assert all(answers(b, a) and not answers(a, b) for a, b in itertools.pairwise(ids))
    assert answers(ids[0], ids[0])
    assert not answers("", ids[0])


async def test_a_wiped_store_is_noticed_at_the_reconnection(bus: Bus, fresh_nats: NatsServer) -> None:
    req = await _request(bus)
    r = await _resync(bus)
    try:
        first = await r.begin_round()
        assert first.request == req and first.incarnation(subjects.STREAM_K8S)
        assert not r.needed.is_set()
        await asyncio.to_thread(wipe, fresh_nats)
        await asyncio.wait_for(r.needed.wait(), 60)
        assert "ALBUS_K8S" in r.reason
        # The next round brings the streams back and reads the new incarnation.
        second = await asyncio.wait_for(r.begin_round(), 60)
        assert second.incarnation(subjects.STREAM_K8S) not in ("", first.incarnation(subjects.STREAM_K8S))
        assert not await r.finish(first), "a round of the lost streams must not answer the request"
        assert await bus.last(subjects.resync_done(CLUSTER, "test", "i1")) is None
    finally:
        await r.stop()


async def test_a_request_starts_a_round_that_answers_it(bus: Bus) -> None:
    r = await _resync(bus)
    try:
        assert (await r.begin_round()).request == ""
        req = await _request(bus)
        await asyncio.wait_for(r.needed.wait(), 30)
        rnd = await r.begin_round()
        assert rnd.request == req
        assert await r.finish(rnd, epoch="e1", partitions=[3, 1], detail="x")
        d = await bus.last(subjects.resync_done(CLUSTER, "test", "i1"))
        assert d is not None
        done = decode(d.data, ResyncDone)
        assert (done.request, done.service, done.epoch, done.partitions) == (req, "test", "e1", (1, 3))
        # Answered once: the next round has no request to answer.
        assert not await r.finish(rnd)
        assert (await r.begin_round()).request == ""
    finally:
        await r.stop()


async def test_a_service_started_later_answers_the_request_with_its_first_round(bus: Bus) -> None:
    req = await _request(bus)
    r = await _resync(bus, "late")
    try:
        rnd = await r.begin_round()
        assert rnd.request == req
        # Replaying the request is not a new request: the first round answers it.
        assert not r.needed.is_set()
        assert await r.finish(rnd)
    finally:
        await r.stop()


async def test_an_answer_is_withheld_when_the_stream_was_lost_during_the_round(
        bus: Bus, fresh_nats: NatsServer) -> None:
    r = await _resync(bus)
    try:
        await r.begin_round()
        await _request(bus)
        await asyncio.wait_for(r.needed.wait(), 30)
        rnd = await r.begin_round()
        assert rnd.request
        await asyncio.to_thread(wipe, fresh_nats)
        other = await Bus.connect(fresh_nats.url, "recreate")
        try:
            await other.ensure_streams()
        finally:
            await other.close()
        assert not await r.finish(rnd)
        await asyncio.wait_for(r.needed.wait(), 60)
        assert await bus.last(subjects.resync_done(CLUSTER, "test", "i1")) is None
    finally:
        await r.stop()
