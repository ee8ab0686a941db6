"""Fixtures for health against the real control plane and a real nats-server."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from health_helpers import Kube, Publisher, cluster_role

from albus.broker import NatsServer
from albus.broker_testing import connected_bus
from albus.controlplane.launcher import ControlPlane
from services.common.bus import Bus
from services.common.config import Config, parse_config


@pytest.fixture(scope="session")
def health_kubeconfig(control_plane: ControlPlane) -> Path:
    """An identity bound to exactly the albus-health ClusterRole."""
    return control_plane.kubeconfig_for("albus-health-test", cluster_role("albus-health"))


@pytest.fixture
def health_api(control_plane: ControlPlane, health_kubeconfig: Path) -> Iterator[Any]:
    """An API client with health's identity (the albus-health ClusterRole)."""
    api = control_plane.kube_client(health_kubeconfig)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def cluster() -> str:
    return f"h-{secrets.token_hex(4)}"


@pytest.fixture
def health_cfg(cluster: str, nats_server: NatsServer, health_kubeconfig: Path) -> Config:
    return parse_config({
        "AKOSettings": {"clusterName": cluster},
        "albus": {"natsUrl": nats_server.url, "kubeconfig": str(health_kubeconfig)},
    })


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[Bus]:
    async with connected_bus(nats_server.url, "health-test") as b:
        yield b


@pytest.fixture
def publish(bus: Bus, cluster: str) -> Publisher:
    return Publisher(bus, cluster)


@pytest.fixture
def kube(control_plane: ControlPlane) -> Kube:
    return Kube(control_plane)
