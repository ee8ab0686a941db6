"""``albus trace <kind>/<namespace>/<name>``: the timeline of a change, from the local span store.

Reads the bounded span store on the bus (stream ``ALBUS_TRACES``, see
docs/tracing.md): the object's index gives the trace of its latest change
(or of ``--rv``), the trace's spans give each hop with its service, start
offset and duration, the controller calls with their status, and where the
time went. ``--json`` prints the same for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from albus.up import DEFAULT_WORKDIR
from services.common import subjects
from services.common.bus import Bus
from services.common.config import ConfigError, load_config
from services.common.contracts import ChangeTraced, SpanBatch, SpanRecord, decode
from services.watcher.kinds import KINDS

HEALTH_SERVICE = "albus-health"
WATCHER_SERVICE = "albus-watcher"
# A change younger than this may still be on its way past the watcher: never skipped as "went nowhere".
SETTLE_NS = 5_000_000_000


class TraceNotFound(LookupError):
    pass


KINDS_BY_LOWER = {k.kind.lower(): k.kind for k in KINDS}


@dataclass(frozen=True)
class Target:
    kind: str
    namespace: str
    name: str

    @classmethod
    def parse(cls, text: str) -> Target:
        parts = text.split("/")
        if parts and parts[0]:
            # kubectl's habit: service/demo/web names the same object as Service/demo/web.
            parts[0] = KINDS_BY_LOWER.get(parts[0].lower(), parts[0])
        if len(parts) == 3 and all(parts):
            return cls(*parts)
        if len(parts) == 2 and all(parts):  # cluster-scoped
            return cls(parts[0], "", parts[1])
        raise ValueError(f"{text!r}: expected <kind>/<namespace>/<name> (or <kind>/<name>)")


async def changes_of(bus: Bus, cluster: str, target: Target) -> list[ChangeTraced]:
    """Every traced change of the object still in the store, oldest first."""
    subject = subjects.trace_index(cluster, target.kind, target.namespace, target.name)
    return [decode(d.data, ChangeTraced) for d in await bus.history(subject)]


async def spans_of(bus: Bus, cluster: str, trace_id: str) -> list[SpanRecord]:
    seen: dict[str, SpanRecord] = {}
    for d in await bus.history(subjects.trace_spans(cluster, trace_id)):
        for rec in decode(d.data, SpanBatch).spans:
            seen[rec.span_id] = rec
    return sorted(seen.values(), key=lambda r: (r.start_ns, r.end_ns))


def pick(changes: list[ChangeTraced], resource_version: str | None, trace_id: str | None) -> ChangeTraced:
    for ch in reversed(changes):
        if (resource_version is None or ch.resource_version == resource_version) and (
            trace_id is None or ch.trace_id == trace_id
        ):
            return ch
    raise TraceNotFound("no traced change" + (f" at resourceVersion {resource_version}" if resource_version else ""))


def went_nowhere(view: dict[str, Any], change: ChangeTraced, now_ns: int) -> bool:
    """The change is settled and only the watcher ever worked on it (albus's own status write echoed back,
    an edit of nothing albus reads): not what "the latest change" means to someone asking."""
    return view["services"] == [WATCHER_SERVICE] and now_ns - change.start_ns > SETTLE_NS


# -- the timeline ------------------------------------------------------------------


def _ms(ns: int) -> float:
    return round(ns / 1e6, 3)


def _ordered(spans: list[SpanRecord]) -> list[tuple[int, SpanRecord]]:
    """Depth-first by start time; spans whose parent is not in the store are roots."""
    ids = {s.span_id for s in spans}
    children: dict[str, list[SpanRecord]] = {}
    for s in spans:
        children.setdefault(s.parent_span_id if s.parent_span_id in ids else "", []).append(s)
    out: list[tuple[int, SpanRecord]] = []

    def walk(parent: str, depth: int) -> None:
        for s in sorted(children.get(parent, ()), key=lambda r: r.start_ns):
            out.append((depth, s))
            walk(s.span_id, depth + 1)

    walk("", 0)
    return out


def _busy_ns(spans: list[SpanRecord]) -> int:
    """Time covered by at least one span (the rest is bus transit, batching and waiting)."""
    total, end = 0, 0
    for s in sorted(spans, key=lambda r: r.start_ns):
        start = max(s.start_ns, end)
        if s.end_ns > start:
            total += s.end_ns - start
            end = s.end_ns
    return total


def timeline(trace_id: str, spans: list[SpanRecord], change: ChangeTraced | None = None) -> dict[str, Any]:
    if not spans:
        raise TraceNotFound(f"trace {trace_id} has no spans in the store (yet?)")
    t0 = min(s.start_ns for s in spans)
    t1 = max(s.end_ns for s in spans)
    rows = []
    for depth, s in _ordered(spans):
        rows.append({
            "depth": depth, "service": s.service, "name": s.name, "kind": s.kind,
            "offset_ms": _ms(s.start_ns - t0), "duration_ms": _ms(s.end_ns - s.start_ns),
            "status_code": s.attributes.get("http.response.status_code"), "error": s.error,
            "span_id": s.span_id, "parent_span_id": s.parent_span_id,
            "links": [{"trace_id": t, "span_id": i} for t, i in s.links],
            "events": [{"name": e.name, "offset_ms": _ms(e.time_ns - t0), **e.attributes} for e in s.events],
            "attributes": s.attributes,
        })
    calls = [s for s in spans if s.kind == "CLIENT"]
    by_service: dict[str, float] = {}
    for s in spans:
        by_service[s.service] = _ms(_busy_ns([x for x in spans if x.service == s.service]))
    return {
        "trace_id": trace_id,
        "change": change.model_dump(mode="json") if change else None,
        "total_ms": _ms(t1 - t0),
        "complete": any(s.service == HEALTH_SERVICE for s in spans),
        "services": sorted(by_service),
        "spans": rows,
        "time": {
            "by_service_ms": by_service,
            "controller_ms": _ms(_busy_ns(calls)),
            "controller_calls": len(calls),
            "between_hops_ms": _ms((t1 - t0) - _busy_ns(spans)),
        },
    }


def render(view: dict[str, Any]) -> str:
    ch = view.get("change")
    head = f"trace {view['trace_id']}"
    if ch:
        ref = ch["object"]
        obj = "/".join(p for p in (ref["kind"], ref["namespace"], ref["name"]) if p)
        head += f"  {obj} rv {ch['resource_version']}{' (deleted)' if ch['deleted'] else ''}"
    lines = [head + f"  total {view['total_ms']:.1f} ms" + ("" if view["complete"] else "  (no status write yet)")]
    if view.get("skipped"):
        lines.append(f"(passed over {view['skipped']} later change(s) that went no further than the watcher, "
                     "such as albus's own status writes; --rv shows one)")
    lines.append(f"{'offset':>10} {'duration':>10}  {'service':<17} span")
    for r in view["spans"]:
        extra = f"  -> {r['status_code']}" if r["status_code"] is not None else ""
        if r["links"]:
            extra += f"  (links {len(r['links'])} changes)"
        for e in r["events"]:
            extra += f"  [{e['name'].removeprefix('albus.')}]"
        if r["error"] and r["status_code"] is None:
            extra += "  ERROR"
        lines.append(f"{r['offset_ms']:>8.1f}ms {r['duration_ms']:>8.1f}ms  {r['service']:<17} "
                     f"{'  ' * r['depth']}{r['name']}{extra}")
    t = view["time"]
    spent = ", ".join(f"{svc.removeprefix('albus-')} {ms:.1f}" for svc, ms in t["by_service_ms"].items())
    lines.append(f"where time went (ms): {spent}; controller {t['controller_ms']:.1f} in "
                 f"{t['controller_calls']} calls; between hops {t['between_hops_ms']:.1f}")
    return "\n".join(lines)


# -- the command -------------------------------------------------------------------


async def load(nats_url: str, cluster: str, target: Target | None, resource_version: str | None,
               trace_id: str | None, wait: float) -> dict[str, Any]:
    bus = await Bus.connect(nats_url, "albus-trace")
    try:
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            try:
                if target is not None and resource_version is None and trace_id is None:
                    view = await _latest_that_went_somewhere(bus, cluster, target)
                else:
                    change = None
                    if target is not None:
                        change = pick(await changes_of(bus, cluster, target), resource_version, trace_id)
                        trace_id = change.trace_id
                    assert trace_id is not None
                    view = timeline(trace_id, await spans_of(bus, cluster, trace_id), change)
                if view["complete"] or asyncio.get_running_loop().time() >= deadline:
                    return view
            except TraceNotFound:
                if asyncio.get_running_loop().time() >= deadline:
                    raise
            # Spans are exported in batches: the last hops may land a moment later.
            await asyncio.sleep(0.5)
    finally:
        await bus.close()


async def _latest_that_went_somewhere(bus: Bus, cluster: str, target: Target) -> dict[str, Any]:
    """The latest change's timeline, passing over later ones that only the watcher saw (counted in
    ``skipped``): after a Service gets its VIP, its latest change is albus's own status write."""
    changes = await changes_of(bus, cluster, target)
    if not changes:
        raise TraceNotFound("no traced change")
    now = time.time_ns()
    newest: dict[str, Any] | None = None
    for skipped, change in enumerate(reversed(changes)):
        try:
            view = timeline(change.trace_id, await spans_of(bus, cluster, change.trace_id), change)
        except TraceNotFound:
            if now - change.start_ns <= SETTLE_NS:
                raise  # on its way: this is the one (``--wait`` waits for it)
            continue  # its spans are gone from the bounded store
        newest = newest or view
        if not went_nowhere(view, change, now):
            view["skipped"] = skipped
            return view
    if newest is None:
        raise TraceNotFound("no traced change with spans left in the store")
    newest["skipped"] = 0  # every one went nowhere: the newest, as asked
    return newest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="albus trace", description=__doc__.splitlines()[0])
    p.add_argument("object", nargs="?", help="<kind>/<namespace>/<name>, e.g. Service/demo/web")
    p.add_argument("--rv", help="the change at this resourceVersion (default: the latest that went further "
                                "than the watcher)")
    p.add_argument("--trace-id", help="a trace id (from a Kubernetes Event's note or annotation)")
    p.add_argument("--wait", type=float, default=0.0, help="seconds to wait for the trace to complete")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--config", help="albus values file (default: $ALBUS_CONFIG, else .albus/config.yaml of albus up)")
    p.add_argument("--cluster", help="cluster name (default: AKOSettings.clusterName)")
    p.add_argument("--nats", help="NATS URL (default: albus.natsUrl / $NATS_URL)")
    args = p.parse_args(argv)
    if not args.object and not args.trace_id:
        p.error("give an object or --trace-id")
    try:
        # Beside `albus up`, its configuration is the natural default.
        up_config = DEFAULT_WORKDIR / "config.yaml"
        config = args.config or os.environ.get("ALBUS_CONFIG") or (str(up_config) if up_config.exists() else None)
        cfg = load_config(config)
        target = Target.parse(args.object) if args.object else None
    except (ConfigError, OSError, ValueError) as err:
        print(f"albus trace: {err}", file=sys.stderr)
        return 2
    nats_url = args.nats or cfg.albus.natsUrl
    if not nats_url:
        print("albus trace: no NATS URL (--nats, albus.natsUrl or $NATS_URL)", file=sys.stderr)
        return 2
    try:
        view = asyncio.run(load(nats_url, args.cluster or cfg.cluster, target, args.rv, args.trace_id,
                                args.wait))
    except TraceNotFound as err:
        print(f"albus trace: {err}", file=sys.stderr)
        return 1
    print(json.dumps(view, indent=2) if args.json else render(view))
    return 0
