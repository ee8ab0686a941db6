"""One leadership term of the watcher: every kind's reflector, seeded from the bus.

Each term starts from what the K8S stream holds for the cluster (another
leader may have published since this process last led), so the first list
tombstones objects deleted while nobody watched and skips objects the stream
already holds unchanged.

The known set describes one incarnation of the stream (its creation time,
read before the stream's state): every synced marker of the term carries it,
and the translator believes a marker only while that stream is the current
one, so a term whose stream was wiped under it cannot vouch for a new one.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from services.common import subjects
from services.common.bus import Bus
from services.common.incarnation import incarnation as stream_incarnation
from services.common.reflector import KindSpec, Reflector
from services.watcher.kinds import KINDS
from services.watcher.known import known_from_stream
from services.watcher.publisher import KindPublisher

log = logging.getLogger(__name__)


class ReflectorSet:
    def __init__(
        self,
        api: Any,
        bus: Bus,
        cluster: str,
        kinds: Sequence[KindSpec] = KINDS,
        *,
        watch_timeout: int = 300,
        incarnation: str | None = None,
    ) -> None:
        self.api = api
        self.bus = bus
        self.cluster = cluster
        self.kinds = tuple(kinds)
        self.watch_timeout = watch_timeout
        self.epoch = uuid.uuid4().hex
        self.incarnation = incarnation
        self.reflectors: dict[str, Reflector] = {}
        self.publishers: dict[str, KindPublisher] = {}

    async def start(self) -> None:
        # The incarnation before the state: if the stream is replaced in
        # between, the markers name the old one and are not believed.
        if self.incarnation is None:
            self.incarnation = await stream_incarnation(self.bus, subjects.STREAM_K8S)
        state = await self.bus.snapshot(subjects.k8s_cluster(self.cluster))
        known = known_from_stream(self.cluster, state.values())
        loop = asyncio.get_running_loop()
        for spec in self.kinds:
            publisher = KindPublisher(self.bus, self.cluster, spec.kind, self.epoch, known.get(spec.kind),
                                      self.incarnation)
            r = Reflector(spec, self.api, publisher, loop, watch_timeout=self.watch_timeout)
            self.reflectors[spec.kind] = r
            self.publishers[spec.kind] = publisher
            r.start()
        log.info("watching %s for cluster %s (epoch %s)", ", ".join(self.reflectors), self.cluster, self.epoch)

    def listed(self) -> bool:
        """Every kind has been listed and published (with its synced marker) at least once this term."""
        return bool(self.reflectors) and all(p.relists > 0 for p in self.publishers.values())

    async def stop(self) -> None:
        await asyncio.gather(*(r.stop() for r in self.reflectors.values()))
