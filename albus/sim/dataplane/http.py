"""L7 HTTP: one request per client connection, routed by the VS's HTTP policies.

Small on purpose: HTTP/1.x, `Content-Length` bodies (a chunked request body
gets 501), `Connection: close` on both sides. Enough for curl, requests and
the tests; not a product proxy.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from albus.sim.dataplane.balancer import Balancer
from albus.sim.dataplane.l4 import close, open_member
from albus.sim.dataplane.routes import http_decision, vh_child
from albus.sim.dataplane.stats import VsStats
from albus.sim.store import Record, Store

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "upgrade"})
REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 307: "Temporary Redirect", 400: "Bad Request",
           403: "Forbidden", 404: "Not Found", 501: "Not Implemented", 502: "Bad Gateway",
           503: "Service Unavailable"}


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)


def _parse_head(raw: bytes) -> Request | None:
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers = []
    for line in lines[1:]:
        if line:
            k, sep, v = line.partition(":")
            if not sep:
                return None
            headers.append((k.strip(), v.strip()))
    return Request(parts[0], parts[1], headers)


async def _answer(writer: asyncio.StreamWriter, status: int, extra: list[tuple[str, str]] | None = None) -> None:
    body = f"{status} {REASONS.get(status, '')}\n".encode()
    head = [f"HTTP/1.1 {status} {REASONS.get(status, '')}", "Content-Type: text/plain",
            f"Content-Length: {len(body)}", "Connection: close", "Server: albus-sim",
            *(f"{k}: {v}" for k, v in extra or [])]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


async def serve_http(store: Store, balancer: Balancer, vs: Record, stats: dict[str, VsStats],
                     reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, tls: bool,
                     sni_child: Record | None = None) -> None:
    """Serve one request on a client connection (already TLS-unwrapped when `tls`)."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        return
    req = _parse_head(raw[:-4])
    if req is None:
        await _answer(writer, 400)
        return
    host = req.header("host") or ""
    # the VS whose policies apply: the SNI child; else, on plain HTTP, a child by Host only under an
    # enhanced (EVH) parent: an SNI parent serves plain HTTP itself (its children are chosen by the TLS name)
    evh = vs.data.get("vh_type") == "VS_TYPE_VH_ENHANCED"
    owner = sni_child or (vh_child(store, vs, host.split(":")[0]) if not tls and evh else None) or vs
    st = stats.setdefault(owner.uuid, VsStats())
    st.requests += 1
    st.bytes_in += len(raw)
    path, _, query = req.target.partition("?")
    decision = http_decision(store, owner, host.split(":")[0], path, query,
                             {k.lower(): v for k, v in req.headers}, tls)
    if decision.status is not None:
        st.response(decision.status)
        await _answer(writer, decision.status, [("Location", decision.location)] if decision.location else None)
        return
    if req.header("transfer-encoding"):
        await _answer(writer, 501)
        return
    body = await reader.readexactly(int(req.header("content-length") or 0))
    st.bytes_in += len(body)
    member = balancer.pick(decision.target, st)
    if member is None:
        st.no_member += 1
        st.response(503)
        await _answer(writer, 503)
        return
    ms = st.member(member.key)
    ms.requests += 1
    ms.connections += 1
    ms.active += 1
    try:
        conn = await open_member(member)
        if conn is None:
            st.response(502)
            await _answer(writer, 502)
            return
        peer = writer.get_extra_info("peername")
        drop = HOP_BY_HOP | {r.lower() for r in decision.remove_headers}
        headers = [(k, v) for k, v in req.headers if k.lower() not in drop] + decision.add_headers
        headers += [("X-Forwarded-For", str(peer[0]) if isinstance(peer, tuple) else ""), ("Connection", "close")]
        head = f"{req.method} {req.target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        await _relay(head.encode("latin-1") + body, conn, writer, st)
    finally:
        ms.active -= 1


async def _relay(request: bytes, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 client: asyncio.StreamWriter, st: VsStats) -> None:
    """Send the request to the member and stream its response back, marked `Connection: close`."""
    up_r, up_w = conn
    try:
        up_w.write(request)
        await up_w.drain()
        status_head = await up_r.readuntil(b"\r\n\r\n")
        lines = status_head[:-4].decode("latin-1").split("\r\n")
        code = [*lines[0].split(" "), "502"][1]
        st.response(code)
        kept = [line for line in lines[1:] if line.split(":", 1)[0].strip().lower() not in HOP_BY_HOP]
        out = ("\r\n".join([lines[0], *kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1")
        client.write(out)
        st.bytes_out += len(out)
        while data := await up_r.read(65536):
            st.bytes_out += len(data)
            client.write(data)
            await client.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        pass
    finally:
        await close(up_w)
