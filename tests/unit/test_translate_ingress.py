"""Ingress translation: classes, sharding, merging, conflicts, TLS and SNI children, redirect, dedicated mode."""

from __future__ import annotations

import json
from typing import Any

from services.common.config import parse_config
from services.common.contracts import ObjRef, Problem, VsTree
from services.translator.engine import Engine
from services.translator.ingress_shards import fnv1a_32, place
from services.translator.offline import REDACTED, as_kube_object, translate_documents
from tests.tls_certs import self_signed, tls_secret


def cfg(shard: str = "MEDIUM") -> Any:
    return parse_config({
        "AKOSettings": {"clusterName": "c1"},
        "NetworkSettings": {"vipNetworkList": [{"networkName": "vip-net", "cidr": "127.1.0.0/24"}]},
        "L7Settings": {"shardVSSize": shard},
    })


CLASS = {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "avi-lb"},
         "spec": {"controller": "ako.vmware.com/avi-lb"}}


def mk(t: str, name: str) -> str:
    return f"/api/{t}/?name={name}"


def svc(name: str, ns: str = "web", port: int = 80, port_name: str = "http") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
            "spec": {"type": "ClusterIP", "ports": [{"name": port_name, "port": port, "targetPort": 8080}]}}


def path(p: str, service: str, port: int | str = 80, kind: str = "Prefix") -> dict[str, Any]:
    number = {"number": port} if isinstance(port, int) else {"name": port}
    return {"path": p, "pathType": kind, "backend": {"service": {"name": service, "port": number}}}


def ing(name: str, *rules: tuple[str, list[dict[str, Any]]], ns: str = "web", cls: str | None = "avi-lb",
        created: str = "2026-01-01T00:00:00Z", tls: list[dict[str, Any]] | None = None,
        default: str | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"rules": [{"host": h, "http": {"paths": ps}} for h, ps in rules]}
    if cls:
        spec["ingressClassName"] = cls
    if tls:
        spec["tls"] = tls
    if default:
        spec["defaultBackend"] = {"service": {"name": default, "port": {"number": 80}}}
    meta: dict[str, Any] = {"name": name, "namespace": ns, "creationTimestamp": created}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}


def run(docs: list[dict[str, Any]], shard: str = "MEDIUM") -> tuple[dict[str, VsTree], list[Problem]]:
    e = Engine(cfg(shard))
    for d in docs:
        ko = as_kube_object(d, "c1")
        assert ko is not None
        e.observe(ko)
    e.mark_all()
    ch = e.flush()
    return {t.vs_name: t for t in ch.trees if not t.deleted}, [p for r in ch.reports for p in r.problems]


def obj(tree: VsTree, t: str, name: str) -> dict[str, Any]:
    return next(o.body for o in tree.objects if (o.type, o.name) == (t, name))


def rules(tree: VsTree, name: str | None = None) -> list[dict[str, Any]]:
    return list(obj(tree, "httppolicyset", name or tree.vs_name)["http_request_policy"]["rules"])


def shard_of(host: str, n: int = 4) -> str:
    return f"c1--Shared-L7-{fnv1a_32(host) & (n - 1)}"


# -- placement ---------------------------------------------------------------------------------------------------

def test_fnv1a_matches_the_published_vectors() -> None:
    assert fnv1a_32("") == 0x811C9DC5
    assert fnv1a_32("a") == 0xE40C292C
    assert fnv1a_32("foobar") == 0xBF9CF968


def test_shard_sizes_and_names() -> None:
    assert place("c1", "", "LARGE", "a.example").vs_name.startswith("c1--Shared-L7-")  # type: ignore[union-attr]
    assert place("c1", "", "SMALL", "x.example").vs_name == "c1--Shared-L7-0"  # type: ignore[union-attr]
    assert place("c1", "gold", "MEDIUM", "x.example").vs_name == shard_of("x.example").replace(  # type: ignore[union-attr]
        "L7-", "L7-gold-")
    d = place("c1", "", "DEDICATED", "x.example")
    assert d is not None and d.dedicated and d.vs_name == "c1--x.example-L7-dedicated"
    assert place("c1", "", "HUGE", "x.example") is None


def test_hosts_spread_over_exactly_n_shards_and_adding_one_moves_none() -> None:
    hosts = [f"h{i}.example" for i in range(40)]
    docs = [CLASS, svc("a")] + [ing(f"i{i}", (h, [path("/", "a")])) for i, h in enumerate(hosts)]
    trees, problems = run(docs)
    assert not problems
    assert sorted(trees) == [f"c1--Shared-L7-{n}" for n in range(4)]
    where = {h: next(n for n, t in trees.items() if any(r["match"].get("host_hdr", {}).get("value") == [h]
                                                         for r in rules(t))) for h in hosts}
    assert all(where[h] == shard_of(h) for h in hosts)
    # one more host: every other host's rules are unchanged on their shard, and only its shard changes
    more, _ = run([*docs, ing("new", ("new.example", [path("/", "a")]))])
    changed = {n for n in trees if more[n].checksum != trees[n].checksum}
    assert changed == {shard_of("new.example")}


def test_placement_does_not_depend_on_arrival_order() -> None:
    docs = [CLASS, svc("a")] + [ing(f"i{i}", (f"h{i}.example", [path("/", "a")])) for i in range(12)]
    a, _ = run(docs)
    b, _ = run(list(reversed(docs)))
    assert {n: t.checksum for n, t in a.items()} == {n: t.checksum for n, t in b.items()}


# -- classes -----------------------------------------------------------------------------------------------------

def test_other_class_and_no_class_without_default_are_ignored() -> None:
    other = {**CLASS, "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}
    trees, problems = run([CLASS, other, svc("a"), ing("x", ("x.example", [path("/", "a")]), cls="nginx"),
                           ing("y", ("y.example", [path("/", "a")]), cls=None)])
    assert trees == {} and problems == []


def test_no_class_is_ours_when_our_class_is_the_default() -> None:
    default = {**CLASS, "metadata": {"name": "avi-lb", "annotations": {
        "ingressclass.kubernetes.io/is-default-class": "true"}}}
    trees, _ = run([default, svc("a"), ing("y", ("y.example", [path("/", "a")]), cls=None)])
    assert list(trees) == [shard_of("y.example")]


def test_class_parameters_choose_the_aviinfrasetting_and_its_shard_size() -> None:
    gold = {"apiVersion": "ako.vmware.com/v1beta1", "kind": "AviInfraSetting", "metadata": {"name": "gold"},
            "spec": {"seGroup": {"name": "se-gold"}, "l7Settings": {"shardSize": "SMALL"}},
            "status": {"status": "Accepted"}}
    cls = {**CLASS, "spec": {**CLASS["spec"], "parameters": {
        "apiGroup": "ako.vmware.com", "kind": "AviInfraSetting", "name": "gold"}}}
    trees, _ = run([cls, gold, svc("a"), ing("x", ("x.example", [path("/", "a")]))])
    assert list(trees) == ["c1--Shared-L7-gold-0"]
    vs = obj(trees["c1--Shared-L7-gold-0"], "virtualservice", "c1--Shared-L7-gold-0")
    assert vs["se_group_ref"] == mk("serviceenginegroup", "se-gold")


def test_unknown_aviinfrasetting_is_a_problem_on_that_ingress_only() -> None:
    cls = {**CLASS, "metadata": {"name": "bad"}, "spec": {**CLASS["spec"], "parameters": {
        "apiGroup": "ako.vmware.com", "kind": "AviInfraSetting", "name": "nope"}}}
    trees, problems = run([CLASS, cls, svc("a"), ing("x", ("x.example", [path("/", "a")]), cls="bad"),
                           ing("y", ("y.example", [path("/", "a")]))])
    assert list(trees) == [shard_of("y.example")]
    assert [(p.source.name, p.reason) for p in problems] == [("x", "AviInfraSettingNotFound")]


# -- routing -----------------------------------------------------------------------------------------------------

def test_paths_become_host_rules_most_specific_first_with_pools_per_backend() -> None:
    trees, problems = run([CLASS, svc("a"), svc("b"), ing("x", ("x.example", [
        path("/", "a"), path("/api", "b"), path("/exact", "b", kind="Exact"),
        path("/impl", "a", kind="ImplementationSpecific")]))])
    assert not problems
    t = trees[shard_of("x.example")]
    got = [(r["match"]["path"]["match_criteria"], r["match"]["path"]["match_str"][0],
            r["switching_action"].get("pool_ref")) for r in rules(t)[:-1]]
    pa, pb = "c1--x.example_-web-x-a-80", "c1--x.example_api-web-x-b-80"
    assert got == [("EQUALS", "/exact", mk("pool", "c1--x.example_exact-web-x-b-80")),
                   ("EQUALS", "/impl", mk("pool", "c1--x.example_impl-web-x-a-80")),
                   ("BEGINS_WITH", "/impl/", mk("pool", "c1--x.example_impl-web-x-a-80")),
                   ("EQUALS", "/api", mk("pool", pb)), ("BEGINS_WITH", "/api/", mk("pool", pb)),
                   ("BEGINS_WITH", "/", mk("pool", pa))]
    assert all(r["match"]["host_hdr"]["value"] == ["x.example"] for r in rules(t)[:-1])
    assert rules(t)[-1]["switching_action"]["status_code"] == "HTTP_LOCAL_RESPONSE_STATUS_CODE_404"
    vs = obj(t, "virtualservice", t.vs_name)
    assert vs["type"] == "VS_TYPE_VH_PARENT" and [s["port"] for s in vs["services"]] == [80, 443]
    assert vs["ssl_key_and_certificate_refs"] == [mk("sslkeyandcertificate", "System-Default-Cert")]
    assert obj(t, "pool", pa)["default_server_port"] == 8080


def test_named_service_port_resolves_through_the_service() -> None:
    trees, problems = run([CLASS, svc("a", port=8000, port_name="web"), ing("x", ("x.example", [
        path("/", "a", port="web")]))])
    assert not problems
    t = trees[shard_of("x.example")]
    assert obj(t, "pool", "c1--x.example_-web-x-a-8000")["default_server_port"] == 8080


def test_missing_service_and_port_are_problems_and_answer_501() -> None:
    trees, problems = run([CLASS, svc("a"), ing("x", ("x.example", [path("/gone", "nope"), path("/p", "a", 81),
                                                                    path("/", "a")]))])
    assert sorted(p.reason for p in problems) == ["ServiceNotFound", "ServicePortNotFound"]
    t = trees[shard_of("x.example")]
    local = [r["match"]["path"]["match_str"][0] for r in rules(t)
             if r["switching_action"].get("status_code") == "HTTP_LOCAL_RESPONSE_STATUS_CODE_501"]
    assert local == ["/gone", "/gone/", "/p", "/p/"]


def test_default_backend_serves_what_the_paths_do_not() -> None:
    trees, _ = run([CLASS, svc("a"), svc("d"), ing("x", ("x.example", [path("/a", "a")]), default="d")])
    t = trees[shard_of("x.example")]
    last = rules(t)[-2]
    assert last["match"]["path"] == {"match_criteria": "BEGINS_WITH", "match_str": ["/"]}
    assert last["switching_action"]["pool_ref"] == mk("pool", "c1--x.example-web-x-d-80")


def test_two_ingresses_on_one_host_merge_their_paths() -> None:
    trees, problems = run([CLASS, svc("a"), svc("b", ns="other"), ing("x", ("x.example", [path("/a", "a")])),
                           ing("y", ("x.example", [path("/b", "b")]), ns="other")])
    assert not problems
    t = trees[shard_of("x.example")]
    pools = {r["switching_action"]["pool_ref"] for r in rules(t)[:-1]}
    assert pools == {mk("pool", "c1--x.example_a-web-x-a-80"), mk("pool", "c1--x.example_b-other-y-b-80")}
    assert t.sources == (ObjRef(kind="Ingress", namespace="other", name="y"),
                         ObjRef(kind="Ingress", namespace="web", name="x"))


def test_a_path_claimed_twice_goes_to_the_older_ingress_whatever_the_order() -> None:
    old = ing("zz-old", ("x.example", [path("/a", "a")]), created="2026-01-01T00:00:00Z")
    new = ing("aa-new", ("x.example", [path("/a", "b"), path("/b", "b")]), created="2026-02-01T00:00:00Z")
    for docs in ([CLASS, svc("a"), svc("b"), old, new], [new, svc("b"), old, svc("a"), CLASS]):
        trees, problems = run(docs)
        assert [(p.source.name, p.reason) for p in problems] == [("aa-new", "DuplicateHostPath")]
        assert "zz-old" in problems[0].message
        t = trees[shard_of("x.example")]
        a_rules = [r for r in rules(t) if r["match"].get("path", {}).get("match_str") == ["/a"]]
        assert [r["switching_action"]["pool_ref"] for r in a_rules] == [mk("pool", "c1--x.example_a-web-zz-old-a-80")]
        assert any(r["match"]["path"]["match_str"] == ["/b"] for r in rules(t))  # the rest of the later one works


def test_problems_follow_changes_in_the_engine() -> None:
    """Adding an older claimant re-translates the one that loses (the conflict moves to it)."""
    e = Engine(cfg())
    for d in [CLASS, svc("a"), ing("b", ("x.example", [path("/a", "a")]), created="2026-02-01T00:00:00Z")]:
        e.observe(as_kube_object(d, "c1"))  # type: ignore[arg-type]
    e.flush()
    e.observe(as_kube_object(ing("a", ("x.example", [path("/a", "a")]), created="2026-01-01T00:00:00Z"),
                             "c1"))  # type: ignore[arg-type]
    ch = e.flush()
    assert {(r.source.name, tuple(p.reason for p in r.problems)) for r in ch.reports} == {
        ("b", ("DuplicateHostPath",))}
    e.observe(as_kube_object(ing("a", ("x.example", [path("/a", "a")]), created="2026-01-01T00:00:00Z"),
                             "c1").model_copy(update={"deleted": True, "obj": None}))  # type: ignore[union-attr]
    ch = e.flush()
    assert {(r.source.name, r.problems) for r in ch.reports} == {("b", ())}


def test_deleting_the_last_ingress_of_a_shard_deletes_its_tree_and_others_stay() -> None:
    e = Engine(cfg())
    docs = [CLASS, svc("a"), ing("x", ("x.example", [path("/", "a")])), ing("y", ("y.example", [path("/", "a")]))]
    for d in docs:
        e.observe(as_kube_object(d, "c1"))  # type: ignore[arg-type]
    first = e.flush()
    assert {t.vs_name for t in first.trees} == {shard_of("x.example"), shard_of("y.example")}
    assert shard_of("x.example") != shard_of("y.example")
    gone = as_kube_object(docs[2], "c1").model_copy(update={"deleted": True, "obj": None})  # type: ignore[union-attr]
    e.observe(gone)
    ch = e.flush()
    assert [(t.vs_name, t.deleted) for t in ch.trees] == [(shard_of("x.example"), True)]


# -- TLS ---------------------------------------------------------------------------------------------------------

PAIR = self_signed("s.example")


def tls_docs(*extra: dict[str, Any], annotations: dict[str, str] | None = None,
             secret: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [CLASS, svc("a"), secret or tls_secret("cert", "web", PAIR),
            ing("s", ("s.example", [path("/", "a")]), tls=[{"hosts": ["s.example"], "secretName": "cert"}],
                annotations=annotations), *extra]


def test_tls_host_is_an_sni_child_with_its_certificate_and_the_parent_redirects() -> None:
    trees, problems = run(tls_docs())
    assert not problems
    t = trees[shard_of("s.example")]
    child = obj(t, "virtualservice", "c1--s.example")
    assert child["type"] == "VS_TYPE_VH_CHILD" and child["vh_domain_name"] == ["s.example"]
    assert child["vh_parent_vs_ref"] == mk("virtualservice", t.vs_name)
    assert child["ssl_key_and_certificate_refs"] == [mk("sslkeyandcertificate", "c1--s.example")]
    assert "vsvip_ref" not in child and "services" not in child
    cert = next(o for o in t.objects if o.type == "sslkeyandcertificate")
    assert cert.name == "c1--s.example" and "key" in cert.sealed and "key" not in cert.body
    assert [r["switching_action"]["pool_ref"] for r in rules(t, "c1--s.example")[:-1]] == [
        mk("pool", "c1--s.example_-web-s-a-80")]
    parent = rules(t)
    assert parent[0]["redirect_action"] == {"protocol": "HTTPS", "port": 443, "keep_query": True,
                                            "status_code": "HTTP_REDIRECT_STATUS_CODE_302"}
    assert parent[0]["match"]["vs_port"]["ports"] == [80]
    assert len(parent) == 2  # the redirect, then 404: the host's paths are served on the child only
    # the parent before its children, each child's policy set before it (the syncer creates in this order)
    order = [(o.type, o.name) for o in t.objects]
    assert order.index(("virtualservice", t.vs_name)) < order.index(("httppolicyset", "c1--s.example")) \
        < order.index(("virtualservice", "c1--s.example"))


def test_redirect_can_be_switched_off() -> None:
    trees, _ = run(tls_docs(annotations={"albus.io/http-redirect": "false"}))
    t = trees[shard_of("s.example")]
    assert not any("redirect_action" in r for r in rules(t))
    assert rules(t)[0]["switching_action"]["pool_ref"] == mk("pool", "c1--s.example_-web-s-a-80")
    assert any(o.name == "c1--s.example" and o.type == "virtualservice" for o in t.objects)


def test_missing_secret_falls_back_to_plain_http_with_a_problem() -> None:
    docs = [d for d in tls_docs() if d.get("kind") != "Secret"]
    trees, problems = run(docs)
    assert [p.reason for p in problems] == ["InvalidTLSSecret"]
    assert "plain HTTP" in problems[0].message
    t = trees[shard_of("s.example")]
    assert not any(o.type == "sslkeyandcertificate" for o in t.objects)
    assert [o.name for o in t.objects if o.type == "virtualservice"] == [t.vs_name]
    assert rules(t)[0]["switching_action"]["pool_ref"] == mk("pool", "c1--s.example_-web-s-a-80")


def test_a_secret_gone_bad_keeps_the_certificate_it_had() -> None:
    e = Engine(cfg())
    for d in tls_docs():
        e.observe(as_kube_object(d, "c1"))  # type: ignore[arg-type]
    good = e.flush().trees[0]
    bad = tls_secret("cert", "web", PAIR, key_pem=self_signed("other").key_pem)
    e.observe(as_kube_object(bad, "c1"))  # type: ignore[arg-type]
    ch = e.flush()
    assert [p.reason for r in ch.reports for p in r.problems] == ["InvalidTLSSecret"]
    assert "keeps the certificate it had" in ch.reports[0].problems[0].message
    assert ch.trees == []  # nothing to publish: the tree on the bus is the same
    assert e.published[good.vs_name].checksum == good.checksum


def test_rotation_changes_only_the_certificate() -> None:
    trees, _ = run(tls_docs())
    rotated, _ = run(tls_docs(secret=tls_secret("cert", "web", self_signed("s.example"))))
    a, b = trees[shard_of("s.example")], rotated[shard_of("s.example")]
    diff = {(o.type, o.name) for o in a.objects} ^ {(o.type, o.name) for o in b.objects}
    assert not diff
    changed = {(o.type, o.name) for o, p in zip(a.objects, b.objects, strict=True) if o != p}
    assert changed == {("sslkeyandcertificate", "c1--s.example")}


def test_private_key_is_redacted_in_albus_translate() -> None:
    out, _ = translate_documents(tls_docs(), cfg())
    text = json.dumps(out)
    assert all(form.decode(errors="ignore") not in text for form in PAIR.key_forms())
    assert out["sslkeyandcertificate"][0]["key"] == REDACTED


# -- dedicated ---------------------------------------------------------------------------------------------------

def test_dedicated_mode_gives_each_host_its_own_vs_with_its_certificate() -> None:
    trees, _ = run(tls_docs(ing("p", ("p.example", [path("/", "a")]))), shard="DEDICATED")
    assert sorted(trees) == ["c1--p.example-L7-dedicated", "c1--s.example-L7-dedicated"]
    s = trees["c1--s.example-L7-dedicated"]
    vs = obj(s, "virtualservice", s.vs_name)
    assert "type" not in vs and vs["ssl_key_and_certificate_refs"] == [mk("sslkeyandcertificate", "c1--s.example")]
    assert [x["port"] for x in vs["services"]] == [80, 443]
    r = rules(s)
    assert "redirect_action" in r[0] and r[1]["switching_action"]["pool_ref"] == mk("pool", "c1--s.example_-web-s-a-80")
    p = trees["c1--p.example-L7-dedicated"]
    assert [x["port"] for x in obj(p, "virtualservice", p.vs_name)["services"]] == [80]


def test_an_aviinfrasetting_gone_bad_keeps_the_hosts_where_they_were() -> None:
    gold = {"apiVersion": "ako.vmware.com/v1beta1", "kind": "AviInfraSetting", "metadata": {"name": "gold"},
            "spec": {"l7Settings": {"shardSize": "SMALL"}}, "status": {"status": "Accepted"}}
    cls = {**CLASS, "spec": {**CLASS["spec"], "parameters": {
        "apiGroup": "ako.vmware.com", "kind": "AviInfraSetting", "name": "gold"}}}
    e = Engine(cfg())
    for d in [cls, gold, svc("a"), ing("x", ("x.example", [path("/", "a")])), ing("y", ("y.example", [path("/", "a")]))]:
        e.observe(as_kube_object(d, "c1"))  # type: ignore[arg-type]
    (tree,) = e.flush().trees
    assert tree.vs_name == "c1--Shared-L7-gold-0"
    # Rejected (say its SE group went away), then y changes: the shard is rebuilt, x and y still on it.
    e.observe(as_kube_object({**gold, "status": {"status": "Rejected", "error": "no SE group"}},
                             "c1"))  # type: ignore[arg-type]
    e.observe(as_kube_object(ing("y", ("y.example", [path("/", "a"), path("/b", "a")])), "c1"))  # type: ignore[arg-type]
    ch = e.flush()
    assert {p.reason for r in ch.reports for p in r.problems} == {"AviInfraSettingNotAccepted"}
    (again,) = [t for t in ch.trees if not t.deleted]
    assert again.vs_name == tree.vs_name and {"x.example", "y.example"} <= {
        h for r in rules(again) for h in r["match"].get("host_hdr", {}).get("value", [])}
