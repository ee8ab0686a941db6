"""The bus across a nats-server crash: publishes wait it out, followers resume where they were."""

from __future__ import annotations

import asyncio
import logging

import pytest

from albus.broker import NatsServer
from services.common import subjects
from services.common.bus import Bus, Delivery
from services.common.contracts import KubeObject, decode
from tests.unit.test_bus import _svc

CLUSTER = "bus-crash"


def _subject(name: str) -> str:
    return subjects.k8s_object(CLUSTER, "Service", "default", name)


async def test_publish_waits_out_a_broker_crash_and_is_stored(fresh_nats: NatsServer) -> None:
    bus = await Bus.connect(fresh_nats.url, "test")
    await bus.ensure_streams()
    await bus.publish(_subject("before"), _svc(CLUSTER, "before", "1"))
    fresh_nats.kill()
    # Published while the broker is down: must neither raise nor be lost.
    pending = asyncio.ensure_future(bus.publish(_subject("during"), _svc(CLUSTER, "during", "2")))
    # Down for longer than a JetStream request may wait: a publish that gave up would fail here.
    await asyncio.sleep(bus.js._timeout + 1.0)
    assert not pending.done(), "a publish with no broker cannot have been acknowledged"
    await asyncio.to_thread(fresh_nats.start)  # same port, same store: JetStream state survives
    seq = await asyncio.wait_for(pending, 60)
    stored = await bus.last(_subject("during"))
    assert stored is not None and stored.stream_seq == seq
    assert decode(stored.data, KubeObject).resource_version == "2"
    await bus.close()


async def test_follower_gets_what_is_published_after_a_broker_crash(fresh_nats: NatsServer) -> None:
    bus = await Bus.connect(fresh_nats.url, "test")
    await bus.ensure_streams()
    await bus.publish(_subject("a"), _svc(CLUSTER, "a", "1"))
    got: list[tuple[str, str]] = []

    async def on(d: Delivery) -> None:
        o = decode(d.data, KubeObject)
        got.append((o.name, o.resource_version))

    f = await bus.follow(subjects.k8s_cluster(CLUSTER), on)
    await asyncio.wait_for(f.caught_up.wait(), 10)
    fresh_nats.kill()
    await asyncio.to_thread(fresh_nats.start)
    await bus.publish(_subject("a"), _svc(CLUSTER, "a", "2"))
    await bus.publish(_subject("b"), _svc(CLUSTER, "b", "3"))

    async def both_seen() -> None:
        while not {("a", "2"), ("b", "3")} <= set(got):
            await asyncio.sleep(0.05)

    # The lost consumer is noticed by missed heartbeats and recreated from
    # the last stream sequence it delivered: nothing skipped, nothing replayed twice.
    await asyncio.wait_for(both_seen(), 30)
    assert got.count(("a", "1")) == 1
    await f.stop()
    await bus.close()


async def test_a_close_is_not_reported_as_a_disconnect_but_a_crash_is(fresh_nats: NatsServer,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="services.common.bus")
    bus = await Bus.connect(fresh_nats.url, "test")
    await bus.close()
    assert "nats: disconnected" not in caplog.text  # every CLI command ends with a close
    crashed = await Bus.connect(fresh_nats.url, "test")
    fresh_nats.kill()

    async def warned() -> None:
        while "nats: disconnected" not in caplog.text:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(warned(), 10)
    await asyncio.to_thread(fresh_nats.start)

    async def reconnected() -> None:
        while not crashed.nc.is_connected:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(reconnected(), 30)
    await crashed.close()
