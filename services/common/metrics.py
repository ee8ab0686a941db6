"""This process's Prometheus metrics: one registry, and the bus's message counters.

Each service defines its own metrics in its package (``services/<service>/metrics.py``)
on :data:`REGISTRY`; :mod:`services.common.probes` serves it at ``/metrics``.
Every metric is listed in docs/metrics.md. Labels stay low-cardinality: a
subject's *kind* (``k8s.Service``, ``avi``, ``outcome``...), never the subject.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, GCCollector, Histogram, ProcessCollector

# One per process (a module global is one per process): the services never share a process in production.
REGISTRY = CollectorRegistry(auto_describe=True)
# CPU, memory, file descriptors and Python's GC: what resource requests and limits are set from.
ProcessCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

BUS_RECEIVED = Counter(
    "albus_bus_messages_received", "Messages the bus delivered to this process, by subject kind",
    ["kind"], registry=REGISTRY)
BUS_PUBLISHED = Counter(
    "albus_bus_messages_published", "Messages this process published that JetStream acknowledged, by subject kind",
    ["kind"], registry=REGISTRY)

LOOP_LAG = Histogram(
    "albus_event_loop_lag_seconds",
    "How late the event loop ran a timer (sampled every 0.5 s): long values are the loop blocked",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0), registry=REGISTRY)

# Subjects whose first token is their kind (contracts in docs/architecture.md#bus).
_HEADS = frozenset({"avi", "avisync", "outcome", "report"})
# ... and those whose kind is in a later token: k8s.<cluster>.<kind>, trace.<span|obj>, ctl.<cluster>.<resync|done>.
_KIND_TOKEN = {"k8s": 2, "trace": 1, "ctl": 2}


def subject_kind(subject: str) -> str:
    """The kind of a bus subject, for a label: bounded by the contracts, whatever the objects' names."""
    tokens = subject.split(".")
    head = tokens[0]
    if head in _HEADS:
        return head
    at = _KIND_TOKEN.get(head)
    if at is not None and len(tokens) > at and tokens[at].isalnum():
        return f"{head}.{tokens[at]}"
    return "other"
