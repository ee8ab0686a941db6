"""The translator's full view after NATS lost its data: only markers of the K8S stream it reads count.

Real nats-server, the translator's round in-process. A watcher that has not
noticed the loss still stamps its synced markers with the stream its known
set came from; such a marker vouches for nothing on the new stream, so the
translator must neither publish ``TreesSynced`` nor delete a tree on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from albus.broker import NatsServer
from albus.broker_testing import connected_bus
from services.common import subjects
from services.common.bus import Bus
from services.common.config import Config, parse_config
from services.common.contracts import KindSynced, TreesSynced, decode
from services.common.incarnation import incarnation
from services.common.resync import Resync, Round
from services.translator.main import REQUIRED_KINDS, STREAMS, Translator
from tests.resync.wipe import wipe

CLUSTER = "trround"


@pytest.fixture
async def bus(fresh_nats: NatsServer) -> AsyncIterator[Bus]:
    async with connected_bus(fresh_nats.url, "translator-round-test") as b:
        yield b


def _cfg(url: str) -> Config:
    return parse_config({"AKOSettings": {"clusterName": CLUSTER}, "albus": {"natsUrl": url}})


async def _markers(bus: Bus, stamp: str) -> None:
    for kind in REQUIRED_KINDS:
        await bus.publish(subjects.k8s_synced(CLUSTER, kind), KindSynced(
            cluster=CLUSTER, kind=kind, resource_version="1", count=0, epoch="w1", incarnation=stamp))


async def _until(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.05)
    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@contextlib.asynccontextmanager
async def _serving(tr: Translator) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(tr.serve(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_markers_of_another_k8s_stream_give_no_full_view(bus: Bus, fresh_nats: NatsServer) -> None:
    resync = Resync(bus, CLUSTER, "translator", "t1", STREAMS)
    rnd = await resync.begin_round()
    tr = Translator(_cfg(fresh_nats.url), bus, resync, rnd)
    async with _serving(tr):
        await _markers(bus, "2001-01-01T00:00:00+00:00")
        await _until(lambda: tr.stale_markers == len(REQUIRED_KINDS), "every stale marker seen and set aside")
        assert not tr.full_view
        assert await bus.last(subjects.trees_synced(CLUSTER)) is None
        # The watcher's new term stamps the stream this round reads: now the view is complete.
        await _markers(bus, rnd.incarnation(subjects.STREAM_K8S))
        await _until(lambda: tr.full_view, "the full view")
    d = await bus.last(subjects.trees_synced(CLUSTER))
    assert d is not None
    marker = decode(d.data, TreesSynced)
    assert marker.incarnation == await incarnation(bus, subjects.STREAM_AVI) == rnd.incarnation(subjects.STREAM_AVI)
    assert marker.epoch == tr.epoch


async def test_a_round_whose_streams_were_replaced_publishes_no_full_view(bus: Bus, fresh_nats: NatsServer) -> None:
    resync = Resync(bus, CLUSTER, "translator", "t1", STREAMS)
    rnd: Round = await resync.begin_round()
    old = rnd.incarnation(subjects.STREAM_K8S)
    # NATS loses everything after the round read its streams; a watcher that
    # has not noticed publishes markers stamped with the stream it knew.
    await asyncio.to_thread(wipe, fresh_nats)
    await _until(lambda: bus.nc.is_connected, "the reconnection")
    await bus.ensure_streams()
    await _markers(bus, old)
    tr = Translator(_cfg(fresh_nats.url), bus, resync, rnd)
    async with _serving(tr):
        await _until(lambda: resync.needed.is_set(), "the round to see its streams replaced")
    assert not tr.full_view
    assert await bus.last(subjects.trees_synced(CLUSTER)) is None
    assert "ALBUS_K8S" in resync.reason
