"""The ``vip[0]`` of a vsvip: which network, which IP families, allocated or asked for.

The network is the first VIP network of the Service's infrastructure
(AviInfraSetting or cluster defaults). ``spec.ipFamilies`` and
``spec.ipFamilyPolicy`` pick IPv4, IPv6 or both; a family the network has no
CIDR for is a problem, never a silent downgrade. A static VIP (see
:func:`ann_keys.static_addresses`) decides the families itself and must
lie inside the network's CIDR of its family.
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache
from typing import Any

from services.common.config import VipNetwork
from services.common.contracts import ObjRef, Problem
from services.translator import ako_annotations as ann_keys
from services.translator.infra import Infra
from services.translator.refs import ref

IpAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
FAMILY_OF_VERSION = {4: "IPv4", 6: "IPv6"}


def families(spec: dict[str, Any]) -> list[str]:
    fams = [f for f in spec.get("ipFamilies") or [] if f in ("IPv4", "IPv6")]
    policy = spec.get("ipFamilyPolicy") or "SingleStack"
    if not fams:
        fams = ["IPv4"]
    if policy == "SingleStack":
        fams = fams[:1]
    return fams


# Parsing with ipaddress costs microseconds, paid per member per translation; the same
# addresses and the few configured CIDRs come back on every event. Invalid input is not
# cached (the ValueError is raised again). Bounded: pod addresses churn.
@lru_cache(maxsize=1 << 16)
def address(addr: str) -> IpAddr:
    return ipaddress.ip_address(addr)


@lru_cache(maxsize=256)
def network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=False)


def prefix(cidr: str) -> dict[str, Any]:
    net = network(cidr)
    return {"ip_addr": {"addr": str(net.network_address), "type": "V6" if net.version == 6 else "V4"},
            "mask": net.prefixlen}


def address_order(addr: str) -> tuple[int, bytes]:
    """An address's sort key, (version, packed bytes): ipaddress's order without building its object.

    A pool's members are sorted on every translation, mostly by addresses not
    seen before (an initial list); ``inet_pton`` parses one in a tenth of the
    time. What it refuses goes to ipaddress: a scoped IPv6 address, or no
    address at all (``ValueError``, as before).
    """
    for version, family in ((4, socket.AF_INET), (6, socket.AF_INET6)):
        try:
            return version, socket.inet_pton(family, addr)
        except OSError:
            pass
    a = address(addr)
    return a.version, a.packed


def ip_type(addr: str) -> str:
    return "V6" if address_order(addr)[0] == 6 else "V4"


def _network_ref(net: VipNetwork) -> str:
    return ref("network", net.networkName) if net.networkName else f"/api/network/{net.networkUUID}"


def _cidr_of(net: VipNetwork, family: str) -> str:
    return net.cidr if family == "IPv4" else net.v6cidr


def build(svc: dict[str, Any], infra: Infra, src: ObjRef) -> tuple[dict[str, Any] | None, list[Problem]]:
    static, problems = ann_keys.static_addresses(src, svc)
    if problems:
        return None, problems
    return build_for(static, families(svc.get("spec") or {}), infra, src)


def build_for(static: list[IpAddr], wanted_families: list[str], infra: Infra,
              src: ObjRef) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The vip for static addresses (which decide the families) or, without any, for ``wanted_families``."""
    if not infra.vip_networks:
        where = f"AviInfraSetting {infra.name}" if infra.name else "NetworkSettings.vipNetworkList"
        return None, [Problem(source=src, reason="NoVipNetwork", message=f"no VIP network configured ({where})")]
    net = infra.vip_networks[0]
    netname = net.networkName or net.networkUUID
    fams = [FAMILY_OF_VERSION[a.version] for a in static] if static else wanted_families
    # A network given without any CIDR lets the controller pick its subnets.
    check = bool(net.cidr or net.v6cidr)
    subnet: dict[str, Any] = {"network_ref": _network_ref(net)}
    for fam in fams:
        cidr = _cidr_of(net, fam)
        if check and not cidr:
            return None, [Problem(source=src, reason="IPFamilyUnavailable",
                                  message=f"VIP network {netname} has no {fam} CIDR for an {fam} VIP")]
        if cidr:
            subnet["subnet" if fam == "IPv4" else "subnet6"] = prefix(cidr)
    vip: dict[str, Any] = {"vip_id": "0", "ipam_network_subnet": subnet}
    if static:
        for addr in static:
            cidr = _cidr_of(net, FAMILY_OF_VERSION[addr.version])
            if cidr and addr not in network(cidr):
                return None, [Problem(source=src, reason="LoadBalancerIPOutsideNetwork",
                                      message=f"{addr} is not in {cidr} of VIP network {netname}")]
            key = "ip6_address" if addr.version == 6 else "ip_address"
            vip[key] = {"addr": str(addr), "type": ip_type(str(addr))}
        vip["auto_allocate_ip"] = False
        return vip, []
    want4, want6 = "IPv4" in fams, "IPv6" in fams
    vip["auto_allocate_ip"] = True
    vip["auto_allocate_ip_type"] = "V4_V6" if want4 and want6 else ("V6_ONLY" if want6 else "V4_ONLY")
    return vip, []
