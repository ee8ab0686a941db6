"""Partition leases and membership in NATS KV, against a real nats-server."""

from __future__ import annotations

import asyncio
import time

import pytest
from nats.errors import TimeoutError as NatsTimeoutError

from albus.broker import NatsServer
from services.common.bus import Bus
from services.syncer.leases import LeaseBook, LeaseLost

SUFFIX = "_t_leases"


async def _book(bus: Bus, replica: str, ttl: float = 2.0, suffix: str = SUFFIX) -> LeaseBook:
    book = LeaseBook(bus, "lease-c", replica, member_ttl=ttl, lease_ttl=ttl, bucket_suffix=suffix)
    await book.open()
    return book


async def test_one_holder_per_partition_and_release_hands_over(nats_server: NatsServer) -> None:
    bus = await Bus.connect(nats_server.url, "t")
    a, b = await _book(bus, "a"), await _book(bus, "b")
    assert await a.claim(7) is not None
    assert await b.claim(7) is None, "a held partition is never claimed twice"
    await a.check(7)
    with pytest.raises(LeaseLost):
        await b.check(7)
    assert await a.renew(7)
    await a.release(7)
    with pytest.raises(LeaseLost):
        await a.check(7)
    assert await b.claim(7) is not None
    await b.check(7)
    await b.release(7)
    await bus.close()


async def test_a_lease_not_renewed_expires_and_its_holder_is_fenced(nats_server: NatsServer) -> None:
    bus = await Bus.connect(nats_server.url, "t")
    a, b = await _book(bus, "a"), await _book(bus, "b")
    assert await a.claim(9) is not None
    deadline = time.monotonic() + 15
    lease = None
    while lease is None:
        assert time.monotonic() < deadline, "the lease never expired"
        lease = await b.claim(9)
        if lease is None:
            await asyncio.sleep(0.2)
    # a never renewed: its fence fails, and its renewal cannot steal the lease back.
    with pytest.raises(LeaseLost):
        await a.check(9)
    assert not await a.renew(9)
    await b.check(9)
    await b.release(9)
    await bus.close()


async def test_members_come_and_go_with_heartbeats(nats_server: NatsServer) -> None:
    bus = await Bus.connect(nats_server.url, "t")
    a, b = await _book(bus, "m1"), await _book(bus, "m2")
    await a.heartbeat()
    await b.heartbeat()
    assert {"m1", "m2"} <= await a.members()
    await b.leave()
    assert "m2" not in await a.members()
    await a.leave()
    await bus.close()


async def test_a_restarted_replica_takes_its_previous_lifes_lease_at_once(nats_server: NatsServer) -> None:
    bus = await Bus.connect(nats_server.url, "t")
    # Buckets of its own: their TTL (fixed at creation) is long enough that nothing expires here.
    old, other = await _book(bus, "pod-0", 300.0, "_t_reborn"), await _book(bus, "pod-1", 300.0, "_t_reborn")
    assert await old.claim(11) is not None
    # The same replica id in a new process (the container restarted in its pod):
    # it does not wait for its own lease to expire, and the dead life is fenced.
    reborn = await _book(bus, "pod-0", 300.0, "_t_reborn")
    assert await reborn.claim(11) is not None
    await reborn.check(11)
    with pytest.raises(LeaseLost):
        await old.check(11)
    assert not await old.renew(11)
    # Nobody else may take it, and a second claim by the holder itself is not a takeover.
    assert await other.claim(11) is None
    assert await reborn.claim(11) is None
    await reborn.release(11)
    await bus.close()


async def test_a_lease_check_that_times_out_refuses_as_lease_lost_and_keeps_the_lease(
    nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a crowded loop the fence's read timed out and the VS backed off with no outcome, as if broken."""
    bus = await Bus.connect(nats_server.url, "t")
    a = await _book(bus, "a", ttl=30.0, suffix=SUFFIX + "_timeout")
    assert await a.claim(5) is not None

    async def times_out(key: str, revision: int | None = None) -> None:
        raise NatsTimeoutError

    monkeypatch.setattr(a.leases_kv, "get", times_out)
    with pytest.raises(LeaseLost):
        await a.check(5)
    assert 5 in a.held
    monkeypatch.undo()
    await a.check(5)
    await a.release(5)
    await bus.close()
