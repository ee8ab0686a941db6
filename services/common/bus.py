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
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import (
    ConnectionClosedError,
    ConnectionReconnectingError,
    NoRespondersError,
    OutboundBufferLimitError,
)
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, StorageType, StreamConfig, StreamInfo
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError, ServiceUnavailableError
from opentelemetry.trace import SpanContext
from prometheus_client import Counter

from services.common import subjects, tracing
from services.common.contracts import Contract, encode
from services.common.metrics import BUS_PUBLISHED, BUS_RECEIVED, subject_kind
from services.common.pub_acks import PubAcks

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a tombstone stays on its subject before JetStream drops it. A
# consumer that replays later sees no object, which means the same thing.
TOMBSTONE_TTL_SECONDS = 3600.0


# What a publish meets while nats-server restarts, fails over or recovers
# JetStream: worth waiting out, since every message albus publishes is the
# current state of its subject and publishing it again is harmless.
TRANSIENT = (NatsTimeoutError, NoRespondersError, ConnectionReconnectingError, OutboundBufferLimitError,
             ServiceUnavailableError, NoStreamResponseError)
RETRY_MAX_DELAY = 2.0
# JetStream's "no suitable peers for placement": a NATS cluster whose meta leader has not yet seen its
# peers go (or come back) answers it to a stream's creation; seen while two of three nodes restarted.
NO_PEERS_FOR_PLACEMENT = 10005


def _worth_waiting(exc: Exception) -> bool:
    return isinstance(exc, TRANSIENT) or (isinstance(exc, APIError) and exc.err_code == NO_PEERS_FOR_PLACEMENT)

PERMISSIONS_VIOLATION = "permissions violation"
# Stream administration is the syncer pool's: a cluster identity is refused it, expectedly.
STREAM_ADMIN = ("$js.api.stream.create.", "$js.api.stream.update.")


# The counters' children by subject kind: ``labels()`` per message takes a lock and builds a key.
_received: dict[str, Counter] = {}
_published: dict[str, Counter] = {}


def _counted(children: dict[str, Counter], counter: Counter, subject: str) -> None:
    kind = subject_kind(subject)
    child = children.get(kind)
    if child is None:
        child = children[kind] = counter.labels(kind)
    child.inc()


def _delivery(m: Msg) -> Delivery:
    _counted(_received, BUS_RECEIVED, m.subject)
    meta = m.metadata
    return Delivery(subject=m.subject, data=m.data, headers=dict(m.headers or {}),
                    stream_seq=int(meta.sequence.stream), redelivered=meta.num_delivered > 1)


class BusRefused(Exception):
    """nats-server refused a publish: this identity may not use the subject."""


def _same_stream(have: StreamConfig, want: StreamConfig) -> bool:
    """Whether the stream already has every setting albus gives it (unset ones are the server's)."""
    fields = ("max_msgs_per_subject", "max_age", "max_bytes", "storage", "num_replicas", "allow_msg_ttl",
              "allow_rollup_hdrs", "duplicate_window")
    return sorted(have.subjects or []) == sorted(want.subjects or []) and all(
        getattr(want, f) is None or getattr(have, f) == getattr(want, f) for f in fields)


@dataclass(frozen=True)
class Delivery:
    subject: str
    data: bytes
    headers: dict[str, str]
    stream_seq: int
    redelivered: bool = False

    def span_context(self) -> SpanContext | None:
        """The span that published this message (from its ``traceparent`` header), if any."""
        return tracing.span_context_of(self.headers)


Handler = Callable[[Delivery], Awaitable[None]]


@dataclass
class Follower:
    """A live replay of a filter; ``caught_up`` is set once the replayed state is delivered."""

    sub: JetStreamContext.PushSubscription
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    errors: int = 0
    stopped: bool = False

    async def resume(self) -> None:
        """Recreate the consumer from the stream sequence after the last one delivered.

        The client finds a gap only by comparing a delivered message's
        consumer sequence with the one before, and a heartbeat's only once a
        first message came: a message lost in flight with the connection
        would stay missing until the next one, and forever on a quiet
        subject. After a reconnection nothing is assumed: start again from
        where we are. (nats-py offers no public call for this.)
        """
        jsi = getattr(self.sub._sub, "_jsi", None)
        if jsi is not None and not self.stopped:
            await jsi.reset_ordered_consumer(jsi._sseq + 1)

    async def stop(self) -> None:
        self.stopped = True
        # Already gone when the connection closed first.
        with contextlib.suppress(Exception):
            await self.sub.unsubscribe()


class Bus:
    def __init__(self, nc: NATS, replicas: int = 1) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.acks = PubAcks(nc)
        self.replicas = replicas
        # Permission violations the server reported (nats-server confines each cluster's identity).
        self.refusals: list[str] = []
        self.followers: list[Follower] = []

    @classmethod
    async def connect(cls, url: str, name: str, replicas: int = 1, **opts: Any) -> Bus:
        refusals: list[str] = []

        async def _err(e: Exception) -> None:
            if PERMISSIONS_VIOLATION in str(e).lower():
                refusals.append(str(e))
                if any(a in str(e).lower() for a in STREAM_ADMIN):
                    return  # a cluster identity: the syncer pool makes the streams, this one waits or goes on
                log.error("nats refused this identity: %s. The credentials in NATS_URL allow only their own "
                          "cluster's subjects: check AKOSettings.clusterName and the NATS user", e)
                return
            log.warning("nats: %s", e)

        conn: list[NATS] = []

        async def _disc() -> None:
            # A drain on close ends in a disconnect too: that one is expected, not worth a warning.
            if conn and (conn[0].is_closed or conn[0].is_draining):
                return
            log.warning("nats: disconnected")

        followers: list[Follower] = []

        async def _reconn() -> None:
            log.info("nats: reconnected")
            followers[:] = [f for f in followers if not f.stopped]
            for f in followers:
                try:
                    await f.resume()
                except Exception as exc:  # the heartbeat check recreates it later
                    log.warning("nats: resuming a follower: %s", exc)

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
        conn.append(nc)
        bus = cls(nc, replicas)
        bus.refusals = refusals
        bus.followers = followers
        return bus

    async def close(self) -> None:
        """Drain (what was published reaches the server) and close; just close with no server to drain to."""
        if self.nc.is_closed:
            return
        if self.nc.is_connected:
            with contextlib.suppress(ConnectionReconnectingError, ConnectionClosedError):
                await self.nc.drain()
                return
        # Flushing to a connection that is gone fails: closed is what is asked.
        with contextlib.suppress(OSError):
            await self.nc.close()

    async def ensure_streams(self) -> None:
        """Create (or bring up to date) the streams; safe to call from every service.

        JetStream not answering yet (a NATS cluster electing its meta leader
        as every service starts) is waited out: a service that exited on it
        left the pipeline without it (tests/e2e/test_nats_cluster.py).
        """
        for name, subs in subjects.STREAMS.items():
            await self._until_answered(f"stream {name}", f"$JS.API.STREAM.INFO.{name}",
                                       functools.partial(self._ensure_stream, name, subs))

    async def _ensure_stream(self, name: str, subs: list[str]) -> None:
        limits: dict[str, Any] = {"max_msgs_per_subject": 1, **subjects.STREAM_LIMITS.get(name, {})}
        cfg = StreamConfig(
            name=name,
            subjects=subs,
            storage=StorageType.FILE,
            num_replicas=self.replicas,
            allow_msg_ttl=True,
            allow_rollup_hdrs=True,
            duplicate_window=120.0,
            **limits,
        )
        try:
            info = await self.js.stream_info(name)
        except NotFoundError:
            try:
                await self.js.add_stream(cfg)
                return
            except NatsTimeoutError:
                if not self.refused(f"$JS.API.STREAM.CREATE.{name}"):
                    raise
                # A cluster identity may not create streams: the syncer pool does.
                info = await self._stream_created(name)
            except Exception as exc:  # another service created it first
                if "already in use" not in str(exc):
                    raise
                info = await self.js.stream_info(name)
        # Never fewer copies than the stream has: a service configured
        # with fewer replicas than the pool must not shrink it.
        cfg.num_replicas = max(self.replicas, info.config.num_replicas or 1)
        # Update only what differs: cluster identities may read stream info, not change streams.
        if not _same_stream(info.config, cfg):
            await self._update_stream(cfg)

    async def _update_stream(self, cfg: StreamConfig) -> None:
        try:
            await self.js.update_stream(cfg)
        except NatsTimeoutError:
            if not self.refused(f"$JS.API.STREAM.UPDATE.{cfg.name}"):
                raise
            # A cluster identity may not change streams: the syncer pool's
            # configuration decides them; this service works with them as they are.
            log.warning("stream %s differs from this service's settings (e.g. natsReplicas %d) and this "
                        "identity may not update it: using it as it is", cfg.name, self.replicas)

    async def publish(
        self,
        subject: str,
        msg: Contract,
        *,
        msg_id: str | None = None,
        ttl: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> int:
        # The current span (if any) travels with the message: the receiver's
        # span becomes its child, which is what makes one trace per change.
        hdrs = tracing.inject(dict(headers or {}))
        if msg_id:
            hdrs["Nats-Msg-Id"] = msg_id
        data = encode(msg)
        # Waiting is the back-pressure: the caller's state is only recorded
        # as published once JetStream acknowledged it.
        ack = await self._until_answered(f"publish on {subject}", subject, lambda: self.acks.publish(
            subject, data, headers=hdrs or None, ttl=ttl))
        _counted(_published, BUS_PUBLISHED, subject)
        return int(ack.seq)

    async def _until_answered(self, what: str, refused_subject: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt()``, again and again while JetStream does not answer (a leader election, a lost
        node, no peers yet to place a stream on), with doubling delays and a warning every 30 s; a
        refusal of ``refused_subject`` for this identity raises :class:`BusRefused` (waiting would
        not change it); any other error is raised at once."""
        delay, failing_since, warned = 0.1, 0.0, 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                result = await attempt()
            except Exception as exc:
                if not _worth_waiting(exc):
                    raise
                refused = self.refused(refused_subject)
                if refused:
                    raise BusRefused(refused) from None
                if self.nc.is_closed:
                    raise
                now = loop.time()
                failing_since = failing_since or now
                if now - warned >= 30.0:
                    warned = now
                    log.warning("%s: JetStream not answering (%s: %s) for %.0fs; trying again", what,
                                type(exc).__name__, exc, now - failing_since)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_DELAY)
                continue
            if failing_since:
                log.info("%s: answered after %.1fs", what, loop.time() - failing_since)
            return result

    def refused(self, subject: str) -> str | None:
        """The server's refusal of ``subject`` for this identity, if it refused it."""
        # The client lower-cases the server's error text.
        hits = [r for r in self.refusals if f'"{subject.lower()}"' in r.lower()]
        return hits[-1] if hits else None

    async def _stream_created(self, name: str, poll: float = 2.0) -> StreamInfo:
        log.warning("stream %s does not exist and this identity may not create it: waiting for the syncer pool", name)
        while True:
            await asyncio.sleep(poll)
            with contextlib.suppress(NotFoundError):
                return await self.js.stream_info(name)

    async def follow(
        self, filter_subject: str, handler: Handler, *, name: str = "", history: bool = False
    ) -> Follower:
        """Deliver the current state of ``filter_subject`` (last per subject), then every change.

        ``history`` delivers every message kept instead (streams with history).
        Ordered consumer: messages come in stream order and a gap makes the
        client recreate the consumer from where it was, so nothing is missed
        or reordered. Handler errors are logged and counted, never fatal.
        """
        follower: Follower | None = None

        async def _cb(m: Msg) -> None:
            assert follower is not None
            d = _delivery(m)
            try:
                await handler(d)
            except Exception:
                follower.errors += 1
                log.exception("%s: handler failed on %s", name or filter_subject, m.subject)
            if m.metadata.num_pending == 0:
                follower.caught_up.set()

        sub = await self.js.subscribe(
            filter_subject,
            cb=_cb,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL if history else DeliverPolicy.LAST_PER_SUBJECT,
            # A consumer lost with a restarted nats-server is noticed after a few
            # missed heartbeats and recreated from where it was: keep that short.
            idle_heartbeat=1.0,
            flow_control=True,
        )
        follower = Follower(sub=sub)
        self.followers[:] = [f for f in self.followers if not f.stopped] + [follower]
        try:
            info = await sub.consumer_info()
        except BaseException:
            # Already delivering: left running, a caller that tries again would be fed twice, for ever.
            await follower.stop()
            raise
        # Nothing matched at creation: caught up now. Otherwise the callback
        # sets it on the message with no pending after it, once handled.
        if info.num_pending == 0 and (info.delivered is None or info.delivered.consumer_seq == 0):
            follower.caught_up.set()
        return follower

    async def snapshot(self, filter_subject: str, timeout: float = 30.0) -> dict[str, Delivery]:
        """The current message of every subject under ``filter_subject``."""
        return {d.subject: d for d in await self._read(filter_subject, timeout, history=False)}

    async def history(self, filter_subject: str, timeout: float = 30.0) -> list[Delivery]:
        """Every message kept under ``filter_subject``, oldest first (streams with history)."""
        return await self._read(filter_subject, timeout, history=True)

    async def _read(self, filter_subject: str, timeout: float, *, history: bool) -> list[Delivery]:
        out: list[Delivery] = []

        async def _keep(d: Delivery) -> None:
            out.append(d)

        await self.read_each(filter_subject, _keep, timeout, history=history)
        return out

    async def read_each(self, filter_subject: str, handler: Handler, timeout: float = 30.0, *,
                        history: bool = False) -> None:
        """Hand every current message under ``filter_subject`` to ``handler`` in stream order, until caught up.

        Nothing is kept here: a reader of every tree that keeps only what it
        needs of each holds the flow-controlled consumer's window, not the stream.
        """
        f = await self.follow(filter_subject, handler, name=f"read {filter_subject}", history=history)
        try:
            await asyncio.wait_for(f.caught_up.wait(), timeout)
        finally:
            await f.stop()
            # Through its handler the follower holds what the reader kept (a snapshot's every message):
            # left in the list until the next follow, a syncer's GC held every tree between runs.
            self.followers[:] = [x for x in self.followers if x is not f]

    async def subjects(self, filter_subject: str, timeout: float = 10.0) -> set[str]:
        """The subjects under ``filter_subject`` holding a message, from the stream's info: no message is
        read. The server lists at most 100,000 subjects an answer; the rest come by offset."""
        stream = subjects.stream_of(filter_subject) or await self.js.find_stream_name_by_subject(filter_subject)
        out: set[str] = set()
        while True:
            req = json.dumps({"subjects_filter": filter_subject, "offset": len(out)}).encode()
            body = json.loads((await self.nc.request(f"$JS.API.STREAM.INFO.{stream}", req, timeout=timeout)).data)
            if "error" in body:
                APIError.from_error(body["error"])
            page = (body.get("state") or {}).get("subjects") or {}
            out.update(page)
            if not page or len(out) >= int(body.get("total") or 0):
                return out

    async def last(self, subject: str) -> Delivery | None:
        """The current message on one exact subject, or None."""
        # Known from the subject: asking the server (a JetStream API round trip) doubled the syncer's
        # bus calls before every outcome it publishes.
        stream = subjects.stream_of(subject) or await self.js.find_stream_name_by_subject(subject)
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
