"""What the controller last said about this cluster's virtual services and pools, and what changed.

Pure. A sweep gives every pool's counts (``pool-inventory``); a pool whose
members are all up needs no more. Any other pool's members are read one call
per pool, and only when its counts changed since that read, or the read is
older than ``refresh`` seconds (two members swapping states in one
interval leave the counts as they were). So a sweep costs the inventory
pages plus one call per pool that changed, not one per pool.

A sweep that failed is not applied: the view keeps the last complete one.

An all-up pool's counts do not say *which* members are up, and the pod
readiness gate needs that: a pool whose Service has a pod waiting for its
gate (``want_members``) has its members read every sweep, all up or not,
until no pod waits.

Between complete sweeps, a read of only the virtual services an apply
touched and their pools (:meth:`RuntimeView.apply_some`) changes just those:
an apply's runtime shows within a second at a cost that follows the applies,
not the cluster's size.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.health.runtime_reader import MemberState, PoolSummary, VsSummary

UP = "OPER_UP"
PENDING_STATES = frozenset({"OPER_CREATING", "OPER_INITIALIZING", "OPER_PROCESSING", "OPER_UNKNOWN"})
# A member the controller does not send traffic to by configuration, not by failure.
DISABLED_STATES = frozenset({"OPER_DISABLED", "OPER_DISABLING", "OPER_UNUSED"})


@dataclass(frozen=True)
class PoolRuntime:
    summary: PoolSummary
    members: tuple[MemberState, ...] | None  # None: all up, not read

    def fingerprint(self) -> tuple[object, ...]:
        """What a change is: states and counts; the reasons' wording is not."""
        s = self.summary
        members = None if self.members is None else tuple(sorted((m.ip, m.port, m.state) for m in self.members))
        return (s.state, s.servers, s.enabled, s.up, members)


class RuntimeView:
    def __init__(self, refresh: float) -> None:
        self.refresh = refresh
        self.pools: dict[str, PoolRuntime] = {}  # by pool uuid
        self.vss: dict[str, VsSummary] = {}  # by virtual service name
        self._read_at: dict[str, float] = {}  # pool uuid -> when its members were read
        self.loaded = False  # one complete sweep applied
        self._wanted: dict[object, frozenset[str]] = {}  # who asked -> pool uuids whose members it needs

    def want_members(self, who: object, pool_uuids: frozenset[str]) -> None:
        """Read these pools' members every sweep for ``who`` (an empty set withdraws the ask)."""
        if pool_uuids:
            self._wanted[who] = pool_uuids
        else:
            self._wanted.pop(who, None)

    def _members_wanted(self) -> set[str]:
        return {u for uuids in self._wanted.values() for u in uuids}

    def details_wanted(self, pools: dict[str, PoolSummary], now: float) -> list[PoolSummary]:
        """The pools whose members must be read this sweep."""
        out = []
        wanted = self._members_wanted()
        for p in pools.values():
            if p.uuid in wanted:
                out.append(p)
                continue
            if p.all_up:
                continue
            old = self.pools.get(p.uuid)
            if (old is None or old.members is None or old.summary != p
                    or now - self._read_at.get(p.uuid, 0.0) >= self.refresh):
                out.append(p)
        return out

    def apply(self, pools: dict[str, PoolSummary], vss: dict[str, VsSummary],
              details: dict[str, tuple[MemberState, ...]], now: float) -> tuple[set[str], set[str]]:
        """Take a complete sweep; return the names of the virtual services whose runtime changed.

        ``details`` holds the members read this sweep by pool uuid; a pool
        not all up and not read keeps the members it had. Returns (virtual
        services changed, pools changed by uuid).
        """
        new_pools = {p.uuid: self._pool_runtime(p, details, now) for p in pools.values()}
        changed_pools = {u for u in set(new_pools) | set(self.pools)
                         if (self.pools[u].fingerprint() if u in self.pools else None)
                         != (new_pools[u].fingerprint() if u in new_pools else None)}
        new_vss = dict(vss)
        changed_vs = set()
        for name in set(new_vss) | set(self.vss):
            old_vs, new_vs = self.vss.get(name), new_vss.get(name)
            if (old_vs is None or new_vs is None or old_vs.state != new_vs.state or old_vs.pools != new_vs.pools
                    or any(u in changed_pools for u in new_vs.pools)):
                changed_vs.add(name)
        for u in set(self._read_at) - set(new_pools):
            del self._read_at[u]
        self.pools, self.vss = new_pools, new_vss
        first = not self.loaded
        self.loaded = True
        return (set(new_vss) | changed_vs if first else changed_vs), changed_pools

    def _pool_runtime(self, p: PoolSummary, details: dict[str, tuple[MemberState, ...]], now: float) -> PoolRuntime:
        if p.uuid in details:  # read this sweep (an all-up pool too, when asked for)
            self._read_at[p.uuid] = now
            return PoolRuntime(p, details[p.uuid])
        if p.all_up:
            return PoolRuntime(p, None)
        old = self.pools.get(p.uuid)
        return PoolRuntime(p, old.members if old is not None else None)

    def apply_some(self, names: set[str], pools: dict[str, PoolSummary], vss: dict[str, VsSummary],
                   details: dict[str, tuple[MemberState, ...]], now: float) -> set[str]:
        """Take a read of the virtual services ``names`` and their pools; the names whose runtime changed.

        Between complete sweeps, after applies: only what was read changes. A
        name asked for and not found is gone, as a complete sweep would say;
        a pool is removed only by a complete sweep (another VS may use it).
        Another VS sending traffic to a pool that changed is changed too.
        """
        changed_pools = set()
        for p in pools.values():
            new = self._pool_runtime(p, details, now)
            old = self.pools.get(p.uuid)
            if old is None or old.fingerprint() != new.fingerprint():
                changed_pools.add(p.uuid)
            self.pools[p.uuid] = new
        changed_vs = set()
        for name in names:
            old_vs, new_vs = self.vss.get(name), vss.get(name)
            if new_vs is None:
                if self.vss.pop(name, None) is not None:
                    changed_vs.add(name)
                continue
            self.vss[name] = new_vs
            if old_vs is None or old_vs.state != new_vs.state or old_vs.pools != new_vs.pools:
                changed_vs.add(name)
        if changed_pools:
            changed_vs |= {n for n, vs in self.vss.items() if any(u in changed_pools for u in vs.pools)}
        return changed_vs

    def pools_of(self, vs_name: str) -> list[PoolRuntime]:
        vs = self.vss.get(vs_name)
        return [self.pools[u] for u in vs.pools if u in self.pools] if vs is not None else []
