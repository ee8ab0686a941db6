"""The translator's heap and CPython's cyclic garbage collector.

The translator keeps every object of its cluster and every tree it published:
millions of containers at 10,000 Services, alive as long as the process. The
collector traverses all of them in every full collection, and starts one each
time the heap has grown by a quarter, so while the trees of an initial list
were built it took most of the translator's CPU (bench scenario 5 at 10,000
Services: about 2,900 events per CPU second with it, 5,000-6,000 without).

Translation makes no reference cycles (its garbage goes by reference
counting), so a flush runs with the collector paused, and what a full view
leaves on the heap is frozen (``gc.freeze``: out of the collector's sight;
reference counting still frees it). Paused without the freeze, the collector
would traverse everything the flush kept on its first run after it (0.9 s on
the next event in that benchmark). Only after a full view, which is rare: a
freeze after every flush would also catch the event loop's transient objects,
and a cycle they formed later would never be collected. Frozen objects that
become garbage in a cycle (a whole round's engine and graph, which refer to
each other, when a resync replaces them) are collected at the next full
view, which unfreezes and collects before it freezes again. Small views
(under ``FREEZE_FROM`` sources) are left to the collector as usual: it costs
them little.

A cluster that grows by events (a cold start: an empty full view, then the
Services as kubectl creates them) never makes a large full view, and the
collector traversed each new tree two or three times as it aged (a fifth of
the translator's CPU through the bus). So a flush part that leaves much on
the heap (``FREEZE_GROWTH`` container objects, counted by the collector
itself) freezes it before any collection sees it: ``gc.freeze`` costs
nothing, whatever the heap. What such a freeze catches and later turns into
cyclic garbage is collected when the heap has doubled since it was last
collected whole (a settle then): amortized, each object is traversed a
constant number of times, and that garbage stays under the size of the heap.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection inside (nested uses are fine): garbage found later is collected then."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


FREEZE_FROM = 1000  # sources in a full view


def settle() -> None:
    """What is alive now stays out of later collections; what an earlier settle froze is collected first if dead."""
    if gc.get_freeze_count():
        gc.unfreeze()
        gc.collect()
    gc.freeze()
    global _settled_blocks
    _settled_blocks = blocks()


FREEZE_GROWTH = 20_000  # container objects one flush part left on the heap
blocks = sys.getallocatedblocks  # the heap's size, as pymalloc counts it (cheap to ask)
_settled_blocks = 0  # its size when it was last collected whole (0: never)


def keep_growth() -> None:
    """After a flush part, the collector still paused: freeze what it left if that is much.

    The heap twice as large as when it was last collected whole: a settle
    instead, which collects the cyclic garbage earlier freezes caught.
    """
    if gc.get_count()[0] < FREEZE_GROWTH:
        return
    if _settled_blocks and blocks() < 2 * _settled_blocks:
        gc.freeze()
    else:
        settle()
