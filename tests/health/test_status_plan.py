"""From outcomes and reports to the writes health makes, with no Kubernetes involved."""

from __future__ import annotations

from typing import Any

from health_helpers import merge_status_patch

from services.common.contracts import ApplyOutcome, ObjRef, Problem, Severity, SourceReport
from services.health.conditions import CONDITION_TYPE, Condition, merged, safe_reason
from services.health.desired import HealthState
from services.health.service_status import plan

SVC = ObjRef(kind="Service", namespace="shop", name="web")
NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T01:00:00Z"


def _outcome(vs: str = "c--shop-web", ok: bool = True, vips: tuple[str, ...] = ("10.0.0.5",),
             deleted: bool = False, error: str | None = None, sources: tuple[ObjRef, ...] = (SVC,)) -> ApplyOutcome:
    return ApplyOutcome(cluster="c", tenant="admin", vs_name=vs, checksum="x", ok=ok, deleted=deleted,
                        error=error, vips=vips, sources=sources)


def _service(ips: tuple[str, ...] = (), cond: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if ips:
        status["loadBalancer"] = {"ingress": [{"ip": ip, "ipMode": "VIP"} for ip in ips]}
    if cond:
        status["conditions"] = [cond]
    return {"metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7", "generation": 1},
            "status": status}


def test_success_writes_every_vip_and_a_true_condition_and_announces_once() -> None:
    st = HealthState()
    st.set_outcome("o1", _outcome(vips=("10.0.0.5", "fd00::5")))
    p = plan(_service(), st.desired(("shop", "web")), NOW)
    assert p.patch is not None
    assert p.patch["metadata"] == {"resourceVersion": "7"}
    assert p.patch["status"]["loadBalancer"] == {"ingress": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]}
    [cond] = p.patch["status"]["conditions"]
    assert (cond["type"], cond["status"], cond["reason"], cond["observedGeneration"]) == (
        CONDITION_TYPE, "True", "Programmed", 1)
    # One Event (AKO's Synced), the VIP in it: a start with thousands of Services posts one each, not two.
    assert [(e.type, e.reason, e.note) for e in p.events] == [
        ("Normal", "Synced", "Added virtualservice c--shop-web for shop/web (VIP 10.0.0.5, fd00::5)")]
    # Replay against the written status: nothing to write, nothing to announce.
    again = plan(merge_status_patch(_service(), p.patch), st.desired(("shop", "web")), LATER)
    assert again.empty


def test_a_vip_that_moves_on_a_synced_service_is_announced_apart() -> None:
    st = HealthState()
    st.set_outcome("o1", _outcome())
    synced = merge_status_patch(_service(), plan(_service(), st.desired(("shop", "web")), NOW).patch or {})
    st.set_outcome("o1", _outcome(vips=("10.0.0.9",)))
    p = plan(synced, st.desired(("shop", "web")), LATER)
    assert p.patch is not None and p.patch["status"]["loadBalancer"] == {"ingress": [{"ip": "10.0.0.9"}]}
    assert [(e.reason, e.note) for e in p.events] == [
        ("VipAssigned", "VIP 10.0.0.9 assigned (virtualservice c--shop-web)")]


def test_failure_sets_false_condition_with_warning_and_success_clears_it() -> None:
    st = HealthState()
    st.set_outcome("o1", _outcome(ok=False, vips=(), error="No free IP available in network vip-net"))
    p = plan(_service(), st.desired(("shop", "web")), NOW)
    assert p.patch is not None
    [cond] = p.patch["status"]["conditions"]
    assert (cond["status"], cond["reason"]) == ("False", "ControllerError")
    assert "No free IP available" in cond["message"]
    assert [(e.type, e.reason) for e in p.events] == [("Warning", "SyncFailed")]
    failed = merge_status_patch(_service(), p.patch)
    assert plan(failed, st.desired(("shop", "web")), LATER).empty

    st.set_outcome("o1", _outcome())
    ok = plan(failed, st.desired(("shop", "web")), LATER)
    assert ok.patch is not None
    [cond] = ok.patch["status"]["conditions"]
    assert (cond["status"], cond["reason"], cond["lastTransitionTime"]) == ("True", "Programmed", LATER)
    assert [e.reason for e in ok.events] == ["Synced"]
    assert ok.events[0].note.endswith("(VIP 10.0.0.5)")


def test_transition_time_kept_while_status_holds() -> None:
    old = {"type": CONDITION_TYPE, "status": "False", "reason": "ControllerError", "message": "a",
           "lastTransitionTime": NOW, "observedGeneration": 1}
    [c] = merged([old], Condition("False", "ControllerError", "b"), 1, LATER)
    assert c["lastTransitionTime"] == NOW and c["message"] == "b"


def test_other_writers_conditions_are_kept() -> None:
    theirs = {"type": "example.com/Other", "status": "True", "reason": "X", "message": "",
              "lastTransitionTime": NOW}
    out = merged([theirs], Condition("True", "Programmed", "m"), 1, NOW)
    assert out[0] == theirs and out[1]["type"] == CONDITION_TYPE
    assert merged([theirs, out[1]], None, 1, NOW) == [theirs]


def test_deleted_outcome_clears_ingress_and_condition_with_removed_event() -> None:
    st = HealthState()
    st.set_outcome("o1", _outcome(deleted=True, vips=()))
    cur = _service(ips=("10.0.0.5",), cond={"type": CONDITION_TYPE, "status": "True", "reason": "Programmed",
                                            "message": "virtualservice c--shop-web has VIP 10.0.0.5",
                                            "lastTransitionTime": NOW, "observedGeneration": 1})
    p = plan(cur, st.desired(("shop", "web")), LATER)
    assert p.patch is not None
    assert p.patch["status"] == {"loadBalancer": {"ingress": None}, "conditions": None}
    assert [(e.reason, e.note) for e in p.events] == [("Removed", "Removed virtualservice c--shop-web for shop/web")]
    assert plan(merge_status_patch(cur, p.patch), st.desired(("shop", "web")), LATER).empty


def test_report_problem_wins_over_outcome_and_empty_report_clears_it() -> None:
    st = HealthState()
    st.set_outcome("o1", _outcome())
    st.set_report(SourceReport(cluster="c", source=SVC, problems=(
        Problem(source=SVC, reason="InvalidConfiguration", message="port 0 is not valid"),)))
    want = st.desired(("shop", "web"))
    assert want.condition == Condition("False", "InvalidConfiguration", "port 0 is not valid")
    assert want.vips == ("10.0.0.5",)  # what works keeps working
    p = plan(_service(), want, NOW)
    assert [(e.type, e.reason) for e in p.events] == [("Warning", "InvalidConfiguration")]
    st.set_report(SourceReport(cluster="c", source=SVC))
    assert st.desired(("shop", "web")).condition == Condition(
        "True", "Programmed", "virtualservice c--shop-web has VIP 10.0.0.5")


def test_warnings_do_not_fail_the_condition() -> None:
    st = HealthState()
    st.set_outcome("o1", _outcome())
    st.set_report(SourceReport(cluster="c", source=SVC, problems=(
        Problem(source=SVC, reason="Deprecated", message="spec.loadBalancerIP", severity=Severity.WARNING),)))
    cond = st.desired(("shop", "web")).condition
    assert cond is not None and cond.ok


def test_a_service_leaving_a_shared_vs_is_touched_and_loses_the_vip() -> None:
    other = ObjRef(kind="Service", namespace="shop", name="api")
    st = HealthState()
    st.set_outcome("o1", _outcome(sources=(SVC, other)))
    touched = st.set_outcome("o1", _outcome(sources=(other,)))
    assert touched == {("shop", "web"), ("shop", "api")}
    want = st.desired(("shop", "web"))
    assert want.vips == () and want.condition is None


def test_ok_without_vip_is_pending_without_event() -> None:
    st = HealthState()
    st.set_outcome("o1", _outcome(vips=()))
    p = plan(_service(), st.desired(("shop", "web")), NOW)
    assert p.patch is not None and p.patch["status"]["conditions"][0]["reason"] == "VipPending"
    assert p.events == []


def test_safe_reason() -> None:
    assert safe_reason("InvalidConfiguration") == "InvalidConfiguration"
    assert safe_reason("invalid port-number") == "InvalidPortNumber"
    assert safe_reason("!!!") == "InvalidConfiguration"
