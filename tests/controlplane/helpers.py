"""Small helpers shared by the control-plane tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import watch


def watch_events(
    list_fn: Callable[..., Any],
    *args: Any,
    count: int,
    timeout: int = 20,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """The first ``count`` events of one watch; fewer if ``timeout`` s pass first.

    The server ends the watch after ``timeout`` seconds, which is the deadline.
    """
    events: list[dict[str, Any]] = []
    w = watch.Watch()
    for event in w.stream(list_fn, *args, timeout_seconds=timeout, **kwargs):
        events.append(event)
        if len(events) >= count:
            w.stop()
            break
    return events


def names(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"].metadata.name) for e in events]
