"""Translation warnings (unknown AKO annotation, shortened names): in the condition, announced once by an Event."""

from __future__ import annotations

from services.common.contracts import ApplyOutcome, ObjRef, Problem, Severity, SourceReport
from services.health.desired import HealthState
from services.health.service_status import plan

SRC = ObjRef(kind="Service", namespace="shop", name="web")
WARN = Problem(source=SRC, reason="UnknownAnnotation", severity=Severity.WARNING,
               message="annotation ako.vmware.com/typo is not an AKO annotation and is ignored")


def state() -> HealthState:
    st = HealthState()
    st.set_outcome("outcome.c1.admin.vs", ApplyOutcome(cluster="c1", tenant="admin", vs_name="c1--shop-web",
                                                       checksum="x", ok=True, vips=("127.1.0.1",), sources=(SRC,)))
    st.set_report(SourceReport(cluster="c1", source=SRC, problems=(WARN,)))
    return st


def test_warning_goes_into_the_condition_and_one_event() -> None:
    want = state().desired(("shop", "web"))
    assert want.condition is not None and want.condition.status == "True"
    assert want.condition.message.endswith(f"(warning: {WARN.message})")
    svc = {"metadata": {"namespace": "shop", "name": "web", "resourceVersion": "1"}, "status": {}}
    first = plan(svc, want, "2026-01-01T00:00:00Z")
    assert [(e.type, e.reason) for e in first.events] == [("Normal", "Synced"), ("Warning", "UnknownAnnotation")]
    # Once the condition carries the warning, a replay announces nothing again.
    assert first.patch is not None
    svc["status"] = first.patch["status"]
    again = plan(svc, want, "2026-01-01T00:01:00Z")
    assert again.events == [] and again.patch is None
