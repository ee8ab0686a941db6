"""A Service of type LoadBalancer → one L4 virtual service tree (pure functions).

The tree holds, in dependency order, the vsvip, one pool per Service port,
the l4policyset that maps ports to pools, and the virtualservice — the
objects and names AKO makes (``docs/architecture.md``, "The L4 tree").
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

from services.common.config import Config
from services.common.contracts import AviObject, ObjRef, Problem, VsTree
from services.translator import naming

ANN_LB_IP = "ako.vmware.com/load-balancer-ip"

NETWORK_PROFILE = {
    "TCP": "System-TCP-Proxy",
    "UDP": "System-UDP-Fast-Path",
    "SCTP": "System-SCTP-Proxy",
}
HEALTH_MONITOR = {"TCP": "System-TCP", "UDP": "System-UDP", "SCTP": "System-SCTP"}
L4_PROTOCOL = {"TCP": "PROTOCOL_TCP", "UDP": "PROTOCOL_UDP", "SCTP": "PROTOCOL_SCTP"}
APP_PROFILE_L4 = "System-L4-Application"


def ref(obj_type: str, name: str) -> str:
    """A reference by name, a form every controller version accepts."""
    return f"/api/{obj_type}/?name={name}"


def markers(cluster: str, **extra: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"key": "clustername", "values": [cluster]}]
    out += [{"key": k, "values": [v]} for k, v in extra.items() if v]
    return out


@dataclass
class Translation:
    trees: list[VsTree] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class Member:
    ip: str
    port: int
    ready: bool


def handles(svc: dict[str, Any], cfg: Config) -> bool:
    """Is this a LoadBalancer Service for us (AKO's class, or no class when we are the default)?"""
    spec = svc.get("spec") or {}
    if spec.get("type") != "LoadBalancer":
        return False
    lb_class = spec.get("loadBalancerClass")
    if lb_class:
        return bool(lb_class == cfg.L4Settings.loadBalancerClass)
    return cfg.L4Settings.defaultLBController


def _common(cfg: Config, tenant: str) -> dict[str, Any]:
    return {
        "tenant_ref": ref("tenant", tenant),
        "cloud_ref": ref("cloud", cfg.ControllerSettings.cloudName),
        "created_by": naming.created_by(cfg.cluster),
    }


def _ip_type(addr: str) -> str:
    return "V6" if ipaddress.ip_address(addr).version == 6 else "V4"


def _prefix(cidr: str) -> dict[str, Any]:
    net = ipaddress.ip_network(cidr, strict=False)
    return {"ip_addr": {"addr": str(net.network_address), "type": "V6" if net.version == 6 else "V4"},
            "mask": net.prefixlen}


def _families(spec: dict[str, Any]) -> list[str]:
    fams = [f for f in spec.get("ipFamilies") or [] if f in ("IPv4", "IPv6")]
    policy = spec.get("ipFamilyPolicy") or "SingleStack"
    if not fams:
        fams = ["IPv4"]
    if policy == "SingleStack":
        fams = fams[:1]
    return fams


def build_vip(svc: dict[str, Any], cfg: Config, src: ObjRef) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The ``vip[0]`` of the vsvip: static address if asked, otherwise auto-allocated."""
    spec = svc.get("spec") or {}
    meta = svc.get("metadata") or {}
    nets = cfg.NetworkSettings.vipNetworkList
    if not nets:
        return None, [Problem(source=src, reason="NoVipNetwork",
                              message="no VIP network configured (NetworkSettings.vipNetworkList)")]
    net = nets[0]
    fams = _families(spec)
    vip: dict[str, Any] = {"vip_id": "0"}
    subnet: dict[str, Any] = {"network_ref": ref("network", net.networkName)}
    want4, want6 = "IPv4" in fams, "IPv6" in fams
    if want4 and not net.cidr:
        return None, [Problem(source=src, reason="IPFamilyUnavailable",
                              message=f"VIP network {net.networkName} has no IPv4 CIDR for an IPv4 VIP")]
    if want6 and not net.v6cidr:
        return None, [Problem(source=src, reason="IPFamilyUnavailable",
                              message=f"VIP network {net.networkName} has no IPv6 CIDR for an IPv6 VIP")]
    if want4:
        subnet["subnet"] = _prefix(net.cidr)
    if want6:
        subnet["subnet6"] = _prefix(net.v6cidr)
    vip["ipam_network_subnet"] = subnet

    static = spec.get("loadBalancerIP") or (meta.get("annotations") or {}).get(ANN_LB_IP) or ""
    if static:
        try:
            kind = _ip_type(static)
        except ValueError:
            return None, [Problem(source=src, reason="InvalidLoadBalancerIP",
                                  message=f"{static!r} is not an IP address")]
        vip["auto_allocate_ip"] = False
        vip["ip6_address" if kind == "V6" else "ip_address"] = {"addr": static, "type": kind}
        return vip, []
    vip["auto_allocate_ip"] = True
    vip["auto_allocate_ip_type"] = "V4_V6" if want4 and want6 else ("V6_ONLY" if want6 else "V4_ONLY")
    return vip, []


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
    return sorted(seen.values(), key=lambda m: (ipaddress.ip_address(m.ip).version, ipaddress.ip_address(m.ip))), target


def translate_service(
    svc: dict[str, Any], slices: list[dict[str, Any]], cfg: Config, tenant: str | None = None
) -> Translation:
    meta = svc.get("metadata") or {}
    spec = svc.get("spec") or {}
    ns, name = meta.get("namespace") or "default", meta["name"]
    src = ObjRef(kind="Service", namespace=ns, name=name)
    tenant = tenant or cfg.tenant
    cluster = cfg.cluster
    out = Translation()
    ports = spec.get("ports") or []
    if not ports:
        out.problems.append(Problem(source=src, reason="NoPorts", message="the Service has no ports"))
        return out
    vip, problems = build_vip(svc, cfg, src)
    if vip is None:
        out.problems += problems
        return out

    common = _common(cfg, tenant)
    vs_name = naming.l4_vs(cluster, ns, name)
    vsvip_name = naming.l4_vsvip(cluster, ns, name)
    vsvip: dict[str, Any] = {
        "name": vsvip_name,
        **common,
        "vrf_context_ref": ref("vrfcontext", cfg.ControllerSettings.vrfName),
        "vip": [vip],
        "markers": markers(cluster),
    }
    if cfg.NetworkSettings.bgpPeerLabels:
        vsvip["bgp_peer_labels"] = sorted(cfg.NetworkSettings.bgpPeerLabels)

    pools: list[AviObject] = []
    rules: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    protocols = sorted({(p.get("protocol") or "TCP") for p in ports})
    vs_proto = protocols[0] if len(protocols) == 1 else "TCP"
    for idx, port in enumerate(sorted(ports, key=lambda p: ((p.get("protocol") or "TCP"), int(p["port"])))):
        proto = port.get("protocol") or "TCP"
        if proto not in L4_PROTOCOL:
            out.problems.append(Problem(source=src, reason="UnsupportedProtocol",
                                        message=f"port {port['port']}: protocol {proto} is not supported"))
            return Translation(problems=out.problems)
        number = int(port["port"])
        members, target = endpoints_for_port(port, slices)
        tp = port.get("targetPort")
        default_port = target or (tp if isinstance(tp, int) else number)
        pool_name = naming.l4_pool(cluster, ns, name, proto, number)
        pools.append(AviObject(type="pool", name=pool_name, body={
            "name": pool_name,
            **common,
            "default_server_port": default_port,
            "servers": [
                {"ip": {"addr": m.ip, "type": _ip_type(m.ip)}, "port": m.port, "enabled": m.ready}
                for m in members
            ],
            "health_monitor_refs": [ref("healthmonitor", HEALTH_MONITOR[proto])],
            "markers": markers(cluster, Namespace=ns, ServiceName=name, Port=str(number), Protocol=proto),
        }))
        rules.append({
            "name": f"{proto}-{number}",
            "index": idx + 1,
            "enable": True,
            "match": {
                "port": {"match_criteria": "IS_IN", "ports": [number]},
                "protocol": {"match_criteria": "IS_IN", "protocol": L4_PROTOCOL[proto]},
            },
            "action": {"select_pool": {"action_type": "L4_RULE_ACTION_SELECT_POOL",
                                       "pool_ref": ref("pool", pool_name)}},
        })
        svc_port: dict[str, Any] = {"port": number, "enable_ssl": False}
        if proto != vs_proto:
            svc_port["override_network_profile_ref"] = ref("networkprofile", NETWORK_PROFILE[proto])
        if svc_port not in services:
            services.append(svc_port)

    policy_name = naming.l4_policyset(cluster, ns, name)
    # Policy sets are not cloud-scoped objects: the controller refuses a cloud_ref on them.
    policyset = {
        "name": policy_name,
        **{k: v for k, v in common.items() if k != "cloud_ref"},
        "l4_connection_policy": {"rules": rules},
        "markers": markers(cluster, Namespace=ns, ServiceName=name, Protocol=",".join(protocols)),
    }
    vs = {
        "name": vs_name,
        **common,
        "vrf_context_ref": ref("vrfcontext", cfg.ControllerSettings.vrfName),
        "se_group_ref": ref("serviceenginegroup", cfg.ControllerSettings.serviceEngineGroupName),
        "vsvip_ref": ref("vsvip", vsvip_name),
        "services": services,
        "application_profile_ref": ref("applicationprofile", APP_PROFILE_L4),
        "network_profile_ref": ref("networkprofile", NETWORK_PROFILE[vs_proto]),
        "l4_policies": [{"index": 1, "l4_policy_set_ref": ref("l4policyset", policy_name)}],
        "traffic_enabled": True,
        "east_west_placement": False,
        "service_metadata": json.dumps({"namespace_svc_name": [f"{ns}/{name}"]}, separators=(",", ":")),
        "markers": markers(cluster, Namespace=ns, ServiceName=name),
    }
    if cfg.NetworkSettings.enableRHI:
        vs["enable_rhi"] = True
    objects = (
        AviObject(type="vsvip", name=vsvip_name, body=vsvip),
        *pools,
        AviObject(type="l4policyset", name=policy_name, body=policyset),
        AviObject(type="virtualservice", name=vs_name, body=vs),
    )
    tree = VsTree(cluster=cluster, tenant=tenant, vs_name=vs_name, objects=objects, sources=(src,))
    out.trees.append(tree.with_checksum())
    return out
