"""Bit rot in the cache: metadata checked on every load, `cache verify`, `cache gc`, `.part` sweeps.

A "flip" changes one byte of a cached file in place and puts its mtime back, as a failing disk
or a stray write would: the cheap stat check cannot see it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

import registry
from registry.errors import CorruptArtifactError
from registry.storage.cache import ContentCache, is_metadata
from tests.conftest import ReleasedArtifact, ReleasedRegistry, cli_raises
from tests.test_storage import V1, V2, child, md5, snapshot, tree

METADATA = ["dataset_info.json", "features.json", "metadata/labels.txt"]
SHARD = "digits-train.tfrecord-00007-of-00096"


def flip(path: Path, offset: int = 0) -> None:
    """Flip one bit of ``path`` in place (same inode), keeping its mtime and mode."""
    st = path.stat()
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.chmod(path, st.st_mode)


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
    from tests.test_storage import open_release

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
    # A real download, stalled 1 MiB into the 3 MiB file.
    proc = child(art, V1, cache, jobs=1, hang_after=1 << 20, marker=str(marker))
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    parts = [p for p in (cache / "tmp").iterdir() if p.name.endswith(".part")]
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
    assert parts[0] in [path for path, _ in swept]
    assert list((cache / "tmp").iterdir()) == []


def test_the_next_fetch_sweeps_a_killed_downloads_part(
    released_artifact: ReleasedArtifact, tmp_path: Path
) -> None:
    art, cache, marker = released_artifact, tmp_path / "cache", tmp_path / "midway"
    proc = child(art, V1, cache, jobs=1, hang_after=1 << 20, marker=str(marker))
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert any(p.name.endswith(".part") for p in (cache / "tmp").iterdir())
    result = snapshot(art, V2, cache)
    assert tree(result.path) == art.files[V2]
    assert list((cache / "tmp").iterdir()) == []


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
