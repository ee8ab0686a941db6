"""Publishing one kind's objects to the bus: snapshots, tombstones, synced markers.

The publisher owns the kind's known set (:mod:`services.watcher.known`) and
updates it only after JetStream acknowledged a message, so a failed publish
is redone by the next relist instead of being lost.
"""

from __future__ import annotations

import asyncio
import logging

from services.common import subjects, tracing
from services.common.bus import TOMBSTONE_TTL_SECONDS, Bus
from services.common.contracts import KindSynced, KubeObject
from services.common.reflector import Key, Obj, key_of
from services.common.waves import waves
from services.watcher.known import Seen, plan_relist, seen_of

log = logging.getLogger(__name__)

PUBLISH_WINDOW = 64  # a list's messages whose acknowledgements are awaited together


class KindPublisher:
    def __init__(self, bus: Bus, cluster: str, kind: str, epoch: str, known: dict[Key, Seen] | None = None,
                 incarnation: str = "") -> None:
        self.bus = bus
        self.cluster = cluster
        self.kind = kind
        self.epoch = epoch
        self.incarnation = incarnation  # of the ALBUS_K8S stream ``known`` was read from
        self.known: dict[Key, Seen] = dict(known or {})
        self.published = 0
        self.skipped = 0
        self.relists = 0

    def _subject(self, key: Key) -> str:
        return subjects.k8s_object(self.cluster, self.kind, key[0], key[1])

    async def upsert(self, trimmed: Obj) -> None:
        """Publish ``trimmed`` unless the bus already holds the same translation-relevant content."""
        key = key_of(trimmed)
        seen = seen_of(trimmed)
        before = self.known.get(key)
        if before is not None and before.fingerprint == seen.fingerprint:
            self.skipped += 1
            return
        msg = KubeObject(
            cluster=self.cluster, kind=self.kind, namespace=key[0], name=key[1],
            uid=seen.uid, resource_version=seen.resource_version, obj=trimmed,
        )
        with tracing.change_span(msg):
            await self.bus.publish(self._subject(key), msg, msg_id=f"{self.cluster}:{seen.uid}:{seen.resource_version}")
        log.debug("%s %s/%s: published rv %s (was %s)", self.kind, key[0], key[1], seen.resource_version,
                  before.resource_version if before else "unknown")
        self.known[key] = seen
        self.published += 1

    async def delete(self, key: Key, uid: str, resource_version: str) -> None:
        msg = KubeObject(
            cluster=self.cluster, kind=self.kind, namespace=key[0], name=key[1],
            uid=uid, resource_version=resource_version, deleted=True, obj=None,
        )
        with tracing.change_span(msg):
            await self.bus.publish(
                self._subject(key), msg, msg_id=f"{self.cluster}:{uid}:{resource_version}", ttl=TOMBSTONE_TTL_SECONDS
            )
        self.known.pop(key, None)
        self.published += 1

    async def forget(self, key: Key, uid: str, resource_version: str) -> None:
        """A tombstone for an object this kind published and no longer publishes (deleted or not relevant)."""
        if key in self.known:
            await self.delete(key, uid, resource_version)

    async def relist(self, listed: list[Obj], resource_version: str) -> None:
        """A complete list: publish what changed, then tombstones for what is gone, then the marker."""
        plan = plan_relist(self.known, listed)
        # In waves, not one acknowledgement at a time: a start lists every Service and EndpointSlice, and
        # the translator builds no tree before the last of them is on the bus.
        for wave in waves(((self._subject(key_of(obj)), obj) for obj in plan.upserts), PUBLISH_WINDOW):
            await asyncio.gather(*(self.upsert(obj) for _, obj in wave))
        for key, seen in plan.tombstones:
            # No deletion resourceVersion exists for something that vanished
            # unseen; the list's keeps the message id unique and stable.
            await self.delete(key, seen.uid, f"gone@{resource_version}")
        self.relists += 1
        log.info(
            "%s: listed %d at rv %s: %d published, %d tombstones",
            self.kind, len(listed), resource_version, len(plan.upserts), len(plan.tombstones),
        )
        marker = KindSynced(
            cluster=self.cluster, kind=self.kind, resource_version=resource_version,
            count=len(listed), epoch=self.epoch, incarnation=self.incarnation,
        )
        await self.bus.publish(subjects.k8s_synced(self.cluster, self.kind), marker)
