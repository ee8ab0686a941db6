"""Messages in waves: sent together, acknowledged together, each subject's messages in order.

One acknowledgement awaited per message capped the translator's flushes and
the watcher's lists at one message per bus round trip; on a busy machine
edits queued behind that (bench/README.md, "Translator tuning"). A wave holds at most ``size``
messages and never two for one subject, so a subject's messages still reach
the stream in the order the engine gave them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def waves(messages: Iterable[tuple[str, T]], size: int) -> Iterator[list[tuple[str, T]]]:
    """Consecutive runs of ``(subject, message)``, in order, cut at ``size`` or at a subject seen in the run."""
    wave: list[tuple[str, T]] = []
    subjects: set[str] = set()
    for subject, msg in messages:
        if wave and (subject in subjects or len(wave) >= size):
            yield wave
            wave, subjects = [], set()
        wave.append((subject, msg))
        subjects.add(subject)
    if wave:
        yield wave
