"""Two lanes through the syncer's gates: edits to existing VSes ahead of the creation backlog.

During a cold convergence thousands of new VSes (a macro call each) queue at
the syncer's gates (trees admitted, trees writing, controller calls); an
edit to a VS that already stands waited behind all of them. Each gate is a
``LaneGate``: a waiting edit takes the next free slot, but edits hold at most
``edit_share`` slots while creations wait, so the creations keep the rest
and are never starved; with no edit waiting they use every slot.

Which lane a task is in is a context variable, set by the partition worker
for each apply: the gates deep in the applier and the controller client read
it without every call in between passing it on.
"""

from __future__ import annotations

import asyncio
from collections import deque
from contextvars import ContextVar
from types import TracebackType

# True while the current task applies a tree whose VS already exists on the controller.
EDIT_LANE: ContextVar[bool] = ContextVar("albus_syncer_edit_lane", default=False)


class LaneGate:
    """A semaphore of ``slots`` with an edit lane served first, up to ``edit_share`` slots while creations wait."""

    def __init__(self, slots: int, edit_share: int | None = None) -> None:
        if slots < 1:
            raise ValueError("a gate needs at least one slot")
        self.slots = slots
        # Half by default: an edit waits at most for half the slots to free, creations keep the other half.
        self.edit_share = max(1, min(slots, edit_share if edit_share is not None else (slots + 1) // 2))
        self.in_use = 0
        self.edits_in_use = 0
        self._waiting: dict[bool, deque[asyncio.Future[None]]] = {True: deque(), False: deque()}
        # The queued futures not yet granted or given up, per lane: counting the queue on every grant
        # and release instead was quadratic (10,000 trees waiting for admission: a third of the event
        # loop, lease renewals too late, leases expired). A set, not a count: a cancelled waiter leaves
        # it when its task sees the cancellation or when the queue reaches it, whichever comes first.
        self._live: dict[bool, set[asyncio.Future[None]]] = {True: set(), False: set()}

    def waiting(self, edit: bool) -> int:
        return len(self._live[edit])

    def _next_lane(self) -> bool | None:
        """The lane the next free slot goes to, if any waits."""
        edits, creations = self.waiting(True), self.waiting(False)
        if edits and (self.edits_in_use < self.edit_share or not creations):
            return True
        if creations:
            return False
        return None

    def _grant(self) -> None:
        while self.in_use < self.slots:
            lane = self._next_lane()
            if lane is None:
                return
            queue = self._waiting[lane]
            fut = queue.popleft()
            self._live[lane].discard(fut)
            if fut.done():
                continue  # cancelled while waiting
            self._take(lane)
            fut.set_result(None)

    def _take(self, edit: bool) -> None:
        self.in_use += 1
        self.edits_in_use += edit

    async def acquire(self, edit: bool | None = None) -> bool:
        """Take a slot in ``edit``'s lane (the task's lane when None); returns the lane to release."""
        lane = EDIT_LANE.get() if edit is None else edit
        if self.in_use < self.slots and self._next_lane() is None:
            self._take(lane)
            return lane
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[lane].append(fut)
        self._live[lane].add(fut)
        self._grant()
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(lane)  # granted as it was cancelled: give it to the next
            else:
                fut.cancel()
                self._live[lane].discard(fut)  # it waits no more (still queued: skipped when reached)
            raise
        return lane

    def release(self, edit: bool) -> None:
        self.in_use -= 1
        self.edits_in_use -= edit
        self._grant()

    def lane(self, edit: bool | None = None) -> _Held:
        """``async with gate.lane():`` holds a slot for the block."""
        return _Held(self, edit)


class _Held:
    def __init__(self, gate: LaneGate, edit: bool | None) -> None:
        self.gate = gate
        self.edit = edit
        self.taken: bool | None = None

    async def __aenter__(self) -> None:
        self.taken = await self.gate.acquire(self.edit)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self.taken is not None:
            self.gate.release(self.taken)
            self.taken = None
