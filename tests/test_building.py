"""Building datasets: Beam settings are validated, and a failed build fails cleanly.

The registries here are bare folders (``datasets/<name>/<leaf>_dataset_builder.py``) written by
the tests, with tiny builders; builds run Beam in memory, so each takes well under a second once
TensorFlow is imported.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from registry.build.beam import beam_flags
from registry.build.builders import load_builder_class
from registry.build.prepare import prepare_dataset
from registry.errors import BuildError, ConfigError, NotBuiltError

IN_MEMORY = {"runner": "DirectRunner", "direct_num_workers": 1, "direct_running_mode": "in_memory"}

# A tiny Beam builder; the markers are replaced per test.
BUILDER = """
import numpy as np
import tensorflow_datasets as tfds

#IMPORT-TIME#


def _keyed(i):
    return i, {"x": i}


def _explode(i):
    raise ValueError(f"bad row {i}")


class Builder(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")
    DEFAULT_PARAMS = {"n": 3}

    def __init__(self, *, params=None, **kwargs):
        self.params = {**self.DEFAULT_PARAMS, **(params or {})}
        #INIT#
        super().__init__(**kwargs)

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"x": np.int64})
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        beam = tfds.core.lazy_imports.apache_beam
        return beam.Create(range(self.params["n"])) | beam.Map(#MAP#)
"""


def builder_source(*, map_fn: str = "_keyed", init: str = "", import_time: str = "") -> str:
    source = BUILDER.replace("#MAP#", map_fn).replace("#INIT#", init)
    return source.replace("#IMPORT-TIME#", import_time)


@pytest.fixture
def write_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Return ``write(name, source, root=...)``: write a builder into a bare registry folder."""

    def write(name: str, source: str, root: Path | None = None) -> Path:
        root = root or tmp_path / "reg"
        leaf = name.rsplit("/", 1)[-1]
        folder = root / "datasets" / name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{leaf}_dataset_builder.py"
        path.write_text(source)
        return root

    return write


def prepared_splits(folder: Path) -> dict[str, int]:
    info = json.loads((folder / "dataset_info.json").read_text())
    return {s["name"]: sum(int(n) for n in s["shardLengths"]) for s in info["splits"]}


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text, f"not one line: {text!r}"
    return text


# -- beam_flags ----------------------------------------------------------------------------------


def test_direct_runner_defaults_to_two_processes() -> None:
    assert beam_flags({}) == [
        "--runner=DirectRunner",
        "--direct_num_workers=2",
        "--direct_running_mode=multi_processing",
    ]
    assert beam_flags(IN_MEMORY) == [
        "--runner=DirectRunner",
        "--direct_num_workers=1",
        "--direct_running_mode=in_memory",
    ]


def test_unknown_runner_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        beam_flags({"runner": "SparkRunner"})
    message = one_line(caught.value)
    assert "'SparkRunner'" in message and "beam.runner" in message
    assert all(r in message for r in ("DirectRunner", "DataflowRunner", "FlinkRunner"))
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("mode", ["multi_threading", "threads", 3])
def test_bad_running_mode_is_refused(mode: Any) -> None:
    with pytest.raises(ConfigError, match="direct_running_mode") as caught:
        beam_flags({"direct_running_mode": mode})
    assert "in_memory, multi_processing" in one_line(caught.value)


@pytest.mark.parametrize("workers", [0, -1, "2", 1.5, True, None])
def test_bad_worker_count_is_refused(workers: Any) -> None:
    with pytest.raises(ConfigError, match=r"direct_num_workers .* positive integer") as caught:
        beam_flags({"direct_num_workers": workers})
    assert repr(workers) in one_line(caught.value)


@pytest.mark.parametrize(
    ("dataflow", "missing"),
    [
        (None, ["project", "region", "temp_location"]),
        ({"project": "my-lab"}, ["region", "temp_location"]),
        ({"project": "my-lab", "region": "europe-west4", "temp_location": ""}, ["temp_location"]),
    ],
)
def test_dataflow_names_every_missing_option(
    dataflow: Mapping[str, Any] | None, missing: list[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        beam_flags({"runner": "DataflowRunner", "dataflow": dataflow})
    message = one_line(caught.value)
    assert message.startswith(f"DataflowRunner needs {', '.join(missing)}")
    for key in ("project", "region", "temp_location"):
        assert (f"beam.dataflow.{key}" in message) == (key in missing)
    assert "params.yaml" in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("temp_location", "/tmp/beam"),
        ("temp_location", "s3://lab/tmp"),
        ("staging_location", "lab/staging"),
    ],
)
def test_dataflow_locations_must_be_on_gcs(key: str, value: str) -> None:
    dataflow = {"project": "my-lab", "region": "europe-west4", "temp_location": "gs://lab/tmp"}
    with pytest.raises(ConfigError, match=f"beam.dataflow.{key} must be a gs:// path") as caught:
        beam_flags({"runner": "DataflowRunner", "dataflow": {**dataflow, key: value}})
    assert repr(value) in one_line(caught.value)


def test_runner_section_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match=r"beam.dataflow in params.yaml must be a mapping"):
        beam_flags({"runner": "DataflowRunner", "dataflow": "my-lab"})


def test_flink_needs_its_master() -> None:
    with pytest.raises(ConfigError) as caught:
        beam_flags({"runner": "FlinkRunner", "flink": {"flink_master": None, "parallelism": 4}})
    assert one_line(caught.value) == (
        "FlinkRunner needs flink_master: set beam.flink.flink_master in params.yaml"
    )
    assert beam_flags({"runner": "FlinkRunner", "flink": {"flink_master": "localhost:8081"}}) == [
        "--runner=FlinkRunner",
        "--flink_master=localhost:8081",
    ]


def test_valid_dataflow_config_gives_its_flags_only() -> None:
    beam = {
        "runner": "DataflowRunner",
        # Settings of the other runners are not passed on.
        "direct_num_workers": 2,
        "direct_running_mode": "multi_processing",
        "flink": {"flink_master": "localhost:8081"},
        "dataflow": {
            "project": "my-lab",
            "region": "europe-west4",
            "temp_location": "gs://lab-beam/tmp",
            "staging_location": "gs://lab-beam/staging",
            "machine_type": "n2-standard-4",
            "max_num_workers": 20,
            "service_account_email": None,  # null in params.yaml: left out
        },
    }
    assert beam_flags(beam) == [
        "--runner=DataflowRunner",
        "--project=my-lab",
        "--region=europe-west4",
        "--temp_location=gs://lab-beam/tmp",
        "--staging_location=gs://lab-beam/staging",
        "--machine_type=n2-standard-4",
        "--max_num_workers=20",
    ]


def test_project_params_yaml_beam_section_is_valid() -> None:
    import yaml

    params = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    assert beam_flags(params["beam"])[0] == "--runner=DirectRunner"


# -- prepare_dataset -----------------------------------------------------------------------------


def test_builds_and_replaces_the_prepared_folder(write_dataset: Callable[..., Path]) -> None:
    root = write_dataset("grp/tiny", builder_source())
    old = root / "datasets/grp/tiny/prepared"
    old.mkdir(parents=True)
    (old / "stale.txt").write_text("from the previous build")

    out = prepare_dataset(root, "grp/tiny", params={"n": 4}, beam=IN_MEMORY)

    assert out == old
    assert prepared_splits(out) == {"train": 4}
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(".")) == []


def test_failing_pipeline_is_a_one_line_build_error_and_keeps_the_old_data(
    write_dataset: Callable[..., Path],
) -> None:
    root = write_dataset("grp/boom", builder_source(map_fn="_explode"))
    old = root / "datasets/grp/boom/prepared"
    old.mkdir(parents=True)
    (old / "dataset_info.json").write_text('{"previous": true}')

    with pytest.raises(BuildError) as caught:
        prepare_dataset(root, "grp/boom", params={}, beam=IN_MEMORY)

    message = one_line(caught.value)
    assert message.startswith("building 'grp/boom' failed: ValueError: bad row ")
    assert "datasets/grp/boom/boom_dataset_builder.py" in message
    assert "'registry datasets build grp/boom'" in message
    assert isinstance(caught.value, RuntimeError) and caught.value.__cause__ is not None
    # The previous build is untouched and nothing is left beside it.
    assert [p.name for p in old.iterdir()] == ["dataset_info.json"]
    assert (old / "dataset_info.json").read_text() == '{"previous": true}'
    assert sorted(p.name for p in old.parent.iterdir()) == ["boom_dataset_builder.py", "prepared"]


def test_worker_process_failure_names_the_users_error(
    write_dataset: Callable[..., Path],
) -> None:
    # In multi_processing mode Beam reports a worker's traceback as one RuntimeError text.
    root = write_dataset("grp/boom_mp", builder_source(map_fn="_explode"))
    beam = {"direct_num_workers": 1, "direct_running_mode": "multi_processing"}

    with pytest.raises(BuildError) as caught:
        prepare_dataset(root, "grp/boom_mp", params={}, beam=beam)

    assert one_line(caught.value).startswith("building 'grp/boom_mp' failed: ValueError: bad row ")
    assert not (root / "datasets/grp/boom_mp/prepared").exists()


def test_written_examples_are_the_deterministic_encoding(
    write_dataset: Callable[..., Path],
) -> None:
    # Protobuf writes a tf.train.Example's feature map in a per-process hash order, so TFDS's
    # bytes differ between two builds; the registry's builds use the key-sorted encoding.
    features = {f"f{k}": "np.int64" for k in range(12)}
    source = builder_source().replace(
        '{"x": np.int64}', "{" + ", ".join(f'"{k}": {v}' for k, v in features.items()) + "}"
    )
    source = source.replace('return i, {"x": i}', f"return i, {{k: i for k in {list(features)}}}")
    root = write_dataset("grp/wide", source)

    out = prepare_dataset(root, "grp/wide", params={"n": 5}, beam=IN_MEMORY)

    import tensorflow as tf

    records = [
        r.numpy() for r in tf.data.TFRecordDataset(sorted(map(str, out.glob("*.tfrecord*"))))
    ]
    assert len(records) == 5
    for record in records:
        example = tf.train.Example.FromString(record)
        assert len(example.features.feature) == 12
        assert record == example.SerializeToString(deterministic=True)


def test_missing_builder_is_not_built_error(tmp_path: Path) -> None:
    (tmp_path / "datasets/grp/ghost").mkdir(parents=True)
    with pytest.raises(NotBuiltError) as caught:
        prepare_dataset(tmp_path, "grp/ghost", params={}, beam=IN_MEMORY)
    message = one_line(caught.value)
    assert "grp/ghost" in message and "ghost_dataset_builder.py" in message
    assert "registry datasets new grp/ghost" in message
    assert isinstance(caught.value, FileNotFoundError)
    assert not (tmp_path / "datasets/grp/ghost/prepared").exists()


@pytest.mark.parametrize(
    ("import_time", "error"),
    [
        (
            "raise RuntimeError('no credentials for the warehouse')",
            "RuntimeError: no credentials for the warehouse",
        ),
        (
            "import not_an_installed_module_xyz",
            "ModuleNotFoundError: No module named 'not_an_installed_module_xyz'",
        ),
        ("def broken(:", "SyntaxError: "),
    ],
)
def test_builder_that_fails_to_import_is_build_error(
    write_dataset: Callable[..., Path], import_time: str, error: str
) -> None:
    root = write_dataset("grp/unimportable", builder_source(import_time=import_time))
    with pytest.raises(BuildError) as caught:
        prepare_dataset(root, "grp/unimportable", params={}, beam=IN_MEMORY)
    message = one_line(caught.value)
    assert message.startswith("importing the builder of 'grp/unimportable'")
    assert error in message
    assert "unimportable_dataset_builder" not in sys.modules


def test_builder_without_builder_class_is_build_error(write_dataset: Callable[..., Path]) -> None:
    root = write_dataset("grp/noclass", "X = 1\n")
    with pytest.raises(BuildError, match="defines no class named 'Builder'"):
        prepare_dataset(root, "grp/noclass", params={}, beam=IN_MEMORY)


@pytest.mark.parametrize(
    ("init", "error"),
    [
        (
            "if self.params['n'] < 0: raise ValueError('n must be >= 0')",
            "ValueError: n must be >= 0",
        ),
        # A TypeError from the builder's own code is reported, not taken for "takes no params".
        ("self.limit = self.params['n'] + 'rows'", "TypeError: unsupported operand"),
    ],
)
def test_builder_rejecting_its_params_is_build_error(
    write_dataset: Callable[..., Path], init: str, error: str
) -> None:
    root = write_dataset("grp/picky", builder_source(init=init))
    with pytest.raises(BuildError) as caught:
        prepare_dataset(root, "grp/picky", params={"n": -1}, beam=IN_MEMORY)
    message = one_line(caught.value)
    assert message.startswith(f"building 'grp/picky' failed: {error}")


def test_builder_without_params_takes_none(write_dataset: Callable[..., Path]) -> None:
    # A plain TFDS builder (no `params` in its __init__) builds with its own defaults.
    source = builder_source().replace('self.params["n"]', "2")
    start = source.index("    def __init__")
    source = source[:start] + source[source.index("    def _info") :]
    root = write_dataset("grp/plain", source)

    with pytest.raises(BuildError, match=r"takes no params, but params\.yaml sets"):
        prepare_dataset(root, "grp/plain", params={"n": 5}, beam=IN_MEMORY)
    out = prepare_dataset(root, "grp/plain", params={}, beam=IN_MEMORY)
    assert prepared_splits(out) == {"train": 2}


def test_invalid_beam_settings_fail_before_building(write_dataset: Callable[..., Path]) -> None:
    root = write_dataset("grp/tiny", builder_source())
    with pytest.raises(ConfigError):
        prepare_dataset(root, "grp/tiny", params={}, beam={"runner": "DataflowRunner"})
    assert not (root / "datasets/grp").joinpath("tiny", "prepared").exists()
    assert [p.name for p in (root / "datasets/grp/tiny").iterdir()] == ["tiny_dataset_builder.py"]


def test_same_name_in_two_registries_loads_each_builder(
    tmp_path: Path, write_dataset: Callable[..., Path]
) -> None:
    first = write_dataset("grp/twin", builder_source(), root=tmp_path / "first")
    second = write_dataset(
        "grp/twin", builder_source().replace('{"n": 3}', '{"n": 5}'), root=tmp_path / "second"
    )

    assert prepared_splits(prepare_dataset(first, "grp/twin", params={}, beam=IN_MEMORY)) == {
        "train": 3
    }
    assert prepared_splits(prepare_dataset(second, "grp/twin", params={}, beam=IN_MEMORY)) == {
        "train": 5
    }
    assert load_builder_class(first, "grp/twin").DEFAULT_PARAMS == {"n": 3}


def test_edited_builder_is_loaded_again(write_dataset: Callable[..., Path]) -> None:
    root = write_dataset("grp/edited", builder_source())
    assert load_builder_class(root, "grp/edited").DEFAULT_PARAMS == {"n": 3}
    path = root / "datasets/grp/edited/edited_dataset_builder.py"
    path.write_text(builder_source().replace('{"n": 3}', '{"n": 7}'))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert load_builder_class(root, "grp/edited").DEFAULT_PARAMS == {"n": 7}
