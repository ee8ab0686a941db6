"""The translator's metrics (docs/metrics.md), on the process registry."""

from __future__ import annotations

from prometheus_client import Gauge, Histogram

from services.common.metrics import REGISTRY

TRANSLATE_SECONDS = Histogram(
    "albus_translator_translate_seconds",
    "From the first Kubernetes event of a burst to its trees and reports acknowledged on the bus "
    "(a round's first full view includes the wait for every kind's list)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY)
PENDING_SOURCES = Gauge(
    "albus_translator_pending_sources",
    "Kubernetes objects changed and not yet translated (the current round's dirty set)",
    registry=REGISTRY)
