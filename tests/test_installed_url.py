"""A registry installed with `pip install git+URL` loads from the repository it came from, with
no configuration (PEP 610's direct_url.json); REGISTRY_URL still wins."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, ReleasedRegistry, commit_all, git

pytestmark = pytest.mark.slow

_LOAD = """
import registry
from registry.config import load_settings
print(load_settings().url)
print(sum(1 for _ in registry.load_dataset("image_classification/digits", split="test")))
"""


def _install(url: str, target: Path) -> None:
    """`pip install git+URL` into a folder of its own (no dependencies: they are this venv's)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target), f"git+{url}"],
        check=True, capture_output=True, text=True,
    )


def _python(code: str, cwd: Path, target: Path, **env: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(target), **env},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()


def test_a_registry_installed_from_git_loads_from_there(
    released_registry: ReleasedRegistry, tmp_path: Path
) -> None:
    # The registry's repository holds the package, as a lab's does (pyproject.toml, registry/).
    clone = released_registry.clone
    shutil.copytree(PROJECT_ROOT / "registry", clone / "registry",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, clone / name)
    commit_all(clone, "The registry's package")
    git(clone, "push", "-q", "origin", "main")
    url = f"file://{released_registry.origin}"
    target = tmp_path / "site"
    _install(url, target)

    elsewhere = tmp_path / "notebook"  # no clone around, no REGISTRY_URL, no user config
    elsewhere.mkdir()
    got_url, examples = _python(_LOAD, elsewhere, target)
    assert got_url == url and int(examples) > 300

    other = tmp_path / "other.git"
    git(tmp_path, "clone", "-q", "--bare", str(released_registry.origin), str(other))
    got_url, _ = _python(_LOAD, elsewhere, target, REGISTRY_URL=str(other))
    assert got_url == str(other)  # REGISTRY_URL wins


def test_an_editable_or_index_install_names_no_registry() -> None:
    from registry.config import installed_from

    assert installed_from() is None  # this checkout: an editable install
