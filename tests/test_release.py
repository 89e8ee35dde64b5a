"""Releasing: every refusal leaves no tag, and a failed push can simply be run again."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import registry
from registry.errors import ReleaseError, RemoteError
from tests.conftest import ReleasedRegistry, commit_all, git

pytestmark = pytest.mark.slow
NAME = "image_classification/digits"


def _builder(clone: Path) -> Path:
    return clone / "datasets" / NAME / "digits_dataset_builder.py"


def _set_version(clone: Path, version: str, note: str | None) -> None:
    path = _builder(clone)
    source = re.sub(r'Version\("[0-9.]+"\)', f'Version("{version}")', path.read_text())
    if note is not None:
        entry = f'\n        "{version}": "{note}",'
        source = re.sub(r"(RELEASE_NOTES[^=]*= \{)", lambda m: m.group(1) + entry, source)
    path.write_text(source)


def _tags(repo: Path) -> set[str]:
    return set(git(repo, "tag").split())


def test_dirty_work_tree_is_refused(released_registry: ReleasedRegistry, chdir) -> None:
    clone = released_registry.clone
    chdir(clone)
    (clone / "notes.txt").write_text("uncommitted")
    before = _tags(clone)
    with pytest.raises(ReleaseError, match=r"uncommitted changes \(notes.txt\)"):
        registry.release_dataset(NAME)
    assert _tags(clone) == before


def test_existing_version_is_never_released_again(released_registry, chdir) -> None:
    chdir(released_registry.clone)
    with pytest.raises(ReleaseError, match="released already"):
        registry.release_dataset(NAME)


def test_version_must_grow(released_registry: ReleasedRegistry, chdir) -> None:
    clone = released_registry.clone
    chdir(clone)
    _set_version(clone, "0.9.0", "Older")
    commit_all(clone, "Go back")
    with pytest.raises(ReleaseError, match=r"not greater than the latest release 1\.0\.0"):
        registry.release_dataset(NAME)


def test_release_notes_entry_is_required(released_registry: ReleasedRegistry, chdir) -> None:
    clone = released_registry.clone
    chdir(clone)
    _set_version(clone, "1.1.0", note=None)
    commit_all(clone, "Bump without notes")
    with pytest.raises(ReleaseError, match=r"RELEASE_NOTES .* no entry for 1\.1\.0"):
        registry.release_dataset(NAME)


def test_stale_build_is_refused(released_registry: ReleasedRegistry, chdir) -> None:
    clone = released_registry.clone
    chdir(clone)
    _set_version(clone, "1.1.0", "More digits")
    commit_all(clone, "Bump, not rebuilt")
    with pytest.raises(ReleaseError, match="not up to date with its builder and params"):
        registry.release_dataset(NAME)
    assert f"{NAME}@v1.1.0" not in _tags(clone)


def test_failed_pushes_leave_no_tag_and_a_rerun_completes(
    released_registry: ReleasedRegistry, chdir, tmp_path: Path
) -> None:
    clone, storage = released_registry.clone, released_registry.storage
    chdir(clone)
    _set_version(clone, "1.1.0", "Same digits, new serialisation")
    registry.build_dataset([NAME])
    commit_all(clone, "Build 1.1.0")
    tag = f"{NAME}@v1.1.0"

    # The DVC remote is down: nothing is tagged.
    subprocess.run(["dvc", "remote", "modify", "--local", "storage", "url", "/dev/null/down"],
                   cwd=clone, check=True)
    with pytest.raises(RemoteError, match=r"(?i)nothing was (pushed or )?tagged"):
        registry.release_dataset(NAME)
    assert tag not in _tags(clone)

    # The Git remote is down: the bytes are pushed, but the local tag is taken back.
    (clone / ".dvc" / "config.local").unlink()
    git(clone, "remote", "set-url", "origin", str(tmp_path / "missing.git"))
    with pytest.raises(RemoteError, match="pushing tag"):
        registry.release_dataset(NAME)
    assert tag not in _tags(clone)

    # Both back: running it again completes the release.
    git(clone, "remote", "set-url", "origin", str(released_registry.origin))
    release = registry.release_dataset(NAME)
    assert str(release.version) == "1.1.0"
    assert tag in _tags(clone) and tag in _tags(released_registry.origin)
    assert any(storage.rglob("*.dir"))


def test_failing_build_exits_5_with_one_line(released_registry: ReleasedRegistry) -> None:
    clone = released_registry.clone
    path = _builder(clone)
    broken = path.read_text().replace("def _parse(line: str)", "def _parse(line: str, oops)")
    path.write_text(broken)
    done = subprocess.run(
        [sys.executable, "-m", "registry", "datasets", "build", NAME],
        cwd=clone, capture_output=True, text=True,
    )
    assert done.returncode == 5
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "registry datasets build" in last
    assert "Traceback" not in last
