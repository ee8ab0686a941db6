"""The syncer's view of one tenant's controller objects that belong to its cluster.

Loaded by bulk listing (``created_by=ako-<cluster>``, names included, pages
of 200) for every object type a tree uses, then kept current from the
replies to albus's own writes. A single object is re-read by name when the
controller says the cache is wrong about it (404/409/412) or after a
failed apply.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import msgpack

from services.common.avi_session import ControllerError
from services.syncer.avi_client import CallCounter, ControllerClient, error_text
from services.syncer.refs import is_ref_field, parse_ref

# Creation order of the types a tree holds; deletion runs the other way.
TYPE_ORDER: tuple[str, ...] = (
    "vsvip",
    "sslkeyandcertificate",
    "pool",
    "poolgroup",
    "httppolicyset",
    "l4policyset",
    "vsdatascriptset",
    "virtualservice",
)
_RANK = {t: i for i, t in enumerate(TYPE_ORDER)}

Key = tuple[str, str]  # (type, name)


def rank(obj_type: str) -> int:
    return _RANK.get(obj_type, len(TYPE_ORDER) // 2)


def deletion_order(keys: Iterable[Key]) -> list[Key]:
    """The virtualservice first, then what it used, children last."""
    return sorted(keys, key=lambda k: (-rank(k[0]), k[1]))


def owned_by(obj: dict[str, Any], cluster: str) -> bool:
    """The object carries this cluster's owner stamp and its ``clustername`` marker."""
    if obj.get("created_by") != f"ako-{cluster}":
        return False
    markers = obj.get("markers") or []
    return any(
        isinstance(m, dict) and m.get("key") == "clustername" and cluster in (m.get("values") or [])
        for m in markers
    )


def body_digest(body: Mapping[str, Any]) -> bytes:
    """A short digest of a desired body, to remember that it matched a cached object without keeping it."""
    return hashlib.blake2b(msgpack.packb(body, use_bin_type=True), digest_size=16).digest()


def pack(obj: dict[str, Any]) -> bytes:
    """A controller object as the cache holds it: msgpack, deflated.

    Deflating (zlib's fastest level) halves the packed objects (a pool
    1,527 → 808 bytes, a virtual service 1,955 → 938): ~35 MB of a syncer
    at 10,000 Services, for well under a millisecond per tree applied (an
    apply packs and unpacks only its own tree's objects).
    """
    return zlib.compress(msgpack.packb(obj, use_bin_type=True), 1)


def unpack(raw: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = msgpack.unpackb(zlib.decompress(raw), raw=False)
    return obj


class Facts(NamedTuple):
    """What an apply reads of a cached object besides its fields: read from it once, kept until it changes."""

    refs: tuple[Key, ...]  # the cached types it refers to
    vh_parent: bool  # a virtualservice of type VS_TYPE_VH_PARENT
    uuid: str | None


def _facts(obj: dict[str, Any]) -> Facts:
    uuid = obj.get("uuid")
    # Only the types a tree holds: the others (cloud, tenant, health monitor...) are never cached.
    refs = tuple(dict.fromkeys((sys.intern(t), n) for t, n in _refs_in(obj) if t in _RANK))
    return Facts(refs=refs, vh_parent=obj.get("type") == "VS_TYPE_VH_PARENT",
                 uuid=uuid if isinstance(uuid, str) else None)


def _vh_parent(key: Key, obj: dict[str, Any]) -> str | None:
    """The name of the VH parent an SNI child VS names, if it is one."""
    if key[0] != "virtualservice":
        return None
    ref = obj.get("vh_parent_vs_ref")
    parsed = parse_ref(ref) if isinstance(ref, str) else None
    return parsed.name if parsed is not None and parsed.name else None


class Listing:
    """A tenant's objects as listed from the controller, each packed as its page came."""

    def __init__(self) -> None:
        self.packed: dict[Key, bytes] = {}
        self.parents: dict[Key, str] = {}  # SNI child VS -> its VH parent's name

    def add(self, key: Key, obj: dict[str, Any]) -> None:
        self.packed[key] = pack(obj)
        parent = _vh_parent(key, obj)
        if parent is not None:
            self.parents[key] = parent

    def get(self, key: Key) -> dict[str, Any]:
        return unpack(self.packed[key])


class TenantObjects:
    """One tenant's objects of this cluster, each held packed (msgpack) and unpacked when read.

    As Python dicts the controller's objects for 10,000 Services took about
    250 MB of the syncer's memory; packed they take a fifth of that, and an
    apply reads only the few objects of its own tree. A read returns a fresh
    copy: changing it never changes the cache.

    Unpacking and walking the objects was most of an edit's CPU, so what an
    apply needs besides the fields (its references, its uuid) is read once
    per object (:meth:`facts`), and a desired body found equal to an object
    is remembered by digest (:meth:`matched`) until that object changes: the
    next tree's unchanged objects are not unpacked or compared again.
    """

    def __init__(self, tenant: str, objects: Mapping[Key, dict[str, Any]] | None = None,
                 loaded_at: float = 0.0) -> None:
        self.tenant = tenant
        self.loaded_at = loaded_at
        self._packed: dict[Key, bytes] = {}
        self._parent_of: dict[Key, str] = {}  # SNI child VS -> its VH parent's name
        self._children: dict[str, set[Key]] = {}  # VH parent's name -> its SNI children
        self._facts: dict[Key, Facts] = {}
        self._matched: dict[Key, bytes] = {}  # the digest of the desired body last found equal to the object
        self.replace(objects or {})

    def replace(self, objects: Mapping[Key, dict[str, Any]]) -> None:
        """In place: applies under way keep one live view of the tenant."""
        self._packed.clear()
        self._parent_of.clear()
        self._children.clear()
        self._facts.clear()
        self._matched.clear()
        for key, obj in objects.items():
            self.put(key, obj)

    def put(self, key: Key, obj: dict[str, Any]) -> None:
        self.pop(key)
        self._packed[key] = pack(obj)
        self._adopt_parent(key, _vh_parent(key, obj))

    def adopt(self, listing: Listing) -> None:
        """In place, as :meth:`replace`, from a listing already packed."""
        self.replace({})
        self._packed.update(listing.packed)
        for key, parent in listing.parents.items():
            self._adopt_parent(key, parent)

    def _adopt_parent(self, key: Key, parent: str | None) -> None:
        if parent is not None:
            self._parent_of[key] = parent
            self._children.setdefault(parent, set()).add(key)

    def pop(self, key: Key) -> None:
        self._packed.pop(key, None)
        self._facts.pop(key, None)
        self._matched.pop(key, None)
        parent = self._parent_of.pop(key, None)
        if parent is not None:
            kids = self._children.get(parent, set())
            kids.discard(key)
            if not kids:
                self._children.pop(parent, None)

    def has(self, obj_type: str, name: str) -> bool:
        return (obj_type, name) in self._packed

    def get(self, obj_type: str, name: str) -> dict[str, Any] | None:
        raw = self._packed.get((obj_type, name))
        if raw is None:
            return None
        return unpack(raw)

    def __len__(self) -> int:
        return len(self._packed)

    def facts(self, key: Key) -> Facts | None:
        """The object's references, kind and uuid (None: not cached), unpacked only the first time."""
        found = self._facts.get(key)
        if found is None:
            obj = self.get(*key)
            if obj is None:
                return None
            found = self._facts[key] = _facts(obj)
        return found

    def matched(self, key: Key, digest: bytes) -> bool:
        """Whether a desired body of this digest was found equal to the object as cached now."""
        return self._matched.get(key) == digest and key in self._packed

    def note_match(self, key: Key, digest: bytes) -> None:
        if key in self._packed:
            self._matched[key] = digest

    def referenced_from(self, root: Key) -> set[Key]:
        """Every cached object reachable from ``root`` through references (``root`` excluded)."""
        seen: set[Key] = set()
        todo = [root]
        while todo:
            facts = self.facts(todo.pop())
            if facts is None:
                continue
            for key in facts.refs:
                if key in self._packed and key not in seen and key != root:
                    seen.add(key)
                    todo.append(key)
        return seen

    def vh_children(self, parent: Key) -> set[Key]:
        """The SNI children of a VH parent VS and what they use: they refer to it, it never to them."""
        facts = self.facts(parent)
        if facts is None or not facts.vh_parent:
            return set()
        kids: set[Key] = set()
        for key in self._children.get(parent[1], set()):
            kids |= {key} | self.referenced_from(key)
        return kids

    def child_first(self, keys: list[Key]) -> list[Key]:
        """``keys`` in deletion order with VH children before every other VS (a parent in use cannot go)."""
        return [k for k in keys if k in self._parent_of] + [k for k in keys if k not in self._parent_of]


def _refs_in(value: Any, ref: bool = False) -> Iterable[Key]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _refs_in(v, is_ref_field(k))
    elif isinstance(value, list):
        for v in value:
            yield from _refs_in(v, ref)
    elif ref and isinstance(value, str):
        parsed = parse_ref(value)
        if parsed is not None and parsed.name:
            yield (parsed.type, parsed.name)


class ObjectCache:
    """Per-tenant caches of one cluster's controller objects."""

    def __init__(self, client: ControllerClient, cluster: str, types: tuple[str, ...] = TYPE_ORDER) -> None:
        self.client = client
        self.cluster = cluster
        self.types = types
        self._tenants: dict[str, TenantObjects] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def created_by(self) -> str:
        return f"ako-{self.cluster}"

    def tenants(self) -> list[str]:
        return sorted(self._tenants)

    async def list_owned(self, tenant: str, counter: CallCounter | None = None) -> Listing:
        """A fresh listing of the tenant's objects stamped with this cluster's ``created_by``.

        Packed page by page as the pages come: the tenant's objects decoded at
        once were part of a restarted syncer's peak of memory at 10,000
        Services (bench/README.md, "Memory and cold convergence at 10,000").
        """
        listing = Listing()
        params = {"created_by": self.created_by, "include_name": "true"}

        async def one_type(obj_type: str) -> None:
            async for page in self.client.list_pages(obj_type, tenant=tenant, params=params, counter=counter):
                for obj in page:
                    # Filter here too: a controller that ignores the query must not widen albus's view.
                    if obj.get("created_by") == self.created_by and isinstance(obj.get("name"), str):
                        listing.add((obj_type, obj["name"]), obj)

        await asyncio.gather(*(one_type(t) for t in self.types))
        return listing

    async def ensure(self, tenant: str, since: float = 0.0, counter: CallCounter | None = None) -> TenantObjects:
        """The tenant's cache, (re)loaded if never loaded or loaded before ``since`` (monotonic)."""
        lock = self._locks.setdefault(tenant, asyncio.Lock())
        async with lock:
            cur = self._tenants.get(tenant)
            if cur is not None and cur.loaded_at >= since and cur.loaded_at > 0:
                return cur
            stamp = time.monotonic()
            listing = await self.list_owned(tenant, counter)
            tc = self.tenant_objects(tenant)
            tc.adopt(listing)
            tc.loaded_at = stamp
            return tc

    def has(self, tenant: str, obj_type: str, name: str) -> bool:
        """Whether the object is cached (a tenant never loaded has none; nothing is loaded here)."""
        tc = self._tenants.get(tenant)
        return tc is not None and tc.has(obj_type, name)

    def tenant_objects(self, tenant: str) -> TenantObjects:
        return self._tenants.setdefault(tenant, TenantObjects(tenant=tenant))

    def store(self, tenant: str, obj_type: str, obj: dict[str, Any]) -> None:
        name = obj.get("name")
        if isinstance(name, str):
            self.tenant_objects(tenant).put((obj_type, name), obj)

    def drop(self, tenant: str, obj_type: str, name: str) -> None:
        tc = self._tenants.get(tenant)
        if tc is not None:
            tc.pop((obj_type, name))

    async def reread(
        self, tenant: str, obj_type: str, name: str, counter: CallCounter | None = None
    ) -> dict[str, Any] | None:
        """Read one object by name; cache it if it is this cluster's. Returns it whoever owns it."""
        reply = await self.client.call(
            "get", obj_type, tenant=tenant, params={"name": name, "include_name": "true"}, counter=counter
        )
        if not reply.ok or not isinstance(reply.body, dict):
            raise ControllerError(reply.status, f"read {obj_type} {name}: {error_text(reply.body, reply.text)}")
        results = [r for r in reply.body.get("results") or [] if isinstance(r, dict) and r.get("name") == name]
        if not results:
            self.drop(tenant, obj_type, name)
            return None
        obj = results[0]
        if obj.get("created_by") == self.created_by:
            self.store(tenant, obj_type, obj)
        else:
            self.drop(tenant, obj_type, name)
        return obj
