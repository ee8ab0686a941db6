"""The faults the chaos harness injects, each a function of the rig and a seeded random source.

Each returns a short description for the report. Controller faults are
rules of the simulator's ``/_sim`` API; they are cleared when the round's
faults stop.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from albus.broker_cluster import NatsCluster
from tests.chaos.rig import Rig

Fault = Callable[[Rig, random.Random], str]


def kill_service(r: Rig, rng: random.Random) -> str:
    name, proc = rng.choice(sorted(r.processes().items()))
    proc.kill()
    proc.start()  # as Kubernetes restarts a crashed container
    return f"kill -9 {name}"


def restart_nats(r: Rig, rng: random.Random) -> str:
    r.nats.kill()
    r.nats.start()  # same port and store directory: JetStream state survives
    return "kill -9 and restart nats-server"


def kill_nats_node(r: Rig, rng: random.Random) -> str:
    if not isinstance(r.nats, NatsCluster):
        return restart_nats(r, rng)
    i = rng.randrange(len(r.nats.nodes))
    r.nats.kill_node(i)
    r.nats.nodes[i].start()  # restarted at once: it catches up while the rest serve
    return f"kill -9 NATS node {i} (restarted)"


def controller_latency(r: Rig, rng: random.Random) -> str:
    ms = rng.choice([200, 500, 1500])
    r.admin("POST", "faults", json={"latency_ms": ms, "count": 200})
    return f"controller latency {ms} ms"


def controller_5xx_burst(r: Rig, rng: random.Random) -> str:
    status = rng.choice([500, 502, 503, 504])
    r.admin("POST", "faults", json={"status": status, "probability": 0.5, "count": 40})
    return f"controller {status} burst"


def session_expiry(r: Rig, rng: random.Random) -> str:
    r.admin("POST", "sessions/expire")
    return "controller sessions expired"


def controller_restart(r: Rig, rng: random.Random) -> str:
    down = rng.choice([0, 2, 5])
    r.admin("POST", "restart", json={"downtime_s": down})
    return f"controller restart ({down} s down)"


def dropped_connections(r: Rig, rng: random.Random) -> str:
    r.admin("POST", "faults", json={"drop": True, "probability": 0.5, "count": 20})
    return "controller drops connections"


def watch_gone(r: Rig, rng: random.Random) -> str:
    r.plane.compact()
    return "etcd compacted: watches get 410 Gone"


FAULTS: list[Fault] = [kill_service, restart_nats, controller_latency, controller_5xx_burst, session_expiry,
                       controller_restart, dropped_connections, watch_gone]
# Drawn only when NATS is a cluster (kept apart so that a seed's draws on one node stay as they were).
CLUSTER_FAULTS: list[Fault] = [kill_nats_node]
