"""Fixtures for the syncer tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from services.syncer.avi_client import ControllerClient


@pytest_asyncio.fixture
async def client_factory() -> AsyncIterator[list[ControllerClient]]:
    """Controller clients made by a test (see syncer_helpers.make_client), closed after it."""
    made: list[ControllerClient] = []
    yield made
    for c in made:
        await c.close()
