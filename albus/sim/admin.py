"""The simulator's own admin API under /_sim: introspection and fault injection, JSON, no Avi login.

Not part of the controller's API; see docs/simulator.md for every endpoint.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from albus.sim.app import Controller

Json = Any

SERVER_STATES = frozenset({"OPER_UP", "OPER_DOWN", "OPER_DISABLED", "OPER_UNAVAIL"})


def _json(data: Json, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


def _err(msg: str, status: int = 400) -> web.Response:
    return _json({"error": msg}, status)


async def _body(request: web.Request) -> dict[str, Json]:
    raw = await request.read()
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


async def handle(ctl: Controller, request: web.Request, path: str) -> web.Response:
    try:
        return await _handle(ctl, request, path.rstrip("/"))
    except (ValueError, KeyError, TypeError) as e:
        return _err(f"{type(e).__name__}: {e}")


async def _handle(ctl: Controller, request: web.Request, path: str) -> web.Response:
    m = request.method
    sub = path[len("/_sim"):].lstrip("/")
    if sub in ("", "info") and m == "GET":
        return _json({"username": ctl.config.username, "password": ctl.config.password,
                      "objects": len(ctl.store.by_uuid), "sessions": len(ctl.sessions),
                      "session_timeout": ctl.sessions.idle_timeout, "health_interval": ctl.health.interval,
                      "rate_limit": ctl.limiter.to_json(), "faults": len(ctl.faults.rules)})
    if sub == "dataplane" and m == "GET":
        if ctl.dataplane is None:
            return _err("the data plane is off (start the simulator with --dataplane)", 404)
        return _json(ctl.dataplane.to_json())
    if sub == "counters":
        if m == "GET":
            return _json(ctl.log.counters())
        if m == "DELETE":
            ctl.log.reset()
            return _json({"reset": True})
    if sub == "requests":
        if m == "GET":
            return _json(_requests(ctl, request))
        if m == "DELETE":
            ctl.log.reset()
            return _json({"reset": True})
    if sub == "faults":
        if m == "GET":
            return _json({"faults": [r.to_json() for r in ctl.faults.rules]})
        if m == "POST":
            rule = ctl.faults.add(await _body(request))
            return _json(rule.to_json(), 201)
        if m == "DELETE":
            ctl.faults.clear()
            return _json({"cleared": True})
    if sub.startswith("faults/") and m == "DELETE":
        ok = ctl.faults.remove(int(sub.split("/", 1)[1]))
        return _json({"removed": ok}, 200 if ok else 404)
    if sub == "sessions/expire" and m == "POST":
        return _json({"expired": ctl.sessions.expire_all()})
    if sub == "restart" and m == "POST":
        body = await _body(request)
        n = ctl.sessions.expire_all()
        ctl.limiter.reset()
        ctl.health.reset()
        downtime = float(body.get("downtime_s", 0))
        ctl.unavailable_until = time.monotonic() + downtime if downtime > 0 else 0.0
        return _json({"restarted": True, "sessions_dropped": n, "downtime_s": downtime})
    if sub == "ratelimit":
        if m == "PUT":
            body = await _body(request)
            unknown = set(body) - {"enabled", "rate", "burst"}
            if unknown:
                return _err(f"unknown fields {sorted(unknown)}")
            if "enabled" in body:
                ctl.limiter.enabled = bool(body["enabled"])
            if "rate" in body:
                ctl.limiter.rate = float(body["rate"])
            if "burst" in body:
                ctl.limiter.burst = int(body["burst"])
            ctl.limiter.reset()
        if m in ("GET", "PUT"):
            return _json(ctl.limiter.to_json())
    if sub == "config":
        if m == "PUT":
            body = await _body(request)
            unknown = set(body) - {"session_timeout", "allow_basic_auth", "health_interval"}
            if unknown:
                return _err(f"unknown fields {sorted(unknown)}")
            if "session_timeout" in body:
                ctl.sessions.idle_timeout = float(body["session_timeout"])
            if "allow_basic_auth" in body:
                ctl.config.allow_basic_auth = bool(body["allow_basic_auth"])
            if "health_interval" in body:
                hi = body["health_interval"]
                ctl.health.interval = float(hi) if hi else None
                ctl.health.reset()
        if m in ("GET", "PUT"):
            return _json({"session_timeout": ctl.sessions.idle_timeout, "allow_basic_auth": ctl.config.allow_basic_auth,
                          "health_interval": ctl.health.interval})
    if sub == "servers":
        if m == "GET":
            return _json({"overrides": [{"pool": store_name(ctl, k[0]),
                                         "pool_uuid": k[0], "ip": k[1], "port": k[2], "state": v[0], "reason": v[1]}
                                        for k, v in ctl.health.overrides.items()]})
        if m == "PUT":
            return _server_override(ctl, await _body(request))
        if m == "DELETE":
            ctl.health.overrides.clear()
            return _json({"cleared": True})
    if sub == "objects" and m == "GET":
        otype = request.query.get("type")
        recs = [r for r in ctl.store.by_uuid.values() if otype is None or r.type == otype]
        return _json({"count": len(recs), "results": [
            {"type": r.type, "uuid": r.uuid, "name": r.name, "tenant": r.tenant, "system": r.system,
             "data": ctl.objects.render(r, "", include_name=True)} for r in recs]})
    if sub == "ipam" and m == "GET":
        return _json({"used": [{"vrf": k[0], "ip": k[1], "vsvip": v} for k, v in ctl.ipam.used.items()]})
    return _err(f"no admin endpoint {m} {path}", 404)


def store_name(ctl: Controller, uuid: str) -> str:
    r = ctl.store.get(uuid)
    return r.name if r is not None else uuid


def _requests(ctl: Controller, request: web.Request) -> dict[str, Json]:
    q = request.query
    since = int(q.get("since", 0))
    method = q.get("method")
    otype = q.get("type")
    status = q.get("status")
    out = []
    for e in ctl.log.entries:
        if e["seq"] <= since:
            continue
        if method and e["method"] != method.upper():
            continue
        if otype and e["type"] != otype:
            continue
        if status and str(e["status"]) != status:
            continue
        out.append(e)
    return {"count": len(out), "last_seq": ctl.log.seq, "dropped": ctl.log.dropped, "results": out}


def _server_override(ctl: Controller, body: dict[str, Json]) -> web.Response:
    pool_key = body["pool"]
    tenant = body.get("tenant", "admin")
    pool = ctl.store.get(pool_key)
    if pool is None:
        t = ctl.store.by_tenant_name("admin", "tenant", tenant)
        tuuid = t[0].uuid if t else tenant
        lst = ctl.store.by_tenant_name(tuuid, "pool", pool_key)
        pool = lst[0] if lst else None
    if pool is None or pool.type != "pool":
        return _err(f"pool {pool_key} not found", 404)
    ip = str(body["ip"])
    matches = [s for s in pool.data.get("servers", []) or [] if s["ip"]["addr"] == ip
               and ("port" not in body or int(s.get("port") or pool.data.get("default_server_port", 80))
                    == int(body["port"]))]
    if not matches:
        return _err(f"server {ip} not in pool {pool.name}", 404)
    state = body.get("state")
    for s in matches:
        key = (pool.uuid, ip, int(s.get("port") or pool.data.get("default_server_port", 80)))
        if state is None:
            ctl.health.overrides.pop(key, None)
        else:
            if state not in SERVER_STATES:
                return _err(f"state must be one of {sorted(SERVER_STATES)} or null")
            ctl.health.overrides[key] = (str(state), str(body.get("reason", "Fault injected")))
    return _json({"pool": pool.name, "ip": ip, "state": state})
