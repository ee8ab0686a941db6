"""The simulator's heap settling: when it freezes, and that a cycle frozen by accident is collected by a
deep settle."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from albus.sim import heap
from albus.sim.heap import HeapSettler
from albus.sim.store import Record, Store

pytestmark = pytest.mark.sim


@pytest.fixture(autouse=True)
def unfrozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(heap, "MIN_RECORDS", 10)
    yield
    gc.unfreeze()  # the freeze is process-wide: leave the test process as it was


def add(store: Store, n: int) -> None:
    for _ in range(n):
        k = len(store.by_uuid)
        store.insert(Record("pool", f"pool-{k}", "admin", {"name": f"p{k}"}))


class Node:
    other: Node | None = None


def test_settles_after_min_records_of_change() -> None:
    store = Store()
    s = HeapSettler(store)
    add(store, 9)
    assert not s.due(s.light_at)
    add(store, 1)
    assert s.due(s.light_at)
    s.settle()
    assert gc.get_freeze_count() > 0 and s.records == 10 and not s.due(s.light_at)
    for rec in list(store.by_uuid.values()):  # shrinking counts too
        store.remove(rec)
    assert s.due(s.light_at)


def test_a_large_store_standing_still_settles_every_period() -> None:
    store = Store()
    s = HeapSettler(store)
    add(store, 9)
    assert not s.due(s.light_at + heap.PERIOD_S + 1)  # small: never by the clock
    add(store, 1)
    s.settle()
    assert not s.due(s.light_at + 1)
    assert s.due(s.light_at + heap.PERIOD_S + 1)


def test_a_deep_settle_stale_s_after_a_light_one() -> None:
    store = Store()
    s = HeapSettler(store)
    add(store, 10)
    assert not s.deep_due(s.at + heap.STALE_S + 1)  # nothing frozen yet
    s.settle()
    assert not s.deep_due(s.at + 1)
    assert s.deep_due(s.at + heap.STALE_S + 1)
    s.settle(deep=True)
    assert not s.deep_due(s.at + heap.STALE_S + 1)


def test_a_frozen_cycle_survives_light_settles_and_goes_at_a_deep_one() -> None:
    store = Store()
    s = HeapSettler(store)
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    s.settle()
    del a, b
    gc.collect()
    assert gone() is not None  # frozen: out of the collector's sight
    s.settle()
    assert gone() is not None  # a light settle collects only what is not frozen
    s.settle(deep=True)
    assert gone() is None
