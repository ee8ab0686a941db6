"""A reflector: list a kind, then watch it from the list's resourceVersion.

The official client blocks, so each reflector runs in a thread of its own and
hands every list and event to its :class:`Sink` on the asyncio loop, waiting
for the sink's step to finish before it reads on: the sink sees changes in the
order the API server sent them. The watcher's sink publishes to the bus
(``services.watcher.publisher``); health's keeps the Services it writes status
on (``services.common.object_cache``).

Recovery, as client-go's reflector does it:

* the watch ends (server timeout, dropped connection, error event): watch
  again from the last resourceVersion seen (events and bookmarks both advance
  it), with exponential back-off when it failed;
* ``410 Gone`` (the resourceVersion was compacted away, or a list's continue
  token expired): list again; the sink gets the whole new list and works out
  what disappeared;
* a sink step failed (a publish was refused): list again after back-off, so
  nothing the sink missed is lost;
* an optional kind (a CRD) is not served: it lists as empty, is looked for
  again every ``absent_retry`` seconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import random
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from services.common import kube
from services.common.kube import read_json

log = logging.getLogger(__name__)

Obj = dict[str, Any]  # an object in its JSON shape (camelCase, metadata/spec/status)
Trim = Callable[[Obj], Obj]
Key = tuple[str, str]  # (namespace or "", name)
# A function that lists (or, with watch=True, watches) every object of a kind;
# it takes the client's list keyword arguments.
ListFunc = Callable[..., Any]


def key_of(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta["name"]))


@dataclass(frozen=True)
class KindSpec:
    kind: str
    api_version: str  # group/version, for logs and documentation
    namespaced: bool
    lister: Callable[[Any], ListFunc]  # ApiClient -> list function
    trim: Trim
    # A CRD that may not be installed: a 404 lists as empty and is retried later.
    optional: bool = False
    # Only objects (untrimmed) passing this reach the sink; one that stops passing is forgotten.
    relevant: Callable[[dict[str, Any]], bool] | None = None


def path_lister(path: str, **query: Any) -> Callable[[Any], ListFunc]:
    """List and watch the collection at ``path`` across namespaces (see :func:`kube.list_raw`)."""
    def lister(api: Any) -> ListFunc:
        return functools.partial(kube.list_raw, api, path, **query)

    return lister


def custom_lister(group: str, version: str, plural: str) -> Callable[[Any], ListFunc]:
    return path_lister(f"/apis/{group}/{version}/{plural}")


class Sink(Protocol):
    """Where a reflector delivers, on the event loop, one step at a time."""

    async def relist(self, listed: list[Obj], resource_version: str) -> None:
        """Every relevant object, trimmed, as of ``resource_version`` ("" for an optional kind not served)."""

    async def upsert(self, trimmed: Obj) -> None:
        """An object was added or changed."""

    async def delete(self, key: Key, uid: str, resource_version: str) -> None:
        """An object was deleted."""

    async def forget(self, key: Key, uid: str, resource_version: str) -> None:
        """An object was deleted or stopped being relevant (it may never have been delivered)."""


class _RawWatch(watch.Watch):
    """A watch that yields events as plain dicts: no model round trip, camelCase kept.

    (``deserialize=False`` would do the same but then fails on ERROR events,
    which it reads from a key only the deserialising path fills.)
    """

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def get_return_type(self, func: Any) -> None:
        return None


class _Stopped(Exception):
    pass


class _SinkFailed(Exception):
    pass


class Reflector:
    def __init__(
        self,
        spec: KindSpec,
        api: Any,
        sink: Sink,
        loop: asyncio.AbstractEventLoop,
        *,
        watch_timeout: int = 300,
        page_size: int = 500,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        absent_retry: float = 60.0,
    ) -> None:
        self.spec = spec
        self.list_func = spec.lister(api)
        self.sink = sink
        self.loop = loop
        self.watch_timeout = watch_timeout
        self.page_size = page_size
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.absent_retry = absent_retry
        # None: the next step is a list. Kept across stop()/start(), so a
        # restarted reflector watches on from where it stopped.
        self.resource_version: str | None = None
        self.expired = 0  # 410s seen
        self.absent = False  # an optional kind that is not served
        # One event per start(): a thread that outlives stop() (blocked in a
        # read) still sees its own run stopped after a restart.
        self._stopping = threading.Event()
        self._watch: Any = None  # the running _RawWatch (the client is unannotated)
        self._thread: threading.Thread | None = None

    @property
    def kind(self) -> str:
        return self.spec.kind

    def start(self) -> None:
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._stopping,), name=f"reflector-{self.kind}", daemon=True
        )
        self._thread.start()

    async def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        w = self._watch
        if w is not None:
            w.stop()  # shuts the socket down, which unblocks the reading thread
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, timeout)
            if self._thread.is_alive():
                log.warning("%s: reflector thread did not stop within %.0fs", self.kind, timeout)

    # -- the thread --------------------------------------------------------

    def _run(self, stopping: threading.Event) -> None:
        delay = self.backoff_initial
        while not stopping.is_set():
            try:
                if self.resource_version is None and not self._list(stopping):
                    stopping.wait(self.absent_retry)
                    continue
                self._watch_once(stopping)
                delay = self.backoff_initial
                continue
            except _Stopped:
                break
            except ApiException as exc:
                if stopping.is_set():
                    break
                if exc.status == 410:
                    # Compacted away: only a fresh list can say what exists now.
                    self.expired += 1
                    log.info("%s: resourceVersion %s is gone (410); relisting", self.kind, self.resource_version)
                    self.resource_version = None
                    continue
                if exc.status == 404 and self.spec.optional:
                    # The CRD went away under the watch: a list says so.
                    self.resource_version = None
                    continue
                log.warning("%s: API error %s %s: %s; retrying in %.1fs",
                            self.kind, exc.status, exc.reason, str(exc.body or "")[:300], delay)
            except _SinkFailed as exc:
                log.warning("%s: delivery failed (%s); relisting in %.1fs", self.kind, exc.__cause__, delay)
                self.resource_version = None
            except Exception as exc:
                if stopping.is_set():
                    break
                log.warning("%s: %s: %s; retrying in %.1fs", self.kind, type(exc).__name__, exc, delay)
            stopping.wait(delay)
            delay = min(delay * 2, self.backoff_max)

    def _call(self, coro: Coroutine[Any, Any, None], stopping: threading.Event) -> None:
        """Run a sink step on the loop and wait for it (the thread's back-pressure)."""
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        while True:
            try:
                fut.result(timeout=1.0)
                return
            except concurrent.futures.TimeoutError:
                if stopping.is_set():
                    fut.cancel()
                    raise _Stopped() from None
            except concurrent.futures.CancelledError:
                raise _Stopped() from None
            except Exception as exc:
                raise _SinkFailed(str(exc)) from exc

    def _list(self, stopping: threading.Event) -> bool:
        """List and hand the list to the sink; False when an optional kind is not served."""
        items: list[Obj] = []
        cont: str | None = None
        while True:
            try:
                resp = self.list_func(
                    limit=self.page_size, _continue=cont, _preload_content=False, _request_timeout=60
                )
            except ApiException as exc:
                if exc.status == 404 and self.spec.optional:
                    self._report_absent(stopping)
                    return False
                raise
            body = read_json(resp)
            for raw in body.get("items") or ():
                if self.spec.relevant is None or self.spec.relevant(raw):
                    items.append(self.spec.trim(raw))
            meta = body.get("metadata") or {}
            cont = meta.get("continue") or None
            if cont is None:
                rv = str(meta.get("resourceVersion") or "")
                break
            if stopping.is_set():
                raise _Stopped()
        if self.absent:
            log.info("%s (%s) is served now", self.kind, self.spec.api_version)
            self.absent = False
        self._call(self.sink.relist(items, rv), stopping)
        self.resource_version = rv
        return True

    def _report_absent(self, stopping: threading.Event) -> None:
        if not self.absent:
            log.info(
                "%s (%s) is not served (CRD not installed?): treating it as empty, looking again every %.0fs",
                self.kind, self.spec.api_version, self.absent_retry,
            )
            self._call(self.sink.relist([], ""), stopping)
            self.absent = True

    def _watch_once(self, stopping: threading.Event) -> None:
        w: Any = _RawWatch()
        self._watch = w
        if stopping.is_set():  # stop() ran before it could see this watch
            raise _Stopped()
        # Spread the watches' renewals like client-go does (timeout in [t, 2t)).
        timeout = self.watch_timeout + random.randrange(max(1, self.watch_timeout))
        try:
            for event in w.stream(
                self.list_func,
                resource_version=self.resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=timeout,
                _request_timeout=timeout + 30,
            ):
                if stopping.is_set():
                    raise _Stopped()
                self._handle(event, stopping)
        finally:
            if self._watch is w:
                self._watch = None
            w.stop()

    def _handle(self, event: dict[str, Any], stopping: threading.Event) -> None:
        kind = event.get("type")
        obj = event.get("raw_object") or event.get("object")
        if not isinstance(obj, dict):
            return
        meta = obj.get("metadata") or {}
        rv = str(meta.get("resourceVersion") or "")
        uid = str(meta.get("uid") or "")
        relevant = self.spec.relevant
        if kind in ("ADDED", "MODIFIED") and (relevant is None or relevant(obj)):
            self._call(self.sink.upsert(self.spec.trim(obj)), stopping)
        elif kind in ("ADDED", "MODIFIED"):
            # Not (or no longer) relevant: the sink forgets it if it had it.
            self._call(self.sink.forget(key_of(obj), uid, rv), stopping)
        elif kind == "DELETED" and relevant is not None:
            self._call(self.sink.forget(key_of(obj), uid, rv), stopping)
        elif kind == "DELETED":
            self._call(self.sink.delete(key_of(obj), uid, rv), stopping)
        elif kind != "BOOKMARK":
            log.warning("%s: unexpected watch event %r", self.kind, kind)
            return
        if rv:
            self.resource_version = rv
