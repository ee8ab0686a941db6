"""Per virtual service counters: a small stand-in for the controller's analytics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Json = Any


@dataclass
class MemberStats:
    connections: int = 0
    requests: int = 0
    active: int = 0  # open connections now; least-connections balancing reads it


@dataclass
class VsStats:
    connections: int = 0
    active: int = 0
    requests: int = 0
    bytes_in: int = 0  # client → VIP
    bytes_out: int = 0  # VIP → client
    no_member: int = 0  # connections/requests refused: no pool, or no member up
    responses: dict[str, int] = field(default_factory=dict)  # "2xx" → n (HTTP only)
    members: dict[str, MemberStats] = field(default_factory=dict)  # "<pool uuid> <ip>:<port>"

    def response(self, status: int | str) -> None:
        cls = f"{str(status)[0]}xx"
        self.responses[cls] = self.responses.get(cls, 0) + 1

    def member(self, key: str) -> MemberStats:
        return self.members.setdefault(key, MemberStats())

    def to_json(self) -> dict[str, Json]:
        return {"connections": self.connections, "active_connections": self.active, "requests": self.requests,
                "bytes_in": self.bytes_in, "bytes_out": self.bytes_out, "no_member": self.no_member,
                "responses": dict(self.responses),
                "members": [{"pool_ref": k.split(" ")[0], "server": k.split(" ")[1], "connections": m.connections,
                             "requests": m.requests, "active_connections": m.active}
                            for k, m in sorted(self.members.items())]}
