"""The pipeline end to end: a LoadBalancer Service becomes an Avi virtual service and its VIP comes back.

Four service processes, real NATS, a real kube-apiserver with the real
EndpointSlice controller, and the simulator as its own process.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest

from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import lb_service, run_pod

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

WEB_PORTS = [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
             {"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}]
POD_PORTS = [("http", 8080, "TCP"), ("dns", 5353, "UDP")]


def servers(pool: dict[str, Any]) -> set[tuple[str, int, bool]]:
    return {(s["ip"]["addr"], s["port"], s.get("enabled", True)) for s in pool.get("servers") or []}


def ref_name(ref: str) -> str:
    return ref.rsplit("#", 1)[-1]


def converge_web(p: Pipeline) -> tuple[str, str]:
    p.core.create_namespaced_service(p.namespace, lb_service("web", WEB_PORTS))
    run_pod(p.core, p.namespace, "web-1", {"app": "web"}, "10.244.1.11", POD_PORTS)
    run_pod(p.core, p.namespace, "web-2", {"app": "web"}, "10.244.1.12", POD_PORTS)
    vs_name = f"{p.cluster}--{p.namespace}-web"
    tcp_pool = f"{vs_name}-TCP-80"
    wait_for(lambda: len(servers(p.objects("pool").get(tcp_pool, {}))) == 2 and p.vips("web"), 60,
             "the web VS with both pods and its VIP in the Service status")
    return vs_name, tcp_pool


def test_two_port_service_gets_vs_vip_pools_and_status(pipeline: Pipeline) -> None:
    p = pipeline
    vs_name, tcp_pool = converge_web(p)
    objs = p.all_objects()
    assert set(objs["virtualservice"]) == {vs_name}
    assert set(objs["vsvip"]) == {vs_name}
    assert set(objs["pool"]) == {tcp_pool, f"{vs_name}-UDP-53"}
    assert set(objs["l4policyset"]) == {vs_name}
    assert servers(objs["pool"][tcp_pool]) == {("10.244.1.11", 8080, True), ("10.244.1.12", 8080, True)}
    assert servers(objs["pool"][f"{vs_name}-UDP-53"]) == {("10.244.1.11", 5353, True), ("10.244.1.12", 5353, True)}
    vs = objs["virtualservice"][vs_name]
    assert ref_name(vs["vsvip_ref"]) == vs_name
    assert sorted(s["port"] for s in vs["services"]) == [53, 80]
    vip = objs["vsvip"][vs_name]["vip"][0]["ip_address"]["addr"]
    assert ipaddress.ip_address(vip) in ipaddress.ip_network("127.100.0.0/24")
    assert p.vips("web") == [vip]
    for o in (vs, objs["vsvip"][vs_name], objs["pool"][tcp_pool]):
        assert o["created_by"] == f"ako-{p.cluster}"
        assert o["markers"][0] == {"key": "clustername", "values": [p.cluster]}


def test_scaling_endpoints_updates_only_the_pools(pipeline: Pipeline) -> None:
    p = pipeline
    vs_name, tcp_pool = converge_web(p)
    p.reset_log()
    run_pod(p.core, p.namespace, "web-3", {"app": "web"}, "10.244.1.13", POD_PORTS)
    wait_for(lambda: len(servers(p.objects("pool")[tcp_pool])) == 3
             and len(servers(p.objects("pool")[f"{vs_name}-UDP-53"])) == 3, 60, "the third pod in both pools")
    writes = p.writes()
    assert writes, "the scale-up was applied without a write?"
    assert all(w["method"] == "PUT" and w.get("object_type", w.get("type")) == "pool" for w in writes), writes


def test_changing_a_port_updates_vs_and_pools_keeping_the_vip(pipeline: Pipeline) -> None:
    p = pipeline
    vs_name, _ = converge_web(p)
    vip = p.vips("web")
    ports = p.core.read_namespaced_service("web", p.namespace).spec.ports
    p.set_port("web", 8081, [q.name for q in ports].index("http"))
    new_pool = f"{vs_name}-TCP-8081"
    wait_for(lambda: set(p.objects("pool")) == {new_pool, f"{vs_name}-UDP-53"}, 60, "the pool of the new port only")
    vs = p.objects("virtualservice")[vs_name]
    assert sorted(s["port"] for s in vs["services"]) == [53, 8081]
    assert servers(p.objects("pool")[new_pool]) == {("10.244.1.11", 8080, True), ("10.244.1.12", 8080, True)}
    assert p.vips("web") == vip


def test_deleting_the_service_removes_everything_it_caused(pipeline: Pipeline) -> None:
    p = pipeline
    converge_web(p)
    p.core.delete_namespaced_service("web", p.namespace)
    wait_for(lambda: not any(p.all_objects().values()), 60, "every object of the Service gone")


def test_foreign_load_balancer_class_is_left_alone(pipeline: Pipeline) -> None:
    p = pipeline
    p.core.create_namespaced_service(p.namespace, lb_service(
        "other", [{"port": 80, "protocol": "TCP"}], loadBalancerClass="example.com/other-lb"))
    converge_web(p)  # processed after "other": the translator has seen it by now
    assert not [n for n in p.objects("virtualservice") if n.endswith("-other")]
    assert p.vips("other") == []


def test_converges_after_every_service_is_killed_mid_stream(pipeline: Pipeline) -> None:
    p = pipeline
    ports = [{"name": "tcp", "port": 7000, "protocol": "TCP"}]
    created: list[str] = []
    for round_, victim in enumerate(("watcher", "translator", "syncer", "health")):
        for i in range(5):
            name = f"s{round_}-{i}"
            p.core.create_namespaced_service(p.namespace, lb_service(name, ports))
            created.append(name)
            if i == 2:
                p.children[victim].kill()
        # Delete one of the earlier Services while the victim is down.
        p.core.delete_namespaced_service(created.pop(0), p.namespace)
        p.children[victim].start()
    want = p.expected()
    assert len(want["virtualservice"]) == len(created)
    wait_for(lambda: p.actual() == p.expected(), 120,
             "the controller to hold exactly the translation of the cluster")
    for name in created:
        wait_for(lambda n=name: p.vips(n), 60, f"a VIP on {name}")


def test_resync_with_nothing_changed_writes_nothing(pipeline: Pipeline) -> None:
    p = pipeline
    converge_web(p)
    p.core.create_namespaced_service(p.namespace, lb_service("second", [{"port": 9000, "protocol": "TCP"}]))
    wait_for(lambda: p.vips("second"), 60, "a VIP on the second Service")
    wait_for(lambda: p.syncers_settled(0), 60, "the syncer to have applied every tree")
    p.stop_services()
    p.reset_log()
    restarted = time.time()
    p.start_services()
    # Settled after the restart: every tree was replayed, read and compared with the controller.
    wait_for(lambda: p.syncers_settled(restarted), 90, "the restarted syncer to have evaluated every tree")
    assert p.writes() == []
    reads = [e for e in p.requests() if e["method"] == "GET"]
    assert reads, "a restarted syncer must re-read the controller"
