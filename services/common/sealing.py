"""Sealing secrets for the bus: AES-256-GCM under a per-cluster key that only the watcher and the syncers hold.

A TLS Secret's private key has to travel from the watcher, which reads it
from Kubernetes, to the syncer, which gives it to the controller. NATS keeps
what crosses it (streams are the state), and the translator, health, a
replayed stream or a backup of the broker's disk must learn nothing from it.
So the watcher seals the key before publishing and only the syncer opens it
(docs/tls-secrets.md).

* Authenticated encryption (AES-256-GCM, 96-bit random nonce): a box that was
  altered, or sealed under another key, fails to open; it never opens to
  garbage.
* The additional data binds a box to its cluster: a box copied onto another
  cluster's subjects does not open there even if two clusters shared a key.
* The key file holds one key per line (urlsafe base64 of 32 random bytes;
  ``#`` comments). The first key seals; every key opens, so a new key can be
  put first while boxes sealed under the old one are still on the bus.
* Nothing here logs, formats or ``repr``s a key or an opened value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.common.config import Config, ConfigError
from services.common.contracts import Sealed

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
_AAD = "albus-sealed/v1/"


class SealError(Exception):
    """A box that cannot be sealed or opened here (no key, another key, altered). The message holds no secret."""


def key_id(key: bytes) -> str:
    """A name for a key that reveals nothing of it: which key sealed a box, in messages and the box itself."""
    return hashlib.sha256(b"albus sealing key id\0" + key).hexdigest()[:16]


def new_key() -> str:
    """A fresh key, as a key file line."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def write_key_file(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (mode 0600, never overwriting) holding one new key."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(new_key() + "\n")
    return p


def _parse_keys(text: str, where: str) -> tuple[bytes, ...]:
    keys: list[bytes] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            raw = base64.urlsafe_b64decode(line.encode())
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != KEY_BYTES:
            # The line itself is never quoted: it may be a key with a typo.
            raise ConfigError(f"{where}: line {n} is not a sealing key (urlsafe base64 of {KEY_BYTES} bytes)")
        keys.append(raw)
    if not keys:
        raise ConfigError(f"{where}: no sealing key in the file")
    return tuple(keys)


@dataclass(frozen=True)
class Keyring:
    """One cluster's sealing keys (maybe none: then nothing can be sealed or opened)."""

    cluster: str
    keys: tuple[bytes, ...] = field(default=(), repr=False)
    source: str = ""  # where the keys came from, for messages

    @classmethod
    def load(cls, path: str | os.PathLike[str], cluster: str) -> Keyring:
        """The keys in ``path``; a file that is missing, unreadable or malformed is a configuration error."""
        where = f"sealing key file {path}"
        try:
            text = Path(path).read_text()
            mode = Path(path).stat().st_mode
        except OSError as exc:
            raise ConfigError(f"{where}: {exc.strerror or exc}") from None
        if mode & stat.S_IRWXO:
            # Not refused: a Kubernetes Secret volume is 0644 unless its defaultMode says otherwise.
            log.warning("%s is readable by others (mode %o); 0400 or 0600 is enough", where, stat.S_IMODE(mode))
        return cls(cluster=cluster, keys=_parse_keys(text, where), source=str(path))

    @classmethod
    def from_config(cls, cfg: Config) -> Keyring:
        """The keyring ``albus.sealingKeyFile`` names for ``cfg``'s cluster; empty when none is configured."""
        path = cfg.albus.sealingKeyFile
        return cls.load(path, cfg.cluster) if path else cls(cluster=cfg.cluster)

    @classmethod
    def ephemeral(cls, cluster: str) -> Keyring:
        """A throwaway key nobody else holds (``albus translate``: boxes that are shown redacted anyway)."""
        return cls(cluster=cluster, keys=(os.urandom(KEY_BYTES),), source="a throwaway key")

    @property
    def can_seal(self) -> bool:
        return bool(self.keys)

    def ids(self) -> list[str]:
        return [key_id(k) for k in self.keys]

    def _aad(self) -> bytes:
        return f"{_AAD}{self.cluster}".encode()

    def seal(self, plaintext: bytes) -> Sealed:
        if not self.keys:
            raise SealError("no sealing key is configured (albus.sealingKeyFile)")
        nonce = os.urandom(NONCE_BYTES)
        box = nonce + AESGCM(self.keys[0]).encrypt(nonce, plaintext, self._aad())
        return Sealed(key_id=key_id(self.keys[0]), box=base64.urlsafe_b64encode(box).decode())

    def open(self, sealed: Sealed) -> bytes:
        key = next((k for k in self.keys if key_id(k) == sealed.key_id), None)
        if key is None:
            held = ", ".join(self.ids()) or "none"
            raise SealError(f"sealed under key {sealed.key_id}; the sealing keys of cluster {self.cluster} "
                            f"here are: {held} (albus.sealingKeyFile)")
        try:
            box = base64.urlsafe_b64decode(sealed.box.encode())
            return AESGCM(key).decrypt(box[:NONCE_BYTES], box[NONCE_BYTES:], self._aad())
        except (InvalidTag, binascii.Error, ValueError):
            raise SealError(f"the box sealed under key {sealed.key_id} does not open for cluster {self.cluster} "
                            "(altered, or sealed for another cluster)") from None
