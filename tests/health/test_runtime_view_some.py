"""RuntimeView.apply_some: a read of a few virtual services and their pools between complete sweeps."""

from __future__ import annotations

from services.health.runtime_reader import MemberState, PoolSummary, VsSummary
from services.health.runtime_view import RuntimeView


def _pool(uuid: str, up: int, servers: int = 2) -> PoolSummary:
    return PoolSummary(name=f"p-{uuid}", uuid=uuid, state="OPER_UP" if up else "OPER_DOWN", servers=servers,
                       enabled=servers, up=up)


def _vs(name: str, *pools: str, state: str = "OPER_UP") -> VsSummary:
    return VsSummary(name=name, uuid=f"u-{name}", state=state, reason="", pools=pools)


def _loaded() -> RuntimeView:
    view = RuntimeView(refresh=30.0)
    view.apply({"p1": _pool("p1", 2), "p2": _pool("p2", 2), "shared": _pool("shared", 2)},
               {"a": _vs("a", "p1", "shared"), "b": _vs("b", "p2", "shared"), "c": _vs("c", "p2")}, {}, 0.0)
    return view


def test_only_what_was_read_changes() -> None:
    view = _loaded()
    down = (MemberState("10.0.0.1", 80, "OPER_UP", ""), MemberState("10.0.0.2", 80, "OPER_DOWN", "refused"))
    assert view.apply_some({"c"}, {"p2": _pool("p2", 1)}, {"c": _vs("c", "p2")}, {"p2": down}, 1.0) == {"b", "c"}
    assert view.pools["p2"].members == down
    assert view.pools["p1"].summary.up == 2 and view.vss["a"].pools == ("p1", "shared")


def test_a_read_that_finds_nothing_new_changes_nothing() -> None:
    view = _loaded()
    assert view.apply_some({"a"}, {"p1": _pool("p1", 2), "shared": _pool("shared", 2)},
                           {"a": _vs("a", "p1", "shared")}, {}, 1.0) == set()


def test_a_shared_pool_that_changed_changes_every_vs_using_it() -> None:
    view = _loaded()
    changed = view.apply_some({"a"}, {"p1": _pool("p1", 2), "shared": _pool("shared", 0)},
                              {"a": _vs("a", "p1", "shared")}, {}, 1.0)
    assert changed == {"a", "b"}


def test_a_vs_asked_for_and_not_found_is_gone_but_its_pools_stay_for_the_sweep() -> None:
    view = _loaded()
    assert view.apply_some({"a"}, {}, {}, {}, 1.0) == {"a"}
    assert "a" not in view.vss and {"p1", "shared"} <= set(view.pools)
    assert view.apply(  # the next complete sweep drops the pool nobody reads any more
        {"p2": _pool("p2", 2), "shared": _pool("shared", 2)}, {"b": _vs("b", "p2", "shared"), "c": _vs("c", "p2")},
        {}, 2.0) == (set(), {"p1"})
    assert "p1" not in view.pools
