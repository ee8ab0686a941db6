"""The data plane: listeners on every enabled VS's VIP ports, reconciled from the store.

Level-based: a store hook marks the view dirty and one task reconciles the
listeners with what the objects ask for (also every second, to retry a bind
that failed and expire idle UDP flows). Listeners only follow (VIP, port,
protocol); everything else — pools, policies, certificates, TLS on a port —
is read from the store per connection, so a change applies to the next
connection and an unchanged VS's established connections are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import sys
from typing import Any

from albus.sim.dataplane import tls
from albus.sim.dataplane.balancer import Balancer
from albus.sim.dataplane.http import serve_http
from albus.sim.dataplane.l4 import UdpListener, close, forward_tcp
from albus.sim.dataplane.routes import (
    Endpoint,
    app_type,
    certificate,
    endpoints,
    http_decision,
    l4_target,
    serves_traffic,
    vh_child,
)
from albus.sim.dataplane.stats import VsStats
from albus.sim.health import Health
from albus.sim.store import ADMIN_TENANT, Record, Store
from albus.sim.tasks import cancel

Json = Any
RECONCILE_EVERY = 1.0
WATCHED = frozenset({"virtualservice", "vsvip", "networkprofile"})  # what decides the listener set


class DataPlane:
    def __init__(self, store: Store, health: Health) -> None:
        self.store = store
        self.balancer = Balancer(store, health)
        self.contexts = tls.Contexts()
        self.stats: dict[str, VsStats] = {}
        self.routes: dict[Endpoint, tuple[str, bool]] = {}
        self.tcp: dict[Endpoint, asyncio.Server] = {}
        self.udp: dict[Endpoint, UdpListener] = {}
        self.failed: dict[Endpoint, str] = {}
        self._clients: set[asyncio.StreamWriter] = set()
        self._sni: dict[int, str] = {}
        self._dirty: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        store.hooks.append(self._hook)

    # ---- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        self._dirty = asyncio.Event()
        await self.reconcile()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        for ep in list(self.tcp) + list(self.udp):
            self._unbind(ep)
        for w in list(self._clients):
            w.transport.abort()

    def _hook(self, event: str, rec: Record) -> None:
        if rec.type in WATCHED and self._dirty is not None:
            self._dirty.set()

    async def _run(self) -> None:
        assert self._dirty is not None
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), RECONCILE_EVERY)
            self._dirty.clear()
            try:
                await self.reconcile()
            except Exception as e:  # a bug here must not end the data plane
                print(f"albus-sim dataplane: reconcile failed: {type(e).__name__}: {e}", file=sys.stderr)
            for u in self.udp.values():
                u.expire()

    async def reconcile(self) -> None:
        want = endpoints(self.store)
        self.routes = want
        for ep in [e for e in list(self.tcp) + list(self.udp) if e not in want]:
            self._unbind(ep)
        for ep in [e for e in self.failed if e not in want]:
            del self.failed[ep]
        for uuid in [u for u in self.stats if u not in self.store.by_uuid]:
            del self.stats[uuid]  # the VS is gone: so are its counters
        for ep in want:
            if ep not in self.tcp and ep not in self.udp:
                await self._bind(ep)

    async def _bind(self, ep: Endpoint) -> None:
        addr, port, proto = ep
        loop = asyncio.get_running_loop()
        try:
            if proto == "tcp":
                async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                    await self._on_tcp(ep, r, w)
                self.tcp[ep] = await asyncio.start_server(on_conn, addr, port, reuse_address=True)
            else:
                _, listener = await loop.create_datagram_endpoint(lambda: UdpListener(lambda: self._udp_pick(ep)),
                                                                  local_addr=(addr, port))
                self.udp[ep] = listener
        except OSError as e:
            why = (f"{addr} is not an address of this machine (add it, e.g. `ip addr add {addr}/"
                   f"{128 if ':' in addr else 32} dev lo`)" if e.errno == errno.EADDRNOTAVAIL else str(e))
            if self.failed.get(ep) != why:
                print(f"albus-sim dataplane: cannot listen on {addr} {proto}/{port}: {why}", file=sys.stderr)
            self.failed[ep] = why
            return
        self.failed.pop(ep, None)

    def _unbind(self, ep: Endpoint) -> None:
        # only the listening socket closes: established connections run to their end
        server = self.tcp.pop(ep, None)
        if server is not None:
            server.close()
        udp = self.udp.pop(ep, None)
        if udp is not None:
            udp.close()

    # ---- traffic -----------------------------------------------------------------------------------
    def _vs(self, ep: Endpoint) -> Record | None:
        route = self.routes.get(ep)
        vs = self.store.get(route[0]) if route else None
        return vs if vs is not None and serves_traffic(vs) else None

    def vs_stats(self, uuid: str) -> VsStats:
        return self.stats.setdefault(uuid, VsStats())

    def _udp_pick(self, ep: Endpoint) -> tuple[VsStats, Any]:
        vs = self._vs(ep)
        if vs is None:
            return VsStats(), None
        st = self.vs_stats(vs.uuid)
        st.connections += 1
        return st, self.balancer.pick(l4_target(self.store, vs, ep[1], "udp"), st)

    async def _on_tcp(self, ep: Endpoint, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        vs = self._vs(ep)
        if vs is None:
            writer.transport.abort()
            return
        st = self.vs_stats(vs.uuid)
        st.connections += 1
        st.active += 1
        self._clients.add(writer)
        try:
            await self._serve(ep, vs, st, reader, writer)
        except (OSError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            st.active -= 1
            self._clients.discard(writer)
            await close(writer)

    async def _serve(self, ep: Endpoint, vs: Record, st: VsStats, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        kind = app_type(self.store, vs)
        if self.routes[ep][1]:  # TLS terminated here
            child = await self._handshake(vs, writer)
            if kind == "APPLICATION_PROFILE_TYPE_HTTP":
                await serve_http(self.store, self.balancer, vs, self.stats, reader, writer, tls=True,
                                 sni_child=child)
            else:
                await forward_tcp((reader, writer), self.balancer.pick(l4_target(self.store, vs, ep[1], "tcp"), st),
                                  st)
        elif kind == "APPLICATION_PROFILE_TYPE_HTTP":
            await serve_http(self.store, self.balancer, vs, self.stats, reader, writer, tls=False)
        elif kind == "APPLICATION_PROFILE_TYPE_SSL":
            # passthrough: route on the ClientHello's server name, as AKO's passthrough VS's host rules say
            hello = await tls.peek_hello(reader)
            name = tls.server_name(hello) or ""
            target = http_decision(self.store, vs, name, "/", "", {}, True).target
            await forward_tcp((reader, writer), self.balancer.pick(target, st), st, first=hello)
        else:
            await forward_tcp((reader, writer), self.balancer.pick(l4_target(self.store, vs, ep[1], "tcp"), st), st)

    def _cert_ctx(self, vs: Record, owner: str = "") -> Any:
        cert = certificate(self.store, vs) or self.store.find_by_name(ADMIN_TENANT, "sslkeyandcertificate",
                                                                      "System-Default-Cert")
        return self.contexts.for_cert(cert, owner) if cert is not None else None

    async def _handshake(self, vs: Record, writer: asyncio.StreamWriter) -> Record | None:
        """TLS with the VS's certificate, or its SNI child's; returns that child."""
        parent = vs.data.get("type") == "VS_TYPE_VH_PARENT"
        base = self._cert_ctx(vs, owner=vs.uuid if parent else "")
        if parent:
            def pick(name: str) -> Any:
                kid = vh_child(self.store, vs, name)
                return self._cert_ctx(kid) if kid is not None and certificate(self.store, kid) else None
            tls.with_sni(base, pick, self._sni)
        await writer.start_tls(base)
        obj = writer.get_extra_info("ssl_object")
        name = self._sni.pop(id(obj), None) if obj is not None else None
        return vh_child(self.store, vs, name) if name else None

    # ---- views -------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Json]:
        out = []
        for ep, (uuid, terminated) in sorted(self.routes.items()):
            vs = self.store.get(uuid)
            state = "LISTENING" if ep in self.tcp or ep in self.udp else "FAILED"
            item: dict[str, Json] = {"address": ep[0], "port": ep[1], "protocol": ep[2].upper(),
                                     "virtualservice": vs.name if vs else uuid, "uuid": uuid,
                                     "tls": terminated, "state": state}
            if ep in self.failed:
                item["reason"] = self.failed[ep]
            out.append(item)
        return {"listeners": out,
                "virtualservices": {(r.name if (r := self.store.get(u)) else u): s.to_json()
                                    for u, s in self.stats.items()}}
