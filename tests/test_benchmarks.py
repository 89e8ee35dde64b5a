"""The benchmark suite runner (`python -m benchmarks`): its table, JSON and aims, on fake results.

No real benchmark runs here (they take minutes): a fake set of results goes through the runner's
logic, and two throwaway benchmark modules through its child-process protocol.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


@pytest.fixture
def suite(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The runner, imported as ``python -m benchmarks`` imports it (its folder on the path)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import suite as module

    return module


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_help_names_every_option_and_the_exit_statuses() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for option in ("--quick", "--json PATH", "--only NAME"):
        assert option in done.stdout
    assert "Exit status: 0" in " ".join(done.stdout.split())


def test_a_json_path_in_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--json", str(tmp_path / "no" / "r.json")],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2 and "does not exist" in done.stderr.splitlines()[-1]
    assert "Traceback" not in done.stderr


def test_fake_results_become_rows_with_pass_and_explained(suite: ModuleType) -> None:
    from _common import Result

    def fake(name: str, quick: bool) -> list[Result]:
        if name == "bench_broken":
            raise suite.BenchmarkFailedError("RuntimeError: the builds differ")
        return [
            Result.speedup("beam.speedup", 10.0, 16.0, "100,000 records"),  # 1.6x: a miss
            Result.times("tracking.overhead", 5.05, 5.0),  # 1.01x: meets <= 1.02x
            Result("search.filters", 0.5, 0.05, 10.0),  # a miss its section explains
            Result("startup.help", 0.9, 0.05, 18.0),  # a miss no section explains
            Result("lineage.up", 0.3),  # exactly the limit: meets it
            Result("made.up", 1.0),  # no aim
        ]

    rows = suite.run(["bench_fake", "bench_broken"], quick=True, measure=fake, say=lambda _: None)
    by_name = {r["name"]: r for r in rows}
    for r in rows:
        assert {"name", "value", "baseline", "ratio", "aim", "pass"} <= set(r)
    beam = by_name["beam.speedup"]
    assert (beam["ratio"], beam["aim"], beam["pass"]) == (1.6, ">= 1.85x", False)
    assert beam["explained"] == (
        "docs/performance.md#issue-17-where-the-time-goes-beam-build-2-workers-vs-1"
    )
    assert by_name["tracking.overhead"]["pass"] is True
    assert "explained" not in by_name["tracking.overhead"]
    assert by_name["search.filters"]["pass"] is False
    assert by_name["search.filters"]["explained"] == (
        "docs/performance.md#the-read-path-at-scale-search-list-info-resolve-issue-17"
    )
    assert by_name["startup.help"]["pass"] is False
    assert by_name["startup.help"]["explained"] is None
    assert by_name["lineage.up"]["pass"] is True and by_name["lineage.up"]["aim"] == "<= 0.3 s"
    assert by_name["made.up"]["pass"] is None and by_name["made.up"]["aim"] is None
    assert by_name["bench_broken"]["error"] == "RuntimeError: the builds differ"
    assert [r["name"] for r in rows][:3] == ["search.filters", "beam.speedup",
                                              "tracking.overhead"]  # the aims' order

    assert suite.status(rows) == 3  # a benchmark failed
    measured = [r for r in rows if "error" not in r]
    assert suite.status(measured) == 1  # startup.help misses, unexplained
    assert suite.status([by_name["beam.speedup"], by_name["tracking.overhead"]]) == 0
    assert json.loads(json.dumps(rows)) == rows  # plain JSON

    text = suite.table(rows)
    assert len(text.splitlines()) == len(rows) + 1
    miss = r"Beam build.*1\.600x\s+>= 1\.85x\s+MISS, see docs/performance\.md#issue-17"
    assert re.search(miss, text)
    assert "MISS, unexplained" in text and "FAILED: RuntimeError: the builds differ" in text


def test_every_aim_not_measured_is_a_row(suite: ModuleType) -> None:
    from aims import AIMS

    rows = suite.missing_rows({"beam.speedup"})
    assert len(rows) == len(AIMS) - 1
    assert all(r["pass"] is None and r["value"] is None for r in rows)


def test_aims_sections_exist_and_benchmarks_name_only_known_aims(suite: ModuleType) -> None:
    from aims import AIMS, BY_NAME

    assert len(BY_NAME) == len(AIMS)
    doc = (ROOT / "docs" / "performance.md").read_text()
    sections = suite.headings(doc)
    for aim in AIMS:
        assert aim.section is None or aim.section in sections, aim.name
    named = set()
    for path in BENCHMARKS.glob("bench_*.py"):
        named |= set(re.findall(r'Result(?:\.times|\.speedup)?\(\s*"([a-z0-9_.]+)"',
                                path.read_text()))
    assert named and named <= set(BY_NAME), named - set(BY_NAME)
    # The figures the owner of this runner measures have their benchmark.
    assert {"beam.speedup", "tracking.overhead", "lineage.up", "diff.by_key"} <= named
    assert {"pull.cold_vs_cp", "pull.cold_vs_dvc", "pull.small_files"} <= named


def test_a_benchmark_runs_in_a_child_and_a_failure_is_its_last_line(
    suite: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / "bench_ok.py").write_text(
        "from _common import Result\n"
        "def measure(quick):\n"
        "    print('progress goes to stderr')\n"
        "    return [Result.times('tracking.overhead', 1.5 if quick else 9.0, 1.0)]\n"
    )
    (tmp_path / "bench_bad.py").write_text(
        "def measure(quick):\n    raise RuntimeError('the two builds wrote different shards')\n"
    )
    (ok,) = suite.measure_in_child("bench_ok", True, folder=tmp_path)
    assert (ok.name, ok.value, ok.ratio) == ("tracking.overhead", 1.5, 1.5)
    with pytest.raises(suite.BenchmarkFailedError, match=r"^RuntimeError: the two builds wrote"):
        suite.measure_in_child("bench_bad", False, folder=tmp_path)


def test_only_benchmarks_with_the_suites_measure_run(suite: ModuleType, tmp_path: Path) -> None:
    assert suite.has_measure("bench_beam") and suite.has_measure("bench_tracking")
    assert suite.has_measure("bench_gcs_pull") and suite.has_measure("bench_scale")
    (tmp_path / "bench_own.py").write_text("def measure(work, repo, endpoint):\n    ...\n")
    (tmp_path / "bench_none.py").write_text("def main():\n    ...\n")
    (tmp_path / "bench_suite.py").write_text("def measure(quick: bool, size: int = 9):\n    ...\n")
    assert not suite.has_measure("bench_own", tmp_path)  # its own helper of that name
    assert not suite.has_measure("bench_none", tmp_path)
    assert suite.has_measure("bench_suite", tmp_path)
    assert all(name.startswith("bench_") for name in suite.discover())
    assert suite.anchor("`datasets diff` of two versions of 1M examples") == (
        "datasets-diff-of-two-versions-of-1m-examples"
    )
