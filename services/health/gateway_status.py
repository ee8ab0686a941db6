"""Gateway API status, as the spec defines it, from translation's verdict and the apply outcome (pure).

Translation says what is *accepted* (a :class:`GatewayStatus` in the
source's report); the syncer's outcome says what is *programmed*: a
Gateway is ``Programmed=True`` only once its virtual service applied and
the controller gave it a VIP, which then is ``status.addresses``. Keys are
``(namespace, name)``; a GatewayClass, being cluster-scoped, has namespace
``""`` (a Gateway always has one).

albus writes the whole status of its own classes and their Gateways (it is
their only controller) and nothing of any other; conditions keep their
``lastTransitionTime`` while their status stays the same.
"""

from __future__ import annotations

from typing import Any

from services.common.contracts import ApplyOutcome, GatewayStatus, ListenerStatus, ObjRef, SourceReport
from services.health.service_status import EventSpec, Plan

Key = tuple[str, str]
GATEWAY_KINDS = ("Gateway", "GatewayClass")
CONTROLLER = "ako.vmware.com/avi-lb"
GROUP = "gateway.networking.k8s.io"
# Route kind -> (API version, plural) as albus reads and writes them.
ROUTES = {"HTTPRoute": ("v1", "httproutes"), "TCPRoute": ("v1alpha2", "tcproutes"),
          "UDPRoute": ("v1alpha2", "udproutes"), "TLSRoute": ("v1alpha2", "tlsroutes")}
ROUTE_KINDS = tuple(ROUTES)


def key_of(ref: ObjRef) -> Key:
    """(namespace, name); a route's name is ``<Kind>/<name>``, since one loop serves every route kind."""
    if ref.kind in ROUTES:
        return (ref.namespace, f"{ref.kind}/{ref.name}")
    return ("" if ref.kind == "GatewayClass" else ref.namespace, ref.name)


def route_of(key: Key) -> tuple[str, str, str]:
    """(kind, namespace, name) of a route's key."""
    kind, name = key[1].split("/", 1)
    return kind, key[0], name


class GatewayState:
    """The newest Gateway API reports (of ``kinds``) and the outcomes of the Gateways' virtual services."""

    def __init__(self, kinds: tuple[str, ...] = GATEWAY_KINDS) -> None:
        self.kinds = kinds
        self.statuses: dict[Key, GatewayStatus] = {}
        self.outcomes: dict[str, ApplyOutcome] = {}  # by subject, only those with a Gateway source

    def set_report(self, report: SourceReport) -> set[Key]:
        if report.source.kind not in self.kinds:
            return set()
        key = key_of(report.source)
        if report.gateway is None:
            self.statuses.pop(key, None)
        else:
            self.statuses[key] = report.gateway
        return {key}

    def set_outcome(self, subject: str, outcome: ApplyOutcome) -> set[Key]:
        before = self.outcomes.pop(subject, None)
        keys = {key_of(r) for o in (before, outcome) if o is not None for r in o.sources if r.kind == "Gateway"}
        if any(r.kind == "Gateway" for r in outcome.sources):
            self.outcomes[subject] = outcome
        return keys

    def outcome(self, key: Key) -> ApplyOutcome | None:
        """The live outcome of the Gateway's virtual service, if any."""
        ref = ObjRef(kind="Gateway", namespace=key[0], name=key[1])
        live = [o for o in self.outcomes.values() if ref in o.sources and not o.deleted]
        return min(live, key=lambda o: o.vs_name) if live else None


def _condition(type_: str, ok: bool, reason: str, message: str, gen: int, current: list[dict[str, Any]],
               now: str) -> dict[str, Any]:
    status = "True" if ok else "False"
    have = next((c for c in current if c.get("type") == type_), None)
    since = have["lastTransitionTime"] if have and have.get("status") == status and have.get(
        "lastTransitionTime") else now
    return {"type": type_, "status": status, "reason": reason, "message": message, "observedGeneration": gen,
            "lastTransitionTime": since}


def programmed(st: GatewayStatus, outcome: ApplyOutcome | None) -> tuple[bool, str, str]:
    if not st.accepted:
        return False, "Invalid", "the Gateway is not accepted"
    if outcome is None:
        return False, "Pending", "waiting for the controller to apply the virtual service"
    if not outcome.ok:
        return False, "Pending", f"virtualservice {outcome.vs_name}: {outcome.error or 'apply failed'}; retrying"
    if not outcome.vips:
        return False, "AddressNotAssigned", f"virtualservice {outcome.vs_name} has no VIP yet"
    return True, "Programmed", f"virtualservice {outcome.vs_name} has VIP {', '.join(outcome.vips)}"


def _listener(li: ListenerStatus, gw_programmed: bool, gen: int, current: list[dict[str, Any]],
              now: str) -> dict[str, Any]:
    have = next((x.get("conditions") or [] for x in current if x.get("name") == li.name), [])
    ok = li.accepted and li.resolved_refs
    return {
        "name": li.name,
        "supportedKinds": [{"group": k.split("/", 1)[0], "kind": k.split("/", 1)[1]} for k in li.supported_kinds],
        "attachedRoutes": li.attached,
        "conditions": [
            _condition("Accepted", li.accepted, li.accepted_reason, li.message, gen, have, now),
            _condition("Programmed", ok and gw_programmed, "Programmed" if ok and gw_programmed else
                       ("Invalid" if not ok else "Pending"), li.message, gen, have, now),
            _condition("ResolvedRefs", li.resolved_refs, li.refs_reason, li.message, gen, have, now),
            _condition("Conflicted", bool(li.conflicted_reason), li.conflicted_reason or "NoConflicts",
                       li.message if li.conflicted_reason else "", gen, have, now),
        ],
    }


def gateway_status(gw: dict[str, Any], st: GatewayStatus, outcome: ApplyOutcome | None,
                   now: str) -> dict[str, Any]:
    current = gw.get("status") or {}
    conds = current.get("conditions") or []
    ok, reason, message = programmed(st, outcome)
    return {
        "addresses": [{"type": "IPAddress", "value": v} for v in (outcome.vips if ok and outcome else ())],
        "conditions": [
            _condition("Accepted", st.accepted, st.reason, st.message, st.generation, conds, now),
            _condition("Programmed", ok, reason, message, st.generation, conds, now),
        ],
        "listeners": [_listener(li, ok, st.generation, current.get("listeners") or [], now) for li in st.listeners],
    }


def class_status(cls: dict[str, Any], st: GatewayStatus, now: str) -> dict[str, Any]:
    conds = (cls.get("status") or {}).get("conditions") or []
    return {"conditions": [_condition("Accepted", st.accepted, st.reason, st.message, st.generation, conds, now)]}


def route_status(route: dict[str, Any], st: GatewayStatus, now: str) -> dict[str, Any]:
    """``status.parents``: albus's entry per parentRef to its Gateways; other controllers' entries kept."""
    current = (route.get("status") or {}).get("parents") or []
    out = [p for p in current if p.get("controllerName") != CONTROLLER]
    for p in st.parents:
        parent_ref: dict[str, Any] = {"group": GROUP, "kind": "Gateway", "namespace": p.gateway_namespace,
                                      "name": p.gateway_name}
        if p.section_name:
            parent_ref["sectionName"] = p.section_name
        if p.port:
            parent_ref["port"] = p.port
        have = next((c.get("conditions") or [] for c in current
                     if c.get("controllerName") == CONTROLLER and c.get("parentRef") == parent_ref), [])
        out.append({"parentRef": parent_ref, "controllerName": CONTROLLER, "conditions": [
            _condition("Accepted", p.accepted, p.accepted_reason, p.message, st.generation, have, now),
            _condition("ResolvedRefs", p.resolved_refs, p.refs_reason, p.message, st.generation, have, now),
        ]})
    return {"parents": out}


def _flipped(current: dict[str, Any], want: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """``want``'s condition of this type when it differs in status or reason from the current one."""
    new = next(c for c in want["conditions"] if c["type"] == type_)
    old = next((c for c in current.get("conditions") or [] if c.get("type") == type_), None)
    return new if old is None or (old.get("status"), old.get("reason")) != (new["status"], new["reason"]) else None


def plan(obj: dict[str, Any], want: dict[str, Any], kind: str) -> Plan:
    """The merge patch that makes ``obj``'s status ``want`` (None when it already is), and the Events."""
    meta = obj.get("metadata") or {}
    current = obj.get("status") or {}
    if all(current.get(k) == v for k, v in want.items()):
        return Plan()
    ref = f"{kind} {meta.get('namespace')}/{meta.get('name')}" if meta.get("namespace") else f"{kind} {meta.get('name')}"
    events: list[EventSpec] = []
    acc = _flipped(current, want, "Accepted") if "conditions" in want else None
    if acc is not None and acc["status"] == "False":
        events.append(EventSpec("Warning", acc["reason"], "Translate", f"{ref} not accepted: {acc['message']}"))
    for li in want.get("listeners") or [] if kind == "Gateway" else []:
        # A listener's refs going bad (a certificate Secret, a route kind) is a Warning once, like Accepted.
        had: dict[str, Any] = next((x for x in current.get("listeners") or [] if x.get("name") == li["name"]), {})
        refs = _flipped(had, li, "ResolvedRefs")
        if refs is not None and refs["status"] == "False":
            events.append(EventSpec("Warning", refs["reason"], "Translate",
                                    f"{ref} listener {li['name']}: {refs['message']}"))
    prog = _flipped(current, want, "Programmed") if kind == "Gateway" else None
    if prog is not None and prog["status"] == "True":
        events.append(EventSpec("Normal", "Synced", "Apply", f"{ref}: {prog['message']}"))
    # Lists are replaced whole by a merge patch: albus owns them all on its own objects.
    return Plan({"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": want}, events)
