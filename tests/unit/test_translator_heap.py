"""The translator's flush keeps the cyclic collector out of tree building and freezes a full view's heap
(services/translator/heap.py) without ever keeping a replaced round's state alive."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from services.translator import heap
from services.translator.engine import Engine
from services.translator.offline import as_kube_object
from tests.unit import test_translate_l4 as l4


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def full_view(n: int) -> Engine:
    e = Engine(l4.CFG)
    for i in range(n):
        ko = as_kube_object(l4.svc(f"s{i}"), "c1")
        assert ko is not None
        e.observe(ko)
    e.mark_all()
    assert len(e.flush().trees) == n
    return e


def test_flush_gives_the_collector_back_as_it_found_it() -> None:
    assert gc.isenabled()
    full_view(3)
    assert gc.isenabled()
    gc.disable()
    try:
        full_view(3)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_full_view_is_frozen_and_a_replaced_rounds_state_is_still_collected(
        monkeypatch: pytest.MonkeyPatch, unfrozen: None) -> None:
    monkeypatch.setattr(heap, "FREEZE_FROM", 2)
    first = full_view(3)
    assert gc.get_freeze_count() > 0
    gone = weakref.ref(first)
    del first  # a resync's new round replaces the engine; engine and graph refer to each other
    full_view(3)
    assert gone() is None


def test_a_small_full_view_is_left_to_the_collector(unfrozen: None) -> None:
    gc.unfreeze()
    full_view(3)
    assert gc.get_freeze_count() == 0


class _Cyclic:
    me: object


def _grow(e: Engine, first: int, n: int) -> None:
    """Services created one event at a time, as on a cold start (no full view)."""
    for i in range(first, first + n):
        ko = as_kube_object(l4.svc(f"g{i}"), "c1")
        assert ko is not None
        e.observe(ko)
    assert len(e.flush().trees) == n


def test_a_flush_that_grows_the_heap_much_freezes_what_it_left(
        monkeypatch: pytest.MonkeyPatch, unfrozen: None) -> None:
    gc.unfreeze()
    monkeypatch.setattr(heap, "_settled_blocks", 0)
    e = Engine(l4.CFG)
    monkeypatch.setattr(heap, "FREEZE_GROWTH", 10**9)
    _grow(e, 0, 10)
    assert gc.get_freeze_count() == 0, "a flush leaving little is the collector's"
    monkeypatch.setattr(heap, "FREEZE_GROWTH", 100)
    _grow(e, 10, 10)
    assert gc.get_freeze_count() > 0


def test_cyclic_garbage_a_freeze_caught_is_collected_once_the_heap_has_doubled(
        monkeypatch: pytest.MonkeyPatch, unfrozen: None) -> None:
    gc.unfreeze()
    monkeypatch.setattr(heap, "_settled_blocks", 0)
    monkeypatch.setattr(heap, "FREEZE_GROWTH", 100)
    size = [1000]
    monkeypatch.setattr(heap, "blocks", lambda: size[0])
    e = Engine(l4.CFG)
    c = _Cyclic()
    c.me = c
    gone = weakref.ref(c)
    _grow(e, 0, 10)  # frozen with it, the heap's size noted (1000)
    del c
    gc.collect()
    assert gone() is not None, "frozen: out of the collector's sight"
    size[0] = 1500
    _grow(e, 10, 10)  # grown by half: frozen again, not collected
    gc.collect()
    assert gone() is not None
    size[0] = 2100
    _grow(e, 20, 10)  # doubled: collected whole, then frozen
    assert gone() is None
