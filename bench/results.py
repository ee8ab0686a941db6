"""Result files: bench/results/<scenario>.json (+ .png) and the summary table in bench/README.md."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from bench.machine import ROOT, git_sha, machine

RESULTS = ROOT / "bench" / "results"
# What holds for every scenario of a run (sizes, the services' environment such as the tracing switch).
RUN: dict[str, Any] = {}


def percentiles(xs: Sequence[float]) -> dict[str, float | int | None]:
    if not xs:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    s = sorted(xs)

    def q(p: float) -> float:
        return round(s[min(len(s) - 1, int(p * len(s)))], 4)

    return {"count": len(s), "p50": q(0.50), "p95": q(0.95), "p99": q(0.99), "max": round(s[-1], 4),
            "mean": round(statistics.fmean(s), 4)}


def write(outdir: Path, scenario: str, params: dict[str, Any], figures: dict[str, Any],
          goals: dict[str, Any], usage: dict[str, Any] | None = None) -> dict[str, Any]:
    outdir.mkdir(parents=True, exist_ok=True)
    doc = {"scenario": scenario, "git_sha": git_sha(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": machine(), "run": RUN, "parameters": params, "figures": figures, "goals": goals, "usage": usage or {}}
    (outdir / f"{scenario}.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def plot_lines(path: Path, title: str, xlabel: str, ylabel: str, series: dict[str, tuple[list[float], list[float]]],
               hline: tuple[float, str] | None = None) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, label=label)
    if hline:
        ax.axhline(hline[0], color="grey", linestyle="--", label=hline[1])
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_bars(path: Path, title: str, ylabel: str, bars: dict[str, float], hline: tuple[float, str] | None = None) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(list(bars), list(bars.values()))
    if hline:
        ax.axhline(hline[0], color="grey", linestyle="--", label=hline[1])
        ax.legend()
    ax.set(title=title, ylabel=ylabel)
    ax.tick_params(axis="x", labelrotation=25)  # long labels (fault names) must not overlap
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def cumulative(times: Sequence[float]) -> tuple[list[float], list[float]]:
    """(seconds, services done) for a convergence curve."""
    s = sorted(times)
    return s, [float(i + 1) for i in range(len(s))]
