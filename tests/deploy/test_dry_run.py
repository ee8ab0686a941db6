"""Every object both charts render, with default and AKO-style values, accepted by a real kube-apiserver.

A control plane of its own starts with no CRD of albus's; the albus chart's
CRDs (``helm template --include-crds``, i.e. its ``crds/`` files) are
installed first, then every rendered object goes through server-side apply
with ``dryRun=All``: schema validation, defaulting and admission of the real
API server, nothing stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from albus.controlplane import builder
from albus.controlplane.launcher import ControlPlane
from tests.deploy.charts import AKO_VALUES, ALBUS, HUB, HUB_VALUES, render
from tests.deploy.rendered import Resources, apply

pytestmark = [pytest.mark.k8s]

RENDERS: dict[str, tuple[Path, list[Path], dict[str, str], str]] = {
    "albus-default": (ALBUS, [], {}, "albus-system"),
    "albus-ako": (ALBUS, [AKO_VALUES], {}, "avi-system"),
    "albus-everything": (ALBUS, [AKO_VALUES], {"syncer.enabled": "true", "nats.leaf.enabled": "true",
                                               "namespace.create": "true", "sealingKey.secretName": "sealing"},
                         "albus-all"),
    "albus-readiness-gate": (ALBUS, [AKO_VALUES], {"readinessGate.enabled": "true"}, "albus-gate"),
    "hub-default": (HUB, [], {}, "albus-hub"),
    "hub-values": (HUB, [HUB_VALUES], {}, "albus-hub2"),
}


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    assets = builder.locate()
    if assets is None:
        pytest.fail("the Kubernetes control plane is not built: run `make controlplane`", pytrace=False)
    # No CRD of albus's at start: the chart's own are installed by the test below.
    cp = ControlPlane(tmp_path_factory.mktemp("cp-deploy"), assets=assets, crds=[], controller_manager=False)
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="module")
def crds_installed(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    crds = [o for o in render(ALBUS, crds=True) if o["kind"] == "CustomResourceDefinition"]
    assert [c["metadata"]["name"] for c in crds] == ["aviinfrasettings.ako.vmware.com"]
    path = tmp_path_factory.mktemp("crds") / "crds.yaml"
    path.write_text(yaml.safe_dump_all(crds))
    return plane.install_crds([path])


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_every_rendered_object_passes_server_side_dry_run(name: str, plane: ControlPlane,
                                                          crds_installed: list[str]) -> None:
    chart, values, sets, namespace = RENDERS[name]
    objs = [o for o in render(chart, values, sets, namespace=namespace) if o["kind"] != "CustomResourceDefinition"]
    assert len(objs) >= 7
    resources = Resources(plane)
    if not any(o["kind"] == "Namespace" for o in objs):
        plane.apply(f"/api/v1/namespaces/{namespace}", {"apiVersion": "v1", "kind": "Namespace",
                                                          "metadata": {"name": namespace}})
    # Namespaces first, as helm orders them; a dry-run Namespace is not stored, so
    # the namespaced objects of a chart that renders its own go into a real one.
    objs.sort(key=lambda o: o["kind"] != "Namespace")
    accepted: list[str] = []
    for obj in objs:
        if obj["kind"] == "Namespace":
            apply(plane, resources, obj, dry_run=True)
            apply(plane, resources, obj)
        answer: dict[str, Any] = apply(plane, resources, obj, dry_run=True)
        assert answer["kind"] == obj["kind"] and answer["metadata"]["name"] == obj["metadata"]["name"]
        accepted.append(f"{obj['kind']}/{obj['metadata']['name']}")
    kinds = {a.split("/")[0] for a in accepted}
    if chart == ALBUS:
        assert {"Deployment", "ConfigMap", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
                "IngressClass", "GatewayClass"} <= kinds
        if sets.get("readinessGate.enabled") == "true":
            assert "Service/albus-webhook" in accepted  # the webhook's Service, in front of health
    else:
        assert {"StatefulSet", "Deployment", "ConfigMap", "Service", "ServiceAccount"} <= kinds


def test_a_bad_object_is_refused(plane: ControlPlane, crds_installed: list[str]) -> None:
    """The dry run is a real check: a Deployment with a malformed probe port is refused."""
    from albus.controlplane.launcher import HttpError

    objs = render(ALBUS)
    deployment = next(o for o in objs if o["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = "no_such_port!"
    plane.apply("/api/v1/namespaces/albus-system", {"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": "albus-system"}})
    with pytest.raises(HttpError) as err:
        apply(plane, Resources(plane), deployment, dry_run=True)
    assert err.value.status == 422


def test_an_aviinfrasetting_is_accepted_by_the_chart_crd(plane: ControlPlane, crds_installed: list[str]) -> None:
    setting = {"apiVersion": "ako.vmware.com/v1beta1", "kind": "AviInfraSetting", "metadata": {"name": "gold"},
               "spec": {"seGroup": {"name": "seg-gold"}, "network": {"vipNetworks": [{"networkName": "vip-gold"}]}}}
    answer = apply(plane, Resources(plane), setting, dry_run=True)
    assert answer["spec"]["seGroup"]["name"] == "seg-gold"
