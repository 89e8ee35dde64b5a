"""The code stays lint-clean, type-checked and layered (ruff, mypy and import-linter, configured in
pyproject.toml)."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import registry
from tests.conftest import PROJECT_ROOT

# The Python API, as README.md declares it ("Commands and their Python equivalents"): `registry`
# itself and these modules, each through its `__all__`. The rest of the package is internal.
PUBLIC_MODULES = (
    "registry.atomic",
    "registry.cards",
    "registry.catalog",
    "registry.compute",
    "registry.console",
    "registry.datasets",
    "registry.diff",
    "registry.errors",
    "registry.lineage",
    "registry.models",
    "registry.remotes",
    "registry.semver",
    "registry.testing",
    "registry.tracking",
    "registry.vertex",
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=PROJECT_ROOT, capture_output=True, text=True
    )


def test_ruff() -> None:
    done = _run("ruff", "check", "registry", "src", "datasets", "tests", "benchmarks")
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


def _registry_imports(tree: ast.AST) -> list[tuple[int, str, str | None]]:
    """``(line, module, name)`` for every import of the registry package in ``tree`` (``name``:
    the imported name of a ``from`` import, ``None`` for ``import registry.x``)."""
    found: list[tuple[int, str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None) for a in node.names if _in_registry(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _in_registry(node.module):
            found += [(node.lineno, str(node.module), a.name) for a in node.names]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "registry"
        ):
            found.append((node.lineno, "registry", node.attr))  # registry.something(...)
    return found


def _in_registry(module: str | None) -> bool:
    return module is not None and (module == "registry" or module.startswith("registry."))


def _is_public(module: str, name: str | None) -> bool:
    """Whether ``from module import name`` (or ``import module``) stays on the public API."""
    if module == "registry":
        return name is None or name in registry.__all__ or f"registry.{name}" in PUBLIC_MODULES
    if module not in PUBLIC_MODULES:
        return False
    return name is None or name in importlib.import_module(module).__all__


def test_src_uses_only_the_public_api() -> None:
    """The lab's own code (src/) uses the registry as any user would: `registry`'s `__all__`
    and the public modules README.md declares, never the subpackages or private names."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert all(f"`{module}`" in readme for module in PUBLIC_MODULES)
    internal = []
    files = sorted((PROJECT_ROOT / "src").rglob("*.py"))
    assert files
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, module, name in _registry_imports(tree):
            if not _is_public(module, name):
                what = module if name is None else f"{module}.{name}"
                internal.append(f"{path.relative_to(PROJECT_ROOT)}:{line}: {what}")
    assert not internal, "src/ reaches into the registry's internals:\n" + "\n".join(internal)


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


def test_under_ci_a_skip_for_a_missing_component_fails_the_run(tmp_path: Path) -> None:
    """CI=true turns a skip into a failure unless the test says it does not apply here."""
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n"
        "from tests.conftest import NOT_APPLICABLE\n\n"
        "def test_needs_an_emulator():\n"
        "    pytest.skip('the GCS emulator is not installed')\n\n"
        "def test_for_gpus():\n"
        "    pytest.skip(NOT_APPLICABLE + 'no GPU')\n"
    )
    # -p no:bqemulator: as pyproject.toml says (its plugin needs Docker's testcontainers).
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
            "-p", "no:bqemulator", "-p", "tests.conftest", "--rootdir", str(tmp_path),
            "-c", "/dev/null", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    ci = subprocess.run(argv, env={**env, "CI": "true"}, capture_output=True, text=True)
    assert ci.returncode == 1, ci.stdout
    assert "1 failed, 1 skipped" in ci.stdout
    assert "skipped under CI=true" in ci.stdout and "the GCS emulator is not installed" in ci.stdout
    local = subprocess.run(argv, env={**env, "CI": "false"}, capture_output=True, text=True)
    assert local.returncode == 0 and "2 skipped" in local.stdout, local.stdout
