"""Pytest plugin: a fresh simulator per test, and a client for its /_sim admin API.

Fixtures:
* `sim` — a `SimServer` on a random loopback port with `DEFAULT_TEST_SEED` and 0.5 s health checks,
  running in its own thread so synchronous clients (avisdk) and async tests both work.
* `sim_admin` — a `SimAdmin` for that simulator (counters, request log, faults, restart, ...).
* `sim_client` — a logged-in `SimClient` (plain HTTP, exact responses) for that simulator.
* `sim_factory` — `sim_factory(**SimServer kwargs)` for other settings; all are stopped after the test.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from albus.sim.seed import DEFAULT_TEST_SEED
from albus.sim.server import SimServer

Json = Any


class SimAdmin:
    """Synchronous client of the simulator's admin API (`<url>/_sim`, no login)."""

    def __init__(self, url: str) -> None:
        self.base = url.rstrip("/") + "/_sim"

    def call(self, method: str, path: str, body: Json = None, params: dict[str, Any] | None = None) -> Json:
        q = "&".join(f"{k}={v}" for k, v in (params or {}).items() if v is not None)
        url = f"{self.base}/{path.lstrip('/')}" + (f"?{q}" if q else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"admin {method} {path}: {e.code} {e.read().decode()}") from None

    def info(self) -> Json:
        return self.call("GET", "info")

    def counters(self) -> Json:
        return self.call("GET", "counters")

    def requests(self, **filters: Any) -> list[dict[str, Json]]:
        return list(self.call("GET", "requests", params=filters)["results"])

    def reset_log(self) -> None:
        self.call("DELETE", "requests")

    def writes(self) -> int:
        return int(self.counters()["writes"])

    def add_fault(self, **spec: Any) -> Json:
        return self.call("POST", "faults", spec)

    def clear_faults(self) -> None:
        self.call("DELETE", "faults")

    def expire_sessions(self) -> int:
        return int(self.call("POST", "sessions/expire")["expired"])

    def restart(self, downtime_s: float = 0.0) -> Json:
        return self.call("POST", "restart", {"downtime_s": downtime_s})

    def ratelimit(self, **settings: Any) -> Json:
        return self.call("PUT", "ratelimit", settings)

    def config(self, **settings: Any) -> Json:
        return self.call("PUT", "config", settings)

    def set_server(self, pool: str, ip: str, state: str | None, port: int | None = None,
                   tenant: str = "admin", reason: str = "Fault injected") -> Json:
        body: dict[str, Json] = {"pool": pool, "ip": ip, "state": state, "tenant": tenant, "reason": reason}
        if port is not None:
            body["port"] = port
        return self.call("PUT", "servers", body)

    def objects(self, otype: str | None = None) -> list[dict[str, Json]]:
        return list(self.call("GET", "objects", params={"type": otype})["results"])


def wait_for(cond: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll `cond` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class SimClient:
    """A plain `requests` client of the controller API: logs in, sends CSRF/Referer/tenant headers, and returns
    raw responses so tests can assert exact status codes and bodies."""

    def __init__(self, url: str, username: str = "admin", password: str = "albus-sim",
                 tenant: str | None = None, verify: Any = True) -> None:
        self.url = url
        self.username = username
        self.password = password
        self.tenant = tenant
        self.s = requests.Session()
        # passed per request: requests lets REQUESTS_CA_BUNDLE override a session-level verify
        self.verify = verify
        self.csrf = ""
        self.sid = ""

    def login(self) -> requests.Response:
        r = self.s.post(f"{self.url}/login", data={"username": self.username, "password": self.password},
                        verify=self.verify)
        if r.status_code == 200:
            self.csrf = r.cookies["csrftoken"]
            self.sid = r.cookies["sessionid"]
        return r

    def headers(self, extra: dict[str, str] | None = None, *, csrf: bool = True, referer: bool = True) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if csrf and self.csrf:
            h["X-CSRFToken"] = self.csrf
        if referer:
            h["Referer"] = self.url
        if self.tenant:
            h["X-Avi-Tenant"] = self.tenant
        h.update(extra or {})
        return h

    def req(self, method: str, path: str, body: Json = None, *, headers: dict[str, str] | None = None,
            csrf: bool = True, referer: bool = True, params: dict[str, Any] | None = None) -> requests.Response:
        cookies = {"sessionid": self.sid, "avi-sessionid": self.sid, "csrftoken": self.csrf} if self.sid else {}
        return self.s.request(method, f"{self.url}/api/{path.lstrip('/')}", json=body, params=params,
                              headers=self.headers(headers, csrf=csrf, referer=referer), cookies=cookies,
                              verify=self.verify)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.req("GET", path, **kw)

    def post(self, path: str, body: Json, **kw: Any) -> requests.Response:
        return self.req("POST", path, body, **kw)

    def put(self, path: str, body: Json, **kw: Any) -> requests.Response:
        return self.req("PUT", path, body, **kw)

    def patch(self, path: str, body: Json, **kw: Any) -> requests.Response:
        return self.req("PATCH", path, body, **kw)

    def delete(self, path: str, body: Json = None, **kw: Any) -> requests.Response:
        return self.req("DELETE", path, body, **kw)

    def ok(self, method: str, path: str, body: Json = None, **kw: Any) -> Json:
        r = self.req(method, path, body, **kw)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., SimServer]]:
    started: list[SimServer] = []

    def make(**kwargs: Any) -> SimServer:
        kwargs.setdefault("port", 0)
        kwargs.setdefault("seed", DEFAULT_TEST_SEED)
        kwargs.setdefault("health_interval", 0.5)
        s = SimServer(**kwargs).start_in_thread()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop_thread()


@pytest.fixture
def sim(sim_factory: Callable[..., SimServer]) -> SimServer:
    return sim_factory()


@pytest.fixture
def sim_admin(sim: SimServer) -> SimAdmin:
    return SimAdmin(sim.url)


@pytest.fixture
def sim_client(sim: SimServer) -> SimClient:
    """A logged-in `SimClient` (admin tenant) for `sim`."""
    c = SimClient(sim.url, sim.username, sim.password)
    r = c.login()
    assert r.status_code == 200, r.text
    return c
