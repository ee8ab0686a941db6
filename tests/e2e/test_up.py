"""`albus up` as the demo runs it: everything started locally, the sample Services get VIPs."""

from __future__ import annotations

import re
import subprocess
import sys
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
