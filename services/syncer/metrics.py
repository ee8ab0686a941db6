"""The syncer's metrics (docs/metrics.md), on the process registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.common.metrics import REGISTRY

CONTROLLER_CALLS = Counter(
    "albus_syncer_controller_calls",
    "Controller calls, each retry counted (the controller saw it); status 'none': no answer",
    ["method", "object_type", "status"], registry=REGISTRY)
APPLY_SECONDS = Histogram(
    "albus_syncer_apply_seconds",
    "Applying one VS tree to the controller (diff, writes, read-backs), by result",
    ["result"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY)
PENDING_TREES = Gauge(
    "albus_syncer_pending_trees",
    "VS trees of this process's partitions waiting to be applied, being applied, or waiting to retry",
    registry=REGISTRY)
PARTITIONS_HELD = Gauge(
    "albus_syncer_partitions_held", "Partitions this process holds a lease on", registry=REGISTRY)


def object_type(path: str) -> str:
    """A controller path's object type (``virtualservice/<uuid>`` → ``virtualservice``), for a label."""
    return path.split("/", 1)[0].split("?", 1)[0] or "none"
