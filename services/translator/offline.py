"""``albus translate -f``: the translator's own code path on manifests, with no bus."""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Any

from services.common import tls_secrets
from services.common.config import Config
from services.common.contracts import AviObject, KubeObject, Problem
from services.common.sealing import Keyring
from services.translator.engine import Engine

CLUSTER_SCOPED = {"Namespace", "IngressClass", "GatewayClass", "AviInfraSetting"}
REDACTED = "<redacted>"


@functools.cache
def _offline_keyring(cluster: str) -> Keyring:
    # Keys in manifests are sealed as the watcher would seal them, under a key that dies
    # with this process: the output shows them redacted anyway.
    return Keyring.ephemeral(cluster)


def as_kube_object(doc: dict[str, Any], cluster: str) -> KubeObject | None:
    kind = doc.get("kind")
    meta = doc.get("metadata") or {}
    if not isinstance(kind, str) or not meta.get("name"):
        return None
    ns = "" if kind in CLUSTER_SCOPED else (meta.get("namespace") or "default")
    if kind == "Secret":
        # What the watcher publishes: TLS Secrets only, checked, the key sealed, no other data.
        if (doc.get("type") or "Opaque") != tls_secrets.TLS_TYPE:
            return None
        doc = {**doc, "metadata": {**meta, "namespace": ns}}
        return KubeObject(cluster=cluster, kind=kind, namespace=ns, name=meta["name"], uid=meta.get("uid", ""),
                          resource_version=meta.get("resourceVersion", ""),
                          obj=tls_secrets.trim(doc, _offline_keyring(cluster)))
    obj = dict(doc)
    if kind == "AviInfraSetting" and not (obj.get("status") or {}).get("status"):
        # Offline there is no controller to check it against: a manifest's
        # AviInfraSetting is taken as accepted, as the live one would be once valid.
        obj["status"] = {"status": "Accepted"}
    obj["metadata"] = {**meta, "namespace": ns} if ns else dict(meta)
    return KubeObject(cluster=cluster, kind=kind, namespace=ns, name=meta["name"],
                      uid=meta.get("uid", ""), resource_version=meta.get("resourceVersion", ""), obj=obj)


def _sent(obj: AviObject) -> dict[str, Any]:
    """The object as the syncer would send it, private keys redacted: they never leave albus, not even on a terminal."""
    body = {**obj.body, **obj.write_only, **{k: REDACTED for k in obj.sealed}}
    return {k: (REDACTED if k in ("key", "key_passphrase") else v) for k, v in body.items()}


def translate_documents(docs: list[dict[str, Any]], cfg: Config) -> tuple[dict[str, list[dict[str, Any]]], list[Problem]]:
    """Avi objects by type, each list sorted by name, exactly as they would be sent."""
    engine = Engine(cfg)
    for doc in docs:
        ko = as_kube_object(doc, cfg.cluster)
        if ko is not None:
            engine.observe(ko)
    engine.mark_all()
    changes = engine.flush()
    by_type: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for tree in changes.trees:
        for obj in tree.objects:
            by_type[obj.type][obj.name] = _sent(obj)
    problems = [p for r in changes.reports for p in r.problems]
    return {t: [objs[n] for n in sorted(objs)] for t, objs in sorted(by_type.items())}, problems
