"""The services' HTTP endpoint: /metrics parsed as Prometheus text, /healthz, /readyz, and its wiring in service_main."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from albus.broker import NatsServer
from albus.broker_testing import connected_bus
from services.common import probes, subjects
from services.common.config import Config, ConfigError, parse_config
from services.common.contracts import KubeObject
from services.common.metrics import subject_kind
from services.common.service_main import service_main
from services.health.metrics import record_pool_members
from services.syncer.metrics import object_type


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, await r.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by (name, sorted labels); parsing fails on anything not Prometheus text."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


async def test_endpoint_serves_metrics_liveness_and_readiness() -> None:
    registry = CollectorRegistry()
    hits = Counter("probe_test_hits", "test counter", ["kind"], registry=registry)
    hits.labels("k8s.Service").inc(3)
    ready = probes.Readiness()
    server = await probes.serve("127.0.0.1", 0, registry=registry, readiness=ready)
    try:
        assert server.port > 0 and server.host == "127.0.0.1"
        status, text = await _get(f"{server.url}/metrics")
        assert status == 200
        assert samples(text)[("probe_test_hits_total", (("kind", "k8s.Service"),))] == 3.0

        assert await _get(f"{server.url}/healthz") == (200, "ok\n")
        assert await _get(f"{server.url}/readyz") == (503, "starting\n")  # nothing registered yet

        connected = {"now": False}
        ready.require("nats", lambda: None if connected["now"] else "not connected to NATS")
        ready.require("broken", lambda: 1 // 0 and None)
        status, text = await _get(f"{server.url}/readyz")
        assert status == 503
        assert "nats: not connected to NATS" in text and "broken: check failed: ZeroDivisionError" in text
        ready.drop("broken")
        connected["now"] = True
        assert await _get(f"{server.url}/readyz") == (200, "ready\n")
    finally:
        await server.close()


async def test_a_port_in_use_is_refused() -> None:
    first = await probes.serve("127.0.0.1", 0, registry=CollectorRegistry(), readiness=probes.Readiness())
    try:
        with pytest.raises(OSError):
            await probes.serve("127.0.0.1", first.port, registry=CollectorRegistry(), readiness=probes.Readiness())
    finally:
        await first.close()


def test_subject_kinds_are_bounded_labels() -> None:
    assert subject_kind(subjects.k8s_object("c1", "Service", "ns", "web.x")) == "k8s.Service"
    assert subject_kind(subjects.k8s_synced("c1", "EndpointSlice")) == "k8s.EndpointSlice"
    assert subject_kind(subjects.avi_tree("c1", "admin", "c1--ns-web")) == "avi"
    assert subject_kind(subjects.trees_synced("c1")) == "avisync"
    assert subject_kind(subjects.outcome("c1", "admin", "vs")) == "outcome"
    assert subject_kind(subjects.report("c1", "Service", "ns", "web")) == "report"
    assert subject_kind(subjects.resync_request("c1")) == "ctl.resync"
    assert subject_kind(subjects.resync_done("c1", "syncer", "r-1")) == "ctl.done"
    assert subject_kind(subjects.trace_spans("c1", "ab12")) == "trace.span"
    assert subject_kind("$KV.bucket.key") == "other"
    assert subject_kind("k8s.c1.we-ird~kind.ns.n") == "other"  # never a label made of whatever came


def test_controller_paths_name_their_object_type() -> None:
    assert object_type("virtualservice/virtualservice-1234") == "virtualservice"
    assert object_type("macro") == "macro"
    assert object_type("pool?name=x") == "pool"


def test_pool_members_by_state_never_keeps_a_stale_state() -> None:
    from services.health.metrics import POOL_MEMBERS

    record_pool_members({"up": 3, "down": 1})
    record_pool_members({"up": 4})
    assert POOL_MEMBERS.labels("up")._value.get() == 4
    assert POOL_MEMBERS.labels("down")._value.get() == 0


def test_pool_members_are_counted_from_the_inventory() -> None:
    from services.health.metrics import member_counts
    from services.health.runtime_reader import PoolSummary

    pools = [PoolSummary("a", "u-a", "OPER_UP", servers=3, enabled=3, up=3),
             PoolSummary("b", "u-b", "OPER_DOWN", servers=4, enabled=3, up=1)]
    assert member_counts(pools) == {"up": 4, "not_up": 2, "disabled": 1}


def test_probe_ports_are_per_service_and_checked() -> None:
    cfg = parse_config({"albus": {"probes": {"syncer": 9403}}})
    assert cfg.albus.probes.port("syncer") == 9403 and cfg.albus.probes.port("watcher") == 0
    assert cfg.albus.probes.address == "127.0.0.1"
    with pytest.raises(ConfigError, match=r"albus\.probes\.health"):
        parse_config({"albus": {"probes": {"health": 70000}}})


async def test_bus_counts_messages_in_and_out_by_subject_kind(nats_server: NatsServer) -> None:
    from services.common.metrics import BUS_PUBLISHED, BUS_RECEIVED

    cluster = "probe-bus"
    subject = subjects.k8s_object(cluster, "Namespace", "_", "n1")
    before_out = BUS_PUBLISHED.labels("k8s.Namespace")._value.get()
    before_in = BUS_RECEIVED.labels("k8s.Namespace")._value.get()
    async with connected_bus(nats_server.url, "probe-bus") as bus:
        await bus.publish(subject, KubeObject(cluster=cluster, kind="Namespace", namespace="", name="n1",
                                              uid="u1", resource_version="1", obj={"metadata": {"name": "n1"}}))
        got = await bus.snapshot(subjects.k8s_cluster(cluster))
    assert subject in got
    assert BUS_PUBLISHED.labels("k8s.Namespace")._value.get() == before_out + 1
    assert BUS_RECEIVED.labels("k8s.Namespace")._value.get() == before_in + 1


@pytest.fixture
def root_logging() -> Iterator[None]:
    """service_main sets up the process's root logger: put it back for the tests that run after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("root_logging")
def test_service_main_serves_the_endpoint_on_the_flag_port_and_writes_its_address(tmp_path: Path) -> None:
    """The wiring every service shares: flag over config, port 0 chosen and written, served while running."""
    values = tmp_path / "values.yaml"
    # Tracing off: with it on, service_main installs the process-wide tracer provider (OpenTelemetry allows
    # that once per process), and every later test in this process would stamp "(trace …)" on its Events.
    values.write_text(yaml.safe_dump({"albus": {"probes": {"translator": 1},  # the flag wins over this
                                                "tracing": {"enabled": False}}}))
    port_file = tmp_path / "translator.endpoint"
    seen: dict[str, object] = {}

    async def fake_run(cfg: Config, stop: asyncio.Event, args: argparse.Namespace) -> None:
        host_port = port_file.read_text().strip()
        seen["address"] = host_port
        seen["before"] = await _get(f"http://{host_port}/readyz")
        probes.READINESS.require("fake", lambda: None)
        try:
            seen["after"] = await _get(f"http://{host_port}/readyz")
            seen["metrics"] = await _get(f"http://{host_port}/metrics")
        finally:
            probes.READINESS.drop("fake")

    rc = service_main("translator", None, ["--config", str(values), "--metrics-port", "0",
                                           "--metrics-port-file", str(port_file)], fake_run)
    assert rc == 0
    assert not isinstance(trace.get_tracer_provider(), TracerProvider), "a tracer provider left behind"
    host, port = str(seen["address"]).rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 1
    assert seen["before"] == (503, "starting\n")
    assert seen["after"] == (200, "ready\n")
    status, text = seen["metrics"]  # type: ignore[misc]
    assert status == 200
    names = {fam.name for fam in text_string_to_metric_families(text)}
    assert {"albus_bus_messages_received", "albus_bus_messages_published"} <= names
