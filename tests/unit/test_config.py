"""Configuration: AKO's value names, environment over the file, refusals that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.config import ConfigError, load_config


def test_file_then_environment(tmp_path: Path) -> None:
    f = tmp_path / "values.yaml"
    f.write_text(
        "AKOSettings: {clusterName: east}\n"
        "ControllerSettings: {controllerHost: 10.1.1.1, cloudName: Cloud-A}\n"
        "NetworkSettings:\n  vipNetworkList: [{networkName: vip-a, cidr: 10.10.0.0/24}]\n"
    )
    cfg = load_config(f, env={"SEG_NAME": "SEG-1", "CTRL_PASSWORD": "s3cret"})
    assert cfg.cluster == "east" and cfg.created_by == "ako-east"
    assert cfg.ControllerSettings.cloudName == "Cloud-A"
    assert cfg.ControllerSettings.serviceEngineGroupName == "SEG-1"
    assert cfg.NetworkSettings.vipNetworkList[0].cidr == "10.10.0.0/24"
    assert cfg.credentials.password == "s3cret"


@pytest.mark.parametrize(("text", "field"), [
    ("AKOSettings: {clusterName: 'bad name!'}", "AKOSettings.clusterName"),
    ("NetworkSettings: {vipNetworkList: [{networkName: n, cidr: 10.0.0.0/33}]}", "NetworkSettings.vipNetworkList.0.cidr"),
    ("NetworkSettings: {vipNetworkList: [{networkName: n, cidr: 'fd00::/64'}]}", "NetworkSettings.vipNetworkList.0.cidr"),
    ("NetworkSettings: {vipNetworkList: [{cidr: 10.0.0.0/24}]}", "NetworkSettings.vipNetworkList.0"),
    ("ControllerSettings: {controllerHots: x}", "ControllerSettings.controllerHots"),
    ("albus: {syncer: {concurrency: 0}}", "albus.syncer.concurrency"),
    ("albus: {natsReplicas: 2}", "albus.natsReplicas"),
    ("albus: {natsReplicas: 7}", "albus.natsReplicas"),
])
def test_bad_configuration_is_refused_naming_the_field(tmp_path: Path, text: str, field: str) -> None:
    f = tmp_path / "values.yaml"
    f.write_text(text + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(f, env={})
    assert field in str(err.value)


def test_stream_replicas_default_to_one_and_come_from_the_environment() -> None:
    assert load_config(env={}).albus.natsReplicas == 1
    assert load_config(env={"NATS_REPLICAS": "3"}).albus.natsReplicas == 3
