"""From a Service as it is and its :class:`Desired` status, the writes to make.

:func:`plan` is pure. It compares only what albus owns: the IPs of
``status.loadBalancer.ingress`` (the API server may add fields such as
``ipMode``) and albus's own condition. Events are decided by comparing the
condition the Service carries with the one it should carry, never by what
messages arrived, so a replay after a restart announces nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.health import conditions
from services.health.desired import Desired, vips_said, vss_said
from services.health.lb_ready import DOWN_REASONS, READY_CONDITION_TYPE, Readiness, listed_down

# albus's condition types on a Service (LoadBalancerProgrammed, LoadBalancerReady).
ALBUS_CONDITION_PREFIX = "albus.io/"


@dataclass(frozen=True)
class EventSpec:
    type: str  # Normal | Warning
    reason: str
    action: str
    note: str


@dataclass(frozen=True)
class Plan:
    patch: dict[str, Any] | None = None  # merge patch for the status subresource
    events: list[EventSpec] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.patch is None and not self.events


def current_ips(service: dict[str, Any]) -> list[str]:
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [str(i.get("ip") or i.get("hostname") or "") for i in ingress]


def plan(service: dict[str, Any], want: Desired, now: str, ready: Readiness | None = None, *,
         ours: bool = True) -> Plan:
    """The writes bringing ``service`` to ``want``; ``ready``: the runtime's verdict (None: no runtime read).

    ``ours``: the Service, as just read, is one albus handles (class, type,
    namespace selector: ``services.common.service_ownership``). Only such a
    Service, with something on the bus to say about it, gets albus's status;
    any other gets at most :func:`release`.
    """
    if not ours or want.condition is None:
        return release(service, want)
    meta = service.get("metadata") or {}
    status = service.get("status") or {}
    ref = f"{meta.get('namespace')}/{meta.get('name')}"
    generation = meta.get("generation")
    gen = int(generation) if generation is not None else None
    have = conditions.find(status.get("conditions"))
    if applied_before(have, want):
        return Plan()

    change: dict[str, Any] = {}
    # The API server refuses status.loadBalancer on other types (a ClusterIP
    # Service joined to a Gateway): such a Service gets only the condition.
    vips = list(want.vips) if (service.get("spec") or {}).get("type", "LoadBalancer") == "LoadBalancer" else []
    vips_change = current_ips(service) != vips
    if vips_change:
        # null removes the list (merge patch), which is how an emptied one reads back.
        change["loadBalancer"] = {"ingress": [{"ip": v} for v in vips] or None}
    if not conditions.same(have, want.condition, gen):
        change["conditions"] = conditions.merged(status.get("conditions"), want.condition, gen, now) or None
    have_ready = conditions.find(status.get("conditions"), READY_CONDITION_TYPE)
    if ready is not None and not conditions.same(have_ready, ready.condition, gen):
        base = change["conditions"] if "conditions" in change else status.get("conditions")
        change["conditions"] = conditions.merged(base, ready.condition, gen, now, READY_CONDITION_TYPE) or None

    events: list[EventSpec] = []
    cond = want.condition
    vip_news = bool(vips) and vips_change and cond is not None and cond.ok
    synced = cond is not None and cond.ok and not (have is not None and have.get("status") == "True")
    if synced:
        # AKO's one Synced Event, with the VIP in it: one Event POST, not two, for each of thousands of
        # Services at a start (Events were a tenth of the populated start's time at 3,000).
        vip_note = f" (VIP {', '.join(vips)})" if vip_news else ""
        events.append(EventSpec(
            "Normal", "Synced", "Apply", f"Added virtualservice {', '.join(want.vs_names)} for {ref}{vip_note}"
        ))
    elif (
        cond is not None and not cond.ok and want.failure_event_reason
        and not (have is not None and have.get("status") == "False" and have.get("reason") == cond.reason)
    ):
        events.append(EventSpec("Warning", want.failure_event_reason, "Apply", cond.message))
    if vip_news and not synced:  # the VIP moved while the Service stayed synced
        events.append(EventSpec("Normal", "VipAssigned", "Apply",
                                f"VIP {', '.join(vips)} assigned (virtualservice {', '.join(want.vs_names)})"))
    said = str((have or {}).get("message") or "")
    events += [EventSpec("Warning", reason, "Translate", msg) for reason, msg in want.warnings
               if cond is not None and msg not in said]
    if ready is not None:
        events += ready_events(have_ready, ready)

    patch = None
    if change:
        # The resourceVersion makes the write conditional: conditions are
        # replaced as a whole list, so a concurrent writer must not be lost.
        patch = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": change}
    return Plan(patch, events)


def applied_before(have: dict[str, Any] | None, want: Desired) -> bool:
    """The Service says programmed by the virtual services the bus shows only as trees without an outcome.

    Their outcomes are missing from health's view, not undone (an undone one
    is a deletion outcome): the outcome stream lost with NATS's data and not
    yet filled again by the syncer, or behind the trees. "Not applied yet"
    would be a guess from an incomplete view, so the status is left as it is.
    """
    unapplied = set(want.unapplied)
    return bool(unapplied) and unapplied <= set(vss_said(have)) and not unapplied & set(want.removed_vs_names)


def release(service: dict[str, Any], want: Desired) -> Plan:
    """A Service albus does not serve (any more): take back what albus wrote on it, once, and nothing else.

    Only when this cluster's bus has named the Service (``want.named``) and
    the Service still carries an ``albus.io/`` condition, the mark of
    albus's writes: then those conditions go, and of
    ``status.loadBalancer.ingress`` the addresses albus wrote (those the bus
    still gives it, and those its Programmed condition says it has). Another
    controller's addresses and conditions stay. Once taken back there is no
    ``albus.io/`` condition left, so a replay, or another controller's VIP
    written later, meets no write at all.
    """
    meta = service.get("metadata") or {}
    status = service.get("status") or {}
    conds = list(status.get("conditions") or ())
    mine = [c for c in conds if str(c.get("type") or "").startswith(ALBUS_CONDITION_PREFIX)]
    if not want.named or not mine:
        return Plan()
    change: dict[str, Any] = {"conditions": [c for c in conds if c not in mine] or None}
    written = set(want.vips) | set(vips_said(conditions.find(conds)))
    ingress = list((status.get("loadBalancer") or {}).get("ingress") or ())
    kept = [i for i in ingress if str(i.get("ip") or i.get("hostname") or "") not in written]
    if len(kept) != len(ingress):
        change["loadBalancer"] = {"ingress": kept or None}
    events: list[EventSpec] = []
    if want.removed_vs_names:
        events.append(EventSpec(
            "Normal", "Removed", "Delete",
            f"Removed virtualservice {', '.join(want.removed_vs_names)} for {meta.get('namespace')}/{meta.get('name')}"
        ))
    return Plan({"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": change}, events)


def _who(member: str) -> str:
    return f"pod {member}" if "/" in member else f"member {member}"


def ready_events(have: dict[str, Any] | None, ready: Readiness) -> list[EventSpec]:
    """Member down/up and virtual service down/up, from the Ready condition the Service carries and should carry.

    The members the carried condition lists as down are those already
    announced; so a replay or a restart announces nothing again.
    """
    cond = ready.condition
    if cond is None:
        return []
    was = have or {}
    was_down = listed_down(str(was.get("message") or ""))
    out = [EventSpec("Warning", "MemberDown", "HealthCheck", f"{_who(m)} is down: {why}")
           for m, why in ready.down.items() if m not in was_down]
    out += [EventSpec("Normal", "MemberUp", "HealthCheck", f"{_who(m)} is up again")
            for m in sorted(was_down - set(ready.down)) if m in ready.up]
    if cond.reason in DOWN_REASONS and not (was.get("status") == "False" and was.get("reason") == cond.reason):
        out.append(EventSpec("Warning", "VirtualServiceDown", "HealthCheck", cond.message))
    elif cond.ok and was.get("reason") in DOWN_REASONS:
        out.append(EventSpec("Normal", "VirtualServiceUp", "HealthCheck", cond.message))
    return out
