"""Cluster identities on the bus, enforced by a real nats-server run with `albus nats-config`'s output.

Cluster A's credentials cannot publish on cluster B's subjects (the server
refuses), cannot change streams, cannot write outcomes; the syncer pool's
identity reads every cluster but cannot forge a cluster's input; a service
started with the wrong cluster's credentials says so and exits.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import yaml

from albus import natsconfig
from albus.broker import NatsServer
from albus.stack import Child
from services.common import subjects
from services.common.bus import Bus, BusRefused
from services.common.contracts import ApplyOutcome, KindSynced, KubeObject, TreesSynced, VsTree, decode
from services.common.incarnation import incarnation
from services.translator.main import REQUIRED_KINDS
from tests.e2e.harness import wait_for

CLUSTERS = ["alpha", "bravo"]


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[NatsServer, dict[str, str]]]:
    """A nats-server with the generated configuration; the NATS URL of each identity by user."""
    ids = natsconfig.identities(CLUSTERS)
    conf = tmp_path / "nats.conf"
    conf.write_text(natsconfig.render(ids))
    server = NatsServer(tmp_path / "nats", config_file=conf).start()
    try:
        yield server, {i.user: i.url(server.url) for i in ids}
    finally:
        server.stop()


@pytest.fixture
async def buses(secured: tuple[NatsServer, dict[str, str]]) -> AsyncIterator[dict[str, Bus]]:
    _, urls = secured
    out = {user: await Bus.connect(url, user) for user, url in urls.items()}
    # The syncer pool's identity owns the streams: it creates them first.
    await out[natsconfig.SYNCER_USER].ensure_streams()
    try:
        yield out
    finally:
        for bus in out.values():
            await bus.close()


def _svc(cluster: str, name: str) -> KubeObject:
    return KubeObject(cluster=cluster, kind="Service", namespace="shop", name=name, uid=f"u-{name}",
                      resource_version="1", obj={"metadata": {"name": name}})


async def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(0.05)


async def _refused(bus: Bus, subject: str, msg: KubeObject | VsTree | ApplyOutcome | TreesSynced) -> str:
    with pytest.raises(BusRefused) as err:
        await bus.publish(subject, msg)
    return str(err.value)


async def test_a_cluster_identity_publishes_only_its_own_subjects(buses: dict[str, Bus]) -> None:
    alpha = buses[natsconfig.cluster_user("alpha")]
    syncer = buses[natsconfig.SYNCER_USER]
    # Its own subjects: accepted and stored.
    await alpha.ensure_streams()  # reads stream info only: allowed, changes nothing
    own = subjects.k8s_object("alpha", "Service", "shop", "web")
    assert await alpha.publish(own, _svc("alpha", "web")) > 0
    tree = VsTree(cluster="alpha", tenant="admin", vs_name="alpha--shop-web")
    assert await alpha.publish(subjects.avi_tree("alpha", "admin", tree.vs_name), tree) > 0

    # Cluster B's subjects, whatever the message says: refused by the server.
    theirs = subjects.k8s_object("bravo", "Service", "shop", "web")
    assert "permissions violation for publish" in (await _refused(alpha, theirs, _svc("bravo", "web"))).lower()
    forged = VsTree(cluster="bravo", tenant="admin", vs_name="bravo--shop-web")
    await _refused(alpha, subjects.avi_tree("bravo", "admin", forged.vs_name), forged)
    await _refused(alpha, subjects.trees_synced("bravo"), TreesSynced(cluster="bravo", epoch="x"))
    # Outcomes are the syncer pool's word, not a cluster's.
    outcome = ApplyOutcome(cluster="alpha", tenant="admin", vs_name="alpha--shop-web", checksum="c", ok=True)
    await _refused(alpha, subjects.outcome("alpha", "admin", outcome.vs_name), outcome)

    # Nothing refused reached a stream; what was allowed did.
    assert await syncer.last(theirs) is None
    assert await syncer.last(subjects.avi_tree("bravo", "admin", forged.vs_name)) is None
    assert await syncer.last(subjects.outcome("alpha", "admin", outcome.vs_name)) is None
    got = await syncer.last(own)
    assert got is not None and decode(got.data, KubeObject).name == "web"


async def test_a_cluster_identity_cannot_administer_streams(buses: dict[str, Bus]) -> None:
    alpha = buses[natsconfig.cluster_user("alpha")]
    for api in ("STREAM.PURGE", "STREAM.DELETE", "STREAM.UPDATE"):
        before = len(alpha.refusals)
        with pytest.raises(Exception):  # noqa: B017 - no answer comes: the server dropped the request
            await alpha.nc.request(f"$JS.API.{api}.{subjects.STREAM_K8S}", b"{}", timeout=2)
        await _until(lambda b=before: len(alpha.refusals) > b, 10, f"the server to refuse {api}")
        assert f"$JS.API.{api}.{subjects.STREAM_K8S}".lower() in alpha.refusals[-1].lower()
    # The stream is intact.
    info = await buses[natsconfig.SYNCER_USER].js.stream_info(subjects.STREAM_K8S)
    assert info.config.subjects == ["k8s.>"]


async def test_cluster_identity_follows_its_stream_and_the_syncer_reads_all(buses: dict[str, Bus]) -> None:
    alpha, bravo = buses[natsconfig.cluster_user("alpha")], buses[natsconfig.cluster_user("bravo")]
    syncer = buses[natsconfig.SYNCER_USER]
    await alpha.publish(subjects.k8s_object("alpha", "Service", "shop", "a1"), _svc("alpha", "a1"))
    await bravo.publish(subjects.k8s_object("bravo", "Service", "shop", "b1"), _svc("bravo", "b1"))
    mine = await alpha.snapshot(subjects.k8s_cluster("alpha"), timeout=20)
    assert {decode(d.data, KubeObject).name for d in mine.values()} >= {"a1"}
    every = await syncer.snapshot("k8s.>", timeout=20)
    assert {"alpha", "bravo"} <= {decode(d.data, KubeObject).cluster for d in every.values()}
    # The syncer pool may not forge a cluster's input.
    await _refused(syncer, subjects.k8s_object("alpha", "Service", "shop", "x"), _svc("alpha", "x"))
    # ...and writes outcomes and its KV buckets.
    outcome = ApplyOutcome(cluster="bravo", tenant="admin", vs_name="bravo--shop-b1", checksum="c", ok=True)
    assert await syncer.publish(subjects.outcome("bravo", "admin", outcome.vs_name), outcome) > 0
    kv = await syncer.js.create_key_value(bucket="albus_permission_probe")
    assert await kv.put("k", b"v") > 0


async def test_a_service_with_another_clusters_credentials_says_so_and_exits(
        secured: tuple[NatsServer, dict[str, str]], buses: dict[str, Bus], tmp_path: Path) -> None:
    _, urls = secured
    bravo = buses[natsconfig.cluster_user("bravo")]
    # Bravo's watcher has listed everything: a translator for bravo will publish its TreesSynced marker.
    for kind in REQUIRED_KINDS:
        await bravo.publish(subjects.k8s_synced("bravo", kind),
                            KindSynced(cluster="bravo", kind=kind, resource_version="1", count=0, epoch="e1",
                                       incarnation=await incarnation(bravo, subjects.STREAM_K8S)))
    # A translator for bravo started with alpha's credentials.
    cfg = tmp_path / "bravo.yaml"
    cfg.write_text(yaml.safe_dump({"AKOSettings": {"clusterName": "bravo"},
                                   "albus": {"natsUrl": urls[natsconfig.cluster_user("alpha")]}}))
    child = Child("translator", [sys.executable, "-m", "albus.cli", "translator", "--config", str(cfg)],
                  tmp_path / "translator.log").start()
    try:
        await asyncio.to_thread(wait_for, lambda: not child.alive, 60, "the translator to exit")
        assert child.proc is not None and child.proc.returncode == 3, child.log_tail()
        log = child.log_tail()
        assert "nats refused this identity" in log and '"avisync.bravo"' in log, log
        assert "check AKOSettings.clusterName and the NATS user" in log, log
    finally:
        child.stop()
    assert await bravo.nc.jetstream().stream_info(subjects.STREAM_AVI) is not None
    assert await buses[natsconfig.SYNCER_USER].last(subjects.trees_synced("bravo")) is None
