"""Health's drain: several objects brought in line at once, one object never twice at once.

The drain's scheduling alone (``reconcile`` replaced by a step the test
holds open); the API calls themselves are the k8s tests'.
"""

from __future__ import annotations

import asyncio
from typing import Any

from services.common.config import parse_config
from services.health.desired import SvcKey
from services.health.reconciler import HealthReconciler


class Held(HealthReconciler):
    """Each reconcile waits until the test lets it finish: what is in flight at any instant is known."""

    def __init__(self, concurrency: int) -> None:
        super().__init__(None, None, "c", "test",  # type: ignore[arg-type]
                         cfg=parse_config({"albus": {"healthStatusConcurrency": concurrency}}))
        self.in_flight: dict[SvcKey, asyncio.Event] = {}
        self.peak = 0
        self.done: list[SvcKey] = []
        self.overlapped: list[SvcKey] = []
        self.fail: set[SvcKey] = set()
        self.started = asyncio.Condition()

    async def reconcile(self, key: SvcKey) -> None:
        if key in self.in_flight:
            self.overlapped.append(key)
        release = self.in_flight[key] = asyncio.Event()
        self.peak = max(self.peak, len(self.in_flight))
        async with self.started:
            self.started.notify_all()
        await release.wait()
        del self.in_flight[key]
        self.done.append(key)
        if key in self.fail:
            raise RuntimeError("the API server said no")

    async def until(self, pred: Any) -> None:
        async with self.started:
            await asyncio.wait_for(self.started.wait_for(pred), 5)

    def finish(self, *keys: SvcKey) -> None:
        for k in keys:
            self.in_flight[k].set()


def key(i: int) -> SvcKey:
    return ("ns", f"svc-{i}")


async def release_all(r: Held, drain: asyncio.Task[None]) -> None:
    """Let every reconcile finish as it comes, until the drain ends (10 s at most)."""
    async with asyncio.timeout(10):
        while not drain.done():
            r.finish(*list(r.in_flight))
            await asyncio.sleep(0.01)
    await drain


async def test_as_many_objects_as_configured_are_in_flight_and_no_more() -> None:
    r = Held(concurrency=4)
    r._mark({key(i) for i in range(10)})
    drain = asyncio.create_task(r._drain())
    await r.until(lambda: len(r.in_flight) == 4)
    assert r.peak == 4  # one at a time was the old way: 10 objects, 10 round-trip chains end to end
    await release_all(r, drain)
    assert sorted(r.done) == sorted(key(i) for i in range(10)) and r.peak == 4 and not r._dirty


async def test_an_object_marked_while_in_flight_goes_again_after_never_beside_itself() -> None:
    r = Held(concurrency=4)
    r._mark({key(1)})
    drain = asyncio.create_task(r._drain())
    await r.until(lambda: key(1) in r.in_flight)
    # A newer message about the same Service while its read-and-write is under way, and another Service.
    r._mark({key(1), key(2)})
    await r.until(lambda: key(2) in r.in_flight)
    for _ in range(20):
        await asyncio.sleep(0)
    assert r.overlapped == [] and r.done == []
    r.finish(key(1))
    # Reconciled again, after the first, with what the newer message said.
    await r.until(lambda: key(1) in r.in_flight)
    assert r.done == [key(1)] and r.overlapped == []
    r.finish(key(1), key(2))
    await asyncio.wait_for(drain, 5)
    assert sorted(r.done) == [key(1), key(1), key(2)] and r.overlapped == []


async def test_a_failed_object_is_retried_later_and_the_others_go_on() -> None:
    r = Held(concurrency=2)
    r.fail = {key(1)}
    r._mark({key(1), key(2), key(3)})
    await release_all(r, asyncio.create_task(r._drain()))
    assert sorted(r.done) == [key(1), key(2), key(3)]
    assert set(r._retry_at) == {key(1)} and r._retry_at[key(1)][1] == r.backoff_initial


async def test_a_stopped_drain_leaves_nothing_running() -> None:
    r = Held(concurrency=3)
    r._mark({key(i) for i in range(5)})
    drain = asyncio.create_task(r._drain())
    await r.until(lambda: len(r.in_flight) == 3)
    tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("reconcile ")]
    assert len(tasks) == 3
    drain.cancel()
    await asyncio.gather(drain, return_exceptions=True)
    assert all(t.cancelled() for t in tasks)


async def test_what_outcomes_changed_goes_before_what_only_trees_changed() -> None:
    r = Held(concurrency=1)
    r._mark({key(i) for i in range(5)}, later=True)  # trees: pending at most
    r._mark({key(7), key(3)})  # outcomes; one of them a Service a tree had marked too
    assert r._dirty.first == {key(3), key(7)} and key(3) not in r._dirty.later and len(r._dirty) == 6
    r._mark({key(7)}, later=True)  # a tree after the outcome: stays in the first lane
    assert key(7) in r._dirty.first and key(7) not in r._dirty.later
    await release_all(r, asyncio.create_task(r._drain()))
    assert set(r.done[:2]) == {key(3), key(7)} and sorted(r.done[2:]) == [key(0), key(1), key(2), key(4)]
