"""The pure parts of the syncer: references, owned-field diff, merge, macro nesting, assignment."""

from __future__ import annotations

import copy

import msgpack
import pytest
from syncer_trees import l4_tree

from services.syncer.apply import vips_of
from services.syncer.cache import TenantObjects, body_digest, deletion_order, owned_by
from services.syncer.diff import differing_fields, merge_owned, owned_equal
from services.syncer.leases import assigned, owner_of
from services.syncer.macro import MacroError, macro_body
from services.syncer.refs import parse_ref, ref_key


def test_refs_by_name_and_by_url_reduce_to_the_same_key() -> None:
    assert ref_key("/api/pool/?name=web") == ("pool", "web")
    assert ref_key("/api/pool?name=web") == ("pool", "web")
    assert ref_key("https://ctrl/api/pool/pool-1234#web") == ("pool", "web")
    assert ref_key("http://127.0.0.1:9/api/vsvip/vsvip-9#a-b") == ("vsvip", "a-b")
    assert ref_key("https://ctrl/api/pool/pool-1234") == ("pool", "uuid:pool-1234")
    assert parse_ref("not a ref") is None
    assert ref_key("plain") == "plain"


def test_owned_equal_ignores_controller_fields_and_spelling_of_refs() -> None:
    desired = {
        "name": "p", "cloud_ref": "/api/cloud/?name=Default-Cloud",
        "health_monitor_refs": ["/api/healthmonitor/?name=System-TCP"],
        "servers": [{"ip": {"addr": "10.0.0.1", "type": "V4"}, "port": 80, "enabled": True}],
    }
    actual = {
        "name": "p", "uuid": "pool-1", "_last_modified": "1", "lb_algorithm": "LB_ALGORITHM_LEAST_CONNECTIONS",
        "cloud_ref": "https://c/api/cloud/cloud-1#Default-Cloud",
        "health_monitor_refs": ["https://c/api/healthmonitor/hm-1#System-TCP"],
        "servers": [{"ip": {"addr": "10.0.0.1", "type": "V4"}, "port": 80, "enabled": True, "hostname": "10.0.0.1",
                     "ratio": 1}],
    }
    assert owned_equal(desired, actual)
    assert differing_fields(desired, actual) == []
    changed = {**desired, "servers": [*desired["servers"], {"ip": {"addr": "10.0.0.2", "type": "V4"}, "port": 80}]}
    assert not owned_equal(changed, actual)
    assert differing_fields(changed, actual) == ["servers"]
    assert not owned_equal({"enabled": True}, {"enabled": 1})
    assert not owned_equal({"cloud_ref": "/api/cloud/?name=Other"}, actual)


def test_merge_keeps_controller_filled_fields_and_the_allocated_vip() -> None:
    actual = {
        "uuid": "vsvip-1", "_last_modified": "5", "name": "v",
        "vip": [{"vip_id": "0", "auto_allocate_ip": True, "ip_address": {"addr": "10.10.10.5", "type": "V4"}}],
        "east_west_placement": False,
    }
    desired = {"name": "v", "vip": [{"vip_id": "0", "auto_allocate_ip": True}], "bgp_peer_labels": ["a"]}
    merged = merge_owned(actual, desired)
    assert merged["uuid"] == "vsvip-1" and merged["_last_modified"] == "5"
    assert merged["vip"][0]["ip_address"]["addr"] == "10.10.10.5"
    assert merged["bgp_peer_labels"] == ["a"]
    assert owned_equal(desired, merged)
    # A changed list element is sent as desired; the unchanged one keeps its extras.
    servers = [{"ip": {"addr": "1.1.1.1", "type": "V4"}, "port": 80, "hostname": "1.1.1.1"},
               {"ip": {"addr": "2.2.2.2", "type": "V4"}, "port": 80, "hostname": "2.2.2.2"}]
    want = [{"ip": {"addr": "2.2.2.2", "type": "V4"}, "port": 80}, {"ip": {"addr": "3.3.3.3", "type": "V4"}, "port": 80}]
    out = merge_owned({"servers": servers}, {"servers": want})["servers"]
    assert out == [servers[1], want[1]]


def test_merge_into_a_fresh_copy_gives_the_same_body_and_copies_only_otherwise() -> None:
    actual = {"uuid": "pool-1", "name": "p", "servers": [{"ip": {"addr": "1.1.1.1"}, "port": 80, "hostname": "h"}],
              "health_monitor_refs": ["https://c/api/healthmonitor/hm-1#System-TCP"]}
    desired = {"name": "p", "servers": [{"ip": {"addr": "1.1.1.1"}, "port": 80}, {"ip": {"addr": "2.2.2.2"}, "port": 80}]}
    before = copy.deepcopy(actual)
    copied = merge_owned(actual, desired)
    assert actual == before  # not fresh: the caller's object is left alone
    fresh = merge_owned(actual, desired, fresh=True)
    assert fresh == copied and fresh is actual  # built on the caller's own copy
    fresh["servers"][1]["ip"]["addr"] = "9.9.9.9"
    assert desired["servers"][1]["ip"]["addr"] == "2.2.2.2"  # what the tree wants is still copied


def test_macro_nests_every_tree_object_under_its_reference() -> None:
    tree = l4_tree("c1", "web", ports=[("TCP", 80), ("UDP", 53)])
    body = macro_body(tree)
    assert body["model_name"] == "VirtualService"
    vs = body["data"]
    assert "vsvip_ref" not in vs and vs["vsvip_ref_data"]["name"] == "c1--default-web"
    assert vs["vsvip_ref_data"]["vip"][0]["auto_allocate_ip"] is True
    pol = vs["l4_policies"][0]
    assert "l4_policy_set_ref" not in pol
    rules = pol["l4_policy_set_ref_data"]["l4_connection_policy"]["rules"]
    pools = [r["action"]["select_pool"]["pool_ref_data"]["name"] for r in rules]
    assert pools == ["c1--default-web-TCP-80", "c1--default-web-UDP-53"]
    # References to objects outside the tree stay references.
    assert vs["application_profile_ref"] == "/api/applicationprofile/?name=System-L4-Application"
    assert rules[0]["action"]["select_pool"]["pool_ref_data"]["health_monitor_refs"] == [
        "/api/healthmonitor/?name=System-TCP"
    ]


def test_macro_nests_lists_of_tree_references_and_refuses_mixed_ones() -> None:
    from services.common.contracts import AviObject, VsTree

    cert = AviObject(type="sslkeyandcertificate", name="c", body={"name": "c"})
    vs = AviObject(type="virtualservice", name="v", body={
        "name": "v", "ssl_key_and_certificate_refs": ["/api/sslkeyandcertificate/?name=c"]})
    tree = VsTree(cluster="c1", tenant="admin", vs_name="v", objects=(cert, vs))
    data = macro_body(tree)["data"]
    assert data["ssl_key_and_certificate_refs_data"] == [{"name": "c"}]
    assert "ssl_key_and_certificate_refs" not in data
    mixed = vs.model_copy(update={"body": {**vs.body, "ssl_key_and_certificate_refs": [
        "/api/sslkeyandcertificate/?name=c", "/api/sslkeyandcertificate/?name=System-Default-Cert"]}})
    with pytest.raises(MacroError):
        macro_body(tree.model_copy(update={"objects": (cert, mixed)}))


def test_macro_refuses_a_tree_with_an_unreachable_object() -> None:
    tree = l4_tree("c1", "web")
    objs = tuple(o for o in tree.objects if o.type != "l4policyset")
    with pytest.raises(MacroError):
        macro_body(tree.model_copy(update={"objects": objs}))


def test_ownership_needs_created_by_and_clustername_marker() -> None:
    ours = {"created_by": "ako-c1", "markers": [{"key": "clustername", "values": ["c1"]}]}
    assert owned_by(ours, "c1")
    assert not owned_by(ours, "c2")
    assert not owned_by({"created_by": "ako-c1"}, "c1")
    assert not owned_by({**ours, "created_by": "ako-c1-new"}, "c1")
    assert not owned_by({"markers": ours["markers"]}, "c1")


def test_deletion_order_puts_the_vs_first_and_the_vip_last() -> None:
    keys = [("vsvip", "a"), ("pool", "p2"), ("virtualservice", "a"), ("l4policyset", "a"), ("pool", "p1")]
    assert deletion_order(keys) == [
        ("virtualservice", "a"), ("l4policyset", "a"), ("pool", "p1"), ("pool", "p2"), ("vsvip", "a")
    ]


def test_referenced_from_walks_the_vs_graph() -> None:
    tc = TenantObjects("admin", objects={
        ("virtualservice", "v"): {"vsvip_ref": "https://c/api/vsvip/x#v",
                                  "l4_policies": [{"l4_policy_set_ref": "https://c/api/l4policyset/y#v"}],
                                  "application_profile_ref": "https://c/api/applicationprofile/z#System-L4"},
        ("vsvip", "v"): {},
        ("l4policyset", "v"): {"l4_connection_policy": {"rules": [
            {"action": {"select_pool": {"pool_ref": "https://c/api/pool/p#v-TCP-80"}}}]}},
        ("pool", "v-TCP-80"): {},
        ("pool", "other"): {},
    })
    assert tc.referenced_from(("virtualservice", "v")) == {("vsvip", "v"), ("l4policyset", "v"), ("pool", "v-TCP-80")}
    # Read once and kept; a changed VS is read again (it now uses another pool).
    assert tc.facts(("virtualservice", "v")) is tc.facts(("virtualservice", "v"))
    tc.put(("virtualservice", "v"), {"pool_ref": "https://c/api/pool/q#other", "uuid": "virtualservice-1"})
    assert tc.referenced_from(("virtualservice", "v")) == {("pool", "other")}
    assert tc.facts(("virtualservice", "v")).uuid == "virtualservice-1"  # type: ignore[union-attr]


def test_a_remembered_match_holds_only_for_that_body_and_the_object_as_cached_then() -> None:
    tc = TenantObjects("admin", objects={("pool", "p"): {"name": "p", "servers": [], "uuid": "pool-1"}})
    body = {"name": "p", "servers": []}
    tc.note_match(("pool", "p"), body_digest(body))
    assert tc.matched(("pool", "p"), body_digest(body))
    assert not tc.matched(("pool", "p"), body_digest({**body, "servers": [{"ip": {"addr": "10.0.0.1"}}]}))
    tc.put(("pool", "p"), {"name": "p", "servers": [], "uuid": "pool-1", "_last_modified": "2"})  # re-read
    assert not tc.matched(("pool", "p"), body_digest(body))  # compared again against what the controller said
    tc.note_match(("pool", "p"), body_digest(body))
    tc.pop(("pool", "p"))
    assert not tc.matched(("pool", "p"), body_digest(body))
    tc.note_match(("pool", "gone"), body_digest(body))  # nothing cached: nothing to remember
    assert not tc.matched(("pool", "gone"), body_digest(body))


def test_vips_of_reads_v4_and_v6() -> None:
    vsvip = {"vip": [{"ip_address": {"addr": "10.0.0.5", "type": "V4"}, "ip6_address": {"addr": "fd00::5", "type": "V6"}}]}
    assert vips_of(vsvip) == ("10.0.0.5", "fd00::5")
    assert vips_of(None) == ()


def test_rendezvous_assignment_covers_every_partition_once_and_moves_little() -> None:
    members = {"a", "b", "c"}
    shares = {m: assigned(m, members) for m in members}
    assert set().union(*shares.values()) == set(range(64))
    assert sum(len(s) for s in shares.values()) == 64
    assert all(len(s) > 5 for s in shares.values())
    # A leaving member's partitions move; nobody else's do.
    after = {m: assigned(m, {"a", "b"}) for m in ("a", "b")}
    assert shares["a"] <= after["a"] and shares["b"] <= after["b"]
    assert owner_of(3, []) is None


def test_the_cache_holds_an_object_deflated_and_gives_it_back_whole() -> None:
    from services.syncer.cache import pack, unpack
    pool = {"name": "c1--default-web-80", "uuid": "pool-1", "created_by": "ako-c1", "lb_algorithm": "LB_ALGORITHM_LEAST_CONNECTIONS",
            "servers": [{"ip": {"addr": f"10.0.0.{i}", "type": "V4"}, "port": 8080, "enabled": True, "ratio": 1}
                        for i in range(1, 9)],
            "markers": [{"key": "clustername", "values": ["c1"]}], "health_monitor_refs": []}
    raw = pack(pool)
    assert unpack(raw) == pool
    assert len(raw) < 0.6 * len(msgpack.packb(pool, use_bin_type=True))
    tc = TenantObjects("admin", objects={("pool", pool["name"]): pool})
    assert tc.get("pool", pool["name"]) == pool
