"""The reliability campaign's quick mode (benchmarks/reliability.py) holds every invariant."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow


def test_quick_campaign_holds_every_invariant(tmp_path) -> None:
    """Faults, races, cache damage, hostile input and secrets, a few runs each (~2-3 min)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.reliability", "--quick", "--json",
         "--keep", str(tmp_path / "campaign")],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    rows = json.loads(done.stdout)
    cases = {row["case"] for row in rows}
    for expected in ("fault: killed during tag push", "race: 8 clones release + promote m",
                     "race: 2 x mlflow sync, one SQLite", "cache: loaders killed at random points",
                     "cache bit flip: labels", "hostile input (hypothesis, in-process CLI)",
                     "secrets: planted credentials"):
        assert expected in cases
    broken = [(row["case"], row["failed"]) for row in rows if row["status"] == "FAILED"]
    assert not broken, broken
    assert all(row["runs"] > 0 for row in rows)
    assert done.returncode == 0, done.stderr[-3000:]
