"""The `sim` fixture from an async test with aiohttp (the syncer's client library)."""

from __future__ import annotations

import aiohttp
import pytest

from albus.sim.server import SimServer

pytestmark = pytest.mark.sim


async def test_aiohttp_client_session(sim: SimServer) -> None:
    # the default cookie jar ignores cookies from IP-address hosts
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.post(f"{sim.url}/login", json={"username": sim.username, "password": sim.password}) as r:
            assert r.status == 200
            csrf = r.cookies["csrftoken"].value
        hdrs = {"X-CSRFToken": csrf, "Referer": sim.url, "X-Avi-Version": "22.1.3", "X-Avi-Tenant": "team-a"}
        async with http.post(f"{sim.url}/api/pool", json={"name": "ap"}, headers=hdrs) as r:
            assert r.status == 201
            body = await r.json()
            assert body["tenant_ref"].endswith("#team-a")
        async with http.get(f"{sim.url}/api/pool", params={"name": "ap"}, headers=hdrs) as r:
            assert (await r.json())["count"] == 1
