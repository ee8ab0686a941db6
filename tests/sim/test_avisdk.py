"""The simulator as avisdk (unchanged) sees it."""

from __future__ import annotations

import ipaddress
import itertools
import json
from collections.abc import Iterator

import pytest
from avi.sdk.avi_api import ApiSession

from albus.sim.server import SimServer
from albus.sim.testing import SimAdmin

pytestmark = pytest.mark.sim

_tenant_counter = itertools.count()


@pytest.fixture
def api(sim: SimServer) -> Iterator[ApiSession]:
    # avisdk caches sessions per controller/user/tenant; a fresh port per test keeps them apart
    s = ApiSession(sim.url, sim.username, sim.password, tenant="admin", api_version="22.1.3")
    yield s
    ApiSession.clear_cached_sessions()


def _vsvip_body(name: str) -> dict[str, object]:
    return {"name": name, "vip": [{"vip_id": "0", "auto_allocate_ip": True, "auto_allocate_ip_type": "V4_V6",
                                   "ipam_network_subnet": {"network_ref": "/api/network/?name=vip-net"}}]}


def test_crud_lifecycle_by_name(api: ApiSession, sim_admin: SimAdmin) -> None:
    r = api.post("vsvip", data=_vsvip_body("web-vip"))
    assert r.status_code == 201, r.text
    vip = r.json()["vip"][0]
    assert ipaddress.ip_address(vip["ip_address"]["addr"]) in ipaddress.ip_network("127.0.100.0/24")
    assert vip["ip_address"]["type"] == "V4"
    assert ipaddress.ip_address(vip["ip6_address"]["addr"]) in ipaddress.ip_network("fd00:a1b0::/64")
    assert vip["ip6_address"]["type"] == "V6"

    r = api.post("pool", data={"name": "web-pool", "servers": [{"ip": {"addr": "127.0.0.2", "type": "V4"},
                                                                 "port": 8080}]})
    assert r.status_code == 201, r.text
    pool = r.json()
    assert pool["uuid"].startswith("pool-")
    assert pool["cloud_ref"].endswith("#Default-Cloud")
    assert pool["lb_algorithm"] == "LB_ALGORITHM_LEAST_CONNECTIONS"

    r = api.post("virtualservice", data={
        "name": "web-vs", "services": [{"port": 80}],
        "vsvip_ref": "/api/vsvip/?name=web-vip", "pool_ref": "/api/pool?name=web-pool"})
    assert r.status_code == 201, r.text
    vs = r.json()
    assert vs["application_profile_ref"].endswith("#System-HTTP")
    assert vs["se_group_ref"].endswith("#Default-Group")
    assert vs["services"][0]["port_range_end"] == 80

    got = api.get_object_by_name("virtualservice", "web-vs", params={"include_name": True})
    assert got is not None
    assert got["pool_ref"].endswith(f"/api/pool/{pool['uuid']}#web-pool")
    assert got["vsvip_ref"].endswith("#web-vip")
    plain = api.get_object_by_name("virtualservice", "web-vs")
    assert plain is not None and "#" not in plain["pool_ref"]

    # PUT replaces (read-modify-write), PATCH adds a server
    got["services"] = [{"port": 80}, {"port": 8080}]
    r = api.put(f"virtualservice/{got['uuid']}", data=got)
    assert r.status_code == 200, r.text
    assert [s["port"] for s in r.json()["services"]] == [80, 8080]
    r = api.patch(f"pool/{pool['uuid']}", data={"add": {"servers": [{"ip": {"addr": "127.0.0.3", "type": "V4"},
                                                                      "port": 8080}]}})
    assert r.status_code == 200, r.text
    assert [s["ip"]["addr"] for s in r.json()["servers"]] == ["127.0.0.2", "127.0.0.3"]
    r = api.patch(f"pool/{pool['uuid']}", data={"delete": {"servers": [{"ip": {"addr": "127.0.0.2"}}]}})
    assert [s["ip"]["addr"] for s in r.json()["servers"]] == ["127.0.0.3"]
    r = api.patch(f"pool/{pool['uuid']}", data={"replace": {"lb_algorithm": "LB_ALGORITHM_ROUND_ROBIN"}})
    assert r.json()["lb_algorithm"] == "LB_ALGORITHM_ROUND_ROBIN"

    # duplicate name
    r = api.post("pool", data={"name": "web-pool"})
    assert r.status_code == 409
    assert "already exists" in json.loads(r.text)["error"]

    # delete in reverse order; the pool cannot go while the VS uses it
    r = api.delete(f"pool/{pool['uuid']}")
    assert r.status_code == 403
    assert json.loads(r.text)["error"] == "Cannot delete, object is referred by: ['VirtualService web-vs']"
    assert api.delete_by_name("virtualservice", "web-vs").status_code == 204
    assert api.delete_by_name("pool", "web-pool").status_code == 204
    assert api.delete_by_name("vsvip", "web-vip").status_code == 204
    assert api.get_object_by_name("vsvip", "web-vip") is None
    # the addresses are free again
    assert sim_admin.call("GET", "ipam")["used"] == []


def test_survives_forced_session_expiry(api: ApiSession, sim_admin: SimAdmin) -> None:
    assert api.post("pool", data={"name": "p1"}).status_code == 201
    assert sim_admin.expire_sessions() >= 1
    r = api.post("pool", data={"name": "p2"})
    assert r.status_code == 201, r.text
    log = sim_admin.requests()
    # the rejected call, a new login, the retried call
    tail = [(e["method"], e["path"], e["status"]) for e in log[-3:]]
    assert tail == [("POST", "/api/pool", 401), ("POST", "/login", 200), ("POST", "/api/pool", 201)]


def test_pages_through_250_objects(api: ApiSession) -> None:
    for i in range(250):
        r = api.post("pool", data={"name": f"page-pool-{i:03d}"})
        assert r.status_code == 201, r.text
    names = [o["name"] for o in api.get_objects_iter("pool", params={"page_size": 100})]
    assert names == [f"page-pool-{i:03d}" for i in range(250)]
    first = api.get("pool", params={"page_size": 100}).json()
    assert first["count"] == 250 and len(first["results"]) == 100 and "page=2" in first["next"]
    last = api.get("pool", params={"page_size": 100, "page": 3}).json()
    assert len(last["results"]) == 50 and "next" not in last


def test_tenant_scoping(sim: SimServer) -> None:
    a = ApiSession(sim.url, sim.username, sim.password, tenant="team-a")
    adm = ApiSession(sim.url, sim.username, sim.password, tenant="admin")
    try:
        r = a.post("pool", data={"name": "tp"})
        assert r.status_code == 201, r.text
        assert r.json()["tenant_ref"].endswith("#team-a")
        assert adm.get("pool", params={"name": "tp"}).json()["count"] == 0
        assert a.get("pool", params={"name": "tp"}).json()["count"] == 1
        # admin's system profiles are visible from the tenant
        assert a.get_object_by_name("applicationprofile", "System-HTTP") is not None
    finally:
        ApiSession.clear_cached_sessions()


def test_allocates_the_lowest_free_address_of_each_family(api: ApiSession, sim_admin: SimAdmin) -> None:
    def vips(name: str) -> tuple[str, str]:
        r = api.post("vsvip", data=_vsvip_body(name))
        assert r.status_code == 201, r.text
        vip = r.json()["vip"][0]
        return vip["ip_address"]["addr"], vip["ip6_address"]["addr"]

    made = [vips(f"low-{i}") for i in range(4)]
    v4 = [int(ipaddress.ip_address(a)) for a, _ in made]
    v6 = [int(ipaddress.ip_address(b)) for _, b in made]
    # one after the other from the start of the range, in both families
    assert v4 == list(range(v4[0], v4[0] + 4)) and v6 == list(range(v6[0], v6[0] + 4))
    assert api.delete_by_name("vsvip", "low-1").status_code == 204
    assert api.delete_by_name("vsvip", "low-2").status_code == 204
    # freed addresses are taken again, lowest first, before the range goes on
    assert vips("low-4") == made[1]
    assert vips("low-5") == made[2]
    a, b = vips("low-6")
    assert int(ipaddress.ip_address(a)) == v4[3] + 1 and int(ipaddress.ip_address(b)) == v6[3] + 1
    used = {(e["ip"], e["vsvip"]) for e in sim_admin.call("GET", "ipam")["used"]}
    assert len(used) == 10  # 5 vsvips, one address of each family
