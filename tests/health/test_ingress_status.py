"""Ingress status from the outcomes of the VSes that serve it, and Warnings from translation (pure planning)."""

from __future__ import annotations

from typing import Any

from services.common.contracts import ApplyOutcome, ObjRef, Problem, SourceReport
from services.health.ingress_status import IngressState, plan

ING = ObjRef(kind="Ingress", namespace="web", name="shop")
OTHER = ObjRef(kind="Ingress", namespace="web", name="blog")
KEY = ("web", "shop")


def outcome(vs: str, vips: tuple[str, ...], *sources: ObjRef, deleted: bool = False) -> ApplyOutcome:
    return ApplyOutcome(cluster="c1", tenant="admin", vs_name=vs, checksum="x", ok=True, vips=vips,
                        deleted=deleted, sources=sources)


def ingress(lb: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"kind": "Ingress", "metadata": {"name": "shop", "namespace": "web", "resourceVersion": "7"},
            "status": {"loadBalancer": {"ingress": lb}} if lb is not None else {}}


def test_vips_of_every_live_vs_naming_the_ingress() -> None:
    st = IngressState()
    assert st.set_outcome("o.a", outcome("c1--Shared-L7-1", ("127.1.0.9",), ING, OTHER)) == {KEY, ("web", "blog")}
    st.set_outcome("o.b", outcome("c1--Shared-L7-0", ("127.1.0.5",), ING))
    assert st.vips(KEY) == ["127.1.0.5", "127.1.0.9"] and st.known(KEY)
    # The shard dropped it (its host moved away): only the other VS counts; the dropped one touches it.
    assert st.set_outcome("o.a", outcome("c1--Shared-L7-1", ("127.1.0.9",), OTHER)) == {KEY, ("web", "blog")}
    assert st.vips(KEY) == ["127.1.0.5"]
    st.set_outcome("o.b", outcome("c1--Shared-L7-0", (), ING, deleted=True))
    assert st.vips(KEY) == []


def test_reports_of_other_kinds_are_not_ingresses() -> None:
    st = IngressState()
    assert st.set_report(SourceReport(cluster="c1", source=ObjRef(kind="Service", namespace="web", name="shop"))) \
        == set()
    assert not st.known(KEY)


def test_plan_writes_only_a_difference_and_announces_new_problems_once() -> None:
    p = plan(ingress(), ["127.1.0.5"], [], set())
    assert p.patch == {"metadata": {"resourceVersion": "7"},
                       "status": {"loadBalancer": {"ingress": [{"ip": "127.1.0.5"}]}}}
    assert p.events == []
    assert plan(ingress([{"ip": "127.1.0.5"}]), ["127.1.0.5"], [], set()).patch is None
    problems = [("ServiceNotFound", "host a path /: Service web/x does not exist")]
    p = plan(ingress([{"ip": "127.1.0.5"}]), ["127.1.0.5"], problems, set())
    assert p.patch is None
    assert [(e.type, e.reason) for e in p.events] == [("Warning", "ServiceNotFound")]
    assert "Ingress web/shop" in p.events[0].note
    assert plan(ingress([{"ip": "127.1.0.5"}]), ["127.1.0.5"], problems, set(problems)).events == []


def test_plan_clears_the_address_when_no_vs_serves_it() -> None:
    p = plan(ingress([{"ip": "127.1.0.5"}]), [], [], set())
    assert p.patch is not None and p.patch["status"] == {"loadBalancer": {"ingress": []}}


def test_report_problems_feed_the_plan() -> None:
    st = IngressState()
    st.set_report(SourceReport(cluster="c1", source=ING, problems=(
        Problem(source=ING, reason="DuplicateHostPath", message="m"),)))
    assert st.known(KEY) and st.problems(KEY) == [("DuplicateHostPath", "m")]


def test_a_failed_apply_of_a_serving_vs_is_a_warning_once_and_goes_with_its_success() -> None:
    st = IngressState()
    failed = ApplyOutcome(cluster="c1", tenant="admin", vs_name="c1--Shared-L7-0", checksum="x", ok=False,
                          error="create pool (macro): 400 bad pool", sources=(ING, OTHER))
    assert st.set_outcome("o.a", failed) == {KEY, ("web", "blog")}
    st.set_report(SourceReport(cluster="c1", source=ING, problems=(
        Problem(source=ING, reason="ServiceNotFound", message="m"),)))
    want = [("ServiceNotFound", "m"), ("SyncFailed", "virtualservice c1--Shared-L7-0: create pool (macro): 400 bad pool")]
    assert st.warnings(KEY) == want
    p = plan(ingress(), st.vips(KEY), st.warnings(KEY), {want[0]})
    assert p.patch is None  # no VIP yet, and none written
    [ev] = p.events
    assert (ev.type, ev.reason, ev.action) == ("Warning", "SyncFailed", "Apply")
    assert ev.note == "Ingress web/shop: virtualservice c1--Shared-L7-0: create pool (macro): 400 bad pool"
    assert plan(ingress(), st.vips(KEY), st.warnings(KEY), set(want)).events == []  # announced once
    # Applied at last: no failure left to announce, the VIP is written.
    st.set_outcome("o.a", outcome("c1--Shared-L7-0", ("127.1.0.5",), ING, OTHER))
    assert st.failures(KEY) == [] and st.vips(KEY) == ["127.1.0.5"]
    st.set_outcome("o.a", outcome("c1--Shared-L7-0", (), ING, OTHER, deleted=True))
    assert st.failures(KEY) == []
