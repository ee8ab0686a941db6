"""CRD semantics: status subresource, OpenAPI/CEL validation of our and Gateway API CRDs."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.k8s

AKO = ("ako.vmware.com", "v1beta1", "aviinfrasettings")
GATEWAY = ("gateway.networking.k8s.io", "v1", "gateways")


@pytest.fixture
def infra_name(kube_client: client.ApiClient) -> Iterator[str]:
    name = f"infra-{secrets.token_hex(3)}"
    yield name
    try:
        client.CustomObjectsApi(kube_client).delete_cluster_custom_object(*AKO, name)
    except ApiException as err:
        if err.status != 404:
            raise


def _infra(name: str, spec: dict[str, Any], version: str = "v1beta1") -> dict[str, Any]:
    return {"apiVersion": f"ako.vmware.com/{version}", "kind": "AviInfraSetting", "metadata": {"name": name}, "spec": spec}


def test_status_patch_does_not_bump_generation(kube_client: client.ApiClient, infra_name: str) -> None:
    api = client.CustomObjectsApi(kube_client)
    created = api.create_cluster_custom_object(*AKO, _infra(infra_name, {"seGroup": {"name": "Default-Group"}}))
    assert created["metadata"]["generation"] == 1

    patched = api.patch_cluster_custom_object_status(*AKO, infra_name, {"status": {"status": "Accepted"}})
    assert patched["status"] == {"status": "Accepted"}
    assert patched["metadata"]["generation"] == 1
    assert int(patched["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    # Through the main resource, status is ignored and spec bumps generation.
    patched = api.patch_cluster_custom_object(
        *AKO, infra_name, {"spec": {"l7Settings": {"shardSize": "LARGE"}}, "status": {"status": "Rejected"}}
    )
    assert patched["metadata"]["generation"] == 2
    assert patched["status"] == {"status": "Accepted"}


def test_aviinfrasetting_served_in_both_versions(kube_client: client.ApiClient, infra_name: str) -> None:
    api = client.CustomObjectsApi(kube_client)
    api.create_cluster_custom_object(
        "ako.vmware.com", "v1alpha1", "aviinfrasettings",
        _infra(infra_name, {"network": {"vipNetworks": [{"networkName": "vip", "cidr": "10.10.0.0/24"}]}}, "v1alpha1"),
    )
    got = api.get_cluster_custom_object(*AKO, infra_name)
    assert got["apiVersion"] == "ako.vmware.com/v1beta1"
    assert got["spec"]["network"]["vipNetworks"] == [{"networkName": "vip", "cidr": "10.10.0.0/24"}]


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ({"l7Settings": {"shardSize": "HUGE"}}, "spec.l7Settings.shardSize"),
        ({"network": {"vipNetworks": [{"networkName": "a", "networkUUID": "b"}]}}, "exactly one of networkName"),
        ({"network": {"vipNetworks": [{"networkName": "a", "cidr": "10.0.0.0/33"}]}}, "cidr must be an IPv4 CIDR"),
        ({"network": {"vipNetworks": [{"networkName": "a", "v6cidr": "10.0.0.0/8"}]}}, "v6cidr must be an IPv6"),
        ({"network": {"bgpPeerLabels": ["peer1"]}}, "bgpPeerLabels requires enableRhi"),
        ({"seGroup": {}}, "spec.seGroup.name"),
    ],
)
def test_aviinfrasetting_schema_refuses(
    kube_client: client.ApiClient, infra_name: str, spec: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(kube_client).create_cluster_custom_object(*AKO, _infra(infra_name, spec))
    assert refused.value.status == 422
    assert complaint in refused.value.body


def _gateway(name: str, listeners: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name},
        "spec": {"gatewayClassName": "avi-lb", "listeners": listeners},
    }


def test_gateway_violating_crd_schema_is_refused(kube_client: client.ApiClient, kube_namespace: str) -> None:
    api = client.CustomObjectsApi(kube_client)
    ok = api.create_namespaced_custom_object(
        *GATEWAY[:2], kube_namespace, GATEWAY[2],
        _gateway("good", [{"name": "http", "port": 80, "protocol": "HTTP"}]),
    )
    assert ok["metadata"]["generation"] == 1

    # Out-of-range port (OpenAPI) and two listeners with one name (list-map key).
    for bad, complaint in [
        (_gateway("bad-port", [{"name": "http", "port": 70000, "protocol": "HTTP"}]), "spec.listeners[0].port"),
        (
            _gateway(
                "dup", [{"name": "l", "port": 80, "protocol": "HTTP"}, {"name": "l", "port": 81, "protocol": "HTTP"}]
            ),
            "Duplicate value",
        ),
        # A CEL rule of the CRD: plain HTTP listeners take no TLS settings.
        (
            _gateway("http-tls", [{"name": "h", "port": 80, "protocol": "HTTP", "tls": {"mode": "Terminate"}}]),
            "tls must not be specified",
        ),
    ]:
        with pytest.raises(ApiException) as refused:
            api.create_namespaced_custom_object(*GATEWAY[:2], kube_namespace, GATEWAY[2], bad)
        assert refused.value.status == 422, bad["metadata"]["name"]
        assert complaint in refused.value.body, refused.value.body


def test_experimental_routes_are_optional(
    kube_client: client.ApiClient, kube_namespace: str, gateway_experimental_routes: list[str]
) -> None:
    assert sorted(gateway_experimental_routes) == [
        "tcproutes.gateway.networking.k8s.io",
        "tlsroutes.gateway.networking.k8s.io",
        "udproutes.gateway.networking.k8s.io",
    ]
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1alpha2",
        "kind": "TCPRoute",
        "metadata": {"name": "db"},
        "spec": {"parentRefs": [{"name": "good"}], "rules": [{"backendRefs": [{"name": "db", "port": 5432}]}]},
    }
    made = client.CustomObjectsApi(kube_client).create_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1alpha2", kube_namespace, "tcproutes", route
    )
    assert made["spec"]["rules"][0]["backendRefs"][0]["port"] == 5432
