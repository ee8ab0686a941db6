"""The health checks' scheduler: members whose result cannot change are never in a round, rounds are
bounded per pass of the loop and in flight, and every due pool is still checked.

In-process on a Controller's Health (no server): what is asserted is the scheduler's bookkeeping and
the states it produces, not timings.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import pytest

from albus.sim import health as health_mod
from albus.sim.app import Config, Controller
from albus.sim.health import NOT_PROBED
from albus.sim.seed import seed_system
from albus.sim.store import Record

pytestmark = pytest.mark.sim


async def until(cond: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.01)


def pool(ctl: Controller, name: str, ips: list[str], monitor: str = "System-TCP", port: int = 1) -> Record:
    body: dict[str, Any] = {"name": name, "servers": [{"ip": {"addr": ip, "type": "V4"}, "port": port} for ip in ips],
                            "health_monitor_refs": [f"/api/healthmonitor/?name={monitor}"]}
    with ctl.store.transaction():
        return ctl.objects.create("pool", "admin", body)


@pytest.fixture
async def ctl() -> Any:
    c = Controller(Config())
    seed_system(c.objects)
    c.health.interval = 0.2
    c.health.start()
    yield c
    await c.health.stop()


async def test_members_with_a_fixed_result_are_never_in_a_round(ctl: Controller) -> None:
    pools = [pool(ctl, f"far-{i}", ["10.1.0.1", "10.1.0.2"]) for i in range(50)]
    pools += [pool(ctl, f"udp-{i}", ["127.0.0.1"], monitor="System-UDP") for i in range(50)]
    await asyncio.sleep(0)  # the store hooks' replans run on the next pass
    assert ctl.health._due == [] and ctl.health._rounds == {}
    for p in pools:
        for s in p.data["servers"]:
            st = ctl.health.server_status(p, s)
            assert st.state == "OPER_UP"
            assert st.reason == ([NOT_PROBED] if p.name.startswith("far") else [])
    await asyncio.sleep(0.5)  # two intervals: still nothing scheduled
    assert ctl.health._due == [] and ctl.health._rounds == {}


async def test_a_pool_mixing_both_kinds_probes_only_the_local_member(ctl: Controller) -> None:
    p = pool(ctl, "mixed", ["10.1.0.1", "127.0.0.1"])
    await until(lambda: all(ctl.health.server_status(p, s).state != "OPER_CREATING" for s in p.data["servers"]))
    far, near = (ctl.health.server_status(p, s) for s in p.data["servers"])
    assert (far.state, far.reason) == ("OPER_UP", [NOT_PROBED])
    assert near.state == "OPER_DOWN"  # nothing listens on 127.0.0.1:1
    assert [u for (_, _, u) in ctl.health._due] == [p.uuid] or p.uuid in ctl.health._rounds


async def test_rounds_bounded_per_pass_and_in_flight_and_all_pools_checked(
        ctl: Controller, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health_mod, "ROUNDS_PER_TURN", 3)
    monkeypatch.setattr(health_mod, "MAX_ROUNDS", 7)
    started: list[int] = []  # rounds started in each pass of the loop
    real_round = ctl.health._round

    async def counted(uuid: str, plan: int) -> None:
        started[-1] += 1
        await real_round(uuid, plan)

    monkeypatch.setattr(ctl.health, "_round", counted)
    pools = [pool(ctl, f"local-{i}", ["127.0.0.1"]) for i in range(60)]

    def checked() -> bool:
        return all(ctl.health.server_status(p, p.data["servers"][0]).state == "OPER_DOWN" for p in pools)

    deadline = time.monotonic() + 60
    while not checked():
        assert time.monotonic() < deadline, "not every pool was checked before the deadline"
        started.append(0)
        await asyncio.sleep(0)
        assert len(ctl.health._rounds) <= 7
    # a round's task counts when it first runs, one pass after the scheduler made it
    assert max(started) <= 3 and sum(started) >= 60


async def test_a_replanned_pool_drops_its_round_and_old_members(ctl: Controller) -> None:
    p = pool(ctl, "moving", ["127.0.0.1"])
    await asyncio.sleep(0)
    assert p.uuid in ctl.health._plan
    with ctl.store.transaction():
        moved = ctl.objects.replace(p, {"name": "moving", "servers": [{"ip": {"addr": "10.9.9.9", "type": "V4"},
                                                                       "port": 1}],
                                        "health_monitor_refs": ["/api/healthmonitor/?name=System-TCP"]})
    await asyncio.sleep(0)
    # now nothing of it needs a probe: no plan, no round, no state of the old member
    assert p.uuid not in ctl.health._plan
    st = ctl.health.server_status(moved, moved.data["servers"][0])
    assert (st.state, st.reason) == ("OPER_UP", [NOT_PROBED])
    await asyncio.sleep(0.5)
    assert p.uuid not in ctl.health._rounds
    assert ctl.health.states.get((p.uuid, "127.0.0.1", 1)) is None


async def test_failed_probes_leave_no_cyclic_garbage(ctl: Controller) -> None:
    p = pool(ctl, "refused", ["127.0.0.1"])  # nothing listens on 127.0.0.1:1
    hm = ctl.health._monitor(p)
    assert hm is not None
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            ok, reason = await ctl.health._probe(hm, p.data["servers"][0], p, 2.0)
            assert not ok and reason.startswith("Connect failed")
        garbage = gc.collect()
    finally:
        gc.enable()
    # ~47 objects per failed connect when the error's traceback is kept
    assert garbage < 20 * 5
