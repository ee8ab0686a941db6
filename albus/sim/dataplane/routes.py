"""What the stored objects say about traffic: listeners, pools per port, HTTP policies, SNI children.

Pure functions over the store, evaluated per connection or request, so a
changed object takes effect for the next connection without touching the
listeners (which only follow VIP addresses, ports and protocols).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from albus.sim.store import Record, Store

Json = Any
Endpoint = tuple[str, int, str]  # (VIP address, port, "tcp" | "udp")

UDP_PROFILES = frozenset({"PROTOCOL_TYPE_UDP_FAST_PATH", "PROTOCOL_TYPE_UDP_PROXY"})
MAX_PORT_RANGE = 64  # a port range wider than this is cut: it is a test tool, not a SE


@dataclass(frozen=True)
class Target:
    """Where a connection or request goes: a pool or a pool group (uuid), or a local answer."""

    pool: str | None = None
    poolgroup: str | None = None


@dataclass
class HttpDecision:
    target: Target | None = None
    status: int | None = None  # local answer (redirect or HTTP_SWITCHING_SELECT_LOCAL)
    location: str | None = None
    add_headers: list[tuple[str, str]] = field(default_factory=list)
    remove_headers: list[str] = field(default_factory=list)


def _get(store: Store, uuid: Json, otype: str) -> Record | None:
    rec = store.get(str(uuid)) if uuid else None
    return rec if rec is not None and rec.type == otype else None


def app_type(store: Store, vs: Record) -> str:
    """APPLICATION_PROFILE_TYPE_HTTP / _L4 / _SSL ..."""
    prof = _get(store, vs.data.get("application_profile_ref"), "applicationprofile")
    return str(prof.data.get("type")) if prof else "APPLICATION_PROFILE_TYPE_HTTP"


def _proto(store: Store, vs: Record, svc: dict[str, Json]) -> str:
    prof = _get(store, svc.get("override_network_profile_ref") or vs.data.get("network_profile_ref"),
                "networkprofile")
    kind = ((prof.data.get("profile") or {}).get("type") if prof else None) or "PROTOCOL_TYPE_TCP_PROXY"
    return "udp" if kind in UDP_PROFILES else "tcp"


def vip_addresses(store: Store, vs: Record) -> list[str]:
    vsvip = _get(store, vs.data.get("vsvip_ref"), "vsvip")
    out: list[str] = []
    for v in (vsvip.data.get("vip") if vsvip else None) or []:
        if not v.get("enabled", True):
            continue
        for key in ("ip_address", "ip6_address"):
            addr = (v.get(key) or {}).get("addr")
            if addr:
                out.append(str(ipaddress.ip_address(addr)))
    return out


def serves_traffic(vs: Record) -> bool:
    d = vs.data
    return bool(d.get("enabled", True) and d.get("traffic_enabled", True) and d.get("type") != "VS_TYPE_VH_CHILD")


def endpoints(store: Store) -> dict[Endpoint, tuple[str, bool]]:
    """Every listener the objects ask for → (virtual service uuid, TLS terminated on that port)."""
    out: dict[Endpoint, tuple[str, bool]] = {}
    for vs in store.by_type.get("virtualservice", {}).values():
        if not serves_traffic(vs):
            continue
        addrs = vip_addresses(store, vs)
        for svc in vs.data.get("services") or []:
            first = int(svc["port"])
            last = min(int(svc.get("port_range_end") or first), first + MAX_PORT_RANGE - 1)
            proto = _proto(store, vs, svc)
            for addr in addrs:
                for port in range(first, last + 1):
                    out[(addr, port, proto)] = (vs.uuid, bool(svc.get("enable_ssl")) and proto == "tcp")
    return out


def _default_target(vs: Record) -> Target | None:
    d = vs.data
    if d.get("pool_ref"):
        return Target(pool=str(d["pool_ref"]))
    if d.get("pool_group_ref"):
        return Target(poolgroup=str(d["pool_group_ref"]))
    return None


def _select(sel: dict[str, Json]) -> Target | None:
    if sel.get("pool_ref"):
        return Target(pool=str(sel["pool_ref"]))
    if sel.get("pool_group_ref"):
        return Target(poolgroup=str(sel["pool_group_ref"]))
    return None


def _ordered(items: list[dict[str, Json]] | None) -> list[dict[str, Json]]:
    return sorted(items or [], key=lambda i: int(i.get("index", 0)))


def _ports_match(m: dict[str, Json], port: int) -> bool:
    ports = set(m.get("ports") or [])
    inside = port in ports or any(int(r["start"]) <= port <= int(r["end"]) for r in m.get("port_ranges") or [])
    return inside if m.get("match_criteria", "IS_IN") == "IS_IN" else not inside


def l4_target(store: Store, vs: Record, port: int, proto: str) -> Target | None:
    """The VS's L4 policy rules in index order (port, protocol), else its pool / pool group."""
    want = "PROTOCOL_UDP" if proto == "udp" else "PROTOCOL_TCP"
    for ref in _ordered(vs.data.get("l4_policies")):
        ps = _get(store, ref.get("l4_policy_set_ref"), "l4policyset")
        for rule in _ordered(((ps.data.get("l4_connection_policy") or {}) if ps else {}).get("rules")):
            if not rule.get("enable", True):
                continue
            m = rule.get("match") or {}
            if "port" in m and not _ports_match(m["port"], port):
                continue
            if "protocol" in m:
                same = m["protocol"].get("protocol") == want
                if same != (m["protocol"].get("match_criteria", "IS_IN") == "IS_IN"):
                    continue
            target = _select((rule.get("action") or {}).get("select_pool") or {})
            if target is not None:
                return target
    return _default_target(vs)


# ---- HTTP ---------------------------------------------------------------------------------------
def _str_match(criteria: str, subject: str, values: list[str], sensitive: bool) -> bool:
    """Avi's match criteria (HDR_* and path's) on one string; DOES_NOT_* negate."""
    if not sensitive:
        subject, values = subject.lower(), [v.lower() for v in values]
    base = criteria.removeprefix("HDR_")
    negate = "_NOT_" in base or base == "DOES_NOT_EQUAL"
    base = base.replace("DOES_NOT_", "").replace("_NOT_", "_")
    tests: dict[str, Callable[[str, str], bool]] = {
        "BEGINS_WITH": str.startswith, "BEGIN_WITH": str.startswith, "ENDS_WITH": str.endswith,
        "END_WITH": str.endswith, "CONTAINS": str.__contains__, "CONTAIN": str.__contains__,
        "EQUALS": str.__eq__, "EQUAL": str.__eq__, "REGEX_MATCH": lambda s, v: re.search(v, s) is not None}
    fn = tests.get(base)
    hit = fn is not None and any(fn(subject, v) for v in values)
    return hit != negate


def _hdr_match(m: dict[str, Json], value: str | None) -> bool:
    crit = str(m.get("match_criteria", "HDR_EQUALS"))
    if crit == "HDR_EXISTS":
        return value is not None
    if crit == "HDR_DOES_NOT_EXIST":
        return value is None
    if value is None:
        return "NOT" in crit
    sensitive = m.get("match_case", "INSENSITIVE") == "SENSITIVE"
    return _str_match(crit, value, [str(v) for v in m.get("value") or []], sensitive)


def rule_matches(rule: dict[str, Json], host: str, path: str, headers: dict[str, str]) -> bool:
    m = rule.get("match") or {}
    if "host_hdr" in m and not _hdr_match(m["host_hdr"], host):
        return False
    if "path" in m:
        pm = m["path"]
        sensitive = pm.get("match_case", "INSENSITIVE") == "SENSITIVE"
        if not _str_match(str(pm.get("match_criteria")), path, [str(v) for v in pm.get("match_str") or []],
                          sensitive):
            return False
    return all(_hdr_match(hm, headers.get(str(hm.get("hdr", "")).lower())) for hm in m.get("hdrs") or [])


def _tokens(spec: Json, default: str) -> str:
    """A redirect's tokenised host/path: string tokens are concatenated; anything else keeps the original."""
    if not isinstance(spec, dict):
        return default
    toks = spec.get("tokens") or []
    if not toks or any(t.get("type") != "URI_TOKEN_TYPE_STRING" for t in toks):
        return default
    return "".join(str(t.get("str_value", "")) for t in toks)


def _redirect(ra: dict[str, Json], host: str, path: str, query: str, tls: bool) -> HttpDecision:
    scheme = str(ra.get("protocol", "HTTPS" if tls else "HTTP")).lower()
    new_host = _tokens(ra.get("host"), host.split(":")[0])
    port = ra.get("port")
    default_port = 443 if scheme == "https" else 80
    netloc = new_host if not port or int(port) == default_port else f"{new_host}:{port}"
    new_path = _tokens(ra.get("path"), path.lstrip("/"))
    loc = f"{scheme}://{netloc}/{new_path.lstrip('/')}"
    if query and ra.get("keep_query", True):
        loc += f"?{query}"
    code = str(ra.get("status_code", "HTTP_REDIRECT_STATUS_CODE_302")).rsplit("_", 1)[-1]
    return HttpDecision(status=int(code) if code.isdigit() else 302, location=loc)


def http_decision(store: Store, vs: Record, host: str, path: str, query: str, headers: dict[str, str],
                  tls: bool) -> HttpDecision:
    """HTTP request policies in index order: the first matching rule with an action decides."""
    out = HttpDecision(target=_default_target(vs))
    for ref in _ordered(vs.data.get("http_policies")):
        ps = _get(store, ref.get("http_policy_set_ref"), "httppolicyset")
        for rule in _ordered(((ps.data.get("http_request_policy") or {}) if ps else {}).get("rules")):
            if not rule.get("enable", True) or not rule_matches(rule, host, path, headers):
                continue
            for ha in rule.get("hdr_action") or []:
                name = str((ha.get("hdr") or {}).get("name", ""))
                val = str(((ha.get("hdr") or {}).get("value") or {}).get("val", ""))
                if ha.get("action") in ("HTTP_REMOVE_HDR", "HTTP_REPLACE_HDR"):
                    out.remove_headers.append(name)
                if ha.get("action") in ("HTTP_ADD_HDR", "HTTP_REPLACE_HDR"):
                    out.add_headers.append((name, val))
            if rule.get("redirect_action"):
                red = _redirect(rule["redirect_action"], host, path, query, tls)
                red.add_headers, red.remove_headers = out.add_headers, out.remove_headers
                return red
            sa = rule.get("switching_action")
            if sa:
                if sa.get("action") == "HTTP_SWITCHING_SELECT_LOCAL":
                    code = str(sa.get("status_code", "HTTP_LOCAL_RESPONSE_STATUS_CODE_200")).rsplit("_", 1)[-1]
                    out.status, out.target = int(code) if code.isdigit() else 200, None
                    return out
                out.target = _select(sa)
                return out
    return out


# ---- virtual hosting ------------------------------------------------------------------------------
def _name_matches(pattern: str, name: str) -> bool:
    pattern, name = pattern.lower(), name.lower()
    if pattern.startswith("*."):
        return name.endswith(pattern[1:]) and name.count(".") == pattern.count(".")
    return pattern == name


def vh_child(store: Store, parent: Record, name: str) -> Record | None:
    """The enabled child of a VH parent whose vh_domain_name covers `name` (exact names before wildcards)."""
    if parent.data.get("type") != "VS_TYPE_VH_PARENT" or not name:
        return None
    kids = [r for r in store.referrer_records(parent.uuid) if r.type == "virtualservice"
            and r.data.get("vh_parent_vs_ref") == parent.uuid and r.data.get("enabled", True)]
    for wildcard in (False, True):
        for kid in kids:
            for pat in kid.data.get("vh_domain_name") or []:
                if pat.startswith("*.") == wildcard and _name_matches(pat, name):
                    return kid
    return None


def certificate(store: Store, vs: Record) -> Record | None:
    """The VS's first certificate (the controller serves an RSA and an EC one; one is enough here)."""
    certs = [c for u in vs.data.get("ssl_key_and_certificate_refs") or []
             if (c := _get(store, u, "sslkeyandcertificate")) is not None]
    return certs[0] if certs else None
