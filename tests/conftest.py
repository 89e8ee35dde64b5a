"""Shared fixtures: a hermetic environment and real, throwaway registries.

Every test runs with its own ``HOME``, XDG folders, Git identity and registry cache, and with
telemetry off. Registries are real Git + DVC repositories with a local directory remote, made from
this project's own files, so tests exercise what users run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Set before anything imports DVC, MLflow or gcsfs.
os.environ.update(
    {
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
)
# `dvc`, and the `registry` that dvc.yaml's stages call, are the ones installed beside this Python.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Give each test its own HOME, config, cache and Git identity; return that HOME."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Researcher")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "researcher@lab.test")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Researcher")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "researcher@lab.test")
    for var in ("REGISTRY_URL", "REGISTRY_CONFIG", "REGISTRY_CACHE_DIR", "REGISTRY_REMOTE"):
        monkeypatch.delenv(var, raising=False)
    subprocess.run(
        ["git", "config", "--global", "init.defaultBranch", "main"], check=True, env=os.environ
    )
    return home


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` and return stdout (raises on failure)."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def commit_all(repo: Path, message: str) -> str:
    """Stage everything in ``repo``, commit it, and return the commit hash."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def _project_files() -> list[str]:
    out = git(PROJECT_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return [p for p in out.split("\0") if p and (PROJECT_ROOT / p).is_file()]


@pytest.fixture
def make_registry(tmp_path: Path) -> Callable[..., Path]:
    """Return a factory that makes a real registry repo and returns its work tree.

    ``make_registry(datasets=["image_classification/digits"])`` copies the registry skeleton of
    this project (``.dvc/config``, ``dvc.yaml``, ``params.yaml``, ``registry`` is not copied: it is
    installed) and the named example dataset folders, points the DVC default remote at a fresh
    local folder, and commits. ``datasets=None`` copies every example dataset.
    """
    counter = iter(range(1000))

    def factory(datasets: list[str] | None = None, name: str | None = None) -> Path:
        repo = tmp_path / (name or f"registry{next(counter)}")
        repo.mkdir()
        for rel in _project_files():
            top = rel.split("/", 1)[0]
            if top in ("registry", "tests", "benchmarks", "docs", ".ci", "src", "models"):
                continue
            if top == "datasets" and datasets is not None and not any(
                rel.startswith(f"datasets/{d}/") for d in datasets
            ):
                continue
            dest = repo / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / rel, dest)
        (repo / "datasets").mkdir(exist_ok=True)
        (repo / "models").mkdir(exist_ok=True)
        git(repo, "init", "-q")
        if not (repo / ".dvc").is_dir():
            subprocess.run(["dvc", "init", "-q"], cwd=repo, check=True)
        storage = tmp_path / f"{repo.name}-dvc-storage"
        subprocess.run(
            ["dvc", "remote", "add", "--force", "--default", "storage", str(storage)],
            cwd=repo,
            check=True,
            capture_output=True,
        )
        commit_all(repo, "Create the registry")
        return repo

    return factory


@pytest.fixture
def chdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """Return a function that changes the working directory for the rest of the test."""
    yield monkeypatch.chdir
