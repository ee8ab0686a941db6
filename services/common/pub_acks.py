"""JetStream publishes and their acknowledgements, on one reply inbox per connection.

What ``JetStreamContext.publish`` does (a request to the stream, answered by a
``PubAck``), except the reply subject: nats-py names each request with a NUID
plus two bytes from ``os.urandom``, a system call per message, which was a
twentieth of the translator's busy time through the bus. Here a counter
names it, under an inbox no other connection shares. Errors are the
client's own: a timeout, no stream (no responders), or the stream's error.
"""

from __future__ import annotations

import asyncio
import itertools
import json

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import Header, PubAck
from nats.js.errors import APIError, NoStreamResponseError

NO_RESPONDERS = "503"
ACK_TIMEOUT = 5.0  # nats-py's JetStream default


class PubAcks:
    def __init__(self, nc: NATS, timeout: float = ACK_TIMEOUT) -> None:
        self.nc = nc
        self.timeout = timeout
        self._prefix = ""
        self._started: asyncio.Lock | None = None
        self._waiting: dict[str, asyncio.Future[Msg]] = {}
        self._next = itertools.count()

    async def _inbox(self) -> str:
        if not self._prefix:
            self._started = self._started or asyncio.Lock()
            async with self._started:
                if not self._prefix:
                    prefix = self.nc.new_inbox() + "."
                    # The client subscribes it again after a reconnection, as it does its own.
                    await self.nc.subscribe(prefix + "*", cb=self._on_reply)
                    self._prefix = prefix
        return self._prefix

    async def _on_reply(self, msg: Msg) -> None:
        fut = self._waiting.get(msg.subject[len(self._prefix):])
        if fut is not None and not fut.done():
            fut.set_result(msg)

    async def publish(self, subject: str, data: bytes, *, headers: dict[str, str] | None = None,
                      ttl: float | None = None) -> PubAck:
        """Publish and wait for the stream's acknowledgement (``ttl``: the message's, in whole seconds)."""
        prefix = await self._inbox()
        if ttl is not None:
            headers = {**(headers or {}), Header.MSG_TTL: str(int(ttl))}
        token = str(next(self._next))
        fut: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()
        self._waiting[token] = fut
        try:
            await self.nc.publish(subject, data, reply=prefix + token, headers=headers)
            msg = await asyncio.wait_for(fut, self.timeout)
        except TimeoutError:
            raise NatsTimeoutError from None
        finally:
            self._waiting.pop(token, None)
        if msg.headers and msg.headers.get(Header.STATUS) == NO_RESPONDERS:
            raise NoStreamResponseError
        resp = json.loads(msg.data)
        if "error" in resp:
            raise APIError.from_error(resp["error"])
        return PubAck.from_response(resp)
