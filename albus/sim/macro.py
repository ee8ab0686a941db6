"""The macro API: a top-level object and the objects it refers to, given inline, in one transaction.

Inline objects sit next to the reference field they fill, as `<ref field>_data` (an object for a
single reference, a list for a `_refs` list), at any depth of the body and of the inline objects
themselves. The type of each inline object is the type the schema gives that reference field.
"""

from __future__ import annotations

from typing import Any

from albus.sim.errors import ApiError
from albus.sim.objects import Objects
from albus.sim.schema import MODEL_TO_TYPE, TYPES, Enum, ListOf, Obj, Ref, Spec
from albus.sim.store import ADMIN_TENANT, Record

Json = Any

# never deleted through the macro API, even when no longer used (the guide lists these)
KEEP_TYPES = frozenset({"tenant", "cloud", "serviceenginegroup", "network", "vrfcontext", "ipamdnsproviderprofile"})


class Macro:
    def __init__(self, objects: Objects) -> None:
        self.o = objects

    def _target(self, body: Json) -> tuple[str, dict[str, Json]]:
        if not isinstance(body, dict) or set(body) - {"model_name", "data"}:
            raise ApiError(400, "Macro body must be {\"model_name\": ..., \"data\": {...}}")
        model = body.get("model_name")
        otype = MODEL_TO_TYPE.get(model) if isinstance(model, str) else None
        if otype is None and isinstance(model, str) and model.lower() in TYPES:
            otype = model.lower()
        if otype is None:
            raise ApiError(400, f"Invalid model_name: {model!r}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise ApiError(400, "Macro 'data' must be an object")
        return otype, data

    def run(self, body: Json, tenant: str, *, update: bool) -> list[Record]:
        otype, data = self._target(body)
        touched: list[Record] = []
        with self.o.store.transaction():
            self._apply(otype, data, tenant, update, touched, "data")
        # a record replaced later in the same call appears once, in its final version
        final: dict[str, Record] = {}
        for r in touched:
            cur = self.o.store.get(r.uuid)
            if cur is not None:
                final[r.uuid] = cur
        return list(final.values())

    def _apply(self, otype: str, data: dict[str, Json], tenant: str, update: bool, touched: list[Record],
               path: str) -> Record:
        ts = TYPES[otype]
        body = self._inline(ts.body, data, tenant, update, touched, path)
        existing: Record | None = None
        if update:
            if isinstance(data.get("uuid"), str):
                existing = self.o.store.get(data["uuid"])
                if existing is None or existing.type != otype or existing.tenant != tenant:
                    raise ApiError(404, f"{ts.model} object not found")
            elif isinstance(data.get("name"), str):
                for r in self.o.store.by_tenant_name(tenant, otype, data["name"]):
                    existing = r
                    break
        if existing is not None:
            if existing.system:
                raise ApiError(403, "Cannot modify system default object")
            rec = self.o.replace(existing, body)
        else:
            rec = self.o.create(otype, tenant, body)
        touched.append(rec)
        return rec

    def _inline(self, spec: Spec, value: Json, tenant: str, update: bool, touched: list[Record], path: str) -> Json:
        """A copy of `value` with every `<field>_data` replaced by a reference to the object it creates."""
        if isinstance(spec, Obj):
            if not isinstance(value, dict):
                return value
            out = {}
            for k, v in value.items():
                if k.endswith("_data") and k[:-5] in spec.fields:
                    continue
                sub = spec.fields.get(k)
                out[k] = v if sub is None or isinstance(sub, (str, Enum, Ref)) else self._inline(
                    sub, v, tenant, update, touched, f"{path}.{k}")
            for k, v in value.items():
                if not (k.endswith("_data") and k[:-5] in spec.fields):
                    continue
                field = k[:-5]
                ref = spec.fields[field]
                if not isinstance(ref, Ref):
                    raise ApiError(400, f"Unknown field '{path}.{k}'")
                if ref.type not in TYPES:
                    raise ApiError(400, f"{path}.{k}: inline objects of this type are not supported")
                if ref.many:
                    if not isinstance(v, list):
                        raise ApiError(400, f"{path}.{k} must be a list of objects")
                    made = [self._apply(ref.type, self._obj(x, f"{path}.{k}"), tenant, update, touched,
                                        f"{path}.{k}[{i}]") for i, x in enumerate(v)]
                    out[field] = [f"/api/{r.type}/{r.uuid}" for r in made]
                else:
                    r = self._apply(ref.type, self._obj(v, f"{path}.{k}"), tenant, update, touched, f"{path}.{k}")
                    out[field] = f"/api/{r.type}/{r.uuid}"
            return out
        if isinstance(spec, ListOf) and isinstance(value, list) and isinstance(spec.item, Obj):
            return [self._inline(spec.item, v, tenant, update, touched, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    @staticmethod
    def _obj(v: Json, path: str) -> dict[str, Json]:
        if not isinstance(v, dict):
            raise ApiError(400, f"{path} must be an object")
        return v

    # ---- delete ----------------------------------------------------------------------------
    def delete(self, body: Json, tenant: str) -> list[Record]:
        otype, data = self._target(body)
        top: Record | None = None
        if isinstance(data.get("uuid"), str):
            top = self.o.store.get(data["uuid"])
            if top is not None and (top.type != otype or top.tenant != tenant):
                top = None
        elif isinstance(data.get("name"), str):
            lst = self.o.store.by_tenant_name(tenant, otype, data["name"])
            top = lst[0] if lst else None
        else:
            raise ApiError(400, "Macro delete needs data.uuid or data.name")
        if top is None:
            raise ApiError(404, f"{TYPES[otype].model} object not found")
        # the hierarchy: everything reachable through references, minus shared infrastructure
        order: list[Record] = []
        seen = {top.uuid}
        queue = [top]
        while queue:
            r = queue.pop(0)
            order.append(r)
            for u in sorted(r.refs):
                child = self.o.store.get(u)
                if child is None or u in seen or child.system or child.type in KEEP_TYPES:
                    continue
                if child.tenant != tenant and child.tenant != ADMIN_TENANT:
                    continue
                seen.add(u)
                queue.append(child)
        deleted: list[Record] = []
        with self.o.store.transaction():
            self.o.delete(top)
            deleted.append(top)
            pending = order[1:]
            progress = True
            while pending and progress:
                progress = False
                for r in list(pending):
                    if self.o.store.referrers.get(r.uuid):
                        continue  # still used by something outside the hierarchy (or not yet freed)
                    self.o.delete(r)
                    deleted.append(r)
                    pending.remove(r)
                    progress = True
        return deleted
