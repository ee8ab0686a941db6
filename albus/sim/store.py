"""The object store: records, the indexes that keep reads O(1), reverse references, transactions.

Records hold the object as the controller stores it, with every reference replaced by the target's
uuid; rendering turns them back into URLs. Indexes: uuid → record, type → records (creation order),
(tenant, type, name) → records, target uuid → referrer uuids. Every mutation goes through
`insert`/`remove`, which also feed the hooks (IPAM, health checks); inside a transaction each one
records its inverse so a failed macro call rolls the whole hierarchy back.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from albus.sim.schema import TYPES, Enum, ListOf, Obj, Ref, Spec

Json = Any
Hook = Callable[[str, "Record"], None]  # ("insert" | "remove", record)

ADMIN_TENANT = "admin"
# types a non-admin tenant sees from the admin tenant (the provider's infrastructure)
PROVIDER_TYPES = frozenset({"cloud", "serviceenginegroup", "network", "vrfcontext", "ipamdnsproviderprofile",
                            "tenant"})


class Record:
    __slots__ = ("cloud", "data", "name", "refs", "system", "tenant", "type", "uuid")

    def __init__(self, otype: str, uuid: str, tenant: str, data: dict[str, Json], *, system: bool = False) -> None:
        self.type = otype
        self.uuid = uuid
        self.tenant = tenant
        self.name: str = data["name"]
        self.data = data
        self.system = system
        cloud = data.get("cloud_ref")
        self.cloud: str | None = cloud if isinstance(cloud, str) else None
        self.refs: set[str] = set(collect_refs(TYPES[otype].body, data)) if otype in TYPES else set()


def collect_refs(spec: Spec, value: Json) -> Iterator[str]:
    """Every referenced uuid in a normalised value."""
    if isinstance(spec, Ref):
        if spec.many:
            if isinstance(value, list):
                yield from (v for v in value if isinstance(v, str))
        elif isinstance(value, str):
            yield value
    elif isinstance(spec, Obj):
        if isinstance(value, dict):
            fields = spec.fields
            for k, v in value.items():
                sub = fields.get(k)
                if sub is not None and not isinstance(sub, (str, Enum)):
                    yield from collect_refs(sub, v)
    elif isinstance(spec, ListOf) and isinstance(value, list) and not isinstance(spec.item, (str, Enum)):
        for v in value:
            yield from collect_refs(spec.item, v)


class Store:
    def __init__(self) -> None:
        self.by_uuid: dict[str, Record] = {}
        self.by_type: dict[str, dict[str, Record]] = {t: {} for t in TYPES}
        self.by_name: dict[tuple[str, str, str], list[Record]] = {}
        self.referrers: dict[str, set[str]] = {}
        self.hooks: list[Hook] = []
        self._undo: list[Callable[[], None]] | None = None
        self._clock = itertools.count()
        self._last_us = 0
        self.version = 0  # bumped on every mutation; persistence watches it

    # ---- time --------------------------------------------------------------------------
    def next_last_modified(self) -> str:
        # strictly increasing µs epoch so two writes in the same microsecond still differ
        now = int(time.time() * 1_000_000)
        self._last_us = max(now, self._last_us + 1)
        return str(self._last_us)

    # ---- lookups -----------------------------------------------------------------------
    def get(self, uuid: str) -> Record | None:
        return self.by_uuid.get(uuid)

    def by_tenant_name(self, tenant: str, otype: str, name: str) -> list[Record]:
        return self.by_name.get((tenant, otype, name), [])

    def visible(self, rec: Record, tenant: str) -> bool:
        """Whether a request in `tenant` sees this record ("*" sees all)."""
        if tenant in ("*", rec.tenant):
            return True
        return rec.tenant == ADMIN_TENANT and (rec.system or rec.type in PROVIDER_TYPES)

    def find_by_name(self, tenant: str, otype: str, name: str, cloud: str | None = None) -> Record | None:
        """Own tenant first, then what the admin tenant provides; the caller's cloud breaks ties."""
        for t in (tenant, ADMIN_TENANT) if tenant != ADMIN_TENANT else (ADMIN_TENANT,):
            cands = [r for r in self.by_name.get((t, otype, name), ()) if self.visible(r, tenant)]
            if cands:
                if len(cands) > 1 and cloud is not None:
                    for r in cands:
                        if r.cloud == cloud:
                            return r
                return cands[0]
        return None

    def referrer_records(self, uuid: str) -> list[Record]:
        return [self.by_uuid[u] for u in self.referrers.get(uuid, ()) if u in self.by_uuid]

    # ---- mutations ---------------------------------------------------------------------
    def insert(self, rec: Record) -> None:
        self._attach(rec)
        if self._undo is not None:
            self._undo.append(lambda: self.remove(rec))

    def remove(self, rec: Record) -> None:
        self._detach(rec, keep_slot=False)
        if self._undo is not None:
            self._undo.append(lambda: self.insert(rec))

    def replace(self, old: Record, new: Record) -> None:
        """Swap a record for its new version (same uuid), keeping its position in listings."""
        self._detach(old, keep_slot=True)
        self._attach(new)
        if self._undo is not None:
            self._undo.append(lambda: self.replace(new, old))

    def _attach(self, rec: Record) -> None:
        self.by_uuid[rec.uuid] = rec
        # assigning to a kept slot preserves the record's place in creation order
        self.by_type.setdefault(rec.type, {})[rec.uuid] = rec
        self.by_name.setdefault((rec.tenant, rec.type, rec.name), []).append(rec)
        for target in rec.refs:
            self.referrers.setdefault(target, set()).add(rec.uuid)
        self.version += 1
        for hook in self.hooks:
            hook("insert", rec)

    def _detach(self, rec: Record, *, keep_slot: bool) -> None:
        self.by_uuid.pop(rec.uuid, None)
        if not keep_slot:
            self.by_type.get(rec.type, {}).pop(rec.uuid, None)
        key = (rec.tenant, rec.type, rec.name)
        lst = self.by_name.get(key)
        if lst is not None:
            lst[:] = [r for r in lst if r is not rec]
            if not lst:
                del self.by_name[key]
        for target in rec.refs:
            s = self.referrers.get(target)
            if s is not None:
                s.discard(rec.uuid)
                if not s:
                    del self.referrers[target]
        self.version += 1
        for hook in self.hooks:
            hook("remove", rec)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing: on an exception every insert/remove inside is undone in reverse order."""
        if self._undo is not None:  # nested: the outer transaction owns the undo log
            yield
            return
        self._undo = []
        try:
            yield
        except BaseException:
            undo, self._undo = self._undo, None
            for fn in reversed(undo):
                fn()
            raise
        else:
            self._undo = None
