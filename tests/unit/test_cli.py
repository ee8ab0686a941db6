"""The albus command as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def albus(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "albus.cli", *args], input=stdin, capture_output=True,
                          text=True, cwd=REPO, timeout=60, env={"PATH": "/usr/bin:/bin"})


def test_translate_prints_objects_by_type_sorted_by_name(tmp_path: Path) -> None:
    cfg = tmp_path / "values.yaml"
    cfg.write_text("NetworkSettings: {vipNetworkList: [{networkName: vip-net, cidr: 127.100.0.0/24}]}\n")
    r = albus("translate", "-f", str(REPO / "examples" / "demo.yaml"), "--cluster", "east", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert list(out) == ["l4policyset", "pool", "virtualservice", "vsvip"]
    assert [o["name"] for o in out["virtualservice"]] == ["east--demo-sip", "east--demo-web"]
    assert [o["name"] for o in out["pool"]] == ["east--demo-sip-TCP-5060", "east--demo-sip-UDP-5060", "east--demo-web-TCP-80"]
    web_pool = out["pool"][2]
    assert [s["ip"]["addr"] for s in web_pool["servers"]] == ["10.213.0.2"]
    assert out["virtualservice"][1]["vsvip_ref"] == "/api/vsvip/?name=east--demo-web"


def test_translate_reports_problems_on_stderr_from_stdin() -> None:
    manifest = ("apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: n}\n"
                "spec: {type: LoadBalancer, ports: [{port: 80}]}\n")
    r = albus("translate", "-f", "-", stdin=manifest)
    assert r.returncode == 0
    assert json.loads(r.stdout) == {}
    assert "Service/n/s: NoVipNetwork" in r.stderr


def test_bad_configuration_is_refused_naming_the_field(tmp_path: Path) -> None:
    cfg = tmp_path / "values.yaml"
    cfg.write_text("AKOSettings: {clusterName: 'no spaces allowed'}\n")
    r = albus("translate", "-f", str(REPO / "examples" / "demo.yaml"), "--config", str(cfg))
    assert r.returncode == 2
    assert "AKOSettings.clusterName" in r.stderr


def test_status_without_a_running_stack_says_so(tmp_path: Path) -> None:
    r = albus("status", "--workdir", str(tmp_path))
    assert r.returncode == 1 and "albus up" in r.stderr


def test_unknown_command_shows_usage() -> None:
    r = albus("frobnicate")
    assert r.returncode == 2 and "usage: albus" in r.stderr
