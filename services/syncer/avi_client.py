"""The controller client: one login on the event loop (services/common/avi_session.py).

Around every call:

* a token bucket (``albus.syncer.callsPerSecond``) — the controller
  rate-limits each client, and every call counts;
* at most ``albus.syncer.concurrency`` calls in flight (and as many
  connections kept alive);
* retries with exponential back-off and jitter on 429/502/503/504 (a login
  answered so included) and on connection errors and timeouts; the session
  itself logs in again on 401/419.

Passwords, cookies and tokens never reach a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from services.common import tracing
from services.common.avi_session import AviSession, ControllerError, LoginFailed, Reply
from services.common.config import Config
from services.syncer.budget import SharedBudget
from services.syncer.lanes import LaneGate
from services.syncer.metrics import CONTROLLER_CALLS, object_type

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
SHARED_BACKOFF = frozenset({429, 503})
PAGE_SIZE = 200
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})


@dataclass
class CallCounter:
    """Controller calls made (each retry counts: the controller saw it)."""

    reads: int = 0
    writes: int = 0
    retries: int = 0
    by_status: dict[int, int] = field(default_factory=dict)

    def add(self, method: str, status: int | None) -> None:
        if method in WRITE_METHODS:
            self.writes += 1
        else:
            self.reads += 1
        if status is not None:
            self.by_status[status] = self.by_status.get(status, 0) + 1


class TokenBucket:
    """``rate`` calls per second on average, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        # One waiter at a time, an edit's before a creation's (lanes.py): under a tight rate the
        # creation backlog would otherwise sit in front of every edit here too.
        self._lock = LaneGate(1)

    async def take(self) -> None:
        async with self._lock.lane():
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1.0:
                    self.tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self.tokens) / self.rate)


def error_text(body: Any, text: str) -> str:
    """The controller's message: ``{"error": ...}`` when JSON, else the raw text."""
    if isinstance(body, dict):
        for key in ("error", "detail", "message"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return text.strip()[:500]


class ControllerClient:
    """Rate limits, concurrency and retries around one controller session."""

    def __init__(
        self,
        session: AviSession,
        *,
        concurrency: int = 8,
        calls_per_second: float = 30.0,
        retry_max_seconds: float = 30.0,
        backoff_base: float = 0.2,
    ) -> None:
        self.session = session
        self._concurrency = concurrency
        # The calls in flight: an edit's call takes the next free one, up to half of them (lanes.py).
        self._slots = LaneGate(concurrency)
        self.bucket = TokenBucket(calls_per_second)
        # Shared with the other replicas when set (see budget.py): rate, concurrency, pauses.
        self.budget: SharedBudget | None = None
        self.retry_max_seconds = retry_max_seconds
        self.backoff_base = backoff_base
        self.counter = CallCounter()
        self.server = ""  # the controller's address, for the calls' spans

    @classmethod
    def from_config(cls, cfg: Config) -> ControllerClient:
        s = cfg.albus.syncer
        client = cls(
            AviSession.from_config(cfg, connections=s.concurrency),
            concurrency=s.concurrency,
            calls_per_second=s.callsPerSecond,
            retry_max_seconds=s.retryMaxSeconds,
        )
        client.server = cfg.ControllerSettings.controllerHost
        return client

    @property
    def concurrency(self) -> int:
        """Calls this process keeps in flight at most."""
        return self._concurrency

    async def close(self) -> None:
        await self.session.close()

    async def _once(self, method: str, path: str, tenant: str, data: Any, params: dict[str, Any] | None,
                    counter: CallCounter | None) -> Reply:
        await self.bucket.take()
        if self.budget is not None:
            await self.budget.take()
        async with self._slots.lane(), (self.budget.limiter if self.budget else contextlib.nullcontext()):
            status: int | None = None
            try:
                reply = await self.session.request(method, path, tenant=tenant, params=params, data=data)
                status = reply.status
                return reply
            finally:
                self.counter.add(method, status)
                CONTROLLER_CALLS.labels(method.upper(), object_type(path), str(status or "none")).inc()
                if counter is not None:
                    counter.add(method, status)

    @tracing.traced_call
    async def call(
        self,
        method: str,
        path: str,
        *,
        tenant: str,
        data: Any = None,
        params: dict[str, Any] | None = None,
        counter: CallCounter | None = None,
    ) -> Reply:
        """One logical call, retried on rate limiting, overload and lost connections.

        Returns the final reply whatever its status; raises ControllerError
        only when no answer came or the controller refused the login.
        """
        deadline = time.monotonic() + self.retry_max_seconds
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                reply = await self._once(method, path, tenant, data, params, counter)
                if reply.status not in RETRY_STATUSES:
                    return reply
                failure = f"{reply.status} {error_text(reply.body, reply.text)}"
                retry_after = _retry_after(reply)
                last: Reply | ControllerError = reply
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = f"{type(exc).__name__}"
                last = ControllerError(None, f"controller unreachable: {type(exc).__name__}")
            except LoginFailed as exc:
                if exc.status not in RETRY_STATUSES:  # credentials refused: no retry helps
                    raise ControllerError(exc.status, f"{method.upper()} {path}: {exc.message}") from None
                failure = f"login {exc.status}"
                last = ControllerError(exc.status, exc.message)
            delay = min(8.0, self.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
            if retry_after is not None:
                delay = max(delay, retry_after)
            if self.budget is not None and isinstance(last, Reply) and last.status in SHARED_BACKOFF:
                await self.budget.pause(delay)  # the controller is overloaded for everyone: all replicas wait
            if time.monotonic() + delay > deadline:
                if isinstance(last, Reply):
                    return last
                raise last
            self.counter.retries += 1
            if counter is not None:
                counter.retries += 1
            log.info("%s %s: %s, retry %d in %.2fs", method.upper(), path, failure, attempt, delay)
            tracing.event("albus.retry", attempt=attempt, reason=failure[:200], delay_s=round(delay, 3))
            await asyncio.sleep(delay)

    async def list_pages(
        self, obj_type: str, *, tenant: str, params: dict[str, Any], counter: CallCounter | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every object of a type matching ``params``, a page (200) at a time as it is read."""
        page = 1
        while True:
            q = {**params, "page_size": PAGE_SIZE, "page": page}
            reply = await self.call("get", obj_type, tenant=tenant, params=q, counter=counter)
            if not reply.ok or not isinstance(reply.body, dict):
                raise ControllerError(reply.status, f"list {obj_type}: {error_text(reply.body, reply.text)}")
            results = reply.body.get("results") or []
            yield [r for r in results if isinstance(r, dict)]
            if not reply.body.get("next") or not results:
                return
            page += 1


def _retry_after(reply: Reply) -> float | None:
    """Seconds from a ``Retry-After`` header, capped so one answer cannot stall a worker."""
    value = reply.headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(30.0, max(0.0, float(value)))
    except ValueError:
        return None
