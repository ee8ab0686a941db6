"""AKO's per-Service annotations, by the names AKO users already write (``shared/research/ako.md`` §3).

Parsing only: each reader returns the value or a :class:`Problem` naming the
annotation, so a malformed value is reported on the Service, never guessed.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from services.common.contracts import ObjRef, Problem, Severity

INFRA_SETTING = "aviinfrasetting.ako.vmware.com/name"
SHARED_VIP = "ako.vmware.com/enable-shared-vip"
LOAD_BALANCER_IP = "ako.vmware.com/load-balancer-ip"
DISABLE_TRAFFIC = "ako.vmware.com/disable-traffic"
EXTERNAL_DNS_HOSTNAME = "external-dns.alpha.kubernetes.io/hostname"

# Every key AKO reads or writes on a Service; anything else in AKO's domain is
# most likely a typo, and a typo that silently does nothing is worse than a warning.
KNOWN_AKO_KEYS = frozenset({
    INFRA_SETTING, SHARED_VIP, LOAD_BALANCER_IP, DISABLE_TRAFFIC,
    "ako.vmware.com/l4rule", "ako.vmware.com/application-profile",
    "skipnodeport.ako.vmware.com/enabled", "nodeportlocal.antrea.io/enabled",
    # written by AKO itself
    "ako.vmware.com/host-fqdn-vs-uuid-map", "ako.vmware.com/controller-cluster-uuid",
    "ako.vmware.com/tenant-name", "ako.vmware.com/vs-uuid",
})
AKO_DOMAIN = "ako.vmware.com"

# RFC 1123 DNS names, as external-dns accepts them.
_FQDN_MAX = 253


def of(obj: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (((obj or {}).get("metadata") or {}).get("annotations") or {}).items()}


def unknown_keys(annotations: dict[str, str]) -> list[str]:
    """Keys in AKO's annotation domain that AKO does not define."""
    out = []
    for key in annotations:
        domain = key.split("/", 1)[0] if "/" in key else ""
        if (domain == AKO_DOMAIN or domain.endswith("." + AKO_DOMAIN)) and key not in KNOWN_AKO_KEYS:
            out.append(key)
    return sorted(out)


def unknown_key_warnings(src: ObjRef, annotations: dict[str, str]) -> list[Problem]:
    return [Problem(source=src, reason="UnknownAnnotation", severity=Severity.WARNING,
                    message=f"annotation {key} is not an AKO annotation and is ignored")
            for key in unknown_keys(annotations)]


def static_addresses(src: ObjRef, svc: dict[str, Any]) -> tuple[list[ipaddress.IPv4Address | ipaddress.IPv6Address],
                                                                list[Problem]]:
    """The VIPs asked for: ``spec.loadBalancerIP`` wins over the annotation (AKO's order).

    Either may hold one IPv4 and one IPv6 address, comma-separated, for a dual-stack Service.
    """
    spec = svc.get("spec") or {}
    field, raw = ("spec.loadBalancerIP", spec.get("loadBalancerIP") or "")
    if not raw:
        field, raw = (f"annotation {LOAD_BALANCER_IP}", of(svc).get(LOAD_BALANCER_IP, ""))
    out: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for part in (p.strip() for p in str(raw).split(",")):
        if not part:
            continue
        try:
            out.append(ipaddress.ip_address(part))
        except ValueError:
            return [], [Problem(source=src, reason="InvalidLoadBalancerIP",
                                message=f"{field}: {part!r} is not an IP address")]
    if len({a.version for a in out}) != len(out):
        return [], [Problem(source=src, reason="InvalidLoadBalancerIP",
                            message=f"{field}: at most one IPv4 and one IPv6 address, got {raw!r}")]
    return out, []


def traffic_enabled(src: ObjRef, annotations: dict[str, str]) -> tuple[bool, list[Problem]]:
    raw = annotations.get(DISABLE_TRAFFIC)
    if raw is None:
        return True, []
    if raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() != "true", []
    return True, [Problem(source=src, reason="InvalidAnnotation",
                          message=f"annotation {DISABLE_TRAFFIC}: {raw!r} is not \"true\" or \"false\"")]


def fqdns(src: ObjRef, annotations: dict[str, str]) -> tuple[list[str], list[Problem]]:
    """external-dns's hostname annotation: comma-separated DNS names for the VIP's DNS record."""
    raw = annotations.get(EXTERNAL_DNS_HOSTNAME)
    if raw is None:
        return [], []
    names = [n.strip().rstrip(".").lower() for n in raw.split(",") if n.strip()]
    bad = [n for n in names if not _is_dns_name(n)]
    if bad or not names:
        return [], [Problem(source=src, reason="InvalidAnnotation",
                            message=f"annotation {EXTERNAL_DNS_HOSTNAME}: {', '.join(bad) or repr(raw)} "
                                    "is not a DNS name")]
    return names, []


def _is_dns_name(name: str) -> bool:
    if not name or len(name) > _FQDN_MAX:
        return False
    for label in name.split("."):
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not all(c.isascii() and (c.isalnum() or c == "-") for c in label):
            return False
    return True


def shared_vip_key(src: ObjRef, annotations: dict[str, str]) -> tuple[str | None, list[Problem]]:
    """The shared-VIP group key, None when the Service has its own VIP."""
    if SHARED_VIP not in annotations:
        return None, []
    key = annotations[SHARED_VIP].strip()
    if not key:
        return None, [Problem(source=src, reason="InvalidAnnotation",
                              message=f"annotation {SHARED_VIP} is empty: name the group of Services to share")]
    return key, []
