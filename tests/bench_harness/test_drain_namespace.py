"""A bench pipeline ends when its namespace is gone, so one scenario's cleanup is not on the next one's clock."""

from __future__ import annotations

import secrets

import pytest
from kubernetes import client

from bench.stack import drain_namespace

pytestmark = pytest.mark.k8s

HOLD = "albus.test/hold"


def _namespace_with_config_map(core: client.CoreV1Api, finalizers: list[str] | None = None) -> str:
    ns = f"t-drain-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="held", finalizers=finalizers)))
    return ns


def _gone(core: client.CoreV1Api, ns: str) -> bool:
    try:
        core.read_namespace(ns)
    except client.ApiException as exc:
        return exc.status == 404
    return False


def test_returns_once_the_namespace_controller_has_emptied_and_removed_it(kube_client: client.ApiClient) -> None:
    core = client.CoreV1Api(kube_client)
    ns = _namespace_with_config_map(core)
    took = drain_namespace(core, ns, timeout=120)
    assert took is not None and _gone(core, ns)
    # Draining what is already gone is no error.
    again = drain_namespace(core, ns, timeout=5)
    assert again is not None and again < 5


def test_a_namespace_still_terminating_at_the_deadline_is_reported_not_raised(
    kube_client: client.ApiClient, capsys: pytest.CaptureFixture[str]
) -> None:
    core = client.CoreV1Api(kube_client)
    ns = _namespace_with_config_map(core, finalizers=[HOLD])  # its object cannot go: neither can the namespace
    try:
        assert drain_namespace(core, ns, timeout=2) is None
        assert not _gone(core, ns)
        assert f"namespace {ns} still terminating" in capsys.readouterr().out
    finally:
        core.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}})
    assert drain_namespace(core, ns, timeout=120) is not None and _gone(core, ns)
