"""The entry point: configuration, a run against real NATS and the simulator, graceful stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families
from syncer_helpers import our_objects, syncer_config
from syncer_trees import l4_tree

from albus.broker import NatsServer
from albus.sim.server import SimServer
from albus.sim.testing import SimAdmin
from services.common import subjects
from services.common.bus import Bus
from services.common.contracts import ApplyOutcome, decode
from services.syncer import main as syncer_main
from services.syncer.leases import LEASES_BUCKET, MEMBERS_BUCKET
from services.syncer.replica import STOP_GRACE_SECONDS


def test_main_refuses_bad_configuration(tmp_path: Path) -> None:
    assert syncer_main.main(["--config", str(tmp_path / "missing.yaml")]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"AKOSettings": {"clusterName": "no spaces allowed"}}))
    assert syncer_main.main(["--config", str(bad)]) == 2


async def _running_with_one_tree_applied(
    sim: SimServer, nats: NatsServer, cluster: str, replica_id: str, stop: asyncio.Event
) -> tuple[asyncio.Task[None], Bus, ApplyOutcome]:
    """``syncer_main.run`` started, one tree published and its outcome read: the task, a bus, the outcome."""
    task = asyncio.create_task(syncer_main.run(syncer_config(sim, cluster, nats.url), stop, replica_id=replica_id))
    bus = await Bus.connect(nats.url, "t")
    await bus.ensure_streams()
    tree = l4_tree(cluster, "web")
    await bus.publish(subjects.avi_tree(cluster, tree.tenant, tree.vs_name), tree)
    subj = subjects.outcome(cluster, tree.tenant, tree.vs_name)

    async def outcome() -> ApplyOutcome:
        while True:
            d = await bus.last(subj)
            if d is not None:
                return decode(d.data, ApplyOutcome)
            await asyncio.sleep(0.05)

    return task, bus, await asyncio.wait_for(outcome(), 20)


async def test_run_applies_and_gives_its_leases_back_on_stop(
    nats_server: NatsServer, sim: SimServer, sim_admin: SimAdmin
) -> None:
    cluster = "main-run"
    stop = asyncio.Event()
    task, bus, out = await _running_with_one_tree_applied(sim, nats_server, cluster, "main-1", stop)
    assert out.ok and out.vips
    assert len(our_objects(sim_admin, f"{cluster}--default-web")) == 4

    stop.set()
    await asyncio.wait_for(task, 20)
    leases = await bus.js.key_value(LEASES_BUCKET)
    members = await bus.js.key_value(MEMBERS_BUCKET)
    held = [k for k in await _keys(leases) if k.startswith(f"{cluster}.")]
    assert held == [], "a stopped syncer releases every lease at once"
    assert f"{cluster}.main-1" not in await _keys(members)
    await bus.close()


async def _keys(kv: object) -> list[str]:
    from nats.js.errors import NoKeysError
    from nats.js.kv import KeyValue

    assert isinstance(kv, KeyValue)
    try:
        return list(await kv.keys())
    except NoKeysError:
        return []


async def test_sigterm_stops_the_process_gracefully(
    nats_server: NatsServer, sim: SimServer, tmp_path: Path
) -> None:
    import os
    import signal
    import sys

    cluster = "main-sigterm"
    cfg = syncer_config(sim, cluster, nats_server.url)
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "CTRL_IPADDRESS", "CLUSTER_NAME")}
    endpoint = tmp_path / "syncer.endpoint"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.syncer.main", "--config", str(path), "--replica-id", "sig-1",
        "--metrics-port", "0", "--metrics-port-file", str(endpoint), env=env,
    )
    bus = await Bus.connect(nats_server.url, "t")
    await bus.ensure_streams()

    async def holding() -> None:
        while True:
            try:
                leases = await bus.js.key_value(LEASES_BUCKET)
                if any(k.startswith(f"{cluster}.") for k in await _keys(leases)):
                    return
            except Exception:
                pass
            await asyncio.sleep(0.1)

    await asyncio.wait_for(holding(), 30)

    async def ready() -> str:
        # A live member of the pool is ready (/readyz), and its metrics say what it holds.
        while True:
            if endpoint.exists() and endpoint.read_text().strip():
                url = f"http://{endpoint.read_text().strip()}"
                async with aiohttp.ClientSession() as s, s.get(f"{url}/readyz") as r:
                    if r.status == 200:
                        async with s.get(f"{url}/metrics") as m:
                            return await m.text()
            await asyncio.sleep(0.1)

    scraped = await asyncio.wait_for(ready(), 30)
    held = [s.value for fam in text_string_to_metric_families(scraped) for s in fam.samples
            if s.name == "albus_syncer_partitions_held"]
    assert held and held[0] > 0
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    leases = await bus.js.key_value(LEASES_BUCKET)
    assert not [k for k in await _keys(leases) if k.startswith(f"{cluster}.")]
    await bus.close()


async def test_stop_is_bounded_when_nats_is_gone(fresh_nats: NatsServer, sim: SimServer) -> None:
    """A stop with the broker gone ends within its grace: leases cannot be given back, they expire.

    Kubernetes kills a pod that outlives its termination grace period; a stop
    that waited for the broker (publishing an outcome, releasing 32 leases one
    request timeout each) held the process until then, or for ever under
    ``albus up``.
    """
    stop = asyncio.Event()
    task, bus, _ = await _running_with_one_tree_applied(sim, fresh_nats, "main-nonats", "nonats-1", stop)
    await bus.close()
    fresh_nats.stop()
    stop.set()
    await asyncio.wait_for(task, STOP_GRACE_SECONDS + 10)
