"""What health has to bring in line, in which order, and how many at once.

Level-based: reconciling an object compares it with everything the bus says
now, so the order changes only which status the cluster sees first. Two
lanes: objects an apply outcome, a report, a slice or the runtime touched
go first; objects only a tree touched (a Service not applied yet: at most a
``VipPending`` condition) after them. On a start with 10,000 Services the
trees come all at once, long before their outcomes; one lane spent the API
server on pending conditions while VIPs waited, and wrote most of them only
to overwrite them moments later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Dirty(Generic[K]):
    def __init__(self) -> None:
        self.first: set[K] = set()
        self.later: set[K] = set()

    def mark(self, keys: set[K], *, later: bool = False) -> None:
        if later:
            self.later |= keys - self.first
        else:
            self.first |= keys
            self.later -= keys

    def pop(self) -> K:
        return self.first.pop() if self.first else self.later.pop()

    def __contains__(self, key: object) -> bool:
        return key in self.first or key in self.later

    def __bool__(self) -> bool:
        return bool(self.first or self.later)

    def __len__(self) -> int:
        return len(self.first) + len(self.later)


async def drain(dirty: Dirty[K], work: Callable[[K], Coroutine[Any, Any, None]], concurrency: int,
                marked: asyncio.Event) -> None:
    """``work`` on every dirty key, ``concurrency`` at a time, one key never twice at once.

    Keys marked while it runs join it (``marked`` is set by whoever marks);
    a key marked while in flight goes again after. Cancelled, it cancels
    what it started and returns when those have stopped.
    """
    running: dict[asyncio.Task[None], K] = {}
    try:
        while dirty or running:
            busy = set(running.values())
            again: set[K] = set()
            while dirty and len(running) < concurrency:
                key = dirty.pop()
                if key in busy:
                    again.add(key)
                else:
                    running[asyncio.create_task(work(key), name=f"reconcile {key!r}")] = key
            dirty.mark(again)
            # Until one finishes, or something new is marked (a slot may be free for it).
            marked.clear()
            woken: asyncio.Future[Any] = asyncio.ensure_future(marked.wait())
            done, _ = await asyncio.wait([*running, woken], return_when=asyncio.FIRST_COMPLETED)
            woken.cancel()
            for task in running.keys() & done:
                del running[task]
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
