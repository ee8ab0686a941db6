"""Health's loop: follow trees, outcomes and reports, bring each touched Service's status in line.

Level-based. It replays the cluster's trees, outcomes and reports (last per
subject; trees first, so no tree read is newer than the outcomes read after
it) and lists the Services before it writes anything, so it acts on the whole
current view, never on a half-replayed one; then every message marks the
Services it concerns dirty and each dirty Service is compared with what it
should say and patched only where it differs. Services are read from a
list-and-watch cache, not with a GET each (docs/health.md, "Reading Services
from a watch"); a change to one on the watch marks it dirty too, so a status
someone else overwrote is put right. A failed write is retried with back-off;
a conflict (the Service changed under us) is retried at once against the
object read afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Container
from typing import Any, ClassVar

from kubernetes.client.exceptions import ApiException
from opentelemetry.trace import Span

from services.common import service_ownership as ownership
from services.common import subjects, tracing
from services.common.bus import Bus, Delivery
from services.common.config import Config
from services.common.contracts import ApplyOutcome, KubeObject, SourceReport, VsTreeHead, decode, may_contain
from services.common.kube import rfc3339
from services.common.object_cache import ObjectCache
from services.common.reflector import Reflector
from services.common.resync import first_of
from services.health.desired import HealthState, SvcKey, service_keys
from services.health.dirty import Dirty, drain
from services.health.endpoint_pods import EndpointPods
from services.health.gate_opener import GateOpener
from services.health.kube_writes import ServiceWriter
from services.health.lb_ready import Readiness, readiness
from services.health.readiness_gate import Selectors
from services.health.runtime_poller import RuntimePoller
from services.health.runtime_reader import RuntimeReader
from services.health.service_status import EventSpec, Plan, plan
from services.health.watched_services import (
    NAMESPACES_FOR_SELECTOR,
    SERVICES_FOR_STATUS,
    trim_for_status,
    trim_namespace,
)

log = logging.getLogger(__name__)

_CONFLICT_RETRIES = 5
# One change reaches health as a burst (its EndpointSlice, then its outcome tens of ms later): gathered for
# this long, each Service is read and compared once for it.
BATCH_SECONDS = 0.1


class HealthReconciler:
    # Whom each tree serves: a Service with a tree and no outcome is VipPending (a subclass for other kinds: off).
    FOLLOWS_TREES: ClassVar[bool] = True
    # Apply outcomes: the VIPs (off for a subclass whose status comes from translation alone).
    FOLLOWS_OUTCOMES: ClassVar[bool] = True
    # Services come from a list-and-watch cache (a subclass reading another kind with a GET: off).
    WATCHES_SERVICES: ClassVar[bool] = True

    def __init__(
        self,
        api: Any,
        bus: Bus,
        cluster: str,
        identity: str,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        runtime: RuntimeReader | None = None,
        poll_seconds: float = 5.0,
        readiness_gates: bool = False,
        cfg: Config | None = None,
    ) -> None:
        self.bus = bus
        self.cluster = cluster
        # Which Services are albus's (class, namespace selector); None: albus's defaults.
        self.cfg = cfg or Config()
        self.state = HealthState()
        self.writer = ServiceWriter(api, identity, normal_events=self.cfg.AKOSettings.enableEvents)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._dirty: Dirty[SvcKey] = Dirty()
        self._retry_at: dict[SvcKey, tuple[float, float]] = {}  # key -> (when, last delay)
        self._wake = asyncio.Event()
        self.batch_seconds = BATCH_SECONDS
        self.concurrency = self.cfg.albus.healthStatusConcurrency
        self._origin: dict[SvcKey, Delivery] = {}  # the latest message that touched each Service: its trace
        # Set when the replay is done and nothing is dirty or waiting: tests
        # and `albus` use it to know health has caught up with the bus.
        self.settled = asyncio.Event()
        # The controller's runtime (None: status from outcomes and reports only).
        self.poller = (RuntimePoller(runtime, poll_seconds, self._on_runtime,
                                     sweep_calls_per_second=self.cfg.albus.healthSweepCallsPerSecond)
                       if runtime is not None else None)
        self.endpoints = EndpointPods()
        self._vs_services: dict[str, set[SvcKey]] = {}  # virtual service name -> the Services it serves
        self._ready: dict[SvcKey, Readiness] = {}  # the last runtime verdict per Service
        # Pod readiness gates (the webhook's decisions and opening the gates); needs the runtime.
        self.gates = (GateOpener(self.writer, Selectors(), self.handled)
                      if readiness_gates and self.poller is not None else None)
        self.services = ObjectCache(trim_for_status, self._on_service_changed) if self.WATCHES_SERVICES else None
        # With a namespace selector, the namespaces' labels (watched too) and whether each was selected.
        self.namespaces = (ObjectCache(trim_namespace, self._on_namespace_changed)
                           if self.WATCHES_SERVICES and self.cfg.AKOSettings.namespaceSelector.labelKey else None)
        self._selected: dict[str, bool] = {}
        # Created by the first run, kept across runs: a resync round's run watches on from where it was.
        self._reflectors: list[Reflector] = []
        # Services marked by their watch alone since their last reconcile: one whose status needs nothing
        # (a foreign write already in line with the bus, say) is passed over without a span.
        self._quiet: set[SvcKey] = set()

    async def _on_outcome(self, d: Delivery) -> None:
        outcome = decode(d.data, ApplyOutcome)
        keys = self.state.set_outcome(d.subject, outcome)
        if self.poller is not None:
            self._vs_services[outcome.vs_name] = service_keys(outcome.sources)
            self.poller.nudge(outcome.vs_name)
        self._mark(keys, d)

    async def _on_tree(self, d: Delivery) -> None:
        # A tree alone changes at most a pending condition: after what outcomes changed (services.health.dirty).
        self._mark(self.state.set_tree(decode(d.data, VsTreeHead)), d, later=True)

    async def _on_slice(self, d: Delivery) -> None:
        # The watcher publishes every namespace's slices; only a Service albus
        # serves has a Ready condition for them to change.
        touched = self.endpoints.set_slice(decode(d.data, KubeObject))
        self._mark({k for k in touched if self.handled(k)}, d)

    async def _on_service(self, d: Delivery) -> None:
        if self.gates is not None:
            self.gates.selectors.set_service(decode(d.data, KubeObject))

    def _on_service_changed(self, key: SvcKey) -> None:
        """A Service changed on the watch: look again if the bus has said anything about it (nothing else
        gets a write)."""
        if not self.state.named(key):
            return
        if key not in self._dirty:
            self._quiet.add(key)
        self._dirty.mark({key})
        self.settled.clear()
        self._wake.set()

    def _on_namespace_changed(self, key: tuple[str, str]) -> None:
        """A namespace changed on the watch: if that flips whether the selector admits it, look again at
        every Service of it the bus has named (each is taken back, or written again)."""
        assert self.namespaces is not None
        ns = key[1]
        selected = ownership.namespace_selected(self._namespace_labels(ns), self.cfg)
        before = self._selected.get(ns)
        if self.namespaces.get(key) is None:
            self._selected.pop(ns, None)  # gone: a namespace made again under its name starts anew
        else:
            self._selected[ns] = selected
        # Seen for the first time: no Service of it was judged by it yet (the replay marks every Service).
        if before is not None and before != selected:
            self._mark({k for k in self.state.services() if k[0] == ns})

    @staticmethod
    def _may_concern(d: Delivery, kind: str, held: Container[str]) -> bool:
        """Whether an outcome may change an object of ``kind``: its bytes may name one, or its subject held
        an outcome that did. Most outcomes serve Services alone, and every loop follows every outcome: one
        that cannot concern a loop is not decoded there."""
        return d.subject in held or may_contain(d.data, kind)

    def handled(self, key: SvcKey) -> bool:
        """Whether albus serves the Service (a live virtual service on the bus)."""
        return bool(self.state.desired(key).vs_names)

    def _on_runtime(self, vs_names: set[str]) -> None:
        self._mark({k for n in vs_names for k in self._vs_services.get(n, ())})

    async def _on_report(self, d: Delivery) -> None:
        self._mark(self.state.set_report(decode(d.data, SourceReport)), d)

    def _mark(self, keys: set[SvcKey], d: Delivery | None = None, *, later: bool = False) -> None:
        if d is not None:
            self._origin.update(dict.fromkeys(keys, d))
        self._quiet -= keys
        if keys:
            self._dirty.mark(keys, later=later)
            self.settled.clear()
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Replay, then keep status in line until ``stop``; run again after a full resync (state kept).

        The state is kept across runs: what a new replay delivers replaces it
        subject by subject, so a stream lost with NATS's data and filled again
        by the syncer changes no status that was right.
        """
        self.settled.clear()
        followers = []
        if self.FOLLOWS_TREES:
            # Before the outcomes: an outcome newer than the trees read is harmless, a tree newer than the
            # outcomes read could look unapplied when its outcome is on the bus.
            followers.append(await self.bus.follow(subjects.avi_cluster(self.cluster), self._on_tree, name="trees"))
        if self.FOLLOWS_OUTCOMES:
            followers.append(await self.bus.follow(subjects.outcome_cluster(self.cluster), self._on_outcome,
                                                   name="outcomes"))
        followers.append(await self.bus.follow(subjects.report_cluster(self.cluster), self._on_report, name="reports"))
        polling: asyncio.Task[None] | None = None
        if self.poller is not None:
            # Every namespace's slices (5 tokens; the kind's _synced marker has 4).
            followers.append(await self.bus.follow(
                f"k8s.{subjects.esc(self.cluster)}.EndpointSlice.*.*", self._on_slice, name="endpointslices"))
            polling = asyncio.create_task(self.poller.run(stop))
        if self.gates is not None:
            followers.append(await self.bus.follow(
                f"k8s.{subjects.esc(self.cluster)}.Service.*.*", self._on_service, name="services"))
        replayed = [f.caught_up for f in followers]
        watched = [(spec, cache) for spec, cache in ((SERVICES_FOR_STATUS, self.services),
                                                     (NAMESPACES_FOR_SELECTOR, self.namespaces)) if cache is not None]
        if not self._reflectors:
            loop = asyncio.get_running_loop()
            self._reflectors = [Reflector(spec, self.writer.api, cache, loop) for spec, cache in watched]
        for r in self._reflectors:
            r.start()
        replayed += [cache.listed for _, cache in watched]
        try:
            waits: set[asyncio.Future[object]] = {
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(asyncio.gather(*(e.wait() for e in replayed))),
            }
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
            if stop.is_set():
                return
            log.info("%s: replayed; %d objects to bring in line", type(self).__name__, len(self._dirty))
            while not stop.is_set():
                await self._drain()
                if not self._dirty and not self._retry_at:
                    self.settled.set()
                await self._sleep(stop)
        finally:
            if polling is not None:
                polling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await polling
            for f in followers:
                await f.stop()
            for r in self._reflectors:
                await r.stop()

    async def _sleep(self, stop: asyncio.Event) -> None:
        timeout = None
        if self._retry_at:
            timeout = max(0.0, min(t for t, _ in self._retry_at.values()) - time.monotonic())
        self._wake.clear()
        if self._dirty:
            return
        waits: set[asyncio.Future[bool]] = {
            asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())
        }
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        if self._wake.is_set() and self.batch_seconds > 0:
            await first_of(stop, timeout=self.batch_seconds)

    async def _drain(self) -> None:
        """Reconcile every dirty object, ``concurrency`` at a time (services.health.dirty).

        Each object is a read, a write and an Event or two against the API server: one after another,
        10,000 Services waited ~70 ms each for round trips alone (docs/health.md, "How many at once").
        """
        now = time.monotonic()
        self._dirty.mark({key for key, (when, _) in self._retry_at.items() if when <= now})
        await drain(self._dirty, self._reconcile_or_retry, self.concurrency, self._wake)

    async def _reconcile_or_retry(self, key: SvcKey) -> None:
        try:
            await self.reconcile(key)
        except Exception as exc:
            _, last = self._retry_at.get(key, (0.0, 0.0))
            delay = min(self.backoff_max, max(self.backoff_initial, last * 2))
            self._retry_at[key] = (time.monotonic() + delay, delay)
            log.warning("%s: %s: %s; retrying in %.1fs", self._describe(key),
                        type(exc).__name__, exc, delay)
        else:
            self._retry_at.pop(key, None)

    async def reconcile(self, key: SvcKey) -> None:
        """Make one Service's status say what the bus says; write nothing if it already does.

        In a span caused by the message that touched the Service last: the
        end of that change's trace, whose id the Event carries.
        """
        quiet = key in self._quiet
        self._quiet.discard(key)
        if quiet and not await self._needs_write(key):
            return
        # Put right after someone else's change: a trace of its own, no message caused it.
        origin = None if quiet else self._origin.get(key)
        with tracing.handling(f"status {self._describe(key)}", origin.headers if origin else None,
                              {"k8s.namespace.name": key[0], "k8s.service.name": key[1]},
                              redelivered=bool(origin and origin.redelivered)) as span:
            await self._reconcile(key, span)
        if self.gates is not None and key in self._ready:
            await self.gates.open(key, self._ready[key])

    async def _needs_write(self, key: SvcKey) -> bool:
        service = await self._fetch(key, fresh=False)
        return service is not None and self._plan(key, service).patch is not None

    async def _fetch(self, key: SvcKey, *, fresh: bool) -> dict[str, Any] | None:
        """The object as the cache has it, or (``fresh``, or no cache) as a GET reads it."""
        if self.services is None:
            return await asyncio.to_thread(self._read, key)
        if fresh:
            service = await asyncio.to_thread(self._read, key)
            if service is not None:
                self.services.fresher(service)
            return service
        return self.services.get(key)

    # The object-specific steps; a subclass (Gateway API status) overrides these.
    def _describe(self, key: SvcKey) -> str:
        return f"Service {key[0]}/{key[1]}"

    def _read(self, key: SvcKey) -> dict[str, Any] | None:
        """The Service, read with a GET (in a thread)."""
        return self.writer.get(*key)

    def _namespace_labels(self, namespace: str) -> dict[str, str] | None:
        """The namespace's labels as watched, {} once it is gone; None without a selector (not needed)."""
        if self.namespaces is None:
            return None
        ns = self.namespaces.get(("", namespace))
        return dict((ns or {}).get("metadata", {}).get("labels") or {})

    def _ours(self, key: SvcKey, service: dict[str, Any]) -> bool:
        """The Service, as the cache has it, is one albus handles (the translator's rule)."""
        return ownership.ours(service, self.cfg, self._namespace_labels(key[0]))

    def _plan(self, key: SvcKey, obj: dict[str, Any]) -> Plan:
        want = self.state.desired(key)
        if want.condition is None or not self._ours(key, obj):
            self._ready.pop(key, None)
            return plan(obj, want, rfc3339(), ours=False)
        ready = None
        if self.poller is not None:
            ready = readiness(want.condition, want.vs_names, self.poller.view, self.endpoints.endpoints(key))
            self._ready[key] = ready
            if self.gates is not None:  # which members are up matters only to open gates
                self.poller.view.want_members(key, ready.watch_members)
        return plan(obj, want, rfc3339(), ready, ours=True)

    def _write(self, key: SvcKey, patch: dict[str, Any]) -> dict[str, Any] | None:
        """The write; the object as written when the API server answers with it."""
        return self.writer.patch_status(key[0], key[1], patch)

    def _announce(self, obj: dict[str, Any], ev: EventSpec) -> None:
        self.writer.event(obj, ev)

    async def _reconcile(self, key: SvcKey, span: Span) -> None:
        fresh = False
        for _ in range(_CONFLICT_RETRIES):
            service = await self._fetch(key, fresh=fresh)
            if service is None:
                return  # gone: nothing to report on
            p = self._plan(key, service)
            if p.patch is None:
                return
            try:
                written = await asyncio.to_thread(self._write, key, p.patch)
            except ApiException as exc:
                if exc.status == 409:
                    span.add_event("albus.conflict")
                    fresh = True  # the cache is behind: read the Service itself
                    continue
                raise
            if written and self.services is not None:
                self.services.fresher(written)
            span.set_attribute("albus.status_written", True)
            # Only after the status records the transition, so a retry or a
            # replay finds it recorded and announces nothing again.
            for ev in p.events:
                span.add_event("albus.k8s_event", {"reason": ev.reason})
                try:
                    await asyncio.to_thread(self._announce, service, ev)
                except Exception as exc:
                    log.warning("%s: event %s not recorded: %s", self._describe(key), ev.reason, exc)
            return
        raise RuntimeError(f"status of {key[0]}/{key[1]} kept changing ({_CONFLICT_RETRIES} conflicts)")
