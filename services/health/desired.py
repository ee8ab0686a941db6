"""What each Service's status should say, from the outcomes and reports on the bus.

Pure: :class:`HealthState` holds the newest :class:`ApplyOutcome` per virtual
service and :class:`SourceReport` per source, and computes a Service's
:class:`Desired` status from them. Health compares that with the Service as
it is and writes only the difference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.common.contracts import ApplyOutcome, ObjRef, Severity, SourceReport
from services.health.conditions import (
    REASON_CONTROLLER_ERROR,
    REASON_PROGRAMMED,
    REASON_VIP_PENDING,
    Condition,
    safe_reason,
)

SvcKey = tuple[str, str]  # (namespace, name)

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
    # This cluster's bus has named the Service (an outcome, live, deleted or
    # since moved on, or a report): only then may health take back what it wrote.
    named: bool = False


_HAS_VIP = " has VIP "
_VIPS_SAID = re.compile(re.escape(_HAS_VIP) + r"([^\s,()]+(?:, [^\s,()]+)*)")


def vips_said(condition: dict[str, Any] | None) -> tuple[str, ...]:
    """The VIPs a Programmed condition albus wrote names: those it wrote into the Service's status with it."""
    if condition is None or condition.get("reason") != REASON_PROGRAMMED:
        return ()
    m = _VIPS_SAID.search(str(condition.get("message") or ""))
    return tuple(m.group(1).split(", ")) if m else ()


def service_keys(refs: tuple[ObjRef, ...]) -> set[SvcKey]:
    return {(r.namespace, r.name) for r in refs if r.kind == SERVICE}


class HealthState:
    def __init__(self) -> None:
        self.outcomes: dict[str, ApplyOutcome] = {}  # by bus subject
        self.reports: dict[SvcKey, SourceReport] = {}
        self._by_service: dict[SvcKey, set[str]] = {}

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
        return touched | now

    def set_report(self, report: SourceReport) -> set[SvcKey]:
        if report.source.kind != SERVICE:
            return set()
        key = (report.source.namespace, report.source.name)
        self.reports[key] = report
        return {key}

    def services(self) -> set[SvcKey]:
        return {k for k, subs in self._by_service.items() if subs} | set(self.reports)

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
        else:
            cond = None
        warns = tuple((safe_reason(p.reason), p.message)
                      for p in (report.problems if report else ()) if p.severity == Severity.WARNING)
        if cond is not None and warns:
            cond = Condition(cond.status, cond.reason,
                             cond.message + "".join(f" (warning: {m})" for _, m in warns))
        named = key in self._by_service or key in self.reports
        return Desired(tuple(vips), cond, names, removed, event_reason, warns, named)
