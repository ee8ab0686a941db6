"""Leader election on a ``coordination.k8s.io/v1`` Lease, the way client-go does it.

One watcher per cluster publishes; the others stand by. Timings are AKO's
(client-go's defaults): a lease lasts 15 s, the leader renews every 2 s and
gives up leading when it could not renew for 10 s, so it has stopped
publishing 5 s before a standby may take over.

A standby judges expiry by its *own* clock: it notes when it first saw the
current lease record and takes over only when that record has not changed for
a whole lease duration, so clock skew between nodes does not matter. Writes
carry the Lease's resourceVersion, so of two contenders only one wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import time
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from services.common.kube import micro_time, request_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseTiming:
    duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def lease_name(cluster: str) -> str:
    """``albus-watcher-<cluster>``, made a valid object name (a cluster name may hold ``_`` or capitals)."""
    safe = re.sub(r"[^a-z0-9-]", "-", cluster.lower()).strip("-") or "cluster"
    if safe != cluster:
        safe = f"{safe}-{zlib.crc32(cluster.encode()):08x}"
    return f"albus-watcher-{safe}"


def default_identity() -> str:
    """The pod name when running in a pod (unique per replica), else host and a random suffix."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class LeaderElector:
    def __init__(self, api: Any, namespace: str, name: str, identity: str, timing: LeaseTiming | None = None) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self._collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self._path = f"{self._collection}/{name}"
        self.identity = identity
        self.timing = timing or LeaseTiming()
        self.is_leader = False
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self.observed_holder = ""

    # -- one attempt (blocking; run in a thread) -----------------------------

    def try_acquire_or_renew(self) -> bool:
        now = micro_time()
        timeout = self.timing.retry_period * 2
        try:
            lease = request_json(self.api, "GET", self._path, timeout=timeout)
        except ApiException as exc:
            if exc.status != 404:
                raise
            spec0 = self._spec(now, now, 0)
            body = {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": spec0,
            }
            try:
                request_json(self.api, "POST", self._collection, body, timeout=timeout)
            except ApiException as exc2:
                if exc2.status == 409:  # someone else created it first
                    return False
                raise
            self._observe(spec0)
            return True

        spec = lease.get("spec") or {}
        self._observe(spec)
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity and not self._expired(spec):
            return False
        if holder == self.identity:
            new_spec = {**spec, "renewTime": now, "leaseDurationSeconds": int(self.timing.duration)}
        else:
            transitions = int(spec.get("leaseTransitions") or 0) + 1
            new_spec = self._spec(now, now, transitions)
        lease["spec"] = new_spec  # metadata keeps resourceVersion: a conflicting writer gets 409
        try:
            request_json(self.api, "PUT", self._path, lease, timeout=timeout)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        self._observe(new_spec)
        return True

    def release_now(self) -> None:
        """Hand the lease back (empty holder), so a standby takes over at its next retry."""
        lease = request_json(self.api, "GET", self._path)
        spec = lease.get("spec") or {}
        if spec.get("holderIdentity") != self.identity:
            return
        now = micro_time()
        lease["spec"] = {
            "holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": now, "renewTime": now,
            "leaseTransitions": int(spec.get("leaseTransitions") or 0),
        }
        request_json(self.api, "PUT", self._path, lease)

    def _spec(self, acquired: str, renewed: str, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.timing.duration),
            "acquireTime": acquired,
            "renewTime": renewed,
            "leaseTransitions": transitions,
        }

    def _observe(self, spec: dict[str, Any]) -> None:
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("acquireTime"),
                  spec.get("leaseTransitions"), spec.get("leaseDurationSeconds"))
        self.observed_holder = str(spec.get("holderIdentity") or "")
        if record != self._observed:
            self._observed = record
            self._observed_at = time.monotonic()

    def _expired(self, spec: dict[str, Any]) -> bool:
        duration = float(spec.get("leaseDurationSeconds") or self.timing.duration)
        return time.monotonic() > self._observed_at + duration

    # -- the loops (async) ---------------------------------------------------

    async def _attempt(self) -> bool:
        try:
            return await asyncio.to_thread(self.try_acquire_or_renew)
        except ApiException as exc:
            # e.g. 404 when the namespace does not exist, 403 when RBAC lacks a verb
            log.warning("lease %s/%s: API error %s %s: %s", self.namespace, self.name, exc.status, exc.reason,
                        _message(exc.body))
            return False
        except Exception as exc:
            log.warning("lease %s/%s: %s: %s", self.namespace, self.name, type(exc).__name__, exc)
            return False

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this process leads (True) or ``stop`` is set (False)."""
        announced = False
        while not stop.is_set():
            if await self._attempt():
                self.is_leader = True
                log.info("lease %s/%s: %s is the leader", self.namespace, self.name, self.identity)
                return True
            if not announced:
                log.info("lease %s/%s: %s is standing by", self.namespace, self.name, self.identity)
                announced = True
            await _wait(stop, self.timing.retry_period)
        return False

    async def hold(self, stop: asyncio.Event) -> None:
        """Renew until ``stop`` is set or renewing failed for ``renew_deadline`` (leadership lost)."""
        last_ok = time.monotonic()
        while not stop.is_set():
            await _wait(stop, self.timing.retry_period)
            if stop.is_set():
                return
            left = self.timing.renew_deadline - (time.monotonic() - last_ok)
            try:
                ok = await asyncio.wait_for(self._attempt(), timeout=max(0.1, left))
            except TimeoutError:
                ok = False
            if ok:
                last_ok = time.monotonic()
            elif self.observed_holder not in ("", self.identity):
                self.is_leader = False
                log.warning("lease %s/%s: taken over by %s; no longer leading",
                            self.namespace, self.name, self.observed_holder)
                return
            elif time.monotonic() - last_ok >= self.timing.renew_deadline:
                self.is_leader = False
                log.warning("lease %s/%s: could not renew for %.0fs; no longer leading",
                            self.namespace, self.name, self.timing.renew_deadline)
                return

    async def release(self) -> None:
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            await asyncio.to_thread(self.release_now)
            log.info("lease %s/%s: released by %s", self.namespace, self.name, self.identity)
        except Exception as exc:
            log.warning("lease %s/%s: release failed: %s", self.namespace, self.name, exc)


def _message(body: Any) -> str:
    """The ``message`` of a Kubernetes Status body, else the body itself (short)."""
    try:
        return str(json.loads(body).get("message", body))
    except (TypeError, ValueError, AttributeError):
        return str(body)[:200]


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
