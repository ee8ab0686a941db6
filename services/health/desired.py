"""What each Service's status should say, from the trees, outcomes and reports on the bus.

Pure: :class:`HealthState` holds the newest :class:`ApplyOutcome` per virtual
service, :class:`SourceReport` per source, and whom each virtual service's
tree serves (:class:`VsTreeHead`), and computes a Service's :class:`Desired`
status from them. Health compares that with the Service as it is and writes
only the difference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.common.contracts import ApplyOutcome, ObjRef, Severity, SourceReport, VsTreeHead
from services.health.conditions import (
    REASON_CONTROLLER_ERROR,
    REASON_PROGRAMMED,
    REASON_VIP_PENDING,
    Condition,
    safe_reason,
)

SvcKey = tuple[str, str]  # (namespace, name)
VsKey = tuple[str, str]  # (tenant, virtual service name): a tree and its outcome

SERVICE = "Service"


@dataclass(frozen=True)
class Desired:
    vips: tuple[str, ...]  # status.loadBalancer.ingress, in order
    condition: Condition | None  # None: albus has nothing to say (no condition)
    vs_names: tuple[str, ...]  # live virtual services serving the Service
    removed_vs_names: tuple[str, ...]  # virtual services deleted for it
    failure_event_reason: str = ""  # Warning Event reason when the condition turns False
    # (reason, message) of warnings: appended to the condition's message, and
    # announced by an Event when the Service's condition does not say them yet.
    warnings: tuple[tuple[str, str], ...] = ()
    # This cluster's bus has named the Service (a tree or an outcome, live,
    # deleted or since moved on, or a report): only then may health take back what it wrote.
    named: bool = False
    # Virtual services whose tree serves the Service and that have no outcome
    # yet; set only when the condition is VipPending for that reason.
    unapplied: tuple[str, ...] = ()


_HAS_VIP = " has VIP "
_VIPS_SAID = re.compile(re.escape(_HAS_VIP) + r"([^\s,()]+(?:, [^\s,()]+)*)")
_VSS_SAID = re.compile(r"^virtualservice ([^\s,()]+(?:, [^\s,()]+)*)" + re.escape(_HAS_VIP))
NOT_APPLIED = " not applied yet"


def vips_said(condition: dict[str, Any] | None) -> tuple[str, ...]:
    """The VIPs a Programmed condition albus wrote names: those it wrote into the Service's status with it."""
    if condition is None or condition.get("reason") != REASON_PROGRAMMED:
        return ()
    m = _VIPS_SAID.search(str(condition.get("message") or ""))
    return tuple(m.group(1).split(", ")) if m else ()


def vss_said(condition: dict[str, Any] | None) -> tuple[str, ...]:
    """The virtual services a Programmed condition albus wrote says are applied (``virtualservice a, b has VIP``)."""
    if condition is None or condition.get("status") != "True" or condition.get("reason") != REASON_PROGRAMMED:
        return ()
    m = _VSS_SAID.match(str(condition.get("message") or ""))
    return tuple(m.group(1).split(", ")) if m else ()


def service_keys(refs: tuple[ObjRef, ...]) -> set[SvcKey]:
    return {(r.namespace, r.name) for r in refs if r.kind == SERVICE}


class HealthState:
    def __init__(self) -> None:
        self.outcomes: dict[str, ApplyOutcome] = {}  # by bus subject
        self.reports: dict[SvcKey, SourceReport] = {}
        self._by_service: dict[SvcKey, set[str]] = {}
        # Trees: whom each live one serves, and its index by Service. A Service
        # with a tree and no live outcome is one the syncer has not applied (yet).
        self._tree_services: dict[VsKey, set[SvcKey]] = {}
        self._trees_by_service: dict[SvcKey, set[VsKey]] = {}

    def set_outcome(self, subject: str, outcome: ApplyOutcome) -> set[SvcKey]:
        """Record ``outcome``; return the Services whose status may change (old and new sources)."""
        before = self.outcomes.get(subject)
        touched = service_keys(before.sources) if before else set()
        for key in touched:
            self._by_service.get(key, set()).discard(subject)
        self.outcomes[subject] = outcome
        now = service_keys(outcome.sources)
        for key in now:
            self._by_service.setdefault(key, set()).add(subject)
        # Its tree's Services stop (or start again) waiting for a first apply.
        return touched | now | self._tree_services.get((outcome.tenant, outcome.vs_name), set())

    def set_tree(self, tree: VsTreeHead) -> set[SvcKey]:
        """Record whom a tree (or its deletion) serves; return the Services whose desired status changed.

        Only those: most trees are edits of applied virtual services (new
        members, a new port), which change nothing here until their outcome,
        and health reads a Service for every one it is given.
        """
        vs = (tree.tenant, tree.vs_name)
        now = set() if tree.deleted else service_keys(tree.sources)
        before = self._tree_services.get(vs, set())
        touched = before | now
        was = {key: self.desired(key) for key in touched}
        for key in before:
            self._trees_by_service.get(key, set()).discard(vs)
        self._tree_services.pop(vs, None)
        if now:
            self._tree_services[vs] = now
        for key in now:
            self._trees_by_service.setdefault(key, set()).add(vs)
        return {key for key in touched if self.desired(key) != was[key]}

    def trees_of(self, key: SvcKey) -> tuple[str, ...]:
        """The virtual services whose live tree serves the Service."""
        return tuple(sorted(name for _, name in self._trees_by_service.get(key, ())))

    def set_report(self, report: SourceReport) -> set[SvcKey]:
        if report.source.kind != SERVICE:
            return set()
        key = (report.source.namespace, report.source.name)
        self.reports[key] = report
        return {key}

    def services(self) -> set[SvcKey]:
        return ({k for k, subs in self._by_service.items() if subs} | set(self.reports)
                | {k for k, vss in self._trees_by_service.items() if vss})

    def desired(self, key: SvcKey) -> Desired:
        outs = sorted(
            (self.outcomes[s] for s in self._by_service.get(key, ())), key=lambda o: (o.tenant, o.vs_name)
        )
        live = [o for o in outs if not o.deleted]
        removed = tuple(o.vs_name for o in outs if o.deleted)
        vips: list[str] = []
        for o in live:
            # A failed apply still reports the VIPs its VS holds, if any.
            vips.extend(v for v in o.vips if v not in vips)
        names = tuple(o.vs_name for o in live)
        report = self.reports.get(key)
        errors = [p for p in (report.problems if report else ()) if p.severity == Severity.ERROR]
        cond: Condition | None
        event_reason = ""
        unapplied: tuple[str, ...] = ()
        if errors:
            reason = safe_reason(errors[0].reason)
            cond = Condition("False", reason, "; ".join(p.message for p in errors))
            event_reason = reason
        elif failed := [o for o in live if not o.ok]:
            msg = "; ".join(f"virtualservice {o.vs_name}: {o.error or 'apply failed'}" for o in failed)
            cond = Condition("False", REASON_CONTROLLER_ERROR, msg)
            event_reason = "SyncFailed"
        elif live and vips:
            cond = Condition(
                "True", REASON_PROGRAMMED, f"virtualservice {', '.join(names)}{_HAS_VIP}{', '.join(vips)}"
            )
        elif live:
            cond = Condition("False", REASON_VIP_PENDING, f"virtualservice {', '.join(names)} has no VIP yet")
        elif unapplied := self.trees_of(key):
            # Before the first apply: the translator has published the tree, no outcome names the Service yet.
            cond = Condition("False", REASON_VIP_PENDING, f"virtualservice {', '.join(unapplied)}{NOT_APPLIED}")
        else:
            cond = None
        warns = tuple((safe_reason(p.reason), p.message)
                      for p in (report.problems if report else ()) if p.severity == Severity.WARNING)
        if cond is not None and warns:
            cond = Condition(cond.status, cond.reason,
                             cond.message + "".join(f" (warning: {m})" for _, m in warns))
        return Desired(tuple(vips), cond, names, removed, event_reason, warns, self.named(key), unapplied)

    def named(self, key: SvcKey) -> bool:
        """This cluster's bus has said something about the Service (a tree, an outcome or a report)."""
        return key in self._by_service or key in self.reports or key in self._trees_by_service
