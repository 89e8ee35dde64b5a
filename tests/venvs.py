"""Fresh virtual environments for tests, built with uv from ``constraints.txt``.

A fresh environment holds only what it is given (no system site-packages, not the test
environment's packages, not this checkout): the Dataflow worker test installs Beam and a worker
package there (``tests/test_dataflow_workers.py``), the Vertex image test what the image's
Dockerfile installs (``tests/test_vertex_image.py``). TensorFlow and Beam take minutes to download,
so uv's cache is kept between runs in one folder outside the tests' throwaway ``HOME``
(:data:`UV_CACHE`, or ``$REGISTRY_TEST_UV_CACHE``): a warm build links the files from there in
seconds.

A test that needs an environment that cannot be built is skipped with the reason, and under
``CI=true`` that skip is a failure (``tests/conftest.py``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = PROJECT_ROOT / "constraints.txt"
UV_CACHE = Path(
    os.environ.get("REGISTRY_TEST_UV_CACHE")
    or Path(tempfile.gettempdir()) / "lab-registry-test-uv-cache"
)


@dataclass(frozen=True)
class FreshVenv:
    """A virtual environment made by :func:`fresh_venv`.

    Attributes:
        path: Its folder.
        python: Its interpreter.
        seconds: How long creating and installing took.
    """

    path: Path
    python: Path
    seconds: float

    def run(
        self, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run its Python isolated (``-I``: no ``PYTHONPATH``, no user site, not the working
        folder on ``sys.path``) in ``cwd``."""
        return subprocess.run(
            [str(self.python), "-I", *args],
            cwd=cwd,
            env=clean_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def clean_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) without what would lead a child Python to this
    checkout or the test environment (``PYTHONPATH``, ``VIRTUAL_ENV``, the venv's ``bin`` on
    ``PATH``)."""
    env = dict(os.environ if env is None else env)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
        env.pop(name, None)
    here = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != here)
    return env


def _uv() -> str:
    """uv's executable: beside this Python (the ``test`` extra installs it), else on PATH."""
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        pytest.skip("uv is not installed: pip install -c constraints.txt -e '.[test]'")
    return found


def fresh_venv(
    path: Path, requirements: Sequence[str], *, constraints: Path | None = CONSTRAINTS
) -> FreshVenv:
    """Create a virtual environment at ``path`` holding ``requirements`` and what they need.

    Args:
        path: Where (must not exist).
        requirements: What ``uv pip install`` is given: requirement strings, sdist or wheel
            paths, ``-r FILE`` pairs.
        constraints: Versions to hold to (``-c``); default: the project's ``constraints.txt``.

    Returns:
        The environment.

    Raises:
        pytest.skip.Exception: If uv is missing or the install fails (a failure under
            ``CI=true``), with uv's last lines.
    """
    uv = _uv()
    started = time.monotonic()
    UV_CACHE.mkdir(parents=True, exist_ok=True)
    env = clean_env()
    env["UV_CACHE_DIR"] = str(UV_CACHE)
    env.pop("UV_SYSTEM_PYTHON", None)
    # The interpreter this suite runs on (its base, not its venv): the same Python version.
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [
        [uv, "venv", "--quiet", "--python", base, str(path)],
        [
            uv, "pip", "install", "--quiet", "--python", str(path / "bin" / "python"),
            *(["-c", str(constraints)] if constraints is not None else []),
            *requirements,
        ],
    ]
    for step in steps:
        done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()[-15:]
            pytest.skip(f"could not build a fresh virtual environment: {' | '.join(said)}")
    return FreshVenv(path, path / "bin" / "python", time.monotonic() - started)
