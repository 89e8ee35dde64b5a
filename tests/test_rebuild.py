"""Verified rebuilds of old dataset versions and reproduced model versions, recorded in Git
notes: real Git, DVC and Beam on the example registry."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import registry
from registry.cli import cli
from registry.errors import (
    BuildError,
    ConfigError,
    PurgedVersionError,
    RawInputMissingError,
    VersionNotFoundError,
)
from registry.repo.git import NOTES_REF
from registry.repo.session import YankedVersionWarning
from tests.conftest import ReleasedRegistry, cli_raises, commit_all, git

pytestmark = pytest.mark.slow
DIGITS = "image_classification/digits"
BUILDER = f"datasets/{DIGITS}/digits_dataset_builder.py"


def _run(*args: str, code: int = 0) -> str:
    """``registry ARGS``'s stdout (the step line goes to stderr)."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.stdout


def _release_2_0_0(clone: Path) -> None:
    """Change the builder (labels shifted: existing data changed) and release 2.0.0."""
    source = (clone / BUILDER).read_text()
    changed = source.replace('VERSION = tfds.core.Version("1.0.0")',
                             'VERSION = tfds.core.Version("2.0.0")')
    changed = changed.replace(
        "RELEASE_NOTES: ClassVar[dict[str, str]] = {",
        'RELEASE_NOTES: ClassVar[dict[str, str]] = {\n        "2.0.0": "Labels shifted by one.",',
    )
    changed = changed.replace('"label": values[64]}', '"label": (values[64] + 1) % 10}')
    assert changed != source and "2.0.0" in changed
    (clone / BUILDER).write_text(changed)
    registry.build_dataset([DIGITS])
    commit_all(clone, "digits 2.0.0")
    git(clone, "push", "-q", "origin", "main")
    registry.release_dataset(DIGITS)


def test_an_old_version_rebuilds_equal_after_the_builder_changed(
    released_registry: ReleasedRegistry, chdir: Callable[[Path], None], tmp_path: Path
) -> None:
    clone = released_registry.clone
    chdir(clone)
    _release_2_0_0(clone)
    assert registry.dataset_info(DIGITS).version == "2.0.0"
    head_builder = (clone / BUILDER).read_text()

    out = tmp_path / "rebuilt-1.0.0"
    result = registry.rebuild_dataset(f"{DIGITS}:1.0.0", output=out)
    assert result.equal is True and result.rebuilt == result.released
    assert result.released.endswith(".dir") and result.differences == []
    assert result.output == out and (out / "dataset_info.json").is_file()
    assert json.loads((out / "dataset_info.json").read_text())["version"] == "1.0.0"
    # The work tree, its builder and the released bytes are untouched; no worktree is left.
    assert (clone / BUILDER).read_text() == head_builder
    assert git(clone, "status", "--porcelain") == ""
    assert len(git(clone, "worktree", "list").splitlines()) == 1

    # From the CLI: without --output the folder is temporary, and the report says so.
    text = _run("datasets", "rebuild", f"{DIGITS}:1.0.0")
    assert "equal: the version rebuilds byte for byte from its tag" in text
    assert f"released: {result.released}" in text and "rebuilt folder: removed" in text
    data = json.loads(_run("datasets", "rebuild", f"{DIGITS}:2.0.0", "--json"))
    assert data["equal"] is True and data["version"] == "2.0.0" and data["output"] is None
