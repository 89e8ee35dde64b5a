"""A lab's shared, read-only cache: looked in before the remote, never written to.

Everything is real: a Git + DVC registry with a local remote, shared caches filled by the registry
itself (or by ``dvc repro``, for a DVC-layout cache), and a remote made unreachable by moving its
folder away, so that any access to it would fail.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.repo.git import GitRepo
from registry.storage.cache import ContentCache, FetchResult
from registry.storage.remote import RemoteStore
from tests.conftest import ReleasedArtifact, ReleasedRegistry, commit_all, git

V1, V2 = "1.0.0", "2.0.0"


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def fingerprint(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under ``root``: mode, size, mtime, inode and, for files, the md5 of its bytes.

    (Not ctime or the link count: a hard link from the user's cache changes those, and only
    those, on filesystems where the user may make one.)
    """
    found = {}
    for path in [root, *root.rglob("*")]:
        st_ = os.lstat(path)
        digest = md5(path.read_bytes()) if stat.S_ISREG(st_.st_mode) else None
        found[path.relative_to(root).as_posix()] = (
            st_.st_mode,
            st_.st_size if digest else None,
            st_.st_mtime_ns,
            st_.st_ino,
            digest,
        )
    return found


def freeze(root: Path) -> dict[str, tuple[Any, ...]]:
    """Make ``root`` read-only for everyone (``chmod -R a-w``) and return its fingerprint."""
    subprocess.run(["chmod", "-R", "a-w", str(root)], check=True)
    return fingerprint(root)


def thaw(root: Path) -> None:
    subprocess.run(["chmod", "-R", "u+w", str(root)], check=True)


def remote_for(art: ReleasedArtifact, version: str, cache: Path) -> RemoteStore:
    return RemoteStore.open(GitRepo.open(str(art.repo), cache), art.commits[version])


def fill(art: ReleasedArtifact, version: str, shared: Path, *, objects_only: bool = False) -> None:
    """Fill ``shared`` as a lab would: a registry cache that pulled ``version``."""
    ContentCache(shared).snapshot(art.hashes[version], remote_for(art, version, shared))
    for folder in ("locks", "tmp", "repos") + (("snapshots", "manifests") if objects_only else ()):
        shutil.rmtree(shared / folder, ignore_errors=True)


def cut_remote(art: ReleasedArtifact) -> None:
    """Make the DVC remote unreachable: any read from it now raises RemoteError."""
    art.storage.rename(art.storage.with_name("storage-gone"))


def user_objects(cache: Path) -> list[Path]:
    return [p for p in (cache / "objects").rglob("*") if p.is_file()]


def overwrite(path: Path, data: bytes) -> None:
    """Write ``data`` into the existing file in place (same inode; its stamp is broken)."""
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(data)
    os.chmod(path, 0o444)


# -- the storage layer -------------------------------------------------------------------------


def test_a_whole_snapshot_is_used_in_place_with_the_remote_gone(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, shared, mine = released_artifact, tmp_path / "lab-cache", tmp_path / "mine"
    fill(art, V1, shared)
    before = freeze(shared)
    cut_remote(art)

    cache = ContentCache(mine, shared=[shared])
    result = cache.snapshot(art.hashes[V1], remote_for(art, V1, mine))
    key = art.hashes[V1][:-4]
    files = art.files[V1]
    assert result == FetchResult(
        shared / "snapshots" / key,
        len(files),
        0,
        0,
        len(files),
        sum(map(len, files.values())),
        shared,
    )
    assert tree(result.path) == files
    assert cache.cached(art.hashes[V1]) == result
    assert cache.cached(art.hashes[V1], verify=True) == result
    assert cache.snapshot(art.hashes[V1], remote_for(art, V1, mine), verify=True) == result
    # Zero copy: nothing at all was written to the user's cache either.
    assert not mine.exists() or user_objects(mine) == []
    assert fingerprint(shared) == before


def test_missing_objects_come_from_the_shared_cache_before_the_remote(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, shared, mine = released_artifact, tmp_path / "lab-cache", tmp_path / "mine"
    fill(art, V1, shared, objects_only=True)  # no snapshot to use in place: objects only
    before = freeze(shared)
    cut_remote(art)

    cache = ContentCache(mine, shared=[shared])
    result = cache.snapshot(art.hashes[V1], remote_for(art, V1, mine))
    files = art.files[V1]
    assert result.path == mine / "snapshots" / art.hashes[V1][:-4]
    assert (result.fetched_files, result.shared_files) == (0, len(files))
    assert result.shared_bytes == sum(map(len, files.values()))
    assert result.shared_cache == shared
    assert tree(result.path) == files
    # The user's cache now holds every object (and the listing), on its own from now on.
    assert len(user_objects(mine)) == len({md5(b) for b in files.values()}) + 1
    # On one filesystem, the lab's verified (stamped, read-only) objects are hard-linked: no copy.
    labels = md5(files["metadata/labels.txt"])
    shared_obj = shared / "objects" / "md5" / labels[:2] / labels[2:]
    assert cache.object_path(labels).stat().st_ino == shared_obj.stat().st_ino
    again = ContentCache(mine).snapshot(art.hashes[V1], remote_for(art, V1, mine))
    assert (again.path, again.fetched_files, again.shared_files) == (result.path, 0, 0)
    assert fingerprint(shared) == before


def test_a_partial_shared_cache_leaves_the_rest_to_the_remote(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, shared, mine = released_artifact, tmp_path / "lab-cache", tmp_path / "mine"
    fill(art, V1, shared)
    before = freeze(shared)
    calls: list[tuple[int, int]] = []
    cache = ContentCache(mine, shared=[shared])
    result = cache.snapshot(
        art.hashes[V2], remote_for(art, V2, mine), progress=lambda d, t: calls.append((d, t))
    )
    v1, v2 = art.files[V1], art.files[V2]
    changed = {rel for rel in v2 if v1.get(rel) != v2[rel]}
    assert result.fetched_files == len(changed) == 3
    assert result.fetched_bytes == sum(len(v2[rel]) for rel in changed)
    assert result.shared_files == len(v2) - len(changed)
    assert tree(result.path) == v2
    # Progress counts shared files too, and ends at its total.
    total = result.fetched_bytes + result.shared_bytes
    done = [d for d, _ in calls]
    assert done == sorted(done) and calls[-1] == (total, total)
    assert all(t == total for _, t in calls)
    assert fingerprint(shared) == before


def test_a_corrupt_shared_object_is_ignored_and_left_as_it_is(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, shared, mine = released_artifact, tmp_path / "lab-cache", tmp_path / "mine"
    fill(art, V1, shared)
    good = art.files[V1]["features.json"]
    bad_object = shared / "objects" / "md5" / md5(good)[:2] / md5(good)[2:]
    overwrite(bad_object, b"x" * len(good))  # same size; its time (and so its stamp) changed
    before = freeze(shared)

    cache = ContentCache(mine, shared=[shared])
    # The shared snapshot holds the bad file (a hard link to the object): not used in place.
    assert cache.cached(art.hashes[V1]) is None
    result = cache.snapshot(art.hashes[V1], remote_for(art, V1, mine))
    assert result.path == mine / "snapshots" / art.hashes[V1][:-4]
    assert (result.fetched_files, result.shared_files) == (1, len(art.files[V1]) - 1)
    assert tree(result.path) == art.files[V1]
    assert bad_object.read_bytes() == b"x" * len(good)  # not deleted, not repaired
    assert fingerprint(shared) == before


def test_verify_catches_a_shared_file_that_kept_its_stamp(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, shared, mine = released_artifact, tmp_path / "lab-cache", tmp_path / "mine"
    fill(art, V1, shared)
    rel = "digits-train.tfrecord-00007-of-00096"
    target = shared / "snapshots" / art.hashes[V1][:-4] / rel
    st_ = target.stat()
    overwrite(target, bytes(reversed(target.read_bytes())))
    os.utime(target, ns=(st_.st_atime_ns, st_.st_mtime_ns))  # size, time and stamp kept
    before = freeze(shared)
    cache = ContentCache(mine, shared=[shared])
    # The cheap check cannot see it ...
    assert cache.cached(art.hashes[V1]) is not None
    # ... re-hashing does: the user's own snapshot is made, the bad file from the remote.
    assert cache.cached(art.hashes[V1], verify=True) is None
    result = cache.snapshot(art.hashes[V1], remote_for(art, V1, mine), verify=True)
    assert result.path == mine / "snapshots" / art.hashes[V1][:-4]
    assert result.fetched_files == 1 and tree(result.path) == art.files[V1]
    assert fingerprint(shared) == before


def test_a_dvc_cache_serves_as_a_shared_cache(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, mine = released_artifact, tmp_path / "mine"
    # The registry's own DVC cache (dvc repro filled it): files/md5/ab/cdef..., no snapshots.
    dvc_cache = art.repo / ".dvc" / "cache"
    assert (dvc_cache / "files" / "md5").is_dir() and not (dvc_cache / "objects").exists()
    before = freeze(dvc_cache)
    cut_remote(art)
    cache = ContentCache(mine, shared=[dvc_cache])
    for version in (V1, V2):
        result = cache.snapshot(art.hashes[version], remote_for(art, version, mine))
        assert result.path == mine / "snapshots" / art.hashes[version][:-4]
        assert result.fetched_files == 0 and result.shared_cache == dvc_cache
        assert tree(result.path) == art.files[version]
    # DVC's files carry no registry stamp: they were copied, verified, and stamped here.
    features = md5(art.files[V1]["features.json"])
    mine_obj, dvc_obj = cache.object_path(features), dvc_cache / "files/md5" / features[:2]
    assert mine_obj.stat().st_ino != (dvc_obj / features[2:]).stat().st_ino
    assert fingerprint(dvc_cache) == before
    thaw(dvc_cache)


def test_single_objects_and_named_files_look_in_the_shared_cache(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, shared, mine = released_artifact, tmp_path / "lab-cache", tmp_path / "mine"
    fill(art, V1, shared, objects_only=True)
    before = freeze(shared)
    cut_remote(art)
    data = art.files[V1]["metadata/labels.txt"]
    cache = ContentCache(mine, shared=[shared])
    named = cache.named_object(md5(data), "labels.txt", remote_for(art, V1, mine))
    assert named.read_bytes() == data and named.is_relative_to(mine)
    assert cache.ensure_object(md5(data), remote_for(art, V1, mine), verify=True).is_file()
    assert fingerprint(shared) == before


def test_the_users_own_cache_is_never_its_own_shared_cache(tmp_path: Path) -> None:
    lab = tmp_path / "lab-cache"
    lab.mkdir()
    other = tmp_path / "other"
    assert ContentCache(lab, shared=[lab, lab / ".", other, other]).shared == (other,)


def test_a_cache_filled_for_the_lab_is_readable_by_everyone(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, shared = released_artifact, tmp_path / "lab-cache"
    old = os.umask(0o022)
    try:
        fill(art, V1, shared)
    finally:
        os.umask(old)
    for path in [shared, *shared.rglob("*")]:
        mode = path.stat().st_mode
        wanted = 0o005 if path.is_dir() else 0o004
        assert mode & wanted == wanted, f"{path} is {stat.filemode(mode)}"


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_shared_subset_gives_the_whole_artifact(
    released_artifact: ReleasedArtifact, tmp_path: Path, data: st.DataObject
) -> None:
    """Whatever the shared cache holds (any objects, some corrupt), the user gets the exact
    artifact; each file comes from exactly one source; the shared cache is unchanged."""
    art = released_artifact
    files = art.files[V1]
    digests = sorted({md5(b) for b in files.values()})
    held = data.draw(st.sets(st.sampled_from(digests)), label="held")
    corrupt = data.draw(st.sets(st.sampled_from(sorted(held))), label="corrupt") if held else set()
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    shared, mine = work / "lab-cache", work / "mine"
    for digest in held:
        obj = shared / "objects" / "md5" / digest[:2] / digest[2:]
        obj.parent.mkdir(parents=True, exist_ok=True)
        body = next(b for b in files.values() if md5(b) == digest)
        obj.write_bytes(b"rot" + body if digest in corrupt else body)  # not stamped: re-hashed
    before = freeze(shared) if held else {}

    result = ContentCache(mine, shared=[shared]).snapshot(art.hashes[V1], remote_for(art, V1, mine))
    assert tree(result.path) == files
    assert result.shared_files == len(held - corrupt)
    assert result.fetched_files == len(digests) - len(held - corrupt)
    if held:
        assert fingerprint(shared) == before
        thaw(shared)


# -- configured, through the API and the CLI ---------------------------------------------------

NAME = "image_classification/digits"


def _set_params_shared(clone: Path, value: str) -> None:
    import yaml

    params = yaml.safe_load((clone / "params.yaml").read_text())
    params.setdefault("registry", {})["shared_cache_dir"] = value
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "registry", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_a_lab_fills_the_shared_cache_once_and_loads_need_no_remote(
    released_registry: ReleasedRegistry, tmp_path: Path, chdir, isolated_env: Path
) -> None:
    import registry

    clone, lab = released_registry.clone, tmp_path / "lab-cache"
    lab.mkdir()
    # Configured once for everyone, in the registry's params.yaml.
    _set_params_shared(clone, str(lab))
    chdir(clone)
    # The lab fills it with its own cache pointed there (the setting is then its own cache).
    filled = _cli("datasets", "pull", NAME, env={"REGISTRY_CACHE_DIR": str(lab)})
    assert filled.returncode == 0, filled.stderr
    assert "fetched" in filled.stderr and "shared cache" not in filled.stderr
    before = freeze(lab)
    shutil.rmtree(released_registry.storage)

    pulled = _cli("datasets", "pull", NAME)
    assert pulled.returncode == 0, pulled.stderr
    assert f"found in the shared cache {lab} (" in pulled.stderr
    assert Path(pulled.stdout.strip()).is_relative_to(lab)
    assert sum(1 for _ in registry.load_dataset(NAME, split="test")) == 342
    user_cache = isolated_env / ".cache" / "lab-registry"
    assert not (user_cache / "objects").exists() and not (user_cache / "snapshots").exists()
    assert fingerprint(lab) == before


@pytest.mark.slow
def test_a_missing_shared_folder_warns_once_and_uses_the_remote(
    released_registry: ReleasedRegistry, tmp_path: Path, chdir, monkeypatch, caplog
) -> None:
    import registry

    chdir(released_registry.clone)
    missing = tmp_path / "nfs-down" / "lab-cache"
    monkeypatch.setenv("REGISTRY_SHARED_CACHE", str(missing))
    with caplog.at_level(logging.WARNING, logger="registry"):
        first = registry.pull_dataset(NAME)
        registry.pull_dataset(NAME)
    assert first.fetched_files == first.files > 0 and first.shared_files == 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "registry"]
    assert len(warnings) == 1
    assert str(missing) in warnings[0] and "REGISTRY_SHARED_CACHE" in warnings[0]
    # The CLI says so in one line, and the pull works.
    done = _cli("datasets", "pull", NAME)
    assert done.returncode == 0 and "already cached" in done.stderr
    assert done.stderr.count(str(missing)) == 1 and "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_relative_shared_cache_in_the_environment_is_a_one_line_error(
    released_registry: ReleasedRegistry, chdir
) -> None:
    chdir(released_registry.clone)
    done = _cli("datasets", "pull", NAME, env={"REGISTRY_SHARED_CACHE": "lab-cache"})
    assert done.returncode == 2
    assert "REGISTRY_SHARED_CACHE must be an absolute path" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_models_load_from_the_shared_cache(
    released_registry: ReleasedRegistry, tmp_path: Path, chdir, monkeypatch
) -> None:
    import registry
    from tests.test_models import _model

    clone, lab = released_registry.clone, tmp_path / "lab-cache"
    chdir(clone)
    _model(clone, tmp_path, "digits-cnn")
    registry.release_model("digits-cnn")
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(lab))
    assert registry.load_model("digits-cnn").read_bytes() == b"digits-cnn" * 100
    before = freeze(lab)
    shutil.rmtree(released_registry.storage)

    monkeypatch.delenv("REGISTRY_CACHE_DIR")
    monkeypatch.setenv("REGISTRY_SHARED_CACHE", str(lab))
    path = registry.load_model("digits-cnn:1.0.0")
    assert path.name == "model.keras" and path.read_bytes() == b"digits-cnn" * 100
    assert not path.is_relative_to(lab)
    assert fingerprint(lab) == before


@pytest.mark.slow
def test_loading_by_git_url_uses_the_shared_cache_its_params_name(
    released_registry: ReleasedRegistry, tmp_path: Path, chdir, isolated_env: Path
) -> None:
    clone, lab = released_registry.clone, tmp_path / "lab-cache"
    lab.mkdir()
    _set_params_shared(clone, str(lab))
    commit_all(clone, "The lab's shared cache")
    git(clone, "push", "-q", "origin", "main")
    chdir(clone)
    filled = _cli("datasets", "pull", NAME, env={"REGISTRY_CACHE_DIR": str(lab)})
    assert filled.returncode == 0, filled.stderr
    before = freeze(lab)

    elsewhere = tmp_path / "another-project"
    elsewhere.mkdir()
    chdir(elsewhere)
    url = f"file://{released_registry.origin}"
    pulled = _cli("datasets", "pull", NAME, "--registry", url)
    assert pulled.returncode == 0, pulled.stderr
    assert f"found in the shared cache {lab} (" in pulled.stderr
    assert fingerprint(lab) == before

    # A relative path in params.yaml has nothing to be relative to in a mirror: left out.
    _set_params_shared(clone, "lab-cache")
    commit_all(clone, "A relative shared cache")
    git(clone, "push", "-q", "origin", "main")
    fresh = _cli(
        "datasets",
        "pull",
        NAME,
        "--registry",
        url,
        env={"REGISTRY_CACHE_DIR": str(tmp_path / "fresh-cache")},
    )
    assert fresh.returncode == 0, fresh.stderr
    assert "shared cache" not in fresh.stderr and "fetched 4 of 4 files" in fresh.stderr


def test_a_purge_waits_for_a_load_writing_the_object_then_deletes_it(tmp_path: Path) -> None:
    """A load fetching the object as the purge runs finishes first; what it wrote goes too."""
    import threading

    cache = ContentCache(tmp_path / "cache")
    data = b"personal data\n"
    md5 = hashlib.md5(data).hexdigest()
    writing, purged = threading.Event(), threading.Event()

    def load() -> None:  # what a fetch does: the object's lock, then the bytes
        with cache._locked("md5", md5[:2], md5[2:]):
            writing.set()
            assert not purged.wait(0.5)  # the purge waits on the lock meanwhile
            cache.object_path(md5).parent.mkdir(parents=True, exist_ok=True)
            cache.object_path(md5).write_bytes(data)

    loader = threading.Thread(target=load)
    loader.start()
    assert writing.wait(10)
    report = cache.purge([md5])
    purged.set()
    loader.join()
    assert not cache.object_path(md5).exists()
    assert report.freed_bytes == len(data)
