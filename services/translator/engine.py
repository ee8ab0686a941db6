"""The translator's state machine, free of any bus: objects in, changed trees and reports out.

It remembers what it has published (seeded from the streams on start), so
it publishes a tree only when its checksum changes and a report only when the
problems change; a restart with nothing changed publishes nothing. What it
remembers of a tree is a summary (published.py), not the tree; and a flush
may be taken in parts (``limit``), so a full view's trees need not all be
in memory at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common.config import Config
from services.common.contracts import (
    AviObject,
    GatewayStatus,
    KubeObject,
    ObjRef,
    Problem,
    Severity,
    SourceReport,
    VsTree,
)
from services.translator import heap
from services.translator.graph import ROUTE_KINDS, Graph
from services.translator.published import Published
from services.translator.vip_moves import carry_vip_id


@dataclass
class Changes:
    trees: list[VsTree] = field(default_factory=list)
    reports: list[SourceReport] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.trees or self.reports)


class Engine:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.graph = Graph(cfg)
        self.dirty: set[ObjRef] = set()
        self.desired: dict[ObjRef, tuple[str, ...]] = {}  # source -> the names of the trees it wants
        self.problems: dict[ObjRef, tuple[Problem, ...]] = {}
        self.published: dict[str, Published] = {}  # vs name -> the tree on the bus (not deleted)
        self.reported: dict[ObjRef, tuple[Problem, ...]] = {}
        self.reported_status: dict[ObjRef, GatewayStatus] = {}  # Gateway API status on the bus
        # Trees an earlier round of this process published: only for the VIP ids
        # (and certificates) they carry, when the stream that held them was lost
        # (docs/disaster-recovery.md).
        self.vip_memory: dict[str, Published] = {}
        self.full_view_pending = False  # mark_all was called: the next flush is a full view
        # A flush taken in parts: the sources still to translate, and the trees their sources no
        # longer want (deleted only once every part is done: another source may want them).
        self._taking: list[ObjRef] | None = None
        self._gone: dict[str, None] = {}  # names, in the order they went
        self._full_view_size = 0  # sources of the full view being flushed
        self.graph.previous = self._previous_object

    def _previous_object(self, vs_name: str, obj_type: str, name: str) -> AviObject | None:
        """An object of the tree on the bus: a certificate whose Secret went bad is kept from it."""
        tree = self.published.get(vs_name) or self.vip_memory.get(vs_name)
        return tree.object(obj_type, name) if tree else None

    # -- what the bus already holds -------------------------------------------------
    def remember_tree(self, tree: VsTree) -> None:
        if tree.deleted:
            self.published.pop(tree.vs_name, None)
        else:
            self.published[tree.vs_name] = Published.of(tree)

    def remember_report(self, report: SourceReport) -> None:
        if report.problems:
            self.reported[report.source] = report.problems
        else:
            self.reported.pop(report.source, None)
        if report.gateway is not None:
            self.reported_status[report.source] = report.gateway
        else:
            self.reported_status.pop(report.source, None)

    # -- input -----------------------------------------------------------------------
    def observe(self, ko: KubeObject) -> set[ObjRef]:
        """Take in ``ko``; returns the sources it made dirty."""
        affected = self.graph.upsert(ko)
        self.dirty |= affected
        return affected

    def mark_all(self) -> None:
        self.dirty |= self.graph.sources() | set(self.desired) | set(self.reported) | set(self.reported_status)
        self.full_view_pending = True

    # -- output ----------------------------------------------------------------------
    def _owned(self) -> set[str]:
        """Every VS name some source wants (one pass: asking per name was quadratic)."""
        return {name for trees in self.desired.values() for name in trees}

    @property
    def flushing(self) -> bool:
        """A flush taken in parts is not done: call ``flush`` again."""
        return self._taking is not None

    def flush(self, limit: int | None = None) -> Changes:
        """The changes of what is dirty; with ``limit``, of at most that many sources.

        A flush in parts takes what is dirty at its first part; while ``flushing``,
        each call translates the next ``limit`` of those (what turns dirty meanwhile
        waits for the next flush). Trees no source wants any more are deleted in
        the last part.
        """
        # The collector is paused while trees are built, and a full view's heap is frozen
        # (heap.py: the collector was most of the CPU of an initial list).
        if self._taking is None:
            self._taking = sorted(self.dirty | self.graph.take_route_fanout(), key=lambda r: r.key(), reverse=True)
            self.dirty = set()
            self._full_view_size = len(self._taking) if self.full_view_pending else 0
            self.full_view_pending = False
        with heap.paused():
            out = self._flush(len(self._taking) if limit is None else limit)
            heap.keep_growth()
        if self._taking is None and self._full_view_size >= heap.FREEZE_FROM:
            heap.settle()
        return out

    def _flush(self, limit: int) -> Changes:
        out = Changes()
        taking = self._taking or []
        gone = self._gone
        for _ in range(min(limit, len(taking))):
            src = taking.pop()
            result = self.graph.translate(src)
            before = self.desired.pop(src, ())
            now: dict[str, VsTree] = {}
            for t in result.trees:
                had = self.published.get(t.vs_name) or self.vip_memory.get(t.vs_name)
                now[t.vs_name], moved = carry_vip_id(t, had.vip if had else None)
                if moved:
                    result.problems.append(Problem(source=src, reason="VipReallocated", message=moved,
                                                   severity=Severity.WARNING))
            names = tuple(now)
            if result.problems and not now and before and not result.release:
                # Bad input never deletes what was working: keep the last good
                # trees and report the problem until the source is fixed or gone.
                names = before
            if names:
                self.desired[src] = names
            for name in before:
                if name not in names:
                    gone[name] = None
            for tree in (now.values() if names is not before else ()):
                pub = self.published.get(tree.vs_name)
                if pub is None or pub.checksum != tree.checksum or pub.tenant != tree.tenant:
                    if pub is not None and pub.tenant != tree.tenant:
                        out.trees.append(pub.deletion())
                    out.trees.append(tree)
                    self.published[tree.vs_name] = Published.of(tree)
            problems = tuple(result.problems)
            if problems:
                self.problems[src] = problems
            else:
                self.problems.pop(src, None)
            status = result.statuses.get(src) or self._released_route(src)
            if self.reported.get(src, ()) != problems or self.reported_status.get(src) != status:
                out.reports.append(SourceReport(cluster=self.cfg.cluster, source=src, problems=problems,
                                                vs_names=tuple(sorted(names)), gateway=status))
                self.remember_report(out.reports[-1])
        if taking:
            return out
        self._taking, self._gone = None, {}
        owned = self._owned() if gone else set()
        for name in gone:
            if name not in owned and name in self.published:
                out.trees.append(self.published.pop(name).deletion())
        return out

    def _released_route(self, src: ObjRef) -> GatewayStatus | None:
        """A route that had parents of albus's and now has none (its Gateway went, or it names another).

        Its status is an empty parent list, so health removes albus's entries
        from it (other controllers' stay). It stays so while the route exists:
        a message lost or replayed finds the same answer.
        """
        route = self.graph.get(src.kind, src.namespace, src.name) if src.kind in ROUTE_KINDS else None
        if route is None or src not in self.reported_status:
            return None
        return GatewayStatus(generation=int((route.get("metadata") or {}).get("generation") or 0))

    def stale(self) -> Changes:
        """Deletions for published trees no source wants: run only with the full view."""
        out = Changes()
        owned = self._owned()
        for name in sorted(self.published):
            if name not in owned:
                out.trees.append(self.published.pop(name).deletion())
        live_sources = self.graph.sources()
        for src in sorted(set(self.reported) | set(self.reported_status), key=lambda r: r.key()):
            if src not in live_sources:
                out.reports.append(SourceReport(cluster=self.cfg.cluster, source=src))
                self.reported.pop(src, None)
                self.reported_status.pop(src, None)
        return out

    def live_vs_names(self) -> tuple[str, ...]:
        return tuple(sorted(self.published))
