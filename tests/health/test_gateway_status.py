"""Gateway API status from translation's verdict and the apply outcome (pure planning)."""

from __future__ import annotations

from typing import Any

from services.common.contracts import (
    ApplyOutcome,
    GatewayStatus,
    ListenerStatus,
    ObjRef,
    RouteParentStatus,
    SourceReport,
)
from services.health import gateway_status as gs

GW = ObjRef(kind="Gateway", namespace="nf", name="core")
SVC = ObjRef(kind="Service", namespace="nf", name="sig")
NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"
ST = GatewayStatus(generation=4, listeners=(ListenerStatus(name="sig", attached=1, supported_kinds=("/Service",)),))


def outcome(ok: bool = True, vips: tuple[str, ...] = ("127.1.0.5",), deleted: bool = False) -> ApplyOutcome:
    return ApplyOutcome(cluster="c1", tenant="admin", vs_name="c1--nf-core", checksum="x", ok=ok, vips=vips,
                        deleted=deleted, sources=(GW, SVC), error=None if ok else "boom")


def gw(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"kind": "Gateway", "metadata": {"name": "core", "namespace": "nf", "resourceVersion": "9",
                                            "generation": 4}, "status": status or {}}


def test_programmed_only_with_an_applied_vs_and_a_vip() -> None:
    assert gs.programmed(ST, None)[:2] == (False, "Pending")
    assert gs.programmed(ST, outcome(ok=False))[:2] == (False, "Pending")
    assert gs.programmed(ST, outcome(vips=()))[:2] == (False, "AddressNotAssigned")
    assert gs.programmed(ST, outcome())[:2] == (True, "Programmed")
    rejected = ST.model_copy(update={"accepted": False, "reason": "Invalid"})
    assert gs.programmed(rejected, outcome())[:2] == (False, "Invalid")


def test_full_status_then_nothing_to_write_and_transition_times_kept() -> None:
    want = gs.gateway_status(gw(), ST, outcome(), NOW)
    assert want["addresses"] == [{"type": "IPAddress", "value": "127.1.0.5"}]
    assert [(c["type"], c["status"], c["observedGeneration"]) for c in want["conditions"]] == [
        ("Accepted", "True", 4), ("Programmed", "True", 4)]
    (li,) = want["listeners"]
    assert li["supportedKinds"] == [{"group": "", "kind": "Service"}] and li["attachedRoutes"] == 1
    assert [(c["type"], c["status"]) for c in li["conditions"]] == [
        ("Accepted", "True"), ("Programmed", "True"), ("ResolvedRefs", "True"), ("Conflicted", "False")]
    p = gs.plan(gw(), want, "Gateway")
    assert p.patch == {"metadata": {"resourceVersion": "9"}, "status": want}
    assert [(e.type, e.reason) for e in p.events] == [("Normal", "Synced")]
    # Written: the same view an hour later changes nothing and says nothing.
    again = gs.gateway_status(gw(want), ST, outcome(), LATER)
    assert again == want
    assert gs.plan(gw(want), again, "Gateway").empty


def test_vs_deleted_drops_addresses_and_programmed_moves_its_transition_time() -> None:
    first = gs.gateway_status(gw(), ST, outcome(), NOW)
    after = gs.gateway_status(gw(first), ST, None, LATER)
    assert after["addresses"] == []
    prog = next(c for c in after["conditions"] if c["type"] == "Programmed")
    acc = next(c for c in after["conditions"] if c["type"] == "Accepted")
    assert (prog["status"], prog["lastTransitionTime"]) == ("False", LATER)
    assert acc["lastTransitionTime"] == NOW
    assert gs.plan(gw(first), after, "Gateway").events == []


def test_not_accepted_is_a_warning_event_once() -> None:
    bad = ST.model_copy(update={"accepted": False, "reason": "UnsupportedAddress", "message": "spec.addresses: x"})
    want = gs.gateway_status(gw(), bad, None, NOW)
    p = gs.plan(gw(), want, "Gateway")
    assert [(e.type, e.reason) for e in p.events] == [("Warning", "UnsupportedAddress")]
    assert gs.plan(gw(want), gs.gateway_status(gw(want), bad, None, LATER), "Gateway").empty


def test_state_follows_reports_and_gateway_outcomes_only() -> None:
    st = gs.GatewayState()
    assert st.set_report(SourceReport(cluster="c1", source=SVC)) == set()
    assert st.set_report(SourceReport(cluster="c1", source=GW, gateway=ST)) == {("nf", "core")}
    cls = ObjRef(kind="GatewayClass", name="avi-lb")
    assert st.set_report(SourceReport(cluster="c1", source=cls, gateway=ST)) == {("", "avi-lb")}
    assert st.set_outcome("o1", outcome()) == {("nf", "core")}
    assert st.outcome(("nf", "core")) == outcome()
    assert st.set_outcome("o1", outcome(deleted=True)) == {("nf", "core")}
    assert st.outcome(("nf", "core")) is None
    assert st.set_report(SourceReport(cluster="c1", source=GW)) == {("nf", "core")}
    assert ("nf", "core") not in st.statuses


def test_class_status() -> None:
    cls = {"kind": "GatewayClass", "metadata": {"name": "avi-lb", "resourceVersion": "1"}, "status": {}}
    want = gs.class_status(cls, GatewayStatus(generation=1, accepted=False, reason="InvalidParameters"), NOW)
    assert [(c["type"], c["status"], c["reason"]) for c in want["conditions"]] == [
        ("Accepted", "False", "InvalidParameters")]
    assert [e.reason for e in gs.plan(cls, want, "GatewayClass").events] == ["InvalidParameters"]


def test_route_parents_keep_other_controllers_entries_and_settle() -> None:
    theirs = {"parentRef": {"name": "x"}, "controllerName": "example.com/lb", "conditions": []}
    route = {"kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "shop", "resourceVersion": "3"},
             "status": {"parents": [theirs]}}
    st = GatewayStatus(generation=2, parents=(
        RouteParentStatus(gateway_namespace="shop", gateway_name="web", section_name="http"),
        RouteParentStatus(gateway_namespace="shop", gateway_name="api", resolved_refs=False,
                          refs_reason="RefNotPermitted", message="no grant")))
    want = gs.route_status(route, st, NOW)
    assert want["parents"][0] == theirs
    mine = want["parents"][1:]
    assert [p["parentRef"] for p in mine] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "shop", "name": "web",
         "sectionName": "http"},
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "shop", "name": "api"}]
    assert {p["controllerName"] for p in mine} == {"ako.vmware.com/avi-lb"}
    assert [(c["type"], c["status"], c["reason"]) for c in mine[1]["conditions"]] == [
        ("Accepted", "True", "Accepted"), ("ResolvedRefs", "False", "RefNotPermitted")]
    p = gs.plan(route, want, "HTTPRoute")
    assert p.patch is not None and p.events == []
    written = {**route, "status": want}
    assert gs.plan(written, gs.route_status(written, st, LATER), "HTTPRoute").empty
    # The Gateway "web" goes: its entry goes, "api"'s and the other controller's stay.
    after = GatewayStatus(generation=2, parents=st.parents[1:])
    again = gs.route_status(written, after, LATER)
    assert [p["parentRef"].get("name") for p in again["parents"]] == ["x", "api"]
    # No albus Gateway left: an empty parent list leaves only the other controller's entry.
    gone = gs.route_status(written, GatewayStatus(generation=2), LATER)
    assert gone == {"parents": [theirs]} and gs.plan(written, gone, "HTTPRoute").patch is not None


def test_one_route_loop_keys_every_route_kind_apart() -> None:
    st = gs.GatewayState(gs.ROUTE_KINDS)
    tcp = ObjRef(kind="TCPRoute", namespace="nf", name="sip")
    udp = ObjRef(kind="UDPRoute", namespace="nf", name="sip")
    keys = {k for r in (tcp, udp) for k in st.set_report(SourceReport(cluster="c1", source=r, gateway=ST))}
    assert keys == {("nf", "TCPRoute/sip"), ("nf", "UDPRoute/sip")}
    assert [gs.route_of(k) for k in sorted(keys)] == [("TCPRoute", "nf", "sip"), ("UDPRoute", "nf", "sip")]
    assert st.set_report(SourceReport(cluster="c1", source=GW, gateway=ST)) == set()


def test_a_listener_whose_refs_go_bad_is_a_warning_event_once() -> None:
    bad = ST.model_copy(update={"listeners": (ListenerStatus(
        name="https", resolved_refs=False, refs_reason="InvalidCertificateRef",
        message="certificateRef Secret nf/cert: tls.key does not match"),)})
    good = gs.gateway_status(gw(), ST.model_copy(update={"listeners": (ListenerStatus(name="https"),)}),
                             outcome(), NOW)
    want = gs.gateway_status(gw(good), bad, outcome(), LATER)
    events = gs.plan(gw(good), want, "Gateway").events
    assert [(e.type, e.reason) for e in events] == [("Warning", "InvalidCertificateRef")]
    assert "listener https" in events[0].note and "does not match" in events[0].note
    assert gs.plan(gw(want), gs.gateway_status(gw(want), bad, outcome(), LATER), "Gateway").empty
