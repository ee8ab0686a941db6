"""The watcher's metrics (docs/metrics.md), on the process registry."""

from __future__ import annotations

from prometheus_client import Gauge

from services.common.metrics import REGISTRY

LEADER = Gauge("albus_watcher_leader", "1 while this process holds the cluster's Lease and reflects it", registry=REGISTRY)
KINDS_LISTED = Gauge(
    "albus_watcher_kinds_listed", "Kinds listed and published this term (the readiness of a leader)",
    registry=REGISTRY)
