"""Runtime, inventory and active health checks against real listeners on 127.0.0.x."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from albus.sim.server import SimServer
from albus.sim.testing import SimAdmin, wait_for
from albus.sim.testing import SimClient as Client

pytestmark = pytest.mark.sim

INTERVAL = 0.5  # the `sim` fixture's health interval


class TcpListener:
    """Accepts and closes connections on ip:port until stopped."""

    def __init__(self, ip: str, port: int = 0) -> None:
        self.ip = ip
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._t.join(5)
        self.sock.close()


@pytest.fixture
def listeners() -> Iterator[list[TcpListener]]:
    made: list[TcpListener] = []
    yield made
    for lst in made:
        if not lst._stop.is_set():
            lst.stop()


def server_states(client: Client, pool_uuid: str) -> dict[str, dict[str, Any]]:
    rows = client.ok("GET", f"pool/{pool_uuid}/runtime/server/detail")
    return {f"{r['ip_addr']['addr']}:{r['port']}": r["oper_status"] for r in rows}


def pool_with(client: Client, name: str, members: list[tuple[str, int]], hm: str = "System-TCP") -> Any:
    return client.ok("POST", "pool", {"name": name, "health_monitor_refs": [f"/api/healthmonitor/?name={hm}"],
                                      "servers": [{"ip": {"addr": ip, "type": "V4"}, "port": port}
                                                  for ip, port in members]})


def test_member_goes_down_within_two_intervals(client: Client, listeners: list[TcpListener]) -> None:
    a = TcpListener("127.0.0.2")
    b = TcpListener("127.0.0.3")
    listeners += [a, b]
    pool = pool_with(client, "hc", [(a.ip, a.port), (b.ip, b.port)])
    vs = client.ok("POST", "virtualservice", {"name": "hc-vs", "services": [{"port": 80}], "pool_ref": pool["url"]})
    ka, kb = f"{a.ip}:{a.port}", f"{b.ip}:{b.port}"
    wait_for(lambda: all(s["state"] == "OPER_UP" for s in server_states(client, pool["uuid"]).values()),
             timeout=5, what="both members up")
    rt = client.ok("GET", f"pool/{pool['uuid']}/runtime/detail")[0]
    assert rt["oper_status"]["state"] == "OPER_UP" and rt["num_servers_up"] == 2
    assert client.ok("GET", f"virtualservice/{vs['uuid']}/runtime")["oper_status"]["state"] == "OPER_UP"

    a.stop()
    t0 = time.monotonic()
    wait_for(lambda: server_states(client, pool["uuid"])[ka]["state"] == "OPER_DOWN", timeout=5, interval=0.02,
             what="member a down")
    assert time.monotonic() - t0 < 2 * INTERVAL
    st = server_states(client, pool["uuid"])
    assert st[ka]["reason"] and st[ka]["reason"][0].startswith("Connect failed")
    assert st[kb]["state"] == "OPER_UP"
    assert client.ok("GET", f"pool/{pool['uuid']}/runtime")[0]["num_servers_up"] == 1

    b.stop()
    wait_for(lambda: client.ok("GET", f"virtualservice/{vs['uuid']}/runtime")["oper_status"]["state"] == "OPER_DOWN",
             timeout=5, what="VS down")
    rt = client.ok("GET", f"pool/{pool['uuid']}/runtime/detail")[0]
    assert rt["oper_status"] == {**rt["oper_status"], "state": "OPER_DOWN", "reason": ["All servers are down"]}

    a2 = TcpListener(a.ip, a.port)  # the member comes back
    listeners.append(a2)
    wait_for(lambda: server_states(client, pool["uuid"])[ka]["state"] == "OPER_UP", timeout=5, what="member a up")


def test_http_monitor_checks_status_code(client: Client) -> None:
    status = {"code": 200}

    class H(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(status["code"])
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.4", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        port = srv.server_address[1]
        pool = pool_with(client, "web", [("127.0.0.4", port)], hm="System-HTTP")
        key = f"127.0.0.4:{port}"
        wait_for(lambda: server_states(client, pool["uuid"])[key]["state"] == "OPER_UP", timeout=5, what="http up")
        status["code"] = 503
        st = wait_for(lambda: (s := server_states(client, pool["uuid"])[key])["state"] == "OPER_DOWN" and s,
                      timeout=5, what="http down")
        assert st["reason"] == ["Response code 503 not in ['HTTP_2XX', 'HTTP_3XX']"]
    finally:
        srv.shutdown()
        srv.server_close()


def test_fault_override_and_disabled(client: Client, sim_admin: SimAdmin, listeners: list[TcpListener]) -> None:
    a = TcpListener("127.0.0.5")
    listeners.append(a)
    pool = pool_with(client, "ov", [(a.ip, a.port), ("127.0.0.6", 9)], hm="System-UDP")
    # UDP monitors report enabled members up (documented choice)
    wait_for(lambda: all(s["state"] == "OPER_UP" for s in server_states(client, pool["uuid"]).values()),
             timeout=5, what="udp members up")
    sim_admin.set_server("ov", a.ip, "OPER_DOWN", reason="chaos")
    st = server_states(client, pool["uuid"])[f"{a.ip}:{a.port}"]
    assert st["state"] == "OPER_DOWN" and st["reason"] == ["chaos"]
    sim_admin.set_server("ov", a.ip, None)
    assert server_states(client, pool["uuid"])[f"{a.ip}:{a.port}"]["state"] == "OPER_UP"
    client.ok("PATCH", f"pool/{pool['uuid']}", {"replace": {"enabled": False}})
    assert client.ok("GET", f"pool/{pool['uuid']}/runtime")[0]["oper_status"]["state"] == "OPER_DISABLED"


def test_pool_without_monitor_is_up_and_inventory(client: Client, sim: SimServer) -> None:
    for i in range(210):
        client.ok("POST", "pool", {"name": f"inv-{i:03d}", "servers": [{"ip": {"addr": "127.0.0.9", "type": "V4"}}]})
    client.ok("POST", "virtualservice", {"name": "inv-vs", "services": [{"port": 80}], "pool_ref": "/api/pool?name=inv-000",
                                         "vsvip_ref": client.ok("POST", "vsvip", {"name": "inv-vip", "vip": [{
                                             "vip_id": "0", "auto_allocate_ip": True, "ipam_network_subnet": {
                                                 "network_ref": "/api/network/?name=vip-net"}}]})["url"]})
    page = client.ok("GET", "pool-inventory", params={"page_size": 200})
    assert page["count"] == 210 and len(page["results"]) == 200 and "page=2" in page["next"]
    item = page["results"][0]
    assert set(item) >= {"uuid", "url", "config", "runtime", "health_score", "virtualservices"}
    assert item["config"]["name"] == "inv-000" and item["config"]["default_server_port"] == 80
    assert item["runtime"]["oper_status"]["state"] == "OPER_UP" and item["runtime"]["num_servers_up"] == 1
    assert item["runtime"]["percent_servers_up_total"] == 100
    assert len(item["virtualservices"]) == 1
    assert client.ok("GET", "pool-inventory", params={"page_size": 200, "page": 2})["results"][-1]["config"]["name"] \
        == "inv-209"
    vs = client.ok("GET", "virtualservice-inventory", params={"name": "inv-vs"})["results"][0]
    assert vs["runtime"]["oper_status"]["state"] == "OPER_UP"
    assert vs["runtime"]["vip_summary"][0]["ip_address"]["addr"] == "127.0.100.10"
    assert vs["health_score"]["health_score"] == 100.0
    assert vs["config"]["pool_ref"].startswith(f"{sim.url}/api/pool/")
    joined = client.ok("GET", "virtualservice", params={"name": "inv-vs", "join_subresources": "runtime"})
    assert joined["results"][0]["runtime"]["oper_status"]["state"] == "OPER_UP"



def test_pool_inventory_names_every_vs_using_the_pool(client: Client) -> None:
    """A pool's ``virtualservices`` come through a pool group, a policy set's switching and a direct ref, in
    the VSes' creation order; only the pools of the page are resolved (health reads 50 at a time)."""
    def pool(name: str) -> dict[str, Any]:
        return client.ok("POST", "pool", {"name": name, "servers": [{"ip": {"addr": "127.0.0.9", "type": "V4"}}]})

    def vs(name: str, **refs: Any) -> dict[str, Any]:
        vip = client.ok("POST", "vsvip", {"name": f"{name}-vip", "vip": [{"vip_id": "0", "auto_allocate_ip": True,
                        "ipam_network_subnet": {"network_ref": "/api/network/?name=vip-net"}}]})
        return client.ok("POST", "virtualservice", {"name": name, "services": [{"port": 80}],
                                                    "vsvip_ref": vip["url"], **refs})

    direct, grouped, switched, unused = pool("u-direct"), pool("u-grouped"), pool("u-switched"), pool("u-unused")
    group = client.ok("POST", "poolgroup", {"name": "u-group", "members": [{"pool_ref": grouped["url"]}]})
    ps = client.ok("POST", "httppolicyset", {"name": "u-routes", "http_request_policy": {"rules": [
        {"name": "r1", "index": 1, "enable": True,
         "match": {"path": {"match_criteria": "BEGINS_WITH", "match_str": ["/s"]}},
         "switching_action": {"action": "HTTP_SWITCHING_SELECT_POOL", "pool_ref": switched["url"]}}]}})
    first = vs("u-first", pool_group_ref=group["url"])
    second = vs("u-second", pool_ref=direct["url"], http_policies=[{"index": 11, "http_policy_set_ref": ps["url"]}])
    third = vs("u-third", pool_ref=grouped["url"])
    uuids = ",".join(p["uuid"] for p in (direct, grouped, switched, unused))
    items = client.ok("GET", "pool-inventory", params={"uuid.in": uuids})["results"]
    users = {i["config"]["name"]: [u.rsplit("/", 1)[-1] for u in i["virtualservices"]] for i in items}
    assert users == {"u-direct": [second["uuid"]], "u-grouped": [first["uuid"], third["uuid"]],
                     "u-switched": [second["uuid"]], "u-unused": []}
    one = client.ok("GET", f"pool-inventory/{grouped['uuid']}")
    assert [u.rsplit("/", 1)[-1] for u in one["virtualservices"]] == [first["uuid"], third["uuid"]]

def test_members_outside_probe_networks_are_never_contacted(client: Client, listeners: list[TcpListener],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import albus.sim.health as health

    contacted: list[str] = []
    real = health.asyncio.open_connection

    async def spy(host: str, port: int, **kw: Any) -> Any:
        contacted.append(host)
        return await real(host, port, **kw)

    monkeypatch.setattr(health.asyncio, "open_connection", spy)
    local = TcpListener("127.0.0.4")
    listeners.append(local)
    pool = pool_with(client, "outside", [("10.200.0.7", 80), (local.ip, local.port)])
    wait_for(lambda: len(server_states(client, pool["uuid"])) == 2
             and all(s["state"] == "OPER_UP" for s in server_states(client, pool["uuid"]).values()),
             timeout=5, what="both members reported")
    assert "127.0.0.4" in contacted  # the loopback member is really probed
    assert "10.200.0.7" not in contacted
    assert server_states(client, pool["uuid"])["10.200.0.7:80"]["reason"] == [health.NOT_PROBED]
