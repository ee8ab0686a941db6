"""YAML seed files, per-cloud defaults, IPAM through a cloud's IPAM profile, EVH, label queries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from albus.sim.server import SimServer
from albus.sim.testing import SimClient as Client

pytestmark = pytest.mark.sim

SEED = """
tenants: [blue, {name: green}]
clouds:
  - name: k8s-cloud
    ipam_networks: [k8s-vip]
vrfcontexts:
  - name: global
    cloud: k8s-cloud
    local_as: 65010
    bgp_peers:
      - {peer_ip: 10.20.0.1, remote_as: 65020, label: spine}
serviceenginegroups:
  - {name: seg-k8s, cloud: k8s-cloud}
networks:
  - name: k8s-vip
    cloud: k8s-cloud
    subnets:
      - {prefix: 127.0.120.0/24, static_ranges: [127.0.120.5-127.0.120.6], type: STATIC_IPS_FOR_VIP}
      - {prefix: "fd00:120::/64", static_ranges: ["fd00:120::5-fd00:120::6"]}
"""


def test_yaml_seed(sim_factory: Callable[..., SimServer], tmp_path: Path) -> None:
    f = tmp_path / "seed.yaml"
    f.write_text(SEED)
    sim = sim_factory(seed=f)
    c = Client(sim.url)
    assert c.login().status_code == 200
    assert {t["name"] for t in c.ok("GET", "tenant")["results"]} == {"admin", "blue", "green"}
    vrfs = c.ok("GET", "vrfcontext", params={"name": "global", "include_name": "1"})["results"]
    assert sorted(v["cloud_ref"].split("#")[1] for v in vrfs) == ["Default-Cloud", "k8s-cloud"]
    k8s_global = next(v for v in vrfs if v["cloud_ref"].endswith("#k8s-cloud"))
    assert k8s_global["bgp_profile"]["peers"][0]["label"] == "spine"
    assert c.ok("GET", "serviceenginegroup", params={"cloud_ref.name": "k8s-cloud"})["count"] == 2
    # no network in the vip: the cloud's IPAM profile's usable network is used; the VRF is the cloud's
    body = {"name": "v1", "cloud_ref": "/api/cloud/?name=k8s-cloud", "bgp_peer_labels": ["spine"],
            "vip": [{"vip_id": "0", "auto_allocate_ip": True, "auto_allocate_ip_type": "V4_V6"}]}
    v = c.ok("POST", "vsvip", body)
    assert v["vrf_context_ref"].split("#")[0].endswith(k8s_global["uuid"])
    assert v["vip"][0]["ip_address"]["addr"] == "127.0.120.5"
    assert v["vip"][0]["ip6_address"]["addr"] == "fd00:120::5"
    # Default-Cloud's VRF has no such label
    r = c.post("vsvip", {"name": "v2", "bgp_peer_labels": ["spine"],
                         "vip": [{"vip_id": "0", "ip_address": {"addr": "192.0.2.1", "type": "V4"}}]})
    assert r.status_code == 400
    # the second address of a two-address range, then exhaustion
    body["name"], body["bgp_peer_labels"] = "v3", []
    assert c.ok("POST", "vsvip", body)["vip"][0]["ip_address"]["addr"] == "127.0.120.6"
    body["name"] = "v4"
    r = c.post("vsvip", body)
    assert r.status_code == 400 and r.json() == {"error": "No available free IPs"}


def test_bad_seed_is_refused(sim_factory: Callable[..., SimServer]) -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        sim_factory(seed={"netwrks": []})


def test_evh_parent_child_and_labels(client: Client) -> None:
    parent = client.ok("POST", "virtualservice", {"name": "evh", "type": "VS_TYPE_VH_PARENT",
                                                  "vh_type": "VS_TYPE_VH_ENHANCED", "services": [{"port": 443}]})
    child = client.ok("POST", "virtualservice", {
        "name": "evh-child", "type": "VS_TYPE_VH_CHILD", "vh_type": "VS_TYPE_VH_ENHANCED",
        "vh_parent_vs_ref": parent["url"],
        "vh_matches": [{"host": "foo.com", "path": [{"match_criteria": "BEGINS_WITH", "match_str": ["/"]}]}]})
    assert child["vh_parent_vs_ref"].endswith("#evh")
    normal = client.ok("POST", "virtualservice", {"name": "plain"})
    r = client.post("virtualservice", {"name": "bad-child", "type": "VS_TYPE_VH_CHILD",
                                       "vh_parent_vs_ref": normal["url"]})
    assert r.status_code == 400 and r.json() == {"error": "VirtualService plain is not a VS_TYPE_VH_PARENT"}
    client.ok("POST", "stringgroup", {"name": "sg", "type": "SG_TYPE_STRING",
                                      "labels": [{"key": "created_by", "value": "ako-c1"}]})
    q = client.ok("GET", "stringgroup", params={"label_key": "created_by", "label_value": "ako-c1"})
    assert [s["name"] for s in q["results"]] == ["sg"]
    assert client.ok("GET", "stringgroup", params={"label_value": "other"})["count"] == 0
