"""Fixtures of the simulator's own tests (the shared ones live in albus/sim/testing.py)."""

from __future__ import annotations

import pytest

from albus.sim.testing import SimClient


@pytest.fixture
def client(sim_client: SimClient) -> SimClient:
    return sim_client
