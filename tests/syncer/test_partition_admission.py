"""A backlog is applied a few trees at a time, not all at once (a replay of thousands held the lease renewals up)."""

from __future__ import annotations

from syncer_helpers import Outcomes, make_client, one_partition_trees, running_worker, syncer_config, until

from albus.broker import NatsServer
from albus.sim.server import SimServer
from services.common import subjects
from services.common.bus import Bus
from services.common.contracts import ApplyOutcome, VsTree
from services.syncer.apply import Fence, TreeApplier
from services.syncer.avi_client import ControllerClient
from services.syncer.cache import ObjectCache

C = "admit1"


class CountingApplier(TreeApplier):
    """Counts the trees inside ``apply`` at once."""

    inside = 0
    most = 0

    async def apply(self, tree: VsTree, fence: Fence | None = None) -> ApplyOutcome:
        self.inside += 1
        self.most = max(self.most, self.inside)
        try:
            return await (super().apply(tree, fence) if fence else super().apply(tree))
        finally:
            self.inside -= 1


async def test_a_backlog_is_admitted_a_few_trees_at_a_time(
    sim: SimServer, nats_server: NatsServer, client_factory: list[ControllerClient]
) -> None:
    bus = await Bus.connect(nats_server.url, "admission-test")
    await bus.ensure_streams()
    client = make_client(syncer_config(sim, C), client_factory)
    applier = CountingApplier(client, ObjectCache(client, C), max_in_progress=1)  # admits 2
    # Trees of one partition, all on the bus before the worker starts: one replay.
    trees = one_partition_trees(C, 8)
    for t in trees:
        await bus.publish(subjects.avi_tree(C, t.tenant, t.vs_name), t)
    outcomes = Outcomes()

    async with running_worker(bus, C, trees[0].vs_name, applier, outcomes.publish) as worker:
        await until(lambda: len(outcomes) == len(trees) and worker.settled)
        assert all(o.ok for o in outcomes)
        assert applier.most <= 2
