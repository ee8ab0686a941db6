"""Certificates: parsing uploaded PEM into the fields the controller shows, and the self-signed server
certificate for HTTPS mode."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from albus.sim.errors import ApiError

Json = Any


def _name(n: x509.Name) -> dict[str, str]:
    out: dict[str, str] = {}
    for attr, key in ((NameOID.COMMON_NAME, "common_name"), (NameOID.ORGANIZATION_NAME, "organization"),
                      (NameOID.ORGANIZATIONAL_UNIT_NAME, "organization_unit"), (NameOID.COUNTRY_NAME, "country"),
                      (NameOID.LOCALITY_NAME, "locality"), (NameOID.STATE_OR_PROVINCE_NAME, "state")):
        vals = n.get_attributes_for_oid(attr)
        if vals:
            out[key] = str(vals[0].value)
    out["distinguished_name"] = n.rfc4514_string()
    return out


def fill_certificate(data: dict[str, Json]) -> None:
    """Parse `certificate.certificate` (PEM) and the key; reject what the controller would reject."""
    cert_obj = data.get("certificate") or {}
    pem = cert_obj.get("certificate", "")
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise ApiError(400, "Invalid certificate: cannot parse PEM data") from None
    key_pem = data.get("key")
    key_params: dict[str, Json] = {}
    if key_pem:
        passphrase = data.get("key_passphrase") or None
        try:
            key = serialization.load_pem_private_key(key_pem.encode(), passphrase.encode() if passphrase else None)
        except (ValueError, TypeError):
            raise ApiError(400, "Invalid private key: cannot parse PEM data or wrong passphrase") from None
        if key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
                != cert.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo):
            raise ApiError(400, "Private key does not match the certificate")
        if isinstance(key, rsa.RSAPrivateKey):
            key_params = {"algorithm": "SSL_KEY_ALGORITHM_RSA",
                          "rsa_params": {"key_size": f"SSL_KEY_{key.key_size}_BITS", "exponent": 65537}}
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            key_params = {"algorithm": "SSL_KEY_ALGORITHM_EC", "ec_params": {"curve": "SSL_KEY_EC_CURVE_SECP256R1"}}
    now = dt.datetime.now(dt.UTC)
    not_after = cert.not_valid_after_utc
    days = (not_after - now).days
    parsed = {
        "certificate": pem,
        "version": str(cert.version.value),
        "serial_number": str(cert.serial_number),
        "self_signed": cert.issuer == cert.subject,
        "issuer": _name(cert.issuer),
        "subject": _name(cert.subject),
        "signature_algorithm": cert.signature_hash_algorithm.name if cert.signature_hash_algorithm else "",
        "not_before": cert.not_valid_before_utc.strftime("%Y-%m-%d %H:%M:%S"),
        "not_after": not_after.strftime("%Y-%m-%d %H:%M:%S"),
        "fingerprint": "SHA1 Fingerprint=" + ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA1())),
        "expiry_status": "SSL_CERTIFICATE_GOOD" if days > 30 else (
            "SSL_CERTIFICATE_EXPIRY_WARNING" if days >= 0 else "SSL_CERTIFICATE_EXPIRED"),
        "days_until_expire": days,
    }
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        parsed["subjectAltName"] = ", ".join(str(n.value) for n in sans)
    except x509.ExtensionNotFound:
        pass
    data["certificate"] = parsed
    if key_params:
        data["key_params"] = key_params


def self_signed(hostnames: list[str], directory: Path) -> tuple[Path, Path]:
    """A throwaway RSA certificate for the HTTPS listener; written as PEM files in `directory`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0] if hostnames else "albus-sim")])
    alt: list[x509.GeneralName] = []
    for h in hostnames:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            alt.append(x509.DNSName(h))
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            # marked as a CA so clients can trust the file itself as the anchor (verify=<cert path>)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    cpath, kpath = directory / "sim-cert.pem", directory / "sim-key.pem"
    cpath.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kpath.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.NoEncryption()))
    return cpath, kpath
