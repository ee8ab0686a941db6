"""A tree is named by its subject and decoded once, when applied; one that cannot be read holds nothing up."""

from __future__ import annotations

from syncer_helpers import Outcomes, make_client, one_partition_trees, running_worker, syncer_config, until

from albus.broker import NatsServer
from albus.sim.server import SimServer
from services.common import subjects
from services.common.bus import Bus
from services.syncer.apply import TreeApplier
from services.syncer.avi_client import ControllerClient
from services.syncer.cache import ObjectCache

C = "subj1"


def test_a_tree_subject_names_its_cluster_tenant_and_vs() -> None:
    assert subjects.parse_avi_tree(subjects.avi_tree("c.1", "admin", "c.1--ns-web")) == ("c.1", "admin", "c.1--ns-web")
    assert subjects.parse_avi_tree(subjects.outcome("c1", "admin", "c1--ns-web")) is None
    assert subjects.parse_avi_tree(subjects.trees_synced("c1")) is None


async def test_unreadable_and_misfiled_trees_are_skipped_and_the_partition_settles(
    sim: SimServer, nats_server: NatsServer, client_factory: list[ControllerClient]
) -> None:
    bus = await Bus.connect(nats_server.url, "subject-test")
    await bus.ensure_streams()
    client = make_client(syncer_config(sim, C), client_factory)
    applier = TreeApplier(client, ObjectCache(client, C))
    good, other, odd = one_partition_trees(C, 3)
    part = subjects.partition_of(C, good.vs_name)
    await bus.publish(subjects.avi_tree(C, good.tenant, good.vs_name), good)
    # ``other``'s tree on ``odd``'s subject, and bytes that are no tree on a subject of their own.
    await bus.publish(subjects.avi_tree(C, odd.tenant, odd.vs_name), other)
    await bus.js.publish(f"avi.{part}.{C}.admin.{C}--junk", b"\x93not a tree")
    outcomes = Outcomes()

    async with running_worker(bus, C, good.vs_name, applier, outcomes.publish) as worker:
        await until(lambda: bool(outcomes) and worker.settled)
        assert [o.vs_name for o in outcomes] == [good.vs_name]  # only the tree on its own subject
        assert outcomes[0].ok
