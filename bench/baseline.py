"""The baseline: a plain concurrent avisdk client creating the same controller objects, no Kubernetes, no bus.

Per Service it creates what ``albus translate`` produces for it (vsvip, a
pool per port, l4policyset, virtualservice), one object per call in
dependency order; Services run `concurrency` at a time, as the syncer's
concurrency limit allows albus. Against a rate-limited controller it paces
itself with the same token bucket rate and retries 429s, as any script must.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from avi.sdk.avi_api import ApiSession

from services.common.config import Config
from services.translator.offline import translate_documents

ORDER = ("vsvip", "pool", "l4policyset", "virtualservice")


def objects_per_service(docs: list[dict[str, Any]], cfg: Config) -> list[list[tuple[str, dict[str, Any]]]]:
    """The translator's own objects, grouped by Service (by the VS name prefix), in creation order."""
    by_type, problems = translate_documents(docs, cfg)
    if problems:
        raise RuntimeError(f"the workload does not translate cleanly: {problems[:3]}")
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for vs in by_type["virtualservice"]:
        groups[vs["name"]] = []
    for t in ORDER:
        for body in by_type.get(t, []):
            owner = next(n for n in (body["name"], body["name"].rsplit("-", 2)[0]) if n in groups)
            groups[owner].append((t, body))
    return list(groups.values())


class Bucket:
    def __init__(self, rate: float) -> None:
        self.rate, self.next = rate, time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> None:
        with self.lock:
            now = time.monotonic()
            self.next = max(self.next, now) + 1 / self.rate
            wait = self.next - 1 / self.rate - now
        if wait > 0:
            time.sleep(wait)


def run_baseline(url: str, user: str, password: str, services: list[list[tuple[str, dict[str, Any]]]],
                 concurrency: int, rate: float | None) -> dict[str, Any]:
    local = threading.local()
    bucket = Bucket(rate) if rate else None
    calls = [0, 0]  # calls, 429s

    def session() -> ApiSession:
        if not hasattr(local, "s"):
            local.s = ApiSession(url, user, password, tenant="admin", api_version="22.1.3", verify=True)
        return local.s

    def create(objs: list[tuple[str, dict[str, Any]]]) -> float:
        s = session()
        for t, body in objs:
            delay = 0.5
            while True:
                if bucket:
                    bucket.take()
                rsp = s.post(t, data=body)
                calls[0] += 1
                if rsp.status_code != 429:
                    break
                calls[1] += 1
                time.sleep(delay)
                delay = min(delay * 2, 8)
            if rsp.status_code != 201:
                raise RuntimeError(f"baseline: {t} {body['name']}: {rsp.status_code} {rsp.text[:300]}")
        return time.time()

    t0 = time.time()
    with ThreadPoolExecutor(concurrency) as ex:
        done = list(ex.map(create, services))
    elapsed = time.time() - t0
    return {"seconds": round(elapsed, 2), "services": len(services), "calls": calls[0], "rejected_429": calls[1],
            "calls_per_service": round(calls[0] / max(len(services), 1), 2),
            "services_per_s": round(len(services) / elapsed, 1),
            "completion_s": sorted(round(d - t0, 3) for d in done)}
