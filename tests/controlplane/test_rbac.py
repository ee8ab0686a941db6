"""Identities bound to a ClusterRole YAML get exactly that role's rights."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from albus.controlplane.launcher import ControlPlane

pytestmark = pytest.mark.k8s

ROLE = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: albus-test-configmap-reader
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: ignored-by-kubeconfig-for
  namespace: default
"""


@pytest.mark.parametrize("as_service_account", [False, True], ids=["client-cert-user", "service-account"])
def test_kubeconfig_for_clusterrole(
    control_plane: ControlPlane,
    kube_client: client.ApiClient,
    kube_namespace: str,
    tmp_path: Path,
    as_service_account: bool,
) -> None:
    role_file = tmp_path / "clusterrole.yaml"
    role_file.write_text(ROLE)
    kubeconfig = control_plane.kubeconfig_for(
        "reader", role_file, service_account_namespace=kube_namespace if as_service_account else None
    )
    admin = client.CoreV1Api(kube_client)
    admin.create_namespaced_config_map(kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c")))

    with control_plane.kube_client(kubeconfig) as api_client:
        reader = client.CoreV1Api(api_client)
        assert [c.metadata.name for c in reader.list_namespaced_config_map(kube_namespace).items] == ["c"]
        for forbidden in (
            lambda: reader.list_namespaced_secret(kube_namespace),
            lambda: reader.create_namespaced_config_map(
                kube_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="d"))
            ),
        ):
            with pytest.raises(ApiException) as denied:
                forbidden()
            assert denied.value.status == 403
        who = client.AuthenticationV1Api(api_client).create_self_subject_review(
            client.V1SelfSubjectReview()
        ).status.user_info.username
    expected = f"system:serviceaccount:{kube_namespace}:reader" if as_service_account else "reader"
    assert who == expected


def test_project_clusterrole_is_accepted(control_plane: ControlPlane) -> None:
    # The ClusterRole the deployment ships must be valid RBAC for this API
    # server; the services' own tests then run with it.
    shipped = Path(__file__).resolve().parents[2] / "deploy" / "rbac" / "clusterrole.yaml"
    kubeconfig = control_plane.kubeconfig_for("albus-shipped-watcher", shipped, role="albus-watcher")
    with control_plane.kube_client(kubeconfig) as api_client:
        review = client.AuthorizationV1Api(api_client).create_self_subject_rules_review(
            client.V1SelfSubjectRulesReview(spec=client.V1SelfSubjectRulesReviewSpec(namespace="default"))
        )
    granted = {(g, r) for rule in review.status.resource_rules for g in rule.api_groups or [""] for r in rule.resources or []}
    assert ("", "services") in granted
