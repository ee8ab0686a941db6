"""The macro API: nested creation in one transaction, rollback, modify, hierarchical delete."""

from __future__ import annotations

from typing import Any

import pytest

from albus.sim.testing import SimAdmin
from albus.sim.testing import SimClient as Client

pytestmark = pytest.mark.sim


def l4_tree(name: str, pools: list[tuple[str, int, str]], *, vs_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """An AKO-style L4 virtual service: vsvip, an L4 policy set with one pool per port."""
    rules = []
    for i, (pool, port, ip) in enumerate(pools):
        rules.append({"name": f"TCP-{port}", "index": i, "enable": True,
                      "match": {"port": {"match_criteria": "IS_IN", "ports": [port]},
                                "protocol": {"match_criteria": "IS_IN", "protocol": "PROTOCOL_TCP"}},
                      "action": {"select_pool": {"action_type": "L4_RULE_ACTION_SELECT_POOL", "pool_ref_data": {
                          "name": pool, "created_by": "ako-c1",
                          "servers": [{"ip": {"addr": ip, "type": "V4"}, "port": 8080}],
                          "health_monitor_refs_data": [{"name": f"{pool}-hm", "type": "HEALTH_MONITOR_TCP"}],
                      }}}})
    data = {
        "name": name, "created_by": "ako-c1",
        "services": [{"port": p} for _, p, _ in pools],
        "application_profile_ref": "/api/applicationprofile/?name=System-L4-Application",
        "network_profile_ref": "/api/networkprofile/?name=System-TCP-Proxy",
        "vsvip_ref_data": {"name": name, "vip": [{"vip_id": "0", "auto_allocate_ip": True,
                                                  "ipam_network_subnet": {"network_ref": "/api/network/?name=vip-net"}}]},
        "l4_policies": [{"index": 0, "l4_policy_set_ref_data": {
            "name": name, "created_by": "ako-c1", "l4_connection_policy": {"rules": rules}}}],
        **(vs_extra or {}),
    }
    return {"model_name": "VirtualService", "data": data}


def names(client: Client, otype: str) -> set[str]:
    return {r["name"] for r in client.ok("GET", otype, params={"page_size": 200})["results"]}


def test_macro_create_nested(client: Client, sim_admin: SimAdmin) -> None:
    sim_admin.reset_log()
    r = client.post("macro", l4_tree("c1--ns-svc", [("c1--ns-svc-TCP-80", 80, "127.0.0.2"),
                                                    ("c1--ns-svc-TCP-443", 443, "127.0.0.3")]))
    assert r.status_code == 200, r.text
    # one controller call for the whole tree
    c = sim_admin.counters()
    assert c["writes"] == 1 and c["by_type"] == {"macro": 1}
    created = r.json()
    assert isinstance(created, list)
    by_type: dict[str, list[str]] = {}
    for o in created:
        by_type.setdefault(o["url"].split("/api/")[1].split("/")[0], []).append(o["name"])
    assert by_type == {"vsvip": ["c1--ns-svc"], "healthmonitor": ["c1--ns-svc-TCP-80-hm", "c1--ns-svc-TCP-443-hm"],
                       "pool": ["c1--ns-svc-TCP-80", "c1--ns-svc-TCP-443"], "l4policyset": ["c1--ns-svc"],
                       "virtualservice": ["c1--ns-svc"]}
    vs = client.ok("GET", "virtualservice", params={"name": "c1--ns-svc", "include_name": "true"})["results"][0]
    assert vs["vsvip_ref"].endswith("/vsvip/" + client.ok("GET", "vsvip", params={"name": "c1--ns-svc"})
                                    ["results"][0]["uuid"] + "#c1--ns-svc")
    assert vs["l4_policies"][0]["l4_policy_set_ref"].endswith("#c1--ns-svc")
    l4 = client.ok("GET", "l4policyset", params={"name": "c1--ns-svc", "include_name": "1"})["results"][0]
    rule_pools = [ru["action"]["select_pool"]["pool_ref"].split("#")[1] for ru in l4["l4_connection_policy"]["rules"]]
    assert rule_pools == ["c1--ns-svc-TCP-80", "c1--ns-svc-TCP-443"]
    pool = client.ok("GET", "pool", params={"name": "c1--ns-svc-TCP-80", "include_name": "1"})["results"][0]
    assert pool["health_monitor_refs"][0].endswith("#c1--ns-svc-TCP-80-hm")
    vip = client.ok("GET", "vsvip", params={"name": "c1--ns-svc"})["results"][0]["vip"][0]
    assert vip["ip_address"]["addr"] == "127.0.100.10"


def test_macro_rolls_back_everything(client: Client, sim_admin: SimAdmin) -> None:
    before = {t: names(client, t) for t in ("vsvip", "pool", "healthmonitor", "l4policyset", "virtualservice")}
    bad = l4_tree("rb", [("rb-80", 80, "127.0.0.2")], vs_extra={"flow_dist": "NOT_AN_ENUM"})
    r = client.post("macro", bad)
    assert r.status_code == 400
    assert r.json() == {"error": "Invalid value for field flow_dist: 'NOT_AN_ENUM' is not a valid choice"}
    after = {t: names(client, t) for t in before}
    assert after == before
    assert sim_admin.call("GET", "ipam")["used"] == []
    # a failure deep inside (a duplicate pool name) rolls back too
    client.ok("POST", "pool", {"name": "taken"})
    r = client.post("macro", l4_tree("rb2", [("ok-pool", 80, "127.0.0.2"), ("taken", 81, "127.0.0.3")]))
    assert r.status_code == 409
    assert "ok-pool" not in names(client, "pool") and "rb2" not in names(client, "vsvip")
    # and the next macro call gets the first address again
    r = client.post("macro", l4_tree("rb3", [("p3", 80, "127.0.0.2")]))
    assert r.status_code == 200
    assert client.ok("GET", "vsvip", params={"name": "rb3"})["results"][0]["vip"][0]["ip_address"]["addr"] \
        == "127.0.100.10"


def test_macro_put_modifies(client: Client) -> None:
    assert client.post("macro", l4_tree("m", [("m-80", 80, "127.0.0.2")])).status_code == 200
    vsvip_before = client.ok("GET", "vsvip", params={"name": "m"})["results"][0]
    r = client.put("macro", l4_tree("m", [("m-80", 80, "127.0.0.9"), ("m-81", 81, "127.0.0.8")]))
    assert r.status_code == 200, r.text
    pool = client.ok("GET", "pool", params={"name": "m-80"})["results"][0]
    assert [s["ip"]["addr"] for s in pool["servers"]] == ["127.0.0.9"]
    assert "m-81" in names(client, "pool")
    vs = client.ok("GET", "virtualservice", params={"name": "m"})["results"][0]
    assert [s["port"] for s in vs["services"]] == [80, 81]
    vsvip = client.ok("GET", "vsvip", params={"name": "m"})["results"][0]
    assert vsvip["uuid"] == vsvip_before["uuid"]
    assert vsvip["vip"][0]["ip_address"] == vsvip_before["vip"][0]["ip_address"]


def test_macro_delete_hierarchy_keeps_shared(client: Client) -> None:
    assert client.post("macro", l4_tree("d", [("d-80", 80, "127.0.0.2"), ("d-81", 81, "127.0.0.3")])).status_code == 200
    # another VS uses d-81: it must survive
    client.ok("POST", "virtualservice", {"name": "other", "pool_ref": "/api/pool?name=d-81"})
    r = client.delete("macro", {"model_name": "VirtualService", "data": {"name": "d"}})
    assert r.status_code == 204, r.text
    assert "d" not in names(client, "virtualservice")
    assert "d" not in names(client, "vsvip") and "d" not in names(client, "l4policyset")
    assert "d-80" not in names(client, "pool") and "d-80-hm" not in names(client, "healthmonitor")
    assert "d-81" in names(client, "pool") and "d-81-hm" in names(client, "healthmonitor")
    # system objects the tree referred to are untouched
    assert "System-L4-Application" in names(client, "applicationprofile")
    r = client.delete("macro", {"model_name": "VirtualService", "data": {"name": "d"}})
    assert r.status_code == 404 and r.json() == {"error": "VirtualService object not found"}


def test_macro_bad_bodies(client: Client) -> None:
    r = client.post("macro", {"model_name": "Nope", "data": {"name": "x"}})
    assert r.status_code == 400 and r.json() == {"error": "Invalid model_name: 'Nope'"}
    r = client.post("macro", {"model_name": "Pool", "data": {"name": "x"}, "extra": 1})
    assert r.status_code == 400
    r = client.post("macro", {"model_name": "Pool", "data": {"name": "x", "health_monitor_refs_data": {"name": "h"}}})
    assert r.status_code == 400 and r.json() == {"error": "data.health_monitor_refs_data must be a list of objects"}
    r = client.post("macro", {"model_name": "Pool", "data": {"name": "x", "health_monitor_refs_data": [{"name": "h"}]}})
    assert r.status_code == 400 and r.json() == {"error": "Field 'type' is required in HealthMonitor"}
    assert "x" not in names(client, "pool")


def test_macro_sni_parent_and_child(client: Client) -> None:
    parent = {"model_name": "VirtualService", "data": {
        "name": "c1--Shared-L7-0", "type": "VS_TYPE_VH_PARENT", "services": [{"port": 80}, {"port": 443, "enable_ssl": True}],
        "vsvip_ref_data": {"name": "c1--Shared-L7-0", "vip": [{"vip_id": "0", "auto_allocate_ip": True,
                                                               "ipam_network_subnet": {"network_ref": "/api/network/?name=vip-net"}}]},
        "pool_group_ref_data": {"name": "c1--Shared-L7-0", "members": [{"pool_ref_data": {"name": "shared-pool"}}]},
    }}
    r = client.post("macro", parent)
    assert r.status_code == 200, r.text
    child = {"model_name": "VirtualService", "data": {
        "name": "c1--foo.com", "type": "VS_TYPE_VH_CHILD", "vh_domain_name": ["foo.com"],
        "vh_parent_vs_ref": "/api/virtualservice/?name=c1--Shared-L7-0",
        "ssl_key_and_certificate_refs": ["/api/sslkeyandcertificate/?name=System-Default-Cert"],
        "http_policies": [{"index": 11, "http_policy_set_ref_data": {"name": "c1--foo.com", "http_request_policy": {
            "rules": [{"name": "r", "index": 0, "enable": True,
                       "match": {"path": {"match_criteria": "BEGINS_WITH", "match_str": ["/"]}},
                       "switching_action": {"action": "HTTP_SWITCHING_SELECT_POOLGROUP",
                                            "pool_group_ref_data": {"name": "c1--foo.com-pg", "members": [
                                                {"pool_ref_data": {"name": "foo-pool"}}]}}}]}}}],
    }}
    r = client.post("macro", child)
    assert r.status_code == 200, r.text
    vs = client.ok("GET", "virtualservice", params={"name": "c1--foo.com", "include_name": "1"})["results"][0]
    assert vs["vh_parent_vs_ref"].endswith("#c1--Shared-L7-0")
    assert vs["ssl_key_and_certificate_refs"][0].endswith("#System-Default-Cert")
    # the parent cannot go while the child refers to it
    p = client.ok("GET", "virtualservice", params={"name": "c1--Shared-L7-0"})["results"][0]
    r = client.delete(f"virtualservice/{p['uuid']}")
    assert r.status_code == 403 and r.json() == {"error": "Cannot delete, object is referred by: "
                                                           "['VirtualService c1--foo.com']"}


def test_macro_put_rolls_back_replacements(client: Client) -> None:
    assert client.post("macro", l4_tree("u", [("u-80", 80, "127.0.0.2")])).status_code == 200
    before = client.ok("GET", "pool", params={"name": "u-80"})["results"][0]
    bad = l4_tree("u", [("u-80", 80, "127.0.0.7")], vs_extra={"enabled": "yes"})
    r = client.put("macro", bad)
    assert r.status_code == 400 and r.json() == {"error": "Invalid value for field enabled: expected bool, got str"}
    after = client.ok("GET", "pool", params={"name": "u-80"})["results"][0]
    assert after == before  # same servers, same _last_modified
    # listing order is unchanged by the rolled-back replace
    assert [p["name"] for p in client.ok("GET", "pool")["results"]] == ["u-80"]
