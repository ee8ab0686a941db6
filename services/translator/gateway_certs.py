"""An HTTPS listener's ``tls.certificateRefs`` as sslkeyandcertificate objects (pure).

Each ref names a core Secret, in the Gateway's namespace or in another one
whose ReferenceGrant lets Gateways of the Gateway's namespace use it. The
watcher has already checked the pair and sealed the key
(:mod:`services.common.tls_secrets`); here the certificate's expiry and names
are judged, and a usable Secret becomes the Gateway's
``<cluster>--<gwNs>-<gw>-<secretNs>-<secret>``: the certificate write-only,
the key sealed, the pair's fingerprint in a marker (what the syncer compares,
since the controller never returns a key). The translator never sees a key.

A bad ref is the listener's ``ResolvedRefs=False`` (``InvalidCertificateRef``,
or ``RefNotPermitted`` for a missing grant). A Secret that goes bad — or
away — while the Gateway still names it never takes the certificate it had
off the controller: the object on the bus (the published tree) is kept, and
the listener says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.common import tls_secrets
from services.common.config import Config
from services.common.contracts import AviObject
from services.translator import gateway_listeners as gl
from services.translator import naming
from services.translator.gateway_routes import grant_allows
from services.translator.refs import markers, ref

CERT_TYPE = "SSL_CERTIFICATE_TYPE_VIRTUALSERVICE"
SSL_PROFILE = "System-Standard"
FINGERPRINT_MARKER = "CertificateFingerprint"

SecretLookup = Callable[[str, str], dict[str, Any] | None]  # (namespace, name) -> trimmed TLS Secret
Previous = Callable[[str], AviObject | None]  # sslkeyandcertificate name -> the one on the bus, if any


@dataclass(frozen=True)
class CertInputs:
    """What the certificates of a Gateway need from the graph and the bus."""

    secrets: SecretLookup
    previous: Previous = lambda _name: None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


NO_CERTS = CertInputs(lambda _ns, _n: None)


@dataclass(frozen=True)
class ListenerCerts:
    """The certificates a listener serves with, and what is wrong with its refs."""

    objects: tuple[AviObject, ...] = ()
    reason: str = ""  # the listener's ResolvedRefs reason when a ref is bad, "" when all resolve
    notes: tuple[str, ...] = field(default=())  # problems and warnings, for the listener's message

    @property
    def message(self) -> str:
        return "; ".join(self.notes)


def keycert(name: str, cert: tls_secrets.TlsCertificate, cfg: Config, tenant: str, **owner: str) -> AviObject:
    """An sslkeyandcertificate: the certificate write-only, the key sealed, the fingerprint a marker."""
    body = {
        "name": name,
        "tenant_ref": ref("tenant", tenant),
        "created_by": naming.created_by(cfg.cluster),
        "type": CERT_TYPE,
        "markers": markers(cfg.cluster, **owner, **{FINGERPRINT_MARKER: cert.fingerprint}),
    }
    return AviObject(type="sslkeyandcertificate", name=name, body=body,
                     write_only={"certificate": {"certificate": cert.certificate}},
                     sealed={"key": cert.sealed_key})


def usable(secret: dict[str, Any] | None, now: datetime) -> tuple[tls_secrets.TlsCertificate | None, str]:
    """The Secret's certificate if it can serve now, else None and why (the watcher checked the pair)."""
    cert, why = tls_secrets.read(secret)
    if cert is not None and cert.expired(now):
        return None, f"its certificate expired at {cert.not_after}"
    return cert, why


def kept(inputs: CertInputs, name: str, tenant: str) -> AviObject | None:
    """The certificate object of the tree on the bus, to keep while its Secret is bad."""
    prev = inputs.previous(name)
    return prev if prev is not None and prev.body.get("tenant_ref") == ref("tenant", tenant) else None


def resolve(gw_ns: str, gw_name: str, li: gl.Listener, grants: list[dict[str, Any]], inputs: CertInputs,
            cfg: Config, tenant: str) -> ListenerCerts:
    if not li.certificate_refs:
        return ListenerCerts(reason="InvalidCertificateRef", notes=("an HTTPS listener needs tls.certificateRefs",))
    objects: dict[str, AviObject] = {}
    reason = ""
    notes: list[str] = []
    for r in li.certificate_refs:
        kind, group = str(r.get("kind") or "Secret"), str(r.get("group") or "")
        ns, name = str(r.get("namespace") or gw_ns), str(r.get("name") or "")
        what = f"certificateRef Secret {ns}/{name}"
        if (group, kind) != ("", "Secret"):
            reason = reason or "InvalidCertificateRef"
            notes.append(f"certificateRef {group}/{kind} {name}: only core Secrets")
            continue
        if ns != gw_ns and not grant_allows(grants, "Gateway", gw_ns, "Secret", ns, name):
            reason = reason or "RefNotPermitted"
            notes.append(f"{what}: no ReferenceGrant in {ns} lets Gateways of {gw_ns} use it")
            continue
        obj_name = naming.gateway_cert(cfg.cluster, gw_ns, gw_name, ns, name)
        cert, why = usable(inputs.secrets(ns, name), inputs.now())
        if cert is None:
            reason = reason or "InvalidCertificateRef"
            had = kept(inputs, obj_name, tenant)
            if had is not None:
                objects[obj_name] = had
                why += "; the listener keeps serving the certificate it had"
            notes.append(f"{what}: {why}")
            continue
        objects[obj_name] = keycert(obj_name, cert, cfg, tenant, GatewayName=gw_name, GatewayNamespace=gw_ns)
        if li.hostname and not cert.covers(li.hostname):
            notes.append(f"{what}: the certificate does not name {li.hostname} (its names: "
                         f"{', '.join(cert.dns_names) or 'none'}); clients will see a name mismatch")
    return ListenerCerts(tuple(objects.values()), reason, tuple(notes))
