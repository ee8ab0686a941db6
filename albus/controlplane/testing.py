"""Pytest plugin: a real control plane per session, a fresh namespace per test.

Fixtures:

* ``control_plane`` (session): a started
  :class:`~albus.controlplane.launcher.ControlPlane` with the project's CRDs
  and the Gateway API standard-channel CRDs installed. Fails (does not skip)
  when the binaries are missing: run ``make controlplane``.
* ``kube_client`` (session): admin ``kubernetes.client.ApiClient``.
* ``kube_namespace`` (function): name of a new namespace whose ``default``
  ServiceAccount exists (so Pods are admitted); deleted after the test.
  The session's start time is printed in pytest's terminal summary.
* ``gateway_experimental_routes`` (session): installs the experimental
  TCPRoute/UDPRoute/TLSRoute CRDs; returns their names.

Other fixtures mint identities with ``control_plane.kubeconfig_for(name,
clusterrole_yaml)`` and force history away with ``control_plane.compact()``.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from albus.controlplane import builder
from albus.controlplane.launcher import ControlPlane, HttpError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    assets = builder.locate()
    if assets is None:
        pytest.fail(
            "the Kubernetes control plane is not built: run `make controlplane` "
            f"(or set ALBUS_CONTROLPLANE_BIN); cache {builder.cache_dir()}",
            pytrace=False,
        )
    cp = ControlPlane(tmp_path_factory.mktemp("controlplane"), assets=assets)
    started = time.monotonic()
    cp.start()
    _started_in.append(time.monotonic() - started)
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def kube_client(control_plane: ControlPlane) -> Iterator[ApiClient]:
    client = control_plane.kube_client()
    try:
        yield client
    finally:
        client.close()  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def gateway_experimental_routes(control_plane: ControlPlane) -> list[str]:
    return control_plane.install_crds(control_plane.experimental_route_crds())


@pytest.fixture
def kube_namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{stem}-{secrets.token_hex(3)}"
    control_plane.request(
        "POST",
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {"albus.test/namespace": "true"}}},
    )
    _ensure_default_service_account(control_plane, name)
    try:
        yield name
    finally:
        # Not waited for: the namespace controller empties it in the background.
        control_plane.request("DELETE", f"/api/v1/namespaces/{name}", expect=(200, 202, 404))


def _ensure_default_service_account(cp: ControlPlane, namespace: str) -> None:
    # kube-controller-manager's serviceaccount controller makes it too, but a
    # test should not wait for that controller to come up: without the
    # account the ServiceAccount admission plugin refuses every Pod.
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"
    body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    try:
        cp.apply(path, body)
    except HttpError as err:
        if err.status != 409:  # the controller created it at the same moment
            raise
        cp.apply(path, body)


_started_in: list[float] = []


def pytest_configure(config: Any) -> None:
    # Keep the marker known even when this plugin is used outside this repo.
    config.addinivalue_line("markers", "k8s: needs the real kube-apiserver/etcd control plane")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for seconds in _started_in:
        terminalreporter.write_line(f"albus control plane: started in {seconds:.1f}s")
