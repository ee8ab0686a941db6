"""Who works on which partition: membership, rendezvous assignment, leases in NATS KV.

* Every replica heartbeats a key ``<cluster>.<replica>`` in a members bucket
  whose entries expire (bucket TTL) when the replica stops.
* Each replica computes the same assignment from the live members:
  rendezvous hashing, so a join or leave moves only the partitions that must
  move.
* A partition is worked on only under a lease: key ``<cluster>.<partition>``
  in a leases bucket, *created* only when absent (compare-and-set), renewed
  with ``update(last=revision)``, deleted on release, expiring by the bucket
  TTL when its holder stops renewing.
* Fencing: the lease value carries a token unique to this claim; before a
  write batch the holder checks the stored value is still its token and
  that its last renewal is recent enough that the lease cannot have expired.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import (
    BucketNotFoundError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoKeysError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from services.common import subjects
from services.common.bus import Bus

log = logging.getLogger(__name__)

MEMBERS_BUCKET = "albus_syncer_members"
LEASES_BUCKET = "albus_syncer_leases"


class LeaseLost(Exception):
    """This replica no longer holds the partition; it must not write for it."""


def owner_of(part: int, members: Iterable[str]) -> str | None:
    """Rendezvous hashing: the member with the highest score for this partition."""
    best: tuple[int, str] | None = None
    for m in members:
        score = int.from_bytes(hashlib.blake2b(f"{m}/{part}".encode(), digest_size=8).digest(), "big")
        if best is None or (score, m) > best:
            best = (score, m)
    return best[1] if best else None


def assigned(me: str, members: Iterable[str], parts: int = subjects.PARTITIONS) -> set[int]:
    live = sorted(set(members) | {me})
    return {p for p in range(parts) if owner_of(p, live) == me}


@dataclass
class Lease:
    part: int
    token: str
    revision: int
    renewed_at: float  # monotonic


async def open_bucket(bus: Bus, name: str, ttl: float) -> KeyValue:
    try:
        kv = await bus.js.key_value(name)
    except BucketNotFoundError:
        try:
            kv = await bus.js.create_key_value(
                KeyValueConfig(bucket=name, ttl=ttl, history=1, storage=StorageType.FILE, replicas=bus.replicas)
            )
        except Exception:
            kv = await bus.js.key_value(name)  # created by another replica meanwhile
        await _until_led(bus, f"KV_{name}")
        return kv
    await _at_least_replicas(bus, f"KV_{name}")
    return kv


async def _until_led(bus: Bus, stream: str, timeout: float = 10.0) -> None:
    """Until a new bucket's stream has a leader in a NATS cluster: the first write to it before then
    finds no responder (seen in CI). A single server answers at once; past the deadline, go on anyway."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = await bus.js.stream_info(stream)
        if info.cluster is None or info.cluster.leader:
            return
        await asyncio.sleep(0.05)


async def _at_least_replicas(bus: Bus, stream: str) -> None:
    """Add copies to a bucket made with fewer (``albus.natsReplicas`` raised); JetStream adds them in place.

    Never fewer: one replica with a stale setting must not take durability away.
    """
    info = await bus.js.stream_info(stream)
    if (info.config.num_replicas or 1) < bus.replicas:
        log.info("bucket stream %s: %d → %d replicas", stream, info.config.num_replicas or 1, bus.replicas)
        info.config.num_replicas = bus.replicas
        await bus.js.update_stream(info.config)


class LeaseBook:
    """This replica's membership and partition leases for one cluster."""

    def __init__(self, bus: Bus, cluster: str, replica_id: str, *, member_ttl: float = 10.0,
                 lease_ttl: float = 15.0, bucket_suffix: str = "") -> None:
        self.bus = bus
        self.cluster = cluster
        self.replica_id = replica_id
        self.member_ttl = member_ttl
        self.lease_ttl = lease_ttl
        self.held: dict[int, Lease] = {}
        # When this replica's membership was last written (monotonic; 0: not a member), for readiness.
        self.member_written_at = 0.0
        self._members: KeyValue | None = None
        self._leases: KeyValue | None = None
        # Tests run replicas with short TTLs in buckets of their own (a bucket's TTL is fixed).
        self.bucket_suffix = bucket_suffix
        # Set (and replaced) after every round of renewals: what a fenced worker waits for.
        self._renewed = asyncio.Event()

    def _member_key(self) -> str:
        return f"{self.cluster}.{self.replica_id}"

    def _lease_key(self, part: int) -> str:
        return f"{self.cluster}.{part}"

    async def open(self) -> None:
        # Bucket TTLs are fixed at creation; the first replica sets them.
        self._members = await open_bucket(self.bus, MEMBERS_BUCKET + self.bucket_suffix, self.member_ttl)
        self._leases = await open_bucket(self.bus, LEASES_BUCKET + self.bucket_suffix, self.lease_ttl)

    @property
    def members_kv(self) -> KeyValue:
        assert self._members is not None, "open() first"
        return self._members

    @property
    def leases_kv(self) -> KeyValue:
        assert self._leases is not None, "open() first"
        return self._leases

    async def heartbeat(self) -> None:
        await self.members_kv.put(self._member_key(), self.replica_id.encode())
        self.member_written_at = time.monotonic()

    def is_member(self) -> bool:
        """Whether this replica's membership entry was written recently enough not to have expired."""
        return bool(self.member_written_at) and time.monotonic() - self.member_written_at < self.member_ttl

    async def report(self, status: dict[str, object]) -> None:
        """Publish this replica's status as its membership value (readable with ``members_status``)."""
        await self.members_kv.put(self._member_key(), json.dumps(status, sort_keys=True).encode())
        self.member_written_at = time.monotonic()

    async def leave(self) -> None:
        self.member_written_at = 0.0
        try:
            await self.members_kv.delete(self._member_key())
        except Exception as exc:
            log.debug("leave: %s", exc)

    async def members(self) -> set[str]:
        try:
            keys = await self.members_kv.keys()
        except NoKeysError:
            return set()
        prefix = f"{self.cluster}."
        return {k[len(prefix):] for k in keys if k.startswith(prefix)}

    async def claim(self, part: int) -> Lease | None:
        token = f"{self.replica_id}/{uuid.uuid4().hex[:12]}"
        now = time.monotonic()
        rev: int | None = None
        key = self._lease_key(part)
        for _ in range(2):
            try:
                rev = await self.leases_kv.create(key, token.encode())
                break
            except KeyWrongLastSequenceError:
                rev = await self._take_over_previous_life(part, token)
                if rev is None:
                    return None  # held by another replica
                break
            except NotFoundError:
                continue  # it expired between the client's two steps: try once more
        if rev is None:
            return None
        lease = Lease(part=part, token=token, revision=rev, renewed_at=now)
        self.held[part] = lease
        return lease

    async def _take_over_previous_life(self, part: int, token: str) -> int | None:
        """Take the lease of a previous life of this replica, now dead, without waiting for it to expire.

        A replica id is one live process at a time (a pod's name survives its
        container's restart), so a lease stamped with our id that this life
        did not claim was left by a crash. Compare-and-set on its revision:
        if anyone touched it meanwhile, we do not get it.
        """
        if part in self.held:
            return None
        try:
            entry = await self.leases_kv.get(self._lease_key(part))
        except (KeyNotFoundError, KeyDeletedError):
            return None
        holder = (entry.value or b"").decode().split("/", 1)[0]
        if holder != self.replica_id or entry.revision is None:
            return None
        try:
            rev = await self.leases_kv.update(self._lease_key(part), token.encode(), last=entry.revision)
        except KeyWrongLastSequenceError:
            return None
        log.info("partition %d: lease of a previous life of %s taken over", part, self.replica_id)
        return rev

    async def renew(self, part: int) -> bool:
        lease = self.held.get(part)
        if lease is None:
            return False
        now = time.monotonic()
        try:
            rev = await self.leases_kv.update(self._lease_key(part), lease.token.encode(), last=lease.revision)
        except Exception as exc:
            log.warning("lease %d lost: %s", part, exc)
            # Released or claimed afresh meanwhile (renewals run beside the rebalancing): keep the new claim.
            if self.held.get(part) is lease:
                del self.held[part]
            return False
        lease.revision = rev
        lease.renewed_at = now
        return True

    async def renew_all(self) -> None:
        """Renew every held lease at once; a lost one leaves ``held`` (its worker is dropped by the replica).

        All at once: one after the other, 64 renewals on a busy loop took longer than the lease lasts.
        """
        held = sorted(self.held)
        await asyncio.gather(*(self.renew(p) for p in held))
        renewed, self._renewed = self._renewed, asyncio.Event()
        renewed.set()

    def next_renewal(self) -> asyncio.Event:
        """Set when the next round of renewals is over: a fence refused for an overdue renewal may pass then."""
        return self._renewed

    async def release(self, part: int) -> None:
        lease = self.held.pop(part, None)
        if lease is None:
            return
        try:
            await self.leases_kv.delete(self._lease_key(part), last=lease.revision)
        except Exception as exc:  # already expired or taken: nothing to give back
            log.debug("release %d: %s", part, exc)

    async def check(self, part: int) -> None:
        """Raise LeaseLost unless this replica still holds ``part`` (the fence before writes)."""
        lease = self.held.get(part)
        if lease is None:
            raise LeaseLost(f"partition {part} not held")
        # Leave a margin: a lease about to expire may be claimed by another replica.
        if time.monotonic() - lease.renewed_at > self.lease_ttl * 0.6:
            raise LeaseLost(f"partition {part}: renewal overdue")
        try:
            entry = await self.leases_kv.get(self._lease_key(part))
        except (KeyNotFoundError, KeyDeletedError):
            self.held.pop(part, None)
            raise LeaseLost(f"partition {part}: lease gone") from None
        except NatsTimeoutError:
            # Unverified, so refused; still held as far as we know: the VS waits for the next
            # renewal (an unexpected error would back off up to retry_max with no outcome).
            raise LeaseLost(f"partition {part}: lease not read in time") from None
        if (entry.value or b"").decode() != lease.token:
            self.held.pop(part, None)
            raise LeaseLost(f"partition {part}: held by another replica")
