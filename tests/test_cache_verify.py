"""Bit rot in the cache: metadata checked on every load, `cache verify`, `cache gc`, `.part` sweeps.

A "flip" changes one byte of a cached file in place and puts its mtime back, as a failing disk
or a stray write would: the cheap stat check cannot see it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import signal
from pathlib import Path

import pytest

import registry
from registry.errors import CorruptArtifactError, DiskFullError
from registry.storage.cache import CacheTarget, ContentCache, GcReport, is_metadata
from tests.conftest import ReleasedArtifact, ReleasedRegistry, cli_raises, flip
from tests.test_storage import V1, V2, md5, open_release, snapshot, stalled_download, tree

METADATA = ["dataset_info.json", "features.json", "metadata/labels.txt"]
SHARD = "digits-train.tfrecord-00007-of-00096"


def test_the_metadata_rule_leaves_out_shards_and_big_files() -> None:
    assert is_metadata("dataset_info.json", 300)
    assert is_metadata("image_classification/label.labels.txt")
    assert not is_metadata("digits-train.tfrecord-00000-of-00001", 10)
    assert not is_metadata("digits-train.array_record-00003-of-00010", 10)
    assert not is_metadata("vocab.txt", 2 << 20)


@pytest.mark.parametrize("relpath", METADATA)
def test_a_flipped_metadata_byte_is_caught_and_repaired_on_a_warm_load(
    released_artifact: ReleasedArtifact, tmp_path: Path, relpath: str
) -> None:
    art, cache = released_artifact, tmp_path / "cache"
    one = snapshot(art, V1, cache)
    flip(one.path / relpath)
    assert ContentCache(cache).cached(art.hashes[V1]) is None  # not served as it is
    again = snapshot(art, V1, cache)
    assert again.fetched_files == 1
    assert tree(again.path) == art.files[V1]
    assert ContentCache(cache).cached(art.hashes[V1]) is not None


def test_a_flipped_metadata_object_in_a_shared_cache_is_not_trusted(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, lab = released_artifact, tmp_path / "lab"
    shared = snapshot(art, V1, lab)
    flip(shared.path / "features.json")  # its stamp still looks valid
    mine = ContentCache(tmp_path / "mine", shared=[lab])
    assert mine.cached(art.hashes[V1]) is None  # the shared snapshot is not used as it is
    _, remote = open_release(art, V1, tmp_path / "mine")
    result = mine.snapshot(art.hashes[V1], remote)
    assert tree(result.path) == art.files[V1]
    assert result.fetched_files == 1  # features.json from the remote; the rest shared


def test_unrepairable_metadata_names_the_command_that_repairs_it(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, cache = released_artifact, tmp_path / "cache"
    one = snapshot(art, V1, cache)
    flip(one.path / "features.json")
    good = art.remote_object(md5(art.files[V1]["features.json"]))
    good.unlink()
    with pytest.raises(CorruptArtifactError) as caught:
        snapshot(art, V1, cache)
    message = str(caught.value)
    assert "'features.json'" in message and "registry cache verify" in message
    assert "\n" not in message


def test_a_flipped_shard_is_left_to_verify_and_repaired_by_it(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, cache = released_artifact, tmp_path / "cache"
    one = snapshot(art, V1, cache)
    flip(one.path / SHARD)
    # Shards are not re-hashed on a warm load (TFDS checks each record's CRC as it reads) ...
    assert ContentCache(cache).cached(art.hashes[V1]) is not None
    # ... a verification finds and repairs it.
    checked = snapshot(art, V1, cache, verify=True)
    assert checked.fetched_files == 1 and tree(checked.path) == art.files[V1]


# -- .part files of killed downloads -----------------------------------------------------------


def test_a_killed_downloads_part_is_swept_and_a_live_one_kept(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, cache, marker = released_artifact, tmp_path / "cache", tmp_path / "midway"
    proc = stalled_download(art, cache, marker)
    # The copy under way (from this local remote: in a tmp/snapshot-<key>-* folder under the
    # snapshot's lock; from a network remote: a .part file under the object's lock).
    parts = [p for p in (cache / "tmp").rglob("*") if p.is_file()]
    assert len(parts) == 1, list((cache / "tmp").iterdir())
    try:
        assert ContentCache(cache).sweep() == []  # its writer is alive: kept
        assert parts[0].exists()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    # Fresh debris (seconds old), yet no one holds its lock: swept at once, not after a day.
    swept = ContentCache(cache).sweep()
    assert any(parts[0].is_relative_to(path) for path, _ in swept), swept
    assert list((cache / "tmp").iterdir()) == []


def test_the_next_fetch_sweeps_a_killed_downloads_part(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, cache, marker = released_artifact, tmp_path / "cache", tmp_path / "midway"
    proc = stalled_download(art, cache, marker)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert any(p.is_file() for p in (cache / "tmp").rglob("*"))  # the killed copy's part
    result = snapshot(art, V2, cache)
    assert tree(result.path) == art.files[V2]
    assert list((cache / "tmp").iterdir()) == []


def test_a_killed_loaders_half_made_snapshot_goes_when_the_snapshot_is_made(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    """Found by the reliability campaign: a loader killed while assembling a snapshot left its
    staging folder, and the next loader, which holds that snapshot's lock while it assembles,
    could not tell it was abandoned; the loads after were warm and never swept."""
    art, cache = released_artifact, tmp_path / "cache"
    key = art.hashes[V1].removesuffix(".dir")
    staging = cache / "tmp" / f"snapshot-{key}-killed"
    staging.mkdir(parents=True)
    (staging / "half.bin").write_bytes(b"half")
    half_manifest = cache / "manifests" / f".{key}.json.x1y2.tmp"  # killed mid-write
    half_manifest.parent.mkdir()
    half_manifest.write_text("{")
    result = snapshot(art, V1, cache)
    assert tree(result.path) == art.files[V1]
    assert not staging.exists() and list((cache / "tmp").iterdir()) == []
    assert [p.name for p in (cache / "manifests").iterdir()] == [f"{key}.json"]


# -- loads of a real TFDS release --------------------------------------------------------------

NAME = "image_classification/digits"


def _remote_object(reg: ReleasedRegistry, data: bytes) -> Path:
    digest = md5(data)
    return reg.storage / "files" / "md5" / digest[:2] / digest[2:]


def _shard(folder: Path, split: str) -> Path:
    return sorted(folder.rglob(f"*-{split}.tfrecord-*"))[0]


@pytest.mark.slow
def test_flipped_tfds_metadata_loads_right_after_repair(
    released_registry: ReleasedRegistry, chdir
) -> None:
    import tensorflow_datasets as tfds

    chdir(released_registry.clone)
    path = registry.pull_dataset(NAME).path
    [features] = list(path.rglob("features.json"))
    good = features.read_bytes()
    flip(features, good.index(b"10"))  # num_classes 10 -> 00
    again = registry.pull_dataset(NAME)  # the warm path, without --verify
    assert again.fetched_files == 1 and features.read_bytes() == good
    info = tfds.builder_from_directory(str(again.path)).info
    assert info.features["label"].num_classes == 10


@pytest.mark.slow
def test_a_flipped_shard_is_repaired_by_a_pandas_load_and_explained_by_numpy(
    released_registry: ReleasedRegistry, chdir
) -> None:
    chdir(released_registry.clone)
    path = registry.pull_dataset(NAME).path
    shard = _shard(path, "test")
    flip(shard, 20)  # inside the first record's bytes: its CRC32C no longer matches
    frame = registry.load_dataset(NAME, split="test", output="pandas")
    assert len(frame) == 342
    flip(shard, 20)
    with pytest.raises(CorruptArtifactError, match="repaired from the remote: load the dataset"):
        list(registry.load_dataset(NAME, split="test", output="numpy"))
    assert len(list(registry.load_dataset(NAME, split="test", output="numpy"))) == 342
    # Whole arrays (read here, not lazily) come back as they are.
    arrays = registry.load_dataset(NAME, split="test", output="numpy", batch_size=-1)
    assert arrays["image"].shape == (342, 8, 8, 1)


@pytest.mark.slow
def test_an_unrepairable_shard_names_the_command_that_repairs_it(
    released_registry: ReleasedRegistry, chdir
) -> None:
    chdir(released_registry.clone)
    path = registry.pull_dataset(NAME).path
    shard = _shard(path, "test")
    _remote_object(released_registry, shard.read_bytes()).unlink()
    flip(shard, 20)
    with pytest.raises(CorruptArtifactError) as caught:
        registry.load_dataset(NAME, split="test", output="pandas")
    message = str(caught.value)
    assert "corrupted record" in message.lower() and "missing from DVC remote" in message
    assert f"'registry datasets pull {NAME}:1.0.0 --verify'" in message


@pytest.mark.slow
def test_cli_pull_with_unrepairable_metadata_is_a_corrupt_artifact_error(
    released_registry: ReleasedRegistry,
) -> None:
    path = registry.pull_dataset(NAME, registry=released_registry.clone).path
    info = path / "dataset_info.json"
    if not info.exists():
        [info] = list(path.rglob("dataset_info.json"))
    _remote_object(released_registry, info.read_bytes()).unlink()
    flip(info, 5)
    err = cli_raises(CorruptArtifactError, "datasets", "pull", NAME, cwd=released_registry.clone)
    assert "dataset_info.json" in str(err) and "registry cache verify" in str(err)


# -- ContentCache.verify and gc ----------------------------------------------------------------


def _target(art: ReleasedArtifact, version: str, cache: Path) -> CacheTarget:
    _, remote = open_release(art, version, cache)
    return CacheTarget(art.hashes[version], remote, f"digits:{version}")


def test_verify_finds_and_repairs_a_flipped_shard(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, cache = released_artifact, tmp_path / "cache"
    one = snapshot(art, V1, cache)
    flip(one.path / SHARD)
    report = ContentCache(cache).verify([_target(art, V1, cache), _target(art, V2, cache)])
    assert (report.checked, report.repaired, report.unrepairable) == (101, 1, [])
    assert tree(one.path) == art.files[V1]
    assert not (cache / "snapshots" / art.hashes[V2][:-4]).exists()  # not cached: not fetched


def test_verify_repairs_a_single_file_artifact_and_its_named_copy(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, cache = released_artifact, tmp_path / "cache"
    store, remote = open_release(art, V1, cache)
    good = art.files[V1]["features.json"]
    named = store.named_object(md5(good), "weights.json", remote)  # as a model's weights are
    flip(named)
    report = store.verify([CacheTarget(md5(good), remote, "model:1.0.0")])
    assert (report.checked, report.repaired, report.ok) == (1, 1, True)
    assert named.read_bytes() == good and store.object_path(md5(good)).read_bytes() == good


def test_verify_all_removes_a_corrupt_object_no_target_needs(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, cache = released_artifact, tmp_path / "cache"
    snapshot(art, V1, cache)
    two = snapshot(art, V2, cache)
    only_v2 = two.path / "digits-test.tfrecord-00000-of-00001"
    flip(only_v2)
    report = ContentCache(cache).verify([_target(art, V1, cache)], all_objects=True)
    assert report.removed == 1 and report.repaired == 0 and report.ok
    objects = [p for p in (cache / "objects").rglob("*") if p.is_file()]
    assert report.checked == len(objects) + 1 + 101  # every object (one gone now), then V1
    digest = md5(art.files[V2][only_v2.name])
    assert not (cache / "objects" / "md5" / digest[:2] / digest[2:]).exists()


def test_verify_reports_what_it_cannot_repair(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, cache = released_artifact, tmp_path / "cache"
    one = snapshot(art, V1, cache)
    flip(one.path / SHARD)
    art.remote_object(md5(art.files[V1][SHARD])).unlink()
    report = ContentCache(cache).verify([_target(art, V1, cache)])
    assert not report.ok and report.repaired == 0
    [line] = report.unrepairable
    assert line.startswith(f"digits:{V1}: ") and "missing from DVC remote" in line


def test_gc_frees_what_no_kept_artifact_uses(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, cache = released_artifact, tmp_path / "cache"
    snapshot(art, V1, cache)
    two = snapshot(art, V2, cache)
    (cache / "tmp").mkdir(exist_ok=True)
    (cache / "tmp" / f".object-{'0' * 32}-dead.x.part").write_bytes(b"x" * 100)
    only_v1 = {md5(d) for d in art.files[V1].values()} - {md5(d) for d in art.files[V2].values()}
    store = ContentCache(cache)
    planned = store.gc({art.hashes[V2]}, dry_run=True)
    assert (cache / "snapshots" / art.hashes[V1][:-4]).is_dir()  # a dry run removes nothing
    done = store.gc({art.hashes[V2]})
    # V1's snapshot, its listing and its own objects go; the shared ones and V2 stay.
    assert (done.snapshots, done.objects, done.leftovers) == (1, len(only_v1) + 1, 1)
    assert planned == dataclasses.replace(done, dry_run=True)
    v1_bytes = sum(len(d) for rel, d in art.files[V1].items() if md5(d) in only_v1)
    assert done.freed_bytes >= v1_bytes + 100
    assert not (cache / "snapshots" / art.hashes[V1][:-4]).exists()
    assert store.cached(art.hashes[V2]) is not None and tree(two.path) == art.files[V2]
    assert store.gc({art.hashes[V2]}) == GcReport()


def test_gc_keeps_what_another_process_holds(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, cache = released_artifact, tmp_path / "cache"
    snapshot(art, V1, cache)
    store = ContentCache(cache)
    with store._locked("snapshots", art.hashes[V1][:-4]):  # as a process assembling it would
        report = store.gc(set())
    assert report.held == 1 and report.snapshots == 0
    assert (cache / "snapshots" / art.hashes[V1][:-4]).is_dir()


# -- the CLI -----------------------------------------------------------------------------------


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from registry.cli import main

    with pytest.raises(SystemExit) as done:
        main([*args])
        raise SystemExit(0)
    return int(done.value.code or 0), capsys.readouterr().out


@pytest.mark.slow
def test_cli_cache_verify_repairs_and_gc_keeps_only_the_registrys_versions(
    released_registry: ReleasedRegistry,
    released_artifact: ReleasedArtifact,
    chdir,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from registry.config import load_settings

    chdir(released_registry.clone)
    path = registry.pull_dataset(NAME).path
    flip(_shard(path, "train"), 20)
    code, out = _run(capsys, "cache", "verify", "--json")
    report = json.loads(out)
    assert code == 0 and report["repaired"] == 1 and report["ok"]
    assert report["checked"] == registry.pull_dataset(NAME).files + 1
    # Another registry's version in the same cache: not this registry's, so gc removes it.
    cache = load_settings().cache_dir
    other = snapshot(released_artifact, V1, cache)
    code, out = _run(capsys, "cache", "gc", "--dry-run")
    assert code == 0 and out.startswith("would remove 1 snapshot(s)") and other.path.is_dir()
    code, out = _run(capsys, "cache", "gc")
    assert code == 0 and out.startswith("removed 1 snapshot(s)")
    assert not other.path.exists()
    again = registry.pull_dataset(NAME)
    assert again.fetched_files == 0 and again.path == path
    assert len(registry.load_dataset(NAME, split="test", output="pandas")) == 342


@pytest.mark.slow
def test_cli_cache_verify_exits_8_when_a_version_stays_corrupt(
    released_registry: ReleasedRegistry,
) -> None:
    path = registry.pull_dataset(NAME, registry=released_registry.clone).path
    shard = _shard(path, "train")
    _remote_object(released_registry, shard.read_bytes()).unlink()
    flip(shard, 20)
    err = cli_raises(CorruptArtifactError, "cache", "verify", cwd=released_registry.clone)
    message = str(err)
    assert f"{NAME}:1.0.0" in message and "missing from DVC remote" in message
    assert "'registry cache verify' again" in message


@pytest.mark.slow
def test_a_full_disk_during_a_pull_is_one_line_and_leaves_the_cache_intact(
    released_registry: ReleasedRegistry,
) -> None:
    """No room for a file of the pull (here a file size limit, which needs no root; the
    reliability campaign also fills a real tmpfs): DiskFullError, then a whole pull later."""
    clone = released_registry.clone
    biggest = max(p.stat().st_size for p in released_registry.storage.rglob("*") if p.is_file())
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (biggest // 2, hard))
    try:
        err = cli_raises(DiskFullError, "datasets", "pull", NAME, cwd=clone)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert str(err).startswith("no room left for the registry cache in ")
    assert "File too large" in str(err) and "registry cache gc" in str(err)
    assert registry.pull_dataset(NAME, registry=clone, verify=True).files > 0
    assert len(registry.load_dataset(NAME, split="test", output="pandas", registry=clone)) == 342
