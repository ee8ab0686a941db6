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
"""

from __future__ import annotations

import contextlib
import gc
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
