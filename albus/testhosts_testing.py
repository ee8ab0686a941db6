"""Pytest plugin: `test_host` — a network namespace with a veth pair for backends with non-loopback IPs.

Skipped with the reason when namespaces cannot be created (not root, no iproute2).
Everything (backends, namespace, links) is removed after the test, failed or not.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from albus.testhosts import TestHost, available


@pytest.fixture
def test_host() -> Iterator[TestHost]:
    why = available()
    if why is not None:
        pytest.skip(f"no test host: {why}")
    with TestHost() as host:
        yield host
