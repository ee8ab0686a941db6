"""TLS Secrets (type ``kubernetes.io/tls``) as albus carries them: the certificate in clear, the key sealed.

Written by the watcher (:func:`trim`), read by the translator
(:func:`read`); Gateway listeners use it now, Ingress TLS will. The watcher
holds the key in clear anyway, so it checks the pair before sealing: both
parse, the key is one the controller takes (RSA or EC) and matches the
certificate. What the translator needs to judge the rest (expiry, names)
travels as plain facts, so it never parses or decrypts anything.

The trimmed Secret (``KubeObject.obj``)::

    metadata: name, namespace, uid, resourceVersion, creationTimestamp (no labels or
              annotations: kubectl's last-applied annotation holds the whole Secret)
    type: kubernetes.io/tls
    tls:
      certificate: tls.crt as given (PEM, the chain too)   # public
      notAfter: the leaf's expiry (RFC 3339)
      dnsNames: the leaf's DNS names (subjectAltName, else its common name)
      fingerprint: sha256 of the certificates' DER and the key's PKCS#8 DER
      sealedKey: {key_id, box}     # tls.key sealed; absent when there is a problem
      problem: why the pair is unusable (absent when usable)

``fingerprint`` stands for the key in everything that compares: the
watcher's "did it change" test (:func:`stable_view` leaves the box out), the
tree checksum, and the syncer's comparison with the controller, which never
returns a key. A key sealed again (a new nonce) changes none of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from services.common.contracts import Sealed
from services.common.sealing import Keyring, SealError

TLS_TYPE = "kubernetes.io/tls"
FIELD_SELECTOR = f"type={TLS_TYPE}"  # the watcher lists only TLS Secrets
_METADATA_KEEP = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp", "deletionTimestamp")

Obj = dict[str, Any]


def _data(secret: Obj, key: str) -> bytes | None:
    """A data item: base64 in ``data`` (the API), or plain in ``stringData`` (a manifest)."""
    raw = (secret.get("data") or {}).get(key)
    if isinstance(raw, str):
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return None
    plain = (secret.get("stringData") or {}).get(key)
    return plain.encode() if isinstance(plain, str) else None


def _der(pub: Any) -> bytes:
    out: bytes = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return out


def _names(cert: x509.Certificate) -> list[str]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                    .get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def _check(crt: bytes | None, key_pem: bytes | None) -> tuple[list[x509.Certificate], Any, str]:
    """(certificates, private key, problem): never raises, and no message quotes key material."""
    if not crt:
        return [], None, "tls.crt is missing or not base64"
    try:
        certs = x509.load_pem_x509_certificates(crt)
    except ValueError:
        return [], None, "tls.crt holds no PEM certificate"
    if not key_pem:
        return certs, None, "tls.key is missing or not base64"
    try:
        # The key is never used here, only compared with the certificate and re-encoded for the
        # fingerprint: RSA's validation (primality checks, ~100 ms a 2048-bit key) is the controller's.
        key = serialization.load_pem_private_key(key_pem, password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return certs, None, "tls.key does not hold an unencrypted PEM key"
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return certs, None, f"tls.key is a {type(key).__name__.removeprefix('_')} key; the controller takes RSA and EC"
    if _der(key.public_key()) != _der(certs[0].public_key()):
        return certs, None, "tls.key does not match the (first) certificate in tls.crt"
    return certs, key, ""


def fingerprint(certs: list[x509.Certificate], key: Any) -> str:
    """Of the pair, independent of PEM layout: a re-encoded Secret with the same key and chain is unchanged."""
    h = hashlib.sha256(b"albus tls v1\0")
    for c in certs:
        der = c.public_bytes(serialization.Encoding.DER)
        h.update(len(der).to_bytes(4, "big") + der)
    h.update(key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption()))
    return h.hexdigest()


def trim(secret: Obj, keyring: Keyring) -> Obj:
    """A TLS Secret as the bus may carry it: checked, its key sealed, nothing else of its data."""
    meta = secret.get("metadata") or {}
    out: Obj = {"metadata": {k: meta[k] for k in _METADATA_KEEP if meta.get(k) is not None},
                "type": secret.get("type") or TLS_TYPE}
    crt, key_pem = _data(secret, "tls.crt"), _data(secret, "tls.key")
    certs, key, problem = _check(crt, key_pem)
    tls: Obj = {}
    if certs:
        leaf = certs[0]
        tls = {"certificate": (crt or b"").decode("ascii", errors="replace").strip() + "\n",
               "notAfter": leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
               "dnsNames": _names(leaf)}
    if not problem:
        tls["fingerprint"] = fingerprint(certs, key)
        try:
            tls["sealedKey"] = keyring.seal((key_pem or b"").strip() + b"\n").model_dump()
        except SealError as exc:
            problem = f"{exc}: albus cannot carry this key to the controller"
    if problem:
        tls["problem"] = problem
    out["tls"] = tls
    return out


def stable_view(trimmed: Obj) -> Obj:
    """``trimmed`` without what changes when the same key is sealed again (the box; its key id stays)."""
    tls = trimmed.get("tls")
    if not isinstance(tls, dict) or not isinstance(sealed := tls.get("sealedKey"), dict):
        return trimmed
    return {**trimmed, "tls": {**tls, "sealedKey": {"key_id": sealed.get("key_id")}}}


@dataclass(frozen=True)
class TlsCertificate:
    """A usable TLS Secret, as the translator sees it (nothing in it is secret)."""

    namespace: str
    name: str
    certificate: str
    fingerprint: str
    not_after: str
    dns_names: tuple[str, ...]
    sealed_key: Sealed

    def expired(self, now: datetime | None = None) -> bool:
        when = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self.not_after < when  # both RFC 3339 in UTC: they order as strings

    def covers(self, hostname: str) -> bool:
        """Does the certificate name ``hostname`` (a listener's, maybe ``*.`` itself)?"""
        host = hostname.lower().rstrip(".")
        for n in (x.lower().rstrip(".") for x in self.dns_names):
            if n == host or (n.startswith("*.") and "." in host and host.split(".", 1)[1] == n[2:]):
                return True
        return False


def read(secret: Obj | None) -> tuple[TlsCertificate | None, str]:
    """(the usable certificate, "") or (None, why not) for a trimmed Secret (None: it does not exist)."""
    if secret is None:
        return None, f"does not exist (albus sees only Secrets of type {TLS_TYPE})"
    tls = secret.get("tls") or {}
    if tls.get("problem"):
        return None, str(tls["problem"])
    meta = secret.get("metadata") or {}
    try:
        sealed = Sealed.model_validate(tls.get("sealedKey"))
        return TlsCertificate(
            namespace=str(meta.get("namespace") or ""), name=str(meta.get("name") or ""),
            certificate=str(tls["certificate"]), fingerprint=str(tls["fingerprint"]),
            not_after=str(tls["notAfter"]), dns_names=tuple(str(n) for n in tls.get("dnsNames") or ()),
            sealed_key=sealed), ""
    except (KeyError, ValidationError):
        return None, "the watcher published it without a certificate and sealed key (an older albus?)"
