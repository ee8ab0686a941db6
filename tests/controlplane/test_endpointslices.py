"""kube-controller-manager turns Ready Pods into EndpointSlices, as in a cluster."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from albus.controlplane.launcher import ControlPlane, wait_until

pytestmark = pytest.mark.k8s


@pytest.fixture
def node(control_plane: ControlPlane, kube_client: client.ApiClient, kube_namespace: str) -> Iterator[str]:
    if control_plane.assets.kube_controller_manager is None:
        pytest.skip("no kube-controller-manager binary among the supplied control-plane binaries")
    assert control_plane.controller_manager_running
    # A Node object only: no kubelet. The EndpointSlice controller drops Pods
    # whose Node does not exist.
    name = f"node-{kube_namespace}"
    core = client.CoreV1Api(kube_client)
    core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_node(name)


def _set_ready(core: client.CoreV1Api, ns: str, pod: str, ip: str, ready: bool) -> None:
    # What a kubelet reports for a started container.
    status = "True" if ready else "False"
    core.patch_namespaced_pod_status(
        pod,
        ns,
        {
            "status": {
                "phase": "Running",
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Initialized", "status": "True"},
                    {"type": "ContainersReady", "status": status},
                    {"type": "Ready", "status": status},
                ],
            }
        },
    )


def _endpoints(discovery: client.DiscoveryV1Api, ns: str, service: str) -> list[tuple[str, bool, Any]]:
    slices = discovery.list_namespaced_endpoint_slice(ns, label_selector=f"kubernetes.io/service-name={service}")
    return [
        (addr, bool(ep.conditions.ready), ep.target_ref.name if ep.target_ref else None)
        for s in slices.items
        for ep in s.endpoints or []
        for addr in ep.addresses
    ]


def test_ready_pod_gives_endpointslice(kube_client: client.ApiClient, kube_namespace: str, node: str) -> None:
    core = client.CoreV1Api(kube_client)
    discovery = client.DiscoveryV1Api(kube_client)
    ns = kube_namespace
    core.create_namespaced_service(
        ns,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1ServiceSpec(
                selector={"app": "web"}, ports=[client.V1ServicePort(name="http", port=80, target_port=8080)]
            ),
        ),
    )
    core.create_namespaced_pod(
        ns,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="web-1", labels={"app": "web"}),
            spec=client.V1PodSpec(
                node_name=node,
                containers=[
                    client.V1Container(
                        name="web", image="registry.invalid/web:1", ports=[client.V1ContainerPort(container_port=8080)]
                    )
                ],
            ),
        ),
    )
    # Not running yet: no address to publish.
    wait_until(
        lambda: bool(discovery.list_namespaced_endpoint_slice(ns, label_selector="kubernetes.io/service-name=web").items),
        30, "the (empty) EndpointSlice of Service web",
    )
    assert _endpoints(discovery, ns, "web") == []

    _set_ready(core, ns, "web-1", "10.244.0.5", ready=True)
    wait_until(lambda: _endpoints(discovery, ns, "web") == [("10.244.0.5", True, "web-1")], 30, "a ready endpoint")
    [slice_] = discovery.list_namespaced_endpoint_slice(ns, label_selector="kubernetes.io/service-name=web").items
    assert [(p.name, p.port) for p in slice_.ports] == [("http", 8080)]
    assert slice_.endpoints[0].node_name == node

    _set_ready(core, ns, "web-1", "10.244.0.5", ready=False)
    wait_until(lambda: _endpoints(discovery, ns, "web") == [("10.244.0.5", False, "web-1")], 30, "a not-ready endpoint")


def test_namespace_deletion_is_carried_out(kube_client: client.ApiClient, node: str) -> None:
    # The namespace controller empties a deleted namespace and removes it.
    core = client.CoreV1Api(kube_client)
    name = f"gone-{node[-6:]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c")))
    core.delete_namespace(name)

    def deleted() -> bool:
        try:
            core.read_namespace(name)
        except ApiException as err:
            if err.status == 404:
                return True
            raise
        return False

    wait_until(deleted, 60, f"namespace {name} to be finalized")
