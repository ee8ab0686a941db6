"""One DELETE per object, however many in this process ask for it.

A tree's worker and garbage collection can both want an object gone: the
worker because its tree dropped it or was deleted, GC because no tree claims
it. Each asking on its own sends two DELETEs, the second answered 404 (the
likeliest cause of one seen in a CI run of tests/multicluster). Here a second
asker waits for the first one's answer, and GC can learn which objects were
deleted after its listing was taken.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from services.syncer.cache import Key

Target = tuple[str, Key]  # (tenant, (type, name))


class Deletions:
    def __init__(self) -> None:
        # The delete under way per object; its result is what that delete raised, if anything.
        self._under_way: dict[Target, asyncio.Future[BaseException | None]] = {}
        self._watchers: list[set[Target]] = []

    async def once(self, target: Target, delete: Callable[[], Awaitable[bool]]) -> bool:
        """Run ``delete`` unless it is already running for ``target``; then share that run's outcome.

        ``delete`` returns whether it deleted the object (False: nothing to delete).
        """
        while (running := self._under_way.get(target)) is not None:
            # Shielded: a waiter cancelled does not cancel the other caller's answer.
            answer = await asyncio.shield(running)
            if isinstance(answer, asyncio.CancelledError):
                continue  # that caller was stopped, not the delete answered: ask again
            if answer is not None:
                raise answer
            return False
        done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self._under_way[target] = done
        error: BaseException | None = None
        try:
            deleted = await delete()
        except BaseException as exc:
            error = exc
            raise
        finally:
            del self._under_way[target]
            done.set_result(error)
        if deleted:
            for seen in self._watchers:
                seen.add(target)
        return deleted

    @contextmanager
    def watched(self) -> Iterator[set[Target]]:
        """The objects deleted (by anyone in this process) while the block runs."""
        seen: set[Target] = set()
        self._watchers.append(seen)
        try:
            yield seen
        finally:
            self._watchers.remove(seen)
