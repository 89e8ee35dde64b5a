"""Atomic writes: all or nothing, and files others can read."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from registry.atomic import atomic_write_bytes, atomic_write_text, replace_dir


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def test_new_files_get_the_usual_mode(folder: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_text(folder / "card.md", "hello")
    finally:
        os.umask(old)
    assert stat.S_IMODE((folder / "card.md").stat().st_mode) == 0o644


def test_replacing_keeps_the_mode_and_leaves_no_temp_files(folder: Path) -> None:
    path = folder / "params.yaml"
    path.write_text("a: 1\n")
    path.chmod(0o664)
    atomic_write_text(path, "a: 2\n")
    assert path.read_text() == "a: 2\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o664
    assert sorted(p.name for p in folder.iterdir()) == ["params.yaml"]


def test_a_failed_write_keeps_the_old_content(folder: Path) -> None:
    path = folder / "dvc.yaml"
    path.write_text("old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert sorted(p.name for p in folder.iterdir()) == ["dvc.yaml"]


def test_replace_dir_swaps_whole_folders(folder: Path) -> None:
    target, staging = folder / "prepared", folder / "staging"
    target.mkdir()
    (target / "old.tfrecord").write_text("old")
    staging.mkdir()
    (staging / "new.tfrecord").write_text("new")
    replace_dir(staging, target)
    assert [p.name for p in target.iterdir()] == ["new.tfrecord"]
    assert sorted(p.name for p in folder.iterdir()) == ["prepared"]
