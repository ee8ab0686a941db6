"""Exact status codes and bodies of every error the simulator answers, through a plain HTTP client."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from albus.sim.server import SimServer
from albus.sim.testing import SimClient as Client
from albus.sim.testing import wait_for

pytestmark = pytest.mark.sim

V4 = {"auto_allocate_ip": True, "ipam_network_subnet": {"network_ref": "/api/network/?name=vip-net"}}


def err(r: Any) -> str:
    assert r.headers["Content-Type"].startswith("application/json"), r.text
    body = r.json()
    assert set(body) == {"error"}, body
    return str(body["error"])


# ---- session and headers -----------------------------------------------------------------------

def test_login_sets_cookies_and_bad_password_is_401(sim: SimServer) -> None:
    c = Client(sim.url)
    r = c.login()
    assert r.status_code == 200
    assert {"csrftoken", "sessionid", "avi-sessionid"} <= set(r.cookies.keys())
    assert r.cookies["sessionid"] == r.cookies["avi-sessionid"]
    assert r.json()["version"]["Version"] == "30.2.1"
    bad = Client(sim.url, password="wrong")
    r = bad.login()
    assert r.status_code == 401 and err(r) == "Invalid credentials"
    # JSON login (the Go SDK's form) works too
    r = bad.s.post(f"{sim.url}/login", json={"username": "admin", "password": "albus-sim"})
    assert r.status_code == 200


def test_no_session_is_401(sim: SimServer) -> None:
    c = Client(sim.url)
    r = c.get("pool")
    assert r.status_code == 401 and err(r) == "Authentication credentials were not provided."


def test_csrf_and_referer(client: Client) -> None:
    r = client.post("pool", {"name": "p"}, csrf=False)
    assert r.status_code == 401
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.text == "CSRF token missing or incorrect."
    r = client.post("pool", {"name": "p"}, headers={"X-CSRFToken": "x" * 32})
    assert r.status_code == 401 and r.text == "CSRF token missing or incorrect."
    r = client.post("pool", {"name": "p"}, referer=False)
    assert r.status_code == 401 and r.text == "Referer checking failed - no Referer."
    # GETs need neither
    assert client.get("pool", csrf=False, referer=False).status_code == 200
    assert client.post("pool", {"name": "p"}).status_code == 201


def test_cookies_refreshed_and_logout(client: Client, sim: SimServer) -> None:
    r = client.get("pool")
    assert r.cookies["sessionid"] == client.sid
    r = client.s.post(f"{sim.url}/logout", cookies={"sessionid": client.sid}, headers=client.headers())
    assert r.status_code == 200
    assert client.get("pool").status_code == 401


def test_session_idle_timeout(sim_factory: Callable[..., SimServer]) -> None:
    sim = sim_factory(session_timeout=0.3)
    c = Client(sim.url)
    c.login()
    assert c.get("pool").status_code == 200
    wait_for(lambda: c.get("tenant").status_code == 401 or None, timeout=5, interval=0.4, what="session expiry")
    r = c.get("pool")
    assert r.status_code == 401 and err(r) == "Authentication credentials were not provided."
    c.login()
    assert c.get("pool").status_code == 200


@pytest.mark.parametrize("version", ["99.1.1", "17.2.1", "latest", "1.2.3.4.5"])
def test_bad_api_version(client: Client, version: str) -> None:
    r = client.get("pool", headers={"X-Avi-Version": version})
    assert r.status_code == 400
    assert err(r) == f"Invalid version {version}: the controller supports API versions 18.2.1 to 30.2.1"


@pytest.mark.parametrize("version", ["20.1.1", "22.1.3", "30.2.1", "30.2"])
def test_supported_api_versions(client: Client, version: str) -> None:
    assert client.get("pool", headers={"X-Avi-Version": version}).status_code == 200


def test_unknown_tenant(client: Client) -> None:
    r = client.get("pool", headers={"X-Avi-Tenant": "nope"})
    assert r.status_code == 400 and err(r) == "Tenant nope does not exist"
    r = client.get("pool", headers={"X-Avi-Tenant-UUID": "tenant-nope"})
    assert r.status_code == 400 and err(r) == "Tenant with uuid tenant-nope does not exist"


def test_tenant_by_uuid_and_isolation(client: Client) -> None:
    t = client.ok("GET", "tenant", params={"name": "team-a"})["results"][0]
    p = client.ok("POST", "pool", {"name": "tp"}, headers={"X-Avi-Tenant-UUID": t["uuid"]})
    assert p["tenant_ref"].endswith(f"/api/tenant/{t['uuid']}#team-a")
    # invisible from admin, by name and by uuid
    assert client.ok("GET", "pool", params={"name": "tp"})["count"] == 0
    assert client.get(f"pool/{p['uuid']}").status_code == 404
    assert client.ok("GET", "pool", params={"name": "tp"}, headers={"X-Avi-Tenant": "team-a"})["count"] == 1
    # the same name in another tenant is fine
    assert client.post("pool", {"name": "tp"}).status_code == 201
    # "*" lists every tenant
    assert client.ok("GET", "pool", params={"name": "tp"}, headers={"X-Avi-Tenant": "*"})["count"] == 2


# ---- validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("otype", "body", "status", "message"), [
    ("pool", {"name": "p", "bogus": 1}, 400, "Unknown field 'bogus' in Pool"),
    ("pool", {"name": "p", "servers": [{"ip": {"addr": "1.1.1.1", "type": "V4"}, "prt": 1}]}, 400,
     "Unknown field 'servers[0].prt' in Pool"),
    ("pool", {"name": "p", "lb_algorithm": "FASTEST"}, 400,
     "Invalid value for field lb_algorithm: 'FASTEST' is not a valid choice"),
    ("pool", {"name": "p", "default_server_port": "80"}, 400,
     "Invalid value for field default_server_port: expected int, got str"),
    ("pool", {"name": "p", "enabled": 1}, 400, "Invalid value for field enabled: expected bool, got int"),
    ("pool", {"name": "p", "servers": [{"port": 80}]}, 400, "Field 'servers[0].ip' is required in Pool"),
    ("pool", {"servers": []}, 400, "Field 'name' is required in Pool"),
    ("pool", {"name": "p", "servers": [{"ip": {"addr": "fd00::1", "type": "V4"}}]}, 400,
     "IP address 'fd00::1' in field servers[0].ip is not of type V4"),
    ("pool", {"name": "p", "servers": [{"ip": {"addr": "1.2.3", "type": "V4"}}]}, 400,
     "Invalid IP address '1.2.3' in field servers[0].ip"),
    ("healthmonitor", {"name": "h"}, 400, "Field 'type' is required in HealthMonitor"),
    ("virtualservice", {"name": "v", "services": [{"port": 80}], "pool_ref": "/api/pool?name=nope"}, 400,
     "Pool object not found: /api/pool?name=nope"),
    ("virtualservice", {"name": "v", "pool_ref": "/api/poolgroup?name=x"}, 400,
     "Invalid reference in field pool_ref: expected a Pool reference, got /api/poolgroup?name=x"),
    ("virtualservice", {"name": "v", "pool_ref": "nonsense"}, 400, "Invalid reference in field pool_ref: nonsense"),
    ("virtualservice", {"name": "v", "type": "VS_TYPE_VH_CHILD"}, 400,
     "vh_parent_vs_ref is required for a VS_TYPE_VH_CHILD virtual service"),
    ("pool", {"name": "p", "servers": [{"ip": {"addr": "1.1.1.1", "type": "V4"}, "port": 70000}]}, 400,
     "Invalid server port 70000: must be 1-65535"),
    ("sslkeyandcertificate", {"name": "c", "certificate": {"certificate": "not pem"}}, 400,
     "Invalid certificate: cannot parse PEM data"),
])
def test_validation_errors(client: Client, otype: str, body: dict[str, Any], status: int, message: str) -> None:
    r = client.post(otype, body)
    assert r.status_code == status
    assert err(r) == message


def test_invalid_json_and_unknown_type(client: Client) -> None:
    r = client.s.post(f"{client.url}/api/pool", data=b"{not json", headers=client.headers(),
                      cookies={"sessionid": client.sid})
    assert r.status_code == 400 and err(r) == "Invalid JSON in request body"
    r = client.get("nosuchtype")
    assert r.status_code == 404 and err(r) == "Unknown object type: nosuchtype"
    r = client.delete("pool")
    assert r.status_code == 405 and err(r) == "Method 'DELETE' not allowed"


def test_reference_forms(client: Client, sim: SimServer) -> None:
    p = client.ok("POST", "pool", {"name": "rp"})
    forms = [
        "/api/pool/?name=rp", "/api/pool?name=rp", f"/api/pool/{p['uuid']}", p["url"],
        p["url"].split("#")[0], f"{sim.url}/api/pool/{p['uuid']}#whatever", f"https://10.0.0.1/api/pool/{p['uuid']}",
        "/api//pool?name=rp",
    ]
    for i, ref in enumerate(forms):
        vs = client.ok("POST", "virtualservice", {"name": f"v{i}", "pool_ref": ref})
        assert vs["pool_ref"] == f"{sim.url}/api/pool/{p['uuid']}#rp", ref


def test_duplicate_name_409(client: Client) -> None:
    assert client.post("pool", {"name": "dup"}).status_code == 201
    r = client.post("pool", {"name": "dup"})
    assert r.status_code == 409 and err(r) == "Pool object with name dup already exists in this tenant"
    other = client.ok("POST", "pool", {"name": "other"})
    other["name"] = "dup"
    r = client.put(f"pool/{other['uuid']}", other)
    assert r.status_code == 409


def test_get_missing_and_delete_errors(client: Client) -> None:
    r = client.get("pool/pool-00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and err(r) == "Pool object not found"
    r = client.get("vsvip/vsvip-x")
    assert r.status_code == 404 and "VsVip object not found" in err(r)
    r = client.delete("pool/pool-x")
    assert r.status_code == 404
    hm = client.ok("GET", "healthmonitor", params={"name": "System-TCP"})["results"][0]
    r = client.delete(f"healthmonitor/{hm['uuid']}")
    assert r.status_code == 403 and err(r) == "Cannot delete system default object"
    p = client.ok("POST", "pool", {"name": "used", "health_monitor_refs": ["/api/healthmonitor?name=System-TCP"]})
    client.ok("POST", "poolgroup", {"name": "pg", "members": [{"pool_ref": p["url"]}]})
    client.ok("POST", "virtualservice", {"name": "vs1", "pool_ref": p["url"]})
    r = client.delete(f"pool/{p['uuid']}")
    assert r.status_code == 403
    assert err(r) == "Cannot delete, object is referred by: ['PoolGroup pg', 'VirtualService vs1']"


def test_put_last_modified_conflict_412(client: Client) -> None:
    p = client.ok("POST", "pool", {"name": "lm"})
    stale = dict(p)
    p["default_server_port"] = 81
    assert client.put(f"pool/{p['uuid']}", p).status_code == 200
    stale["default_server_port"] = 82
    r = client.put(f"pool/{p['uuid']}", stale)
    assert r.status_code == 412
    assert err(r).startswith("Concurrent Update Error")
    # without _last_modified the write goes through (last writer wins, as on the controller)
    stale.pop("_last_modified")
    assert client.put(f"pool/{p['uuid']}", stale).status_code == 200


def test_patch_errors(client: Client) -> None:
    p = client.ok("POST", "pool", {"name": "pp"})
    r = client.patch(f"pool/{p['uuid']}", {"merge": {"enabled": False}})
    assert r.status_code == 400
    assert err(r) == "PATCH body must be an object with 'add', 'replace' and/or 'delete'"
    r = client.patch(f"pool/{p['uuid']}", {"replace": {"bogus": 1}})
    assert r.status_code == 400 and err(r) == "Unknown field 'bogus' in Pool"


# ---- collections --------------------------------------------------------------------------------

def test_collection_queries(client: Client, sim: SimServer) -> None:
    for i in range(5):
        client.ok("POST", "pool", {"name": f"cluster1--ns-svc{i}", "created_by": "ako-cluster1" if i < 3 else "x",
                                   "markers": [{"key": "clustername", "values": ["cluster1"]}]})
    p0 = client.ok("GET", "pool", params={"name": "cluster1--ns-svc0"})["results"][0]
    vs = client.ok("POST", "virtualservice", {"name": "v", "pool_ref": p0["url"]})
    q = client.ok("GET", "pool", params={"created_by": "ako-cluster1", "include_name": "true",
                                         "cloud_ref.name": "Default-Cloud", "page_size": 100})
    assert q["count"] == 3 and q["results"][0]["cloud_ref"].endswith("#Default-Cloud")
    q = client.ok("GET", "pool", params={"name.contains": "svc4"})
    assert [r["name"] for r in q["results"]] == ["cluster1--ns-svc4"]
    q = client.ok("GET", "virtualservice", params={"refers_to": f"pool:{p0['uuid']}"})
    assert [r["name"] for r in q["results"]] == ["v"]
    q = client.ok("GET", "pool", params={"referred_by": f"virtualservice:{vs['uuid']}"})
    assert [r["name"] for r in q["results"]] == ["cluster1--ns-svc0"]
    q = client.ok("GET", "pool", params={"fields": "created_by", "name": "cluster1--ns-svc1"})
    assert set(q["results"][0]) == {"url", "uuid", "name", "created_by"}
    q = client.ok("GET", "pool", params={"cloud_ref.name": "Other-Cloud"})
    assert q["count"] == 0
    r = client.get("pool", params={"page_size": 201})
    assert r.status_code == 400 and err(r) == "Invalid page_size 201: must be between 1 and 200"
    r = client.get("pool", params={"page": 9})
    assert r.status_code == 404 and err(r) == "Invalid page."
    empty = client.ok("GET", "pool", params={"name": "none"})
    assert empty == {"count": 0, "results": []}
    # by uuid with include_name
    one = client.ok("GET", f"virtualservice/{vs['uuid']}", params={"include_name": "true"})
    assert one["pool_ref"].endswith("#cluster1--ns-svc0")
    assert "#" not in client.ok("GET", f"virtualservice/{vs['uuid']}")["pool_ref"]


def test_system_objects_present(client: Client) -> None:
    expect = {
        "tenant": ["admin"], "cloud": ["Default-Cloud"], "serviceenginegroup": ["Default-Group"],
        "vrfcontext": ["global", "management"],
        "applicationprofile": ["System-HTTP", "System-Secure-HTTP", "System-L4-Application"],
        "networkprofile": ["System-TCP-Proxy", "System-TCP-Fast-Path", "System-UDP-Fast-Path"],
        "healthmonitor": ["System-TCP", "System-UDP", "System-HTTP", "System-HTTPS", "System-Ping"],
        "sslkeyandcertificate": ["System-Default-Cert"], "analyticsprofile": ["System-Analytics-Profile"],
    }
    for otype, names in expect.items():
        have = {r["name"] for r in client.ok("GET", otype, params={"page_size": 200})["results"]}
        assert set(names) <= have, (otype, have)
    t = client.ok("GET", "tenant", params={"name": "admin"})["results"][0]
    assert t["uuid"] == "admin"


# ---- IPAM --------------------------------------------------------------------------------------

def _vsvip(client: Client, name: str, **vip: Any) -> Any:
    return client.post("vsvip", {"name": name, "vip": [{"vip_id": "0", **vip}]})


def test_ipam_families_and_release(client: Client) -> None:
    r = _vsvip(client, "a", **V4)
    assert r.status_code == 201
    v = r.json()["vip"][0]
    assert v["ip_address"] == {"addr": "127.0.100.10", "type": "V4"} and "ip6_address" not in v
    assert v["auto_allocate_ip_type"] == "V4_ONLY"
    r = _vsvip(client, "b", **V4, auto_allocate_ip_type="V6_ONLY")
    v = r.json()["vip"][0]
    assert v["ip6_address"] == {"addr": "fd00:a1b0::10", "type": "V6"} and "ip_address" not in v
    r = _vsvip(client, "c", **V4, auto_allocate_ip_type="V4_V6")
    v = r.json()["vip"][0]
    assert v["ip_address"]["addr"] == "127.0.100.11" and v["ip6_address"]["addr"] == "fd00:a1b0::11"
    a = client.ok("GET", "vsvip", params={"name": "a"})["results"][0]
    assert client.delete(f"vsvip/{a['uuid']}").status_code == 204
    v = _vsvip(client, "d", **V4).json()["vip"][0]
    assert v["ip_address"]["addr"] == "127.0.100.10"  # freed and reused


def test_ipam_explicit_subnet(client: Client) -> None:
    ins = {"network_ref": "/api/network/?name=vip-net",
           "subnet": {"ip_addr": {"addr": "127.0.100.0", "type": "V4"}, "mask": 24},
           "subnet6": {"ip_addr": {"addr": "fd00:a1b0::", "type": "V6"}, "mask": 64}}
    r = _vsvip(client, "s", auto_allocate_ip=True, auto_allocate_ip_type="V4_V6", ipam_network_subnet=ins)
    assert r.status_code == 201, r.text
    bad = dict(ins, subnet={"ip_addr": {"addr": "10.9.9.0", "type": "V4"}, "mask": 24})
    r = _vsvip(client, "s2", auto_allocate_ip=True, ipam_network_subnet=bad)
    assert r.status_code == 400 and err(r) == "Subnet 10.9.9.0/24 not found in network vip-net"
    r = _vsvip(client, "s3", auto_allocate_ip=True, ipam_network_subnet={"network_ref": "/api/network/?name=nope"})
    assert r.status_code == 400 and err(r) == "Network object not found: /api/network/?name=nope"


def test_ipam_static_requests(client: Client) -> None:
    r = _vsvip(client, "st", **V4, ip_address={"addr": "127.0.100.77", "type": "V4"})
    assert r.status_code == 201 and r.json()["vip"][0]["ip_address"]["addr"] == "127.0.100.77"
    r = _vsvip(client, "st2", **V4, ip_address={"addr": "127.0.100.77", "type": "V4"})
    assert r.status_code == 409 and err(r) == "IP address 127.0.100.77 is already in use by VsVip st"
    r = _vsvip(client, "st3", **V4, ip_address={"addr": "10.1.1.1", "type": "V4"})
    assert r.status_code == 400
    assert err(r) == "IP address 10.1.1.1 is not in subnet 127.0.100.0/24 of network vip-net"
    r = _vsvip(client, "st4", ip_address={"addr": "192.0.2.5", "type": "V4"})  # no IPAM: taken as given
    assert r.status_code == 201
    r = _vsvip(client, "st5", ip_address={"addr": "192.0.2.5", "type": "V4"})
    assert r.status_code == 409


def test_ipam_change_refused_and_kept_on_put(client: Client) -> None:
    v = _vsvip(client, "chg", **V4).json()
    addr = v["vip"][0]["ip_address"]["addr"]
    body = dict(v)
    body["vip"] = [{"vip_id": "0", **V4}]  # no address echoed: the allocation is kept
    r = client.put(f"vsvip/{v['uuid']}", body)
    assert r.status_code == 200 and r.json()["vip"][0]["ip_address"]["addr"] == addr
    body = r.json()
    body["vip"][0]["ip_address"] = {"addr": "127.0.100.99", "type": "V4"}
    r = client.put(f"vsvip/{v['uuid']}", body)
    assert r.status_code == 400
    assert err(r) == "Changing an existing VIP's IP address is not supported, please recreate the VIP"


def test_ipam_exhaustion(client: Client) -> None:
    client.ok("POST", "network", {"name": "tiny", "configured_subnets": [{
        "prefix": {"ip_addr": {"addr": "127.0.101.0", "type": "V4"}, "mask": 24},
        "static_ip_ranges": [{"range": {"begin": {"addr": "127.0.101.1", "type": "V4"},
                                        "end": {"addr": "127.0.101.2", "type": "V4"}}, "type": "STATIC_IPS_FOR_VIP"}]}]})
    tiny = {"auto_allocate_ip": True, "ipam_network_subnet": {"network_ref": "/api/network/?name=tiny"}}
    assert _vsvip(client, "t1", **tiny).status_code == 201
    assert _vsvip(client, "t2", **tiny).status_code == 201
    r = _vsvip(client, "t3", **tiny)
    assert r.status_code == 400 and err(r) == "No available free IPs"
    r = client.post("network", {"name": "badnet", "configured_subnets": [{
        "prefix": {"ip_addr": {"addr": "127.0.102.0", "type": "V4"}, "mask": 24},
        "static_ip_ranges": [{"range": {"begin": {"addr": "127.0.103.1", "type": "V4"},
                                        "end": {"addr": "127.0.103.2", "type": "V4"}}}]}]})
    assert r.status_code == 400 and err(r) == "Static range 127.0.103.1-127.0.103.2 is not within subnet 127.0.102.0/24"


def test_se_group_and_bgp_labels(client: Client) -> None:
    r = client.post("virtualservice", {"name": "v", "se_group_ref": "/api/serviceenginegroup/?name=nope"})
    assert r.status_code == 400 and err(r) == "ServiceEngineGroup object not found: /api/serviceenginegroup/?name=nope"
    r = _vsvip(client, "bgp-ok", **V4)
    assert r.status_code == 201
    r = client.post("vsvip", {"name": "bgp", "bgp_peer_labels": ["rack-a"], "vip": [{"vip_id": "0", **V4}]})
    assert r.status_code == 201
    r = client.post("vsvip", {"name": "bgp2", "bgp_peer_labels": ["rack-z"], "vip": [{"vip_id": "0", **V4}]})
    assert r.status_code == 400
    assert err(r) == "BGP peer label rack-z is not configured on any BGP peer of VrfContext global"
    # nothing was allocated by the refused call
    assert client.ok("GET", "vsvip", params={"name": "bgp2"})["count"] == 0


def test_rate_limit_429(sim_factory: Callable[..., SimServer]) -> None:
    sim = sim_factory(profile="realistic", rate=2.0, burst=5)
    c = Client(sim.url)
    c.login()
    codes = [c.get("pool").status_code for _ in range(12)]
    assert codes[:4] == [200] * 4  # the login used one token of the burst
    assert 429 in codes
    r = c.get("pool")
    assert r.status_code == 429 and err(r) == "Too many requests, please retry later"
    time.sleep(0.6)  # the bucket refills at 2/s: this wait is the behaviour under test
    assert c.get("pool").status_code == 200
