"""An edit to a VS that stands passes a backlog of creations (issue #13, scenario 2: priority under load).

The creations' macro calls are slowed by the simulator's latency injection;
the order is read from the simulator's request log (entries in completion
order), not from timing.
"""

from __future__ import annotations

import asyncio

from syncer_helpers import Outcomes, make_client, running_worker, syncer_config, until
from syncer_trees import l4_tree

from albus.broker import NatsServer
from albus.sim.server import SimServer
from albus.sim.testing import SimAdmin
from services.common import subjects
from services.common.bus import Bus
from services.syncer.apply import TreeApplier
from services.syncer.avi_client import ControllerClient
from services.syncer.cache import ObjectCache

C = "prio1"
BACKLOG = 16


def _macro_creations(admin: SimAdmin) -> list[int]:
    return [r["seq"] for r in admin.requests(method="POST") if r["path"].rstrip("/").endswith("/api/macro")]


async def test_an_edit_is_applied_before_the_creation_backlog_drains(
    sim: SimServer, sim_admin: SimAdmin, nats_server: NatsServer, client_factory: list[ControllerClient]
) -> None:
    bus = await Bus.connect(nats_server.url, "priority-test")
    await bus.ensure_streams()
    client = make_client(syncer_config(sim, C, concurrency=2), client_factory)
    applier = TreeApplier(client, ObjectCache(client, C), max_in_progress=2)  # 2 writing, 4 admitted
    hot = l4_tree(C, "hot")
    part = subjects.partition_of(C, hot.vs_name)
    names = [f"new-{i}" for i in range(5000) if subjects.partition_of(C, f"{C}--default-new-{i}") == part]
    backlog = [l4_tree(C, name) for name in names[:BACKLOG]]
    assert len(backlog) == BACKLOG
    outcomes = Outcomes()

    async with running_worker(bus, C, hot.vs_name, applier, outcomes.publish) as worker:
        await bus.publish(subjects.avi_tree(C, hot.tenant, hot.vs_name), hot)
        await until(lambda: any(o.vs_name == hot.vs_name for o in outcomes))
        await asyncio.to_thread(sim_admin.reset_log)  # the log from here: the backlog and the edit
        # Every creation from now on waits 0.8 s at the controller: a backlog forms at the gates (the
        # edit comes a few creations in; the margin is for a slow delivery on a loaded machine).
        await asyncio.to_thread(sim_admin.add_fault, method="POST", path="^/api/macro", latency_ms=800)
        for t in backlog:
            await bus.publish(subjects.avi_tree(C, t.tenant, t.vs_name), t)

        async def first_creation_done() -> None:
            while not await asyncio.to_thread(_macro_creations, sim_admin):
                await asyncio.sleep(0.05)
        await asyncio.wait_for(first_creation_done(), 60)
        edited = l4_tree(C, "hot", endpoints=["10.0.0.1", "10.0.0.3"])
        await bus.publish(subjects.avi_tree(C, edited.tenant, edited.vs_name), edited)

        await until(lambda: sum(o.vs_name != hot.vs_name for o in outcomes) >= BACKLOG and worker.settled, 120)
        assert all(o.ok for o in outcomes)
        assert [o.writes for o in outcomes if o.vs_name == hot.vs_name][-1] > 0
    pool = f"{hot.vs_name}-TCP-80"
    edits = [r["seq"] for r in sim_admin.requests(method="PUT") if r["name"] == pool or pool in r["path"]]
    assert len(edits) == 1, sim_admin.requests(method="PUT")
    creations = _macro_creations(sim_admin)
    assert len(creations) == BACKLOG
    # In FIFO order the edit waits for every creation admitted before it (all but the first few);
    # in the edit lane it takes the next free slot at each gate: most of the backlog comes after it.
    after = sum(seq > edits[0] for seq in creations)
    assert after >= BACKLOG // 2, f"only {after} of {BACKLOG} creations were applied after the edit"
