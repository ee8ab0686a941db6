"""Fixtures for the syncer tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.syncer.avi_client import ControllerClient


@pytest.fixture
def client_factory() -> Iterator[list[ControllerClient]]:
    """Controller clients made by a test (see syncer_helpers.make_client), closed after it."""
    made: list[ControllerClient] = []
    yield made
    for c in made:
        c.close()
