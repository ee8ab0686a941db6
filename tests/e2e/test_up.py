"""`albus up` as the demo runs it: everything started locally, the sample Services get VIPs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]


@pytest.mark.parametrize("nats_nodes", [1, 3])
def test_albus_up_runs_the_demo_until_every_service_has_a_vip(tmp_path: Path, nats_nodes: int) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "albus.cli", "up", "--workdir", str(tmp_path / "w"), "--fresh",
         "--demo-backends", "--manifests", str(REPO / "examples" / "demo.yaml"), "--until-ready", "120",
         "--nats-nodes", str(nats_nodes)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"export KUBECONFIG={tmp_path / 'w'}" in r.stdout
    last_table = r.stdout.rsplit("NAMESPACE", 1)[1]
    rows = [line.split() for line in last_table.splitlines()[1:] if line.strip()]
    assert sorted(row[1] for row in rows) == ["sip", "web"]
    assert all(row[3].startswith("127.100.0.") and row[4] == "Ready" for row in rows), last_table
    # Streams as many times over as there are NATS nodes (albus.natsReplicas in the services' values).
    values = yaml.safe_load((tmp_path / "w" / "config.yaml").read_text())
    assert values["albus"]["natsReplicas"] == nats_nodes
    assert r.stdout.count("NATS: nats://") == 1 and r.stdout.count(",nats://") == nats_nodes - 1
    # Each service's endpoint printed, a loopback port of its own (docs/metrics.md).
    urls = re.findall(r"# (\w+): curl (http://127\.0\.0\.1:\d+)/metrics", r.stdout)
    assert sorted(name for name, _ in urls) == ["health", "syncer", "translator", "watcher"], r.stdout
    assert len({url for _, url in urls}) == 4
    # Everything it started is stopped again.
    assert not (tmp_path / "w" / "status.json").exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours is gone as far as the user is concerned.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_second_signal_while_stopping_still_stops_everything(tmp_path: Path) -> None:
    """SIGTERM twice in a row (make passes one on and the shell another): nothing it started is left running."""
    work = tmp_path / "w"
    proc = subprocess.Popen([sys.executable, "-m", "albus.cli", "up", "--workdir", str(work), "--fresh"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    try:
        deadline = time.monotonic() + 240
        while not (work / "status.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "albus up did not come up"
            time.sleep(0.5)
        pids = json.loads((work / "status.json").read_text())["pids"]
        assert set(pids) >= {"watcher", "translator", "syncer", "health"}, pids
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # inside its stop by now: the services take a moment each to stop
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in out, out[-3000:]
    deadline = time.monotonic() + 30
    while [n for n, pid in pids.items() if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [n for n, pid in pids.items() if _alive(pid)], f"left running: {pids}"
