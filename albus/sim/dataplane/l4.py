"""L4 forwarding: TCP connections spliced to a member, UDP datagrams relayed per client flow."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, cast

from albus.sim.dataplane.balancer import Member
from albus.sim.dataplane.stats import VsStats

CONNECT_TIMEOUT = 3.0
UDP_IDLE = 30.0  # a UDP flow (client address → member) is forgotten after this long without traffic


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


async def open_member(member: Member) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    try:
        return await asyncio.wait_for(asyncio.open_connection(member.ip, member.port), CONNECT_TIMEOUT)
    except (TimeoutError, OSError):
        return None


async def _copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter, count: Callable[[int], None]) -> None:
    try:
        while data := await src.read(65536):
            count(len(data))
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()  # half-close: the other direction may still be talking
    except (OSError, RuntimeError):
        pass


async def splice(client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 server: tuple[asyncio.StreamReader, asyncio.StreamWriter], stats: VsStats) -> None:
    """Copy both ways until both sides are done, counting bytes."""
    def inbound(n: int) -> None:
        stats.bytes_in += n

    def outbound(n: int) -> None:
        stats.bytes_out += n

    try:
        await asyncio.gather(_copy(client[0], server[1], inbound), _copy(server[0], client[1], outbound))
    finally:
        await close(server[1])


async def forward_tcp(client: tuple[asyncio.StreamReader, asyncio.StreamWriter], member: Member | None,
                      stats: VsStats, first: bytes = b"") -> None:
    """Splice a client connection to a member; `first` is what was already read (a peeked TLS hello)."""
    if member is None:
        stats.no_member += 1
        return
    ms = stats.member(member.key)
    ms.connections += 1
    ms.active += 1
    try:
        server = await open_member(member)
        if server is None:
            stats.no_member += 1
            return
        if first:
            stats.bytes_in += len(first)
            server[1].write(first)
        await splice(client, server, stats)
    finally:
        ms.active -= 1


class _Upstream(asyncio.DatagramProtocol):
    """The simulator's socket towards one member, for one client: replies go back through the VIP."""

    def __init__(self, reply: Callable[[bytes], None]) -> None:
        self.reply = reply
        self.transport: asyncio.DatagramTransport | None = None
        self.last = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.last = time.monotonic()
        self.reply(data)


class UdpListener(asyncio.DatagramProtocol):
    """One UDP VIP port. `choose(stats)` picks a member for a new flow (None: drop)."""

    def __init__(self, choose: Callable[[], tuple[VsStats, Member | None]]) -> None:
        self.choose = choose
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[Any, tuple[_Upstream, VsStats]] = {}
        self._pending: dict[Any, list[bytes]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        flow = self.flows.get(addr)
        if flow is not None and flow[0].transport is not None:
            up, stats = flow
            up.last = time.monotonic()
            stats.bytes_in += len(data)
            up.transport.sendto(data)  # type: ignore[union-attr]
            return
        if addr in self._pending:  # the flow's socket is being opened
            self._pending[addr].append(data)
            return
        stats, member = self.choose()
        if member is None:
            stats.no_member += 1
            return
        self._pending[addr] = [data]
        asyncio.get_running_loop().create_task(self._open(addr, member, stats))

    async def _open(self, addr: Any, member: Member, stats: VsStats) -> None:
        loop = asyncio.get_running_loop()

        def reply(data: bytes) -> None:
            stats.bytes_out += len(data)
            if self.transport is not None and not self.transport.is_closing():
                self.transport.sendto(data, addr)

        try:
            transport, up = await loop.create_datagram_endpoint(lambda: _Upstream(reply),
                                                                remote_addr=(member.ip, member.port))
        except OSError:
            self._pending.pop(addr, None)
            stats.no_member += 1
            return
        ms = stats.member(member.key)
        ms.connections += 1
        self.flows[addr] = (up, stats)
        for data in self._pending.pop(addr, []):
            stats.bytes_in += len(data)
            transport.sendto(data)

    def expire(self) -> None:
        """Drop idle flows (called periodically by the listener manager)."""
        now = time.monotonic()
        for addr, (up, _) in list(self.flows.items()):
            if now - up.last > UDP_IDLE and up.transport is not None:
                up.transport.close()
                del self.flows[addr]

    def close(self) -> None:
        for up, _ in self.flows.values():
            if up.transport is not None:
                up.transport.close()
        self.flows.clear()
        if self.transport is not None:
            self.transport.close()
