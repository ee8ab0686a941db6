"""Server-side apply: field ownership and conflicts between managers."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from albus.controlplane.launcher import ControlPlane, HttpError

pytestmark = pytest.mark.k8s


def test_server_side_apply_conflicts_between_managers(control_plane: ControlPlane, kube_namespace: str) -> None:
    path = f"/api/v1/namespaces/{kube_namespace}/configmaps/owned"

    def apply(manager: str, value: str, force: bool = False) -> dict[str, object]:
        query = urllib.parse.urlencode({"fieldManager": manager, **({"force": "true"} if force else {})})
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owned"}, "data": {"vip": value}}
        return control_plane.request_json("PATCH", f"{path}?{query}", body, content_type="application/apply-patch+yaml")

    apply("albus-health", "10.0.0.10")
    with pytest.raises(HttpError) as conflict:
        apply("someone-else", "10.0.0.99")
    assert conflict.value.status == 409
    assert 'conflict with "albus-health": .data.vip' in json.loads(conflict.value.body)["message"]

    taken = apply("someone-else", "10.0.0.99", force=True)
    assert taken["data"] == {"vip": "10.0.0.99"}
    managers = [m["manager"] for m in taken["metadata"]["managedFields"]]  # type: ignore[index]
    assert managers == ["someone-else"]
