"""How tree objects point at controller objects and mark themselves as this cluster's."""

from __future__ import annotations

from typing import Any


def ref(obj_type: str, name: str) -> str:
    """A reference by name, a form every controller version accepts."""
    return f"/api/{obj_type}/?name={name}"


def markers(cluster: str, **extra: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"key": "clustername", "values": [cluster]}]
    out += [{"key": k, "values": [v]} for k, v in extra.items() if v]
    return out
