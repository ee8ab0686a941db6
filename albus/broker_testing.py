"""Pytest fixtures for a real NATS server with JetStream, and a real 3-node NATS cluster."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from albus.broker import NatsServer
from albus.broker_cluster import NatsCluster
from services.common.bus import Bus


@contextlib.asynccontextmanager
async def connected_bus(url: str, name: str) -> AsyncIterator[Bus]:
    """A bus on ``url`` with albus's streams in place, closed afterwards."""
    bus = await Bus.connect(url, name)
    await bus.ensure_streams()
    try:
        yield bus
    finally:
        await bus.close()


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """One broker for the test session; tests keep apart by cluster name."""
    server = NatsServer(Path(tmp_path_factory.mktemp("nats")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A broker of the test's own, for tests that restart or kill it."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """Three clustered nats-servers of the test's own (JetStream, loopback), for tests that kill nodes."""
    cluster = NatsCluster(tmp_path / "nats-cluster", size=3)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
