"""Simulator throughput: creates/s and GET-by-name/s with the simulator pinned to one core.

    .venv/bin/python bench/sim_throughput.py [--seconds 5] [--clients 1] [--concurrency 32]

The simulator runs as `python -m albus.sim` in a child process pinned to CPU 0; load comes from
client processes (aiohttp, keep-alive, `--concurrency` requests in flight each) pinned to the other
CPUs. Writes bench/results/simulator.json. A benchmark, not a test: nothing asserts on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from albus.sim.server import SimProcess  # noqa: E402
from bench.machine import cpu_seconds, git_sha, machine  # noqa: E402

GOALS = {"get_by_name_per_s": 2000, "create_per_s": 1000}


async def _login(http: aiohttp.ClientSession, url: str, user: str, pw: str) -> dict[str, str]:
    async with http.post(f"{url}/login", data={"username": user, "password": pw}) as r:
        assert r.status == 200, await r.text()
        csrf = r.cookies["csrftoken"].value
    return {"X-CSRFToken": csrf, "Referer": url, "Content-Type": "application/json", "X-Avi-Version": "22.1.3"}


class RawConn:
    """A minimal HTTP/1.1 keep-alive client over asyncio streams: cheaper per request than aiohttp's,
    so one client core can outrun the simulator's core."""

    def __init__(self, host: str, port: int, head: str) -> None:
        self.host, self.port, self.head = host, port, head
        self.r: asyncio.StreamReader | None = None
        self.w: asyncio.StreamWriter | None = None

    async def request(self, method: str, target: str, body: bytes = b"") -> int:
        if self.w is None:
            self.r, self.w = await asyncio.open_connection(self.host, self.port)
        assert self.r is not None
        self.w.write(f"{method} {target} HTTP/1.1\r\n{self.head}Content-Length: {len(body)}\r\n\r\n".encode()
                     + body)
        status_line = await self.r.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.r.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.r.readexactly(length)
        return status

    def close(self) -> None:
        if self.w is not None:
            self.w.close()


async def _worker(mode: str, url: str, user: str, pw: str, wid: int, seconds: float, conc: int,
                  names: int) -> tuple[int, int]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        hdrs = await _login(http, url, user, pw)
        sid = next(c.value for c in http.cookie_jar if c.key == "sessionid")
    hostport = url.split("://", 1)[1]
    host, port = hostport.rsplit(":", 1)
    head = (f"Host: {hostport}\r\nCookie: sessionid={sid}; csrftoken={hdrs['X-CSRFToken']}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()))
    ok = bad = 0
    seq = 0
    run = os.getpid()  # unique per client process, so repeated runs never reuse a name
    deadline = time.monotonic() + seconds

    async def one(i: int) -> None:
        nonlocal ok, bad, seq
        conn = RawConn(host, int(port), head)
        try:
            while time.monotonic() < deadline:
                seq += 1
                if mode == "create":
                    body = json.dumps({"name": f"bench-{run}-{wid}-{i}-{seq}", "servers": [
                        {"ip": {"addr": "127.0.0.2", "type": "V4"}, "port": 8080}]}).encode()
                    st = await conn.request("POST", "/api/pool", body)
                    ok, bad = (ok + 1, bad) if st == 201 else (ok, bad + 1)
                else:
                    st = await conn.request("GET", f"/api/pool?name=seed-{seq % names}")
                    ok, bad = (ok + 1, bad) if st == 200 else (ok, bad + 1)
        finally:
            conn.close()

    await asyncio.gather(*(one(i) for i in range(conc)))
    return ok, bad


def _client_proc(mode: str, url: str, user: str, pw: str, wid: int, seconds: float, conc: int, names: int,
                 cpu: int | None, out: Any) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    out.put(asyncio.run(_worker(mode, url, user, pw, wid, seconds, conc, names)))


def run_phase(mode: str, url: str, user: str, pw: str, clients: int, seconds: float, conc: int,
              names: int, cpus: list[int], sim_pid: int) -> dict[str, Any]:
    q: Any = mp.Queue()
    cpu0 = cpu_seconds(sim_pid)
    procs = [mp.Process(target=_client_proc, args=(mode, url, user, pw, i, seconds, conc, names,
                                                   cpus[i % len(cpus)] if cpus else None, q)) for i in range(clients)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    results = [q.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - t0
    ok = sum(r[0] for r in results)
    bad = sum(r[1] for r in results)
    # how busy the simulator's core was: near 1.0 means the simulator, not the clients, set the pace
    used = cpu_seconds(sim_pid) - cpu0
    return {"requests_ok": ok, "requests_failed": bad, "seconds": round(elapsed, 3),
            "per_s": round(ok / seconds, 1), "simulator_core_utilisation": round(used / seconds, 2),
            # requests per second of simulator CPU: its cost per request, whatever else loads the box
            "per_simulator_cpu_s": round(ok / used, 1) if used > 0 else None}


def _seed_pools(url: str, user: str, pw: str, n: int) -> None:
    async def go() -> None:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            hdrs = await _login(http, url, user, pw)
            for i in range(n):
                async with http.post(f"{url}/api/pool", data=json.dumps({"name": f"seed-{i}"}), headers=hdrs) as r:
                    assert r.status == 201, await r.text()
    asyncio.run(go())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--clients", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3, help="runs per phase; the best is the headline figure")
    ap.add_argument("--names", type=int, default=1000, help="pools to look up by name")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "simulator.json")
    args = ap.parse_args()
    ncpu = os.cpu_count() or 1
    client_cpus = list(range(1, ncpu)) if ncpu > 1 else []
    with SimProcess() as sim:
        assert sim.proc is not None
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(sim.proc.pid, {0})  # the simulator on one core
        _seed_pools(sim.url, sim.username, sim.password, args.names)
        gets = [run_phase("get", sim.url, sim.username, sim.password, args.clients, args.seconds,
                          args.concurrency, args.names, client_cpus, sim.proc.pid) for _ in range(args.repeat)]
        creates = [run_phase("create", sim.url, sim.username, sim.password, args.clients, args.seconds,
                             args.concurrency, args.names, client_cpus, sim.proc.pid) for _ in range(args.repeat)]
    get = max(gets, key=lambda r: r["per_s"])
    create = max(creates, key=lambda r: r["per_s"])
    result = {
        "benchmark": "sim_throughput",
        "git_sha": git_sha(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "setup": {"simulator_cpus": [0], "client_processes": args.clients, "client_cpus": client_cpus,
                  "concurrency_per_client": args.concurrency, "seconds_per_phase": args.seconds,
                  "pools_for_lookup": args.names, "rate_limit": "off (default profile)"},
        "figures": {"get_by_name_per_s": get["per_s"], "create_per_s": create["per_s"],
                    "get_by_name_per_simulator_cpu_s": get["per_simulator_cpu_s"],
                    "create_per_simulator_cpu_s": create["per_simulator_cpu_s"],
                    "get_by_name_runs": gets, "create_runs": creates},
        "goals": GOALS,
        "meets_goals": get["per_s"] >= GOALS["get_by_name_per_s"] and create["per_s"] >= GOALS["create_per_s"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    f = result["figures"]
    print(json.dumps({k: v for k, v in f.items() if not k.endswith("_runs")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
