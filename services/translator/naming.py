"""Controller object names, as AKO makes them, so an AKO user recognises every object.

``<cluster>--`` prefixes everything a cluster owns; then namespace, object
name, protocol and port joined by ``-`` (see ``shared/research/ako.md`` §1).
"""

from __future__ import annotations

import hashlib

# The controller refuses longer names; AKO only warns, we shorten instead.
AVI_NAME_MAX = 255


def prefix(cluster: str) -> str:
    return f"{cluster}--"


def fit(name: str, cluster: str) -> str:
    """Keep a name within the controller's limit: the cluster prefix, then a digest if too long."""
    if len(name) <= AVI_NAME_MAX:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()
    keep = AVI_NAME_MAX - len(digest) - 1
    return f"{name[:keep]}-{digest}"


def l4_vs(cluster: str, namespace: str, service: str) -> str:
    return fit(f"{prefix(cluster)}{namespace}-{service}", cluster)


def l4_vsvip(cluster: str, namespace: str, service: str) -> str:
    return l4_vs(cluster, namespace, service)


def l4_pool(cluster: str, namespace: str, service: str, protocol: str, port: int) -> str:
    return fit(f"{prefix(cluster)}{namespace}-{service}-{protocol}-{port}", cluster)


def l4_policyset(cluster: str, namespace: str, service: str) -> str:
    return l4_vs(cluster, namespace, service)


def created_by(cluster: str) -> str:
    return f"ako-{cluster}"
