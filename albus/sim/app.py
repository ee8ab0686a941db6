"""HTTP surface: one catch-all handler that does rate limiting, faults, logging, auth and routing.

A single handler (rather than aiohttp middlewares and many routes) keeps the per-request path short,
which is what the throughput goals need.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from albus.sim import admin
from albus.sim.errors import ApiError
from albus.sim.faults import Faults, RateLimiter, RequestLog
from albus.sim.health import Health, health_score
from albus.sim.ipam import Ipam
from albus.sim.macro import Macro
from albus.sim.objects import Objects
from albus.sim.schema import INVENTORY_TYPES, TYPES
from albus.sim.session import Session, Sessions
from albus.sim.store import ADMIN_TENANT, Record, Store

Json = Any

CONTROLLER_VERSION = "30.2.1"
MIN_VERSION = "18.2.1"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FAILED = "CSRF token missing or incorrect."
NOT_AUTHENTICATED = "Authentication credentials were not provided."
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 25


def _version_tuple(v: str) -> tuple[int, ...] | None:
    parts = v.strip().split(".")
    if not 1 <= len(parts) <= 4 or not all(p.isdigit() for p in parts):
        return None
    t = tuple(int(p) for p in parts)
    return t + (0,) * (3 - len(t)) if len(t) < 3 else t


_MAX_V = _version_tuple(CONTROLLER_VERSION)
_MIN_V = _version_tuple(MIN_VERSION)


@dataclass
class Config:
    username: str = "admin"
    password: str = "albus-sim"
    allow_basic_auth: bool = False
    secure_cookies: bool = False  # set on HTTPS, as the controller always does


@dataclass
class Controller:
    """All state of one simulated controller."""

    config: Config
    store: Store = field(default_factory=Store)
    sessions: Sessions = field(default_factory=Sessions)
    faults: Faults = field(default_factory=Faults)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    log: RequestLog = field(default_factory=RequestLog)
    unavailable_until: float = 0.0  # after a simulated restart, until the controller is "up" again
    dataplane: Any = None  # albus.sim.dataplane.DataPlane when traffic forwarding is on

    def __post_init__(self) -> None:
        self.ipam = Ipam(self.store)
        self.objects = Objects(self.store, self.ipam)
        self.macro = Macro(self.objects)
        self.health = Health(self.store)


class _Injected(Exception):
    """A status chosen by fault injection; the body is JSON, or text when given as a string."""

    def __init__(self, status: int, body: Json) -> None:
        super().__init__(status)
        self.status = status
        self.body = body

    def response(self) -> web.Response:
        if self.body is None:
            return json_response({"error": f"Injected fault ({self.status})"}, self.status)
        if isinstance(self.body, str):
            return web.Response(text=self.body, status=self.status, content_type="text/plain")
        return json_response(self.body, self.status)


def json_response(data: Json, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json",
                        headers=headers)


def error_response(e: ApiError) -> web.Response:
    if e.plain:
        return web.Response(text=e.message, status=e.status, content_type="text/plain")
    return json_response({"error": e.message}, e.status)


def _truthy(v: str | None) -> bool:
    return v is not None and v.lower() not in ("false", "0", "no")


class Api:
    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl

    # ---- entry ---------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        while "//" in path:
            path = path.replace("//", "/")
        if path.startswith("/_sim"):
            return await admin.handle(self.ctl, request, path)
        ctl = self.ctl
        client = request.remote or ""
        start = time.time()
        entry: dict[str, Json] = {"method": request.method, "path": path, "query": request.query_string,
                                  "type": None, "name": None, "uuid": None, "tenant": None, "client": client,
                                  "start": start}
        resp: web.StreamResponse
        try:
            if not ctl.limiter.allow(client):
                raise ApiError(429, "Too many requests, please retry later")
            if ctl.faults.rules:
                d = ctl.faults.decide(request.method, path)
                if d is not None:
                    if d.latency > 0:
                        await asyncio.sleep(d.latency)
                    if d.drop:
                        if request.transport is not None:
                            request.transport.abort()
                        entry["status"] = 0
                        self._log(entry)
                        # aiohttp drops the write to the aborted transport quietly
                        return web.Response(status=500)
                    if d.status is not None:
                        raise _Injected(d.status, d.body)
            if ctl.unavailable_until and time.monotonic() < ctl.unavailable_until:
                raise ApiError(503, "Controller is not ready")
            resp = await self._route(request, path, entry)
        except ApiError as e:
            resp = error_response(e)
        except _Injected as inj:
            resp = inj.response()
        entry["status"] = resp.status
        entry["end"] = time.time()
        self._log(entry)
        return resp

    def _log(self, entry: dict[str, Json]) -> None:
        entry.setdefault("end", time.time())
        entry["duration_ms"] = round((entry["end"] - entry["start"]) * 1000, 3)
        self.ctl.log.add(entry)

    # ---- auth ----------------------------------------------------------------------------------
    def _login_body(self, raw: bytes, ctype: str) -> dict[str, str]:
        if "json" in ctype:
            try:
                data = json.loads(raw or b"{}")
            except ValueError:
                raise ApiError(400, "Invalid JSON in request body") from None
            return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        from urllib.parse import parse_qs

        return {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}

    async def _login(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            raise ApiError(405, f"Method '{request.method}' not allowed")
        creds = self._login_body(await request.read(), request.content_type)
        cfg = self.ctl.config
        if creds.get("username") != cfg.username or creds.get("password") != cfg.password:
            raise ApiError(401, "Invalid credentials")
        s = self.ctl.sessions.create(cfg.username)
        host = self._base(request)
        resp = json_response({
            "user_initialized": True,
            "version": {"Version": CONTROLLER_VERSION, "build": 1, "Tag": f"{CONTROLLER_VERSION}-sim",
                        "ProductName": "Avi Cloud Controller", "min_version": MIN_VERSION, "Product": "controller",
                        "Date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())},
            "user": {"is_superuser": True, "name": cfg.username, "username": cfg.username, "local": True,
                     "uuid": "user-1", "full_name": "System Administrator", "email": "",
                     "default_tenant_ref": f"{host}/api/tenant/admin"},
            "tenants": [{"url": f"{host}/api/tenant/admin", "uuid": "admin", "name": "admin", "local": True}],
            "system_config": {"url": f"{host}/api/systemconfiguration", "uuid": "default",
                              "portal_configuration": {"allow_basic_authentication": cfg.allow_basic_auth}},
        })
        self._set_cookies(resp, s, csrf=True)
        return resp

    def _set_cookies(self, resp: web.Response, s: Session, *, csrf: bool) -> None:
        # headers written directly: http.cookies objects cost more than the rest of a GET
        sec = "; Secure" if self.ctl.config.secure_cookies else ""
        h = resp.headers
        if csrf:
            h.add("Set-Cookie", f"csrftoken={s.csrftoken}; Max-Age=31449600; Path=/{sec}")
        # Max-Age as the controller sends it; idle expiry is enforced server-side
        h.add("Set-Cookie", f"avi-sessionid={s.sid}; HttpOnly; Max-Age=86400; Path=/{sec}")
        h.add("Set-Cookie", f"sessionid={s.sid}; HttpOnly; Max-Age=86400; Path=/{sec}")

    def _auth(self, request: web.Request) -> Session | None:
        """The caller's session; None for a valid basic-auth caller. Raises 401 otherwise."""
        cookies = request.cookies
        sid = cookies.get("sessionid") or cookies.get("avi-sessionid")
        s = self.ctl.sessions.get(sid)
        if s is not None:
            if request.method in MUTATING:
                if request.headers.get("X-CSRFToken") != s.csrftoken:
                    raise ApiError(401, CSRF_FAILED, plain=True)
                if not request.headers.get("Referer"):
                    raise ApiError(401, "Referer checking failed - no Referer.", plain=True)
            return s
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic ") and self.ctl.config.allow_basic_auth:
            try:
                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                raise ApiError(401, "Invalid credentials") from None
            if user == self.ctl.config.username and pw == self.ctl.config.password:
                return None
            raise ApiError(401, "Invalid credentials")
        raise ApiError(401, NOT_AUTHENTICATED)

    def _tenant(self, request: web.Request, *, allow_all: bool) -> str:
        h = request.headers
        name = h.get("X-Avi-Tenant")
        tuuid = h.get("X-Avi-Tenant-UUID")
        if tuuid:
            rec = self.ctl.store.get(tuuid)
            if rec is None or rec.type != "tenant":
                raise ApiError(400, f"Tenant with uuid {tuuid} does not exist")
            return rec.uuid
        if not name or name == "admin":
            return ADMIN_TENANT
        if name == "*" and allow_all:
            return "*"
        lst = self.ctl.store.by_tenant_name(ADMIN_TENANT, "tenant", name)
        if not lst:
            raise ApiError(400, f"Tenant {name} does not exist")
        return lst[0].uuid

    def _check_version(self, request: web.Request) -> None:
        v = request.headers.get("X-Avi-Version")
        if v is None:
            return  # no header: the controller answers in its own version
        t = _version_tuple(v)
        if t is None or _MAX_V is None or _MIN_V is None or t > _MAX_V or t < _MIN_V:
            raise ApiError(400, f"Invalid version {v}: the controller supports API versions {MIN_VERSION} "
                                f"to {CONTROLLER_VERSION}")

    @staticmethod
    def _base(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}"

    # ---- routing -------------------------------------------------------------------------------
    async def _route(self, request: web.Request, path: str, entry: dict[str, Json]) -> web.StreamResponse:
        p = path.rstrip("/")
        if p == "/login":
            return await self._login(request)
        if p == "/logout":
            sid = request.cookies.get("sessionid") or request.cookies.get("avi-sessionid")
            if sid:
                self.ctl.sessions.drop(sid)
            out = web.Response(status=200)
            out.del_cookie("sessionid")
            out.del_cookie("avi-sessionid")
            return out
        if not p.startswith("/api/"):
            raise ApiError(404, f"Not found: {path}")
        segs = p[5:].split("/")
        head = segs[0]
        if head == "initial-data":
            return json_response({"version": {"Version": CONTROLLER_VERSION, "min_version": MIN_VERSION,
                                              "ProductName": "Avi Cloud Controller"}, "user_initialized": True})
        if head == "cluster" and len(segs) == 2 and segs[1] == "status":
            return json_response({"cluster_state": {"state": "CLUSTER_UP_NO_HA", "progress": 100}})
        session = self._auth(request)
        self._check_version(request)
        tenant = self._tenant(request, allow_all=request.method == "GET")
        entry["tenant"] = tenant
        resp: web.StreamResponse = await self._api(request, segs, tenant, entry)
        if session is not None and isinstance(resp, web.Response):
            # the controller re-sets the session cookies on every answer
            self._set_cookies(resp, session, csrf=False)
        return resp

    async def _body(self, request: web.Request) -> Json:
        raw = await request.read()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, "Invalid JSON in request body") from None

    async def _api(self, request: web.Request, segs: list[str], tenant: str,
                   entry: dict[str, Json]) -> web.StreamResponse:
        method = request.method
        head = segs[0]
        ctl = self.ctl
        base = self._base(request)
        if head == "cluster":
            return json_response({"node_states": [{"name": request.host.split(":")[0], "role": "CLUSTER_LEADER",
                                                   "up_since": "2020-01-01 00:00:00"}],
                                  "cluster_state": {"state": "CLUSTER_UP_NO_HA"}})
        if head == "macro":
            entry["type"] = "macro"
            if tenant == "*":
                raise ApiError(400, "A tenant is required for write operations")
            body = await self._body(request)
            if isinstance(body, dict) and isinstance(body.get("data"), dict):
                entry["name"] = body["data"].get("name")
            if method == "POST":
                recs = ctl.macro.run(body, tenant, update=False)
                return json_response([ctl.objects.render(r, base, include_name=True) for r in recs], 200)
            if method == "PUT":
                recs = ctl.macro.run(body, tenant, update=True)
                return json_response([ctl.objects.render(r, base, include_name=True) for r in recs], 200)
            if method == "DELETE":
                ctl.macro.delete(body, tenant)
                return web.Response(status=204)
            raise ApiError(405, f"Method '{method}' not allowed")
        if head in INVENTORY_TYPES:
            otype = INVENTORY_TYPES[head]
            entry["type"] = head
            if method != "GET":
                raise ApiError(405, f"Method '{method}' not allowed")
            return self._inventory(request, otype, segs, tenant, base)
        if head not in TYPES:
            raise ApiError(404, f"Unknown object type: {head}")
        otype = head
        entry["type"] = otype
        if len(segs) == 1:
            if method == "GET":
                return self._collection(request, otype, tenant, base, entry)
            if method == "POST":
                if tenant == "*":
                    raise ApiError(400, "A tenant is required for write operations")
                body = await self._body(request)
                if isinstance(body, dict):
                    entry["name"] = body.get("name")
                slug = request.headers.get("Slug")
                # tenants always live in the admin tenant, whatever the request's tenant
                rec = ctl.objects.create(otype, ADMIN_TENANT if otype == "tenant" else tenant, body, slug=slug)
                entry["uuid"] = rec.uuid
                return json_response(ctl.objects.render(rec, base, include_name=True), 201)
            raise ApiError(405, f"Method '{method}' not allowed")
        uid = segs[1]
        found = ctl.store.get(uid)
        entry["uuid"] = uid
        if found is None or found.type != otype or not ctl.store.visible(found, tenant):
            raise ApiError(404, f"{TYPES[otype].model} object not found")
        rec = found
        entry["name"] = rec.name
        if len(segs) > 2:
            if method != "GET":
                raise ApiError(405, f"Method '{method}' not allowed")
            return self._subresource(rec, segs[2:])
        q = request.query
        if method == "GET":
            fields = self._fields(q.get("fields"))
            out = ctl.objects.render(rec, base, include_name=_truthy(q.get("include_name")), fields=fields)
            if q.get("join_subresources") == "runtime":
                out["runtime"] = self._runtime_of(rec)
            return json_response(out)
        if method in ("PUT", "PATCH", "DELETE") and rec.tenant != tenant and tenant != "*":
            raise ApiError(403, f"{TYPES[otype].model} {rec.name} belongs to another tenant and cannot be modified")
        if method == "PUT":
            new = ctl.objects.replace(rec, await self._body(request))
            return json_response(ctl.objects.render(new, base, include_name=True))
        if method == "PATCH":
            new = ctl.objects.patch(rec, await self._body(request))
            return json_response(ctl.objects.render(new, base, include_name=True))
        if method == "DELETE":
            ctl.objects.delete(rec)
            return web.Response(status=204)
        raise ApiError(405, f"Method '{method}' not allowed")

    @staticmethod
    def _fields(raw: str | None) -> set[str] | None:
        if not raw:
            return None
        return {f.strip() for f in raw.split(",") if f.strip()} | {"name", "uuid", "url"}

    # ---- collections ---------------------------------------------------------------------------
    def _filtered(self, request: web.Request, otype: str, tenant: str) -> list[Record]:
        q = request.query
        store = self.ctl.store
        name = q.get("name")
        if name is not None:
            if tenant == "*":
                recs = [r for r in store.by_type.get(otype, {}).values() if r.name == name]
            else:
                recs = list(store.by_tenant_name(tenant, otype, name))
                if tenant != ADMIN_TENANT:
                    recs += [r for r in store.by_tenant_name(ADMIN_TENANT, otype, name) if store.visible(r, tenant)]
        else:
            recs = [r for r in store.by_type.get(otype, {}).values() if store.visible(r, tenant)]
        for key, val in q.items():
            recs = self._apply_filter(key, val, recs)
        sort = q.get("sort")
        if sort:
            desc = sort.startswith("-")
            fld = sort.lstrip("-")
            recs.sort(key=lambda r: str(r.data.get(fld, "")), reverse=desc)
        return recs

    def _apply_filter(self, key: str, val: str, recs: list[Record]) -> list[Record]:
        store = self.ctl.store
        if key == "name.contains":
            return [r for r in recs if val in r.name]
        if key == "name.icontains":
            lv = val.lower()
            return [r for r in recs if lv in r.name.lower()]
        if key == "name.in":
            names = set(val.split(","))
            return [r for r in recs if r.name in names]
        if key == "uuid.in":
            uuids = set(val.split(","))
            return [r for r in recs if r.uuid in uuids]
        if key == "uuid":
            return [r for r in recs if r.uuid == val]
        if key == "created_by":
            return [r for r in recs if r.data.get("created_by") == val]
        if key in ("cloud_ref.name", "cloud"):
            return [r for r in recs if r.cloud and (c := store.get(r.cloud)) is not None and c.name == val]
        if key in ("cloud_ref.uuid", "cloud_uuid"):
            return [r for r in recs if r.cloud == val]
        if key in ("refers_to", "referred_by"):
            t, _, u = val.partition(":")
            target = store.get(u)
            if target is None or (t and target.type != t):
                return []
            if key == "refers_to":
                return [r for r in recs if u in r.refs]
            return [r for r in recs if r.uuid in target.refs]
        if key == "label_key":
            return [r for r in recs if any(lb.get("key") == val for lb in r.data.get("labels", []) or [])]
        if key == "label_value":
            return [r for r in recs if any(lb.get("value") == val for lb in r.data.get("labels", []) or [])]
        if key == "search":
            # search=(field,value): substring match on a top-level field
            inner = val.strip("()")
            fld, _, sval = inner.partition(",")
            return [r for r in recs if sval in str(r.data.get(fld, ""))]
        if key == "markers.key" or key == "marker_key":
            return [r for r in recs if any(m.get("key") == val for m in r.data.get("markers", []) or [])]
        return recs  # other parameters (skip_default, include_refs, ...) do not filter

    def _page(self, request: web.Request, total: int) -> tuple[int, int]:
        q = request.query
        try:
            size = int(q.get("page_size", DEFAULT_PAGE_SIZE))
            page = int(q.get("page", 1))
        except ValueError:
            raise ApiError(400, "page and page_size must be integers") from None
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ApiError(400, f"Invalid page_size {size}: must be between 1 and {MAX_PAGE_SIZE}")
        if page < 1 or (page > 1 and (page - 1) * size >= total):
            raise ApiError(404, "Invalid page.")
        return page, size

    def _envelope(self, request: web.Request, path: str, total: int, page: int, size: int,
                  results: list[Json], base: str) -> web.Response:
        out: dict[str, Json] = {"count": total, "results": results}
        if page * size < total:
            params = dict(request.query)
            params["page"] = str(page + 1)
            out["next"] = f"{base}{path}?{urlencode(params)}"
        return json_response(out)

    def _collection(self, request: web.Request, otype: str, tenant: str, base: str,
                    entry: dict[str, Json]) -> web.Response:
        q = request.query
        recs = self._filtered(request, otype, tenant)
        if "name" in q:
            entry["name"] = q["name"]
        page, size = self._page(request, len(recs))
        chunk = recs[(page - 1) * size: page * size]
        inc = _truthy(q.get("include_name"))
        fields = self._fields(q.get("fields"))
        join = q.get("join_subresources") == "runtime"
        results = []
        for r in chunk:
            item = self.ctl.objects.render(r, base, include_name=inc, fields=fields)
            if join:
                item["runtime"] = self._runtime_of(r)
            results.append(item)
        return self._envelope(request, f"/api/{otype}", len(recs), page, size, results, base)

    # ---- runtime / inventory -------------------------------------------------------------------
    def _runtime_of(self, rec: Record) -> Json:
        h = self.ctl.health
        if rec.type == "pool":
            return h.pool_runtime(rec)
        if rec.type == "virtualservice":
            return h.vs_runtime(rec)
        return {}

    def _subresource(self, rec: Record, rest: list[str]) -> web.Response:
        h = self.ctl.health
        sub = "/".join(rest)
        if rec.type == "pool":
            if sub in ("runtime", "runtime/detail"):
                return json_response([h.pool_runtime(rec)])
            if sub in ("runtime/server", "runtime/server/detail"):
                return json_response(h.pool_servers(rec))
            if sub in ("runtime/server/hmonstat", "hmon"):
                return json_response([{"server": s, "health_monitor": [
                    {"name": (m.name if (m := self.ctl.store.get(u)) else u)}
                    for u in rec.data.get("health_monitor_refs", []) or []]} for s in h.pool_servers(rec)])
        if rec.type == "virtualservice":
            if sub == "runtime":
                return json_response(h.vs_runtime(rec))
            if sub == "runtime/detail":
                return json_response([h.vs_runtime(rec)])
            if sub == "runtime/stats" and self.ctl.dataplane is not None:
                return json_response(self.ctl.dataplane.vs_stats(rec.uuid).to_json())
        raise ApiError(404, f"Not found: /{sub}")

    def _inventory(self, request: web.Request, otype: str, segs: list[str], tenant: str, base: str) -> web.Response:
        store = self.ctl.store
        if len(segs) > 1:
            rec = store.get(segs[1])
            if rec is None or rec.type != otype or not store.visible(rec, tenant):
                raise ApiError(404, f"{TYPES[otype].model} object not found")
            users = self._pool_users([rec]) if otype == "pool" else {}
            return json_response(self._inventory_item(rec, base, users))
        recs = self._filtered(request, otype, tenant)
        page, size = self._page(request, len(recs))
        chunk = recs[(page - 1) * size: page * size]
        users = self._pool_users(chunk) if otype == "pool" else {}
        results = [self._inventory_item(r, base, users) for r in chunk]
        return self._envelope(request, f"/api/{segs[0]}", len(recs), page, size, results, base)

    def _pool_users(self, pools: list[Record]) -> dict[str, list[Record]]:
        """pool uuid → virtual services sending traffic to it, for these pools, in the VSes' creation order.

        Found upwards through the store's referrer index (a VS reaches a pool directly, through a pool
        group, a policy set, or a policy set's pool group: at most three hops), not by resolving every
        VS's pools: that cost ~0.5 ms per VS on every read, 100 ms per filtered read of 50 pools at
        2,000 VSes, and health's reads of the pools an apply touched queued the writes behind them.
        """
        store, health = self.ctl.store, self.ctl.health
        order: dict[str, int] | None = None
        out: dict[str, list[Record]] = {}
        for pool in pools:
            found: dict[str, Record] = {}
            level = [pool.uuid]
            seen = set(level)
            for _ in range(3):
                up = []
                for u in level:
                    for r in store.referrer_records(u):
                        if r.uuid in seen:
                            continue
                        seen.add(r.uuid)
                        if r.type == "virtualservice":
                            found[r.uuid] = r
                        elif r.type in ("poolgroup", "httppolicyset", "l4policyset"):
                            up.append(r.uuid)
                level = up
            users = [vs for vs in found.values() if any(p.uuid == pool.uuid for p in health.vs_pools(vs))]
            if len(users) > 1:
                order = order or {u: i for i, u in enumerate(store.by_type.get("virtualservice", {}))}
                rank = order
                users.sort(key=lambda vs: rank.get(vs.uuid, 0))
            out[pool.uuid] = users
        return out

    def _inventory_item(self, rec: Record, base: str, users: dict[str, list[Record]]) -> dict[str, Json]:
        o = self.ctl.objects
        h = self.ctl.health
        url = o.ref_url(rec.uuid, base, False)
        if rec.type == "virtualservice":
            d = o.render(rec, base, include_name=False, fields=_VS_INVENTORY_FIELDS)
            keep = _VS_INVENTORY_CONFIG
            rt = h.vs_runtime(rec)
            pools = h.vs_pools(rec)
            app = store_name(self.ctl.store, rec.data.get("application_profile_ref"))
            return {"uuid": rec.uuid, "url": url, "config": {k: d[k] for k in keep if k in d},
                    "runtime": {"oper_status": rt["oper_status"], "percent_ses_up": rt["percent_ses_up"],
                                "vip_summary": rt["vip_summary"]},
                    "health_score": health_score(rt["oper_status"]["state"]), "alert": {"high": 0, "low": 0,
                                                                                       "medium": 0},
                    "pools": [o.ref_url(p.uuid, base, False) for p in pools],
                    "poolgroups": [o.ref_url(str(rec.data["pool_group_ref"]), base, False)]
                    if rec.data.get("pool_group_ref") else [],
                    "app_profile_type": _app_type(self.ctl.store, rec.data.get("application_profile_ref")),
                    "app_profile_name": app}
        if rec.type == "pool":
            d = o.render(rec, base, include_name=False, fields=_POOL_INVENTORY_FIELDS)
            keep = _POOL_INVENTORY_CONFIG
            rt = h.pool_runtime(rec)
            vss = users.get(rec.uuid, [])
            return {"uuid": rec.uuid, "url": url, "config": {k: d[k] for k in keep if k in d},
                    "runtime": {k: rt[k] for k in ("num_servers", "num_servers_enabled", "num_servers_up",
                                                    "oper_status", "percent_servers_up_enabled",
                                                    "percent_servers_up_total")},
                    "health_score": health_score(rt["oper_status"]["state"]),
                    "alert": {"high": 0, "low": 0, "medium": 0},
                    "virtualservices": [o.ref_url(v.uuid, base, False) for v in vss]}
        return {"uuid": rec.uuid, "url": url, "config": o.render(rec, base, include_name=False)}


# The config fields an inventory entry shows (rendered alone: rendering the whole object to keep these
# was half the cost of a read). Tuples: the entry's keys come in this order.
_VS_INVENTORY_CONFIG: tuple[str, ...] = ("name", "uuid", "url", "type", "enabled", "services", "vsvip_ref", "pool_ref",
                        "pool_group_ref", "se_group_ref", "cloud_ref", "tenant_ref", "vrf_context_ref", "dns_info",
                        "fqdn", "vh_domain_name", "east_west_placement", "vh_parent_vs_ref", "created_by", "markers")
_POOL_INVENTORY_CONFIG: tuple[str, ...] = ("name", "uuid", "url", "cloud_ref", "tenant_ref", "vrf_ref", "default_server_port",
                          "enabled", "created_by", "markers")
_VS_INVENTORY_FIELDS = frozenset(_VS_INVENTORY_CONFIG)
_POOL_INVENTORY_FIELDS = frozenset(_POOL_INVENTORY_CONFIG)


def store_name(store: Store, uuid: Json) -> str | None:
    r = store.get(str(uuid)) if uuid else None
    return r.name if r else None


def _app_type(store: Store, uuid: Json) -> str | None:
    r = store.get(str(uuid)) if uuid else None
    return str(r.data.get("type")) if r else None


def build_app(ctl: Controller) -> web.Application:
    api = Api(ctl)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", api.handle)
    return app
