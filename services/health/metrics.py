"""The health service's metrics (docs/metrics.md), on the process registry.

A hook only: the runtime ingestion that knows member states calls
:func:`record_pool_members` once per poll (not wired yet: services/health is being reworked).
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Gauge

from services.common.metrics import REGISTRY

POOL_MEMBERS = Gauge(
    "albus_health_pool_members",
    "Pool members of this cluster's pools by the controller's runtime state (up, down, disabled, unknown...)",
    ["state"], registry=REGISTRY)


_seen: set[str] = set()


def record_pool_members(counts: Mapping[str, int]) -> None:
    """The members counted by state at the last poll; a state no longer seen goes to 0, not stale."""
    for state in _seen - set(counts):
        POOL_MEMBERS.labels(state).set(0)
    for state, n in counts.items():
        POOL_MEMBERS.labels(state).set(n)
    _seen.update(counts)
