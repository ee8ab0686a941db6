"""A late lease renewal must delay a VS, never drop it (seen under load: a VS left unapplied)."""

from __future__ import annotations

import asyncio

from nats.errors import TimeoutError as NatsTimeoutError
from syncer_helpers import Outcomes, make_applier, running_worker, until
from syncer_trees import l4_tree

from albus.broker import NatsServer
from albus.sim.server import SimServer
from services.common import subjects
from services.common.bus import Bus
from services.syncer.avi_client import ControllerClient
from services.syncer.leases import LeaseLost

C = "fence1"


async def test_a_fenced_apply_is_retried_and_the_partition_is_not_settled_meanwhile(
    sim: SimServer, nats_server: NatsServer, client_factory: list[ControllerClient]
) -> None:
    bus = await Bus.connect(nats_server.url, "fence-test")
    await bus.ensure_streams()
    tree = l4_tree(C, "web")
    part = subjects.partition_of(C, tree.vs_name)
    fenced = asyncio.Event()  # the fence refuses until this is set (renewal overdue)
    refusals = 0

    async def fence() -> None:
        nonlocal refusals
        if not fenced.is_set():
            refusals += 1
            raise LeaseLost(f"partition {part}: renewal overdue")

    outcomes = Outcomes()

    await bus.publish(subjects.avi_tree(C, tree.tenant, tree.vs_name), tree)
    async with running_worker(bus, C, tree.vs_name, make_applier(sim, C, client_factory), outcomes.publish, fence,
                              retry_base=0.05) as worker:
        await until(lambda: refusals >= 2, 30)
        assert not worker.settled and not outcomes
        fenced.set()  # the renewal went through after all
        await until(lambda: bool(outcomes) and worker.settled, 30)
        assert outcomes[-1].ok and outcomes[-1].vs_name == tree.vs_name


async def test_a_fenced_vs_waits_for_the_next_renewal_rather_than_polling(
    sim: SimServer, nats_server: NatsServer, client_factory: list[ControllerClient]
) -> None:
    """Thousands of fenced VSes polling every retry_base crowded the loop that renews the leases."""
    bus = await Bus.connect(nats_server.url, "fence-renewal-test")
    await bus.ensure_streams()
    tree = l4_tree(C, "renewal")
    part = subjects.partition_of(C, tree.vs_name)
    allowed = asyncio.Event()  # the lease renewed: the fence passes
    renewal = asyncio.Event()
    refusals = asked = 0

    async def fence() -> None:
        nonlocal refusals
        if not allowed.is_set():
            refusals += 1
            raise LeaseLost(f"partition {part}: renewal overdue")

    def next_renewal() -> asyncio.Event:
        nonlocal asked
        asked += 1
        return renewal

    outcomes = Outcomes()

    # A retry timer far beyond the test's deadlines: only the renewal can let the VS through.
    await bus.publish(subjects.avi_tree(C, tree.tenant, tree.vs_name), tree)
    async with running_worker(bus, C, tree.vs_name, make_applier(sim, C, client_factory), outcomes.publish, fence,
                              retry_base=0.01, retry_max=3600.0, next_renewal=next_renewal) as worker:
        await until(lambda: asked >= 1, 30)
        assert refusals == 1 and not outcomes and not worker.settled
        allowed.set()
        renewal.set()
        await until(lambda: bool(outcomes) and worker.settled, 30)
        assert outcomes[-1].ok and refusals == 1


async def test_a_vs_that_failed_without_an_outcome_keeps_the_partition_unsettled(
    sim: SimServer, nats_server: NatsServer, client_factory: list[ControllerClient]
) -> None:
    """Seen under load: the replica reported itself settled while VSes had no outcome and no controller call."""
    bus = await Bus.connect(nats_server.url, "unsettled-test")
    await bus.ensure_streams()
    tree = l4_tree(C, "timeout")
    healthy = asyncio.Event()
    checks = 0

    async def fence() -> None:  # the lease check's request times out on a crowded loop
        nonlocal checks
        checks += 1
        if not healthy.is_set():
            raise NatsTimeoutError

    outcomes = Outcomes()

    # Its retry far beyond the test's deadlines: the state after the failure is stable while looked at.
    await bus.publish(subjects.avi_tree(C, tree.tenant, tree.vs_name), tree)
    async with running_worker(bus, C, tree.vs_name, make_applier(sim, C, client_factory), outcomes.publish, fence,
                              retry_base=3600.0, retry_max=3600.0) as worker:
        await until(lambda: checks == 1 and bool(worker.slots)
                    and all(s.failures == 1 for s in worker.slots.values()), 30)
        assert worker.follower is not None and worker.follower.caught_up.is_set()
        assert not outcomes and not worker.settled
        healthy.set()
        await worker.resync()  # apply again now rather than after the back-off
        await until(lambda: bool(outcomes) and worker.settled, 30)
        assert outcomes[-1].ok
