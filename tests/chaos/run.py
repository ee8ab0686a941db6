"""The chaos run: rounds of workload + one fault, then convergence measured; a clean end checked.

Each round changes Services in random clusters (create, change a port,
delete), injects one random fault, keeps changing Services for a moment,
clears the controller faults and measures how long until every cluster's
objects on the controller are exactly the offline translation of that
cluster. At the end: no object of anyone else was touched, and a full
resync (every syncer restarted, every tree replayed) writes nothing.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kubernetes.client.rest import ApiException

from tests.chaos.faults import CLUSTER_FAULTS, FAULTS, Fault
from tests.chaos.rig import Rig, rig
from tests.e2e.harness import wait_for
from tests.e2e.kube import lb_service

CONVERGE_S = 240.0


@dataclass
class Round:
    fault: str
    changes: int
    converged_s: float
    kind: str = ""  # the fault's function, for grouping


@dataclass
class Report:
    seed: int
    duration_s: float
    nats_nodes: int = 1
    rounds: list[Round] = field(default_factory=list)
    resync_writes: int = -1
    foreign_untouched: bool = False
    objects: dict[str, int] = field(default_factory=dict)

    def text(self) -> str:
        lines = [f"chaos seed={self.seed} duration={self.duration_s:.0f}s nats nodes={self.nats_nodes} "
                 f"rounds={len(self.rounds)}"]
        lines += [f"  {i:3d} {r.fault:<45} changes={r.changes:<3} converged in {r.converged_s:6.1f}s"
                  for i, r in enumerate(self.rounds, 1)]
        worst = max((r.converged_s for r in self.rounds), default=0.0)
        lines.append(f"worst convergence {worst:.1f}s; objects per cluster {self.objects}; "
                     f"foreign objects untouched: {self.foreign_untouched}; writes on full resync: {self.resync_writes}")
        return "\n".join(lines)


def change_services(r: Rig, rng: random.Random, n: int) -> int:
    done = 0
    for _ in range(n):
        m = rng.choice(list(r.members.values()))
        existing = sorted(s.metadata.name for s in m.core.list_namespaced_service(m.namespace).items)
        op = rng.choice(["create", "create", "edit", "delete"]) if existing else "create"
        try:
            if op == "create":
                name = f"s{rng.randrange(10_000)}"
                port = rng.randrange(1000, 9000)
                m.core.create_namespaced_service(m.namespace, lb_service(name, [{"port": port, "protocol": "TCP"}]))
            elif op == "edit":
                name = rng.choice(existing)
                m.core.patch_namespaced_service(name, m.namespace, {"spec": {"ports": [
                    {"port": rng.randrange(1000, 9000), "protocol": "TCP"}]}})
            else:
                m.core.delete_namespaced_service(rng.choice(existing), m.namespace)
            done += 1
        except ApiException as exc:
            if exc.status not in (404, 409, 422):  # a name drawn twice, a port clash: skip it
                raise
    return done


def converged(r: Rig) -> bool:
    return all(m.actual() == m.expected() for m in r.members.values())


def difference(r: Rig) -> str:
    """What keeps the controller from the translation: missing and extra names, per cluster and type."""
    out = []
    for m in r.members.values():
        want, have = m.expected(), m.actual()
        for t in sorted(set(want) | set(have)):
            missing, extra = want.get(t, set()) - have.get(t, set()), have.get(t, set()) - want.get(t, set())
            if missing or extra:
                out.append(f"{m.cluster} {t}: missing {sorted(missing)}, extra {sorted(extra)}")
    return "; ".join(out) or "none now"


def full_resync_writes(r: Rig) -> int:
    """Restart every syncer: each replays and compares every tree with the controller."""
    for p in r.pool:
        p.stop()
    r.members[next(iter(r.members))].reset_log()
    restarted = time.time()
    for p in r.pool:
        p.start()
    for m in r.members.values():
        wait_for(lambda m=m: m.syncers_settled(restarted), CONVERGE_S, f"{m.cluster}'s syncers settled")
    return len(next(iter(r.members.values())).writes())


def run(workdir: Path, seed: int, duration: float, out: Path | None = None,
        faults: list[Fault] | None = None, nats_nodes: int = 1) -> Report:
    rng = random.Random(seed)
    report = Report(seed=seed, duration_s=duration, nats_nodes=nats_nodes)
    pool = faults or (FAULTS + CLUSTER_FAULTS if nats_nodes > 1 else FAULTS)
    with rig(workdir, nats_nodes=nats_nodes) as r:
        try:
            foreign = r.foreign()
            change_services(r, rng, 6)
            wait_for(lambda: converged(r), CONVERGE_S, "the initial workload to converge")
            end = time.monotonic() + duration
            while time.monotonic() < end:
                changes = change_services(r, rng, rng.randrange(1, 5))
                inject = rng.choice(pool)
                fault = inject(r, rng)
                changes += change_services(r, rng, rng.randrange(0, 3))
                time.sleep(rng.uniform(0.5, 3.0))  # let the fault bite while work is in flight
                r.admin("DELETE", "faults")
                started = time.monotonic()
                try:
                    wait_for(lambda: converged(r), CONVERGE_S, f"convergence after {fault}", interval=0.5)
                except AssertionError as exc:
                    raise AssertionError(f"{exc}; difference: {difference(r)}") from None
                report.rounds.append(Round(fault, changes, round(time.monotonic() - started, 2), inject.__name__))
                print(f"round {len(report.rounds)}: {fault}: converged in {report.rounds[-1].converged_s}s", flush=True)
            report.foreign_untouched = r.foreign() == foreign
            report.objects = {m.cluster: sum(len(v) for v in m.actual().values()) for m in r.members.values()}
            report.resync_writes = full_resync_writes(r)
        except BaseException:
            print(r.logs())
            raise
        finally:
            if out is not None:
                out.write_text(json.dumps(asdict(report), indent=2))
    return report
