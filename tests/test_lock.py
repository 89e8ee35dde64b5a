"""The one reader of an output's DVC hash (registry.repo.lock): dvc.lock or a .dvc file, at a
commit or in the work tree, strict about what it reads. (Reading each release's dvc.lock and the
messages for a missing stage or output are in test_storage.py.)"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry.errors import ConfigError, NotBuiltError
from registry.repo.git import GitRepo
from registry.repo.lock import find_out_hash, locked_out_hash
from tests.conftest import ReleasedArtifact, commit_all

V1, V2 = "1.0.0", "2.0.0"
WEIGHTS = "models/tiny/model.bin"


def _dvc_add(art: ReleasedArtifact, rel: str, data: bytes) -> str:
    """Track a file with ``dvc add``, commit, and return its md5."""
    path = art.repo / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    subprocess.run([sys.executable, "-m", "dvc", "add", "-q", rel], cwd=art.repo, check=True)
    commit_all(art.repo, f"Track {rel}")
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _edit_yaml(path: Path, edit: Callable[[Any], object]) -> None:
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data))


@pytest.fixture
def repo(released_artifact: ReleasedArtifact, tmp_path: Path) -> GitRepo:
    return GitRepo.open(str(released_artifact.repo), tmp_path / "cache")


def test_a_dvc_file_is_read_at_a_commit_and_in_the_work_tree(
    released_artifact: ReleasedArtifact, repo: GitRepo
) -> None:
    art = released_artifact
    md5 = _dvc_add(art, WEIGHTS, b"weights" * 100)
    head = repo.resolve_commit("HEAD")
    assert locked_out_hash(repo, head, None, WEIGHTS) == md5
    assert locked_out_hash(repo, None, None, f"./{WEIGHTS}") == md5
    # Without a stage, a stage output is found in dvc.lock as well.
    assert locked_out_hash(repo, head, None, art.out) == art.hashes[V2]
    # A commit before the file was tracked: the missing record says what to do.
    with pytest.raises(NotBuiltError, match=r"models/tiny/model\.bin' is not tracked by DVC at "
                       r"commit .*'dvc add'"):
        locked_out_hash(repo, art.commits[V2], None, WEIGHTS)
    assert find_out_hash(repo, art.commits[V2], None, WEIGHTS) is None


def test_the_work_tree_is_read_as_it_is(
    released_artifact: ReleasedArtifact, repo: GitRepo
) -> None:
    art = released_artifact
    assert locked_out_hash(repo, None, art.stage, art.out) == art.hashes[V2]
    (art.repo / "dvc.lock").unlink()
    with pytest.raises(NotBuiltError, match=r"the work tree has no dvc\.lock.*dvc repro"):
        locked_out_hash(repo, None, art.stage, art.out)
    assert find_out_hash(repo, None, art.stage, art.out) is None
    # The committed dvc.lock is untouched by the work tree's.
    assert locked_out_hash(repo, art.commits[V2], art.stage, art.out) == art.hashes[V2]


def test_broken_records_raise_even_where_none_is_accepted(
    released_artifact: ReleasedArtifact, repo: GitRepo
) -> None:
    art = released_artifact
    lock = art.repo / "dvc.lock"

    def drop_hash_kind(data: Any) -> None:
        del data["stages"][art.stage]["outs"][0]["hash"]

    _edit_yaml(lock, drop_hash_kind)
    for read in (locked_out_hash, find_out_hash):
        with pytest.raises(NotBuiltError, match="hashed by DVC 2"):
            read(repo, None, art.stage, art.out)

    def bad_md5(data: Any) -> None:
        data["stages"][art.stage]["outs"][0].update({"hash": "md5", "md5": "not-an-md5"})

    _edit_yaml(lock, bad_md5)
    for read in (locked_out_hash, find_out_hash):
        with pytest.raises(ConfigError, match=r"invalid md5 'not-an-md5'.*dvc repro"):
            read(repo, None, art.stage, art.out)
    lock.write_text("stages: [unclosed")
    with pytest.raises(ConfigError, match=r"dvc\.lock in the work tree cannot be parsed"):
        find_out_hash(repo, None, art.stage, art.out)


def test_a_dvc_2_dvc_file_is_refused(released_artifact: ReleasedArtifact, repo: GitRepo) -> None:
    art = released_artifact
    _dvc_add(art, WEIGHTS, b"old weights")
    _edit_yaml(art.repo / f"{WEIGHTS}.dvc", lambda data: data["outs"][0].pop("hash"))
    commit_all(art.repo, "A .dvc file as DVC 2 wrote it")
    with pytest.raises(NotBuiltError, match=r"models/tiny/model\.bin\.dvc at commit .* DVC 2"):
        locked_out_hash(repo, repo.resolve_commit("HEAD"), None, WEIGHTS)
