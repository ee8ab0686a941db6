"""An HTTPS Gateway's tree on the real simulator: the certificate and its sealed key, compared by fingerprint.

The trees come from the translator's own code (an Engine fed the Secret as
the watcher seals it); the simulator checks, as the controller does, that
the key it is sent parses and matches the certificate, and never returns it.
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
from tests.unit.test_translate_gateway_http import CLASS, backend, prefix, route, svc

C = "c1"
CFG = parse_config({"AKOSettings": {"clusterName": C},
                    "NetworkSettings": {"vipNetworkList": [{"networkName": "vip-net", "cidr": "127.0.100.0/24"}]}})
VS = f"{C}--shop-web"
CERT = f"{C}--shop-web-shop-cert"
GATEWAY = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
           "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"gatewayClassName": "avi-lb", "listeners": [
               {"name": "https", "port": 443, "protocol": "HTTPS", "tls": {"certificateRefs": [{"name": "cert"}]}}]}}


def secret_object(pair: Pair, ring: Keyring) -> KubeObject:
    """The Secret as the watcher publishes it: checked, its key sealed under ``ring``."""
    return KubeObject(cluster=C, kind="Secret", namespace="shop", name="cert",
                      obj=tls_secrets.trim(tls_secret("cert", "shop", pair), ring))


def tree_for(pair: Pair, ring: Keyring) -> VsTree:
    e = Engine(CFG)
    for doc in (CLASS, GATEWAY, svc("a"), route("r", {"matches": [prefix("/")], "backendRefs": [backend("a")]})):
        ko = as_kube_object(doc, C)
        assert ko is not None
        e.observe(ko)
    e.observe(secret_object(pair, ring))
    e.mark_all()
    (tree,) = e.flush().trees
    return tree


def applier(sim: SimServer, ring: Keyring, made: list[ControllerClient]) -> TreeApplier:
    a = make_applier(sim, C, made)
    a.keyring = ring
    return a


def certificate(admin: SimAdmin) -> dict[str, Any]:
    (obj,) = [o for o in admin.objects("sslkeyandcertificate") if o["name"] == CERT]
    return obj


async def test_new_tree_carries_the_opened_key_and_a_replay_or_a_reseal_writes_nothing(
    sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient]
) -> None:
    ring = Keyring.ephemeral(C)
    pair = self_signed("www.shop.example")
    tree = tree_for(pair, ring)
    out = await applier(sim, ring, client_factory).apply(tree)
    assert out.ok, out.error
    assert api_calls(sim_admin, writes_only=True) == [("POST", "macro")]
    cert = certificate(sim_admin)
    # The simulator refuses a key that does not parse or match: it got the right one, in clear.
    assert cert["data"]["certificate"]["subject"]["common_name"] == "www.shop.example"
    vs = next(o["data"] for o in sim_admin.objects("virtualservice") if o["name"] == VS)
    assert [cert["uuid"] in r for r in vs["ssl_key_and_certificate_refs"]] == [True]
    assert vs["services"][0]["enable_ssl"] is True

    # A new process (empty cache): the controller shows no key, the fingerprint marker matches.
    sim_admin.reset_log()
    again = await applier(sim, ring, client_factory).apply(tree)
    assert again.ok and again.writes == 0, api_calls(sim_admin, writes_only=True)

    # The same key sealed again (a watcher restart, a label edit): a new box, the same tree.
    resealed = tree_for(pair, ring)
    boxes = [o.sealed["key"].box for t in (tree, resealed) for o in t.objects if o.sealed]
    assert len(boxes) == 2 and boxes[0] != boxes[1]
    assert resealed.checksum == tree.checksum
    assert (await applier(sim, ring, client_factory).apply(resealed)).writes == 0
    assert api_calls(sim_admin, writes_only=True) == []


async def test_a_rotated_secret_updates_the_certificate_in_place(
    sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient]
) -> None:
    ring = Keyring.ephemeral(C)
    a = applier(sim, ring, client_factory)
    assert (await a.apply(tree_for(self_signed("www.shop.example"), ring))).ok
    before = certificate(sim_admin)
    sim_admin.reset_log()

    rotated = tree_for(self_signed("www.shop.example", "shop.example"), ring)
    out = await a.apply(rotated)
    assert out.ok, out.error
    # One PUT of the certificate, same object; the VS refers to it by name and is not touched.
    assert api_calls(sim_admin, writes_only=True) == [("PUT", "sslkeyandcertificate")]
    after = certificate(sim_admin)
    assert after["uuid"] == before["uuid"]
    assert after["data"]["certificate"]["serial_number"] != before["data"]["certificate"]["serial_number"]
    assert "shop.example" in after["data"]["certificate"]["subjectAltName"]

    sim_admin.reset_log()
    assert (await applier(sim, ring, client_factory).apply(rotated)).writes == 0
    assert api_calls(sim_admin, writes_only=True) == []


async def test_a_syncer_without_the_sealing_key_writes_nothing_and_says_why(
    sim: SimServer, sim_admin: SimAdmin, client_factory: list[ControllerClient]
) -> None:
    ring, other = Keyring.ephemeral(C), Keyring.ephemeral(C)
    pair = self_signed("www.shop.example")
    out = await applier(sim, other, client_factory).apply(tree_for(pair, ring))
    assert not out.ok and "cannot open its sealed key" in (out.error or "")
    assert ring.ids()[0] in (out.error or "") and api_calls(sim_admin, writes_only=True) == []

    # Applied with the right key, then a rotation reaches a syncer with the wrong one: the
    # working certificate stays as it is.
    assert (await applier(sim, ring, client_factory).apply(tree_for(pair, ring))).ok
    before = certificate(sim_admin)
    sim_admin.reset_log()
    failed = await applier(sim, other, client_factory).apply(tree_for(self_signed("www.shop.example"), ring))
    assert not failed.ok and api_calls(sim_admin, writes_only=True) == []
    assert certificate(sim_admin)["data"]["certificate"] == before["data"]["certificate"]
