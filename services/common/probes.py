"""Each service's small HTTP endpoint: ``/metrics``, ``/healthz`` and ``/readyz``.

* ``/metrics``: this process's registry (:mod:`services.common.metrics`), Prometheus text format.
* ``/healthz`` (liveness): answered by the service's own event loop, so an
  answer proves the loop runs; a loop blocked for good never answers and the
  kubelet's probe timeout fails it.
* ``/readyz`` (readiness): 200 when every check the service registered passes,
  else 503 with the reasons, one a line. No check registered yet: "starting".

Servers listen on loopback unless ``albus.probes.address`` says otherwise
(a pod's kubelet probes its pod address).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from services.common.bus import Bus
from services.common.metrics import LOOP_LAG, REGISTRY

log = logging.getLogger(__name__)

# Why the service is not ready, or None when this part of it is.
Check = Callable[[], str | None]


class Readiness:
    """The named checks ``/readyz`` runs; a service adds them as its parts come up."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def require(self, name: str, check: Check) -> None:
        self._checks[name] = check

    def drop(self, name: str) -> None:
        self._checks.pop(name, None)

    def reasons(self) -> list[str]:
        """Why this process is not ready (empty: ready)."""
        if not self._checks:
            return ["starting"]
        out = []
        for name, check in sorted(self._checks.items()):
            try:
                why = check()
            except Exception as exc:  # a check that cannot tell is a no
                why = f"check failed: {type(exc).__name__}: {exc}"
            if why is not None:
                out.append(f"{name}: {why}")
        return out


# One per process, as the registry.
READINESS = Readiness()


def connected(bus: Bus) -> Check:
    """The bus's connection as a readiness check."""
    return lambda: None if bus.nc.is_connected else "not connected to NATS"


@dataclass
class ProbeServer:
    runner: web.AppRunner
    host: str
    port: int
    lag_sampler: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        if self.lag_sampler is not None:
            self.lag_sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.lag_sampler
        await self.runner.cleanup()


async def sample_loop_lag(period: float = 0.5) -> None:
    """How late a timer fires, into ``albus_event_loop_lag_seconds``: the loop's responsiveness, measured."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + period
        await asyncio.sleep(period)
        LOOP_LAG.observe(max(0.0, loop.time() - due))


def app(registry: CollectorRegistry = REGISTRY, readiness: Readiness = READINESS) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        reasons = readiness.reasons()
        if reasons:
            return web.Response(status=503, text="".join(f"{r}\n" for r in reasons))
        return web.Response(text="ready\n")

    application = web.Application()
    application.router.add_get("/metrics", metrics)
    application.router.add_get("/healthz", healthz)
    application.router.add_get("/readyz", readyz)
    return application


async def serve(host: str, port: int, *, registry: CollectorRegistry = REGISTRY,
                readiness: Readiness = READINESS) -> ProbeServer:
    """Listen on ``host:port`` (port 0: a free one); the server's address is in the result."""
    runner = web.AppRunner(app(registry, readiness), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = runner.addresses[0]
    return ProbeServer(runner, str(bound[0]), int(bound[1]), asyncio.create_task(sample_loop_lag()))
