"""VipPending before the first apply: a Service whose tree is on the bus and no outcome names yet, no Kubernetes involved."""

from __future__ import annotations

from typing import Any

from health_helpers import merge_status_patch

from services.common.contracts import (
    ApplyOutcome,
    AviObject,
    ObjRef,
    Problem,
    SourceReport,
    VsTree,
    VsTreeHead,
    decode,
    encode,
)
from services.health.conditions import CONDITION_TYPE
from services.health.desired import HealthState, vss_said
from services.health.lb_ready import READY_CONDITION_TYPE, readiness
from services.health.runtime_view import RuntimeView
from services.health.service_status import plan

SVC = ObjRef(kind="Service", namespace="shop", name="web")
KEY = ("shop", "web")
VS = "c--shop-web"
NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T01:00:00Z"


def _tree(vs: str = VS, deleted: bool = False, sources: tuple[ObjRef, ...] = (SVC,)) -> VsTreeHead:
    full = VsTree(cluster="c", tenant="admin", vs_name=vs, deleted=deleted, sources=() if deleted else sources,
                  objects=() if deleted else (AviObject(type="virtualservice", name=vs, body={"name": vs}),))
    return decode(encode(full.with_checksum()), VsTreeHead)


def _outcome(vs: str = VS, ok: bool = True, vips: tuple[str, ...] = ("10.0.0.5",), deleted: bool = False,
             error: str | None = None) -> ApplyOutcome:
    return ApplyOutcome(cluster="c", tenant="admin", vs_name=vs, checksum="x", ok=ok, deleted=deleted, error=error,
                        vips=vips, sources=(SVC,))


def _service(conds: list[dict[str, Any]] | None = None, ips: tuple[str, ...] = ()) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if conds:
        status["conditions"] = conds
    if ips:
        status["loadBalancer"] = {"ingress": [{"ip": ip} for ip in ips]}
    return {"metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7"},
            "spec": {"type": "LoadBalancer"}, "status": status}


def _programmed(vs: str = VS) -> dict[str, Any]:
    return {"type": CONDITION_TYPE, "status": "True", "reason": "Programmed",
            "message": f"virtualservice {vs} has VIP 10.0.0.5", "lastTransitionTime": NOW}


def test_the_head_of_a_tree_is_read_without_its_objects() -> None:
    head = _tree()
    assert (head.vs_name, head.tenant, head.sources, head.deleted) == (VS, "admin", (SVC,), False)
    assert head.checksum


def test_a_tree_without_outcome_is_vip_pending_then_programmed_by_its_outcome() -> None:
    st = HealthState()
    assert st.set_tree(_tree()) == {KEY}
    want = st.desired(KEY)
    assert want.condition is not None and (want.condition.status, want.condition.reason) == ("False", "VipPending")
    assert want.condition.message == f"virtualservice {VS} not applied yet"
    assert (want.vips, want.vs_names, want.unapplied, want.named) == ((), (), (VS,), True)
    p = plan(_service(), want, NOW)
    assert p.patch is not None and p.events == []  # pending is no failure: no Warning
    [cond] = p.patch["status"]["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == (CONDITION_TYPE, "False", "VipPending")
    assert "loadBalancer" not in p.patch["status"]
    svc = merge_status_patch(_service(), p.patch)
    assert plan(svc, st.desired(KEY), LATER).empty  # one write per transition

    assert st.set_outcome("o", _outcome()) == {KEY}
    p = plan(svc, st.desired(KEY), LATER)
    assert p.patch is not None
    assert p.patch["status"]["conditions"][0]["reason"] == "Programmed"
    assert [e.reason for e in p.events] == ["Synced"]
    # A new tree of the applied virtual service (an edit) keeps it Programmed.
    st.set_tree(_tree())
    assert plan(merge_status_patch(svc, p.patch), st.desired(KEY), LATER).empty


def test_ready_repeats_vip_pending() -> None:
    st = HealthState()
    st.set_tree(_tree())
    want = st.desired(KEY)
    r = readiness(want.condition, want.vs_names, RuntimeView(refresh=60), {})
    assert r.condition is not None and (r.condition.status, r.condition.reason) == ("False", "VipPending")
    p = plan(_service(), want, NOW, r)
    assert p.patch is not None
    assert {(c["type"], c["reason"]) for c in p.patch["status"]["conditions"]} == {
        (CONDITION_TYPE, "VipPending"), (READY_CONDITION_TYPE, "VipPending")}


def test_problems_and_failed_applies_win_over_pending() -> None:
    st = HealthState()
    st.set_tree(_tree())
    st.set_report(SourceReport(cluster="c", source=SVC,
                               problems=(Problem(source=SVC, reason="InvalidConfiguration", message="bad"),)))
    assert st.desired(KEY).condition.reason == "InvalidConfiguration"  # type: ignore[union-attr]
    st.set_report(SourceReport(cluster="c", source=SVC))
    st.set_outcome("o", _outcome(ok=False, vips=(), error="refused"))
    want = st.desired(KEY)
    assert want.condition is not None and want.condition.reason == "ControllerError" and want.unapplied == ()


def test_a_tree_deleted_before_any_apply_takes_back_vip_pending() -> None:
    st = HealthState()
    st.set_tree(_tree())
    svc = merge_status_patch(_service(), plan(_service(), st.desired(KEY), NOW).patch or {})
    assert st.set_tree(_tree(deleted=True)) == {KEY}
    want = st.desired(KEY)
    assert want.condition is None and want.named
    p = plan(svc, want, LATER)
    assert p.patch is not None and p.patch["status"]["conditions"] is None and p.events == []


def test_an_outcome_missing_from_the_view_does_not_turn_programmed_into_pending() -> None:
    """The outcome stream lost (or behind) while the trees are there: the Service's own word is kept."""
    st = HealthState()
    st.set_tree(_tree())
    assert plan(_service([_programmed()], ("10.0.0.5",)), st.desired(KEY), LATER).empty
    # Programmed by another virtual service (since replaced, its outcome gone): the new one is pending.
    p = plan(_service([_programmed("c--shop-old")], ("10.0.0.5",)), st.desired(KEY), LATER)
    assert p.patch is not None and p.patch["status"]["conditions"][0]["reason"] == "VipPending"
    # The virtual service's deletion is on the bus: its outcome is known gone, a tree again is news.
    st.set_outcome("o", _outcome(deleted=True, vips=()))
    p = plan(_service([_programmed()], ("10.0.0.5",)), st.desired(KEY), LATER)
    assert p.patch is not None and p.patch["status"]["conditions"][0]["reason"] == "VipPending"


def test_vss_said_reads_only_a_true_programmed_condition() -> None:
    assert vss_said(_programmed("a")) == ("a",)
    assert vss_said({**_programmed(), "message": "virtualservice a, b has VIP 1.2.3.4, fd00::1"}) == ("a", "b")
    assert vss_said({**_programmed(), "status": "False"}) == ()
    assert vss_said(None) == ()


def test_a_tree_marks_a_service_only_when_what_it_should_say_changes() -> None:
    st = HealthState()
    st.set_tree(_tree())
    assert st.set_tree(_tree()) == set()  # the same tree again
    st.set_outcome("o", _outcome())
    # An edit of the applied virtual service (new members, a port): nothing to read or write until its outcome.
    assert st.set_tree(_tree()) == set()
    other = ObjRef(kind="Service", namespace="shop", name="api")
    assert st.set_tree(_tree(sources=(SVC, other))) == {("shop", "api")}  # api waits for its first apply
    assert st.set_tree(_tree(deleted=True)) == {("shop", "api")}  # web still has its live outcome
