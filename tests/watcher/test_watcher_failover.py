"""Two watcher processes on one cluster: one publishes, the other takes over when it dies."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from watcher_helpers import BusLog, Kube, wait_for

from services.common.config import Config
from services.watcher.lease import lease_name

pytestmark = pytest.mark.k8s

REPO = Path(__file__).resolve().parents[2]


class WatcherProcess:
    def __init__(self, config: Path, identity: str, log: Path) -> None:
        self.identity = identity
        self.log = log
        self._out: IO[bytes] = log.open("wb")
        env = {**os.environ, "POD_NAME": identity}
        env.pop("KUBECONFIG", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.watcher.main", "--config", str(config)],
            cwd=REPO, env=env, stdout=self._out, stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._out.close()


@pytest.fixture
def spawn(tmp_path: Path, watcher_cfg: Config) -> Iterator[Any]:
    config = tmp_path / "values.yaml"
    config.write_text(yaml.safe_dump(watcher_cfg.model_dump(mode="json")))
    procs: list[WatcherProcess] = []

    def start(identity: str) -> WatcherProcess:
        p = WatcherProcess(config, identity, tmp_path / f"{identity}.log")
        procs.append(p)
        return p

    try:
        yield start
    finally:
        for p in procs:
            p.close()


async def test_standby_takes_over_when_the_leader_dies_and_a_graceful_stop_releases(
    spawn: Any, watcher_cfg: Config, kube: Kube, bus_log: BusLog, kube_namespace: str
) -> None:
    ns = kube_namespace
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{lease_name(watcher_cfg.cluster)}"

    async def holder() -> str:
        try:
            lease = await kube.call("GET", lease_path)
        except Exception:
            return ""
        return str(lease["spec"].get("holderIdentity") or "")

    async def holder_becomes(identity: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (now := await holder()) != identity:
            assert time.monotonic() < deadline, f"lease holder is {now!r}, not {identity!r}"
            await asyncio.sleep(0.2)

    leader: WatcherProcess = spawn("watcher-a")
    await holder_becomes("watcher-a", 30)
    await wait_for(lambda: bus_log.synced("Service"), 30, "the leader's first Service list")

    standby: WatcherProcess = spawn("watcher-b")
    await wait_for(lambda: "standing by" in standby.output(), 30, "the second watcher to stand by")
    assert await holder() == "watcher-a"
    assert len(bus_log.synced("Service")) == 1  # the standby published nothing

    leader.proc.send_signal(signal.SIGKILL)  # no chance to hand the lease back
    leader.proc.wait(10)
    killed = time.monotonic()
    await kube.create_service(ns, "after-failover")
    await wait_for(lambda: bus_log.latest("Service", ns, "after-failover"), 60, "the standby to publish")
    took = time.monotonic() - killed
    assert await holder() == "watcher-b"
    # It waited out the dead leader's lease (15 s, less the <= 2 s since the
    # last renewal it saw) rather than taking over a live one.
    assert took > 10, took

    standby.proc.send_signal(signal.SIGTERM)
    assert standby.proc.wait(30) == 0, standby.output()
    assert await holder() == ""  # released on SIGTERM

