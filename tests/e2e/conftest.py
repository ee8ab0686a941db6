"""Fixtures for end-to-end tests: one pipeline (four service processes + simulator) per test."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from albus.broker import NatsServer
from tests.e2e.harness import CLUSTER_IDS, CLUSTERROLE, Pipeline, make_pipeline

# Pytest loads this file as ``e2e.conftest``; a test module importing ``tests.e2e.conftest`` (for
# e2e_pipeline) gets a second copy of it. The counter lives in the harness, imported one way only,
# so both copies name clusters (and namespaces) from one sequence.
_ids = CLUSTER_IDS


@pytest.fixture
def sim_args() -> list[str]:
    """Extra simulator options; a test module overrides this (e.g. `--dataplane`)."""
    return []


@contextlib.contextmanager
def e2e_pipeline(control_plane: Any, nats_url: str, tmp_path: Path, sim_args: list[str],
                 request: pytest.FixtureRequest, albus: dict[str, Any] | None = None) -> Iterator[Pipeline]:
    """A pipeline of its own (cluster name, namespace, simulator, four services) on the bus at ``nats_url``."""
    cluster = f"e2e{os.getpid() % 1000}x{next(_ids)}"
    api = control_plane.kube_client()
    core = client.CoreV1Api(api)
    ns = f"{cluster}-ns"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns, labels={"albus-e2e": cluster})))
    # The services run as the project's ClusterRole, never as admin: a missing permission fails here.
    kubeconfig = control_plane.kubeconfig_for(f"albus-{cluster}", CLUSTERROLE)
    # A test module may bring its own controller seed (CONTROLLER_SEED = path).
    p = make_pipeline(tmp_path, cluster, ns, api, kubeconfig, nats_url,
                      seed=getattr(request.module, "CONTROLLER_SEED", None), sim_args=sim_args, albus=albus)
    p.start_services()
    try:
        yield p
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(p.logs())
            print("--- sim ---\n" + p.sim.log_tail(3000))
        p.stop_services()
        p.sim.stop()
        core.delete_namespace(ns)


@pytest.fixture
def pipeline(control_plane: Any, nats_server: NatsServer, tmp_path: Path, sim_args: list[str],
             request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    with e2e_pipeline(control_plane, nats_server.url, tmp_path, sim_args, request) as p:
        yield p


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep
