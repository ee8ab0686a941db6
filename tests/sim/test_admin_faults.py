"""The /_sim admin API: counters, request log, fault injection, restart, persistence, HTTPS."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from avi.sdk.avi_api import ApiSession

from albus.sim.server import SimProcess, SimServer
from albus.sim.testing import SimAdmin
from albus.sim.testing import SimClient as Client

pytestmark = pytest.mark.sim


def test_counters_and_request_log(client: Client, sim_admin: SimAdmin) -> None:
    sim_admin.reset_log()
    client.ok("POST", "pool", {"name": "a"})
    client.ok("GET", "pool", params={"name": "a"})
    p = client.ok("GET", "pool", params={"name": "a"})["results"][0]
    client.ok("PUT", f"pool/{p['uuid']}", p)
    assert client.post("pool", {"name": "a"}).status_code == 409
    c = sim_admin.counters()
    assert c["total"] == 5 and c["writes"] == 3
    assert c["by_method"] == {"GET": 2, "POST": 2, "PUT": 1}
    assert {"method": "POST", "type": "pool", "status": 409, "count": 1} in c["detail"]
    log = sim_admin.requests(method="POST")
    assert [(e["path"], e["type"], e["name"], e["status"], e["tenant"]) for e in log] == [
        ("/api/pool", "pool", "a", 201, "admin"), ("/api/pool", "pool", "a", 409, "admin")]
    e = log[0]
    assert e["client"] == "127.0.0.1" and e["end"] >= e["start"] and e["uuid"].startswith("pool-")
    put = sim_admin.requests(method="PUT")[0]
    assert put["name"] == "a" and put["uuid"] == p["uuid"]
    sim_admin.reset_log()
    assert sim_admin.counters()["total"] == 0 and sim_admin.requests() == []


def test_fault_status_count_and_path(client: Client, sim_admin: SimAdmin) -> None:
    f = sim_admin.add_fault(method="POST", path=r"^/api/pool$", status=503, count=2)
    assert f["id"] >= 1
    r = client.post("pool", {"name": "x"})
    assert r.status_code == 503 and r.json() == {"error": "Injected fault (503)"}
    assert client.post("pool", {"name": "x"}).status_code == 503
    assert client.post("pool", {"name": "x"}).status_code == 201  # count exhausted
    assert client.get("pool").status_code == 200
    sim_admin.add_fault(path="/api/vsvip", status=500, body="boom")
    r = client.get("vsvip")
    assert r.status_code == 500 and r.text == "boom"
    sim_admin.clear_faults()
    assert client.get("vsvip").status_code == 200


def test_fault_error_rate_latency_and_drop(client: Client, sim_admin: SimAdmin) -> None:
    sim_admin.add_fault(path="/api/pool", status=500, probability=0.5)
    codes = [client.get("pool").status_code for _ in range(200)]
    n500 = codes.count(500)
    assert 50 < n500 < 150 and codes.count(200) == 200 - n500
    sim_admin.clear_faults()
    sim_admin.add_fault(latency_ms=150, path="/api/tenant")
    t0 = time.monotonic()
    assert client.get("tenant").status_code == 200
    assert time.monotonic() - t0 >= 0.15
    sim_admin.clear_faults()
    sim_admin.add_fault(drop=True, path="/api/cloud", count=1)
    with pytest.raises(requests.ConnectionError):
        client.get("cloud")
    assert client.get("cloud").status_code == 200


def test_avisdk_recovers_from_one_dropped_connection(sim: SimServer, sim_admin: SimAdmin) -> None:
    api = ApiSession(sim.url, sim.username, sim.password)
    try:
        sim_admin.add_fault(drop=True, method="POST", path="/api/pool", count=1)
        r = api.post("pool", data={"name": "after-drop"})
        assert r.status_code == 201
    finally:
        ApiSession.clear_cached_sessions()


def test_restart_drops_sessions_keeps_objects(client: Client, sim_admin: SimAdmin) -> None:
    client.ok("POST", "pool", {"name": "kept"})
    out = sim_admin.restart(downtime_s=0.5)
    assert out["sessions_dropped"] >= 1
    r = client.get("pool")
    assert r.status_code == 503 and r.json() == {"error": "Controller is not ready"}
    deadline = time.monotonic() + 5
    while client.get("pool").status_code == 503:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.get("pool").status_code == 401
    client.login()
    assert client.ok("GET", "pool", params={"name": "kept"})["count"] == 1


def test_ratelimit_toggle(client: Client, sim_admin: SimAdmin) -> None:
    sim_admin.ratelimit(enabled=True, rate=1, burst=2)
    codes = [client.get("pool").status_code for _ in range(5)]
    assert codes[:2] == [200, 200] and codes[-1] == 429
    sim_admin.ratelimit(enabled=False)
    assert all(client.get("pool").status_code == 200 for _ in range(20))


def test_state_file_survives_restart(sim_factory: Callable[..., SimServer], tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    s1 = sim_factory(state_file=state)
    c = Client(s1.url)
    c.login()
    v = c.ok("POST", "vsvip", {"name": "pv", "vip": [{"vip_id": "0", "auto_allocate_ip": True,
                                                      "ipam_network_subnet": {"network_ref": "/api/network/?name=vip-net"}}]})
    s1.stop_thread()
    s2 = sim_factory(state_file=state)
    c2 = Client(s2.url)
    c2.login()
    got = c2.ok("GET", "vsvip", params={"name": "pv"})["results"]
    assert [g["uuid"] for g in got] == [v["uuid"]]
    # the IPAM index was rebuilt from the stored objects: the next vsvip gets the next address
    nxt = c2.ok("POST", "vsvip", {"name": "pv2", "vip": [{"vip_id": "0", "auto_allocate_ip": True,
                                                          "ipam_network_subnet": {"network_ref": "/api/network/?name=vip-net"}}]})
    assert nxt["vip"][0]["ip_address"]["addr"] != v["vip"][0]["ip_address"]["addr"]


def test_https(sim_factory: Callable[..., SimServer], monkeypatch: pytest.MonkeyPatch) -> None:
    sim = sim_factory(https=True)
    assert sim.url.startswith("https://") and sim.cert_path is not None
    c = Client(sim.url, verify=str(sim.cert_path))
    r = c.login()
    assert r.status_code == 200
    assert "Secure" in r.headers["Set-Cookie"]
    assert c.get("pool").status_code == 200
    # avisdk sets verify on its requests.Session only, which these variables override per request
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    api = ApiSession("127.0.0.1", sim.username, sim.password, port=sim.port, verify=False)
    try:
        assert api.get_object_by_name("cloud", "Default-Cloud") is not None
    finally:
        ApiSession.clear_cached_sessions()
    sim.stop_thread()
    assert not sim.cert_path.exists(), "the certificate's temporary directory goes with the simulator"


def test_cli_subprocess(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    with SimProcess("--default-seed", "--port-file", str(port_file), "--password", "s3cret") as p:
        assert p.password == "s3cret"
        assert p.url == f"http://127.0.0.1:{port_file.read_text()}"
        c = Client(p.url, password="s3cret")
        assert c.login().status_code == 200
        assert c.ok("GET", "network", params={"name": "vip-net"})["count"] == 1
