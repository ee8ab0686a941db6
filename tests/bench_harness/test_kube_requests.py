"""The populated start's tally of API-server requests, read from the real kube-apiserver's /metrics."""

from __future__ import annotations

import pytest
from kubernetes import client

from bench.stack import kube_requests

pytestmark = pytest.mark.k8s


def test_requests_are_counted_by_verb_and_resource_with_the_subresource(
    kube_client: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_client)
    before = kube_requests(kube_client)
    for name in ("a", "b"):
        core.create_namespaced_config_map(kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name)))
    core.read_namespaced_config_map("a", kube_namespace)
    core.patch_namespace_status(kube_namespace, {"metadata": {"labels": {}}})
    got = kube_requests(kube_client) - before
    # Other clients (the controller manager) share the server: at least ours, and ours by their names.
    assert got["POST configmaps"] >= 2 and got["GET configmaps"] >= 1
    assert got["PATCH namespaces/status"] >= 1 and "PATCH namespaces" not in got
