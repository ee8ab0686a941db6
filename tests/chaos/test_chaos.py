"""The chaos run in CI: 5 minutes of faults with a fixed seed, ending clean."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.chaos.run import run

pytestmark = [pytest.mark.chaos, pytest.mark.e2e, pytest.mark.k8s, pytest.mark.sim]

SEED = 10
DURATION_S = float(os.environ.get("ALBUS_CHAOS_SECONDS", "300"))


@pytest.mark.timeout(DURATION_S + 1800)
def test_chaos_ends_converged_and_clean(tmp_path: Path) -> None:
    report = run(tmp_path, SEED, DURATION_S, tmp_path / "report.json")
    print(report.text())
    assert report.rounds, "no fault was injected"
    assert report.foreign_untouched
    assert report.resync_writes == 0
