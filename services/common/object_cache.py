"""A reflector's sink that keeps the objects: an informer's store.

Health reads the Services it writes status on from here instead of a GET per
reconcile (docs/health.md, "Reading Services from a watch"). Every change
calls ``on_change`` with the object's key, so whoever reads from the cache
looks again at an object someone else changed.

Our own writes: the API server answers a write with the object as written,
and the watch shows it tens of milliseconds later. :meth:`wrote` keeps that
answer (or an object read afresh after a 409) until the watch catches up, so
a reconcile in between reads what was just written, not the object before it
(whose resourceVersion would make the next conditional write fail with 409). Telling which of two copies is newer
compares resourceVersions as integers, which the API treats as opaque; etcd's
are integers, and a wrong guess costs only a 409 and a fresh read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from services.common.reflector import Key, Obj, Trim, key_of


def _newer(a: Obj, b: Obj) -> bool:
    """``a`` is a later version of the object than ``b`` (False when either version is not an integer)."""
    try:
        return int(a["metadata"]["resourceVersion"]) > int(b["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return False


class ObjectCache:
    def __init__(self, trim: Trim, on_change: Callable[[Key], None] = lambda _key: None) -> None:
        self.trim = trim
        self.on_change = on_change
        self.objects: dict[Key, Obj] = {}
        self._written: dict[Key, Obj] = {}  # objects newer than the watch has shown (fresher())
        self.listed = asyncio.Event()  # set by the first complete list
        self.relists = 0

    def get(self, key: Key) -> Obj | None:
        seen = self.objects.get(key)
        mine = self._written.get(key)
        if mine is not None and (seen is None or _newer(mine, seen)):
            return mine
        return seen

    def fresher(self, answer: Obj) -> None:
        """An object the API server just gave us (a write's answer, a GET), kept if newer than the watch's."""
        trimmed = self.trim(answer)
        key = key_of(trimmed)
        seen = self.objects.get(key)
        if seen is not None and _newer(trimmed, seen):
            self._written[key] = trimmed

    # -- the reflector's sink ---------------------------------------------

    async def relist(self, listed: list[Obj], resource_version: str) -> None:
        before = set(self.objects)
        self.objects = {key_of(obj): obj for obj in listed}
        self._written.clear()  # the list is at least as new as any write answered before it
        self.relists += 1
        self.listed.set()
        for key in before | set(self.objects):
            self.on_change(key)

    async def upsert(self, trimmed: Obj) -> None:
        key = key_of(trimmed)
        self.objects[key] = trimmed
        mine = self._written.get(key)
        if mine is not None and not _newer(mine, trimmed):
            del self._written[key]
        self.on_change(key)

    async def delete(self, key: Key, uid: str, resource_version: str) -> None:
        self.objects.pop(key, None)
        self._written.pop(key, None)
        self.on_change(key)

    async def forget(self, key: Key, uid: str, resource_version: str) -> None:
        await self.delete(key, uid, resource_version)
