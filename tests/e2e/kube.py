"""Small Kubernetes helpers for end-to-end tests: pods that "run", and the cluster as manifests."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

NODE = "e2e-node"


def ensure_node(core: client.CoreV1Api) -> None:
    try:
        core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=NODE)))
    except ApiException as exc:
        if exc.status != 409:
            raise


def run_pod(core: client.CoreV1Api, ns: str, name: str, labels: dict[str, str], ip: str,
            ports: list[tuple[str, int, str]]) -> None:
    """Create a Pod on the (object-only) node and mark it Running and Ready, as a kubelet would.

    The real EndpointSlice controller then puts it into its Services' slices.
    """
    ensure_node(core)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(node_name=NODE, containers=[client.V1Container(
            name="app", image="example.invalid/app:1",
            ports=[client.V1ContainerPort(name=n, container_port=p, protocol=proto) for n, p, proto in ports])]),
    )
    core.create_namespaced_pod(ns, pod)
    core.patch_namespaced_pod_status(name, ns, {"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
    }})


def lb_service(name: str, ports: list[dict[str, Any]], selector: dict[str, str] | None = None,
               **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "selector": selector or {"app": name}, "ports": ports, **spec}}


def cluster_documents(api: client.ApiClient, ns: str) -> list[dict[str, Any]]:
    """The namespace, its Services and EndpointSlices as manifests (for offline translation)."""
    core, disc = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    docs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace",
                                   **api.sanitize_for_serialization(core.read_namespace(ns))}]
    for s in core.list_namespaced_service(ns).items:
        docs.append({"apiVersion": "v1", "kind": "Service", **api.sanitize_for_serialization(s)})
    for sl in disc.list_namespaced_endpoint_slice(ns).items:
        docs.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                     **api.sanitize_for_serialization(sl)})
    return docs
