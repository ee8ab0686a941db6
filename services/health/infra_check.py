"""Is an AviInfraSetting usable on this controller? (pure, given a way to look objects up)

The checks AKO makes (``shared/research/ako.md`` §4): the Service Engine group
exists, every VIP network exists and each CIDR given is one of that network's
configured subnets, BGP peer labels need route health injection and must be
labels of BGP peers in the VRF. The answer is ``Accepted`` or ``Rejected`` with
every reason found, so a user fixes them all at once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ACCEPTED = "Accepted"
REJECTED = "Rejected"

Lookup = Callable[[str, str], dict[str, Any] | None]  # (object type, name) -> object or None


@dataclass(frozen=True)
class Verdict:
    status: str
    error: str = ""

    def as_status(self) -> dict[str, str]:
        return {"status": self.status, "error": self.error}


def _subnets(network: dict[str, Any]) -> set[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = set()
    for s in network.get("configured_subnets") or []:
        p = s.get("prefix") or {}
        try:
            out.add(ipaddress.ip_network(f"{p['ip_addr']['addr']}/{p['mask']}", strict=False))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _check_network(n: dict[str, Any], lookup: Lookup) -> list[str]:
    name = n.get("networkName") or ""
    if not name:
        return []  # by UUID: the reference itself fails on the controller if wrong
    net = lookup("network", name)
    if net is None:
        return [f"network {name} not found"]
    errors = []
    have = _subnets(net)
    for field in ("cidr", "v6cidr"):
        if not n.get(field):
            continue
        try:
            want = ipaddress.ip_network(n[field], strict=False)
        except ValueError:
            errors.append(f"{field} {n[field]} of network {name} is not a CIDR")
            continue
        if want not in have:
            errors.append(f"{field} {n[field]} is not a subnet of network {name} "
                          f"(it has {', '.join(sorted(map(str, have))) or 'none'})")
    return errors


def check(spec: dict[str, Any], lookup: Lookup, vrf_name: str) -> Verdict:
    errors: list[str] = []
    se_group = (spec.get("seGroup") or {}).get("name")
    if se_group and lookup("serviceenginegroup", se_group) is None:
        errors.append(f"Service Engine group {se_group} not found")
    network = spec.get("network") or {}
    for n in network.get("vipNetworks") or []:
        errors += _check_network(n, lookup)
    labels = network.get("bgpPeerLabels") or []
    if labels and not network.get("enableRhi"):
        errors.append("bgpPeerLabels need enableRhi: true")
    elif labels:
        vrf = lookup("vrfcontext", vrf_name)
        peers = ((vrf or {}).get("bgp_profile") or {}).get("peers") or []
        known = {p.get("label") for p in peers if p.get("label")}
        missing = [lab for lab in labels if lab not in known]
        if missing:
            errors.append(f"BGP peer label(s) {', '.join(missing)} not configured on any BGP peer of VRF {vrf_name}")
    return Verdict(REJECTED, "; ".join(errors)) if errors else Verdict(ACCEPTED)
