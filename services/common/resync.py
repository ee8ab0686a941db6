"""Full resync rounds: when a service must rebuild its state from scratch, and telling ``albus resync`` it did.

Two things start a round (docs/disaster-recovery.md):

* a :class:`ResyncRequest` on ``ctl.<cluster>.resync`` (``albus resync``);
* a stream the service's state was read from is lost (gone, created again
  with a wiped store, or its last sequence went backwards), checked every
  ``poll`` seconds and at once after the connection came back.

A service runs rounds in a loop: :meth:`Resync.begin_round` makes sure the
streams exist and records the incarnations the new state will be read
from; the service rebuilds; :meth:`Resync.finish` answers the request with a
:class:`ResyncDone` on ``ctl.<cluster>.done.<service>.<instance>``. The
service's own start is a round too, so a request still on the bus when it
starts is answered by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from services.common import subjects
from services.common.bus import Bus, BusRefused, Delivery, Follower
from services.common.contracts import ResyncDone, ResyncRequest, decode
from services.common.incarnation import StreamMark, losses, marks

log = logging.getLogger(__name__)

# Requests go away on their own: a service started later runs a full sync anyway.
REQUEST_TTL_SECONDS = 900.0
DONE_TTL_SECONDS = 3600.0
POLL_SECONDS = 5.0
RECONNECT_CHECK_SECONDS = 0.5

T = TypeVar("T")


_last_ms = 0


def new_request_id() -> str:
    """Ordered by time (milliseconds, fixed width), then random: a later request sorts after an earlier one.

    Two requests of one process in the same millisecond would otherwise be
    ordered by their random part: each takes a millisecond after the last.
    """
    global _last_ms
    _last_ms = max(int(time.time() * 1000), _last_ms + 1)
    return f"{_last_ms:012x}{os.urandom(3).hex()}"


def answers(done_request: str, request: str) -> bool:
    """A round that answered ``done_request`` also answers every earlier ``request``."""
    return done_request >= request


def instance_id() -> str:
    """Pod name (hostname) plus pid: unique per process, usable as a subject token."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{socket.gethostname()}-{os.getpid()}")[:64]


async def unless_stopped(coro: Coroutine[Any, Any, T], stop: asyncio.Event) -> T | None:
    """``coro``'s result, or None when ``stop`` is set first (``coro`` is then cancelled)."""
    task = asyncio.ensure_future(coro)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return None


async def set_when_any(target: asyncio.Event, *events: asyncio.Event) -> None:
    """Set ``target`` once any of ``events`` is (run as a task: one stop event for a round)."""
    await first_of(*events)
    target.set()


async def first_of(*events: asyncio.Event, timeout: float | None = None) -> None:
    """Wait until any of ``events`` is set (or ``timeout`` passed)."""
    waits = {asyncio.ensure_future(e.wait()) for e in events}
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


@dataclass(frozen=True)
class Round:
    """One rebuild: the request it answers ("" for none) and the streams' incarnations it read."""

    request: str
    marks: dict[str, StreamMark] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def incarnation(self, stream: str) -> str:
        m = self.marks.get(stream)
        return m.incarnation if m is not None else ""


class Resync:
    """One service instance's resync trigger for one cluster: requests, lost streams, answers."""

    def __init__(
        self,
        bus: Bus,
        cluster: str,
        service: str,
        instance: str,
        streams: Iterable[str],
        *,
        prepare: Callable[[], Awaitable[None]] | None = None,
        poll: float = POLL_SECONDS,
    ) -> None:
        self.bus = bus
        self.cluster = cluster
        self.service = service
        self.instance = instance
        self.streams = tuple(dict.fromkeys([*streams, subjects.STREAM_CONTROL]))
        self.prepare = prepare or bus.ensure_streams
        self.poll = poll
        self.needed = asyncio.Event()
        self.reason = ""
        self.rounds = 0
        self.latest = ""  # the newest request seen on the bus
        self.answered = ""  # the newest request a finished round answered
        self._baseline: dict[str, StreamMark] = {}
        self._control: Follower | None = None
        self._control_at = ""  # the control stream's incarnation the control follower reads
        self._live = False  # the control follower's replay is done: a request now is a new one
        self._monitor: asyncio.Task[None] | None = None
        self._unsent: list[tuple[str, ResyncDone]] = []

    # -- life --------------------------------------------------------------------------

    async def start(self) -> None:
        if self._monitor is None:
            self._monitor = asyncio.create_task(self._watch(), name=f"resync {self.service}")

    async def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._monitor
            self._monitor = None
        await self._stop_control()

    def trigger(self, reason: str, level: int = logging.WARNING) -> None:
        if not self.needed.is_set():
            log.log(level, "%s %s: full resync: %s", self.service, self.cluster, reason)
        self.reason = reason
        self.needed.set()

    # -- rounds ------------------------------------------------------------------------

    async def begin_round(self, retry: float = 1.0) -> Round:
        """Streams in place, the control subject read, their incarnations recorded: rebuild from these."""
        self._baseline = {}  # nothing to compare with until this round has read the streams
        while True:
            self.needed.clear()
            try:
                await self.prepare()
                now = await marks(self.bus, self.streams)
                missing = [s for s, m in now.items() if m is None]
                if not missing:
                    control = now[subjects.STREAM_CONTROL]
                    assert control is not None
                    if self._control is None or control.incarnation != self._control_at:
                        await self._follow_control(control.incarnation)
                    break
                log.info("%s %s: waiting for streams %s", self.service, self.cluster, ", ".join(missing))
            except Exception as exc:  # the bus is away: try again
                log.warning("%s %s: preparing a resync round: %s: %s", self.service, self.cluster,
                            type(exc).__name__, exc)
            await asyncio.sleep(retry)
        self._baseline = {s: m for s, m in now.items() if m is not None}
        self.rounds += 1
        request = self.latest if self.latest != self.answered else ""
        log.info("%s %s: resync round %d%s", self.service, self.cluster, self.rounds,
                 f" answering request {request}" if request else "")
        return Round(request=request, marks=dict(self._baseline))

    async def still_valid(self, rnd: Round) -> bool:
        """The round's streams are the ones it read (a rebuild finished on another stream proves nothing)."""
        try:
            now = await marks(self.bus, rnd.marks)
        except Exception as exc:
            log.warning("%s %s: reading streams: %s", self.service, self.cluster, exc)
            return False
        lost = losses(rnd.marks, now)
        if lost:
            self.trigger("; ".join(lost))
        return not lost

    async def finish(self, rnd: Round, *, epoch: str = "", partitions: Iterable[int] = (), detail: str = "") -> bool:
        """Answer the round's request, if it has one and its streams are still the ones it read."""
        if not rnd.request or rnd.request == self.answered:
            return False
        if not await self.still_valid(rnd):
            return False
        done = ResyncDone(cluster=self.cluster, service=self.service, instance=self.instance, request=rnd.request,
                          epoch=epoch, partitions=tuple(sorted(partitions)), detail=detail)
        self.answered = rnd.request
        log.info("%s %s: resync %s done%s", self.service, self.cluster, rnd.request, f": {detail}" if detail else "")
        await self._send(subjects.resync_done(self.cluster, self.service, self.instance), done)
        return True

    # -- the control subject -------------------------------------------------------------

    async def _follow_control(self, at: str) -> None:
        await self._stop_control()
        self._live = False
        self._control = await self.bus.follow(subjects.resync_request(self.cluster), self._on_request,
                                              name=f"resync requests {self.cluster}")
        self._control_at = at
        # What is on the subject now is answered by the round about to start.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._control.caught_up.wait(), 10.0)
        self._live = True

    async def _stop_control(self) -> None:
        if self._control is not None:
            await self._control.stop()
            self._control = None

    async def _on_request(self, d: Delivery) -> None:
        req = decode(d.data, ResyncRequest)
        if req.cluster != self.cluster or req.request == self.latest:
            return
        self.latest = req.request
        if self._live:
            self.trigger(f"requested ({req.request}{': ' + req.reason if req.reason else ''})", logging.INFO)

    # -- lost streams ----------------------------------------------------------------------

    async def _watch(self) -> None:
        """Look at the streams every ``poll`` seconds, and at once after a reconnection."""
        reconnects = self.bus.nc.stats.get("reconnects", 0)
        next_check = time.monotonic() + self.poll
        while True:
            await asyncio.sleep(RECONNECT_CHECK_SECONDS)
            now_reconnects = self.bus.nc.stats.get("reconnects", 0)
            if now_reconnects == reconnects and time.monotonic() < next_check:
                continue
            reconnects = now_reconnects
            next_check = time.monotonic() + self.poll
            await self._flush_unsent()
            await self.check()

    async def check(self) -> list[str]:
        """Compare the streams with what the current round read; trigger a round when one was lost."""
        if not self._baseline or self.bus.nc.is_closed:
            return []
        try:
            now = await marks(self.bus, self._baseline)
        except Exception as exc:  # unreadable now (reconnecting): not a loss, look again later
            log.debug("%s %s: streams not readable: %s", self.service, self.cluster, exc)
            return []
        lost = losses(self._baseline, now)
        if lost:
            self.trigger("; ".join(lost))
            return lost
        # Remember how far each stream got: a later, lower last sequence is a loss.
        for name, m in now.items():
            if m is not None and m.last_seq > self._baseline[name].last_seq:
                self._baseline[name] = m
        return []

    # -- answers ---------------------------------------------------------------------------

    async def _send(self, subject: str, done: ResyncDone) -> None:
        try:
            await asyncio.wait_for(self.bus.publish(subject, done, ttl=DONE_TTL_SECONDS), 10.0)
        except BusRefused as exc:
            log.error("%s %s: NATS refused the resync answer (%s): regenerate the NATS configuration "
                      "with `albus nats-config` (it allows ctl.<cluster>.>)", self.service, self.cluster, exc)
        except Exception as exc:
            log.warning("%s %s: resync answer not published (%s); retrying", self.service, self.cluster, exc)
            self._unsent = [(subject, done)]

    async def _flush_unsent(self) -> None:
        unsent, self._unsent = self._unsent, []
        for subject, done in unsent:
            await self._send(subject, done)
