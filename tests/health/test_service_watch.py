"""Health reads Services from a list-and-watch cache, against a real kube-apiserver and nats-server.

What the API server was asked is read from its own ``/metrics``
(``apiserver_request_total``); the tests read Services with a LIST, so every
GET of a Service counted is health's.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from health_helpers import Kube, Publisher, condition, ips, reconciler, wait_for

from bench.stack import kube_requests
from services.common.bus import Bus
from services.common.config import parse_config

pytestmark = pytest.mark.k8s

MERGE = "application/merge-patch+json"


async def requests_so_far(kube: Kube) -> Counter[str]:
    admin: Any = kube.cp.kube_client()
    try:
        return await asyncio.to_thread(kube_requests, admin)
    finally:
        admin.close()


async def vips_become(kube: Kube, ns: str, name: str, want: list[str]) -> None:
    async def probe() -> bool:
        return ips(await kube.listed_service(ns, name)) == want

    await wait_for(probe, 30, f"{ns}/{name}'s VIPs to be {want}")


async def test_status_follows_outcomes_without_reading_services_and_a_foreign_write_is_put_right(
    health_api: Any, bus: Bus, cluster: str, kube: Kube, publish: Publisher, kube_namespace: str,
) -> None:
    ns = kube_namespace
    for name in ("web", "db"):
        await kube.create_lb_service(ns, name)
    await publish.outcome(ns, "web", vips=("10.10.0.5",))
    await publish.outcome(ns, "db", vips=("10.10.0.6",))
    async with reconciler(health_api, bus, cluster) as r:
        await vips_become(kube, ns, "web", ["10.10.0.5"])
        await vips_become(kube, ns, "db", ["10.10.0.6"])
        await asyncio.wait_for(r.settled.wait(), 30)

        # New VIPs: each Service is written once, and read from the cache, never with a GET.
        before = await requests_so_far(kube)
        await publish.outcome(ns, "web", vips=("10.10.0.15",))
        await publish.outcome(ns, "db", vips=("10.10.0.16",))
        await vips_become(kube, ns, "web", ["10.10.0.15"])
        await vips_become(kube, ns, "db", ["10.10.0.16"])
        got = await requests_so_far(kube) - before
        assert got["GET services"] == 0, got
        assert got["PATCH services/status"] == 2, got

        # Someone else overwrites web's VIP: the watch shows it, health puts it right with no message
        # on the bus; db, untouched, is not written.
        writes = r.writer.status_writes
        await kube.call("PATCH", f"/api/v1/namespaces/{ns}/services/web/status",
                        {"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.99"}]}}}, content_type=MERGE)
        await vips_become(kube, ns, "web", ["10.10.0.15"])
        assert r.writer.status_writes == writes + 1


async def test_a_write_refused_as_stale_reads_the_service_afresh(
    health_api: Any, bus: Bus, cluster: str, kube: Kube, publish: Publisher, kube_namespace: str,
) -> None:
    ns = kube_namespace
    await kube.create_lb_service(ns, "web")
    await publish.outcome(ns, "web", vips=("10.10.0.5",))
    async with reconciler(health_api, bus, cluster) as r:
        await vips_become(kube, ns, "web", ["10.10.0.5"])
        await asyncio.wait_for(r.settled.wait(), 30)
        # The cache falls behind (as a watch does when the API server is slow to send): the Service
        # changes, health does not see it.
        assert r._reflectors
        for reflector in r._reflectors:
            await reflector.stop()
        await kube.call("PATCH", f"/api/v1/namespaces/{ns}/services/web",
                        {"metadata": {"labels": {"tier": "front"}}}, content_type=MERGE)

        before = await requests_so_far(kube)
        await publish.outcome(ns, "web", vips=("10.10.0.25",))
        await vips_become(kube, ns, "web", ["10.10.0.25"])
        got = await requests_so_far(kube) - before
        # The write from the cache's copy is refused (409), the Service is read, the write is made again.
        assert got["PATCH services/status"] == 2 and got["GET services"] == 1, got


async def test_a_namespace_unlabelled_takes_albus_status_back_and_labelled_again_gives_it_back(
    health_api: Any, bus: Bus, cluster: str, kube: Kube, publish: Publisher, kube_namespace: str,
) -> None:
    """With a namespace selector, the namespace's labels come from the watch: a relabel is acted on at once,
    with no message on the bus (the translator's own deletion would follow, later)."""
    ns = kube_namespace
    cfg = parse_config({"AKOSettings": {"clusterName": cluster,
                                        "namespaceSelector": {"labelKey": "lb", "labelValue": "albus"}}})

    async def label(value: str | None) -> None:
        await kube.call("PATCH", f"/api/v1/namespaces/{ns}", {"metadata": {"labels": {"lb": value}}},
                        content_type=MERGE)

    async def programmed(want: bool) -> None:
        async def probe() -> bool:
            svc = await kube.listed_service(ns, "web")
            return (condition(svc) is not None and ips(svc) == ["10.10.0.5"]) == want

        await wait_for(probe, 30, f"web's albus status to be {'there' if want else 'gone'}")

    await label("albus")
    await kube.create_lb_service(ns, "web")
    await publish.outcome(ns, "web", vips=("10.10.0.5",))
    async with reconciler(health_api, bus, cluster, cfg):
        await programmed(True)
        await label(None)
        await programmed(False)
        await label("albus")
        await programmed(True)
        svc = await kube.listed_service(ns, "web")
        assert ips(svc) == ["10.10.0.5"]
