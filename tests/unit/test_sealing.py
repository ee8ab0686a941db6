"""Sealing private keys for the bus, and TLS Secrets as the watcher publishes them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from services.common import tls_secrets
from services.common.config import ConfigError, parse_config
from services.common.contracts import KubeObject, Sealed, decode, encode
from services.common.sealing import Keyring, SealError, key_id, new_key, write_key_file
from services.watcher.known import known_from_stream, plan_relist
from services.watcher.trim import fingerprint
from tests.tls_certs import self_signed, tls_secret

SECRET = b"-----BEGIN PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n"


def test_round_trip_and_a_fresh_nonce_each_time() -> None:
    ring = Keyring.ephemeral("c1")
    a, b = ring.seal(SECRET), ring.seal(SECRET)
    assert a.box != b.box and a.key_id == b.key_id == ring.ids()[0]
    assert ring.open(a) == ring.open(b) == SECRET


def test_another_key_an_altered_box_or_another_cluster_never_opens() -> None:
    ring = Keyring.ephemeral("c1")
    box = ring.seal(SECRET)
    with pytest.raises(SealError, match="sealed under key"):
        Keyring.ephemeral("c1").open(box)
    # The same key id with another key behind it (a forged id): authentication fails.
    forged = Keyring(cluster="c1", keys=(os.urandom(32),))
    with pytest.raises(SealError, match="does not open"):
        forged.open(Sealed(key_id=forged.ids()[0], box=box.box))
    raw = bytearray(box.box.encode())
    raw[30] = ord("A") if raw[30] != ord("A") else ord("B")
    with pytest.raises(SealError, match="does not open"):
        ring.open(Sealed(key_id=box.key_id, box=raw.decode()))
    # A box copied onto another cluster's subjects does not open there, even under the same key.
    with pytest.raises(SealError, match="another cluster"):
        Keyring(cluster="c2", keys=ring.keys).open(box)
    with pytest.raises(SealError, match="no sealing key"):
        Keyring(cluster="c1").seal(SECRET)


def test_key_file_the_first_key_seals_every_key_opens_and_bad_files_are_config_errors(tmp_path: Path) -> None:
    old = write_key_file(tmp_path / "old.key")
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        write_key_file(old)
    sealed_before = Keyring.load(old, "c1").seal(SECRET)
    rolled = tmp_path / "rolled.key"
    rolled.write_text(f"# new first, old kept until nothing sealed under it is left\n{new_key()}\n{old.read_text()}")
    rolled.chmod(0o600)
    ring = Keyring.load(rolled, "c1")
    assert ring.open(sealed_before) == SECRET
    assert ring.seal(SECRET).key_id != sealed_before.key_id
    cfg = parse_config({"AKOSettings": {"clusterName": "c1"}, "albus": {"sealingKeyFile": str(rolled)}})
    assert Keyring.from_config(cfg).ids() == ring.ids()
    assert not Keyring.from_config(parse_config({})).can_seal

    with pytest.raises(ConfigError, match=r"missing\.key"):
        Keyring.load(tmp_path / "missing.key", "c1")
    bad = tmp_path / "bad.key"
    bad.write_text("this is not a key\n")
    with pytest.raises(ConfigError, match="line 1 is not a sealing key") as err:
        Keyring.load(bad, "c1")
    assert "this is not" not in str(err.value), "a malformed line (maybe a key with a typo) is never quoted"
    (tmp_path / "empty.key").write_text("# nothing\n")
    with pytest.raises(ConfigError, match="no sealing key"):
        Keyring.load(tmp_path / "empty.key", "c1")


def test_a_keyring_never_shows_its_keys() -> None:
    ring = Keyring.ephemeral("c1")
    assert ring.keys[0].hex() not in repr(ring) and str(ring.keys[0]) not in repr(ring)
    assert key_id(ring.keys[0]) == ring.ids()[0] and len(ring.ids()[0]) == 16


def test_a_tls_secret_is_published_checked_with_its_key_sealed_and_nothing_else_of_its_data() -> None:
    ring = Keyring.ephemeral("c1")
    pair = self_signed("www.shop.example", "shop.example")
    doc = tls_secret("cert", "shop", pair)
    doc["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(doc)}
    doc["metadata"]["labels"] = {"app": "shop"}
    out = tls_secrets.trim(doc, ring)
    assert set(out) == {"metadata", "type", "tls"} and set(out["metadata"]) == {"name", "namespace"}
    tls = out["tls"]
    assert set(tls) == {"certificate", "notAfter", "dnsNames", "fingerprint", "sealedKey"}
    assert tls["dnsNames"] == ["www.shop.example", "shop.example"] and tls["certificate"] == pair.cert_pem
    assert ring.open(Sealed.model_validate(tls["sealedKey"])).decode() == pair.key_pem
    raw = encode(KubeObject(cluster="c1", kind="Secret", namespace="shop", name="cert", obj=out))
    assert not [f for f in pair.key_forms() if f in raw]
    # The detector itself finds the key where it is: in the Secret as Kubernetes holds it, in its PEM.
    assert len([f for f in pair.key_forms() if f in json.dumps(doc).encode()]) >= 1
    assert len([f for f in pair.key_forms() if f in pair.key_pem.encode()]) >= 2
    cert, why = tls_secrets.read(out)
    assert why == "" and cert is not None and cert.covers("www.shop.example") and not cert.covers("x.example")
    assert not cert.expired()


def test_the_same_key_sealed_again_is_no_change_for_the_watcher() -> None:
    ring = Keyring.ephemeral("c1")
    doc = tls_secret("cert", "shop", self_signed("a.example"))
    first, second = tls_secrets.trim(doc, ring), tls_secrets.trim(doc, ring)
    assert first["tls"]["sealedKey"] != second["tls"]["sealedKey"]
    assert fingerprint(first) == fingerprint(second)
    # A restarted watcher reads the stream and relists: nothing to publish.
    on_bus = [type("D", (), {"subject": "k8s.c1.Secret.shop.cert", "data": encode(KubeObject(
        cluster="c1", kind="Secret", namespace="shop", name="cert", obj=first))})()]
    known = known_from_stream("c1", on_bus)
    assert plan_relist(known["Secret"], [second]).unchanged
    # A new sealing key (rolled in first) does publish them again, sealed under it.
    rolled = Keyring(cluster="c1", keys=(os.urandom(32), *ring.keys))
    assert not plan_relist(known["Secret"], [tls_secrets.trim(doc, rolled)]).unchanged


@pytest.mark.parametrize(("change", "problem"), [
    ("mismatch", "tls.key does not match"),
    ("encrypted", "does not hold an unencrypted PEM key"),
    ("garbage-cert", "holds no PEM certificate"),
    ("no-key", "tls.key is missing"),
    ("no-sealing-key", "no sealing key is configured"),
])
def test_a_bad_pair_says_why_and_carries_no_key(change: str, problem: str) -> None:
    from cryptography.hazmat.primitives import serialization

    pair = self_signed("a.example")
    ring = Keyring.ephemeral("c1")
    doc = tls_secret("cert", "shop", pair)
    if change == "mismatch":
        doc = tls_secret("cert", "shop", pair, key_pem=self_signed("a.example").key_pem)
    elif change == "encrypted":
        key = serialization.load_pem_private_key(pair.key_pem.encode(), None)
        doc = tls_secret("cert", "shop", pair, key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw")).decode())
    elif change == "garbage-cert":
        doc["data"]["tls.crt"] = "bm90IGEgY2VydA=="
    elif change == "no-key":
        del doc["data"]["tls.key"]
    elif change == "no-sealing-key":
        ring = Keyring(cluster="c1")
    out = tls_secrets.trim(doc, ring)
    assert problem in out["tls"]["problem"] and "sealedKey" not in out["tls"]
    assert not [f for f in pair.key_forms() if f in json.dumps(out).encode()]
    cert, why = tls_secrets.read(out)
    assert cert is None and problem in why


def test_an_ec_key_and_a_manifest_with_string_data() -> None:
    pair = self_signed("a.example", ec_key=True)
    doc = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
           "metadata": {"name": "c", "namespace": "x"},
           "stringData": {"tls.crt": pair.cert_pem, "tls.key": pair.key_pem}}
    out = tls_secrets.trim(doc, Keyring.ephemeral("c1"))
    assert "problem" not in out["tls"] and out["tls"]["sealedKey"]["key_id"]
    assert decode(encode(KubeObject(cluster="c1", kind="Secret", name="c", obj=out)), KubeObject).obj == out


def test_each_cluster_of_a_syncer_pool_gets_its_own_key_never_another_clusters() -> None:
    from services.syncer.main import cluster_configs

    cfg = parse_config({"AKOSettings": {"clusterName": "east"}, "albus": {
        "sealingKeyFile": "/keys/east", "syncer": {"clusters": [
            {"name": "east"}, {"name": "west", "sealingKeyFile": "/keys/west"}, {"name": "north"}]}}})
    got = {c.cluster: c.albus.sealingKeyFile for c in cluster_configs(cfg)}
    assert got == {"east": "/keys/east", "west": "/keys/west", "north": ""}
