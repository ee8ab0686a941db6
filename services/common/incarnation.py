"""Which incarnation of a stream some state was read from, and whether that stream was lost since.

A stream's ``created`` time is kept in nats-server's store: it stays the same
across any restart that keeps the store and changes when the store is wiped
and the stream is created again. It names the stream's *incarnation*. State
read from one incarnation (a watcher's known set, a translator's published
trees) says nothing about another, so the markers that claim a complete view
carry the incarnation they describe, and readers believe them only while it
is still the current one (docs/disaster-recovery.md).

A stream that is gone, was created again, or whose last sequence went
backwards (acknowledged messages lost without the stream being recreated)
means the state read from it must be rebuilt: :func:`losses` says which.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nats.js.errors import NotFoundError

from services.common.bus import Bus


@dataclass(frozen=True)
class StreamMark:
    """What identifies one stream's incarnation and how far it had got."""

    incarnation: str  # the stream's creation time (ISO 8601)
    last_seq: int


async def mark(bus: Bus, stream: str) -> StreamMark | None:
    """The stream's incarnation and last sequence now; None when it does not exist."""
    try:
        info = await bus.js.stream_info(stream)
    except NotFoundError:
        return None
    created = info.created.isoformat() if info.created is not None else ""
    return StreamMark(incarnation=created, last_seq=int(info.state.last_seq))


async def marks(bus: Bus, streams: Iterable[str]) -> dict[str, StreamMark | None]:
    return {s: await mark(bus, s) for s in streams}


async def incarnation(bus: Bus, stream: str) -> str:
    """The stream's current incarnation; "" when it does not exist (nothing can match that)."""
    m = await mark(bus, stream)
    return m.incarnation if m is not None else ""


def losses(baseline: Mapping[str, StreamMark], now: Mapping[str, StreamMark | None]) -> list[str]:
    """Why the state read from ``baseline``'s streams no longer matches them (empty: it still does)."""
    out: list[str] = []
    for name, was in sorted(baseline.items()):
        cur = now.get(name)
        if cur is None:
            out.append(f"stream {name} is gone")
        elif cur.incarnation != was.incarnation:
            out.append(f"stream {name} was created again ({was.incarnation} -> {cur.incarnation})")
        elif cur.last_seq < was.last_seq:
            out.append(f"stream {name} lost messages (last sequence {was.last_seq} -> {cur.last_seq})")
    return out
