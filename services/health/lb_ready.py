"""Does the Service's load balancer serve? Condition ``albus.io/LoadBalancerReady``, from the controller's runtime.

Pure. ``albus.io/LoadBalancerProgrammed`` (``conditions.py``) says whether
the configuration reached the controller; this one says whether the
controller serves with it, from its runtime view of the Service's virtual
services and their pools' members (``runtime_view``), each member named by
its pod (``endpoint_pods``). Two conditions, as Gateway API keeps
``Programmed`` apart from ``Ready``/health: a Service can be programmed and
have no healthy member.

=======================  =======  =====================================================
reason                   status   when
=======================  =======  =====================================================
``Programmed``           True     programmed, VIP known, every enabled member up
``PartiallyHealthy``     True     some members up, some down (the down ones named), or
                                  a pool with no member at all (a port whose endpoints
                                  have no port of its name) beside pools that serve
``NoHealthyMembers``     False    no member up (or none at all)
``VirtualServiceDown``   False    members up but the virtual service is down/disabled
``HealthCheckPending``   Unknown  not in the runtime yet, or members not yet checked
``VipPending``,          False    not programmed: the Programmed condition's reason
``ControllerError``, …            and message, repeated
=======================  =======  =====================================================

The down members are listed at the end of the message (``down: ns/pod,
ip:port``): the Service's status itself records which members were down,
so member Events are decided by comparing it with the runtime (level-based,
nothing announced twice after a restart).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.health.conditions import Condition
from services.health.endpoint_pods import Endpoint
from services.health.runtime_view import DISABLED_STATES, PENDING_STATES, UP, RuntimeView

READY_CONDITION_TYPE = "albus.io/LoadBalancerReady"

REASON_ALL_UP = "Programmed"
REASON_PARTIALLY_HEALTHY = "PartiallyHealthy"
REASON_NO_HEALTHY_MEMBERS = "NoHealthyMembers"
REASON_VS_DOWN = "VirtualServiceDown"
REASON_PENDING = "HealthCheckPending"
DOWN_REASONS = frozenset({REASON_NO_HEALTHY_MEMBERS, REASON_VS_DOWN})

_DOWN_PREFIX = "; down: "
_LISTED_MAX = 50  # members named in the message; more are counted


@dataclass(frozen=True)
class Readiness:
    condition: Condition | None
    down: dict[str, str] = field(default_factory=dict)  # member id -> why (pod "ns/name" or "ip:port")
    up: frozenset[str] = frozenset()  # member ids up
    up_pods: frozenset[str] = frozenset()  # pods ("ns/name") with a member up
    # Pools whose members must be read although all up: a pod of the Service is not ready (it may be
    # waiting for its readiness gate), and only the member list says whether its member is one of those up.
    watch_members: frozenset[str] = frozenset()


def member_id(ip: str, port: int, eps: dict[str, Endpoint]) -> str:
    ep = eps.get(ip)
    return ep.pod if ep is not None and ep.pod else f"{ip}:{port}"


def listed_down(message: str) -> set[str]:
    """The members a Ready condition's message says are down."""
    _, sep, tail = message.rpartition(_DOWN_PREFIX)
    if not sep:
        return set()
    return {m for m in tail.split(", ") if m and " more" not in m}


def readiness(programmed: Condition | None, vs_names: tuple[str, ...], view: RuntimeView | None,
              eps: dict[str, Endpoint]) -> Readiness:
    if view is None or programmed is None:
        return Readiness(None)  # no runtime configured, or albus has nothing to say
    if not programmed.ok:
        return Readiness(Condition("False", programmed.reason, programmed.message))
    missing = [n for n in vs_names if n not in view.vss]
    if not view.loaded or missing:
        return Readiness(Condition("Unknown", REASON_PENDING,
                                   f"virtualservice {', '.join(missing or vs_names)} not in the controller's "
                                   "runtime yet"))
    up = enabled = pending = 0
    down: dict[str, str] = {}
    up_ids: set[str] = set()
    up_pods: set[str] = set()
    waiting = any(e.pod and not e.ready for e in eps.values())
    watch: set[str] = set()
    empty: list[str] = []  # pools with no member: their port refuses every connection
    for name in vs_names:
        for pool in view.pools_of(name):
            if waiting:
                watch.add(pool.summary.uuid)
            if pool.summary.servers == 0:
                empty.append(pool.summary.name)
                continue
            if pool.members is None:  # every member up: the counts say so, no need to know which
                up += pool.summary.up
                enabled += pool.summary.servers
                pods = {e.pod for e in eps.values() if e.pod}
                up_ids |= pods
                # The counts may lag the endpoints (a new pod's member not on the controller yet) or
                # count another pod's member: they vouch only for Ready pods, whose gates are open
                # anyway. A not-ready pod's member is known up only from the member list (watch).
                up_pods |= {e.pod for e in eps.values() if e.pod and e.ready}
                continue
            for m in pool.members:
                if m.state in DISABLED_STATES:
                    continue
                enabled += 1
                mid = member_id(m.ip, m.port, eps)
                if m.state == UP:
                    up += 1
                    up_ids.add(mid)
                    ep = eps.get(m.ip)
                    if ep is not None and ep.pod:
                        up_pods.add(ep.pod)
                elif m.state in PENDING_STATES:
                    pending += 1
                else:
                    where = f"pool member {m.ip}:{m.port} of pool {pool.summary.name}"
                    down[mid] = f"{where}: {m.state}" + (f" ({m.reason})" if m.reason else "")
    down = {k: down[k] for k in sorted(down) if k not in up_ids}  # a pod up in another pool serves
    counts = f"{up} of {enabled} members up" + (f", {pending} being checked" if pending else "")
    if empty:  # before the down list, which listed_down reads from the end
        counts += f", no member in pool {', '.join(sorted(empty))}"
    listed = list(down)[:_LISTED_MAX]
    tail = (_DOWN_PREFIX + ", ".join(listed) + (f", {len(down) - len(listed)} more" if len(down) > len(listed)
                                                else "")) if down else ""
    # A virtual service still being checked is not down: its state is read a moment apart from its
    # pools' members (one sweep is several calls), so it may lag them.
    vs_down = [view.vss[n] for n in vs_names if view.vss[n].state not in PENDING_STATES | {UP}]
    if up == 0 and (down or enabled == 0):
        cond = Condition("False", REASON_NO_HEALTHY_MEMBERS, f"virtualservice {', '.join(vs_names)}: {counts}{tail}")
    elif up == 0:
        cond = Condition("Unknown", REASON_PENDING, f"virtualservice {', '.join(vs_names)}: {counts}")
    elif vs_down:
        why = "; ".join(f"virtualservice {v.name} is {v.state}" + (f" ({v.reason})" if v.reason else "")
                        for v in vs_down)
        cond = Condition("False", REASON_VS_DOWN, f"{why}: {counts}{tail}")
    elif down or empty:
        cond = Condition("True", REASON_PARTIALLY_HEALTHY, f"virtualservice {', '.join(vs_names)}: {counts}{tail}")
    else:
        cond = Condition("True", REASON_ALL_UP, f"virtualservice {', '.join(vs_names)}: {counts}")
    return Readiness(cond, down, frozenset(up_ids), frozenset(up_pods), frozenset(watch))
