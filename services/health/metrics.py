"""The health service's metrics (docs/metrics.md), on the process registry.

A hook only: the runtime poller calls :func:`record_pool_members` after each
complete sweep, with the counts of the controller's pool inventory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import Gauge

from services.common.metrics import REGISTRY
from services.health.runtime_reader import PoolSummary

POOL_MEMBERS = Gauge(
    "albus_health_pool_members",
    "Pool members of this cluster's pools by the controller's runtime state: up, not_up (enabled, not up: "
    "down or not yet checked), disabled",
    ["state"], registry=REGISTRY)


_seen: set[str] = set()


def record_pool_members(counts: Mapping[str, int]) -> None:
    """The members counted by state at the last poll; a state no longer seen goes to 0, not stale."""
    for state in _seen - set(counts):
        POOL_MEMBERS.labels(state).set(0)
    for state, n in counts.items():
        POOL_MEMBERS.labels(state).set(n)
    _seen.update(counts)


def member_counts(pools: Iterable[PoolSummary]) -> dict[str, int]:
    """Members by state from the inventory's per-pool counts (no per-member read needed)."""
    up = not_up = disabled = 0
    for p in pools:
        up += p.up
        not_up += max(0, p.enabled - p.up)
        disabled += max(0, p.servers - p.enabled)
    return {"up": up, "not_up": not_up, "disabled": disabled}
