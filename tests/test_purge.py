"""Purging a version (``yank --purge``) and ``registry remote gc``: real clones, a real bare
origin and a real local DVC remote (the released registry fixture's copy)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import registry
from registry.errors import (
    PurgeAfterYankError,
    PurgedVersionError,
    PurgeRefusedError,
    RemoteError,
    VersionNotFoundError,
)
from tests.conftest import ReleasedRegistry, cli_raises, commit_all, git
from tests.test_models import _model, _weights

pytestmark = pytest.mark.slow
DIGITS = "image_classification/digits"
REASON = "holds personal data (request 2026-17)"


@pytest.fixture
def zoo(released_registry: ReleasedRegistry, chdir) -> ReleasedRegistry:
    chdir(released_registry.clone)
    return released_registry


def _cli(cwd: Path, *args: str) -> str:
    """``registry ARGS`` in a process of its own (DVC's logging stays out of pytest's capture)."""
    done = subprocess.run(["registry", *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _on_remote(storage: Path) -> set[str]:
    """The objects on a local DVC remote."""
    base = storage / "files" / "md5"
    return {p.parent.name + p.name for p in base.glob("*/*") if p.is_file()}


def _two_model_versions(zoo: ReleasedRegistry, tmp_path: Path) -> tuple[str, str]:
    """digits-cnn 1.0.0 and a later version with other weights; their weights' hashes."""
    before = _on_remote(zoo.storage)
    _model(zoo.clone, tmp_path, "digits-cnn")
    registry.release_model("digits-cnn")
    old = (_on_remote(zoo.storage) - before).pop()
    registry.add_model("digits-cnn", _weights(tmp_path, content=b"retrained" * 100), force=True)
    commit_all(zoo.clone, "digits-cnn: new weights")
    registry.release_model("digits-cnn", version="1.1.0")
    new = (_on_remote(zoo.storage) - before - {old}).pop()
    return old, new


def test_purge_deletes_a_models_weights_and_a_load_says_why(
    zoo: ReleasedRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = _two_model_versions(zoo, tmp_path)
    cached = registry.load_model("digits-cnn:1.0.0")  # in the content cache now
    assert cached.exists()
    shared = tmp_path / "lab-cache" / "files" / "md5" / old[:2] / old[2:]  # a DVC-layout one
    shared.parent.mkdir(parents=True)
    shutil.copy(cached, shared)
    monkeypatch.setenv("REGISTRY_SHARED_CACHE", str(tmp_path / "lab-cache"))
    dry = _cli(zoo.clone, "models", "yank", "digits-cnn:1.0.0", "--reason", REASON, "--purge",
               "--dry-run")
    assert "would delete 1 objects" in dry and old in _on_remote(zoo.storage)
    assert not [t for t in git(zoo.clone, "tag").split() if t.endswith("!")]
    out = _cli(zoo.clone, "models", "yank", "digits-cnn:1.0.0", "--reason", REASON, "--purge",
               "--yes")
    assert "tagged digits-cnn@v1.0.0!" in out and "purge: deleted 1 objects" in out
    assert "freed" in out
    assert old not in _on_remote(zoo.storage) and new in _on_remote(zoo.storage)
    assert not cached.exists() and not shared.exists()
    assert not (zoo.clone / ".dvc" / "cache" / "files" / "md5" / old[:2] / old[2:]).exists()
    message = git(zoo.origin, "tag", "-l", "--format=%(contents)", "digits-cnn@v1.0.0!")
    assert f"purged-objects: {old}" in message and "purged-by: researcher@lab.test" in message
    with pytest.raises(PurgedVersionError, match=r"digits-cnn 1\.0\.0 was purged by") as gone:
        registry.load_model("digits-cnn:1.0.0")
    assert gone.value.exit_code == 16 and gone.value.reason == REASON
    # Its record outlives its bytes: info and lineage still describe it.
    assert registry.get_lineage("digits-cnn:1.0.0").nodes["digits-cnn:1.0.0"].yanked == REASON
    info = _cli(zoo.clone, "models", "info", "digits-cnn:1.0.0")
    assert f"YANKED: {REASON}" in info and "PURGED by researcher@lab.test on 20" in info
    assert registry.model_info("digits-cnn:1.0.0").purged.startswith("by researcher@lab.test")
    assert registry.model_info("digits-cnn:1.1.0").purged is None
    err = cli_raises(PurgedVersionError, "models", "pull", "digits-cnn:1.0.0")
    assert REASON in str(err) and "cannot be loaded" in str(err)
    assert registry.load_model("digits-cnn").read_bytes() == b"retrained" * 100
    done = subprocess.run(["registry", "models", "pull", "digits-cnn:1.0.0"], cwd=zoo.clone,
                          capture_output=True, text=True)
    assert done.returncode == 16 and "was purged" in done.stderr


def test_purge_keeps_what_a_branch_uses_then_deletes_the_rest(
    zoo: ReleasedRegistry
) -> None:
    registry.pull_dataset(f"{DIGITS}:1.0.0")
    on_remote = _on_remote(zoo.storage)
    # main still records the data (dvc.lock): nothing could go, so the purge is refused, and
    # says why; nothing is tagged.
    for dry in (["--dry-run"], ["--yes"]):
        kept = cli_raises(PurgeRefusedError, "datasets", "yank", f"{DIGITS}:1.0.0", "--reason",
                          REASON, "--purge", *dry)
        assert set(kept.users) == on_remote and kept.exit_code == 6
        assert f"still used by branch main (datasets/{DIGITS}/prepared)" in str(kept)
    assert not [t for t in git(zoo.clone, "tag").split() if t.endswith("!")]
    git(zoo.clone, "rm", "-q", "dvc.lock")
    commit_all(zoo.clone, "digits: data withdrawn")
    git(zoo.clone, "push", "-q", "origin", "main")
    result = registry.yank_dataset(f"{DIGITS}:1.0.0", reason=REASON, purge=True)
    assert result.purge is not None and set(result.purge.deleted) == on_remote
    assert result.purge.kept == {}
    assert result.purge.freed_bytes > sum(result.purge.deleted.values())  # the caches' too
    assert _on_remote(zoo.storage) == set()
    with pytest.raises(PurgedVersionError, match=re.escape(REASON)):
        registry.pull_dataset(f"{DIGITS}:1.0.0")
    assert json.loads(_cli(zoo.clone, "remote", "gc", "--json"))["objects"] == {}


def test_a_failed_delete_is_finished_by_running_the_purge_again(
    zoo: ReleasedRegistry, tmp_path: Path
) -> None:
    git(zoo.clone, "rm", "-q", "dvc.lock")
    commit_all(zoo.clone, "digits: data withdrawn")
    git(zoo.clone, "push", "-q", "origin", "main")
    plan = registry.yank_dataset(f"{DIGITS}:1.0.0", reason=REASON, purge=True, dry_run=True)
    assert plan.purge is not None
    last = sorted(plan.purge.deleted)[-1]
    prefix = zoo.storage / "files" / "md5" / last[:2]
    shutil.move(prefix, tmp_path / "aside")
    prefix.write_bytes(b"in the way")  # so deleting the last object fails
    with pytest.raises(RemoteError, match=r"run the same .* again to finish it"):
        registry.yank_dataset(f"{DIGITS}:1.0.0", reason=REASON, purge=True)
    assert f"{DIGITS}@v1.0.0!" in git(zoo.origin, "tag").split()  # tagged first
    with pytest.raises(PurgedVersionError):
        registry.pull_dataset(f"{DIGITS}:1.0.0")
    prefix.unlink()
    shutil.move(tmp_path / "aside", prefix)
    left = _on_remote(zoo.storage)
    assert last in left and left < set(plan.purge.deleted)  # the others went
    out = _cli(zoo.clone, "datasets", "yank", f"{DIGITS}:1.0.0", "--reason", REASON, "--purge",
               "--yes")
    assert "finishing the purge its tag records" in out
    assert _on_remote(zoo.storage) == set()


def test_purge_refusals(zoo: ReleasedRegistry) -> None:
    ref = f"{DIGITS}:1.0.0"
    unknown = cli_raises(VersionNotFoundError, "datasets", "yank", f"{DIGITS}:9.9.9",
                         "--reason", "x", "--purge", "--yes")
    assert "released: 1.0.0" in str(unknown)
    # A remote that is down: nothing deleted, nothing tagged.
    on_remote = _on_remote(zoo.storage)
    moved = zoo.storage.with_name("storage-away")
    zoo.storage.rename(moved)
    down = cli_raises(RemoteError, "datasets", "yank", ref, "--reason", "x", "--purge", "--yes")
    assert "Nothing was deleted or tagged" in str(down)
    moved.rename(zoo.storage)
    assert _on_remote(zoo.storage) == on_remote
    assert not [t for t in git(zoo.clone, "tag").split() if t.endswith("!")]
    # A purge is asked with the yank: a version yanked without one cannot be purged later.
    registry.yank_dataset(ref, reason=REASON)
    later = cli_raises(PurgeAfterYankError, "datasets", "yank", ref, "--reason", "x", "--purge",
                       "--yes")
    assert "without --purge; its one yank tag" in str(later) and later.exit_code == 6
    assert _on_remote(zoo.storage) == on_remote


def test_remote_gc_lists_then_deletes_what_nothing_uses(
    zoo: ReleasedRegistry
) -> None:
    live = _on_remote(zoo.storage)
    stray = "0123456789abcdef0123456789abcdef"
    path = zoo.storage / "files" / "md5" / stray[:2] / stray[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"pushed, never released")
    # An input of a live release's build (as raw data tracked by DVC would be) is kept.
    lock = yaml.safe_load((zoo.clone / "dvc.lock").read_text())
    raw = lock["stages"][f"build@{DIGITS}"]["deps"][0]["md5"]
    raw_path = zoo.storage / "files" / "md5" / raw[:2] / raw[2:]
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    raw_path.write_bytes(b"an input")
    live.add(raw)
    git(zoo.clone, "rm", "-q", "dvc.lock")  # not at a branch head: only the release keeps it
    commit_all(zoo.clone, "digits: lock dropped")
    git(zoo.clone, "push", "-q", "origin", "main")
    out = _cli(zoo.clone, "remote", "gc")
    assert raw not in out
    assert f"{stray}  22 B" in out and "1 objects unreferenced" in out and "--delete" in out
    assert path.exists()
    report = json.loads(_cli(zoo.clone, "remote", "gc", "--delete", "--json"))
    assert report["objects"] == {stray: 22} and report["deleted"] is True
    assert _on_remote(zoo.storage) == live
    # A remote that is missing: a clear error, and nothing deleted.
    path.write_bytes(b"pushed, never released")
    moved = zoo.storage.with_name("storage-away")
    zoo.storage.rename(moved)
    err = cli_raises(RemoteError, "remote", "gc", "--delete")
    assert "does not exist" in str(err)
    moved.rename(zoo.storage)
    assert path.exists()


def test_the_purge_record_round_trips_and_old_yank_messages_read_as_before() -> None:
    from registry.grammar import Version
    from registry.repo.tags import Purge, parse_purge, yank_message

    old = yank_message("d", Version(1, 0, 0), "bad labels", "a@lab.org", "2026-01-01")
    assert parse_purge(old) is None  # a yank made before purges, or without one
    purge = Purge("a@lab.org", "2026-01-02T10:00:00+00:00", ("0" * 32 + ".dir",), ("1" * 32,))
    message = yank_message("d", Version(1, 0, 0), "bad labels", "a@lab.org", "2026-01-02", purge)
    assert message.splitlines()[0] == "Yank d 1.0.0: bad labels"  # what TagIndex reads
    assert parse_purge(message) == purge
    assert parse_purge(message.replace("kept-objects: " + "1" * 32, "kept-objects: ")) == Purge(
        purge.by, purge.at, purge.objects, ()
    )
