"""The controller session on the event loop (services/common/avi_session.py) against the simulator.

The simulator refuses what a controller refuses: a write without the login's
CSRF token or without a Referer (401, plain text), an unknown tenant, a
session that expired. Each test would fail if the session stopped sending
what avisdk sends or stopped logging in again the way avisdk does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from albus.sim.server import SimServer
from albus.sim.testing import SimAdmin
from services.common.avi_session import AviSession, ControllerError, LoginFailed, controller_prefix
from services.syncer.avi_client import ControllerClient


def session(sim: SimServer, **kw: Any) -> AviSession:
    args: dict[str, Any] = {"controller": sim.url, "username": sim.username, "password": sim.password,
                            "api_version": "22.1.3", **kw}
    return AviSession(**args)


def logins(admin: SimAdmin) -> int:
    return sum(1 for r in admin.requests() if r["path"].rstrip("/") == "/login")


async def test_concurrent_calls_share_one_login_and_writes_carry_its_csrf_token(
        sim: SimServer, sim_admin: SimAdmin) -> None:
    s = session(sim)
    try:
        replies = await asyncio.gather(*(
            s.request("post", "pool", tenant="admin", data={"name": f"p{i}"}) for i in range(20)))
        assert [r.status for r in replies] == [201] * 20, [r.text for r in replies if r.status != 201]
        assert logins(sim_admin) == 1 and s.logins == 1
        listed = await s.request("get", "pool", tenant="admin", params={"name": "p7", "include_name": True})
        assert listed.status == 200 and json.loads(listed.text)["count"] == 1
    finally:
        await s.close()
    assert sim_admin.info()["sessions"] == 0  # logged out on close


async def test_an_expired_session_logs_in_once_again_for_all_the_calls_that_saw_it(
        sim: SimServer, sim_admin: SimAdmin) -> None:
    s = session(sim)
    try:
        assert (await s.request("get", "cloud", tenant="admin")).status == 200
        assert sim_admin.expire_sessions() == 1
        replies = await asyncio.gather(*(
            s.request("post", "pool", tenant="admin", data={"name": f"after{i}"}) for i in range(10)))
        assert [r.status for r in replies] == [201] * 10
        assert logins(sim_admin) == 2  # one login at the start, one after the expiry: not one per call
    finally:
        await s.close()


async def test_the_tenant_header_scopes_objects(sim: SimServer) -> None:
    s = session(sim)
    try:
        assert (await s.request("post", "pool", tenant="team-a", data={"name": "scoped"})).status == 201
        in_admin = await s.request("get", "pool", tenant="admin", params={"name": "scoped"})
        in_team = await s.request("get", "pool", tenant="team-a", params={"name": "scoped"})
        assert json.loads(in_admin.text)["count"] == 0 and json.loads(in_team.text)["count"] == 1
        assert (await s.request("get", "pool", tenant="no-such-tenant")).status == 400
    finally:
        await s.close()


async def test_refused_credentials_raise_without_retrying(sim: SimServer, sim_admin: SimAdmin) -> None:
    s = session(sim, password="wrong")
    try:
        with pytest.raises(LoginFailed) as err:
            await s.request("get", "cloud", tenant="admin")
        assert err.value.status == 401 and "wrong" not in str(err.value)
        client = ControllerClient(s, retry_max_seconds=5.0)
        with pytest.raises(ControllerError) as cerr:
            await client.call("get", "cloud", tenant="admin")
        assert cerr.value.status == 401
        assert logins(sim_admin) == 2  # one per call: a refused password is not retried
    finally:
        await s.close()


async def test_https_controller_verified_with_its_ca_file(sim_factory: Callable[..., SimServer]) -> None:
    sim = sim_factory(https=True)
    assert sim.cert_path is not None
    trusted = session(sim, verify=str(sim.cert_path))
    try:
        assert (await trusted.request("post", "pool", tenant="admin", data={"name": "tls"})).status == 201
    finally:
        await trusted.close()
    # The default is to verify: a self-signed certificate nobody configured is refused.
    untrusted = ControllerClient(session(sim), retry_max_seconds=0.5, backoff_base=0.05)
    try:
        with pytest.raises(ControllerError, match="unreachable"):
            await untrusted.call("get", "cloud", tenant="admin")
    finally:
        await untrusted.close()


@pytest.mark.parametrize(("host", "prefix"), [
    ("10.1.1.1", "https://10.1.1.1"),
    ("avi.example.com:8443", "https://avi.example.com:8443"),
    ("avi.example.com:443", "https://avi.example.com"),
    ("fd00::10", "https://[fd00::10]"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
])
def test_the_url_prefix_is_avisdks(host: str, prefix: str) -> None:
    assert controller_prefix(host) == prefix


def test_the_environments_proxy_is_taken_for_the_controller_unless_bypassed(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "direct.example")
    assert AviSession(controller="avi.example", username="u", password="p")._proxy == "http://proxy.example:3128"
    assert AviSession(controller="direct.example", username="u", password="p")._proxy is None
