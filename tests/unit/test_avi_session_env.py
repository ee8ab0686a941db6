"""avisdk sessions take the environment's proxy, CA bundle and netrc settings once, as requests would per call."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.avi import avisdk_session_factory
from services.common.config import parse_config


def _session(host: str) -> object:
    cfg = parse_config({"AKOSettings": {"clusterName": "c1"},
                        "ControllerSettings": {"controllerHost": host, "controllerVersion": "22.1.3"},
                        "credentials": {"username": "admin", "password": "x"}})
    return avisdk_session_factory(cfg)(True)  # lazy: no login, nothing sent


def test_the_proxy_for_the_controller_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    s = _session("ctrl.example")
    assert s.trust_env is False  # type: ignore[attr-defined]
    assert s.proxies["https"] == "http://127.0.0.1:3128"  # type: ignore[attr-defined]
    monkeypatch.setenv("NO_PROXY", "ctrl.example")
    assert "https" not in _session("ctrl.example").proxies  # type: ignore[attr-defined]  # bypassed, as per call


def test_a_ca_bundle_and_netrc_from_the_environment_still_apply(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/albus-ca.pem")
    netrc = tmp_path / "netrc"
    netrc.write_text("machine ctrl.example login u password p\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    s = _session("ctrl.example")
    assert s.verify == "/etc/ssl/albus-ca.pem"  # type: ignore[attr-defined]
    assert s.auth == ("u", "p")  # type: ignore[attr-defined]
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.delenv("NETRC")
    monkeypatch.setenv("HOME", str(tmp_path / "empty"))
    s = _session("ctrl.example")
    assert s.verify is True and s.auth is None  # type: ignore[attr-defined]  # the configuration's (verifyTLS)
