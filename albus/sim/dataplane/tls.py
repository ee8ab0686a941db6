"""TLS: server contexts from the VS's certificate objects, SNI dispatch to VH children, SNI peeking.

Termination: the listener accepts plain TCP and upgrades with the VS's
certificate; a VH parent's `sni_callback` swaps in the child's context for a
name one of its children serves. Passthrough: the ClientHello is peeked (not
decrypted) for its server name and the bytes are forwarded unchanged.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import struct
import tempfile
from collections.abc import Callable

from albus.sim.store import Record

HELLO_LIMIT = 16384 + 5  # one TLS record


class Contexts:
    """Server contexts per certificate object, rebuilt when the object changes.

    A VH parent gets its own context (`owner` = its uuid): its SNI callback must not leak to other users
    of the same certificate.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[str, ssl.SSLContext]] = {}

    def for_cert(self, cert: Record, owner: str = "") -> ssl.SSLContext:
        version = str(cert.data.get("_last_modified", ""))
        hit = self._cache.get((owner, cert.uuid))
        if hit is not None and hit[0] == version:
            return hit[1]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        pem = str((cert.data.get("certificate") or {}).get("certificate", ""))
        key = str(cert.data.get("key", ""))
        # load_cert_chain reads files only; the PEMs live there for the duration of the call
        fd, path = tempfile.mkstemp(prefix="albus-sim-dp-", suffix=".pem")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(pem.rstrip() + "\n" + key)
            ctx.load_cert_chain(path)
        finally:
            os.unlink(path)
        self._cache[(owner, cert.uuid)] = (version, ctx)
        return ctx


def with_sni(base: ssl.SSLContext, pick: Callable[[str], ssl.SSLContext | None], chosen: dict[int, str]) -> None:
    """On `base`, switch to `pick(name)`'s context per SNI name; remember the name by SSL object id."""
    def callback(obj: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: ssl.SSLContext) -> None:
        # called on every handshake, with None when the client sends no name: a stale entry of a failed
        # handshake whose object id was reused is overwritten here
        chosen[id(obj)] = name or ""
        if name:
            ctx = pick(name)
            if ctx is not None:
                obj.context = ctx
    base.sni_callback = callback


def server_name(hello: bytes) -> str | None:
    """The SNI host name of a TLS ClientHello record, or None."""
    try:
        if hello[0] != 0x16 or hello[5] != 0x01:  # handshake record, ClientHello
            return None
        p = 5 + 4 + 2 + 32  # record header, handshake header, version, random
        p += 1 + hello[p]  # session id
        p += 2 + struct.unpack_from("!H", hello, p)[0]  # cipher suites
        p += 1 + hello[p]  # compression methods
        end = p + 2 + struct.unpack_from("!H", hello, p)[0]
        p += 2
        while p + 4 <= end:
            etype, elen = struct.unpack_from("!HH", hello, p)
            p += 4
            if etype == 0:  # server_name: list length, type 0 = host_name, length, name
                nlen = struct.unpack_from("!H", hello, p + 3)[0]
                return hello[p + 5:p + 5 + nlen].decode("ascii", "replace")
            p += elen
    except (IndexError, struct.error):
        return None
    return None


async def peek_hello(reader: asyncio.StreamReader) -> bytes:
    """Read one whole TLS record (the ClientHello) without interpreting anything else."""
    head = await reader.readexactly(5)
    length = struct.unpack_from("!H", head, 3)[0]
    return head + await reader.readexactly(min(length, HELLO_LIMIT - 5))
