"""The status condition albus keeps on a Service, as a ``metav1.Condition``.

(The second one, ``albus.io/LoadBalancerReady``, whether the load balancer
serves, is in ``lb_ready.py``.)

Type ``albus.io/LoadBalancerProgrammed``: is the Service's load balancer
programmed on the controller? AKO writes no Service condition, so there is
nothing to be compatible with; the name follows Gateway API's ``Programmed``
(configuration accepted and pushed to the data plane) and carries albus's
domain, as Kubernetes asks of conditions that are not its own.

=====================  ======  ==================================================
reason                 status  when
=====================  ======  ==================================================
``Programmed``         True    every virtual service of the Service applied, VIP known
``VipPending``         False   applied, but the controller gave no VIP (yet); or
                               the tree is on the bus, not applied yet
``ControllerError``    False   the controller refused or failed the apply
(problem's reason)     False   translation found the Service invalid, e.g.
                               ``InvalidConfiguration``
=====================  ======  ==================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

CONDITION_TYPE = "albus.io/LoadBalancerProgrammed"

REASON_PROGRAMMED = "Programmed"
REASON_VIP_PENDING = "VipPending"
REASON_CONTROLLER_ERROR = "ControllerError"
REASON_INVALID = "InvalidConfiguration"

# metav1.Condition limits (validated by the API server on Service status).
_REASON_RE = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
_MESSAGE_MAX = 32768


@dataclass(frozen=True)
class Condition:
    status: str  # "True" | "False"
    reason: str
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "True"


def safe_reason(reason: str, default: str = REASON_INVALID) -> str:
    """A reason the API server accepts: CamelCase words, no spaces or dashes."""
    if _REASON_RE.match(reason) and len(reason) <= 128:
        return reason
    words = re.findall(r"[A-Za-z0-9]+", reason)
    joined = "".join(w[:1].upper() + w[1:] for w in words)
    joined = joined.lstrip("0123456789")[:128]
    return joined if joined and _REASON_RE.match(joined) else default


def find(conditions: list[dict[str, Any]] | None, type_: str = CONDITION_TYPE) -> dict[str, Any] | None:
    for c in conditions or ():
        if c.get("type") == type_:
            return c
    return None


def same(current: dict[str, Any] | None, want: Condition | None, generation: int | None) -> bool:
    """Whether ``current`` already says what ``want`` says (timestamps aside)."""
    if current is None or want is None:
        return current is None and want is None
    return (
        current.get("status") == want.status
        and current.get("reason") == want.reason
        and current.get("message", "") == want.message[:_MESSAGE_MAX]
        and (generation is None or current.get("observedGeneration") == generation)
    )


def merged(
    conditions: list[dict[str, Any]] | None,
    want: Condition | None,
    generation: int | None,
    now: str,
    type_: str = CONDITION_TYPE,
) -> list[dict[str, Any]]:
    """``conditions`` with albus's condition set to ``want`` (removed when None).

    ``lastTransitionTime`` moves only when the status flips, as the API
    conventions ask; other writers' conditions are kept as they are.
    """
    others = [c for c in conditions or () if c.get("type") != type_]
    if want is None:
        return others
    current = find(conditions, type_)
    since = now
    if current is not None and current.get("status") == want.status and current.get("lastTransitionTime"):
        since = current["lastTransitionTime"]
    cond: dict[str, Any] = {
        "type": type_,
        "status": want.status,
        "reason": want.reason,
        "message": want.message[:_MESSAGE_MAX],
        "lastTransitionTime": since,
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return [*others, cond]
