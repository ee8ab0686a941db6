"""Services sharing one VIP (``ako.vmware.com/enable-shared-vip: <key>``): one tree for the group.

Services of one namespace with the same key become one virtual service
``<cluster>--<ns>-<key>`` with one vsvip, one service port per (port,
protocol) of every member and one pool per member port. Members are taken
oldest first (creation time, then name): the oldest valid member decides the
group's AviInfraSetting, static VIP and ``disable-traffic``; a later member
that claims a (port, protocol) already taken, or asks for another
AviInfraSetting or static VIP, is left out with a problem naming the member
it clashes with, and the rest of the group keeps working. The VIP belongs to
the vsvip, so it survives members joining and leaving while one remains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.common.config import Config
from services.common.contracts import ObjRef, Problem
from services.translator import ako_annotations as ann_keys
from services.translator import l4, naming, vip
from services.translator.infra import Infra
from services.translator.refs import markers

# name of the AviInfraSetting a member asks for -> (infra, problems), resolved by the caller.
InfraLookup = Callable[[str, ObjRef], tuple[Infra | None, list[Problem]]]


@dataclass(frozen=True)
class GroupMember:
    svc: dict[str, Any]
    slices: list[dict[str, Any]]
    infra_name: str  # the AviInfraSetting it asks for ("" = cluster defaults)

    @property
    def ref(self) -> ObjRef:
        m = self.svc["metadata"]
        return ObjRef(kind="Service", namespace=m.get("namespace") or "default", name=m["name"])

    def order(self) -> tuple[str, str]:
        m = self.svc["metadata"]
        return (str(m.get("creationTimestamp") or ""), str(m["name"]))


def _static(m: GroupMember) -> tuple[str, ...]:
    addrs, _ = ann_keys.static_addresses(m.ref, m.svc)
    return tuple(sorted(str(a) for a in addrs))


def translate_group(namespace: str, key: str, members: list[GroupMember], cfg: Config,
                    lookup: InfraLookup, tenant: str) -> l4.Translation:
    """The group's tree and every member's problems (each member reports its own)."""
    cluster = cfg.cluster
    problems: list[Problem] = []
    accepted: list[GroupMember] = []
    taken: dict[tuple[str, int], str] = {}
    fqdns: list[str] = []
    for m in sorted(members, key=GroupMember.order):
        src = m.ref
        own = l4.check_ports(m.svc, src)
        _, names, more = l4.service_settings(m.svc, src)
        _, bad_ip = ann_keys.static_addresses(src, m.svc)
        own += more + bad_ip
        if not own and accepted:
            leader = accepted[0]
            if m.infra_name != leader.infra_name:
                own.append(Problem(source=src, reason="SharedVipConflict", message=(
                    f"shared VIP {key}: asks for AviInfraSetting {m.infra_name or '(cluster default)'}, "
                    f"Service {leader.ref.name} uses {leader.infra_name or '(cluster default)'}")))
            elif _static(m) != _static(leader):
                own.append(Problem(source=src, reason="SharedVipConflict", message=(
                    f"shared VIP {key}: asks for VIP {', '.join(_static(m)) or '(allocated)'}, "
                    f"Service {leader.ref.name} uses {', '.join(_static(leader)) or '(allocated)'}")))
        if not own:
            for p in m.svc["spec"]["ports"]:
                pk = (p.get("protocol") or "TCP", int(p["port"]))
                if pk in taken:
                    own.append(Problem(source=src, reason="SharedVipPortConflict", message=(
                        f"shared VIP {key}: port {pk[1]}/{pk[0]} is already used by Service {taken[pk]}")))
        if own:
            problems += own
            continue
        for p in m.svc["spec"]["ports"]:
            taken[(p.get("protocol") or "TCP", int(p["port"]))] = src.name
        accepted.append(m)
        fqdns += [n for n in names if n not in fqdns]
    if not accepted:
        return l4.Translation(problems=problems)

    leader = accepted[0]
    infra, bad = lookup(leader.infra_name, leader.ref)
    the_vip: dict[str, Any] | None = None
    if infra is not None:
        the_vip, bad = vip.build(leader.svc, infra, leader.ref)
    if infra is None or the_vip is None:
        # The group cannot be built: every member says why.
        why = "; ".join(p.message for p in bad)
        problems += [Problem(source=m.ref, reason=bad[0].reason if bad else "SharedVipInvalid",
                             message=f"shared VIP {key}: {why}") for m in accepted]
        return l4.Translation(problems=problems)
    enabled, _ = ann_keys.traffic_enabled(leader.ref, ann_keys.of(leader.svc))
    ports = [
        l4.PortPlan(m.ref.name, p, m.slices,
                    naming.shared_pool(cluster, namespace, m.ref.name, key, p.get("protocol") or "TCP", int(p["port"])),
                    markers(cluster, Namespace=namespace, ServiceName=m.ref.name, Port=str(p["port"]),
                            Protocol=p.get("protocol") or "TCP", GatewayName=key))
        for m in accepted for p in m.svc["spec"]["ports"]
    ]
    group_markers = markers(cluster, Namespace=namespace, GatewayName=key)
    plan = l4.L4Plan(
        vs_name=naming.shared_vs(cluster, namespace, key), namespace=namespace,
        sources=tuple(sorted((m.ref for m in accepted), key=lambda r: r.name)), vip=the_vip, infra=infra,
        ports=ports, vs_markers=group_markers, policy_markers=group_markers, traffic_enabled=enabled, fqdns=fqdns,
    )
    return l4.Translation(trees=[l4.build_tree(plan, cfg, tenant)], problems=problems)
