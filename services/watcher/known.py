"""What the watcher believes the bus holds, and the relist diff against it.

After a (re)list the watcher publishes what changed and tombstones only what
it knew and the list no longer has: a relist after ``410 Gone`` never deletes
something that still exists (no phantom deletes), and an object that vanished
while nobody watched still gets its tombstone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.common import subjects
from services.common.bus import Delivery
from services.common.contracts import KubeObject, decode
from services.common.reflector import Key, Obj, key_of
from services.watcher.trim import fingerprint


@dataclass(frozen=True)
class Seen:
    """The last published state of one object."""

    uid: str
    resource_version: str
    fingerprint: str


def seen_of(trimmed: Obj) -> Seen:
    meta = trimmed.get("metadata") or {}
    return Seen(str(meta.get("uid") or ""), str(meta.get("resourceVersion") or ""), fingerprint(trimmed))


@dataclass(frozen=True)
class RelistPlan:
    upserts: list[Obj] = field(default_factory=list)  # trimmed objects to publish, list order
    tombstones: list[tuple[Key, Seen]] = field(default_factory=list)  # known, no longer listed

    @property
    def unchanged(self) -> bool:
        return not self.upserts and not self.tombstones


def plan_relist(known: Mapping[Key, Seen], listed: Iterable[Obj]) -> RelistPlan:
    """Objects to publish (new or changed) and tombstones (known but absent), for trimmed ``listed``."""
    plan = RelistPlan()
    present: set[Key] = set()
    for obj in listed:
        key = key_of(obj)
        present.add(key)
        before = known.get(key)
        if before is None or before.fingerprint != fingerprint(obj):
            plan.upserts.append(obj)
    for key, seen in sorted(known.items()):
        if key not in present:
            plan.tombstones.append((key, seen))
    return plan


def known_from_stream(cluster: str, deliveries: Iterable[Delivery]) -> dict[str, dict[Key, Seen]]:
    """Per kind, the live objects the K8S stream holds for ``cluster`` (tombstones and markers skipped)."""
    out: dict[str, dict[Key, Seen]] = {}
    for d in deliveries:
        try:
            subj = subjects.parse_k8s(d.subject)
        except ValueError:
            continue
        if subj.cluster != cluster or subj.name is None:
            continue
        msg = decode(d.data, KubeObject)
        if msg.deleted or msg.obj is None:
            continue
        out.setdefault(msg.kind, {})[(msg.namespace, msg.name)] = Seen(
            msg.uid, msg.resource_version, fingerprint(msg.obj)
        )
    return out
