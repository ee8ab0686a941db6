"""L4 virtual service trees (pure functions): one Service, or a shared-VIP group of Services.

The tree holds, in dependency order, the vsvip, one pool per Service port,
the l4policyset that maps ports to pools, and the virtualservice — the
objects and names AKO makes (``docs/architecture.md``, "The L4 tree").
:class:`L4Plan` says what goes into a tree; :func:`build_tree` makes it, the
same way for a dedicated and a shared VIP.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from services.common.config import Config
from services.common.contracts import AviObject, GatewayStatus, ObjRef, Problem, VsTree
from services.common.service_ownership import handles as handles  # shared with health
from services.translator import ako_annotations as ann_keys
from services.translator import naming, vip
from services.translator.infra import Infra
from services.translator.refs import markers, ref

NETWORK_PROFILE = {
    "TCP": "System-TCP-Proxy",
    "UDP": "System-UDP-Fast-Path",
    "SCTP": "System-SCTP-Proxy",
}
HEALTH_MONITOR = {"TCP": "System-TCP", "UDP": "System-UDP", "SCTP": "System-SCTP"}
L4_PROTOCOL = {"TCP": "PROTOCOL_TCP", "UDP": "PROTOCOL_UDP", "SCTP": "PROTOCOL_SCTP"}
APP_PROFILE_L4 = "System-L4-Application"


@dataclass
class Translation:
    trees: list[VsTree] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # GatewayClass/Gateway status for health to write (Gateway API).
    statuses: dict[ObjRef, GatewayStatus] = field(default_factory=dict)
    # The source's problems come from something deliberately removed (a
    # Service's Gateway was deleted): its trees go, not kept as last good.
    release: bool = False


@dataclass(frozen=True)
class Member:
    ip: str
    port: int
    ready: bool


@dataclass(frozen=True)
class PortPlan:
    """One Service port of the tree: its pool and where its members come from."""

    service: str
    port: dict[str, Any]
    slices: list[dict[str, Any]]
    pool_name: str
    pool_markers: list[dict[str, Any]]

    @property
    def protocol(self) -> str:
        return str(self.port.get("protocol") or "TCP")

    @property
    def number(self) -> int:
        return int(self.port["port"])


@dataclass(frozen=True)
class GroupPlan:
    """A pool group of weighted backend pools (a Gateway route's rule).

    With a ``listener`` (protocol, port) the L4 policy selects the group there;
    without one a datascript selects it (TLS passthrough by server name).
    """

    name: str
    members: tuple[tuple[PortPlan, int], ...]  # (backend pool, ratio)
    markers: list[dict[str, Any]]
    listener: tuple[str, int] | None = None


@dataclass
class L4Plan:
    """Everything one L4 tree is made of; the vsvip and l4policyset are named as the VS (AKO)."""

    vs_name: str
    namespace: str
    sources: tuple[ObjRef, ...]
    vip: dict[str, Any]
    infra: Infra
    ports: list[PortPlan]
    vs_markers: list[dict[str, Any]]
    policy_markers: list[dict[str, Any]]
    traffic_enabled: bool = True
    fqdns: list[str] = field(default_factory=list)
    # (protocol, port) the VS listens on without a pool yet: a Gateway listener no Service has joined.
    listen_only: tuple[tuple[str, int], ...] = ()
    groups: list[GroupPlan] = field(default_factory=list)
    # A vsdatascriptset named as the VS, run on every connection (TLS passthrough on a Gateway).
    datascript: AviObject | None = None


def common_fields(cfg: Config, tenant: str) -> dict[str, Any]:
    return {
        "tenant_ref": ref("tenant", tenant),
        "cloud_ref": ref("cloud", cfg.ControllerSettings.cloudName),
        "created_by": naming.created_by(cfg.cluster),
    }


def endpoints_for_port(port: dict[str, Any], slices: list[dict[str, Any]]) -> tuple[list[Member], int | None]:
    """Members of one Service port: each slice endpoint's first address on the slice port of that name."""
    want_name = port.get("name") or ""
    seen: dict[str, Member] = {}
    target: int | None = None
    for sl in slices:
        addr_type = sl.get("addressType", "IPv4")
        if addr_type not in ("IPv4", "IPv6"):
            continue
        sl_port = next((p for p in sl.get("ports") or [] if (p.get("name") or "") == want_name), None)
        if sl_port is None or sl_port.get("port") is None:
            continue
        if (sl_port.get("protocol") or "TCP") != (port.get("protocol") or "TCP"):
            continue
        target = int(sl_port["port"])
        for ep in sl.get("endpoints") or []:
            addrs = ep.get("addresses") or []
            if not addrs:
                continue
            cond = ep.get("conditions") or {}
            ready = cond.get("ready") is not False and not cond.get("terminating", False)
            ip = addrs[0]
            prev = seen.get(ip)
            # Duplicates across slices (during a slice split): ready wins.
            if prev is None or (ready and not prev.ready):
                seen[ip] = Member(ip, target, ready)
    return sorted(seen.values(), key=lambda m: vip.address_order(m.ip)), target


def check_ports(svc: dict[str, Any], src: ObjRef) -> list[Problem]:
    ports = (svc.get("spec") or {}).get("ports") or []
    if not ports:
        return [Problem(source=src, reason="NoPorts", message="the Service has no ports")]
    return [Problem(source=src, reason="UnsupportedProtocol",
                    message=f"port {p['port']}: protocol {p.get('protocol')} is not supported")
            for p in ports if (p.get("protocol") or "TCP") not in L4_PROTOCOL]


def service_settings(svc: dict[str, Any], src: ObjRef) -> tuple[bool, list[str], list[Problem]]:
    """The per-Service annotations that change the tree: traffic on/off and the VIP's DNS names."""
    ann = ann_keys.of(svc)
    enabled, p1 = ann_keys.traffic_enabled(src, ann)
    names, p2 = ann_keys.fqdns(src, ann)
    return enabled, names, p1 + p2


def pool_object(plan: PortPlan, common: dict[str, Any]) -> AviObject:
    members, target = endpoints_for_port(plan.port, plan.slices)
    tp = plan.port.get("targetPort")
    default_port = target or (tp if isinstance(tp, int) else plan.number)
    return AviObject(type="pool", name=plan.pool_name, body={
        "name": plan.pool_name,
        **common,
        "default_server_port": default_port,
        "servers": [
            {"ip": {"addr": m.ip, "type": vip.ip_type(m.ip)}, "port": m.port, "enabled": m.ready}
            for m in members
        ],
        "health_monitor_refs": [ref("healthmonitor", HEALTH_MONITOR[plan.protocol])],
        "markers": plan.pool_markers,
    })


def metadata(sources: tuple[ObjRef, ...]) -> dict[str, Any]:
    """AKO's service_metadata: the Services served and, for a Gateway's VS, the Gateway."""
    out: dict[str, Any] = {"namespace_svc_name": [f"{s.namespace}/{s.name}" for s in sources if s.kind == "Service"]}
    for s in sources:
        if s.kind == "Gateway":
            out["gateway"] = f"{s.namespace}/{s.name}"
    return out


def vsvip_object(name: str, common: dict[str, Any], cfg: Config, the_vip: dict[str, Any], infra: Infra,
                 fqdns: list[str]) -> AviObject:
    """The vsvip, named as its VS (AKO): the VIP, where it is advertised, its DNS names."""
    vsvip: dict[str, Any] = {
        "name": name,
        **common,
        "vrf_context_ref": ref("vrfcontext", cfg.ControllerSettings.vrfName),
        "vip": [the_vip],
        "markers": markers(cfg.cluster),
    }
    if infra.bgp_peer_labels:
        vsvip["bgp_peer_labels"] = list(infra.bgp_peer_labels)
    if fqdns:
        vsvip["dns_info"] = [{"fqdn": f} for f in fqdns]
    return AviObject(type="vsvip", name=name, body=vsvip)


def _select(kind: str, name: str) -> dict[str, Any]:
    if kind == "pool":
        return {"action_type": "L4_RULE_ACTION_SELECT_POOL", "pool_ref": ref("pool", name)}
    return {"action_type": "L4_RULE_ACTION_SELECT_POOLGROUP", "pool_group_ref": ref("poolgroup", name)}


def build_tree(plan: L4Plan, cfg: Config, tenant: str) -> VsTree:
    cluster = cfg.cluster
    common = common_fields(cfg, tenant)
    name = plan.vs_name

    ports = sorted(plan.ports, key=lambda p: (p.protocol, p.number, p.service))
    members = {m.pool_name: m for g in plan.groups for m, _ in g.members}
    protocols = sorted({p.protocol for p in ports} | {proto for proto, _ in plan.listen_only}
                       | {g.listener[0] for g in plan.groups if g.listener})
    vs_proto = protocols[0] if len(protocols) == 1 else "TCP"
    pools = [pool_object(p, common) for p in ports] + [pool_object(members[n], common) for n in sorted(members)]
    groups = [AviObject(type="poolgroup", name=g.name, body={
        "name": g.name, **common, "markers": g.markers,
        "members": [{"pool_ref": ref("pool", m.pool_name), "ratio": ratio} for m, ratio in g.members]})
        for g in sorted({g.name: g for g in plan.groups}.values(), key=lambda g: g.name)]
    # (protocol, port) -> what the L4 policy selects there
    selects = [(p.protocol, p.number, p.service, _select("pool", p.pool_name)) for p in ports]
    selects += [(g.listener[0], g.listener[1], "", _select("poolgroup", g.name)) for g in plan.groups if g.listener]
    rules: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    def listen(protocol: str, number: int) -> None:
        svc_port: dict[str, Any] = {"port": number, "enable_ssl": False}
        if protocol != vs_proto:
            svc_port["override_network_profile_ref"] = ref("networkprofile", NETWORK_PROFILE[protocol])
        if svc_port not in services:
            services.append(svc_port)

    for idx, (protocol, number, _, select) in enumerate(sorted(selects, key=lambda s: s[:3])):
        rules.append({
            "name": f"{protocol}-{number}",
            "index": idx + 1,
            "enable": True,
            "match": {
                "port": {"match_criteria": "IS_IN", "ports": [number]},
                "protocol": {"match_criteria": "IS_IN", "protocol": L4_PROTOCOL[protocol]},
            },
            "action": {"select_pool": select},
        })
        listen(protocol, number)
    for protocol, number in sorted(plan.listen_only):
        listen(protocol, number)

    # Policy sets are not cloud-scoped objects: the controller refuses a cloud_ref on them.
    policyset = {
        "name": name,
        **{k: v for k, v in common.items() if k != "cloud_ref"},
        "l4_connection_policy": {"rules": rules},
        "markers": plan.policy_markers,
    }
    vs = {
        "name": name,
        **common,
        "vrf_context_ref": ref("vrfcontext", cfg.ControllerSettings.vrfName),
        "se_group_ref": ref("serviceenginegroup", plan.infra.se_group),
        "vsvip_ref": ref("vsvip", name),
        "services": services,
        "application_profile_ref": ref("applicationprofile", APP_PROFILE_L4),
        "network_profile_ref": ref("networkprofile", NETWORK_PROFILE[vs_proto]),
        "l4_policies": [{"index": 1, "l4_policy_set_ref": ref("l4policyset", name)}],
        "traffic_enabled": plan.traffic_enabled,
        "east_west_placement": False,
        "service_metadata": json.dumps(metadata(plan.sources), separators=(",", ":")),
        "markers": plan.vs_markers,
    }
    if plan.datascript is not None:
        vs["vs_datascripts"] = [{"index": 1, "vs_datascript_set_ref": ref("vsdatascriptset", plan.datascript.name)}]
    if plan.infra.enable_rhi:
        vs["enable_rhi"] = True
    objects = (
        vsvip_object(name, common, cfg, plan.vip, plan.infra, plan.fqdns),
        *pools,
        *groups,
        AviObject(type="l4policyset", name=name, body=policyset),
        *((plan.datascript,) if plan.datascript is not None else ()),
        AviObject(type="virtualservice", name=name, body=vs),
    )
    return VsTree.checksummed(cluster=cluster, tenant=tenant, vs_name=name, objects=objects, sources=plan.sources)


def translate_service(
    svc: dict[str, Any], slices: list[dict[str, Any]], cfg: Config, infra: Infra, tenant: str | None = None
) -> Translation:
    """A Service with its own VIP: VS, vsvip and policy set ``<cluster>--<ns>-<svc>``."""
    meta = svc.get("metadata") or {}
    ns, name = meta.get("namespace") or "default", meta["name"]
    src = ObjRef(kind="Service", namespace=ns, name=name)
    cluster = cfg.cluster
    problems = check_ports(svc, src)
    if problems:
        return Translation(problems=problems)
    the_vip, problems = vip.build(svc, infra, src)
    enabled, fqdns, more = service_settings(svc, src)
    problems += more
    if the_vip is None or problems:
        return Translation(problems=problems)
    ports = svc["spec"]["ports"]
    plan = L4Plan(
        vs_name=naming.l4_vs(cluster, ns, name), namespace=ns, sources=(src,), vip=the_vip, infra=infra,
        ports=[PortPlan(name, p, slices, naming.l4_pool(cluster, ns, name, p.get("protocol") or "TCP", int(p["port"])),
                        markers(cluster, Namespace=ns, ServiceName=name, Port=str(p["port"]),
                                Protocol=p.get("protocol") or "TCP"))
               for p in ports],
        vs_markers=markers(cluster, Namespace=ns, ServiceName=name),
        policy_markers=markers(cluster, Namespace=ns, ServiceName=name,
                               Protocol=",".join(sorted({p.get("protocol") or "TCP" for p in ports}))),
        traffic_enabled=enabled, fqdns=fqdns,
    )
    return Translation(trees=[build_tree(plan, cfg, tenant or cfg.tenant)])
