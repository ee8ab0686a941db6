"""A NATS cluster on this machine: three (or five) ``nats-server`` processes with JetStream, on loopback.

Each node is a :class:`albus.broker.NatsServer` with its own store
directory, a configuration of its own (``server_name``, a shared cluster
name, routes to the other nodes, monitoring) and the same users on every
node (``albus nats-config`` identities, optional). Streams created with
``num_replicas=3`` survive the loss of any one node.

Readiness is the server's own ``/healthz``: it answers 200 only once the node
knows the JetStream meta leader and every stream and consumer it holds is
current, so :meth:`NatsCluster.start` returns with a cluster that accepts
stream operations, and :meth:`NatsCluster.start_node` returns with a node
that has caught up.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from albus import natsconfig
from albus.broker import NatsServer, free_port


class NatsCluster:
    """``size`` nats-servers clustered on loopback; a node can be killed and started again by index."""

    def __init__(self, workdir: Path, size: int = 3, name: str = "albus",
                 identities: list[natsconfig.Identity] | None = None, host: str = "127.0.0.1") -> None:
        if size < 1:
            raise ValueError("a NATS cluster needs at least one node")
        self.workdir = Path(workdir)
        self.name = name
        self.host = host
        self.identities = list(identities or [])
        # Fixed for the cluster's life: a restarted node must come back where its peers route to.
        self.route_ports = [free_port(host) for _ in range(size)]
        self.http_ports = [free_port(host) for _ in range(size)]
        self.nodes = [NatsServer(self.workdir / f"n{i}", host=host, config_file=self.workdir / f"n{i}.conf")
                      for i in range(size)]
        for i in range(size):
            self._write_config(i)

    def server_name(self, i: int) -> str:
        return f"{self.name}-{i}"

    def _write_config(self, i: int) -> None:
        routes = tuple(f"nats-route://{self.host}:{p}" for j, p in enumerate(self.route_ports) if j != i)
        clustering = natsconfig.Clustering(self.name, self.server_name(i), f"{self.host}:{self.route_ports[i]}",
                                           routes)
        text = natsconfig.render(self.identities, http=f"{self.host}:{self.http_ports[i]}", clustering=clustering)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / f"n{i}.conf").write_text(text)

    @property
    def url(self) -> str:
        """Every node's client URL, comma-separated (what ``NATS_URL`` and ``Bus.connect`` take)."""
        return ",".join(n.url for n in self.nodes)

    @property
    def size(self) -> int:
        return len(self.nodes)

    def alive(self, i: int) -> bool:
        child = self.nodes[i].child
        return child is not None and child.alive

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> NatsCluster:
        """Start every node, then wait until each one reports JetStream healthy (meta leader elected)."""
        try:
            for n in self.nodes:
                n.start()
            deadline = time.monotonic() + timeout
            for i in range(self.size):
                self.wait_caught_up(i, deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        for n in self.nodes:
            n.stop(timeout)

    def kill(self) -> None:
        """kill -9 every node (the whole cluster crashes); :meth:`start` brings it back from its stores."""
        for n in self.nodes:
            n.kill()

    def kill_node(self, i: int) -> None:
        """kill -9 one node, as a crashed machine would."""
        self.nodes[i].kill()

    def stop_node(self, i: int) -> None:
        self.nodes[i].stop()

    def start_node(self, i: int, timeout: float = 60.0) -> None:
        """Start one node again (same ports, same store) and wait until it has caught up with its peers."""
        self.nodes[i].start()
        self.wait_caught_up(i, time.monotonic() + timeout)

    def wait_caught_up(self, i: int, deadline: float) -> None:
        self.wait_healthy(i, deadline - time.monotonic())
        while not self.caught_up(i):
            if time.monotonic() > deadline:
                raise TimeoutError(f"nats node {i} did not catch up in time: {self.lagging(i)}")
            time.sleep(0.1)

    # -- what the servers say ----------------------------------------------------------------
    def monitor(self, i: int, path: str, timeout: float = 5.0) -> dict[str, Any]:
        """GET ``path`` from node ``i``'s monitoring port (JSON); /healthz answers 503 with a body too."""
        url = f"http://{self.host}:{self.http_ports[i]}/{path.lstrip('/')}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as rsp:
                body: dict[str, Any] = json.loads(rsp.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
            body.setdefault("status", f"http {exc.code}")
        return body

    def healthy(self, i: int) -> bool:
        return self.monitor(i, "healthz").get("status") == "ok"

    def wait_healthy(self, i: int, timeout: float) -> None:
        deadline = time.monotonic() + max(timeout, 0.0)
        last: Any = None
        while True:
            if not self.alive(i):
                raise RuntimeError(f"nats node {i} exited: {self.nodes[i].log_path.read_text()[-2000:]}")
            try:
                last = self.monitor(i, "healthz")
                if last.get("status") == "ok":
                    return
            except (OSError, ValueError) as exc:  # not listening yet
                last = exc
            if time.monotonic() > deadline:
                raise TimeoutError(f"nats node {i} not healthy (JetStream) in time: {last}")
            time.sleep(0.1)

    def lagging(self, i: int) -> list[str]:
        """What node ``i`` has not caught up on, as its peers' leaders see it (empty: caught up).

        ``/healthz`` alone is not enough: a node just restarted can answer ok
        before it has learnt which streams it holds. So each leader (of the
        meta group, of every stream with ``i`` among its peers) must count
        ``i`` current, and ``i`` must know that leader.
        """
        me = self.server_name(i)
        out = [] if self.healthy(i) else ["healthz"]
        mine = self.streams(i)
        others = [j for j in range(self.size) if j != i and self.alive(j)]
        meta = self.monitor(i, "jsz").get("meta_cluster") or {}
        if not meta.get("leader"):
            out.append("meta leader unknown")
        for j in others:
            for name, s in self.streams(j).items():
                cl = s.get("cluster") or {}
                if cl.get("leader") != self.server_name(j):
                    continue  # j is not this stream's leader: its view may be stale
                peers = {r.get("name"): r for r in cl.get("replicas") or []}
                if me not in peers:
                    continue
                if not peers[me].get("current") or ((mine.get(name) or {}).get("cluster") or {}).get(
                        "leader") != cl["leader"]:
                    out.append(f"stream {name}")
            jmeta = self.monitor(j, "jsz").get("meta_cluster") or {}
            if jmeta.get("leader") == self.server_name(j):
                peers = {r.get("name"): r for r in jmeta.get("replicas") or []}
                if not (peers.get(me) or {}).get("current"):
                    out.append("meta group")
        return out

    def caught_up(self, i: int) -> bool:
        return not self.lagging(i)

    def index_of(self, server_name: str) -> int:
        return [self.server_name(i) for i in range(self.size)].index(server_name)

    def _any_live(self) -> int:
        for i in range(self.size):
            if self.alive(i):
                return i
        raise RuntimeError("no NATS node is running")

    def meta_leader(self) -> int | None:
        """The node leading JetStream's meta group (stream and consumer placement), if one is elected."""
        leader = (self.monitor(self._any_live(), "jsz").get("meta_cluster") or {}).get("leader")
        return self.index_of(leader) if leader else None

    def streams(self, i: int | None = None) -> dict[str, dict[str, Any]]:
        """Every stream as node ``i`` (default: any live one) holds it: config, state, cluster (leader, replicas)."""
        node = self._any_live() if i is None else i
        jsz = self.monitor(node, "jsz?accounts=true&streams=true&config=true")
        out: dict[str, dict[str, Any]] = {}
        for acc in jsz.get("account_details") or []:
            for s in acc.get("stream_detail") or []:
                out[s["name"]] = s
        return out

    def stream_leader(self, stream: str) -> int | None:
        """The node leading ``stream`` (where its publishes are stored first), if one is elected."""
        for i in range(self.size):
            if not self.alive(i):
                continue
            leader = ((self.streams(i).get(stream) or {}).get("cluster") or {}).get("leader")
            if leader:
                return self.index_of(leader)
        return None

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
