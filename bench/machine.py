"""Facts about the run: git sha, machine, and per-process CPU share and memory from /proc."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
MACHINE = "machine"  # every process on the box, in Usage's CPU samples


def git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    # the load average shows whether other work shared the cores during the run
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
            "cpus": os.cpu_count(), "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]}


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU of a process; with ``children``, that of its children it has waited for instead."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        i = 13 if children else 11
        return (int(fields[i]) + int(fields[i + 1])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


HARNESS = "harness"                 # this process (the benchmark's own threads: watches, API calls)
HARNESS_CHILDREN = "harness-children"  # what it ran and waited for in the window (kubectl apply)


def child_pids(names: tuple[str, ...]) -> dict[str, int]:
    """This process's live children whose program is one of ``names`` (by argv[0]'s basename)."""
    me = os.getpid()
    out: dict[str, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            prog = (d / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace").rsplit("/", 1)[-1]
        except (OSError, IndexError, ValueError):
            continue
        if ppid == me and prog in names:
            out[prog] = int(d.name)
    return out


def memory_mb(pid: int) -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident memory."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out["rss_mb" if line.startswith("VmRSS") else "peak_rss_mb"] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return out


class Usage:
    """CPU share and peak memory of named processes over a window.

    CPU share is CPU seconds / wall seconds: 1.0 is one whole core, so on a
    2-core box a sum near 2.0 means the machine, not albus, set the pace.
    Peak memory is sampled (VmHWM read at each sample, the kernel's own peak).

    ``infra`` names the processes albus runs on (kube-apiserver, etcd, nats-server, ...): they count in
    ``cpu_share`` (with the harness itself, :data:`HARNESS` and :data:`HARNESS_CHILDREN`) so a run
    limited by the API server shows as such, and their memory goes to ``infra_peak_rss_mb``, apart from
    ``peak_rss_mb`` (albus's services and the simulator, which the memory goal reads).
    """

    def __init__(self, pids: dict[str, int], interval: float = 1.0, infra: dict[str, int] | None = None) -> None:
        self.services = set(pids)
        self.pids = dict(pids)
        if infra is not None:
            self.pids.update({**infra, HARNESS: os.getpid(), HARNESS_CHILDREN: os.getpid()})
        self.interval = interval
        self.cpu0 = {n: self._cpu(n, p) for n, p in self.pids.items()}
        self.cpu_last = dict(self.cpu0)
        self.peak: dict[str, float] = {}
        # (wall clock, CPU seconds per process) at every sample: the CPU used between two instants
        self.samples: list[tuple[float, dict[str, float]]] = [
            (time.time(), {**self.cpu0, MACHINE: self._machine_busy()})]
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        self.total0 = self._machine_busy()

    @staticmethod
    def _machine_busy() -> float:
        try:
            f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
            return (sum(f) - f[3] - f[4]) / TICK  # all but idle and iowait
        except (OSError, ValueError, IndexError):
            return 0.0

    @staticmethod
    def _cpu(name: str, pid: int) -> float:
        return cpu_seconds(pid, children=name == HARNESS_CHILDREN)

    def _sample(self) -> None:
        for n, p in self.pids.items():
            c = self._cpu(n, p)
            if c:
                self.cpu_last[n] = c
        self.samples.append((time.time(), {**self.cpu_last, MACHINE: self._machine_busy()}))
        for n, p in self.pids.items():
            if n == HARNESS_CHILDREN:
                continue
            m = memory_mb(p).get("peak_rss_mb")
            if m is not None:
                self.peak[n] = max(self.peak.get(n, 0.0), m)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def cpu_between(self, t0: float, t1: float) -> dict[str, float]:
        """CPU seconds each process (and, as ``MACHINE``, the whole machine) used between two wall-clock
        instants, to the nearest samples."""
        def at(t: float) -> dict[str, float]:
            return min(self.samples, key=lambda s: abs(s[0] - t))[1]
        a, b = at(t0), at(t1)
        return {n: round(b.get(n, 0.0) - a.get(n, 0.0), 3) for n in (*self.pids, MACHINE)}

    def stop(self) -> dict[str, Any]:
        self._sample()
        self._stop.set()
        self._thread.join()
        wall = max(time.monotonic() - self.t0, 1e-6)
        share = {n: round((self.cpu_last[n] - self.cpu0[n]) / wall, 2) for n in self.pids}
        out: dict[str, Any] = {
            "wall_s": round(wall, 2), "cpu_share": share,
            "machine_cpu_busy": round((self._machine_busy() - self.total0) / wall, 2),
            "machine_cpus": os.cpu_count(),
            "peak_rss_mb": {n: v for n, v in self.peak.items() if n in self.services}}
        if set(self.pids) - self.services:
            out["infra_peak_rss_mb"] = {n: v for n, v in self.peak.items() if n not in self.services}
            # which process set the pace, if any one did: the one using the most CPU
            out["busiest_process"] = max(share, key=lambda n: share[n]) if share else None
            out["cpu_share_albus_and_simulator"] = round(sum(v for n, v in share.items() if n in self.services), 2)
            out["cpu_share_infra_and_harness"] = round(
                sum(v for n, v in share.items() if n not in self.services), 2)
        return out
