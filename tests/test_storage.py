"""Fetching released artifacts into the local content cache (registry.storage).

Everything is real: Git repositories, a DVC local remote filled by ``dvc push``, subprocesses
racing on one cache, and a fetch killed with SIGKILL.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from registry.errors import ConfigError, CorruptArtifactError, NotBuiltError, RemoteError
from registry.repo.git import GitRepo
from registry.repo.lock import locked_out_hash
from registry.storage.cache import ContentCache, FetchResult
from registry.storage.remote import RemoteStore
from tests.conftest import ReleasedArtifact, commit_all

V1, V2 = "1.0.0", "2.0.0"
BIG_FILE = "digits-validation.tfrecord-00000-of-00001"


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` and its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def cached_objects(cache: Path) -> list[Path]:
    """The file objects in the cache (``.dir`` listings left out)."""
    objects = cache / "objects" / "md5"
    return [p for p in objects.rglob("*") if p.is_file() and not p.name.endswith(".dir")]


def open_release(
    art: ReleasedArtifact, version: str, cache: Path
) -> tuple[ContentCache, RemoteStore]:
    repo = GitRepo.open(str(art.repo), cache)
    return ContentCache(cache), RemoteStore.open(repo, art.commits[version])


def snapshot(art: ReleasedArtifact, version: str, cache: Path, **kwargs: Any) -> FetchResult:
    store, remote = open_release(art, version, cache)
    return store.snapshot(art.hashes[version], remote, **kwargs)


# A loader in its own process; arguments as one JSON object, result as one JSON line.
CHILD = r"""
import json, sys, time
from pathlib import Path
from typing import Any

args = json.loads(sys.argv[1])
from registry.repo.git import GitRepo
from registry.storage.cache import ContentCache
from registry.storage.remote import RemoteStore

cache = ContentCache(Path(args["cache"]))
remote = RemoteStore.open(GitRepo.open(args["repo"], Path(args["cache"])), args["commit"])
progress = None
if args.get("hang_after"):
    def progress(done, total):
        if done >= args["hang_after"]:
            Path(args["marker"]).touch()
            time.sleep(600)
if args.get("go"):
    import dvc.config, dvc.fs, dvc_data.hashfile.db, filelock  # so that all start together
    Path(args["ready"]).touch()
    while not Path(args["go"]).exists():
        time.sleep(0.002)
timings = []
for _ in range(args.get("repeat", 1)):
    start = time.perf_counter()
    result = cache.snapshot(args["hash"], remote, jobs=args.get("jobs"), progress=progress)
    timings.append(time.perf_counter() - start)
print(json.dumps({
    "path": str(result.path),
    "files": result.files,
    "fetched_files": result.fetched_files,
    "timings": timings,
    "dvc_modules": sorted(m for m in sys.modules if m.split(".")[0] in ("dvc", "dvc_data")),
}))
"""


def child(
    art: ReleasedArtifact, version: str, cache: Path, **extra: object
) -> subprocess.Popen[str]:
    args = {
        "repo": str(art.repo),
        "cache": str(cache),
        "commit": art.commits[version],
        "hash": art.hashes[version],
        **extra,
    }
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stalled_download(art: ReleasedArtifact, cache: Path, marker: Path) -> subprocess.Popen[str]:
    """A child fetching V1 into ``cache``, stalled 1 MiB into its 3 MiB file (it wrote
    ``marker`` there) and alive."""
    proc = child(art, V1, cache, jobs=1, hang_after=1 << 20, marker=str(marker))
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return proc


def child_result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out.splitlines()[-1])


# -- dvc.lock ----------------------------------------------------------------------------------


def test_locked_out_hash_reads_each_release(released_artifact: ReleasedArtifact, tmp_path: Path):
    art = released_artifact
    repo = GitRepo.open(str(art.repo), tmp_path / "cache")
    for version in (V1, V2):
        got = locked_out_hash(repo, art.commits[version], art.stage, art.out)
        assert got == art.hashes[version]
        assert art.remote_object(got).is_file()
    # The same output spelled differently.
    assert locked_out_hash(repo, art.commits[V1], art.stage, f"./{art.out}/") == art.hashes[V1]
    assert art.hashes[V1] != art.hashes[V2]


def test_locked_out_hash_says_what_is_missing(released_artifact: ReleasedArtifact, tmp_path: Path):
    art = released_artifact
    repo = GitRepo.open(str(art.repo), tmp_path / "cache")
    with pytest.raises(NotBuiltError, match=r"has no dvc\.lock.*dvc repro"):
        locked_out_hash(repo, art.commits["init"], art.stage, art.out)
    with pytest.raises(NotBuiltError, match=r"'build@image_classification/other' is not in"):
        locked_out_hash(repo, art.commits[V1], "build@image_classification/other", art.out)
    with pytest.raises(NotBuiltError, match=r"has no output 'datasets/x'.*outputs: 'datasets/"):
        locked_out_hash(repo, art.commits[V1], art.stage, "datasets/x")
    # NotBuiltError is also a FileNotFoundError, for callers that catch the built-in.
    with pytest.raises(FileNotFoundError):
        locked_out_hash(repo, art.commits["init"], art.stage, art.out)


# -- fetching and reuse ------------------------------------------------------------------------


def test_snapshot_fetches_once_then_serves_from_cache(
    released_artifact: ReleasedArtifact, tmp_path: Path
):
    art, cache = released_artifact, tmp_path / "cache"
    store, remote = open_release(art, V1, cache)
    assert store.cached(art.hashes[V1]) is None

    first = store.snapshot(art.hashes[V1], remote)
    expected = art.files[V1]
    assert (first.files, first.fetched_files) == (len(expected), len(expected))
    assert first.fetched_bytes == sum(len(b) for b in expected.values())
    assert first.path == cache / "snapshots" / art.hashes[V1].removesuffix(".dir")
    assert tree(first.path) == expected
    # Files are read-only hard links to the objects.
    features = first.path / "features.json"
    assert not features.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert features.stat().st_ino == store.object_path(md5(expected["features.json"])).stat().st_ino
    # Nothing is left behind in tmp/.
    assert list((cache / "tmp").iterdir()) == []

    second = store.snapshot(art.hashes[V1], remote)
    assert (second.path, second.files, second.fetched_files, second.fetched_bytes) == (
        first.path,
        len(expected),
        0,
        0,
    )
    assert store.cached(art.hashes[V1]) == second
    assert store.cached(art.hashes[V1], verify=True) == second


def test_ensure_object_fetches_a_single_file(released_artifact: ReleasedArtifact, tmp_path: Path):
    art = released_artifact
    store, remote = open_release(art, V1, tmp_path / "cache")
    data = art.files[V1]["metadata/labels.txt"]
    path = store.ensure_object(md5(data), remote)
    assert path == store.object_path(md5(data)) and path.read_bytes() == data
    assert store.ensure_object(md5(data), remote, verify=True) == path
    with pytest.raises(ValueError, match=r"\.dir"):
        store.snapshot(md5(data), remote)


def test_versions_store_shared_files_once(released_artifact: ReleasedArtifact, tmp_path: Path):
    art, cache = released_artifact, tmp_path / "cache"
    one = snapshot(art, V1, cache)
    two = snapshot(art, V2, cache)
    v1, v2 = art.files[V1], art.files[V2]
    changed = {rel for rel in v2 if v1.get(rel) != v2[rel]}
    assert changed == {
        "dataset_info.json",
        "digits-train.tfrecord-00000-of-00096",
        "digits-test.tfrecord-00000-of-00001",
    }
    assert two.fetched_files == len(changed)
    assert tree(two.path) == v2
    assert tree(one.path) == v1
    # One object per distinct content, shared by both snapshots through one inode.
    distinct = {md5(b) for b in v1.values()} | {md5(b) for b in v2.values()}
    assert len(cached_objects(cache)) == len(distinct) == len(v1) + len(changed)
    for rel in set(v1) - changed:
        assert (one.path / rel).stat().st_ino == (two.path / rel).stat().st_ino


def test_progress_reports_bytes_up_to_the_total(
    released_artifact: ReleasedArtifact, tmp_path: Path
):
    calls: list[tuple[int, int]] = []
    result = snapshot(
        released_artifact,
        V1,
        tmp_path / "cache",
        jobs=4,
        progress=lambda d, t: calls.append((d, t)),
    )
    total = sum(len(b) for b in released_artifact.files[V1].values())
    assert calls and all(t == total for _, t in calls)
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[-1] == total == result.fetched_bytes
    with pytest.raises(ValueError, match="jobs"):
        snapshot(released_artifact, V1, tmp_path / "cache", jobs=0)


def test_warm_snapshot_fetches_nothing_and_never_imports_dvc(
    released_artifact: ReleasedArtifact, tmp_path: Path
):
    art, cache = released_artifact, tmp_path / "cache"
    snapshot(art, V1, cache)
    result = child_result(child(art, V1, cache, repeat=5))
    assert result["fetched_files"] == 0 and result["files"] == 100
    # Its speed is a figure of benchmarks/bench_load.py; here: the warm path never imports DVC.
    assert result["dvc_modules"] == []


# -- concurrency and interruption --------------------------------------------------------------


def test_eight_processes_fetch_each_file_once(released_artifact: ReleasedArtifact, tmp_path: Path):
    art, cache = released_artifact, tmp_path / "cache"
    go = tmp_path / "go"
    procs = [
        child(art, V1, cache, go=str(go), ready=str(tmp_path / f"ready-{i}"), jobs=4)
        for i in range(8)
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{i}").exists() for i in range(8)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    go.touch()
    results = [child_result(p) for p in procs]
    assert sum(r["fetched_files"] for r in results) == len(art.files[V1])
    assert {r["path"] for r in results} == {str(cache / "snapshots" / art.hashes[V1][:-4])}
    assert tree(Path(results[0]["path"])) == art.files[V1]
    assert len(cached_objects(cache)) == len(art.files[V1])


def test_a_local_remote_is_copied_without_object_locks(
    released_artifact: ReleasedArtifact, tmp_path: Path
):
    # From a local folder the objects are copied under the snapshot's lock alone (a lock file
    # per object cost as much as copying a small file): none is made, and each object still
    # arrives verified, read-only and stamped, by one rename.
    from registry.storage.cache import _is_stamped

    art, cache = released_artifact, tmp_path / "cache"
    result = snapshot(art, V1, cache)
    assert tree(result.path) == art.files[V1]
    locks = [p for p in (cache / "locks" / "md5").rglob("*") if p.is_file()]
    assert [p.parent.name + p.stem for p in locks] == [art.hashes[V1]]  # the listing's only
    for obj in cached_objects(cache):
        digest = obj.parent.name + obj.name
        assert md5(obj.read_bytes()) == digest and _is_stamped(obj.stat(), digest)
        assert not obj.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert list((cache / "tmp").iterdir()) == []


def test_two_processes_assembling_versions_that_share_files(
    released_artifact: ReleasedArtifact, tmp_path: Path
):
    # Without object locks, two snapshots that share files may copy a shared object twice;
    # each copy is whole and verified, so both snapshots and the objects stay right.
    art, cache, go = released_artifact, tmp_path / "cache", tmp_path / "go"
    procs = [
        child(art, version, cache, go=str(go), ready=str(tmp_path / f"ready-{version}"))
        for version in (V1, V2)
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{v}").exists() for v in (V1, V2)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    go.touch()
    results = {version: child_result(p) for version, p in zip((V1, V2), procs, strict=True)}
    for version, result in results.items():
        assert tree(Path(result["path"])) == art.files[version]
    for obj in cached_objects(cache):
        assert md5(obj.read_bytes()) == obj.parent.name + obj.name
    distinct = {md5(b) for v in (V1, V2) for b in art.files[v].values()}
    assert len(cached_objects(cache)) == len(distinct)
    assert list((cache / "tmp").iterdir()) == []


def test_queued_tasks_stop_at_the_first_error():
    from concurrent.futures import ThreadPoolExecutor

    from registry.storage.cache import _run_queued

    ran: list[int] = []

    def fail() -> None:
        raise RemoteError("the remote went away")

    tasks = [lambda: ran.append(0), fail] + [lambda i=i: ran.append(i) for i in range(1, 50)]
    with ThreadPoolExecutor(2) as pool:
        with pytest.raises(RemoteError, match="went away"):
            _run_queued(pool, 1, tasks)
        assert ran == [0]  # no task was taken after the error
        _run_queued(pool, 2, tasks[2:])  # two threads: every task runs
    assert sorted(ran) == list(range(50))


def test_killed_fetch_leaves_no_partial_artifact(
    released_artifact: ReleasedArtifact, tmp_path: Path
):
    art, cache, marker = released_artifact, tmp_path / "cache", tmp_path / "midway"
    proc = stalled_download(art, cache, marker)  # killed there, inside the download
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    assert not (cache / "snapshots" / art.hashes[V1][:-4]).exists()
    partial = [p for p in (cache / "tmp").rglob("*") if p.is_file()]
    assert any(0 < p.stat().st_size < 3 << 20 for p in partial), partial
    # Only whole, verified objects made it into objects/: those fetched before the big one
    # (jobs=1 fetches in path order).
    done = cached_objects(cache)
    before = {md5(data) for rel, data in art.files[V1].items() if rel < BIG_FILE}
    assert {obj.parent.name + obj.name for obj in done} == before
    for obj in done:
        assert md5(obj.read_bytes()) == obj.parent.name + obj.name

    # The dead process's debris is swept by the next fetch: no one holds its object's lock.
    result = snapshot(art, V1, cache)
    assert result.fetched_files == len(art.files[V1]) - len(before)
    assert tree(result.path) == art.files[V1]
    assert list((cache / "tmp").iterdir()) == []


# -- corruption --------------------------------------------------------------------------------


def overwrite(path: Path, data: bytes) -> None:
    """Write ``data`` into the existing file (same inode, as a careless script would)."""
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(data)


def test_corrupted_cached_file_is_fetched_again(
    released_artifact: ReleasedArtifact, tmp_path: Path
):
    art, cache = released_artifact, tmp_path / "cache"
    one = snapshot(art, V1, cache)
    # Written through v1's hard link, so the shared object is corrupt too.
    overwrite(one.path / "features.json", b'{"image": "garbage"}')
    assert ContentCache(cache).cached(art.hashes[V1]) is None

    # A new version that shares the file does not pick up the corrupt object.
    two = snapshot(art, V2, cache)
    assert tree(two.path) == art.files[V2]
    assert two.fetched_files == 4  # the 3 changed files and features.json again

    repaired = snapshot(art, V1, cache)
    assert repaired.fetched_files == 0  # the good object is back already
    assert tree(repaired.path) == art.files[V1]
    assert (repaired.path / "features.json").stat().st_ino == (
        two.path / "features.json"
    ).stat().st_ino
    assert snapshot(art, V1, cache).fetched_files == 0

    # A file only touched (same bytes) is re-hashed once and kept.
    os.utime(repaired.path / "dataset_info.json")
    assert snapshot(art, V1, cache).fetched_files == 0
    assert ContentCache(cache).cached(art.hashes[V1]) is not None


def test_deleted_cached_file_is_restored(released_artifact: ReleasedArtifact, tmp_path: Path):
    art, cache = released_artifact, tmp_path / "cache"
    one = snapshot(art, V1, cache)
    (one.path / "metadata" / "labels.txt").unlink()
    again = snapshot(art, V1, cache)
    assert again.fetched_files == 0  # relinked from its object
    assert tree(again.path) == art.files[V1]


def test_verify_finds_corruption_that_kept_size_and_time(
    released_artifact: ReleasedArtifact, tmp_path: Path
):
    art, cache = released_artifact, tmp_path / "cache"
    one = snapshot(art, V1, cache)
    target = one.path / "digits-train.tfrecord-00007-of-00096"
    before = target.stat()
    good = target.read_bytes()
    overwrite(target, bytes(reversed(good)))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.chmod(target, 0o444)
    # The cheap check cannot see it (same size, mtime and inode) ...
    assert snapshot(art, V1, cache).fetched_files == 0
    assert ContentCache(cache).cached(art.hashes[V1], verify=True) is None
    # ... a full verification does, and repairs it.
    (cache / "snapshots" / art.hashes[V1][:-4] / "stray.txt").write_text("not in the artifact")
    checked = snapshot(art, V1, cache, verify=True)
    assert checked.fetched_files == 1
    assert tree(checked.path) == art.files[V1]


def test_corrupt_remote_object_is_refused(released_artifact: ReleasedArtifact, tmp_path: Path):
    art, cache = released_artifact, tmp_path / "cache"
    bad = art.remote_object(md5(art.files[V1]["features.json"]))
    os.chmod(bad, 0o644)
    bad.write_bytes(b"bit rot")
    with pytest.raises(CorruptArtifactError, match=r"file 'features\.json'.*corrupt.*dvc push"):
        snapshot(art, V1, cache)
    assert not (cache / "snapshots" / art.hashes[V1][:-4]).exists()
    assert not ContentCache(cache).object_path(md5(art.files[V1]["features.json"])).exists()


# -- remote errors -----------------------------------------------------------------------------


def test_missing_remote_folder_is_a_remote_error(
    released_artifact: ReleasedArtifact, tmp_path: Path
):
    art = released_artifact
    art.storage.rename(art.storage.with_name("moved"))
    with pytest.raises(
        RemoteError,
        match=r"'storage'.*does not exist or cannot be reached.*"
        r"dvc remote list",
    ):
        snapshot(art, V1, tmp_path / "cache")
    with pytest.raises(ConnectionError):  # RemoteError is one
        snapshot(art, V1, tmp_path / "cache")


def test_object_missing_from_remote_is_a_remote_error(
    released_artifact: ReleasedArtifact, tmp_path: Path
):
    art, cache = released_artifact, tmp_path / "cache"
    rel = "digits-train.tfrecord-00042-of-00096"
    art.remote_object(md5(art.files[V1][rel])).unlink()
    with pytest.raises(
        RemoteError,
        match=rf"file '{rel}'.*missing from DVC remote 'storage'.*"
        r"dvc push -r storage",
    ):
        snapshot(art, V1, cache)
    # It failed before downloading anything.
    assert cached_objects(cache) == []
    assert not (cache / "snapshots" / art.hashes[V1][:-4]).exists()


def test_unknown_remote_name_is_a_config_error(released_artifact: ReleasedArtifact, tmp_path: Path):
    art = released_artifact
    store = ContentCache(tmp_path / "cache")
    remote = RemoteStore.open(GitRepo.open(str(art.repo), tmp_path), art.commits[V1], "nope")
    with pytest.raises(ConfigError, match=r"'nope' is not configured.*configured: storage"):
        store.snapshot(art.hashes[V1], remote)


# -- mirrors of a Git URL ----------------------------------------------------------------------


def test_mirror_reads_the_remote_config_at_the_commit(
    released_artifact: ReleasedArtifact, tmp_path: Path
):
    art = released_artifact
    # While the registry's remote is a path relative to its clones, a mirror cannot use it.
    before = GitRepo.open(f"file://{art.repo}", tmp_path / "early")
    relative = RemoteStore.open(before, art.commits[V1])
    with pytest.raises(ConfigError, match=r"relative path '\.\./\.\./storage'.*REGISTRY_URL"):
        ContentCache(tmp_path / "early").snapshot(art.hashes[V1], relative)

    # A later commit gives the remote an absolute URL (as a lab moving to a bucket does).
    config = art.repo / ".dvc" / "config"
    config.write_text(config.read_text().replace("../../storage", str(art.storage)))
    absolute = commit_all(art.repo, "Use an absolute remote URL")
    cache = tmp_path / "cache"
    mirror = GitRepo.open(f"file://{art.repo}", cache)
    assert mirror.work_tree is None
    store = ContentCache(cache)
    result = store.snapshot(art.hashes[V2], RemoteStore.open(mirror, absolute))
    assert tree(result.path) == art.files[V2]
    # Releases made with the relative remote now load from the registry's current remote.
    result = store.snapshot(art.hashes[V1], RemoteStore.open(mirror, art.commits[V1]))
    assert tree(result.path) == art.files[V1]


def test_mirror_uses_a_remote_from_the_global_dvc_config(
    released_artifact: ReleasedArtifact, tmp_path: Path, isolated_env: Path
):
    art, cache = released_artifact, tmp_path / "cache"
    global_config = isolated_env / ".config" / "dvc" / "config"
    global_config.parent.mkdir(parents=True)
    global_config.write_text(f"['remote \"lab\"']\n    url = {art.storage}\n")
    mirror = GitRepo.open(f"file://{art.repo}", cache)
    remote = RemoteStore.open(mirror, art.commits[V1], remote="lab")
    result = ContentCache(cache).snapshot(art.hashes[V1], remote)
    assert result.fetched_files == len(art.files[V1])
    assert remote.name == "lab" and remote.url == str(art.storage)


def test_listing_with_an_escaping_path_is_refused(
    released_artifact: ReleasedArtifact, tmp_path: Path
):
    art, cache = released_artifact, tmp_path / "cache"
    # A well-formed object on the remote (its md5 matches) whose listing points outside.
    listing = json.dumps([{"md5": md5(b"x"), "relpath": "../../escaped"}]).encode()
    bad = art.remote_object(md5(listing) + ".dir")
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(listing)
    store, remote = open_release(art, V1, cache)
    with pytest.raises(CorruptArtifactError, match=r"unsafe path '\.\./\.\./escaped'"):
        store.snapshot(md5(listing) + ".dir", remote)
    assert not (cache / "escaped").exists() and not (cache.parent / "escaped").exists()


def test_stamping_a_stamped_file_writes_nothing(tmp_path: Path) -> None:
    # A user's object may share its inode with a shared cache's file: re-verifying it must not
    # touch that file (not even its ctime).
    from registry.storage.cache import _is_stamped, _stamp
    from registry.storage.hashes import hash_file as _hash_file

    path = tmp_path / "object"
    path.write_bytes(b"released bytes")
    md5 = _hash_file(path)
    _stamp(path, md5)
    before = os.stat(path)
    assert _is_stamped(before, md5)
    time.sleep(0.02)
    _stamp(path, md5)
    after = os.stat(path)
    assert (after.st_mtime_ns, after.st_ctime_ns) == (before.st_mtime_ns, before.st_ctime_ns)
