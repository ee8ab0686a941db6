"""The lane gate: edits take the next free slot, up to their share while creations wait; creations never starve."""

from __future__ import annotations

import asyncio

import pytest

from services.syncer.lanes import EDIT_LANE, LaneGate


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _waiter(gate: LaneGate, edit: bool, name: str, order: list[str], go: asyncio.Event) -> None:
    lane = await gate.acquire(edit)
    order.append(name)
    await go.wait()
    gate.release(lane)


async def test_a_waiting_edit_takes_the_next_slot_before_earlier_creations() -> None:
    gate = LaneGate(2)
    order: list[str] = []
    go = asyncio.Event()
    tasks = [asyncio.create_task(_waiter(gate, False, f"c{i}", order, go)) for i in range(5)]
    await _settle()
    assert order == ["c0", "c1"]  # both slots held, three creations wait
    tasks.append(asyncio.create_task(_waiter(gate, True, "e", order, go)))
    await _settle()
    go.set()
    await asyncio.gather(*tasks)
    assert order[:3] == ["c0", "c1", "e"]
    assert sorted(order) == ["c0", "c1", "c2", "c3", "c4", "e"]


async def test_edits_hold_at_most_their_share_while_creations_wait() -> None:
    gate = LaneGate(4, edit_share=2)
    holds = [await gate.acquire(False) for _ in range(4)]
    got: list[bool] = []

    async def take(edit: bool) -> None:
        got.append(await gate.acquire(edit))

    waiters = [asyncio.create_task(take(False)) for _ in range(3)] + [asyncio.create_task(take(True))
                                                                       for _ in range(4)]
    await _settle()
    for lane in holds:
        gate.release(lane)
    await _settle()
    # Four slots freed: two to edits (their share), two to the creations waiting.
    assert sorted(got) == [False, False, True, True]
    assert gate.edits_in_use == 2
    for lane in list(got):
        gate.release(lane)
    await asyncio.gather(*waiters)
    assert sorted(got[4:]) == [False, True, True]  # the two other edits (under their share) and the last creation
    assert gate.in_use == 3


async def test_with_no_creation_waiting_edits_use_every_slot_and_the_other_way_round() -> None:
    gate = LaneGate(4, edit_share=1)
    edits = [await gate.acquire(True) for _ in range(4)]
    assert gate.in_use == 4 and edits == [True] * 4
    for lane in edits:
        gate.release(lane)
    creations = [await gate.acquire(False) for _ in range(4)]
    assert gate.in_use == 4 and creations == [False] * 4


async def test_the_lane_defaults_to_the_tasks_context_and_a_cancelled_waiter_gives_its_slot_on() -> None:
    gate = LaneGate(1)
    first = await gate.acquire(False)
    order: list[str] = []

    async def as_edit(name: str) -> None:
        EDIT_LANE.set(True)
        async with gate.lane():
            order.append(name)

    cancelled = asyncio.create_task(as_edit("cancelled"))
    go = asyncio.Event()
    creation = asyncio.create_task(_waiter(gate, False, "c", order, go))
    await _settle()
    edit = asyncio.create_task(as_edit("e"))
    await _settle()
    assert gate.waiting(True) == 2 and gate.waiting(False) == 1
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    gate.release(first)
    await edit
    await _settle()
    assert order == ["e", "c"]  # the edit that came after the creation went first
    go.set()
    await creation
    assert gate.in_use == 0
    assert not EDIT_LANE.get()  # set in the edit's task only


async def test_thousands_of_waiters_one_cancelled_are_counted_and_all_granted() -> None:
    """The waiters are counted as they come and go (counting them on every grant, as at first, made a
    10,000-tree backlog quadratic and starved the lease renewals; the cost itself is not asserted here)."""
    gate = LaneGate(4)
    n = 5_000
    held = [await gate.acquire(False) for _ in range(4)]
    done = 0

    async def one() -> None:
        nonlocal done
        async with gate.lane(False):
            done += 1

    tasks = [asyncio.create_task(one()) for _ in range(n)]
    await _settle()
    assert gate.waiting(False) == n
    tasks[0].cancel()  # one waiter gives up: not counted any more, skipped when reached
    await _settle()
    assert gate.waiting(False) == n - 1
    for lane in held:
        gate.release(lane)
    await asyncio.gather(*tasks, return_exceptions=True)
    assert done == n - 1 and gate.in_use == 0 and gate.waiting(False) == 0


async def test_waiters_are_counted_out_once_whether_granted_cancelled_or_cancelled_as_granted() -> None:
    # The count replaces a scan of the queue (quadratic with 10,000 trees waiting for admission): a
    # waiter that left it twice, or never, would hand the next slot to the wrong lane or to no one.
    gate = LaneGate(1)
    held = await gate.acquire(False)
    order: list[str] = []
    go = asyncio.Event()
    edits = [asyncio.create_task(_waiter(gate, True, f"e{i}", order, go)) for i in range(3)]
    creation = asyncio.create_task(_waiter(gate, False, "c", order, go))
    await _settle()
    assert (gate.waiting(True), gate.waiting(False)) == (3, 1)
    edits[1].cancel()  # cancelled while waiting
    await _settle()
    assert (gate.waiting(True), gate.waiting(False)) == (2, 1)
    gate.release(held)  # granted to e0
    edits[0].cancel()  # ... and cancelled before it ran: its slot passes on to e2
    await _settle()
    assert (gate.waiting(True), gate.waiting(False)) == (0, 1) and order == ["e2"]
    go.set()
    await asyncio.gather(*edits, creation, return_exceptions=True)
    assert order == ["e2", "c"] and (gate.waiting(True), gate.waiting(False)) == (0, 0) and gate.in_use == 0


async def test_a_waiter_cancelled_and_reached_before_its_task_runs_is_skipped() -> None:
    # Cancelled (its future done) but its task not yet run when a slot frees: the queue reaches it
    # first; the slot stays free for the next one and nothing is granted to a queue that is empty.
    gate = LaneGate(1)
    held = await gate.acquire(False)
    waiter = asyncio.create_task(gate.acquire(False))
    await _settle()
    waiter.cancel()  # its future is cancelled now, its handler runs at the task's next step ...
    gate.release(held)  # ... after the slot frees
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (gate.in_use, gate.waiting(False)) == (0, 0)
    assert await gate.acquire(True) is True and gate.in_use == 1
