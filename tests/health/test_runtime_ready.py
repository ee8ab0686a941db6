"""The controller's runtime → the Ready condition and member Events, with no Kubernetes or controller involved."""

from __future__ import annotations

from typing import Any

from services.common.contracts import ApplyOutcome, KubeObject, ObjRef
from services.health.desired import HealthState
from services.health.endpoint_pods import EndpointPods
from services.health.event_recorder import COMBINED, EventCorrelator
from services.health.lb_ready import READY_CONDITION_TYPE, listed_down, readiness
from services.health.runtime_reader import MemberState, PoolSummary, VsSummary
from services.health.runtime_view import RuntimeView
from services.health.service_status import plan

SVC = ObjRef(kind="Service", namespace="shop", name="web")
KEY = ("shop", "web")
VS = "c--shop-web"
PODS = {"10.1.0.1": "web-a", "10.1.0.2": "web-b", "10.1.0.3": "web-c"}


def _state() -> HealthState:
    st = HealthState()
    st.set_outcome("o", ApplyOutcome(cluster="c", tenant="admin", vs_name=VS, checksum="x", ok=True,
                                     vips=("10.0.0.5",), sources=(SVC,)))
    return st


def _slices() -> EndpointPods:
    eps = EndpointPods()
    eps.set_slice(KubeObject(cluster="c", kind="EndpointSlice", namespace="shop", name="web-x", obj={
        "metadata": {"labels": {"kubernetes.io/service-name": "web"}},
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True},
                       "targetRef": {"kind": "Pod", "namespace": "shop", "name": pod}} for ip, pod in PODS.items()],
    }))
    return eps


def _sweep(view: RuntimeView, states: dict[str, str], vs_state: str = "OPER_UP",
           now: float = 0.0) -> tuple[set[str], int]:
    """Apply one sweep as the controller would answer it; return (changed VSes, member reads made)."""
    up = sum(1 for s in states.values() if s == "OPER_UP")
    pools = {"p1": PoolSummary("c--shop-web-80", "p1", "OPER_UP" if up else "OPER_DOWN", len(states), len(states),
                               up)}
    vss = {VS: VsSummary(VS, "v1", vs_state, "", ("p1",))}
    wanted = view.details_wanted(pools, now)
    details = {p.uuid: tuple(MemberState(ip, 8080, st, "Connect failed" if st == "OPER_DOWN" else "")
                             for ip, st in states.items()) for p in wanted}
    changed, _ = view.apply(pools, vss, details, now)
    return changed, len(wanted)


def _service(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "shop", "resourceVersion": "7", "generation": 3,
                         "uid": "u1"}, "spec": {"type": "LoadBalancer"}, "status": status or {}}


def _step(svc: dict[str, Any], view: RuntimeView, eps: EndpointPods, st: HealthState
          ) -> tuple[dict[str, Any], list[tuple[str, str, str]], bool]:
    """Plan against ``svc``; return the Service after the write, the Events, and whether a write was made."""
    want = st.desired(KEY)
    ready = readiness(want.condition, want.vs_names, view, eps.endpoints(KEY))
    p = plan(svc, want, "2026-01-01T00:00:00Z", ready)
    events = [(e.type, e.reason, e.note) for e in p.events]
    if p.patch is None:
        return svc, events, False
    status = dict(svc["status"])
    for k, v in p.patch["status"].items():
        status[k] = v
    return {**svc, "status": status}, events, True


def _ready(svc: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in svc["status"]["conditions"] if c["type"] == READY_CONDITION_TYPE)


def test_all_up_pools_cost_no_member_reads_and_change_nothing_when_unchanged() -> None:
    view = RuntimeView(refresh=60)
    changed, reads = _sweep(view, dict.fromkeys(PODS, "OPER_UP"))
    assert changed == {VS} and reads == 0  # the first sweep: every VS is news
    assert _sweep(view, dict.fromkeys(PODS, "OPER_UP"), now=1) == (set(), 0)


def test_a_degraded_pool_is_read_when_its_counts_change_or_the_read_is_old() -> None:
    view = RuntimeView(refresh=60)
    down = {**dict.fromkeys(PODS, "OPER_UP"), "10.1.0.2": "OPER_DOWN"}
    assert _sweep(view, down, now=0) == ({VS}, 1)
    assert _sweep(view, down, now=10) == (set(), 0)  # same counts, recent read: no call
    assert _sweep(view, down, now=70) == (set(), 1)  # refresh: read again, nothing changed
    swapped = {**dict.fromkeys(PODS, "OPER_UP"), "10.1.0.3": "OPER_DOWN"}  # same counts, other member
    assert _sweep(view, swapped, now=80) == (set(), 0)
    assert _sweep(view, swapped, now=140) == ({VS}, 1)  # found by the refresh


def test_member_down_partially_healthy_names_the_pod_once_then_up_again() -> None:
    st, eps, view = _state(), _slices(), RuntimeView(refresh=60)
    _sweep(view, dict.fromkeys(PODS, "OPER_UP"))
    svc, events, wrote = _step(_service(), view, eps, st)
    cond = _ready(svc)
    assert wrote and (cond["status"], cond["reason"], cond["observedGeneration"]) == ("True", "Programmed", 3)
    assert [r for _, r, _ in events] == ["Synced"]

    _sweep(view, {**dict.fromkeys(PODS, "OPER_UP"), "10.1.0.2": "OPER_DOWN"}, now=1)
    svc, events, wrote = _step(svc, view, eps, st)
    cond = _ready(svc)
    assert wrote and (cond["status"], cond["reason"]) == ("True", "PartiallyHealthy")
    assert "2 of 3 members up" in cond["message"] and listed_down(cond["message"]) == {"shop/web-b"}
    [(kind, reason, note)] = events
    assert (kind, reason) == ("Warning", "MemberDown") and note.startswith("pod shop/web-b is down: pool member "
                                                                           "10.1.0.2:8080")
    # One write per transition: the same runtime again writes and announces nothing.
    assert _step(svc, view, eps, st)[1:] == ([], False)

    _sweep(view, dict.fromkeys(PODS, "OPER_UP"), now=2)
    svc, events, wrote = _step(svc, view, eps, st)
    assert wrote and _ready(svc)["reason"] == "Programmed"
    assert events == [("Normal", "MemberUp", "pod shop/web-b is up again")]


def test_every_member_down_is_no_healthy_members_and_a_virtual_service_down_event() -> None:
    st, eps, view = _state(), _slices(), RuntimeView(refresh=60)
    _sweep(view, dict.fromkeys(PODS, "OPER_UP"))
    svc, _, _ = _step(_service(), view, eps, st)
    _sweep(view, dict.fromkeys(PODS, "OPER_DOWN"), vs_state="OPER_DOWN", now=1)
    svc, events, _ = _step(svc, view, eps, st)
    cond = _ready(svc)
    assert (cond["status"], cond["reason"]) == ("False", "NoHealthyMembers")
    assert listed_down(cond["message"]) == {"shop/web-a", "shop/web-b", "shop/web-c"}
    assert sorted(r for _, r, _ in events) == ["MemberDown"] * 3 + ["VirtualServiceDown"]
    _sweep(view, dict.fromkeys(PODS, "OPER_UP"), now=2)
    svc, events, _ = _step(svc, view, eps, st)
    assert sorted(r for _, r, _ in events) == ["MemberUp"] * 3 + ["VirtualServiceUp"]


def test_not_programmed_is_repeated_and_unknown_before_the_first_sweep() -> None:
    eps, view = _slices(), RuntimeView(refresh=60)
    st = HealthState()
    st.set_outcome("o", ApplyOutcome(cluster="c", tenant="admin", vs_name=VS, checksum="x", ok=True, vips=(),
                                     sources=(SVC,)))
    want = st.desired(KEY)
    r = readiness(want.condition, want.vs_names, view, eps.endpoints(KEY))
    assert r.condition is not None and (r.condition.status, r.condition.reason) == ("False", "VipPending")
    want = _state().desired(KEY)
    r = readiness(want.condition, want.vs_names, view, eps.endpoints(KEY))
    assert r.condition is not None and (r.condition.status, r.condition.reason) == ("Unknown", "HealthCheckPending")


def test_a_member_without_a_pod_is_named_by_address() -> None:
    st, view = _state(), RuntimeView(refresh=60)
    _sweep(view, {**dict.fromkeys(PODS, "OPER_UP"), "10.1.0.2": "OPER_DOWN"})
    want = st.desired(KEY)
    r = readiness(want.condition, want.vs_names, view, {})
    assert set(r.down) == {"10.1.0.2:8080"}


def test_correlator_bumps_repeats_folds_similar_and_rate_limits_per_object() -> None:
    c = EventCorrelator(burst=25, refill_seconds=300, aggregate_max=10)
    d = c.decide("u1", "Warning", "MemberDown", "pod a down", 0)
    assert d.action == "create"
    c.written("u1", "Warning", "MemberDown", d.note, "web.1", 1)
    again = c.decide("u1", "Warning", "MemberDown", "pod a down", 1)
    assert (again.action, again.name, again.count) == ("bump", "web.1", 2)
    c.written("u1", "Warning", "MemberDown", again.note, again.name, again.count)
    notes = []
    for i in range(2, 12):  # distinct notes: after 10 similar ones they fold into one Event
        d = c.decide("u1", "Warning", "MemberDown", f"pod {i} down", i)
        if d.action == "create":
            c.written("u1", "Warning", "MemberDown", d.note, f"web.{i}", 1)
        notes.append((d.action, d.note.startswith(COMBINED)))
    assert notes[:8] == [("create", False)] * 8 and notes[8] == ("create", True) and notes[9] == ("bump", True)
    # 12 tokens used of 25; 13 more, then nothing until the bucket refills.
    actions = [c.decide("u1", "Normal", f"R{i}", "n", 20).action for i in range(14)]
    assert actions[:13] == ["create"] * 13 and actions[13] == "drop"
    assert c.decide("u2", "Normal", "R", "n", 20).action == "create"  # another object has its own bucket
    assert c.decide("u1", "Normal", "R99", "n", 20 + 300).action == "create"  # one token back after 5 minutes


def test_a_virtual_service_still_being_checked_is_not_down() -> None:
    st, eps, view = _state(), _slices(), RuntimeView(refresh=60)
    _sweep(view, dict.fromkeys(PODS, "OPER_UP"), vs_state="OPER_CREATING")  # read a moment before its members
    want = st.desired(KEY)
    r = readiness(want.condition, want.vs_names, view, eps.endpoints(KEY))
    assert r.condition is not None and (r.condition.status, r.condition.reason) == ("True", "Programmed")
    _sweep(view, dict.fromkeys(PODS, "OPER_UP"), vs_state="OPER_DISABLED", now=1)
    r = readiness(want.condition, want.vs_names, view, eps.endpoints(KEY))
    assert r.condition is not None and (r.condition.status, r.condition.reason) == ("False", "VirtualServiceDown")


def test_all_up_counts_do_not_vouch_for_a_not_ready_pod_whose_member_is_only_known_from_the_list() -> None:
    """A gated pod waits (endpoint not ready): counts that say "all up" may be another pod's member (#9)."""
    st = _state()
    eps = _slices()
    eps.set_slice(KubeObject(cluster="c", kind="EndpointSlice", namespace="shop", name="web-x", obj={
        "metadata": {"labels": {"kubernetes.io/service-name": "web"}},
        "endpoints": [{"addresses": [ip], "conditions": {"ready": pod != "web-c"},
                       "targetRef": {"kind": "Pod", "namespace": "shop", "name": pod}} for ip, pod in PODS.items()],
    }))
    view = RuntimeView(refresh=60)
    # The controller has two members, both up: web-c's is not there yet.
    first = {"10.1.0.1": "OPER_UP", "10.1.0.2": "OPER_UP"}
    assert _sweep(view, first) == ({VS}, 0)
    want = st.desired(KEY)
    ready = readiness(want.condition, want.vs_names, view, eps.endpoints(KEY))
    assert ready.up_pods == {"shop/web-a", "shop/web-b"} and ready.watch_members == {"p1"}
    # Asked for, the all-up pool's members are read every sweep, and say which are up.
    view.want_members(KEY, ready.watch_members)
    assert _sweep(view, first, now=1) == ({VS}, 1)
    assert _sweep(view, first, now=2) == (set(), 1)
    with_c = {**first, "10.1.0.3": "OPER_UP"}
    assert _sweep(view, with_c, now=3) == ({VS}, 1)
    ready = readiness(want.condition, want.vs_names, view, eps.endpoints(KEY))
    assert ready.up_pods == {"shop/web-a", "shop/web-b", "shop/web-c"}
    # Every pod ready: nothing waits, the ask is withdrawn, all-up pools cost no reads again.
    assert readiness(want.condition, want.vs_names, view, _slices().endpoints(KEY)).watch_members == frozenset()
    view.want_members(KEY, frozenset())
    assert _sweep(view, with_c, now=4) == ({VS}, 0)


def test_a_port_whose_pool_has_no_member_is_partially_healthy_and_named() -> None:
    # A port added to the Service whose EndpointSlices have no port of its name: its pool is empty and
    # the VIP resets every connection to it, while the other port serves.
    view, st, eps = RuntimeView(refresh=60), _state(), _slices()
    pools = {"p1": PoolSummary("c--shop-web-80", "p1", "OPER_UP", 3, 3, 3),
             "p2": PoolSummary("c--shop-web-8081", "p2", "OPER_DOWN", 0, 0, 0)}
    view.apply(pools, {VS: VsSummary(VS, "v1", "OPER_UP", "", ("p1", "p2"))}, {}, 0.0)
    svc, events, wrote = _step(_service(), view, eps, st)
    ready = _ready(svc)
    assert wrote and (ready["status"], ready["reason"]) == ("True", "PartiallyHealthy")
    assert ready["message"].endswith("3 of 3 members up, no member in pool c--shop-web-8081")
    assert listed_down(ready["message"]) == set()  # no member is down: no member Event to make
    assert not [e for e in events if e[1].startswith("Member")]
    # Its endpoints get the port: every member up again.
    pools["p2"] = PoolSummary("c--shop-web-8081", "p2", "OPER_UP", 3, 3, 3)
    view.apply(pools, {VS: VsSummary(VS, "v1", "OPER_UP", "", ("p1", "p2"))}, {}, 1.0)
    svc, _, wrote = _step(svc, view, eps, st)
    assert wrote and _ready(svc)["reason"] == "Programmed"
