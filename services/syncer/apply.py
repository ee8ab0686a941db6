"""Applying one VS tree: read, diff the owned fields, write only the difference.

* A tree none of whose objects exist goes as one ``POST /api/macro``; a
  controller without the macro API (404/405/501) gets per-object creates in
  dependency order, and the applier remembers not to try again.
* Existing objects are compared field by field (owned fields only) and PUT
  only when different, as the cached object with the owned fields replaced.
* Objects the VS used before but the tree no longer holds are deleted after
  the VS update, children last. A deleted tree deletes the VS first.
* A failure aborts the rest of the tree, deletes what this attempt created
  (it was never in use), and becomes an ``ApplyOutcome`` with ``ok=False``.
  Nothing that was working is deleted because of an error.
* Before every delete the object's owner stamp and marker must be this
  cluster's; before every write batch the caller's fence must hold.
* An object's write-only and sealed fields (a certificate and its private
  key) are never compared: its body's fingerprint marker is. They are added,
  sealed ones opened with the cluster's sealing key, only to a body being
  sent; an object that matches is not written, so its key is not even opened.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from services.common.avi_session import ControllerError, Reply
from services.common.contracts import ApplyOutcome, AviObject, VsTree
from services.common.sealing import Keyring, SealError
from services.syncer.avi_client import CallCounter, ControllerClient, error_text
from services.syncer.cache import Key, ObjectCache, TenantObjects, body_digest, deletion_order, owned_by
from services.syncer.deletions import Deletions
from services.syncer.diff import differing_fields, merge_owned, owned_equal
from services.syncer.lanes import LaneGate
from services.syncer.macro import MacroError, macro_body
from services.syncer.refs import parse_ref

log = logging.getLogger(__name__)

Fence = Callable[[], Awaitable[None]]
MACRO_UNSUPPORTED = frozenset({404, 405, 501})
# Fields the controller derives from write-only input: an update that sends new input leaves
# them out, so the controller's copy from the old key cannot contradict the new one.
DERIVED_FROM_WRITE_ONLY = {"sslkeyandcertificate": ("key_params",)}


async def _no_fence() -> None:
    return None


class ApplyFailed(Exception):
    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _fail(what: str, reply: Reply) -> ApplyFailed:
    return ApplyFailed(reply.status, f"{what}: {error_text(reply.body, reply.text)}")


class _Turn:
    """One tree's place among the trees writing at once: taken at its first write, kept to its outcome."""

    def __init__(self, writing: LaneGate) -> None:
        self.writing = writing
        self.lane: bool | None = None  # the lane it was taken in, while held

    async def take(self) -> None:
        if self.lane is None:
            self.lane = await self.writing.acquire()

    def give_back(self) -> None:
        if self.lane is not None:
            lane, self.lane = self.lane, None
            self.writing.release(lane)


@dataclass
class _Run:
    """One attempt at one tree."""

    tree: VsTree
    tc: TenantObjects
    counter: CallCounter
    fence: Fence
    created: list[Key]
    turn: _Turn
    fenced: bool = False

    async def before_write(self) -> None:
        if not self.fenced:
            await self.turn.take()
            await self.fence()
            self.fenced = True

    async def before_delete(self) -> None:
        await self.turn.take()
        await self.fence()


def _uuid(obj: dict[str, Any] | None) -> str | None:
    if not obj:
        return None
    uuid = obj.get("uuid")
    return uuid if isinstance(uuid, str) else None


def vips_of(vsvip: dict[str, Any] | None) -> tuple[str, ...]:
    """The v4 and v6 addresses of a vsvip, in vip order."""
    out: list[str] = []
    for vip in (vsvip or {}).get("vip") or []:
        if not isinstance(vip, dict):
            continue
        for field in ("ip_address", "ip6_address"):
            addr = (vip.get(field) or {}).get("addr") if isinstance(vip.get(field), dict) else None
            if isinstance(addr, str) and addr and addr not in out:
                out.append(addr)
    return tuple(out)


class TreeApplier:
    def __init__(self, client: ControllerClient, cache: ObjectCache, keyring: Keyring | None = None,
                 *, max_in_progress: int | None = None) -> None:
        self.client = client
        self.cache = cache
        self.cluster = cache.cluster
        self.keyring = keyring or Keyring(cluster=cache.cluster)
        self.macro_supported: bool | None = None
        # The cache must have been listed after this moment (monotonic) to be
        # trusted: raised when a partition is taken and at every resync.
        self.fresh_since = 0.0
        # The objects of the last tree applied per (tenant, vs): candidates for clean-up
        # when the next tree drops them (the controller walk covers restarts). Keys, not
        # the tree: the partition holds the tree, and 10,000 copies cost memory.
        self._previous: dict[tuple[str, str], frozenset[Key]] = {}
        # Trees whose last attempt failed: their objects are re-read before the next.
        self._suspect: set[tuple[str, str]] = set()
        self.deletions = Deletions()  # one DELETE per object, whether a tree or GC asks
        # Trees that have begun writing and not yet finished: enough that every call slot always
        # has a tree ready for it. A backlog of hundreds let through at once would only queue for
        # a call slot, each with a fence check that ages while it waits, and crowd the event loop
        # that renews the partition leases until renewals are late and the fence refuses every
        # tree. A tree with nothing to write never waits for a turn.
        # Edits to existing VSes go ahead of creations at both gates, up to half of them (lanes.py).
        writers = max_in_progress or max(32, 4 * client.concurrency)
        self._writing = LaneGate(writers)
        # Trees being applied at all (the partition workers take it around decode and apply): twice
        # the writers, so the writers never wait for a tree while one with nothing to write passes.
        self.admission = LaneGate(2 * writers)

    def is_edit(self, tenant: str, vs_name: str) -> bool:
        """The VS stands on the controller (cached, or applied by this process): its trees take the edit lane."""
        return (tenant, vs_name) in self._previous or self.cache.has(tenant, "virtualservice", vs_name)

    async def apply(self, tree: VsTree, fence: Fence = _no_fence) -> ApplyOutcome:
        turn = _Turn(self._writing)
        try:
            return await self._apply(tree, fence, turn)
        finally:
            turn.give_back()

    async def _apply(self, tree: VsTree, fence: Fence, turn: _Turn) -> ApplyOutcome:
        counter = CallCounter()
        key = (tree.tenant, tree.vs_name)
        try:
            if tree.cluster != self.cluster:
                raise ApplyFailed(None, f"tree of cluster {tree.cluster} given to the syncer of {self.cluster}")
            tc = await self.cache.ensure(tree.tenant, since=self.fresh_since, counter=counter)
            run = _Run(tree=tree, tc=tc, counter=counter, fence=fence, created=[], turn=turn)
            if key in self._suspect:
                await self._reread(run)
            if tree.deleted:
                await self._delete_tree(run)
            else:
                await self._apply_tree(run)
        except ApplyFailed as exc:
            self._suspect.add(key)
            log.warning("tree %s/%s: %s", tree.tenant, tree.vs_name, exc.message)
            return self._outcome(tree, counter, ok=False, error=exc.message, status=exc.status)
        except ControllerError as exc:
            self._suspect.add(key)
            log.warning("tree %s/%s: %s", tree.tenant, tree.vs_name, exc)
            return self._outcome(tree, counter, ok=False, error=str(exc), status=exc.status)
        self._suspect.discard(key)
        if tree.deleted:
            self._previous.pop(key, None)
        else:
            self._previous[key] = frozenset((o.type, o.name) for o in tree.objects)
        return self._outcome(tree, counter, ok=True)

    # -- reading -----------------------------------------------------------

    async def _reread(self, run: _Run) -> None:
        keys = {(o.type, o.name) for o in run.tree.objects} | {("virtualservice", run.tree.vs_name)}
        for obj_type, name in sorted(keys):
            await self.cache.reread(run.tree.tenant, obj_type, name, run.counter)

    def _old_objects(self, run: _Run) -> set[Key]:
        """What the VS uses on the controller now, plus what the last tree held."""
        vs_key = ("virtualservice", run.tree.vs_name)
        old = run.tc.referenced_from(vs_key) | run.tc.vh_children(vs_key)
        if run.tc.has(*vs_key):
            old.add(vs_key)
        prev = self._previous.get((run.tree.tenant, run.tree.vs_name), frozenset())
        old |= {key for key in prev if run.tc.has(*key)}
        return old

    # -- writing -----------------------------------------------------------

    async def _apply_tree(self, run: _Run) -> None:
        tree = run.tree
        old = self._old_objects(run)
        exists = [run.tc.has(o.type, o.name) for o in tree.objects]
        try:
            if not any(exists) and self.macro_supported is not False and await self._macro(run):
                pass
            else:
                for obj in tree.objects:
                    await self._ensure_object(run, obj)
            stale = old - {(o.type, o.name) for o in tree.objects}
            if stale:
                await self._delete(run, run.tc.child_first(deletion_order(stale)), strict=False)
        except (ApplyFailed, ControllerError):
            await self._rollback(run)
            raise

    def _sent(self, obj: AviObject, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with ``obj``'s write-only fields and its sealed ones opened: only ever handed to the controller."""
        if not obj.write_only and not obj.sealed:
            return body
        out = {k: v for k, v in body.items() if k not in DERIVED_FROM_WRITE_ONLY.get(obj.type, ())}
        out.update(obj.write_only)
        for field_name, sealed in obj.sealed.items():
            try:
                out[field_name] = self.keyring.open(sealed).decode()
            except SealError as exc:
                raise ApplyFailed(None, f"{obj.type} {obj.name}: cannot open its sealed {field_name}: {exc}") from None
        return out

    def _sent_new(self, obj: AviObject) -> dict[str, Any]:
        body = dict(obj.body)
        body.setdefault("name", obj.name)
        return self._sent(obj, body)

    async def _macro(self, run: _Run) -> bool:
        """True when the macro call created the tree; False to fall back to per-object creates."""
        # The fence first: a partition this replica no longer holds costs no body.
        await run.before_write()
        try:
            body = macro_body(run.tree, self._sent_new)
        except MacroError as exc:
            log.info("tree %s: no macro (%s)", run.tree.vs_name, exc)
            return False
        reply = await self.client.call("post", "macro", tenant=run.tree.tenant, data=body, counter=run.counter)
        if reply.status in MACRO_UNSUPPORTED and self.macro_supported is not True:
            log.info("controller has no macro API (%s); creating object by object", reply.status)
            self.macro_supported = False
            return False
        if reply.status == 409:
            # Something of the tree exists after all (made by another writer): look, then go per object.
            for obj in run.tree.objects:
                await self.cache.reread(run.tree.tenant, obj.type, obj.name, run.counter)
            return False
        if not reply.ok:
            raise _fail(f"create {run.tree.vs_name} (macro)", reply)
        self.macro_supported = True
        self._absorb_macro_reply(run, reply.body)
        for obj in run.tree.objects:
            if not run.tc.has(obj.type, obj.name):
                await self.cache.reread(run.tree.tenant, obj.type, obj.name, run.counter)
        return True

    def _absorb_macro_reply(self, run: _Run, body: Any) -> None:
        wanted = {(o.type, o.name) for o in run.tree.objects}
        items = body if isinstance(body, list) else [body]
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                continue
            ref = parse_ref(item["url"])
            if ref is not None and (ref.type, item.get("name")) in wanted:
                self.cache.store(run.tree.tenant, ref.type, item)

    async def _ensure_object(self, run: _Run, obj: AviObject, attempt: int = 0) -> None:
        tenant = run.tree.tenant
        key = (obj.type, obj.name)
        digest = body_digest(obj.body)
        if run.tc.matched(key, digest):
            return None  # this body was compared with the object as cached now: still equal
        cached = run.tc.get(obj.type, obj.name)
        body = dict(obj.body)
        body.setdefault("name", obj.name)
        if cached is None:
            sent = self._sent(obj, body)
            await run.before_write()
            reply = await self.client.call("post", obj.type, tenant=tenant, data=sent, counter=run.counter)
            if reply.status == 409 and attempt == 0:
                found = await self.cache.reread(tenant, obj.type, obj.name, run.counter)
                if found is not None and not owned_by(found, self.cluster):
                    raise ApplyFailed(409, f"{obj.type} {obj.name} exists and is not owned by cluster {self.cluster}")
                return await self._ensure_object(run, obj, attempt + 1)
            if not reply.ok:
                raise _fail(f"create {obj.type} {obj.name}", reply)
            run.created.append((obj.type, obj.name))
            if isinstance(reply.body, dict):
                self.cache.store(tenant, obj.type, reply.body)
            else:
                await self.cache.reread(tenant, obj.type, obj.name, run.counter)
            return None
        if owned_equal(body, cached):
            run.tc.note_match(key, digest)
            return None
        if not owned_by(cached, self.cluster):
            raise ApplyFailed(None, f"{obj.type} {obj.name} is not marked as cluster {self.cluster}'s; not updating")
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s differs in %s", obj.type, obj.name, differing_fields(body, cached))
        uuid = _uuid(cached)
        sent = self._sent(obj, merge_owned(cached, body, fresh=True))  # ``cached`` is this call's own copy
        await run.before_write()
        reply = await self.client.call("put", f"{obj.type}/{uuid}", tenant=tenant, data=sent, counter=run.counter)
        if reply.status in (404, 409, 412) and attempt == 0:
            # The cache was wrong about this object: read it again and redo.
            await self.cache.reread(tenant, obj.type, obj.name, run.counter)
            return await self._ensure_object(run, obj, attempt + 1)
        if not reply.ok:
            raise _fail(f"update {obj.type} {obj.name}", reply)
        if isinstance(reply.body, dict):
            self.cache.store(tenant, obj.type, reply.body)
        return None

    async def _delete_tree(self, run: _Run) -> None:
        targets = self._old_objects(run)
        if targets:
            await self._delete(run, run.tc.child_first(deletion_order(targets)), strict=True)

    async def delete_owned(self, tenant: str, key: Key, counter: CallCounter, fence: Fence,
                           listed: dict[str, Any] | None = None) -> bool:
        """Delete one object if it is this cluster's: as the cache knows it, or as ``listed`` (GC's listing).

        404 counts as done. Whether a DELETE was answered so; False when another asker's DELETE of the
        same object was under way (this one waited for its answer) or there was nothing to delete.
        """

        async def delete() -> bool:
            obj = listed if listed is not None else self.cache.tenant_objects(tenant).get(*key)
            if obj is None:
                return False
            if not owned_by(obj, self.cluster):
                raise ApplyFailed(None, f"refusing to delete {key[0]} {key[1]}: not marked as cluster {self.cluster}'s")
            await fence()
            reply = await self.client.call("delete", f"{key[0]}/{_uuid(obj)}", tenant=tenant, counter=counter)
            if reply.ok or reply.status == 404:
                # Only if the cache still holds that object: a tree's worker may have made it anew
                # since GC listed it (then the 404 was for the old uuid).
                cached = self.cache.tenant_objects(tenant).facts(key)
                if cached is not None and cached.uuid == _uuid(obj):
                    self.cache.drop(tenant, *key)
                return True
            raise _fail(f"delete {key[0]} {key[1]}", reply)

        return await self.deletions.once((tenant, key), delete)

    async def _delete(self, run: _Run, keys: list[Key], *, strict: bool) -> None:
        """Delete in the given order; unless ``strict``, a refusal is logged and left to GC."""
        for key in keys:
            try:
                await self.delete_owned(run.tree.tenant, key, run.counter, run.before_delete)
            except ApplyFailed as exc:
                if strict:
                    raise
                log.warning("tree %s: leaving %s %s for later: %s", run.tree.vs_name, *key, exc.message)

    async def _rollback(self, run: _Run) -> None:
        """Remove what this attempt created: nothing uses it yet."""
        for key in deletion_order(run.created):
            try:
                await self.delete_owned(run.tree.tenant, key, run.counter, run.before_delete)
            except (ApplyFailed, ControllerError) as exc:
                log.warning("tree %s: could not roll back %s %s: %s", run.tree.vs_name, *key, exc)

    # -- reporting ---------------------------------------------------------

    def _outcome(
        self, tree: VsTree, counter: CallCounter, *, ok: bool, error: str | None = None, status: int | None = None
    ) -> ApplyOutcome:
        tc = self.cache.tenant_objects(tree.tenant)
        uuids: dict[str, str] = {}
        vips: tuple[str, ...] = ()
        if not tree.deleted:
            for obj in tree.objects:
                facts = tc.facts((obj.type, obj.name))
                if facts is not None and facts.uuid:
                    uuids[f"{obj.type}/{obj.name}"] = facts.uuid
                if obj.type == "vsvip":
                    vips += tuple(v for v in vips_of(tc.get(obj.type, obj.name)) if v not in vips)
        return ApplyOutcome(
            cluster=tree.cluster,
            tenant=tree.tenant,
            vs_name=tree.vs_name,
            checksum=tree.checksum,
            ok=ok,
            deleted=tree.deleted,
            error=error,
            error_status=status,
            # On failure these are what still stands (an update that failed
            # leaves the old VIP serving); a failed create left nothing.
            vips=vips,
            uuids=uuids,
            sources=tree.sources,
            writes=counter.writes,
        )
