"""An Ingress shard's tree on the real simulator: a VH parent with an SNI child, created, rotated, deleted.

The trees come from the translator's own code (an Engine fed the Ingress and
the Secret as the watcher seals it). A child refers to its parent, never the
other way, so the syncer must create the parent first and delete it last,
also from a fresh process that knows only what the controller holds.
"""

from __future__ import annotations

from typing import Any

from syncer_helpers import api_calls, make_applier

from albus.sim.server import SimServer
from albus.sim.testing import SimAdmin
from services.common import tls_secrets
from services.common.config import parse_config
from services.common.contracts import KubeObject, VsTree
from services.common.sealing import Keyring
from services.syncer.apply import TreeApplier
from services.syncer.avi_client import ControllerClient
from services.translator.engine import Engine
from services.translator.offline import as_kube_object
from tests.tls_certs import Pair, self_signed, tls_secret
from tests.unit.test_translate_ingress import CLASS, ing, path, svc

C = "c1"
CFG = parse_config({"AKOSettings": {"clusterName": C}, "L7Settings": {"shardVSSize": "SMALL"},
                    "NetworkSettings": {"vipNetworkList": [{"networkName": "vip-net", "cidr": "127.0.100.0/24"}]}})
PARENT, CHILD = f"{C}--Shared-L7-0", f"{C}--s.example"


def tree_for(pair: Pair, ring: Keyring, *, tls: bool = True) -> VsTree:
    e = Engine(CFG)
    docs = [CLASS, svc("a"), ing("p", ("p.example", [path("/", "a")])),
            ing("s", ("s.example", [path("/", "a")]),
                tls=[{"hosts": ["s.example"], "secretName": "cert"}] if tls else None)]
    for doc in docs:
        ko = as_kube_object(doc, C)
        assert ko is not None
        e.observe(ko)
    e.observe(KubeObject(cluster=C, kind="Secret", namespace="web", name="cert",
                         obj=tls_secrets.trim(tls_secret("cert", "web", pair), ring)))
    e.mark_all()
    (tree,) = e.flush().trees
    return tree


def applier(sim: SimServer, ring: Keyring, made: list[ControllerClient]) -> TreeApplier:
    a = make_applier(sim, C, made)
    a.keyring = ring
    return a


def vses(admin: SimAdmin) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in admin.objects("virtualservice") if o["name"].startswith(f"{C}--")}


async def test_parent_and_sni_child_are_created_rotated_and_deleted_child_first(
    sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient]
) -> None:
    ring = Keyring.ephemeral(C)
    pair = self_signed("s.example")
    tree = tree_for(pair, ring)
    out = await applier(sim, ring, client_factory).apply(tree)
    assert out.ok, out.error
    found = vses(sim_admin)
    assert set(found) == {PARENT, CHILD}
    assert found[PARENT]["data"]["type"] == "VS_TYPE_VH_PARENT"
    child = found[CHILD]["data"]
    assert child["type"] == "VS_TYPE_VH_CHILD" and child["vh_domain_name"] == ["s.example"]
    assert found[PARENT]["uuid"] in child["vh_parent_vs_ref"]
    assert out.vips  # the parent's VIP

    # A new process, nothing changed: nothing written.
    sim_admin.reset_log()
    assert (await applier(sim, ring, client_factory).apply(tree)).writes == 0

    # Rotation: one PUT of the certificate, in place.
    rotated = tree_for(self_signed("s.example"), ring)
    sim_admin.reset_log()
    assert (await applier(sim, ring, client_factory).apply(rotated)).ok
    assert api_calls(sim_admin, writes_only=True) == [("PUT", "sslkeyandcertificate")]

    # The host loses its TLS (a fresh process): the child, its policy set and certificate go; the parent stays.
    sim_admin.reset_log()
    plain = await applier(sim, ring, client_factory).apply(tree_for(pair, ring, tls=False))
    assert plain.ok, plain.error
    assert set(vses(sim_admin)) == {PARENT}
    deletes = [t for m, t in api_calls(sim_admin, writes_only=True) if m == "DELETE"]
    assert deletes[0] == "virtualservice" and "sslkeyandcertificate" in deletes

    # Back with TLS, then the whole tree deleted by a fresh process: the child goes before the parent.
    assert (await applier(sim, ring, client_factory).apply(tree)).ok
    sim_admin.reset_log()
    gone = await applier(sim, ring, client_factory).apply(
        VsTree(cluster=C, tenant=tree.tenant, vs_name=PARENT, deleted=True, sources=tree.sources).with_checksum())
    assert gone.ok, gone.error
    assert vses(sim_admin) == {}
    assert [o["name"] for t in ("pool", "httppolicyset", "sslkeyandcertificate", "vsvip")
            for o in sim_admin.objects(t) if o["name"].startswith(f"{C}--")] == []
