"""The code stays lint-clean, type-checked and layered (ruff, mypy and import-linter, configured in
pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT_ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=PROJECT_ROOT, capture_output=True, text=True
    )


def test_ruff() -> None:
    done = _run("ruff", "check", "registry", "datasets", "tests", "benchmarks")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy() -> None:
    done = _run("mypy", "--cache-dir", "/dev/null")
    assert done.returncode == 0, done.stdout + done.stderr


def test_imports_point_downward() -> None:
    """The package's layers (pyproject.toml [tool.importlinter]) hold: no sideways or upward
    import between the subpackages, and none from a base module into the API."""
    lint_imports = str(Path(sys.executable).parent / "lint-imports")
    done = subprocess.run(
        [lint_imports, "--no-cache"], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout, done.stdout


def test_dvc_lock_is_in_step_with_code_and_params() -> None:
    """Every stage's recorded code, params and command match the tree: someone ran dvc repro.

    Outputs that are simply not built here (a fresh clone) are fine; a changed builder, training
    code, param or command with a stale dvc.lock is not.
    """
    import json

    done = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
    )
    stale = {}
    for stage, entries in json.loads(done.stdout or "{}").items():
        for entry in entries:
            if isinstance(entry, str):  # "changed command"
                stale[stage] = entry
                continue
            for kind, change in entry.items():
                deps_rebuilt = kind == "changed deps" and set(change.values()) <= {"deleted"}
                if kind != "changed outs" and not deps_rebuilt:
                    stale[stage] = f"{kind}: {change}"
    assert not stale, f"dvc.lock is stale; run dvc repro and commit it: {stale}"
