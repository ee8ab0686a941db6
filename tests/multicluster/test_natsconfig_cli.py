"""`albus nats-config` and the syncer pool's per-cluster configurations, without servers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from albus import natsconfig
from services.common.config import ConfigError, parse_config
from services.syncer.main import cluster_configs


def _conf(path: Path) -> dict[str, object]:
    text = path.read_text()
    return dict(json.loads(text[text.index("{"):]))


def test_credentials_are_kept_across_runs_and_urls_carry_them(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    args = ["--cluster", "east", "--url", "nats://127.0.0.1:4222,nats://127.0.0.2:4222",
            "--credentials-dir", str(creds)]
    assert natsconfig.main([*args, "-o", str(tmp_path / "one.conf")]) == 0
    assert natsconfig.main([*args, "--cluster", "west", "-o", str(tmp_path / "two.conf")]) == 0
    one = {u["user"]: u for u in _conf(tmp_path / "one.conf")["authorization"]["users"]}  # type: ignore[index]
    two = {u["user"]: u for u in _conf(tmp_path / "two.conf")["authorization"]["users"]}  # type: ignore[index]
    assert set(two) == {"albus-syncer", "albus-cluster-east", "albus-cluster-west"}
    assert one["albus-cluster-east"]["password"] == two["albus-cluster-east"]["password"]
    url = (creds / "albus-cluster-east.url").read_text().strip()
    pw = two["albus-cluster-east"]["password"]
    assert url == f"nats://albus-cluster-east:{pw}@127.0.0.1:4222,nats://albus-cluster-east:{pw}@127.0.0.2:4222"
    assert (creds / "albus-cluster-east.url").stat().st_mode & 0o077 == 0


def test_bad_or_repeated_cluster_names_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert natsconfig.main(["--cluster", "bad.name"]) == 2
    assert "invalid cluster name 'bad.name'" in capsys.readouterr().err
    assert natsconfig.main(["--cluster", "a", "--cluster", "a"]) == 2


def test_the_pool_gets_one_configuration_per_cluster_with_its_tenant() -> None:
    cfg = parse_config({"ControllerSettings": {"tenantName": "shared"},
                        "albus": {"syncer": {"clusters": [{"name": "east", "tenantName": "team-east"},
                                                          {"name": "west"}]}}})
    got = [(c.cluster, c.tenant, c.created_by) for c in cluster_configs(cfg)]
    assert got == [("east", "team-east", "ako-east"), ("west", "shared", "ako-west")]
    alone = parse_config({"AKOSettings": {"clusterName": "solo"}})
    assert [c.cluster for c in cluster_configs(alone)] == ["solo"]
    with pytest.raises(ConfigError, match="named twice"):
        cluster_configs(parse_config({"albus": {"syncer": {"clusters": [{"name": "a"}, {"name": "a"}]}}}))
    with pytest.raises(ConfigError, match=r"clusters\.0\.name"):
        parse_config({"albus": {"syncer": {"clusters": [{"name": "no.dots"}]}}})


def test_a_node_of_a_nats_cluster_gets_its_cluster_block_and_the_same_users(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    common = ["--cluster", "east", "--credentials-dir", str(creds), "--nats-cluster", "hub"]
    for i in range(2):
        route = f"nats-route://10.0.0.{2 - i}:6222"
        assert natsconfig.main([*common, "--server-name", f"hub-{i}", "--cluster-listen", "0.0.0.0:6222",
                                "--route", route, "--http", "127.0.0.1:8222", "-o", str(tmp_path / f"{i}.conf")]) == 0
    one, two = _conf(tmp_path / "0.conf"), _conf(tmp_path / "1.conf")
    assert one["server_name"] == "hub-0" and two["server_name"] == "hub-1"
    assert one["cluster"] == {"name": "hub", "listen": "0.0.0.0:6222", "routes": ["nats-route://10.0.0.2:6222"],
                              "no_advertise": True}  # clients use NATS_URL's nodes, which carry the credentials
    assert one["http"] == "127.0.0.1:8222"
    assert one["authorization"] == two["authorization"]  # a client may land on any node


def test_a_nats_cluster_node_needs_its_name_listener_and_routes(capsys: pytest.CaptureFixture[str]) -> None:
    assert natsconfig.main(["--cluster", "east", "--nats-cluster", "hub", "--server-name", "hub-0"]) == 2
    assert "--nats-cluster needs" in capsys.readouterr().err
