"""Active health checks of pool members and the runtime views built from them.

One scheduler task runs every pool's checks: pools are queued by when their next round is due (a
heap), a round probes the pool's members concurrently, and the next round is due one interval after
it ends. At most ``ROUNDS_PER_TURN`` rounds start per pass of the event loop and ``MAX_ROUNDS`` run at
once, so thousands of pools falling due together cannot hold up the API's requests (a round may then
start late: the interval is a floor). A member whose result cannot change between rounds (outside
the probe networks, or a UDP/PING/SCTP monitor, below) gets its state once, when its pool is
(re)planned, and is never put in a round: the cost per interval follows the members actually probed.
TCP monitors (and every type without a special case) open a TCP connection; HTTP/HTTPS monitors send
the monitor's request (default `HEAD / HTTP/1.0`) and accept the configured response classes
(default 2xx/3xx). UDP and PING monitors cannot be probed faithfully without a protocol-specific
reply or raw sockets, so they report a member up while it is enabled (documented). A pool without a
monitor reports its enabled members up, as the controller does. A member turns down on the first
failed probe and up on the first good one (the controller waits for `failed_checks` /
`successful_checks`; tests want a state that follows the listener within one interval).
Fault injection can pin a member's state.

Only members inside the *probe networks* are probed: loopback by default,
plus the networks of test hosts a test creates itself (``--probe-network``).
The simulator runs on a developer's machine, not in a data centre: it must
never send a packet to an address it does not own. Members outside are
reported up with the reason ``Not probed: ...`` (documented).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import ipaddress
import itertools
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from albus.sim.store import Record, Store

Json = Any
Key = tuple[str, str, int]  # (pool uuid, ip, port)

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
NOT_PROBED = "Not probed: outside the simulator's probe networks"
UNPROBED_TYPES = ("HEALTH_MONITOR_UDP", "HEALTH_MONITOR_PING", "HEALTH_MONITOR_SCTP")
ROUNDS_PER_TURN = 64  # pool rounds started per pass of the event loop
MAX_ROUNDS = 256      # pool rounds in flight at once


@dataclass
class ServerState:
    state: str = "OPER_CREATING"
    reason: list[str] = field(default_factory=list)
    since: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Json]:
        secs = int(self.since)
        return {"state": self.state, "reason": list(self.reason),
                "last_changed_time": {"secs": secs, "usecs": int((self.since - secs) * 1e6)}}


def _forget(e: BaseException) -> None:
    """Drop a caught probe error's traceback: through asyncio's frames it makes a reference cycle
    (~47 objects per failed connect on 3.11) that only a full collection frees — at a thousand probes a
    second, the collections paused the loop for a quarter of a second each."""
    e.__traceback__ = None


def _server_port(pool: Record, s: dict[str, Json]) -> int:
    return int(s.get("port") or pool.data.get("default_server_port", 80))


class Health:
    def __init__(self, store: Store, interval: float | None = None) -> None:
        self.store = store
        self.interval = interval  # global override of every monitor's send_interval
        self.probe_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = list(LOOPBACK)
        self.states: dict[Key, ServerState] = {}
        # The keys of ``states`` per pool: a pool's reconcile touches its own, not every pool's.
        self._pool_keys: dict[str, set[Key]] = {}
        self.overrides: dict[Key, tuple[str, str]] = {}
        # (due, plan, pool uuid): when a pool's next round starts; an entry whose plan is no longer the
        # pool's (it was replanned or deleted since) is dropped when it comes up.
        self._due: list[tuple[float, int, str]] = []
        self._plan: dict[str, int] = {}  # pool uuid → its current plan, for pools with members to probe
        self._plans = itertools.count()
        self._rounds: dict[str, asyncio.Task[None]] = {}  # pool uuid → its round in flight
        self._wake = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.running = False
        self.probes = 0  # connection-level probes made (a benchmark's measure of the checking work)
        store.hooks.append(self._hook)

    # ---- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.running = True
        self._scheduler = self._loop.create_task(self._schedule())
        for pool in list(self.store.by_type.get("pool", {}).values()):
            self._reconcile(pool.uuid)

    async def stop(self) -> None:
        self.running = False
        tasks = [*self._rounds.values(), *([self._scheduler] if self._scheduler is not None else [])]
        self._rounds.clear()
        self._scheduler = None
        self._due.clear()
        self._plan.clear()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def reset(self) -> None:
        """Forget every state (controller restart): members are probed afresh."""
        self.states.clear()
        self._pool_keys.clear()
        for uuid in list(self.store.by_type.get("pool", {})):
            self._reconcile(uuid)

    def _hook(self, event: str, rec: Record) -> None:
        if not self.running or self._loop is None:
            return
        if rec.type == "pool":
            # after the current write (or its rollback) settles
            self._loop.call_soon(self._reconcile, rec.uuid)
        elif rec.type == "healthmonitor":
            for user in self.store.referrer_records(rec.uuid):
                if user.type == "pool":
                    self._loop.call_soon(self._reconcile, user.uuid)

    def _reconcile(self, pool_uuid: str) -> None:
        """Replan a pool after it (or its monitor) changed: a round in flight is dropped, the members
        whose result is fixed get it now, and a first round of the others is due at once."""
        old = self._rounds.pop(pool_uuid, None)
        if old is not None:
            old.cancel()
        self._plan.pop(pool_uuid, None)
        pool = self.store.get(pool_uuid)
        keys = self._pool_keys.get(pool_uuid, set())
        if pool is None:
            for k in keys:
                self.states.pop(k, None)
            self._pool_keys.pop(pool_uuid, None)
            return
        live = {(pool_uuid, s["ip"]["addr"], _server_port(pool, s)) for s in pool.data.get("servers", []) or []}
        for k in [k for k in keys if k not in live]:
            self.states.pop(k, None)
            keys.discard(k)
        hm = self._monitor(pool)
        if not self.running or hm is None or self._loop is None:
            return
        probed = False
        for s in self._enabled(pool):
            fixed = self._fixed_result(hm, s)
            if fixed is None:
                probed = True
            else:
                self._set((pool_uuid, s["ip"]["addr"], _server_port(pool, s)), "OPER_UP", [fixed] if fixed else [])
        if probed:
            plan = self._plan[pool_uuid] = next(self._plans)
            heapq.heappush(self._due, (self._loop.time(), plan, pool_uuid))
            self._wake.set()

    @staticmethod
    def _enabled(pool: Record) -> list[dict[str, Json]]:
        return [s for s in pool.data.get("servers", []) or [] if s.get("enabled", True)]

    def _fixed_result(self, hm: Record, s: dict[str, Json]) -> str | None:
        """The reason of a member that is up without a probe ("" for none), or None if it needs one."""
        if not self.probeable(s["ip"]["addr"]):
            return NOT_PROBED
        # No connection-level probe for these here (SCTP would need an SCTP
        # socket, which a test machine may not load): they count as up.
        if hm.data.get("type", "HEALTH_MONITOR_TCP") in UNPROBED_TYPES:
            return ""
        return None

    def _monitor(self, pool: Record) -> Record | None:
        for ref in pool.data.get("health_monitor_refs", []) or []:
            hm = self.store.get(ref)
            if hm is not None:
                return hm
        return None

    async def _schedule(self) -> None:
        """Start the rounds that are due, a bounded number per pass of the loop; sleep until the next."""
        assert self._loop is not None
        loop = self._loop
        while True:
            now = loop.time()
            budget = ROUNDS_PER_TURN
            while self._due and self._due[0][0] <= now and budget and len(self._rounds) < MAX_ROUNDS:
                _, plan, uuid = heapq.heappop(self._due)
                budget -= 1
                if self._plan.get(uuid) == plan and uuid not in self._rounds:
                    self._rounds[uuid] = loop.create_task(self._round(uuid, plan))
            self._wake.clear()
            if self._due and self._due[0][0] <= now and len(self._rounds) < MAX_ROUNDS:
                await asyncio.sleep(0)  # more are due: let the requests waiting meanwhile in first
                continue
            # woken by a new plan or a round ending, else when the next round is due
            timeout = self._due[0][0] - now if self._due and len(self._rounds) < MAX_ROUNDS else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _round(self, pool_uuid: str, plan: int) -> None:
        """Probe the pool's members that need it, record the results, queue the next round."""
        try:
            pool = self.store.get(pool_uuid)
            hm = self._monitor(pool) if pool is not None else None
            if pool is None or hm is None:
                return
            interval = self.interval if self.interval else float(hm.data.get("send_interval", 10))
            timeout = min(float(hm.data.get("receive_timeout", 4)), max(interval * 0.8, 0.05))
            servers = [s for s in self._enabled(pool) if self._fixed_result(hm, s) is None]
            results = await asyncio.gather(*(self._safe_probe(hm, s, pool, timeout) for s in servers))
            if self._plan.get(pool_uuid) != plan:
                return
            for s, (ok, reason) in zip(servers, results, strict=True):
                key = (pool_uuid, s["ip"]["addr"], _server_port(pool, s))
                self._set(key, "OPER_UP" if ok else "OPER_DOWN", [reason] if reason else [])
            assert self._loop is not None
            heapq.heappush(self._due, (self._loop.time() + interval, plan, pool_uuid))
        finally:
            if self._rounds.get(pool_uuid) is asyncio.current_task():
                del self._rounds[pool_uuid]
            self._wake.set()

    def _set(self, key: Key, state: str, reason: list[str]) -> None:
        cur = self.states.get(key)
        if cur is None or cur.state != state:
            self.states[key] = ServerState(state, reason)
            self._pool_keys.setdefault(key[0], set()).add(key)
        else:
            cur.reason = reason

    def probeable(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.probe_networks)

    async def _safe_probe(self, hm: Record, s: dict[str, Json], pool: Record, timeout: float) -> tuple[bool, str]:
        # a probe bug must not silently end the pool's checker task
        try:
            return await self._probe(hm, s, pool, timeout)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            _forget(e)
            return False, f"Health check error: {type(e).__name__}: {e}"

    async def _probe(self, hm: Record, s: dict[str, Json], pool: Record, timeout: float) -> tuple[bool, str]:
        mtype = hm.data.get("type", "HEALTH_MONITOR_TCP")
        ip = s["ip"]["addr"]
        port = int(hm.data.get("monitor_port") or _server_port(pool, s))
        if not self.probeable(ip):
            return True, NOT_PROBED
        if mtype in UNPROBED_TYPES:
            return True, ""
        self.probes += 1
        tls = mtype == "HEALTH_MONITOR_HTTPS"
        ctx: ssl.SSLContext | None = None
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port, ssl=ctx), timeout)
        except (TimeoutError, OSError) as e:
            _forget(e)
            return False, f"Connect failed: {type(e).__name__}" if not str(e) else f"Connect failed: {e}"
        try:
            if mtype not in ("HEALTH_MONITOR_HTTP", "HEALTH_MONITOR_HTTPS"):
                return True, ""
            conf = hm.data.get("https_monitor" if tls else "http_monitor") or {}
            req = str(conf.get("http_request", "HEAD / HTTP/1.0"))
            codes = conf.get("http_response_code") or ["HTTP_2XX", "HTTP_3XX"]
            writer.write(f"{req}\r\nHost: {ip}\r\nUser-Agent: avi/1.0\r\n\r\n".encode())
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), timeout)
            parts = line.decode("latin-1").split()
            if len(parts) < 2 or not parts[1].isdigit():
                return False, "Invalid HTTP response"
            code = int(parts[1])
            if f"HTTP_{code // 100}XX" in codes or "HTTP_ANY" in codes:
                return True, ""
            return False, f"Response code {code} not in {codes}"
        except (TimeoutError, OSError) as e:
            _forget(e)
            return False, f"Health check failed: {type(e).__name__}"
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # ---- views -------------------------------------------------------------------------------
    def server_status(self, pool: Record, s: dict[str, Json]) -> ServerState:
        key = (pool.uuid, s["ip"]["addr"], _server_port(pool, s))
        ov = self.overrides.get(key)
        if ov is not None:
            return ServerState(ov[0], [ov[1]] if ov[1] else [])
        if not pool.data.get("enabled", True):
            return ServerState("OPER_DISABLED", ["Pool disabled"])
        if not s.get("enabled", True):
            return ServerState("OPER_DISABLED", ["Server disabled"])
        if self._monitor(pool) is None:
            return ServerState("OPER_UP", [])
        st = self.states.get(key)
        return st if st is not None else ServerState("OPER_CREATING", ["Health check pending"])

    def pool_servers(self, pool: Record) -> list[dict[str, Json]]:
        out = []
        for s in pool.data.get("servers", []) or []:
            st = self.server_status(pool, s)
            out.append({"ip_addr": dict(s["ip"]), "port": _server_port(pool, s), "hostname": s.get("hostname"),
                        "enabled": s.get("enabled", True), "oper_status": st.to_json(),
                        "pool_ref": pool.uuid, "pool_name": pool.name})
        return out

    def pool_runtime(self, pool: Record) -> dict[str, Json]:
        servers = pool.data.get("servers", []) or []
        states = [self.server_status(pool, s) for s in servers]
        enabled = sum(1 for s in servers if s.get("enabled", True))
        up = sum(1 for st in states if st.state == "OPER_UP")
        if not pool.data.get("enabled", True):
            oper = ServerState("OPER_DISABLED", ["Pool disabled"])
        elif up:
            oper = ServerState("OPER_UP", [])
        elif any(st.state == "OPER_CREATING" for st in states):
            oper = ServerState("OPER_CREATING", ["Health check pending"])
        else:
            oper = ServerState("OPER_DOWN", ["No servers configured"] if not servers else ["All servers are down"])
        total = len(servers)
        return {"name": pool.name, "uuid": pool.uuid, "oper_status": oper.to_json(), "num_servers": total,
                "num_servers_enabled": enabled, "num_servers_up": up,
                "percent_servers_up_enabled": int(100 * up / enabled) if enabled else 0,
                "percent_servers_up_total": int(100 * up / total) if total else 0}

    def vs_pools(self, vs: Record) -> list[Record]:
        """Pools a virtual service sends traffic to: pool, pool group members, policy switching."""
        seen: dict[str, Record] = {}

        def add_pool(u: Json) -> None:
            r = self.store.get(str(u))
            if r is not None and r.type == "pool":
                seen[r.uuid] = r

        def add_pg(u: Json) -> None:
            pg = self.store.get(str(u))
            if pg is not None:
                for m in pg.data.get("members", []) or []:
                    add_pool(m.get("pool_ref"))

        d = vs.data
        if d.get("pool_ref"):
            add_pool(d["pool_ref"])
        if d.get("pool_group_ref"):
            add_pg(d["pool_group_ref"])
        for hp in d.get("http_policies", []) or []:
            ps = self.store.get(hp.get("http_policy_set_ref", ""))
            if ps is None:
                continue
            for rule in (ps.data.get("http_request_policy") or {}).get("rules", []) or []:
                sa = rule.get("switching_action") or {}
                if sa.get("pool_ref"):
                    add_pool(sa["pool_ref"])
                if sa.get("pool_group_ref"):
                    add_pg(sa["pool_group_ref"])
        for lp in d.get("l4_policies", []) or []:
            ps = self.store.get(lp.get("l4_policy_set_ref", ""))
            if ps is None:
                continue
            for rule in (ps.data.get("l4_connection_policy") or {}).get("rules", []) or []:
                sp = (rule.get("action") or {}).get("select_pool") or {}
                if sp.get("pool_ref"):
                    add_pool(sp["pool_ref"])
                if sp.get("pool_group_ref"):
                    add_pg(sp["pool_group_ref"])
        return list(seen.values())

    def vs_runtime(self, vs: Record) -> dict[str, Json]:
        d = vs.data
        pools = self.vs_pools(vs)
        pool_states = [self.pool_runtime(p)["oper_status"]["state"] for p in pools]
        if not d.get("enabled", True):
            oper = ServerState("OPER_DISABLED", ["Virtual service disabled"])
        elif not pools or "OPER_UP" in pool_states:
            oper = ServerState("OPER_UP", [])
        elif "OPER_CREATING" in pool_states:
            oper = ServerState("OPER_CREATING", ["Health check pending"])
        else:
            oper = ServerState("OPER_DOWN", ["Pool down"])
        if d.get("type") == "VS_TYPE_VH_CHILD" and oper.state == "OPER_UP":
            parent = self.store.get(str(d.get("vh_parent_vs_ref", "")))
            if parent is not None and not parent.data.get("enabled", True):
                oper = ServerState("OPER_DOWN", ["Parent virtual service disabled"])
        vips = []
        vsvip = self.store.get(str(d.get("vsvip_ref", "")))
        for v in (vsvip.data.get("vip", []) if vsvip is not None else []) or []:
            item: dict[str, Json] = {"vip_id": v.get("vip_id"), "oper_status": oper.to_json()}
            if "ip_address" in v:
                item["ip_address"] = dict(v["ip_address"])
            if "ip6_address" in v:
                item["ip6_address"] = dict(v["ip6_address"])
            vips.append(item)
        return {"name": vs.name, "uuid": vs.uuid, "oper_status": oper.to_json(), "vip_summary": vips,
                "percent_ses_up": 100 if oper.state == "OPER_UP" else 0}


def health_score(state: str) -> dict[str, Json]:
    score = 100.0 if state == "OPER_UP" else 0.0
    return {"health_score": score, "anomaly_penalty": 0, "resources_penalty": 0, "security_penalty": 0,
            "performance_score": score}
