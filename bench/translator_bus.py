"""Scenario 5 through the bus alone: a translator process fed the scenario's events on a nats-server of its own.

``python -m bench.translator_bus [--services N] [--traced] [--label L] [--out FILE] [--profile FILE]``

The through-the-bus half of :mod:`bench.translator_tput` (its own function,
unchanged) without the in-process half, so that two revisions can be compared
back to back: run it from a copy of each revision (``git archive``), the cwd
being that copy. ``--traced`` publishes every event inside a change span as
the watcher does (a trace context in its headers, so the translator makes a
child span per tree, linked to every change); without it the events carry
none, as in the scenario. The cluster name is fixed, so the digest of the
trees published (every tree subject and its payload's sha256) compares across
runs and revisions. ``--profile`` attaches py-spy to the translator (raw
collapsed stacks). One JSON line per run is appended to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NatsClient

import albus.stack
import bench.translator_tput as tput
from albus.stack import write_config
from bench.stack import SELECTOR_KEY, VIP_NET, Stack
from services.common import tracing
from services.common.bus import Bus
from services.common.config import load_config
from services.common.contracts import Contract

CLUSTER = "btrbus"


def _record_trees(into: dict[str, str]) -> None:
    """The scenario's tree subscription also keeps a digest of each tree's payload."""
    subscribe = NatsClient.subscribe

    async def recording(self: NatsClient, subject: str, **kw: Any) -> Any:
        inner = kw.get("cb")
        if subject.startswith("avi.") and inner is not None:

            async def digest(msg: Any) -> None:
                into[msg.subject] = hashlib.sha256(msg.data).hexdigest()
                await inner(msg)
            kw["cb"] = digest
        return await subscribe(self, subject, **kw)

    NatsClient.subscribe = recording  # type: ignore[method-assign,assignment]


def _traced_events() -> None:
    """Every k8s object published inside a change span, as the watcher publishes it."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider())
    publish = Bus.publish

    async def traced(self: Bus, subject: str, msg: Contract, **kw: Any) -> int:
        if msg.kind_name == "kube-object":
            with tracing.change_span(msg):  # type: ignore[arg-type]
                return await publish(self, subject, msg, **kw)
        return await publish(self, subject, msg, **kw)

    Bus.publish = traced  # type: ignore[method-assign]


def _profiled(path: str) -> list[subprocess.Popen[bytes]]:
    spies: list[subprocess.Popen[bytes]] = []
    service = albus.stack.service

    def start_profiled(*args: Any, **kw: Any) -> Any:
        proc = service(*args, **kw)
        start = proc.start

        def start_and_attach() -> Any:
            started = start()
            spy = Path(sys.executable).with_name("py-spy")
            spies.append(subprocess.Popen([str(spy), "record", "--pid", str(proc.pid), "-r", "200", "-f", "raw",
                                           "-o", path, "--nonblocking"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            return started

        proc.start = start_and_attach  # type: ignore[method-assign]
        return proc

    setattr(tput, "service", start_profiled)  # noqa: B010 (the name the scenario starts its translator by)
    return spies


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.translator_bus")
    ap.add_argument("--services", type=int, default=2000)
    ap.add_argument("--traced", action="store_true")
    ap.add_argument("--label", default="")
    ap.add_argument("--out", type=Path, default=Path("translator_bus_runs.jsonl"))
    ap.add_argument("--profile", default="")
    args = ap.parse_args()
    trees: dict[str, str] = {}
    _record_trees(trees)
    if args.traced:
        _traced_events()
    spies = _profiled(args.profile) if args.profile else []
    with tempfile.TemporaryDirectory(prefix="albus-bench-") as tmp:
        stack = Stack(Path(tmp))
        stack.nats.start()
        try:
            cfg_path = write_config(
                stack.workdir / CLUSTER / "config.yaml", cluster=CLUSTER, controller="http://127.0.0.1:9",
                username="u", password="p", nats_url=stack.nats.url, kubeconfig="", vip_networks=[VIP_NET],
                extra={"AKOSettings": {"namespaceSelector": {"labelKey": SELECTOR_KEY, "labelValue": CLUSTER},
                                       "logLevel": "WARNING"}})
            cfg = load_config(cfg_path)
            evs = tput.events(CLUSTER, f"{CLUSTER}-ns", args.services)
            load = os.getloadavg()[0]
            got = asyncio.run(tput._through_bus(stack, cfg, evs, cfg_path))
        finally:
            stack.nats.stop()
            for spy in spies:
                spy.wait(timeout=60)
    digest = hashlib.sha256("\n".join(f"{s} {d}" for s, d in sorted(trees.items())).encode()).hexdigest()[:16]
    run = {"label": args.label, "traced": args.traced, "services": args.services, "load_1min": round(load, 2),
           "published_trees_digest": digest, **got}
    with args.out.open("a") as f:
        f.write(json.dumps(run) + "\n")
    print(json.dumps(run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
