"""Controller semantics over the store: validate, resolve references, fill defaults, create/replace/patch/delete,
and render objects back as the API shows them."""

from __future__ import annotations

import copy
import ipaddress
import uuid as uuidlib
from collections.abc import Callable, Set
from typing import Any

from albus.sim import certs
from albus.sim.errors import ApiError
from albus.sim.ipam import Ipam, check_network
from albus.sim.refs import parse_ref
from albus.sim.schema import IP_ADDR, TYPES, Enum, ListOf, Obj, Ref, Spec, TypeSpec
from albus.sim.store import ADMIN_TENANT, Record, Store

Json = Any

_PY_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "num": (int, float), "bool": (bool,)}


def model(otype: str) -> str:
    ts = TYPES.get(otype)
    return ts.model if ts else otype


class Ctx:
    __slots__ = ("cloud", "model", "tenant")

    def __init__(self, tenant: str, cloud: str | None, model: str) -> None:
        self.tenant = tenant
        self.cloud = cloud
        self.model = model


class Objects:
    def __init__(self, store: Store, ipam: Ipam) -> None:
        self.store = store
        self.ipam = ipam
        # called after a write is stored (health checks, persistence); never inside validation
        self.listeners: list[Callable[[str, Record], None]] = []

    # ---- references ----------------------------------------------------------------------
    def resolve(self, raw: Json, want: str, field: str, ctx: Ctx) -> str:
        p = parse_ref(raw, field)
        if p.type != want:
            raise ApiError(400, f"Invalid reference in field {field}: expected a {model(want)} reference, got {raw}")
        if p.uuid is not None:
            rec = self.store.get(p.uuid)
            if rec is None or rec.type != want or not self.store.visible(rec, ctx.tenant):
                raise ApiError(400, f"{model(want)} object not found: {raw}")
            return rec.uuid
        assert p.name is not None
        found = self.store.find_by_name(ctx.tenant, want, p.name, ctx.cloud)
        if found is None:
            raise ApiError(400, f"{model(want)} object not found: {raw}")
        return found.uuid

    def ref_url(self, uuid: str, base: str, include_name: bool) -> str:
        rec = self.store.get(uuid)
        if rec is None:
            return uuid
        url = f"{base}/api/{rec.type}/{uuid}"
        return f"{url}#{rec.name}" if include_name else url

    # ---- validation / normalisation -------------------------------------------------------
    def normalize(self, spec: Spec, value: Json, path: str, ctx: Ctx) -> Json:
        if isinstance(spec, str):
            if spec == "any":
                return value
            want = _PY_TYPES[spec]
            if not isinstance(value, want) or (spec in ("int", "num") and isinstance(value, bool)):
                raise ApiError(400, f"Invalid value for field {path}: expected {spec}, got {json_type(value)}")
            return value
        if isinstance(spec, Enum):
            if not isinstance(value, str) or value not in spec.values:
                raise ApiError(400, f"Invalid value for field {path}: {value!r} is not a valid choice")
            return value
        if isinstance(spec, Ref):
            if spec.many:
                if not isinstance(value, list):
                    raise ApiError(400, f"Invalid value for field {path}: expected a list of references")
                return [self.resolve(v, spec.type, path, ctx) for v in value]
            return self.resolve(value, spec.type, path, ctx)
        if isinstance(spec, ListOf):
            if not isinstance(value, list):
                raise ApiError(400, f"Invalid value for field {path}: expected a list, got {json_type(value)}")
            return [self.normalize(spec.item, v, f"{path}[{i}]", ctx) for i, v in enumerate(value)]
        # Obj
        if not isinstance(value, dict):
            raise ApiError(400, f"Invalid value for field {path}: expected an object, got {json_type(value)}")
        out: dict[str, Json] = {}
        fields = spec.fields
        for k, v in value.items():
            sub = fields.get(k)
            if sub is None:
                if not spec.open:
                    where = f"{path}.{k}" if path else k
                    raise ApiError(400, f"Unknown field '{where}' in {ctx.model}")
                out[k] = v
                continue
            if v is None:  # JSON null means "not set", as the controller treats it
                continue
            out[k] = self.normalize(sub, v, f"{path}.{k}" if path else k, ctx)
        for r in spec.required:
            if r not in out:
                where = f"{path}.{r}" if path else r
                raise ApiError(400, f"Field '{where}' is required in {ctx.model}")
        if spec is IP_ADDR:
            _check_ip(out, path)
        return out

    def _prepare(self, ts: TypeSpec, body: Json, tenant: str) -> dict[str, Json]:
        if not isinstance(body, dict):
            raise ApiError(400, "Request body must be a JSON object")
        body = dict(body)
        for k in ("url", "uuid", "_last_modified"):
            body.pop(k, None)
        # `<field>_name` shortcut, e.g. application_profile_name → application_profile_ref
        for k in [k for k in body if k.endswith("_name") and f"{k[:-5]}_ref" in ts.body.fields]:
            spec = ts.body.fields[f"{k[:-5]}_ref"]
            if isinstance(spec, Ref) and not spec.many and f"{k[:-5]}_ref" not in body:
                body[f"{k[:-5]}_ref"] = f"/api/{spec.type}/?name={body.pop(k)}"
        if "tenant_ref" in body:
            t = self.resolve(body["tenant_ref"], "tenant", "tenant_ref", Ctx(ADMIN_TENANT, None, ts.model))
            if t != tenant:
                raise ApiError(400, "tenant_ref does not match the request's tenant (X-Avi-Tenant)")
        bootstrap = self.store.get(tenant) is None  # the admin tenant, created first, refers to itself
        if not bootstrap:
            body["tenant_ref"] = f"/api/tenant/{tenant}"
        cloud: str | None = None
        if "cloud_ref" in body and ts.has_cloud:
            cloud = self.resolve(body["cloud_ref"], "cloud", "cloud_ref", Ctx(tenant, None, ts.model))
        elif ts.has_cloud:
            dc = self.store.find_by_name(tenant, "cloud", "Default-Cloud")
            cloud = dc.uuid if dc else None
        ctx = Ctx(tenant, cloud, ts.model)
        data: dict[str, Json] = self.normalize(ts.body, body, "", ctx)
        if not data.get("name"):
            raise ApiError(400, f"Field 'name' is required in {ts.model}")
        if bootstrap:
            data["tenant_ref"] = tenant
        if cloud is not None and ts.has_cloud:
            data["cloud_ref"] = cloud
        fill_defaults(self, ts.name, data, ctx)
        return data

    # ---- type-specific checks ------------------------------------------------------------
    def _check(self, otype: str, data: dict[str, Json], self_uuid: str, old: Record | None) -> None:
        if otype == "vsvip":
            self.ipam.apply(data, self_uuid, old)
            self._check_bgp_labels(data)
        elif otype == "virtualservice":
            self._check_bgp_labels(data)
            if data.get("type") == "VS_TYPE_VH_CHILD":
                parent = self.store.get(str(data.get("vh_parent_vs_ref", "")))
                if parent is None:
                    raise ApiError(400, "vh_parent_vs_ref is required for a VS_TYPE_VH_CHILD virtual service")
                if parent.data.get("type") != "VS_TYPE_VH_PARENT":
                    raise ApiError(400, f"VirtualService {parent.name} is not a VS_TYPE_VH_PARENT")
            elif "vh_parent_vs_ref" in data:
                raise ApiError(400, "vh_parent_vs_ref is only allowed on a VS_TYPE_VH_CHILD virtual service")
            if data.get("pool_ref") and data.get("pool_group_ref"):
                raise ApiError(400, "pool_ref and pool_group_ref cannot both be set")
        elif otype == "network":
            check_network(data)
        elif otype == "sslkeyandcertificate":
            certs.fill_certificate(data)
        elif otype == "pool":
            for s in data.get("servers", []) or []:
                port = s.get("port")
                if port is not None and not 1 <= port <= 65535:
                    raise ApiError(400, f"Invalid server port {port}: must be 1-65535")

    def _check_bgp_labels(self, data: dict[str, Json]) -> None:
        labels = data.get("bgp_peer_labels") or []
        if not labels:
            return
        vrf = self.store.get(str(data.get("vrf_context_ref", "")))
        known = set()
        if vrf is not None:
            for p in (vrf.data.get("bgp_profile") or {}).get("peers", []) or []:
                if p.get("label"):
                    known.add(p["label"])
        for lab in labels:
            if lab not in known:
                vname = vrf.name if vrf else "?"
                raise ApiError(400, f"BGP peer label {lab} is not configured on any BGP peer of VrfContext {vname}")

    def _check_unique(self, ts: TypeSpec, tenant: str, data: dict[str, Json], self_uuid: str | None) -> None:
        for other in self.store.by_tenant_name(tenant, ts.name, data["name"]):
            if other.uuid == self_uuid:
                continue
            if ts.cloud_scoped and other.cloud != data.get("cloud_ref"):
                continue
            raise ApiError(409, f"{ts.model} object with name {data['name']} already exists in this tenant")

    # ---- operations ----------------------------------------------------------------------
    def create(self, otype: str, tenant: str, body: Json, *, slug: str | None = None,
               system: bool = False) -> Record:
        ts = TYPES[otype]
        data = self._prepare(ts, body, tenant)
        if otype == "tenant":
            uid = slug or ("admin" if data["name"] == "admin" else f"tenant-{uuidlib.uuid4()}")
        else:
            uid = slug or f"{otype}-{uuidlib.uuid4()}"
        if uid in self.store.by_uuid:
            raise ApiError(409, f"{ts.model} object with uuid {uid} already exists")
        self._check_unique(ts, tenant, data, None)
        self._check(otype, data, uid, None)
        data["uuid"] = uid
        data["_last_modified"] = self.store.next_last_modified()
        rec = Record(otype, uid, tenant, data, system=system)
        self.store.insert(rec)
        self._notify("create", rec)
        return rec

    def replace(self, rec: Record, body: Json) -> Record:
        ts = TYPES[rec.type]
        lm = body.get("_last_modified") if isinstance(body, dict) else None
        if lm is not None and str(lm) != rec.data.get("_last_modified"):
            raise ApiError(412, "Concurrent Update Error: the object was modified since it was read "
                                "(_last_modified does not match)")
        if isinstance(body, dict) and body.get("uuid") not in (None, rec.uuid):
            raise ApiError(400, "uuid in body does not match the uuid in the URL")
        data = self._prepare(ts, body, rec.tenant)
        if rec.type == "sslkeyandcertificate" and "key" not in data and "key" in rec.data:
            data["key"] = rec.data["key"]  # the key is never shown, so a read-modify-write cannot echo it
        if ts.cloud_scoped and rec.cloud is not None and data.get("cloud_ref") != rec.cloud:
            raise ApiError(400, "cloud_ref cannot be changed")
        self._check_unique(ts, rec.tenant, data, rec.uuid)
        self._check(rec.type, data, rec.uuid, rec)
        data["uuid"] = rec.uuid
        data["_last_modified"] = self.store.next_last_modified()
        new = Record(rec.type, rec.uuid, rec.tenant, data, system=rec.system)
        self.store.replace(rec, new)
        self._notify("update", new)
        return new

    def patch(self, rec: Record, body: Json) -> Record:
        if not isinstance(body, dict) or not body or not set(body) <= {"add", "replace", "delete"}:
            raise ApiError(400, "PATCH body must be an object with 'add', 'replace' and/or 'delete'")
        cur = self.render(rec, "", include_name=False)
        cur.pop("url", None)
        for op in ("delete", "add", "replace"):
            if op in body:
                part = body[op]
                if not isinstance(part, dict):
                    raise ApiError(400, f"PATCH '{op}' must be an object")
                if op == "add":
                    _patch_add(cur, part)
                elif op == "replace":
                    for k, v in part.items():
                        cur[k] = copy.deepcopy(v)
                else:
                    _patch_delete(cur, part)
        cur.pop("_last_modified", None)
        return self.replace(rec, cur)

    def delete(self, rec: Record) -> None:
        if rec.system:
            raise ApiError(403, "Cannot delete system default object")
        users = [r for r in self.store.referrer_records(rec.uuid) if r.uuid != rec.uuid]
        if users:
            names = sorted(f"{model(r.type)} {r.name}" for r in users)
            raise ApiError(403, f"Cannot delete, object is referred by: {names}")
        self.store.remove(rec)
        self._notify("delete", rec)

    def _notify(self, event: str, rec: Record) -> None:
        for fn in self.listeners:
            fn(event, rec)

    # ---- rendering ----------------------------------------------------------------------
    def render(self, rec: Record, base: str, *, include_name: bool, fields: Set[str] | None = None) -> dict[str, Json]:
        spec = TYPES[rec.type].body if rec.type in TYPES else None
        out: dict[str, Json] = {"url": self.ref_url(rec.uuid, base, include_name)}
        specs = spec.fields if spec is not None else {}
        for k, v in rec.data.items():
            if fields is not None and k not in fields:
                continue
            if k in _HIDDEN:
                continue
            sub = specs.get(k)
            out[k] = v if sub is None else self._render_value(sub, v, base, include_name)
        return out

    def _render_value(self, spec: Spec, value: Json, base: str, inc: bool) -> Json:
        if isinstance(spec, Ref):
            if spec.many:
                return [self.ref_url(v, base, inc) for v in value]
            return self.ref_url(value, base, inc)
        if isinstance(spec, Obj):
            if not isinstance(value, dict):
                return value
            f = spec.fields
            return {k: (v if (s := f.get(k)) is None or isinstance(s, (str, Enum)) else
                        self._render_value(s, v, base, inc)) for k, v in value.items()}
        if isinstance(spec, ListOf):
            if isinstance(spec.item, (str, Enum)):
                return list(value)
            return [self._render_value(spec.item, v, base, inc) for v in value]
        return value


# never shown by the controller (the private key of a certificate)
_HIDDEN = frozenset({"key"})


def _check_ip(ip: dict[str, Json], path: str) -> None:
    """An IpAddr's `addr` must be an address of its `type` (DNS names are not checked)."""
    t = ip["type"]
    if t == "DNS":
        return
    try:
        a = ipaddress.ip_address(ip["addr"])
    except ValueError:
        raise ApiError(400, f"Invalid IP address '{ip['addr']}' in field {path}") from None
    if (a.version == 4) != (t == "V4"):
        raise ApiError(400, f"IP address '{ip['addr']}' in field {path} is not of type {t}")
    ip["addr"] = str(a)


def json_type(v: Json) -> str:
    if isinstance(v, bool):
        return "bool"
    return {dict: "object", list: "list", str: "str", int: "int", float: "num"}.get(type(v), "null")


def _match(item: Json, pattern: Json) -> bool:
    if isinstance(item, dict) and isinstance(pattern, dict):
        return all(k in item and _match(item[k], v) for k, v in pattern.items())
    return bool(item == pattern)


def _patch_add(cur: dict[str, Json], part: dict[str, Json]) -> None:
    """`add`: list fields get the given items appended, objects merge, scalars are set."""
    for k, v in part.items():
        if isinstance(v, list) and isinstance(cur.get(k), list):
            cur[k] = cur[k] + copy.deepcopy(v)
        elif isinstance(v, dict) and isinstance(cur.get(k), dict):
            _patch_add(cur[k], v)
        else:
            cur[k] = copy.deepcopy(v)


def _patch_delete(cur: dict[str, Json], part: dict[str, Json]) -> None:
    """`delete`: list items matching any given item are removed; other given fields are unset."""
    for k, v in part.items():
        if k not in cur:
            continue
        if isinstance(v, list) and isinstance(cur[k], list):
            cur[k] = [it for it in cur[k] if not any(_match(it, p) for p in v)]
        elif isinstance(v, dict) and isinstance(cur[k], dict) and v:
            _patch_delete(cur[k], v)
        else:
            del cur[k]


def _default_ref(o: Objects, tenant: str, otype: str, name: str, cloud: str | None) -> str | None:
    rec = o.store.find_by_name(tenant, otype, name, cloud)
    return rec.uuid if rec else None


def _set_ref(o: Objects, data: dict[str, Json], field: str, otype: str, name: str, ctx: Ctx) -> None:
    if field not in data:
        u = _default_ref(o, ctx.tenant, otype, name, ctx.cloud)
        if u is not None:
            data[field] = u


def fill_defaults(o: Objects, otype: str, d: dict[str, Json], ctx: Ctx) -> None:
    """The values a controller fills in on create (the subset seen in its 201 responses)."""
    sd = d.setdefault
    if otype == "pool":
        _set_ref(o, d, "vrf_ref", "vrfcontext", "global", ctx)
        _set_ref(o, d, "analytics_profile_ref", "analyticsprofile", "System-Analytics-Profile", ctx)
        sd("default_server_port", 80)
        sd("lb_algorithm", "LB_ALGORITHM_LEAST_CONNECTIONS")
        sd("lb_algorithm_hash", "LB_ALGORITHM_CONSISTENT_HASH_SOURCE_IP_ADDRESS")
        sd("enabled", True)
        sd("inline_health_monitor", True)
        sd("graceful_disable_timeout", 1)
        sd("connection_ramp_duration", 10)
        sd("east_west", False)
        for s in d.get("servers", []) or []:
            s.setdefault("enabled", True)
            s.setdefault("ratio", 1)
            s.setdefault("hostname", s["ip"]["addr"])
            s.setdefault("rewrite_host_header", False)
            s.setdefault("verify_network", False)
            s.setdefault("static", False)
            s.setdefault("resolve_server_by_dns", False)
    elif otype == "virtualservice":
        vsvip = o.store.get(str(d.get("vsvip_ref", "")))
        if vsvip is not None and "vrf_context_ref" not in d and "vrf_context_ref" in vsvip.data:
            d["vrf_context_ref"] = vsvip.data["vrf_context_ref"]
        _set_ref(o, d, "vrf_context_ref", "vrfcontext", "global", ctx)
        _set_ref(o, d, "application_profile_ref", "applicationprofile", "System-HTTP", ctx)
        _set_ref(o, d, "network_profile_ref", "networkprofile", "System-TCP-Proxy", ctx)
        _set_ref(o, d, "se_group_ref", "serviceenginegroup", "Default-Group", ctx)
        _set_ref(o, d, "analytics_profile_ref", "analyticsprofile", "System-Analytics-Profile", ctx)
        sd("type", "VS_TYPE_NORMAL")
        if d["type"] == "VS_TYPE_VH_PARENT":
            sd("vh_type", "VS_TYPE_VH_SNI")
        sd("enabled", True)
        sd("traffic_enabled", True)
        sd("east_west_placement", False)
        sd("flow_dist", "LOAD_AWARE")
        sd("cloud_type", "CLOUD_NONE")
        for s in d.get("services", []) or []:
            s.setdefault("port_range_end", s["port"])
            s.setdefault("enable_ssl", False)
            s.setdefault("enable_http2", False)
    elif otype == "vsvip":
        _set_ref(o, d, "vrf_context_ref", "vrfcontext", "global", ctx)
        sd("east_west_placement", False)
        for i, v in enumerate(d.get("vip", []) or []):
            v.setdefault("vip_id", str(i))
            v.setdefault("enabled", True)
            v.setdefault("auto_allocate_ip", False)
            if v["auto_allocate_ip"]:
                v.setdefault("auto_allocate_ip_type", "V4_ONLY")
            v.setdefault("auto_allocate_floating_ip", False)
            v.setdefault("avi_allocated_vip", False)
            v.setdefault("avi_allocated_fip", False)
        for di in d.get("dns_info", []) or []:
            di.setdefault("type", "DNS_RECORD_A")
            di.setdefault("algorithm", "DNS_RECORD_RESPONSE_CONSISTENT_HASH")
    elif otype == "network":
        _set_ref(o, d, "vrf_context_ref", "vrfcontext", "global", ctx)
        sd("dhcp_enabled", True)
        sd("exclude_discovered_subnets", False)
        sd("ip6_autocfg_enabled", True)
        sd("synced_from_se", False)
        for s in d.get("configured_subnets", []) or []:
            for r in s.get("static_ip_ranges", []) or []:
                r.setdefault("type", "STATIC_IPS_FOR_VIP_AND_SE")
    elif otype == "poolgroup":
        sd("min_servers", 0)
        sd("implicit_priority_labels", False)
        for m in d.get("members", []) or []:
            m.setdefault("ratio", 1)
    elif otype == "healthmonitor":
        sd("send_interval", 10)
        sd("receive_timeout", 4)
        sd("successful_checks", 2)
        sd("failed_checks", 2)
        sd("is_federated", False)
    elif otype in ("httppolicyset", "l4policyset"):
        sd("is_internal_policy", False)
    elif otype == "serviceenginegroup":
        sd("ha_mode", "HA_MODE_SHARED")
        sd("max_se", 10)
        sd("max_vs_per_se", 10)
        sd("min_scaleout_per_vs", 1)
        sd("max_scaleout_per_vs", 4)
        sd("algo", "PLACEMENT_ALGO_PACKED")
        sd("buffer_se", 1)
        sd("vcpus_per_se", 1)
        sd("memory_per_se", 2048)
        sd("se_name_prefix", "Avi")
    elif otype == "vrfcontext":
        sd("system_default", False)
        bp = d.get("bgp_profile")
        if isinstance(bp, dict):
            bp.setdefault("keepalive_interval", 60)
            bp.setdefault("hold_time", 180)
            bp.setdefault("send_community", True)
            bp.setdefault("shutdown", False)
            for p in bp.get("peers", []) or []:
                p.setdefault("bfd", True)
                p.setdefault("advertise_vip", True)
                p.setdefault("advertise_snat_ip", True)
    elif otype == "cloud":
        sd("dhcp_enabled", False)
        sd("mtu", 1500)
        sd("prefer_static_routes", False)
    elif otype == "tenant":
        sd("local", True)
    elif otype == "sslkeyandcertificate":
        sd("type", "SSL_CERTIFICATE_TYPE_VIRTUALSERVICE")
        sd("format", "SSL_PEM")
        sd("status", "SSL_CERTIFICATE_FINISHED")
        sd("certificate_base64", False)
        sd("key_base64", False)
        sd("enable_ocsp_stapling", False)
        sd("key_passphrase", "")
