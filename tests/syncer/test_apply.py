"""Applying trees to the real simulator: writes counted by the simulator's request log."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable

from syncer_helpers import api_calls, make_applier, make_client, our_objects, syncer_config
from syncer_trees import deleted_tree, l4_tree

from albus.sim.seed import DEFAULT_TEST_SEED
from albus.sim.server import SimServer
from albus.sim.testing import SimAdmin, SimClient
from services.syncer.apply import TreeApplier
from services.syncer.avi_client import ControllerClient
from services.syncer.cache import ObjectCache

C = "c1"
PREFIX = f"{C}--default-web"


async def test_new_tree_is_one_macro_call_and_a_replay_writes_nothing(
    sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient]
) -> None:
    applier = make_applier(sim, C, client_factory)
    tree = l4_tree(C, "web")
    out = await applier.apply(tree)
    assert out.ok, out.error
    assert api_calls(sim_admin, writes_only=True) == [("POST", "macro")]
    assert out.writes == 1
    assert len(out.vips) == 1 and out.vips[0].startswith("127.0.100.")
    assert set(out.uuids) == {f"{o.type}/{o.name}" for o in tree.objects}
    assert our_objects(sim_admin, PREFIX) == sorted((o.type, o.name) for o in tree.objects)
    # The VS on the controller uses the objects the macro call created.
    vs = next(o["data"] for o in sim_admin.objects("virtualservice") if o["name"] == PREFIX)
    assert out.uuids[f"vsvip/{PREFIX}"] in vs["vsvip_ref"]

    sim_admin.reset_log()
    again = await applier.apply(tree)
    assert again.ok and again.writes == 0
    assert api_calls(sim_admin) == [], "a replay answered from the cache needs no call at all"
    assert again.model_dump(exclude={"writes"}) == out.model_dump(exclude={"writes"})

    # A restarted syncer (empty cache) lists in bulk and still writes nothing.
    fresh = make_applier(sim, C, client_factory)
    sim_admin.reset_log()
    replay = await fresh.apply(tree)
    assert replay.ok and replay.writes == 0 and replay.vips == out.vips
    calls = api_calls(sim_admin)
    assert calls and all(m == "GET" for m, _ in calls)
    assert all("page_size=200" in r["query"] for r in sim_admin.requests() if r.get("type"))


async def test_endpoint_change_is_one_pool_put(
    sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient]
) -> None:
    applier = make_applier(sim, C, client_factory)
    first = await applier.apply(l4_tree(C, "web"))
    assert first.ok
    sim_admin.reset_log()
    out = await applier.apply(l4_tree(C, "web", endpoints=["10.0.0.1", "10.0.0.3"]))
    assert out.ok, out.error
    assert api_calls(sim_admin, writes_only=True) == [("PUT", "pool")]
    assert out.vips == first.vips, "the VIP stays"
    pool = next(o["data"] for o in sim_admin.objects("pool") if o["name"] == f"{PREFIX}-TCP-80")
    assert sorted(s["ip"]["addr"] for s in pool["servers"]) == ["10.0.0.1", "10.0.0.3"]


async def test_port_change_updates_vs_policy_and_pools_and_drops_the_old_pool(
    sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient]
) -> None:
    applier = make_applier(sim, C, client_factory)
    first = await applier.apply(l4_tree(C, "web"))
    assert first.ok
    sim_admin.reset_log()
    out = await applier.apply(l4_tree(C, "web", ports=[("TCP", 81)]))
    assert out.ok, out.error
    writes = api_calls(sim_admin, writes_only=True)
    # Create the new pool, repoint policy and VS, then delete the pool nothing uses.
    assert writes == [("POST", "pool"), ("PUT", "l4policyset"), ("PUT", "virtualservice"), ("DELETE", "pool")]
    assert our_objects(sim_admin, PREFIX) == sorted([
        ("vsvip", PREFIX), ("pool", f"{PREFIX}-TCP-81"), ("l4policyset", PREFIX), ("virtualservice", PREFIX)])
    vs = next(o["data"] for o in sim_admin.objects("virtualservice") if o["name"] == PREFIX)
    assert [s["port"] for s in vs["services"]] == [81]
    assert out.vips == first.vips


async def test_deleting_a_tree_removes_everything_vs_first(
    sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient]
) -> None:
    applier = make_applier(sim, C, client_factory)
    tree = l4_tree(C, "web", ports=[("TCP", 80), ("UDP", 53)])
    assert (await applier.apply(tree)).ok
    sim_admin.reset_log()
    # A fresh syncer: what to delete comes from the controller, not from memory.
    fresh = make_applier(sim, C, client_factory)
    out = await fresh.apply(deleted_tree(tree))
    assert out.ok and out.deleted, out.error
    deletes = api_calls(sim_admin, writes_only=True)
    assert deletes[0] == ("DELETE", "virtualservice") and deletes[-1] == ("DELETE", "vsvip")
    assert Counter(deletes) == Counter({("DELETE", "virtualservice"): 1, ("DELETE", "l4policyset"): 1,
                                        ("DELETE", "pool"): 2, ("DELETE", "vsvip"): 1})
    assert our_objects(sim_admin, PREFIX) == []
    # Deleting again is a no-op.
    sim_admin.reset_log()
    assert (await fresh.apply(deleted_tree(tree))).ok
    assert api_calls(sim_admin, writes_only=True) == []


async def test_ipam_exhaustion_fails_cleanly_and_leaves_nothing(
    sim_factory: Callable[..., SimServer], client_factory: list[ControllerClient]
) -> None:
    tiny = {"name": "tiny", "subnets": [
        {"prefix": "127.0.101.0/24", "static_ranges": ["127.0.101.10-127.0.101.10"], "type": "STATIC_IPS_FOR_VIP"}]}
    seed = {**DEFAULT_TEST_SEED, "networks": [*DEFAULT_TEST_SEED["networks"], tiny]}
    sim = sim_factory(seed=seed)
    admin = SimAdmin(sim.url)
    applier = make_applier(sim, C, client_factory)
    one = await applier.apply(l4_tree(C, "one", network="tiny", subnet=("127.0.101.0", 24)))
    assert one.ok and one.vips == ("127.0.101.10",)
    two = await applier.apply(l4_tree(C, "two", network="tiny", subnet=("127.0.101.0", 24)))
    assert not two.ok
    assert two.error is not None and "No available free IPs" in two.error
    assert two.error_status == 400
    assert our_objects(admin, f"{C}--default-two") == []
    assert two.vips == () and two.uuids == {}
    # The working tree is untouched.
    assert len(our_objects(admin, f"{C}--default-one")) == 4

    # Object by object (no macro API) a failure after some creates rolls them back.
    applier.macro_supported = False
    admin.add_fault(method="POST", path="/api/virtualservice", status=400, body={"error": "boom"}, count=1)
    admin.reset_log()
    three = await applier.apply(l4_tree(C, "three", subnet=("127.0.100.0", 24), network="vip-net"))
    assert not three.ok and three.error is not None and "boom" in three.error
    assert our_objects(admin, f"{C}--default-three") == []
    assert api_calls(admin, writes_only=True) == [
        ("POST", "vsvip"), ("POST", "pool"), ("POST", "l4policyset"), ("POST", "virtualservice"),
        ("DELETE", "l4policyset"), ("DELETE", "pool"), ("DELETE", "vsvip")]


async def test_without_a_macro_api_objects_are_created_in_order_and_that_is_remembered(
    sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient]
) -> None:
    applier = make_applier(sim, C, client_factory)
    sim_admin.add_fault(method="POST", path="/api/macro", status=404, body={"error": "not found"})
    out = await applier.apply(l4_tree(C, "web"))
    assert out.ok, out.error
    assert api_calls(sim_admin, writes_only=True) == [
        ("POST", "macro"), ("POST", "vsvip"), ("POST", "pool"), ("POST", "l4policyset"), ("POST", "virtualservice")]
    sim_admin.reset_log()
    assert (await applier.apply(l4_tree(C, "api"))).ok
    assert ("POST", "macro") not in api_calls(sim_admin, writes_only=True)


async def test_429_is_retried_with_backoff_and_succeeds(
    sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient]
) -> None:
    applier = make_applier(sim, C, client_factory)
    sim_admin.add_fault(method="POST", path="/api/macro", status=429, body={"error": "Too many requests"}, count=2)
    out = await applier.apply(l4_tree(C, "web"))
    assert out.ok, out.error
    macro = [r for r in sim_admin.requests() if r["path"].startswith("/api/macro")]
    assert [r["status"] for r in macro] == [429, 429, 200]
    gaps = [b["start"] - a["start"] for a, b in itertools.pairwise(macro)]
    # Exponential back-off from 0.05 s with jitter in [0.5, 1.5): at least 0.025 s, then 0.05 s.
    assert gaps[0] >= 0.025 and gaps[1] >= 0.05, f"back-off: {gaps}"
    assert applier.client.counter.retries >= 2


async def test_an_object_of_someone_else_is_never_taken_over(
    sim: SimServer, sim_admin: SimAdmin, sim_client: SimClient, client_factory: list[ControllerClient]
) -> None:
    sim_client.ok("POST", "pool", {"name": f"{PREFIX}-TCP-80", "servers": []})
    applier = make_applier(sim, C, client_factory)
    out = await applier.apply(l4_tree(C, "web"))
    assert not out.ok
    assert out.error is not None and "not owned" in out.error
    pool = next(o["data"] for o in sim_admin.objects("pool") if o["name"] == f"{PREFIX}-TCP-80")
    assert "created_by" not in pool or pool["created_by"] != f"ako-{C}"
    assert our_objects(sim_admin, PREFIX) == [("pool", f"{PREFIX}-TCP-80")], "nothing half-made left"


async def test_expired_session_503_and_dropped_connections_are_survived(
    sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient]
) -> None:
    applier = make_applier(sim, C, client_factory)
    assert (await applier.apply(l4_tree(C, "web"))).ok
    assert sim_admin.expire_sessions() >= 1
    sim_admin.reset_log()
    out = await applier.apply(l4_tree(C, "web", endpoints=["10.0.0.6"]))
    assert out.ok, out.error
    # Expired: 401, avisdk logs in again and repeats the call.
    assert [r["status"] for r in sim_admin.requests() if r["path"].startswith("/api/pool/")] == [401, 200]

    sim_admin.add_fault(method="PUT", path="/api/pool/", status=503, body={"error": "Controller is not ready"}, count=1)
    sim_admin.add_fault(method="PUT", path="/api/pool/", drop=True, count=1)
    sim_admin.reset_log()
    out = await applier.apply(l4_tree(C, "web", endpoints=["10.0.0.7"]))
    assert out.ok, out.error
    # The injected 503 and dropped connection, each retried, then success.
    assert [r["status"] for r in sim_admin.requests() if r["path"].startswith("/api/pool/")] == [503, 0, 200]
    pool = next(o["data"] for o in sim_admin.objects("pool") if o["name"] == f"{PREFIX}-TCP-80")
    assert [s["ip"]["addr"] for s in pool["servers"]] == ["10.0.0.7"]


async def test_a_tree_in_another_tenant_lives_there(
    sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient]
) -> None:
    applier = make_applier(sim, C, client_factory)
    out = await applier.apply(l4_tree(C, "web", tenant="team-a"))
    assert out.ok, out.error
    team_a = next(t["uuid"] for t in sim_admin.objects("tenant") if t["name"] == "team-a")
    tenants = {o["tenant"] for o in sim_admin.objects("virtualservice") if o["name"] == PREFIX}
    assert tenants == {team_a}
    sim_admin.reset_log()
    assert (await applier.apply(l4_tree(C, "web", tenant="team-a"))).writes == 0


async def test_leftovers_of_an_interrupted_create_are_adopted_not_duplicated(
    sim: SimServer, sim_admin: SimAdmin, sim_client: SimClient, client_factory: list[ControllerClient]
) -> None:
    tree = l4_tree(C, "web")
    pool = next(o for o in tree.objects if o.type == "pool")
    # What a syncer killed after its first create would leave behind.
    sim_client.ok("POST", "pool", dict(pool.body))
    applier = make_applier(sim, C, client_factory)
    sim_admin.reset_log()
    out = await applier.apply(tree)
    assert out.ok, out.error
    assert api_calls(sim_admin, writes_only=True) == [
        ("POST", "vsvip"), ("POST", "l4policyset"), ("POST", "virtualservice")]
    assert our_objects(sim_admin, PREFIX) == sorted((o.type, o.name) for o in tree.objects)


async def test_dual_stack_vip_reports_both_addresses(
    sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient]
) -> None:
    applier = make_applier(sim, C, client_factory)
    out = await applier.apply(l4_tree(C, "web", subnet6=("fd00:a1b0::", 64)))
    assert out.ok, out.error
    assert len(out.vips) == 2
    assert out.vips[0].startswith("127.0.100.") and out.vips[1].startswith("fd00:a1b0::")
    sim_admin.reset_log()
    assert (await applier.apply(l4_tree(C, "web", subnet6=("fd00:a1b0::", 64)))).writes == 0


async def test_a_backlog_is_worked_off_a_few_trees_at_a_time(
    sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient]
) -> None:
    # Hundreds of trees started at once must not all pass their fence and queue for a call slot:
    # the fence would be stale by the time of the write, and the event loop too busy to renew leases.
    # (Each tree takes its turn at its first write and keeps it to its outcome.)
    client = make_client(syncer_config(sim, C), client_factory)
    applier = TreeApplier(client, ObjectCache(client, C), max_in_progress=2)
    sim_admin.add_fault(method="POST", path="/api/macro", latency_ms=200)
    inside = most = 0

    async def fence() -> None:
        nonlocal inside, most
        inside += 1
        most = max(most, inside)

    async def one(svc: str) -> bool:
        nonlocal inside
        out = await applier.apply(l4_tree(C, svc), fence)
        inside -= 1  # (before any other tree can start: nothing is awaited in between)
        return out.ok

    assert all(await asyncio.gather(*(one(f"b{i}") for i in range(6))))
    assert most == 2, f"{most} trees were past their fence at once"
    assert Counter(api_calls(sim_admin, writes_only=True)) == {("POST", "macro"): 6}


async def test_a_tree_with_nothing_to_write_does_not_wait_for_a_turn(
    sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient]
) -> None:
    client = make_client(syncer_config(sim, C), client_factory)
    applier = TreeApplier(client, ObjectCache(client, C), max_in_progress=1)
    assert (await applier.apply(l4_tree(C, "done"))).ok
    sim_admin.add_fault(method="POST", path="/api/macro", latency_ms=5000)
    writing = asyncio.Event()

    async def fence() -> None:
        writing.set()

    slow = asyncio.create_task(applier.apply(l4_tree(C, "slow"), fence))
    await asyncio.wait_for(writing.wait(), 30)  # the only turn is taken, its macro call under way
    replay = await applier.apply(l4_tree(C, "done"))
    assert replay.ok and replay.writes == 0
    assert not slow.done(), "the replay waited for the write in progress"
    assert (await slow).ok
