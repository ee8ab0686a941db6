"""Health's runtime sweeps against the simulator: bulk pages, member reads only where something is down.

Real active health checks: the members are TCP listeners on 127.0.0.x that
the simulator probes every 0.5 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from albus.sim.server import SimServer
from albus.sim.testing import SimAdmin, SimClient
from services.common.config import Config, parse_config
from services.health.runtime_poller import RuntimePoller
from services.health.runtime_reader import RuntimeReader
from tests.sim.test_health import TcpListener, pool_with

CLUSTER = "c1"
VS = "c1--shop-web"


def _cfg(sim: SimServer) -> Config:
    return parse_config({
        "AKOSettings": {"clusterName": CLUSTER},
        "ControllerSettings": {"controllerHost": sim.url, "controllerVersion": "22.1.3"},
        "credentials": {"username": sim.username, "password": sim.password},
    })


@pytest.fixture
def listeners() -> Iterator[list[TcpListener]]:
    made = [TcpListener(f"127.0.3.{i}") for i in (1, 2, 3)]
    yield made
    for lst in made:
        if not lst._stop.is_set():
            lst.stop()


def _runtime_calls(admin: SimAdmin) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in admin.counters()["detail"]:
        if row["method"] == "GET":
            out[row["type"]] = out.get(row["type"], 0) + row["count"]
    return out


async def _sweep_until(poller: RuntimePoller, ok: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        await poller.sweep()
        if callable(ok) and ok():
            return
        assert time.monotonic() < deadline, "timed out waiting for the runtime view"
        await asyncio.sleep(0.2)


def _member_states(poller: RuntimePoller) -> dict[str, str]:
    out = {}
    for pool in poller.view.pools_of(VS):
        if pool.members is None:
            return {"all": "OPER_UP"} if pool.summary.all_up else {}
        out.update({m.ip: m.state for m in pool.members})
    return out


async def test_sweeps_page_the_inventory_and_read_members_only_of_a_degraded_pool(
        sim: SimServer, sim_admin: SimAdmin, sim_client: SimClient, listeners: list[TcpListener]) -> None:
    pool = pool_with(sim_client, "c1--shop-web-80", [(lst.ip, lst.port) for lst in listeners])
    sim_client.ok("PATCH", f"pool/{pool['uuid']}", {"replace": {"created_by": f"ako-{CLUSTER}"}})
    sim_client.ok("POST", "virtualservice", {"name": VS, "services": [{"port": 80}], "pool_ref": pool["url"],
                                             "created_by": f"ako-{CLUSTER}"})
    for i in range(250):  # two pages of pools, all up (no monitor)
        sim_client.ok("POST", "pool", {"name": f"c1--filler-{i}", "created_by": f"ako-{CLUSTER}",
                                       "servers": [{"ip": {"addr": "127.0.3.9", "type": "V4"}}]})
    sim_client.ok("POST", "pool", {"name": "other--pool", "created_by": "ako-other"})

    changes: list[set[str]] = []
    poller = RuntimePoller(RuntimeReader(_cfg(sim)), 0.5, changes.append)
    await _sweep_until(poller, lambda: _member_states(poller) == {"all": "OPER_UP"})
    assert len(poller.view.pools) == 251  # this cluster's only: ako-other's pool is not in the view
    assert poller.view.vss[VS].pools == (pool["uuid"],)

    sim_admin.reset_log()
    assert await poller.sweep() == set()
    # 251 pools: two pool-inventory pages and one virtualservice-inventory page; no member read.
    assert _runtime_calls(sim_admin) == {"pool-inventory": 2, "virtualservice-inventory": 1}

    listeners[1].stop()
    await _sweep_until(poller, lambda: _member_states(poller).get("127.0.3.2") == "OPER_DOWN")
    assert {k: v for k, v in _member_states(poller).items() if k != "127.0.3.2"} == {
        "127.0.3.1": "OPER_UP", "127.0.3.3": "OPER_UP"}
    sim_admin.reset_log()
    assert await poller.sweep() == set()  # nothing changed: counts as before, the last read is recent
    assert _runtime_calls(sim_admin) == {"pool-inventory": 2, "virtualservice-inventory": 1}

    listeners[1].__init__("127.0.3.2", listeners[1].port)  # type: ignore[misc]  # the same address again
    await _sweep_until(poller, lambda: _member_states(poller) == {"all": "OPER_UP"})


async def test_an_applied_vs_is_read_alone_with_its_pools(
        sim: SimServer, sim_admin: SimAdmin, sim_client: SimClient, listeners: list[TcpListener]) -> None:
    """Between sweeps, the VS an outcome names and its pools only: two filtered calls, not every page."""
    pool = pool_with(sim_client, "c1--shop-web-80", [(lst.ip, lst.port) for lst in listeners])
    sim_client.ok("PATCH", f"pool/{pool['uuid']}", {"replace": {"created_by": f"ako-{CLUSTER}"}})
    sim_client.ok("POST", "virtualservice", {"name": VS, "services": [{"port": 80}], "pool_ref": pool["url"],
                                             "created_by": f"ako-{CLUSTER}"})
    for i in range(250):  # two pages of pools that a read of one VS must not touch
        sim_client.ok("POST", "pool", {"name": f"c1--filler-{i}", "created_by": f"ako-{CLUSTER}",
                                       "servers": [{"ip": {"addr": "127.0.3.9", "type": "V4"}}]})
    poller = RuntimePoller(RuntimeReader(_cfg(sim)), 0.5, lambda _: None)
    await _sweep_until(poller, lambda: _member_states(poller) == {"all": "OPER_UP"})
    filler = next(p.summary.uuid for p in poller.view.pools.values() if p.summary.name == "c1--filler-0")

    listeners[1].stop()
    deadline = time.monotonic() + 30
    changed: set[str] = set()
    while _member_states(poller).get("127.0.3.2") != "OPER_DOWN":
        assert time.monotonic() < deadline, "the read never saw the member down"
        sim_admin.reset_log()
        changed |= await poller.read_some({VS})
        # The VS by name, its one pool by uuid, and that pool's members once its counts say one is down.
        assert _runtime_calls(sim_admin).keys() <= {"virtualservice-inventory", "pool-inventory", "pool"}
        assert _runtime_calls(sim_admin).get("pool-inventory", 0) == 1
        await asyncio.sleep(0.2)
    assert changed == {VS}
    assert len(poller.view.pools) == 251 and filler in poller.view.pools  # the others are left as they were

    sim_client.ok("DELETE", f"virtualservice/{poller.view.vss[VS].uuid}")
    assert await poller.read_some({VS}) == {VS}  # asked for and not found: gone
    assert VS not in poller.view.vss and len(poller.view.pools) == 251  # its pool waits for a complete sweep


async def test_complete_sweeps_are_paced_by_their_reads(sim: SimServer, sim_client: SimClient) -> None:
    """A sweep of many pages waits pages ÷ rate before the next one, even when the interval is shorter."""
    for i in range(250):  # two pool-inventory pages + one virtualservice-inventory page per sweep
        sim_client.ok("POST", "pool", {"name": f"c1--filler-{i}", "created_by": f"ako-{CLUSTER}",
                                       "servers": [{"ip": {"addr": "127.0.3.9", "type": "V4"}}]})

    async def sweeps_within(poller: RuntimePoller, seconds: float, enough: int) -> int:
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and poller.sweeps < enough:
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 10)
        return poller.sweeps

    # Unpaced, a 0.1 s interval sweeps again and again.
    assert await sweeps_within(RuntimePoller(RuntimeReader(_cfg(sim)), 0.1, lambda _: None), 20, 4) >= 4
    paced = RuntimePoller(RuntimeReader(_cfg(sim)), 0.1, lambda _: None, sweep_calls_per_second=1.0)
    assert paced.sweep_gap(3) == 3.0 and paced.sweep_gap(0) == 0.1
    # Paced at one read a second, the first sweep's three reads hold the next one off for 3 s.
    assert await sweeps_within(paced, 2.0, 2) == 1
    assert paced.reader.calls == 3


def test_a_sweep_holds_one_page_of_the_inventory_at_a_time(sim: SimServer, sim_client: SimClient) -> None:
    """The inventory is read as it is used: at 10,000 Services all its pages decoded at once were a peak
    of health's memory (bench/README.md, "Memory")."""
    for i in range(450):  # three pool-inventory pages
        sim_client.ok("POST", "pool", {"name": f"c1--filler-{i}", "created_by": f"ako-{CLUSTER}"})
    reader = RuntimeReader(_cfg(sim))
    items = reader._pages("pool-inventory")
    first = [next(items) for _ in range(200)]
    assert reader.calls == 1, "the first page's items come before the second page is read"
    next(items)
    assert reader.calls == 2
    assert len(first) + 1 + sum(1 for _ in items) == 450
    assert reader.calls == 3
    assert len(reader.pools()) == 450
