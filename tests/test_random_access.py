"""Random access: ``file_format: array_record`` builds, loaded as TFDS's data source.

Real Beam builds of the digits example (in-process Beam), a real DVC release, and the data
source read with a plain index loop, as PyTorch's ``DataLoader`` or Grain would index it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

import registry
from registry.build.dvcfiles import builder_params, file_format
from registry.build.prepare import prepare_dataset
from registry.datasets import load_prepared
from registry.errors import ConfigError
from tests.conftest import (
    PROJECT_ROOT,
    ReleasedRegistry,
    build_released_registry,
    cli_raises,
    flip,
)

NAME = "image_classification/digits"
BEAM = {"runner": "DirectRunner", "direct_num_workers": 1, "direct_running_mode": "in_memory"}


def test_file_format_is_the_registrys_knob_not_the_builders() -> None:
    params = {"file_format": "array_record", "seed": 0, "warehouse": {"table": "t"}}
    assert builder_params(params) == {"seed": 0}
    assert file_format(NAME, params) == "array_record"
    assert file_format(NAME, {"file_format": "tfrecord"}) == "tfrecord"
    assert file_format(NAME, {}) is None


def test_an_unknown_file_format_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        file_format(NAME, {"file_format": "riegeli"})
    assert str(caught.value) == (
        f"datasets.{NAME}.file_format in params.yaml must be tfrecord or array_record, "
        "not 'riegeli'"
    )


def test_the_prepare_command_refuses_an_unknown_file_format(
    make_registry: Callable[..., Path],
) -> None:
    repo = make_registry(datasets=[NAME])
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["datasets"][NAME] = {"file_format": "parquet"}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    error = cli_raises(ConfigError, "datasets", "prepare", NAME, cwd=repo)
    assert "file_format in params.yaml must be tfrecord or array_record, not 'parquet'" in str(
        error
    )
    assert not (repo / "datasets" / NAME / "prepared").exists()


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Digits built three times from this project's builder: twice as ArrayRecord, once as
    TFRecord (the default)."""
    base = tmp_path_factory.mktemp("random-access")
    out = {}
    for label, params in (
        ("array_record", {"file_format": "array_record"}),
        ("array_record_again", {"file_format": "array_record"}),
        ("tfrecord", {}),
    ):
        out[label] = prepare_dataset(
            PROJECT_ROOT, NAME, params=params, beam=BEAM, output=base / label
        )
    return out


def _shards(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if "-of-" in p.name}


@pytest.mark.slow
def test_array_record_builds_are_byte_reproducible(builds: dict[str, Path]) -> None:
    first, second = _shards(builds["array_record"]), _shards(builds["array_record_again"])
    assert sorted(first) == [
        "digits-test.array_record-00000-of-00001",
        "digits-train.array_record-00000-of-00001",
    ]
    assert first == second
    info = (builds["array_record"] / "dataset_info.json").read_text()
    assert info == (builds["array_record_again"] / "dataset_info.json").read_text()
    assert '"fileFormat": "array_record"' in info


@pytest.mark.slow
def test_data_source_reads_every_example_by_index(builds: dict[str, Path]) -> None:
    source = load_prepared(builds["array_record"], "test", output="data_source")
    assert len(source) == 342
    # The same examples, in the same order, as the TFRecord build's tf.data reads.
    expected = list(load_prepared(builds["tfrecord"], "test", output="numpy"))
    for i in range(len(source)):
        example = source[i]
        assert int(example["label"]) == int(expected[i]["label"])
        np.testing.assert_array_equal(example["image"], expected[i]["image"])
    # Random access: any order, any index, a batch of indices at once.
    picked = [source[i]["label"] for i in (341, 0, 170)]
    assert picked == [expected[i]["label"] for i in (341, 0, 170)]
    assert [e["label"] for e in source.__getitems__([5, 3])] == [
        expected[5]["label"],
        expected[3]["label"],
    ]
    every = load_prepared(builds["array_record"], output="data_source")
    assert {split: len(s) for split, s in every.items()} == {"train": 1455, "test": 342}


@pytest.mark.slow
def test_the_data_source_pickles_for_worker_processes(builds: dict[str, Path]) -> None:
    import pickle

    source = load_prepared(builds["array_record"], "train", output="data_source")
    copy = pickle.loads(pickle.dumps(source))
    assert len(copy) == len(source) == 1455
    for i in (0, 727, 1454):
        assert int(copy[i]["label"]) == int(source[i]["label"])
        np.testing.assert_array_equal(copy[i]["image"], source[i]["image"])
    # One index and a batch of indices read the same records.
    batch = copy.__getitems__([1454, 0])
    assert [int(e["label"]) for e in batch] == [int(source[1454]["label"]), int(source[0]["label"])]
    with pytest.raises(ValueError, match="Record key should be in"):
        source[1455]


@pytest.mark.slow
def test_grain_loads_the_data_source_shuffled_and_batched(builds: dict[str, Path]) -> None:
    grain = pytest.importorskip("grain")
    source = load_prepared(builds["array_record"], "test", output="data_source")
    loader = grain.load(source, num_epochs=1, shuffle=True, seed=0, batch_size=100)
    batches = list(loader)
    assert [len(b["label"]) for b in batches] == [100, 100, 100, 42]
    assert batches[0]["image"].shape == (100, 8, 8, 1)
    labels = np.concatenate([b["label"] for b in batches])
    in_order = np.array([source[i]["label"] for i in range(len(source))])
    # Every example once, shuffled.
    assert sorted(labels.tolist()) == sorted(in_order.tolist())
    assert labels.tolist() != in_order.tolist()


@pytest.mark.slow
def test_data_source_of_a_tfrecord_build_says_to_set_the_format(
    builds: dict[str, Path],
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_prepared(builds["tfrecord"], "train", output="data_source")
    assert str(caught.value) == (
        "output='data_source' needs random access, but this build's shards are tfrecord: set "
        "`file_format: array_record` in the dataset's entry of params.yaml (datasets.NAME), "
        "rebuild ('registry datasets build NAME') and release it"
    )


@pytest.mark.slow
@pytest.mark.parametrize("split", ["test", "train[100:150]", "test[:50%]+test[-10:]"])
def test_an_array_record_build_reads_in_order_as_the_tfrecord_build_does(
    builds: dict[str, Path], split: str
) -> None:
    # Through tf.data (registry.storage.array_records.enable_tf_data), with TFDS's own slicing.
    got = list(load_prepared(builds["array_record"], split, output="numpy"))
    expected = list(load_prepared(builds["tfrecord"], split, output="numpy"))
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected, strict=True):
        assert int(a["label"]) == int(b["label"])
        np.testing.assert_array_equal(a["image"], b["image"])


@pytest.mark.slow
def test_an_array_record_build_takes_tfdss_as_dataset_options(builds: dict[str, Path]) -> None:
    import tensorflow as tf

    batches = load_prepared(
        builds["array_record"], "test", output="tf", as_supervised=True, batch_size=100
    )
    assert isinstance(batches, tf.data.Dataset)
    sizes = [(int(x.shape[0]), tuple(x.shape[1:]), int(y.shape[0])) for x, y in batches]
    assert sizes == [(100, (8, 8, 1), 100)] * 3 + [(42, (8, 8, 1), 42)]
    frame = load_prepared(builds["array_record"], "test", output="pandas")
    expected = load_prepared(builds["tfrecord"], "test", output="pandas")
    assert frame["label"].tolist() == expected["label"].tolist()
    every = load_prepared(builds["array_record"], output="numpy")
    assert {split: sum(1 for _ in d) for split, d in every.items()} == {"train": 1455, "test": 342}


def _flip_early(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[1024] ^= 0xFF
    path.write_bytes(bytes(data))


def _copied_shard(builds: dict[str, Path], tmp_path: Path, split: str) -> Path:
    """A split's shard in a copy of the ArrayRecord build, to damage."""
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(builds["array_record"], damaged)
    return damaged / f"digits-{split}.array_record-00000-of-00001"


@pytest.mark.slow
def test_a_damaged_array_record_shard_read_through_tf_data_says_so(
    builds: dict[str, Path], tmp_path: Path
) -> None:
    import tensorflow as tf

    from registry.storage.array_records import CORRUPT, is_corrupt_read

    shard = _copied_shard(builds, tmp_path, "train")
    damaged = shard.parent
    _flip_early(shard)
    with pytest.raises(tf.errors.OpError) as caught:
        list(load_prepared(damaged, "train", output="numpy"))
    assert is_corrupt_read(caught.value)
    assert f"{CORRUPT}: {shard}" in str(caught.value)
    shard.write_bytes(shard.read_bytes()[:100])  # truncated
    with pytest.raises(tf.errors.OpError) as caught:
        list(load_prepared(damaged, "train", output="numpy"))
    assert f"{shard} is truncated or not an ArrayRecord file" in str(caught.value)


def test_an_unknown_output_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        registry.load_dataset(NAME, output="torch")  # type: ignore[arg-type]
    assert str(caught.value) == (
        "output must be 'tf', 'numpy', 'pandas' or 'data_source', not 'torch'"
    )


@pytest.fixture(scope="module")
def array_record_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry clone (``<it>/../clone``) whose digits 1.0.0 was built as ArrayRecord through
    DVC and released by the real CLI; its bare ``origin``, returned, and a local DVC remote."""
    base = tmp_path_factory.mktemp("array-record-release")
    return build_released_registry(base, knobs={"file_format": "array_record"}).origin


@pytest.mark.slow
def test_a_released_array_record_version_loads_as_a_data_source(
    array_record_release: Path, tmp_path: Path, chdir: Callable[[Path], None], monkeypatch
) -> None:
    chdir(tmp_path)
    monkeypatch.setenv("REGISTRY_URL", f"file://{array_record_release}")
    source = registry.load_dataset(f"{NAME}:1.0.0", split="train", output="data_source")
    assert len(source) == 1455
    labels = [int(source[i]["label"]) for i in range(len(source))]
    assert set(labels) == set(range(10))
    assert source[1454]["image"].shape == (8, 8, 1)


@pytest.mark.slow
def test_a_released_tfrecord_version_says_to_set_the_format(
    released_registry: ReleasedRegistry, chdir: Callable[[Path], None]
) -> None:
    chdir(released_registry.clone)
    with pytest.raises(ConfigError) as caught:
        registry.load_dataset(NAME, split="train", output="data_source")
    assert "set `file_format: array_record`" in str(caught.value)


def _damage_in_place(shard: Path) -> None:
    """Flip a run of bits near the start of ``shard`` (in the first records' chunks: the file's
    index of them comes last), keeping its size and mtime: damage that only reading finds."""
    for offset in range(1024, 1024 + 512):
        flip(shard, offset)


@pytest.mark.slow
def test_a_damaged_cached_array_record_shard_is_repaired_by_a_load(
    array_record_release: Path, tmp_path: Path, chdir: Callable[[Path], None], monkeypatch
) -> None:
    from registry.errors import CorruptArtifactError

    chdir(tmp_path)
    monkeypatch.setenv("REGISTRY_URL", f"file://{array_record_release}")
    path = registry.pull_dataset(f"{NAME}:1.0.0").path
    [shard] = path.rglob("digits-test.array_record-*")
    good = shard.read_bytes()
    _damage_in_place(shard)
    frame = registry.load_dataset(f"{NAME}:1.0.0", split="test", output="pandas")
    assert len(frame) == 342 and shard.read_bytes() == good
    _damage_in_place(shard)
    with pytest.raises(CorruptArtifactError) as caught:
        list(registry.load_dataset(f"{NAME}:1.0.0", split="test", output="numpy"))
    assert str(caught.value).startswith(
        f"a corrupt cached shard stopped this iteration (corrupted ArrayRecord shard: {shard}: "
    )
    assert str(caught.value).endswith("it was repaired from the remote: load the dataset again")
    assert shard.read_bytes() == good
    assert len(list(registry.load_dataset(f"{NAME}:1.0.0", split="test", output="numpy"))) == 342


@pytest.mark.slow
def test_diff_reads_array_record_shards(builds: dict[str, Path]) -> None:
    from registry.build.compare import Side, compare

    diff = compare(
        Side("tfrecord", builds["tfrecord"]), Side("array_record", builds["array_record"])
    )
    assert diff.features == [] and diff.examples == []
    counts = {s.split: (s.added, s.removed, s.changed, s.unchanged) for s in diff.splits}
    assert counts == {"test": (0, 0, 0, 342), "train": (0, 0, 0, 1455)}
    # Neither folder has a build_info.json: the statistics are computed from both formats.
    assert not any("failed" in note for note in diff.notes), diff.notes
    assert diff.statistics and all(s.shift == 0 and s.before == s.after for s in diff.statistics)


@pytest.mark.slow
def test_statistics_of_an_array_record_build_equal_the_tfrecord_builds(
    builds: dict[str, Path],
) -> None:
    from registry.build.stats import statistics_of_prepared

    assert statistics_of_prepared(str(builds["array_record"])) == statistics_of_prepared(
        str(builds["tfrecord"])
    )


@pytest.mark.slow
def test_diff_of_a_damaged_array_record_shard_says_how_to_repair(
    builds: dict[str, Path], tmp_path: Path
) -> None:
    from registry.build.compare import Side, compare
    from registry.errors import CorruptArtifactError

    shard = _copied_shard(builds, tmp_path, "test")
    damaged = shard.parent
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(CorruptArtifactError) as caught:
        compare(Side("tfrecord", builds["tfrecord"]), Side("damaged", damaged))
    assert f"{shard} is truncated or not an ArrayRecord file" in str(caught.value)


@pytest.mark.slow
def test_a_released_array_record_version_rebuilds_byte_for_byte(
    array_record_release: Path, chdir: Callable[[Path], None], tmp_path: Path
) -> None:
    chdir(array_record_release.parent / "clone")
    result = registry.rebuild_dataset(f"{NAME}:1.0.0", output=tmp_path / "rebuilt")
    assert result.equal is True and result.differences == []
    assert sorted(p.name for p in (tmp_path / "rebuilt").glob("*-of-*")) == [
        "digits-test.array_record-00000-of-00001",
        "digits-train.array_record-00000-of-00001",
    ]
