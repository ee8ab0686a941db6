"""Certificates for the tests: self-signed pairs made with ``cryptography``, as TLS Secret manifests.

Also the forms a private key may take on its way (PEM lines, DER, base64 of
the PEM as in a Secret's ``data``, hex), for asserting that none of them
shows up where it must not.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pair:
    cert_pem: str
    key_pem: str

    def key_forms(self) -> list[bytes]:
        """Recognisable pieces of the private key in every encoding it could leak in."""
        key = serialization.load_pem_private_key(self.key_pem.encode(), None)
        der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        body = [ln for ln in self.key_pem.splitlines() if ln and not ln.startswith("-----")]
        b64_pem = base64.b64encode(self.key_pem.encode())
        return [*(ln.encode() for ln in body[1:-1]), der[40:80], b64_pem[40:120], der.hex()[80:160].encode()]


def self_signed(*names: str, days: int = 365, ec_key: bool = False, expired: bool = False) -> Pair:
    key: Any = ec.generate_private_key(ec.SECP256R1()) if ec_key else rsa.generate_private_key(65537, 2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "albus-test")])
    now = dt.datetime.now(dt.UTC)
    start, end = (now - dt.timedelta(days=30), now - dt.timedelta(days=1)) if expired else (
        now - dt.timedelta(minutes=5), now + dt.timedelta(days=days))
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return Pair(cert.public_bytes(serialization.Encoding.PEM).decode(),
                key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()).decode())


def tls_secret(name: str, namespace: str, pair: Pair, *, key_pem: str | None = None) -> dict[str, Any]:
    """A ``kubernetes.io/tls`` Secret manifest (``key_pem`` replaces the pair's key: a mismatched Secret)."""
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"tls.crt": b64(pair.cert_pem), "tls.key": b64(key_pem or pair.key_pem)}}
