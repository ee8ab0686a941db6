"""What a user sees with ``kubectl describe``: a Service's albus condition and Events, AviInfraSettings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.e2e.harness import Pipeline

CONDITION = "albus.io/LoadBalancerProgrammed"
GROUP, VERSION, PLURAL = "ako.vmware.com", "v1beta1", "aviinfrasettings"


def condition(p: Pipeline, name: str) -> dict[str, Any] | None:
    s = p.api.sanitize_for_serialization(p.core.read_namespaced_service_status(name, p.namespace))
    return next((c for c in (s.get("status") or {}).get("conditions") or [] if c["type"] == CONDITION), None)


def failed_with(p: Pipeline, name: str, reason: str) -> dict[str, Any] | None:
    c = condition(p, name)
    return c if c and c["status"] == "False" and c["reason"] == reason else None


def events(p: Pipeline, name: str, namespace: str | None = None, kind: str = "Service") -> list[Any]:
    evs = client.CoreV1Api(p.api).list_namespaced_event(namespace or p.namespace).items
    return [e for e in evs if e.involved_object.name == name and e.involved_object.kind == kind]


def ref_name(ref: str) -> str:
    """The name in a reference rendered with include_name (``.../<uuid>#<name>``)."""
    return ref.rsplit("#", 1)[-1]


class InfraSettings:
    """AviInfraSettings a test creates (cluster-scoped: named after the test's cluster, deleted after it)."""

    def __init__(self, p: Pipeline) -> None:
        self.api = client.CustomObjectsApi(p.api)
        self.prefix = p.cluster
        self.names: list[str] = []

    def name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    def create(self, short: str, spec: dict[str, Any]) -> str:
        name = self.name(short)
        self.api.create_cluster_custom_object(GROUP, VERSION, PLURAL, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "AviInfraSetting", "metadata": {"name": name}, "spec": spec})
        self.names.append(name)
        return name

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.api.patch_cluster_custom_object(GROUP, VERSION, PLURAL, name, {"spec": spec})

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.api.get_cluster_custom_object(GROUP, VERSION, PLURAL, name).get("status") or {})

    def delete_all(self) -> None:
        for n in self.names:
            try:
                self.api.delete_cluster_custom_object(GROUP, VERSION, PLURAL, n)
            except ApiException as exc:
                if exc.status != 404:
                    raise


@contextmanager
def infra_settings(p: Pipeline) -> Iterator[InfraSettings]:
    s = InfraSettings(p)
    try:
        yield s
    finally:
        s.delete_all()
