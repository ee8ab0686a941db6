"""Scenario 1 (cold convergence against the baseline), 4 (idle resync) and 7 (memory), on one pipeline."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from bench import results
from bench.baseline import objects_per_service, run_baseline
from bench.stack import SELECTOR_KEY, BenchPipeline, Knobs, Stack, controller_writes, kube_requests
from bench.workload import VipWatch, documents, kubectl_apply, name_of
from services.common.config import load_config
from tests.e2e.harness import wait_for

CONTROLLER_RATE = 32.0  # the controller's default API rate limit per client (the simulator's realistic profile)
SYNCER_RATE = 30.0      # the syncer's default token bucket, just under it


def baseline_for(p: BenchPipeline, n: int, rate: float | None) -> dict[str, Any]:
    """The baseline on this pipeline's simulator, under another cluster name (its objects never meet albus's)."""
    cfg = load_config(p.config_path)
    cfg.AKOSettings.clusterName = f"{p.cluster}base"
    ns_doc = {"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": p.namespace, "labels": {SELECTOR_KEY: p.cluster}}}
    groups = objects_per_service([ns_doc, *documents(p.namespace, range(n))], cfg)
    return run_baseline(p.sim.url, p.sim.username, p.sim.password, groups, p.knobs.concurrency, rate)


T = TypeVar("T")


def watch_convergence(p: BenchPipeline, n: int, timeout: float,
                      start: Callable[[], T]) -> tuple[list[float], dict[str, Any], T]:
    """Call `start` and wait until the n Services have a VIP: (seconds from the start to each VIP, sorted;
    the processes' usage meanwhile; what `start` returned)."""
    vips = VipWatch(p.api, p.namespace)
    t0 = time.time()
    started = start()
    usage = p.usage()
    ok = vips.wait({name_of(i) for i in range(n)}, timeout)
    vips.stop()
    use = usage.stop()
    if not ok:
        raise RuntimeError(f"only {len(vips.first)}/{n} Services got a VIP in {timeout:.0f}s\n{p.logs()}")
    return sorted(t - t0 for t in vips.first.values()), use, started


def converge(stack: Stack, p: BenchPipeline, n: int, timeout: float) -> dict[str, Any]:
    """Apply n Services in bulk and wait for every VIP; the figures of that."""
    p.wait_syncers(p.knobs.syncers)
    p.reset_log()
    t0 = time.time()  # (the same instant as the convergence clock's start, to a few ms)
    with ThreadPoolExecutor(1) as ex:
        done, use, applying = watch_convergence(p, n, timeout, lambda: ex.submit(
            kubectl_apply, documents(p.namespace, range(n)), p.workdir / "manifests", stack.kubectl_env))
        apply_s = applying.result()
    c = p.counters()
    entries, _ = p.requests_since(0)
    writes_at = [(float(e["start"]), float(e["end"])) for e in entries if e["method"] in ("POST", "PUT", "DELETE")
                 and not str(e.get("path", "")).startswith("/login")]
    writes = int(c["writes"])
    return {"seconds": round(done[-1], 2), "apply_seconds": round(apply_s, 2), "services": n,
            "services_per_s": round(n / done[-1], 1), "controller_calls": c["total"],
            "controller_writes": writes, "calls_per_service": round(c["total"] / n, 2),
            "writes_per_service": round(writes / n, 2), "calls_by_method": c["by_method"],
            "macro_calls_per_service": round(c["by_type"].get("macro", 0) / n, 2),
            "calls_by_type": c["by_type"], "calls_by_status": c["by_status"],
            "completion_s": [round(x, 3) for x in done], "usage": use,
            # the controller-facing part alone: first write to last write, Kubernetes and kubectl excluded
            "controller_window_s": round(max(e for _, e in writes_at) - min(s for s, _ in writes_at), 2)
            if writes_at else None,
            "first_write_after_s": round(min(s for s, _ in writes_at) - t0, 2) if writes_at else None}


def populated_start(stack: Stack, n: int, base: dict[str, Any], timeout: float, outdir: Path,
                    baseline_from: str = "cold_unlimited (same run)") -> dict[str, Any]:
    """albus started on a cluster that already holds the n Services: the bus's cost with Kubernetes writes
    out of the clock, against the same baseline figure; and what albus asked of the API server for it."""
    with stack.pipeline("populated", Knobs(), start=False) as p:
        apply_s = kubectl_apply(documents(p.namespace, range(n)), p.workdir / "manifests", stack.kubectl_env)
        before = kube_requests(p.api)
        done, use, _ = watch_convergence(p, n, timeout, p.start_services)
        kube = kube_requests(p.api) - before
        c = p.counters()
    results.plot_lines(outdir / "cold_populated.png", f"albus started on a cluster with {n} Services",
                       "seconds from starting the services", "Services converged",
                       {"albus (VIP in Service status)": results.cumulative(done),
                        "baseline (raw avisdk client)": results.cumulative(base["completion_s"])})
    figures = {"albus_seconds": round(done[-1], 2), "baseline_seconds": base["seconds"],
               "ratio": round(done[-1] / base["seconds"], 2), "first_vip_s": round(done[0], 2),
               "apply_seconds_before_start": round(apply_s, 2), "controller_calls": c["total"],
               "controller_writes": c["writes"], "calls_per_service": round(c["total"] / n, 2),
               # every client's (the harness's VIP watch too), from the start to the last VIP
               "kube_requests_per_service": {k: round(v / n, 3) for k, v in kube.most_common() if v >= n / 100}}
    return results.write(outdir, "cold_populated", {"services": n, "baseline_from": baseline_from,
                                                    "clock": "from starting the four services (process start "
                                                             "included) to the last VIP in Service status"},
                         figures, {"ratio_max": 1.2}, use)


def populated(stack: Stack, outdir: Path, n: int) -> list[dict[str, Any]]:
    """The populated start alone (``--only populated``), against a baseline run of its own."""
    with stack.pipeline("popbase", Knobs(), start=False) as p:
        base = baseline_for(p, n, None)
    return [populated_start(stack, n, base, 600 + n * 0.2, outdir, "its own baseline run (same simulator build)")]


def idle_resync(p: BenchPipeline, n: int, timeout: float) -> dict[str, Any]:
    """Restart every service with nothing changed: the controller calls until the syncers have resynced."""
    p.reset_log()
    t0 = time.time()
    p.restart_services()
    usage = p.usage()  # the new processes' (their peak memory is the kernel's high-water mark: none is missed)
    wait_for(lambda: p.syncers_settled(t0), timeout, "the restarted syncers to settle", interval=0.5)
    settled = time.time() - t0
    # then a quiet period: a write that came late would still be counted
    time.sleep(10)
    use = usage.stop()
    entries, _ = p.requests_since(0)
    writes = controller_writes(entries)
    reads = [e for e in entries if e["method"] == "GET"]
    by_type: dict[str, int] = {}
    for e in reads:
        by_type[str(e.get("type") or e.get("path"))] = by_type.get(str(e.get("type") or e.get("path")), 0) + 1
    objects = sum(len(p.objects(t)) for t in ("virtualservice", "pool", "vsvip", "l4policyset"))
    return {"controller_writes": len(writes), "writes": writes[:20], "controller_reads": len(reads),
            "reads_by_type": by_type, "objects_on_controller": objects, "services": n,
            "reads_per_object": round(len(reads) / max(objects, 1), 4), "settled_after_s": round(settled, 2),
            "window_s": round(time.time() - t0, 2), "usage": use}


def memory(outdir: Path, n: int, label: str, cold: dict[str, float], restart: dict[str, float]) -> dict[str, Any]:
    """Scenario 7: each service's peak over the cold convergence and the restart after it (a restarted
    service reloads everything at once: its own peak)."""
    peaks = {k: max(v, restart.get(k, 0.0)) for k, v in cold.items()}
    mem = {k: v for k, v in peaks.items() if k != "simulator"}
    results.plot_bars(outdir / "memory.png", f"Peak RSS at {n} Services", "MB", mem, (300, "goal 300 MB"))
    during = f"cold_{label}" + (" and the idle resync's restart" if restart else "")
    return results.write(outdir, "memory", {"services": n, "measured_during": during},
                         {"peak_rss_mb": peaks, "max_service_mb": max(mem.values()),
                          "cold_peak_rss_mb": cold, "restart_peak_rss_mb": restart},
                         {"peak_rss_mb_max": 300})


def run(stack: Stack, outdir: Path, n: int, realistic: bool, with_resync: bool) -> list[dict[str, Any]]:
    label = "limited" if realistic else "unlimited"
    knobs = Knobs(realistic=realistic, calls_per_second=SYNCER_RATE if realistic else 1e6)
    timeout = 600 + (n * 6 / SYNCER_RATE if realistic else n * 0.2)
    docs: list[dict[str, Any]] = []
    with stack.pipeline(f"cold{label[:3]}", knobs, start=False) as p:
        base = baseline_for(p, n, SYNCER_RATE if realistic else None)
        p.start_services()
        albus = converge(stack, p, n, timeout)
        ratio = round(albus["seconds"] / base["seconds"], 2)
        window = albus["controller_window_s"]
        figures: dict[str, Any] = {
            "albus_seconds": albus["seconds"], "baseline_seconds": base["seconds"], "ratio": ratio,
            # the same comparison without the Kubernetes side (kubectl and the API server, which the
            # baseline skips): albus's controller writes from first to last against the baseline's run
            "controller_window_ratio": round(window / base["seconds"], 2) if window else None,
            # how long after kubectl returned the last VIP came
            "albus_after_apply_s": round(albus["seconds"] - albus["apply_seconds"], 2),
            "albus": {k: v for k, v in albus.items() if k != "completion_s"},
            "baseline": {k: v for k, v in base.items() if k != "completion_s"},
        }
        if realistic:
            floor = albus["controller_calls"] / CONTROLLER_RATE
            figures["calls_floor_seconds"] = round(floor, 2)
            figures["albus_vs_floor"] = round(albus["seconds"] / floor, 2)
        results.plot_lines(outdir / f"cold_{label}.png", f"Cold convergence of {n} Services ({label} controller)",
                           "seconds from kubectl apply", "Services converged",
                           {"albus (VIP in Service status)": results.cumulative(albus["completion_s"]),
                            "baseline (raw avisdk client)": results.cumulative(base["completion_s"])})
        params = {"services": n, "ports_per_service": "1-3 (cycling)", "endpoints_per_service": 2,
                  "simulator_profile": "realistic (32 req/s, burst 64)" if realistic else "default (no limit)",
                  "syncer": {"replicas": 1, "concurrency": knobs.concurrency, "callsPerSecond": knobs.calls_per_second},
                  "baseline": {"threads": knobs.concurrency, "rate": SYNCER_RATE if realistic else None},
                  "apply": "kubectl apply --server-side, 4 bulk files in parallel"}
        goals = {"ratio_max": 1.2, "writes_per_service": 1}
        docs.append(results.write(outdir, f"cold_{label}", params, figures, goals, albus["usage"]))
        rs = idle_resync(p, n, timeout=300) if with_resync else None
        if rs is not None:
            results.plot_bars(outdir / "idle_resync.png", f"Idle resync of {n} Services: controller calls", "calls",
                              {"writes": rs["controller_writes"], **rs["reads_by_type"]})
            docs.append(results.write(outdir, "idle_resync", {"services": n, "restarted": list(p.children)},
                                      rs, {"controller_writes": 0}))
        if not realistic:
            docs.append(memory(outdir, n, label, albus["usage"]["peak_rss_mb"],
                               rs["usage"]["peak_rss_mb"] if rs is not None else {}))
    if not realistic:
        docs.append(populated_start(stack, n, base, timeout, outdir))
    return docs
