"""NATS JetStream as albus uses it: streams that hold the current state.

Every stream keeps the newest message per subject, so reading it *last per
subject* yields the current state of everything on it. :meth:`Bus.follow`
replays that state and then stays live; :meth:`Bus.snapshot` reads it once.
Both report when they have caught up, which is what lets a service say "I
have the full view" before it acts on the absence of something.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from services.common import subjects
from services.common.contracts import Contract, encode

log = logging.getLogger(__name__)

# How long a tombstone stays on its subject before JetStream drops it. A
# consumer that replays later sees no object, which means the same thing.
TOMBSTONE_TTL_SECONDS = 3600.0


@dataclass(frozen=True)
class Delivery:
    subject: str
    data: bytes
    headers: dict[str, str]
    stream_seq: int
    redelivered: bool = False


Handler = Callable[[Delivery], Awaitable[None]]


@dataclass
class Follower:
    """A live replay of a filter; ``caught_up`` is set once the replayed state is delivered."""

    sub: JetStreamContext.PushSubscription
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    errors: int = 0

    async def stop(self) -> None:
        # Already gone when the connection closed first.
        with contextlib.suppress(Exception):
            await self.sub.unsubscribe()


class Bus:
    def __init__(self, nc: NATS, replicas: int = 1) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.replicas = replicas

    @classmethod
    async def connect(cls, url: str, name: str, replicas: int = 1, **opts: Any) -> Bus:
        async def _err(e: Exception) -> None:
            log.warning("nats: %s", e)

        async def _disc() -> None:
            log.warning("nats: disconnected")

        async def _reconn() -> None:
            log.info("nats: reconnected")

        nc = await nats.connect(
            servers=url.split(","),
            name=name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            error_cb=_err,
            disconnected_cb=_disc,
            reconnected_cb=_reconn,
            **opts,
        )
        return cls(nc, replicas)

    async def close(self) -> None:
        if not self.nc.is_closed:
            await self.nc.drain()

    async def ensure_streams(self) -> None:
        """Create (or bring up to date) the streams; safe to call from every service."""
        for name, subs in subjects.STREAMS.items():
            cfg = StreamConfig(
                name=name,
                subjects=subs,
                max_msgs_per_subject=1,
                storage=StorageType.FILE,
                num_replicas=self.replicas,
                allow_msg_ttl=True,
                allow_rollup_hdrs=True,
                duplicate_window=120.0,
            )
            try:
                await self.js.stream_info(name)
            except NotFoundError:
                try:
                    await self.js.add_stream(cfg)
                    continue
                except Exception as exc:  # another service created it first
                    if "already in use" not in str(exc):
                        raise
            await self.js.update_stream(cfg)

    async def publish(
        self,
        subject: str,
        msg: Contract,
        *,
        msg_id: str | None = None,
        ttl: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> int:
        hdrs = dict(headers or {})
        if msg_id:
            hdrs["Nats-Msg-Id"] = msg_id
        ack = await self.js.publish(subject, encode(msg), headers=hdrs or None, msg_ttl=ttl)
        return int(ack.seq)

    async def follow(self, filter_subject: str, handler: Handler, *, name: str = "") -> Follower:
        """Deliver the current state of ``filter_subject`` (last per subject), then every change.

        Ordered consumer: messages come in stream order and a gap makes the
        client recreate the consumer from where it was, so nothing is missed
        or reordered. Handler errors are logged and counted, never fatal.
        """
        follower: Follower | None = None

        async def _cb(m: Msg) -> None:
            assert follower is not None
            meta = m.metadata
            d = Delivery(
                subject=m.subject,
                data=m.data,
                headers=dict(m.headers or {}),
                stream_seq=int(meta.sequence.stream),
                redelivered=meta.num_delivered > 1,
            )
            try:
                await handler(d)
            except Exception:
                follower.errors += 1
                log.exception("%s: handler failed on %s", name or filter_subject, m.subject)
            if meta.num_pending == 0:
                follower.caught_up.set()

        sub = await self.js.subscribe(
            filter_subject,
            cb=_cb,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
            idle_heartbeat=5.0,
            flow_control=True,
        )
        follower = Follower(sub=sub)
        info = await sub.consumer_info()
        # Nothing matched at creation: caught up now. Otherwise the callback
        # sets it on the message with no pending after it, once handled.
        if info.num_pending == 0 and (info.delivered is None or info.delivered.consumer_seq == 0):
            follower.caught_up.set()
        return follower

    async def snapshot(self, filter_subject: str, timeout: float = 30.0) -> dict[str, Delivery]:
        """The current message of every subject under ``filter_subject``."""
        state: dict[str, Delivery] = {}

        async def _keep(d: Delivery) -> None:
            state[d.subject] = d

        f = await self.follow(filter_subject, _keep, name=f"snapshot {filter_subject}")
        try:
            await asyncio.wait_for(f.caught_up.wait(), timeout)
        finally:
            await f.stop()
        return state

    async def last(self, subject: str) -> Delivery | None:
        """The current message on one exact subject, or None."""
        stream = await self.js.find_stream_name_by_subject(subject)
        try:
            raw = await self.js.get_last_msg(stream, subject)
        except NotFoundError:
            return None
        except NatsTimeoutError:
            raise
        return Delivery(
            subject=raw.subject or subject,
            data=raw.data or b"",
            headers=dict(raw.headers or {}),
            stream_seq=int(raw.seq or 0),
        )
