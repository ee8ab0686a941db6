"""Health against a real kube-apiserver and a real nats-server.

Health runs as the ``albus-health`` ClusterRole's identity, so a verb missing
from ``deploy/rbac/clusterrole.yaml`` fails these tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from health_helpers import Kube, Publisher, condition, ips, reconciler, wait_for

from services.common import subjects
from services.common.bus import Bus
from services.common.config import Config
from services.common.contracts import ApplyOutcome, ObjRef
from services.health.main import run

pytestmark = pytest.mark.k8s


@asynccontextmanager
async def running_health(cfg: Config) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run(cfg, stop, identity="health-test"))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def reasons(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((e["type"], e["reason"]) for e in events)


async def test_vips_condition_and_events_follow_outcomes(
    health_cfg: Config, kube: Kube, publish: Publisher, kube_namespace: str, cluster: str
) -> None:
    ns = kube_namespace
    await kube.create_lb_service(ns, "web")
    await kube.create_lb_service(ns, "full")
    await publish.outcome(ns, "web", vips=("10.10.0.5", "fd00::5"))
    await publish.outcome(ns, "full", ok=False, error="No free IP available: VIP network vip-net is exhausted")

    async with running_health(health_cfg):
        async def web_programmed() -> dict[str, Any] | None:
            svc = await kube.service(ns, "web")
            c = condition(svc)
            return svc if ips(svc) == ["10.10.0.5", "fd00::5"] and c and c["status"] == "True" else None

        web = await wait_for(web_programmed, 30, "web's VIPs and condition")
        c = condition(web)
        assert c is not None and c["reason"] == "Programmed"
        # Services carry no generation (the API server sets none for them).
        assert c.get("observedGeneration") == web["metadata"].get("generation")
        # One Event for a new Service, the VIPs in it (AKO's Synced, not a second VipAssigned).
        [synced] = await wait_for(lambda: kube.events(ns, "web"), 15, "web's Synced Event")
        assert (synced["type"], synced["reason"]) == ("Normal", "Synced")
        assert synced["note"] == f"Added virtualservice {cluster}--{ns}-web for {ns}/web (VIP 10.10.0.5, fd00::5)"
        assert synced["reportingController"] == "albus.io/health"

        async def full_failed() -> dict[str, Any] | None:
            c = condition(await kube.service(ns, "full"))
            return c if c and c["status"] == "False" else None

        failed = await wait_for(full_failed, 30, "full's failure condition")
        assert failed["reason"] == "ControllerError" and "exhausted" in failed["message"]
        [warning] = await wait_for(lambda: kube.events(ns, "full"), 15, "full's Warning")
        assert (warning["type"], warning["reason"]) == ("Warning", "SyncFailed")
        assert "exhausted" in warning["note"]
        assert ips(await kube.service(ns, "full")) == []

        # The VIP network got room: the condition clears, the VIP is written.
        await publish.outcome(ns, "full", vips=("10.10.0.6",))

        async def full_programmed() -> dict[str, Any] | None:
            svc = await kube.service(ns, "full")
            c = condition(svc)
            return svc if c and c["status"] == "True" and ips(svc) == ["10.10.0.6"] else None

        full = await wait_for(full_programmed, 30, "full programmed")
        c = condition(full)
        assert c is not None and c["lastTransitionTime"] >= failed["lastTransitionTime"]
        events = await wait_for(
            lambda: _at_least(kube.events(ns, "full"), 2), 15, "full's Synced Event"
        )
        assert reasons(events) == [("Normal", "Synced"), ("Warning", "SyncFailed")]

        # The tree is deleted: no VIP, no condition, one Removed Event.
        await publish.outcome(ns, "web", deleted=True)

        async def web_cleared() -> dict[str, Any] | None:
            svc = await kube.service(ns, "web")
            return svc if not ips(svc) and condition(svc) is None else None

        await wait_for(web_cleared, 30, "web's status cleared")
        events = await wait_for(lambda: _at_least(kube.events(ns, "web"), 2), 15, "web's Removed Event")
        assert reasons(events) == [("Normal", "Removed"), ("Normal", "Synced")]


async def _at_least(events: Any, n: int) -> list[dict[str, Any]] | None:
    got: list[dict[str, Any]] = await events
    return got if len(got) >= n else None


async def test_report_problem_sets_condition_and_warning_and_clears(
    health_cfg: Config, kube: Kube, publish: Publisher, kube_namespace: str
) -> None:
    ns = kube_namespace
    await kube.create_lb_service(ns, "odd")
    await publish.outcome(ns, "odd", vips=("10.10.0.9",))
    await publish.report(ns, "odd", ("InvalidConfiguration", "ako.vmware.com/load-balancer-ip is not an IP: x"))
    async with running_health(health_cfg):
        async def invalid() -> dict[str, Any] | None:
            c = condition(await kube.service(ns, "odd"))
            return c if c and c["reason"] == "InvalidConfiguration" else None

        c = await wait_for(invalid, 30, "the InvalidConfiguration condition")
        assert c["status"] == "False" and "not an IP" in c["message"]
        [warning] = await wait_for(lambda: kube.events(ns, "odd"), 15, "the Warning Event")
        assert (warning["type"], warning["reason"]) == ("Warning", "InvalidConfiguration")
        # What works keeps working: the VIP stays.
        assert ips(await kube.service(ns, "odd")) == ["10.10.0.9"]

        await publish.report(ns, "odd")  # no problems any more

        async def ready() -> dict[str, Any] | None:
            c = condition(await kube.service(ns, "odd"))
            return c if c and c["status"] == "True" else None

        await wait_for(ready, 30, "the condition to clear")


async def test_replay_after_restart_writes_nothing(
    health_api: Any, bus: Bus, cluster: str, kube: Kube, publish: Publisher, kube_namespace: str,
) -> None:
    ns = kube_namespace
    await kube.create_lb_service(ns, "ok")
    await kube.create_lb_service(ns, "bad")
    await publish.outcome(ns, "ok", vips=("10.10.0.7",))
    await publish.outcome(ns, "bad", ok=False, error="VIP network exhausted")
    async with reconciler(health_api, bus, cluster) as first:
        await asyncio.wait_for(first.settled.wait(), 30)
        # ok: Synced (its VIP in it); bad: SyncFailed.
        assert first.writer.status_writes == 2 and first.writer.events_written == 2
    before = {name: await kube.service(ns, name) for name in ("ok", "bad")}
    events_before = [len(await kube.events(ns, name)) for name in ("ok", "bad")]
    assert events_before == [1, 1]

    async with reconciler(health_api, bus, cluster) as second:
        await asyncio.wait_for(second.settled.wait(), 30)
        assert second.writer.status_writes == 0 and second.writer.events_written == 0
    for name, svc in before.items():
        assert (await kube.service(ns, name))["metadata"]["resourceVersion"] == svc["metadata"]["resourceVersion"]
    assert [len(await kube.events(ns, name)) for name in ("ok", "bad")] == events_before


async def test_a_tree_without_outcome_is_vip_pending_and_a_restart_does_not_flap(
    health_api: Any, bus: Bus, cluster: str, kube: Kube, publish: Publisher, kube_namespace: str,
) -> None:
    """Level-based VipPending: from the trees and outcomes replayed, once per transition, never on a missing outcome."""
    ns = kube_namespace
    for name in ("new", "done", "lost"):
        await kube.create_lb_service(ns, name)
        await publish.tree(ns, name)
    await publish.outcome(ns, "done", vips=("10.10.0.7",))
    await publish.outcome(ns, "lost", vips=("10.10.0.8",))
    async with reconciler(health_api, bus, cluster) as first:
        await asyncio.wait_for(first.settled.wait(), 30)
        assert first.writer.status_writes == 3
    new = condition(await kube.service(ns, "new"))
    assert new is not None and (new["status"], new["reason"]) == ("False", "VipPending"), new
    assert new["message"] == f"virtualservice {cluster}--{ns}-new not applied yet"
    assert ips(await kube.service(ns, "new")) == [] and await kube.events(ns, "new") == []
    for name in ("done", "lost"):
        c = condition(await kube.service(ns, name))
        assert c is not None and c["reason"] == "Programmed", (name, c)
    before = {name: (await kube.service(ns, name))["metadata"]["resourceVersion"]
              for name in ("new", "done", "lost")}

    # A restart with lost's outcome gone from the stream (NATS's data lost, the syncer not yet back):
    # the replayed view lacks it, lost keeps what it says; done and new are as the bus says.
    await publish.lose_outcome(ns, "lost")
    async with reconciler(health_api, bus, cluster) as second:
        await asyncio.wait_for(second.settled.wait(), 30)
        assert second.writer.status_writes == 0 and second.writer.events_written == 0
        assert {name: (await kube.service(ns, name))["metadata"]["resourceVersion"]
                for name in ("new", "done", "lost")} == before

        # The syncer answers: new turns Programmed, in one write.
        await publish.outcome(ns, "new", vips=("10.10.0.9",))

        async def new_programmed() -> dict[str, Any] | None:
            svc = await kube.service(ns, "new")
            c = condition(svc)
            return svc if c and c["status"] == "True" and ips(svc) == ["10.10.0.9"] else None

        await wait_for(new_programmed, 30, "new Programmed")
        await asyncio.wait_for(second.settled.wait(), 30)
        assert second.writer.status_writes == 1


async def test_an_ingress_whose_vs_failed_to_apply_gets_a_warning_then_its_vip(
    health_cfg: Config, kube: Kube, bus: Bus, kube_namespace: str, cluster: str
) -> None:
    """An Ingress has no conditions: a failed apply of the virtual service serving it is a Warning Event."""
    ns = kube_namespace
    await kube.call("POST", f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses", {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "shop"},
        "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}})
    vs = f"{cluster}--Shared-L7-0"
    subject = subjects.outcome(cluster, "admin", vs)
    ref = ObjRef(kind="Ingress", namespace=ns, name="shop")

    async def outcome(**kw: Any) -> None:
        await bus.publish(subject, ApplyOutcome(cluster=cluster, tenant="admin", vs_name=vs, checksum=str(kw),
                                                sources=(ref,), **kw))

    async def ingress_events() -> list[dict[str, Any]]:
        return [e for e in await kube.events(ns, "shop") if e["regarding"]["kind"] == "Ingress"]

    await outcome(ok=False, error="create pool (macro): Injected: the controller refused the pool")
    async with running_health(health_cfg):
        [ev] = await wait_for(ingress_events, 30, "the Ingress's Warning")
        assert (ev["type"], ev["reason"], ev["action"]) == ("Warning", "SyncFailed", "Apply"), ev
        assert ev["note"] == f"Ingress {ns}/shop: virtualservice {vs}: create pool (macro): Injected: the " \
                             "controller refused the pool"
        await outcome(ok=True, vips=("10.10.0.20",))

        async def vip() -> list[str] | None:
            ing = await kube.call("GET", f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/shop")
            return ips(ing) or None

        assert await wait_for(vip, 30, "the Ingress's VIP") == ["10.10.0.20"]
        assert [e["reason"] for e in await ingress_events()] == ["SyncFailed"]  # the success announces nothing


async def test_enable_events_false_records_warnings_only(
    health_cfg: Config, kube: Kube, publish: Publisher, kube_namespace: str
) -> None:
    """AKO's ``AKOSettings.enableEvents: "false"``: status as ever, no Normal Event, Warnings still."""
    ns = kube_namespace
    cfg = health_cfg.model_copy(update={"AKOSettings": health_cfg.AKOSettings.model_copy(
        update={"enableEvents": False})})
    await kube.create_lb_service(ns, "web")
    await kube.create_lb_service(ns, "full")
    await publish.outcome(ns, "full", ok=False, error="No free IP available: VIP network vip-net is exhausted")
    await publish.outcome(ns, "web", vips=("10.10.0.7",))
    async with running_health(cfg):
        [warning] = await wait_for(lambda: kube.events(ns, "full"), 30, "full's Warning")
        assert (warning["type"], warning["reason"]) == ("Warning", "SyncFailed")

        async def web_programmed() -> dict[str, Any] | None:
            svc = await kube.service(ns, "web")
            c = condition(svc)
            return svc if ips(svc) == ["10.10.0.7"] and c and c["status"] == "True" else None

        await wait_for(web_programmed, 30, "web's VIP and condition")
        # Then the Warning's Service is fixed: a transition that would record Synced.
        await publish.outcome(ns, "full", vips=("10.10.0.8",))
        await wait_for(lambda: _ips_are(kube, ns, "full", ["10.10.0.8"]), 30, "full's VIP")
    # health has stopped: whatever it was going to record is recorded
    assert await kube.events(ns, "web") == []
    assert [e["reason"] for e in await kube.events(ns, "full")] == ["SyncFailed"]


async def _ips_are(kube: Kube, ns: str, name: str, want: list[str]) -> bool:
    return ips(await kube.service(ns, name)) == want
