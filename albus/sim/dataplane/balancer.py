"""Choosing a member: pool groups by ratio, then the pool's algorithm over members that are up.

A member takes traffic only when the simulator's health view says OPER_UP
(active monitors, fault pins, disabled flags) and it lies inside the probe
networks (loopback and the networks a test names): the simulator never sends
a packet anywhere else.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from albus.sim.dataplane.routes import Target
from albus.sim.dataplane.stats import VsStats
from albus.sim.health import Health, _server_port
from albus.sim.store import Record, Store

Json = Any


@dataclass(frozen=True)
class Member:
    pool: str
    ip: str
    port: int

    @property
    def key(self) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{self.pool} {host}:{self.port}"


class Balancer:
    def __init__(self, store: Store, health: Health) -> None:
        self.store = store
        self.health = health
        self._turn = itertools.count()  # shared rotation: round robin and least-connections ties
        self._rr: dict[str, int] = {}
        self._pg_credit: dict[tuple[str, str], float] = {}

    def up_members(self, pool: Record) -> list[tuple[Member, int]]:
        if not pool.data.get("enabled", True):
            return []
        out = []
        for s in pool.data.get("servers") or []:
            ip = s["ip"]["addr"]
            if self.health.server_status(pool, s).state == "OPER_UP" and self.health.probeable(ip):
                out.append((Member(pool.uuid, ip, _server_port(pool, s)), max(int(s.get("ratio", 1)), 1)))
        return out

    def pick(self, target: Target | None, stats: VsStats) -> Member | None:
        pool = self._pool(target)
        if pool is None:
            return None
        members = self.up_members(pool)
        if not members:
            return None
        algo = pool.data.get("lb_algorithm", "LB_ALGORITHM_LEAST_CONNECTIONS")
        if algo == "LB_ALGORITHM_LEAST_CONNECTIONS":
            start = next(self._turn)
            order = members[start % len(members):] + members[:start % len(members)]
            return min(order, key=lambda mr: stats.member(mr[0].key).active / mr[1])[0]
        # round robin (and every other algorithm, documented): each member `ratio` turns in a row
        wheel = [m for m, ratio in members for _ in range(ratio)]
        i = self._rr.get(pool.uuid, 0)
        self._rr[pool.uuid] = i + 1
        return wheel[i % len(wheel)]

    def _pool(self, target: Target | None) -> Record | None:
        if target is None:
            return None
        if target.pool:
            rec = self.store.get(target.pool)
            return rec if rec is not None and rec.type == "pool" else None
        pg = self.store.get(target.poolgroup or "")
        if pg is None or pg.type != "poolgroup":
            return None
        # smooth weighted round robin over the group's pools that have a member up, by `ratio`
        live = [(p, max(int(m.get("ratio", 1)), 1)) for m in pg.data.get("members") or []
                if (p := self.store.get(str(m.get("pool_ref")))) is not None and self.up_members(p)]
        if not live:
            return None
        total = sum(r for _, r in live)
        for p, r in live:
            self._pg_credit[(pg.uuid, p.uuid)] = self._pg_credit.get((pg.uuid, p.uuid), 0) + r
        best = max(live, key=lambda pr: self._pg_credit[(pg.uuid, pr[0].uuid)])[0]
        self._pg_credit[(pg.uuid, best.uuid)] -= total
        return best
