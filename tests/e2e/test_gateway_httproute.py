"""Gateway API for web workloads: an HTTP Gateway and HTTPRoutes, end to end.

Four service processes, real NATS, a real kube-apiserver with the Gateway API
CRDs and the real EndpointSlice controller, and the simulator as its own process.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.e2e.harness import Pipeline, wait_for
from tests.e2e.kube import lb_service, run_pod
from tests.e2e.test_gateway_labels import (
    CONTROLLER,
    GROUP,
    VERSION,
    cond,
    custom,
    gateway,
    gateway_class,
    programmed_vip,
)

pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]


def backend_service(p: Pipeline, name: str, ip: str) -> None:
    svc = lb_service(name, [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}], type="ClusterIP")
    p.core.create_namespaced_service(p.namespace, svc)
    run_pod(p.core, p.namespace, f"{name}-1", {"app": name}, ip, [("http", 8080, "TCP")])


def http_route(p: Pipeline, ns: str, name: str, path: str, backends: list[dict[str, Any]]) -> None:
    custom(p).create_namespaced_custom_object(GROUP, VERSION, ns, "httproutes", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "HTTPRoute", "metadata": {"name": name},
        "spec": {"parentRefs": [{"name": "web", "namespace": p.namespace}],
                 "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": path}}], "backendRefs": backends}]}})


def route_parent(p: Pipeline, ns: str, name: str) -> dict[str, Any] | None:
    r = custom(p).get_namespaced_custom_object_status(GROUP, VERSION, ns, "httproutes", name)
    return next((x for x in (r.get("status") or {}).get("parents") or [] if x["controllerName"] == CONTROLLER), None)


def parent_condition(p: Pipeline, ns: str, name: str, type_: str) -> dict[str, Any] | None:
    parent = route_parent(p, ns, name)
    return next((c for c in parent["conditions"] if c["type"] == type_), None) if parent else None


def test_two_routes_split_paths_weighted_backend_and_a_refused_cross_namespace_ref(pipeline: Pipeline) -> None:
    p = pipeline
    cls = gateway_class(p)
    other_ns = f"{p.cluster}-other"
    p.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=other_ns, labels={"albus-e2e": p.cluster})))
    try:
        custom(p).create_namespaced_custom_object(GROUP, VERSION, p.namespace, "gateways", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Gateway", "metadata": {"name": "web"},
            "spec": {"gatewayClassName": cls, "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": {"namespaces": {"from": "All"}}}]}})
        for name, ip in (("a", "10.244.9.1"), ("b", "10.244.9.2"), ("canary", "10.244.9.3")):
            backend_service(p, name, ip)
        http_route(p, p.namespace, "ra", "/a", [{"name": "a", "port": 80}])
        http_route(p, p.namespace, "rb", "/b", [{"name": "b", "port": 80, "weight": 80},
                                                {"name": "canary", "port": 80, "weight": 20}])
        # Another namespace's route pointing at this namespace's Service, with no ReferenceGrant.
        http_route(p, other_ns, "sneaky", "/c", [{"name": "a", "namespace": p.namespace, "port": 80}])

        vs = f"{p.cluster}--{p.namespace}-web"
        pg_b = f"{vs}-{p.namespace}-rb-0"
        wait_for(lambda: programmed_vip(p, "web") and pg_b in p.objects("poolgroup")
                 and all((p.objects("pool").get(n) or {}).get("servers") for n in (
                     f"{vs}-{p.namespace}-ra-0-{p.namespace}-a-80", f"{pg_b}-{p.namespace}-b-80")), 120,
                 "the HTTP Gateway programmed with its poolgroups and pool members")
        groups = p.objects("poolgroup")
        # The cross-namespace route's rule has no usable backend, hence no poolgroup.
        assert set(groups) == {f"{vs}-{p.namespace}-ra-0", pg_b}
        ratios = sorted((m["pool_ref"].rsplit("#", 1)[-1], m["ratio"]) for m in groups[pg_b]["members"])
        assert ratios == [(f"{pg_b}-{p.namespace}-b-80", 80), (f"{pg_b}-{p.namespace}-canary-80", 20)]
        (ps,) = p.objects("httppolicyset").values()
        rules = ps["http_request_policy"]["rules"]
        paths = [(r["match"]["path"]["match_criteria"], r["match"]["path"]["match_str"][0]) for r in rules]
        assert paths == [("EQUALS", "/a"), ("BEGINS_WITH", "/a/"), ("EQUALS", "/b"), ("BEGINS_WITH", "/b/"),
                         ("EQUALS", "/c"), ("BEGINS_WITH", "/c/"), ("BEGINS_WITH", "/")]
        # The refused backend is not reached: its rule answers locally.
        assert rules[4]["switching_action"]["action"] == "HTTP_SWITCHING_SELECT_LOCAL"
        vs_obj = p.objects("virtualservice")[vs]
        assert vs_obj["http_policies"][0]["http_policy_set_ref"].rsplit("#", 1)[-1] == vs

        refused = wait_for(lambda: (c := parent_condition(p, other_ns, "sneaky", "ResolvedRefs"))
                           and c["status"] == "False" and c, 60, "ResolvedRefs=False on the cross-namespace route")
        assert refused["reason"] == "RefNotPermitted"
        for name in ("ra", "rb"):
            c = wait_for(lambda n=name: parent_condition(p, p.namespace, n, "Accepted"), 60, f"{name} status")
            assert (c["status"], c["reason"]) == ("True", "Accepted")
            assert parent_condition(p, p.namespace, name, "ResolvedRefs")["status"] == "True"
        assert cond(gateway(p, "web"), "Programmed")["status"] == "True"
        wait_for(lambda: gateway(p, "web")["status"]["listeners"][0]["attachedRoutes"] == 3, 60,
                 "three routes attached to the listener")
    finally:
        p.core.delete_namespace(other_ns)
        custom(p).delete_cluster_custom_object(GROUP, VERSION, "gatewayclasses", cls)
