"""Put what the chart renders on the test control plane: objects by server-side apply, ServiceAccount tokens."""

from __future__ import annotations

import base64
import urllib.parse
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from albus.controlplane.launcher import ControlPlane

FIELD_MANAGER = "albus-deploy-test"


class Resources:
    """(apiVersion, kind) → (plural, namespaced), from the API server's discovery."""

    def __init__(self, cp: ControlPlane) -> None:
        self._map: dict[tuple[str, str], tuple[str, bool]] = {}
        versions = ["v1"]
        groups = cp.request_json("GET", "/apis")["groups"]
        versions += [v["groupVersion"] for g in groups for v in g["versions"]]
        for gv in versions:
            base = "/api/v1" if gv == "v1" else f"/apis/{gv}"
            for r in cp.request_json("GET", base)["resources"]:
                if "/" not in r["name"]:
                    self._map[(gv, r["kind"])] = (r["name"], r["namespaced"])

    def url(self, obj: dict[str, Any]) -> str:
        gv, kind, meta = obj["apiVersion"], obj["kind"], obj["metadata"]
        plural, namespaced = self._map[(gv, kind)]
        base = "/api/v1" if gv == "v1" else f"/apis/{gv}"
        ns = f"/namespaces/{meta['namespace']}" if namespaced else ""
        return f"{base}{ns}/{plural}/{urllib.parse.quote(meta['name'])}"


def apply(cp: ControlPlane, resources: Resources, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
    """Server-side apply ``obj`` (``dry_run``: validated and admitted by the API server, not stored)."""
    query = {"fieldManager": FIELD_MANAGER, "force": "true"}
    if dry_run:
        query["dryRun"] = "All"
    return cp.request_json("PATCH", f"{resources.url(obj)}?{urllib.parse.urlencode(query)}", obj,
                           content_type="application/apply-patch+yaml")


def token_kubeconfig(cp: ControlPlane, namespace: str, service_account: str, path: Path) -> Path:
    """A kubeconfig holding a TokenRequest token of ``service_account``, as a pod's projected token would."""
    reply = cp.request_json(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600}})
    ca = base64.b64encode(cp.ca_file.read_bytes()).decode()
    user = f"system:serviceaccount:{namespace}:{service_account}"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": cp.server, "certificate-authority-data": ca}}],
        "users": [{"name": user, "user": {"token": reply["status"]["token"]}}],
        "contexts": [{"name": "sa", "context": {"cluster": "test", "user": user}}],
        "current-context": "sa",
    }))
    path.chmod(0o600)
    return path


def allowed(cp: ControlPlane, kubeconfig: Path, verb: str, group: str, resource: str) -> bool:
    """What the identity in ``kubeconfig`` may do, asked of the authorizer as that identity."""
    api = cp.kube_client(kubeconfig)
    try:
        review = client.AuthorizationV1Api(api).create_self_subject_access_review(
            client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(verb=verb, group=group, resource=resource))))
        return bool(review.status.allowed)
    finally:
        api.close()
