"""A message pushed to a follower while its connection dies must still reach it after the reconnect.

This is what a client sees when the NATS node it is connected to is killed
(a 3-node cluster, docs/multicluster.md): the consumer lives on another
node, keeps pushing, and what was in flight to the dead node is gone. The
ordered consumer notices a gap from the ``Nats-Last-Consumer`` header of its
idle heartbeats, but nats-py compares it only once the follower has received
a message (``_cmeta``): a follower that had received nothing would never
notice, so ``Bus`` resumes every follower from its last stream sequence on
reconnection (``Follower.resume``). A loopback TCP proxy that drops what the server sends
and then cuts the connection makes that window deterministic.
"""

from __future__ import annotations

import asyncio
import contextlib

from albus.broker import NatsServer
from services.common.bus import Bus, Delivery
from services.common.contracts import KubeObject

SUBJECT = "k8s.gap.Service.default."


class LossyProxy:
    """client ⇄ proxy ⇄ nats-server on loopback; while ``dropping``, bytes from the server are discarded."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.dropping = False
        self._links: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _link(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._links.append((w, uw))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, from_server: bool) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if not (from_server and self.dropping):
                        dst.write(data)
                        await dst.drain()
            dst.close()

        await asyncio.gather(pump(r, uw, False), pump(ur, w, True))

    def cut(self) -> None:
        """Drop every connection at once, as a dying node does."""
        for w, uw in self._links:
            w.transport.abort()
            uw.transport.abort()
        self._links = []

    def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()


def _svc(name: str) -> KubeObject:
    return KubeObject(cluster="gap", kind="Service", namespace="default", name=name, uid=f"u-{name}",
                      resource_version="1", obj={"metadata": {"name": name}})


async def _lost_then_seen(server: NatsServer, received_before: bool) -> bool:
    proxy = LossyProxy(server.port)
    port = await proxy.start()
    pub = await Bus.connect(server.url, "gap-publisher")
    follower_bus = await Bus.connect(f"nats://127.0.0.1:{port}", "gap-follower")
    got: list[str] = []

    async def on(d: Delivery) -> None:
        got.append(d.subject)

    try:
        await pub.ensure_streams()
        if received_before:
            await pub.publish(SUBJECT + "first", _svc("first"))
        f = await follower_bus.follow("k8s.gap.>", on)
        await asyncio.wait_for(f.caught_up.wait(), 10)
        proxy.dropping = True
        await pub.publish(SUBJECT + "lost", _svc("lost"))
        await asyncio.sleep(0.3)  # pushed by now, into the void
        proxy.dropping = False
        proxy.cut()  # the client reconnects (through the proxy, as to another node)
        for _ in range(100):  # 10 s: heartbeats are 1 s apart
            if SUBJECT + "lost" in got:
                return True
            await asyncio.sleep(0.1)
        return False
    finally:
        await follower_bus.close()
        await pub.close()
        proxy.close()


async def test_a_follower_that_had_messages_gets_the_one_lost_in_the_reconnect(fresh_nats: NatsServer) -> None:
    assert await _lost_then_seen(fresh_nats, received_before=True)


async def test_a_follower_that_had_no_message_gets_the_one_lost_in_the_reconnect(fresh_nats: NatsServer) -> None:
    assert await _lost_then_seen(fresh_nats, received_before=False)
