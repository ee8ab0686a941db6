"""A VS's worker keeps nothing of its last apply while it waits for the next tree.

10,000 idle workers each holding their last decoded tree and outcome were ~290 MB of a replica.
"""

from __future__ import annotations

import gc
import weakref

from syncer_helpers import make_client, running_worker, syncer_config, until
from syncer_trees import l4_tree

from albus.broker import NatsServer
from albus.sim.server import SimServer
from services.common import subjects
from services.common.bus import Bus
from services.common.contracts import ApplyOutcome, VsTree
from services.syncer.apply import Fence, TreeApplier
from services.syncer.avi_client import ControllerClient
from services.syncer.cache import ObjectCache

C = "mem1"


class _Watched(TreeApplier):
    """The applier, keeping only weak references to the trees it was given and the outcomes it made."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.seen: list[weakref.ref[object]] = []

    async def apply(self, tree: VsTree, fence: Fence) -> ApplyOutcome:
        outcome = await super().apply(tree, fence)
        self.seen += [weakref.ref(tree), weakref.ref(outcome)]
        return outcome


async def test_an_idle_worker_holds_neither_its_last_tree_nor_its_outcome(
    sim: SimServer, nats_server: NatsServer, client_factory: list[ControllerClient]
) -> None:
    bus = await Bus.connect(nats_server.url, "memory-test")
    await bus.ensure_streams()
    client = make_client(syncer_config(sim, C), client_factory)
    applier = _Watched(client, ObjectCache(client, C))
    tree = l4_tree(C, "svc-0")
    await bus.publish(subjects.avi_tree(C, tree.tenant, tree.vs_name), tree)
    outcomes: list[bool] = []

    async def publish(o: ApplyOutcome) -> None:
        outcomes.append(o.ok)  # not the outcome itself

    vs_name = tree.vs_name
    del tree  # only the bus has it now
    async with running_worker(bus, C, vs_name, applier, publish) as worker:
        await until(lambda: bool(outcomes) and worker.settled)
        assert outcomes == [True] and len(applier.seen) == 2
        slot = next(iter(worker.slots.values()))
        assert slot.task is not None and not slot.task.done()  # waiting for the next tree
        gc.collect()  # a cycle through the apply's span or frames is not what is asked about: references
        assert [r() for r in applier.seen] == [None, None], "the idle worker keeps its last tree or outcome"
