"""NATS subjects and streams: how bus addresses are built and parsed.

Kubernetes names may contain ``.`` (a subject token separator), so every
name token is escaped: ``.`` becomes ``~``, a character no Kubernetes or Avi
name contains. Cluster-scoped objects use ``_`` as their namespace token
(namespaces are DNS labels and cannot be ``_``).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

# The number of syncer partitions is part of the bus contract: every
# translator and syncer must agree on it. 64 spreads well over 1-16 replicas.
PARTITIONS = 64

STREAM_K8S = "ALBUS_K8S"
STREAM_AVI = "ALBUS_AVI"
STREAM_OUTCOME = "ALBUS_OUTCOME"
STREAM_TRACES = "ALBUS_TRACES"
STREAM_CONTROL = "ALBUS_CONTROL"

CLUSTER_SCOPE = "_"
SYNCED = "_synced"


def esc(token: str) -> str:
    if not token:
        raise ValueError("empty subject token")
    if any(c in token for c in " \t\r\n*>~"):
        raise ValueError(f"invalid character in subject token {token!r}")
    return token.replace(".", "~")


def unesc(token: str) -> str:
    return token.replace("~", ".")


def partition_of(cluster: str, vs_name: str) -> int:
    """Stable partition of a virtual service: the same on every process and run."""
    return zlib.crc32(f"{cluster}/{vs_name}".encode()) % PARTITIONS


def k8s_object(cluster: str, kind: str, namespace: str, name: str) -> str:
    ns = esc(namespace) if namespace else CLUSTER_SCOPE
    return f"k8s.{esc(cluster)}.{esc(kind)}.{ns}.{esc(name)}"


def k8s_synced(cluster: str, kind: str) -> str:
    return f"k8s.{esc(cluster)}.{esc(kind)}.{SYNCED}"


def k8s_cluster(cluster: str) -> str:
    return f"k8s.{esc(cluster)}.>"


def avi_tree(cluster: str, tenant: str, vs_name: str) -> str:
    return f"avi.{partition_of(cluster, vs_name)}.{esc(cluster)}.{esc(tenant)}.{esc(vs_name)}"


def avi_partition(part: int) -> str:
    return f"avi.{part}.>"


def avi_cluster(cluster: str) -> str:
    return f"avi.*.{esc(cluster)}.>"


def trees_synced(cluster: str) -> str:
    return f"avisync.{esc(cluster)}"


def outcome(cluster: str, tenant: str, vs_name: str) -> str:
    return f"outcome.{esc(cluster)}.{esc(tenant)}.{esc(vs_name)}"


def outcome_cluster(cluster: str) -> str:
    return f"outcome.{esc(cluster)}.>"


def report(cluster: str, kind: str, namespace: str, name: str) -> str:
    ns = esc(namespace) if namespace else CLUSTER_SCOPE
    return f"report.{esc(cluster)}.{esc(kind)}.{ns}.{esc(name)}"


def report_cluster(cluster: str) -> str:
    return f"report.{esc(cluster)}.>"


def trace_spans(cluster: str, trace_id: str) -> str:
    return f"trace.span.{esc(cluster)}.{esc(trace_id)}"


def trace_index(cluster: str, kind: str, namespace: str, name: str) -> str:
    ns = esc(namespace) if namespace else CLUSTER_SCOPE
    return f"trace.obj.{esc(cluster)}.{esc(kind)}.{ns}.{esc(name)}"


def resync_request(cluster: str) -> str:
    return f"ctl.{esc(cluster)}.resync"


def resync_done(cluster: str, service: str, instance: str) -> str:
    return f"ctl.{esc(cluster)}.done.{esc(service)}.{esc(instance)}"


def resync_done_cluster(cluster: str) -> str:
    return f"ctl.{esc(cluster)}.done.>"


@dataclass(frozen=True)
class K8sSubject:
    cluster: str
    kind: str
    namespace: str
    name: str | None  # None for a synced marker


def parse_k8s(subject: str) -> K8sSubject:
    parts = subject.split(".")
    if len(parts) == 4 and parts[0] == "k8s" and parts[3] == SYNCED:
        return K8sSubject(unesc(parts[1]), unesc(parts[2]), "", None)
    if len(parts) != 5 or parts[0] != "k8s":
        raise ValueError(f"not a k8s subject: {subject}")
    ns = "" if parts[3] == CLUSTER_SCOPE else unesc(parts[3])
    return K8sSubject(unesc(parts[1]), unesc(parts[2]), ns, unesc(parts[4]))


def parse_avi_tree(subject: str) -> tuple[str, str, str] | None:
    """(cluster, tenant, vs name) of a tree's subject (:func:`avi_tree`); None for any other subject."""
    parts = subject.split(".")
    if len(parts) != 5 or parts[0] != "avi" or not parts[1].isdigit():
        return None
    return unesc(parts[2]), unesc(parts[3]), unesc(parts[4])


# Streams and what they hold; every stream keeps the newest message per
# subject, except those given other limits in STREAM_LIMITS.
STREAMS: dict[str, list[str]] = {
    STREAM_K8S: ["k8s.>"],
    STREAM_AVI: ["avi.>", "avisync.>"],
    STREAM_OUTCOME: ["outcome.>", "report.>"],
    STREAM_TRACES: ["trace.>"],
    STREAM_CONTROL: ["ctl.>"],  # resync requests and the services' answers (docs/disaster-recovery.md)
}

# Every pattern in STREAMS is ``<token>.>``: a subject's stream is its first token's.
_STREAM_BY_HEAD = {p.removesuffix(".>"): name for name, patterns in STREAMS.items() for p in patterns}


def stream_of(subject: str) -> str | None:
    """The stream holding ``subject``; None when none does."""
    head, dot, _ = subject.partition(".")
    return _STREAM_BY_HEAD.get(head) if dot else None


# The span store is a bounded history, not state: every message kept, the
# oldest dropped past an hour or 64 MiB (whichever comes first).
STREAM_LIMITS: dict[str, dict[str, float]] = {
    STREAM_TRACES: {"max_msgs_per_subject": -1, "max_age": 3600.0, "max_bytes": 64 * 1024 * 1024},
}
