"""Fault injection, the API rate limiter, request counters and the request log."""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

Json = Any


@dataclass
class FaultRule:
    """Matching requests (method and path regex, both optional) get latency, a status, or a dropped connection.

    `probability` < 1 makes an error rate; `count` limits how many requests the rule hits (then it is removed).
    """

    id: int
    method: str | None = None
    path: re.Pattern[str] | None = None
    status: int | None = None
    body: Json = None
    count: int | None = None
    probability: float = 1.0
    latency: float = 0.0
    drop: bool = False
    hits: int = 0

    def to_json(self) -> dict[str, Json]:
        return {"id": self.id, "method": self.method, "path": self.path.pattern if self.path else None,
                "status": self.status, "body": self.body, "count": self.count, "probability": self.probability,
                "latency_ms": self.latency * 1000, "drop": self.drop, "hits": self.hits}


@dataclass
class FaultDecision:
    latency: float = 0.0
    status: int | None = None
    body: Json = None
    drop: bool = False


class Faults:
    def __init__(self, seed: int | None = None) -> None:
        self.rules: list[FaultRule] = []
        self._next = 1
        self._rng = random.Random(seed)

    def add(self, spec: dict[str, Json]) -> FaultRule:
        allowed = {"method", "path", "status", "body", "count", "probability", "latency_ms", "drop"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        status = spec.get("status")
        drop = bool(spec.get("drop", False))
        latency = float(spec.get("latency_ms", 0)) / 1000
        if status is None and not drop and latency <= 0:
            raise ValueError("a fault needs status, drop or latency_ms")
        prob = float(spec.get("probability", 1.0))
        if not 0 < prob <= 1:
            raise ValueError("probability must be in (0, 1]")
        count = spec.get("count")
        rule = FaultRule(
            id=self._next,
            method=str(spec["method"]).upper() if spec.get("method") else None,
            path=re.compile(spec["path"]) if spec.get("path") else None,
            status=int(status) if status is not None else None,
            body=spec.get("body"),
            count=int(count) if count is not None else None,
            probability=prob, latency=latency, drop=drop,
        )
        self._next += 1
        self.rules.append(rule)
        return rule

    def remove(self, rid: int) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rid]
        return len(self.rules) != before

    def clear(self) -> None:
        self.rules.clear()

    def decide(self, method: str, path: str) -> FaultDecision | None:
        if not self.rules:
            return None
        d = FaultDecision()
        hit = False
        for r in list(self.rules):
            if r.method is not None and r.method != method:
                continue
            if r.path is not None and not r.path.search(path):
                continue
            if (r.status is not None or r.drop) and (d.status is not None or d.drop):
                continue  # the first error rule that fires decides the outcome
            if r.probability < 1 and self._rng.random() >= r.probability:
                continue
            hit = True
            r.hits += 1
            d.latency += r.latency
            if r.status is not None:
                d.status, d.body = r.status, r.body
            d.drop = d.drop or r.drop
            if r.count is not None:
                r.count -= 1
                if r.count <= 0:
                    self.rules.remove(r)
        return d if hit else None


class RateLimiter:
    """Token bucket per client IP: `rate` requests/s on average, up to `burst` at once; beyond → 429."""

    def __init__(self, enabled: bool = False, rate: float = 32.0, burst: int = 64) -> None:
        self.enabled = enabled
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self.rejected = 0

    def allow(self, client: str) -> bool:
        if not self.enabled:
            return True
        now = time.monotonic()
        tokens, last = self._buckets.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            self.rejected += 1
            return False
        self._buckets[client] = (tokens - 1, now)
        return True

    def reset(self) -> None:
        self._buckets.clear()

    def to_json(self) -> dict[str, Json]:
        return {"enabled": self.enabled, "rate": self.rate, "burst": self.burst, "rejected": self.rejected}


@dataclass
class RequestLog:
    """Every API request (not the /_sim admin API), newest last, bounded; counters are never truncated."""

    limit: int = 100_000
    entries: list[dict[str, Json]] = field(default_factory=list)
    counts: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    seq: int = 0
    dropped: int = 0

    def add(self, entry: dict[str, Json]) -> None:
        self.seq += 1
        entry["seq"] = self.seq
        self.counts[(entry["method"], entry["type"] or "", entry["status"])] += 1
        self.entries.append(entry)
        if len(self.entries) > self.limit:
            cut = len(self.entries) - self.limit
            del self.entries[:cut]
            self.dropped += cut

    def reset(self) -> None:
        self.entries.clear()
        self.counts.clear()
        self.dropped = 0

    def counters(self) -> dict[str, Json]:
        by_method: Counter[str] = Counter()
        by_type: Counter[str] = Counter()
        by_status: Counter[str] = Counter()
        detail = []
        for (m, t, s), n in sorted(self.counts.items()):
            by_method[m] += n
            by_type[t] += n
            by_status[str(s)] += n
            detail.append({"method": m, "type": t, "status": s, "count": n})
        writes = sum(n for (m, _t, _s), n in self.counts.items() if m in ("POST", "PUT", "PATCH", "DELETE"))
        return {"total": sum(self.counts.values()), "writes": writes, "by_method": dict(by_method),
                "by_type": dict(by_type), "by_status": dict(by_status), "detail": detail}
