"""Fixtures for tracing tests: a real OTLP/gRPC receiver, and the e2e pipeline exporting to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# The end-to-end fixtures (``pipeline`` and what it needs), whatever they are named.
from tests.e2e.conftest import *  # noqa: F403
from tests.tracing.otlp_receiver import OtlpReceiver


@pytest.fixture
def otlp() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver().start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def traced_env(otlp: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> OtlpReceiver:
    """The standard OTEL_* variables the service processes inherit, pointing at ``otlp``; JSON logs."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    monkeypatch.setenv("ALBUS_LOG_FORMAT", "json")
    return otlp
