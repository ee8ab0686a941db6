"""The harness's usage figures: the processes albus runs on and the harness itself are counted apart
from albus's own, and found by name among the harness's children."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from bench.machine import HARNESS, HARNESS_CHILDREN, Usage, child_pids

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\ntime.sleep(60)"


@pytest.fixture
def worker() -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen([sys.executable, "-c", BURN])
    yield p
    p.kill()
    p.wait()


def test_infra_and_harness_counted_apart_from_the_services(worker: subprocess.Popen[bytes]) -> None:
    use = Usage({"svc": worker.pid}, interval=0.05, infra={"kube-apiserver": worker.pid})
    subprocess.run([sys.executable, "-c", "sum(range(3_000_000))"], check=True)  # a kubectl-like child
    t = time.process_time()
    while time.process_time() - t < 0.1:  # the harness's own work
        pass
    out = use.stop()
    assert set(out["cpu_share"]) == {"svc", "kube-apiserver", HARNESS, HARNESS_CHILDREN}
    assert out["cpu_share"][HARNESS] > 0 and out["cpu_share"][HARNESS_CHILDREN] > 0
    # memory goals read peak_rss_mb: the infrastructure is kept out of it
    assert set(out["peak_rss_mb"]) == {"svc"}
    assert set(out["infra_peak_rss_mb"]) == {"kube-apiserver", HARNESS}
    assert out["busiest_process"] in out["cpu_share"]


def test_without_infra_the_figures_are_as_before(worker: subprocess.Popen[bytes]) -> None:
    out = Usage({"svc": worker.pid}, interval=0.05).stop()
    assert set(out["cpu_share"]) == {"svc"}
    assert set(out) == {"wall_s", "cpu_share", "machine_cpu_busy", "machine_cpus", "peak_rss_mb"}


def test_child_pids_by_program_name(worker: subprocess.Popen[bytes]) -> None:
    prog = sys.executable.rsplit("/", 1)[-1]
    assert child_pids((prog,)) == {prog: worker.pid}
    assert child_pids(("no-such-program",)) == {}  # (kube-apiserver may be a child: the session control plane)
