"""How many Events to write, the way client-go's event recorder decides (its ``EventCorrelator``).

Pure (a clock is passed in). Three steps, in client-go's order:

* **spam filter**: a token bucket per object (burst 25, one token back every
  5 minutes, client-go's defaults); an Event with no token is dropped.
* **aggregation**: once 10 Events of the same object, type and reason but
  different notes came within 10 minutes, further ones carry the note
  ``(combined from similar events): <note>`` and so fold into one Event.
* **deduplication**: an Event with the same object, type, reason and note as
  one already written bumps that Event's ``series.count`` (a patch) instead
  of creating another.

The memory is per process (an LRU of 4096 keys, as client-go's): after a
restart the first repeat creates a new Event. Events themselves are decided
by status transitions (``service_status``), so a restart does not repeat
them; this only bounds a flapping member.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")

BURST = 25
REFILL_SECONDS = 300.0
AGGREGATE_MAX = 10
AGGREGATE_WINDOW = 600.0
CACHE_SIZE = 4096
COMBINED = "(combined from similar events): "


@dataclass(frozen=True)
class Decision:
    action: str  # "create" | "bump" | "drop"
    note: str  # the note to write (combined when aggregated)
    name: str = ""  # bump: the Event to patch
    count: int = 1  # bump: the series count to write


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class _Similar:
    notes: set[str]
    since: float


class EventCorrelator:
    def __init__(self, *, burst: int = BURST, refill_seconds: float = REFILL_SECONDS,
                 aggregate_max: int = AGGREGATE_MAX, aggregate_window: float = AGGREGATE_WINDOW) -> None:
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.aggregate_max = aggregate_max
        self.aggregate_window = aggregate_window
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._similar: OrderedDict[tuple[str, str, str], _Similar] = OrderedDict()
        self._written: OrderedDict[tuple[str, str, str, str], tuple[str, int]] = OrderedDict()  # -> (name, count)
        self.dropped = 0

    def decide(self, obj: str, type_: str, reason: str, note: str, now: float) -> Decision:
        """What to do with an Event about ``obj`` (its uid, or kind/namespace/name)."""
        if not self._take(obj, now):
            self.dropped += 1
            return Decision("drop", note)
        sim = _touch(self._similar, (obj, type_, reason), lambda: _Similar(set(), now))
        if now - sim.since > self.aggregate_window:
            sim.notes, sim.since = set(), now
        sim.notes.add(note)
        if len(sim.notes) >= self.aggregate_max:
            note = COMBINED + note
        key = (obj, type_, reason, COMBINED if note.startswith(COMBINED) else note)
        seen = self._written.get(key)
        if seen is not None:
            self._written.move_to_end(key)
            return Decision("bump", note, seen[0], seen[1] + 1)
        return Decision("create", note)

    def written(self, obj: str, type_: str, reason: str, note: str, name: str, count: int) -> None:
        """Record that the Event ``name`` now stands for ``count`` occurrences."""
        key = (obj, type_, reason, COMBINED if note.startswith(COMBINED) else note)
        self._written[key] = (name, count)
        self._written.move_to_end(key)
        while len(self._written) > CACHE_SIZE:
            self._written.popitem(last=False)

    def forget(self, obj: str, type_: str, reason: str, note: str) -> None:
        """The Event is gone (expired): the next one is created afresh."""
        self._written.pop((obj, type_, reason, COMBINED if note.startswith(COMBINED) else note), None)

    def _take(self, obj: str, now: float) -> bool:
        b = _touch(self._buckets, obj, lambda: _Bucket(float(self.burst), now))
        b.tokens = min(float(self.burst), b.tokens + (now - b.at) / self.refill_seconds)
        b.at = now
        if b.tokens < 1.0:
            return False
        b.tokens -= 1.0
        return True


def _touch(cache: OrderedDict[K, V], key: K, make: Callable[[], V]) -> V:
    if key not in cache:
        cache[key] = make()
        while len(cache) > CACHE_SIZE:
            cache.popitem(last=False)
    cache.move_to_end(key)
    return cache[key]
