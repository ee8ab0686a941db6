"""Fixtures for multi-cluster tests: three API servers, one simulator, one secured nats-server."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from albus import natsconfig
from albus.broker import NatsServer
from albus.controlplane import builder
from albus.controlplane.launcher import ControlPlane
from albus.stack import Child, SimProcess
from tests.e2e.conftest import pytest_runtest_makereport  # noqa: F401 - rep_call on items
from tests.multicluster.fleet import Member, make_member, seed_with_tenants, syncer_pool

# Distinct per pytest process: several runs may share a machine, never a bus.
_RUN = f"{os.getpid() % 1000}"
CLUSTERS = {f"mc{_RUN}a": "admin", f"mc{_RUN}b": "admin", f"mc{_RUN}c": "team-c"}


@pytest.fixture(scope="module")
def planes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ControlPlane]]:
    """A kube-apiserver with its own etcd per cluster."""
    assets = builder.locate()
    if assets is None:
        pytest.fail("the Kubernetes control plane is not built: run `make controlplane`", pytrace=False)
    out: dict[str, ControlPlane] = {}
    try:
        for name in CLUSTERS:
            cp = ControlPlane(tmp_path_factory.mktemp(f"cp-{name}"), assets=assets, gateway_api=False,
                              start_timeout=120)
            cp.start()
            out[name] = cp
        yield out
    finally:
        for cp in out.values():
            cp.stop()


@pytest.fixture(scope="module")
def identities() -> dict[str, natsconfig.Identity]:
    return {i.user: i for i in natsconfig.identities(list(CLUSTERS))}


@pytest.fixture(scope="module")
def secured_nats(tmp_path_factory: pytest.TempPathFactory,
                 identities: dict[str, natsconfig.Identity]) -> Iterator[NatsServer]:
    workdir = tmp_path_factory.mktemp("nats")
    conf = workdir / "nats.conf"
    conf.write_text(natsconfig.render(list(identities.values())))
    server = NatsServer(workdir / "data", config_file=conf).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def fleet(planes: dict[str, ControlPlane], secured_nats: NatsServer, identities: dict[str, natsconfig.Identity],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Member]]:
    workdir = tmp_path_factory.mktemp("fleet")
    seed = seed_with_tenants(workdir / "seed.yaml", sorted(set(CLUSTERS.values()) - {"admin"}))
    sim = SimProcess(workdir, seed=seed).start()
    members: dict[str, Member] = {}
    pool: list[Child] = []
    try:
        pool = syncer_pool(workdir, 2, CLUSTERS, sim, secured_nats, identities)
        for name, tenant in CLUSTERS.items():
            members[name] = make_member(workdir / name, name, tenant, planes[name], sim, secured_nats, identities)
            members[name].start_services()
        yield members
    finally:
        for m in members.values():
            m.stop_services()
        for child in pool:
            print(f"--- {child.name} ---\n{child.log_tail(2000)}")
            child.stop()
        sim.stop()


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and "fleet" in request.fixturenames:
        members: dict[str, Member] = request.getfixturevalue("fleet")
        for m in members.values():
            print(f"===== {m.cluster} =====\n{m.logs()}")
        first = next(iter(members.values()), None)
        if first is not None:
            print("--- sim ---\n" + first.sim.log_tail(3000))
