"""Scenarios 2 (priority under load) and 3 (edit latency): API-server write to the controller's applied write.

An edit is either new endpoints (the Service's EndpointSlice → its pools are
PUT) or a changed port (the Service → its VS is PUT). Its latency runs from
the API server's write (the moment its answer reached the harness) to the end
of the first controller write for that Service sent after the edit was sent,
from the simulator's request log (same clock: this machine's wall clock); a
controller write that beat the API server's answer counts as 0. The API
call's own duration is reported apart.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client

from bench import results
from bench.cold import converge
from bench.stack import BenchPipeline, Knobs, Stack, kube_requests
from bench.workload import VipWatch, documents, endpoint_ip, kubectl_apply, name_of, ports_of

WRITES = ("POST", "PUT", "PATCH", "DELETE")


class Editor:
    """Sends edits at a steady rate and records when each was sent."""

    def __init__(self, p: BenchPipeline) -> None:
        self.p = p
        self.core = client.CoreV1Api(p.api)
        self.disc = client.DiscoveryV1Api(p.api)
        self.sent: list[tuple[str, float, str]] = []  # (vs name, time sent, kind)
        self.written: dict[tuple[str, float], float] = {}  # (vs name, time sent) -> the API server's answer
        self.gen: dict[int, int] = {}
        self.lock = threading.Lock()

    def edit(self, i: int, kind: str) -> None:
        name, ns = name_of(i), self.p.namespace
        with self.lock:
            g = self.gen[i] = self.gen.get(i, 0) + 1
        t = time.time()
        if kind == "endpoints":
            self.disc.patch_namespaced_endpoint_slice(f"{name}-bench", ns, {"endpoints": [
                {"addresses": [endpoint_ip(i, g + 1)], "conditions": {"ready": True}},
                {"addresses": [endpoint_ip(i, g + 2)], "conditions": {"ready": True}}]})
        else:
            # a JSON patch replaces the port in place (a strategic merge would add one)
            self.core.patch_namespaced_service(name, ns, [
                {"op": "replace", "path": "/spec/ports/0/port", "value": 80 + 1000 * (g % 2)}])
        vs = f"{self.p.cluster}--{ns}-{name}"
        with self.lock:
            self.sent.append((vs, t, kind))
            self.written[(vs, t)] = time.time()

    def steady(self, targets: list[int], rate: float, seconds: float, stop: threading.Event | None = None,
               port_share: int = 5) -> None:
        """`rate` edits/s for `seconds` (or until `stop`), one in `port_share` a port change."""
        with ThreadPoolExecutor(16) as ex:
            t0 = time.monotonic()
            k = 0
            while time.monotonic() - t0 < seconds and not (stop and stop.is_set()):
                due = t0 + k / rate
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                ex.submit(self.edit, targets[k % len(targets)], "ports" if k % port_share == 0 else "endpoints")
                k += 1


def latencies(p: BenchPipeline, ed: Editor, since_seq: int,
              timeout: float) -> tuple[list[tuple[float, float, str]], int]:
    """Per applied edit (sent at, seconds to the first controller write for its VS after that, kind);
    and how many edits were never applied."""
    deadline = time.monotonic() + timeout
    while True:
        entries, _ = p.requests_since(since_seq)
        writes: dict[str, list[float]] = {}
        for e in entries:
            if e["method"] in WRITES and e.get("status", 0) < 300 and e.get("name"):
                vs = str(e["name"])
                for cut in (vs, vs.rsplit("-", 2)[0]):  # a VS or one of its pools
                    writes.setdefault(cut, []).append(float(e["end"]))
        out: list[tuple[float, float, str]] = []
        missing = 0
        for vs, t, kind in ed.sent:
            after = [w for w in writes.get(vs, []) if w >= t]
            if after:
                out.append((t, max(0.0, min(after) - ed.written[(vs, t)]), kind))
            else:
                missing += 1
        if not missing or time.monotonic() > deadline:
            return out, missing
        time.sleep(1)


def edit_latency(stack: Stack, outdir: Path, n: int, rate: float, seconds: float) -> dict[str, Any]:
    with stack.pipeline("edits", Knobs()) as p:
        conv = converge(stack, p, n, 600 + n * 0.2)
        _, seq = p.requests_since(0)
        ed = Editor(p)
        usage = p.usage()
        before = kube_requests(p.api)
        t0 = time.monotonic()
        ed.steady(list(range(n)), rate, seconds)
        achieved = len(ed.sent) / (time.monotonic() - t0)
        lat, missing = latencies(p, ed, seq, 120)
        kube = kube_requests(p.api) - before
        use = usage.stop()
    fig = {"latency_s": results.percentiles([x for _, x, _ in lat]), "edits_sent": len(ed.sent),
           "edits_never_applied": missing, "achieved_edits_per_s": round(achieved, 1),
           "api_server_write_s": results.percentiles([w - t for (_, t), w in ed.written.items()]),
           "cold_convergence_s": conv["seconds"],
           "by_kind": {k: results.percentiles([x for _, x, kk in lat if kk == k]) for k in ("endpoints", "ports")},
           # every client's (the edits themselves, the pipeline's reads and writes, the harness's watches)
           "kube_requests_per_edit": {k: round(v / len(ed.sent), 3) for k, v in kube.most_common()
                                      if v >= len(ed.sent) / 100}}
    xs = sorted(x for _, x, _ in lat)
    results.plot_lines(outdir / "edit_latency.png", f"Edit latency, {rate:g} edits/s over {n} Services",
                       "latency (s)", "fraction of edits", {"CDF": (xs, [(i + 1) / len(xs) for i in range(len(xs))])})
    return results.write(outdir, "edit_latency", {"services": n, "edits_per_s": rate, "seconds": seconds,
                                                  "mix": "4 endpoint edits : 1 port edit"},
                         fig, {"p99_s_max": 0.25}, use)


def priority(stack: Stack, outdir: Path, n: int, hot: int, rate: float) -> dict[str, Any]:
    """Edits to `hot` converged Services while n new Services converge."""
    with stack.pipeline("prio", Knobs()) as p:
        p.wait_syncers(1)
        vips = VipWatch(p.api, p.namespace)
        kubectl_apply(documents(p.namespace, range(n, n + hot)), p.workdir / "hot", stack.kubectl_env)
        if not vips.wait({name_of(i) for i in range(n, n + hot)}, 300):
            raise RuntimeError("the hot Services did not converge")
        _, seq = p.requests_since(0)
        ed = Editor(p)
        stop = threading.Event()
        editing = threading.Thread(target=ed.steady, args=(list(range(n, n + hot)), rate, 1e9, stop))
        usage = p.usage()
        t0 = time.time()
        editing.start()
        kubectl_apply(documents(p.namespace, range(n)), p.workdir / "manifests", stack.kubectl_env)
        ok = vips.wait({name_of(i) for i in range(n)}, 600 + n * 0.2)
        backlog_s = time.time() - t0
        stop.set()
        editing.join()
        vips.stop()
        use = usage.stop()
        if not ok:
            raise RuntimeError(f"cold convergence under edits did not finish\n{p.logs()}")
        lat, missing = latencies(p, ed, seq, 120)
    fig = {"latency_s": results.percentiles([x for _, x, _ in lat]), "edits_sent": len(ed.sent),
           "edits_never_applied": missing, "backlog_convergence_s": round(backlog_s, 2), "hot_services": hot,
           "api_server_write_s": results.percentiles([w - t for (_, t), w in ed.written.items()])}
    results.plot_lines(outdir / "priority.png", f"Edits to converged Services during cold convergence of {n}",
                       "edit sent at (s into the backlog)", "latency (s)",
                       {"edit latency": ([t - t0 for t, _, _ in lat], [x for _, x, _ in lat])}, (1.0, "goal 1 s"))
    return results.write(outdir, "priority", {"services": n, "hot_services": hot, "edits_per_s": rate,
                                              "ports": [len(ports_of(i)) for i in range(3)]},
                         fig, {"p99_s_max": 1.0}, use)
