"""AviInfraSetting status: ``Accepted`` or ``Rejected`` with the reason, checked against the controller.

Level-based, like the Service status loop: it follows the watcher's
AviInfraSetting snapshots on the bus (``k8s.<cluster>.AviInfraSetting.>``),
validates every setting whose spec it has not judged yet, again every
``recheck_seconds`` those not accepted (an SE group or network created later
turns a rejection into an acceptance), and every ``full_seconds`` (AKO's
``fullSyncFrequency``) all of them; it writes ``status`` only where it differs. The
translator uses a setting only once it says ``Accepted``. A controller that
cannot be read leaves the status as it is: validation waits, it never
rejects on a failed read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from services.common import subjects
from services.common.bus import Bus, Delivery, Follower
from services.common.contracts import KubeObject, decode
from services.common.kube import request_json
from services.health.avi_reader import AviReader, CachedLookup, ControllerReadError
from services.health.infra_check import ACCEPTED, Verdict, check
from services.health.kube_writes import ServiceWriter
from services.health.service_status import EventSpec

log = logging.getLogger(__name__)

KIND = "AviInfraSetting"
API = "/apis/ako.vmware.com/v1beta1/aviinfrasettings"
API_VERSION = "ako.vmware.com/v1beta1"


def status_patch(current: dict[str, Any] | None, verdict: Verdict) -> dict[str, Any] | None:
    """The merge patch that makes ``status`` say ``verdict``; None when it already does."""
    have = current or {}
    if have.get("status") == verdict.status and (have.get("error") or "") == verdict.error:
        return None
    return {"status": verdict.as_status()}


def event_for(verdict: Verdict) -> EventSpec:
    if verdict.status == ACCEPTED:
        return EventSpec("Normal", "Accepted", "Validate", "validated against the controller")
    return EventSpec("Warning", "Rejected", "Validate", verdict.error)


@dataclass
class InfraStatusWriter:
    api: Any
    bus: Bus
    cluster: str
    reader: AviReader
    writer: ServiceWriter
    vrf_name: str
    recheck_seconds: float = 30.0  # not (yet) accepted ones: the missing object may appear
    full_seconds: float = 1800.0  # accepted ones too: the controller may have changed
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> object as last seen
    status_writes: int = 0
    _dirty: set[str] = field(default_factory=set)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _follower: Follower | None = None

    @property
    def replayed(self) -> bool:
        """The settings on the bus have all been read (this run)."""
        return self._follower is not None and self._follower.caught_up.is_set()

    async def _on_object(self, d: Delivery) -> None:
        if subjects.parse_k8s(d.subject).name is None:
            return  # the kind's synced marker
        ko = decode(d.data, KubeObject)
        if ko.deleted or ko.obj is None:
            self.settings.pop(ko.name, None)
            return
        before = self.settings.get(ko.name)
        self.settings[ko.name] = ko.obj
        # Our own status write comes back as a new snapshot: only a spec
        # change (or a status someone else changed) needs a new look.
        if before is None or before.get("spec") != ko.obj.get("spec") or before.get("status") != ko.obj.get("status"):
            self._dirty.add(ko.name)
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        filt = f"k8s.{subjects.esc(self.cluster)}.{KIND}.>"
        follower = self._follower = await self.bus.follow(filt, self._on_object, name="infrasettings")
        next_recheck = time.monotonic() + self.recheck_seconds
        next_full = time.monotonic() + self.full_seconds
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_full:
                    self._dirty |= set(self.settings)
                    next_full = now + self.full_seconds
                if now >= next_recheck:
                    self._dirty |= {n for n, o in self.settings.items()
                                    if (o.get("status") or {}).get("status") != ACCEPTED}
                    next_recheck = now + self.recheck_seconds
                if self._dirty:
                    await self.validate(sorted(self._dirty))
                self._wake.clear()
                waits = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
                await asyncio.wait(waits, timeout=max(0.0, min(next_full, next_recheck) - time.monotonic()),
                                   return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
        finally:
            self._follower = None
            await follower.stop()

    async def validate(self, names: list[str]) -> None:
        lookup = CachedLookup(self.reader)
        for name in names:
            obj = self.settings.get(name)
            self._dirty.discard(name)
            if obj is None:
                continue
            try:
                verdict = await asyncio.to_thread(check, obj.get("spec") or {}, lookup, self.vrf_name)
            except ControllerReadError as exc:
                log.warning("AviInfraSetting %s: controller not readable (%s); keeping its status", name, exc)
                continue
            await self._write(name, obj, verdict)

    async def _write(self, name: str, obj: dict[str, Any], verdict: Verdict) -> None:
        patch = status_patch(obj.get("status"), verdict)
        if patch is None:
            return
        try:
            fresh = await asyncio.to_thread(request_json, self.api, "PATCH", f"{API}/{name}/status", patch,
                                            content_type="application/merge-patch+json")
        except ApiException as exc:
            if exc.status == 404:
                return  # deleted meanwhile
            log.warning("AviInfraSetting %s: status not written (%s); retrying at the next pass", name, exc.status)
            return
        self.status_writes += 1
        self.settings[name] = fresh
        log.info("AviInfraSetting %s: %s %s", name, verdict.status, verdict.error)
        try:
            await asyncio.to_thread(self.writer.event, fresh, event_for(verdict), api_version=API_VERSION, kind=KIND)
        except Exception as exc:
            log.warning("AviInfraSetting %s: event not recorded: %s", name, exc)
