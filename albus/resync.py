"""``albus resync``: every service rebuilds its state from the clusters and the controller; wait until converged.

It publishes a :class:`ResyncRequest` on ``ctl.<cluster>.resync`` for each
cluster and waits for the answers (:class:`ResyncDone`) of the running
services (docs/disaster-recovery.md):

* the watcher has listed every kind again and published it;
* the translator has rebuilt its view from the bus and published its new
  ``TreesSynced`` (epoch *E*);
* the syncer pool has applied every tree of *E* again, every partition
  covered (and garbage collection ran from *E*);
* health has re-read the outcomes and reports and brought status in line.

Exit status: 0 converged, 1 not converged before ``--timeout``, 2 bad
arguments or configuration, 3 NATS refused these credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import socket
import sys
import time
from dataclasses import dataclass, field

from services.common import subjects
from services.common.bus import Bus, BusRefused, Delivery
from services.common.config import Config, ConfigError, load_config
from services.common.contracts import ResyncDone, ResyncRequest, decode
from services.common.resync import REQUEST_TTL_SECONDS, answers, first_of, new_request_id


@dataclass
class ClusterProgress:
    """The answers to one request from one cluster's services, and what they still lack."""

    cluster: str
    request: str
    answers: dict[tuple[str, str], ResyncDone] = field(default_factory=dict)  # (service, instance) -> answer

    def add(self, done: ResyncDone) -> bool:
        """Keep ``done`` if it answers this request; whether it did."""
        if done.cluster != self.cluster or not answers(done.request, self.request):
            return False
        self.answers[(done.service, done.instance)] = done
        return True

    def translator(self) -> ResyncDone | None:
        found = [d for (svc, _), d in self.answers.items() if svc == "translator"]
        return max(found, key=lambda d: d.request) if found else None

    def missing(self) -> list[str]:
        """What has not answered yet; empty once the cluster has converged."""
        out: list[str] = []
        for svc in ("watcher", "health"):
            if not any(s == svc for s, _ in self.answers):
                out.append(f"{svc}: no answer yet")
        tr = self.translator()
        if tr is None:
            out.append("translator: no full view yet")
            out.append(f"syncer: 0 of {subjects.PARTITIONS} partitions re-applied")
            return out
        parts = {p for (svc, _), d in self.answers.items() if svc == "syncer" and d.epoch == tr.epoch
                 for p in d.partitions}
        if len(parts) < subjects.PARTITIONS:
            out.append(f"syncer: {len(parts)} of {subjects.PARTITIONS} partitions re-applied from epoch {tr.epoch}")
        return out


async def resync(cfg: Config, clusters: list[str], timeout: float, out: Progress | None = None) -> bool:
    """Request a full resync of ``clusters`` and wait for every one to converge (True) or ``timeout`` (False)."""
    say = out or Progress()
    deadline = time.monotonic() + timeout
    bus = await Bus.connect(cfg.albus.natsUrl, "albus-resync", replicas=cfg.albus.natsReplicas)
    followers = []
    try:
        # The control stream may be gone with the rest (a cluster identity waits for the syncer pool to create it).
        try:
            await asyncio.wait_for(bus.ensure_streams(), max(1.0, deadline - time.monotonic()))
        except TimeoutError:
            say.error(f"the streams are not there after {timeout:.0f}s: is the syncer pool running?")
            return False
        request = new_request_id()
        progress = {c: ClusterProgress(c, request) for c in clusters}
        changed = asyncio.Event()

        async def on_done(d: Delivery) -> None:
            done = decode(d.data, ResyncDone)
            p = progress.get(done.cluster)
            if p is not None and p.add(done):
                say.line(f"{done.cluster}: {done.service} {done.instance} done"
                         f"{' (' + done.detail + ')' if done.detail else ''}"
                         f"{' epoch ' + done.epoch if done.epoch else ''}")
                changed.set()

        # Follow the answers before asking, so none is missed.
        for c in clusters:
            followers.append(await bus.follow(subjects.resync_done_cluster(c), on_done, name=f"answers {c}"))
        reason = f"albus resync by {getpass.getuser()}@{socket.gethostname()}"
        for c in clusters:
            await bus.publish(subjects.resync_request(c), ResyncRequest(cluster=c, request=request, reason=reason),
                              ttl=REQUEST_TTL_SECONDS)
        started = time.monotonic()
        say.line(f"resync {request} requested for {', '.join(clusters)}; waiting up to {timeout:.0f}s")
        while True:
            waiting = {c: p.missing() for c, p in progress.items()}
            if not any(waiting.values()):
                say.line(f"converged in {time.monotonic() - started:.1f}s: {', '.join(clusters)}")
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                for c, lacks in waiting.items():
                    if lacks:
                        say.error(f"{c}: not converged: {'; '.join(lacks)}")
                return False
            changed.clear()
            await first_of(changed, timeout=left)
    finally:
        for f in followers:
            await f.stop()
        await bus.close()


class Progress:
    """Where the command says what happens (stdout and stderr; tests capture them)."""

    def line(self, text: str) -> None:
        print(text, flush=True)

    def error(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)


def clusters_of(cfg: Config, wanted: list[str]) -> list[str]:
    """The clusters named on the command line, else the syncer pool's, else this configuration's."""
    if wanted:
        return list(dict.fromkeys(wanted))
    pool = [c.name for c in cfg.albus.syncer.clusters]
    return pool or [cfg.cluster]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="albus resync",
        description="Ask the running services to rebuild every stream from the clusters and the controller "
                    "(disaster recovery: NATS data lost), and wait until the clusters have converged again.")
    p.add_argument("--cluster", action="append", default=[], help="a cluster to resync (repeat; default: the "
                   "configuration's clusters)")
    p.add_argument("--config", help="albus values file (default: $ALBUS_CONFIG); gives the NATS URL")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for convergence (default 600)")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config)
        clusters = clusters_of(cfg, args.cluster)
        for c in clusters:
            subjects.esc(c)
    except (ConfigError, OSError, ValueError) as exc:
        print(f"albus resync: {exc}", file=sys.stderr)
        return 2
    if not cfg.albus.natsUrl:
        print("albus resync: albus.natsUrl (or NATS_URL) is required", file=sys.stderr)
        return 2
    try:
        return 0 if asyncio.run(resync(cfg, clusters, args.timeout)) else 1
    except BusRefused as exc:
        print(f"albus resync: NATS refused these credentials: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    raise SystemExit(main())
