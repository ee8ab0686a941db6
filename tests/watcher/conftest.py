"""Fixtures for the watcher against the real control plane and a real nats-server."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from watcher_helpers import BusLog, Kube, cluster_role, make_config

from albus.broker import NatsServer
from albus.broker_testing import connected_bus
from albus.controlplane.launcher import ControlPlane
from services.common.bus import Bus
from services.common.config import Config


@pytest.fixture(scope="session")
def watcher_kubeconfig(control_plane: ControlPlane) -> Path:
    """An identity bound to exactly the albus-watcher ClusterRole."""
    return control_plane.kubeconfig_for("albus-watcher-test", cluster_role("albus-watcher"))


@pytest.fixture
def cluster() -> str:
    """A cluster name of the test's own: its subjects on the shared broker are its own."""
    return f"w-{secrets.token_hex(4)}"


@pytest.fixture
def watcher_cfg(cluster: str, nats_server: NatsServer, watcher_kubeconfig: Path, kube_namespace: str) -> Config:
    # The Lease lives in the test's namespace, so tests never contend for one.
    return make_config(cluster, nats_server.url, watcher_kubeconfig, kube_namespace)


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[Bus]:
    async with connected_bus(nats_server.url, "watcher-test") as b:
        yield b


@pytest.fixture
async def bus_log(bus: Bus, cluster: str) -> AsyncIterator[BusLog]:
    log = BusLog(cluster)
    await log.start(bus)
    try:
        yield log
    finally:
        await log.stop()


@pytest.fixture
def kube(control_plane: ControlPlane) -> Kube:
    return Kube(control_plane)
