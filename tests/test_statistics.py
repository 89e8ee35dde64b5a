"""Build statistics: computed by the build's own pipeline, written into build_info.json, shown by
``registry datasets info``.

Builds here are real TFDS builds on Beam (in memory, and with 2 worker processes), of tiny
builders written into bare registry folders; the numbers are checked against NumPy over what
``tfds.builder_from_directory`` reads back.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.build.prepare import check_split_counts, prepare_dataset
from registry.build.stats import SplitStatistics, statistics_of_prepared
from registry.errors import BuildError, ConfigError
from tests.conftest import ReleasedRegistry, commit_all

pytestmark = pytest.mark.slow

IN_MEMORY = {"runner": "DirectRunner", "direct_num_workers": 1, "direct_running_mode": "in_memory"}
TWO_PROCESSES = {
    "runner": "DirectRunner",
    "direct_num_workers": 2,
    "direct_running_mode": "multi_processing",
}

# A builder with every kind of feature, some values missing. BEAM: its splits are Beam
# PCollections; otherwise plain generators (statistics accumulated in-process).
BUILDER = '''
import math
import numpy as np
import tensorflow_datasets as tfds

BEAM = #BEAM#


def _example(i):
    rng = np.random.default_rng(i)
    return str(i), {
        "price": float("nan") if i % 17 == 0 else float(rng.lognormal(0.0, 0.7)),
        "count": int(i % 23) - 5,
        "label": ("cat", "dog", "eel")[i % 3] if i % 2 else i % 3,
        "flag": bool(i % 5 == 0),
        "title": "" if i % 11 == 0 else "é" * (i % 7) + "title %d" % i,
        "image": rng.integers(0, 256, (4, 3, 1), dtype=np.uint8),
        "vector": rng.normal(size=(2, 2)).astype(np.float32),
        "tags": ["a"] * (i % 3),
        "meta": {"score": float(i) / 7.0, "source": "src%d" % (i % 4)},
    }


def _in_split(keyed, split):
    return (int(keyed[0]) % 4 == 0) == (split == "test")


class Builder(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")

    def __init__(self, *, params=None, **kwargs):
        self.params = {"n": 200, **(params or {})}
        super().__init__(**kwargs)

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "price": np.float32,
                "count": np.int64,
                "label": tfds.features.ClassLabel(names=["cat", "dog", "eel"]),
                "flag": np.bool_,
                "title": tfds.features.Text(),
                "image": tfds.features.Image(shape=(4, 3, 1)),
                "vector": tfds.features.Tensor(shape=(2, 2), dtype=np.float32),
                "tags": tfds.features.Sequence(tfds.features.Text()),
                "meta": {"score": np.float64, "source": tfds.features.Text()},
            })
        )

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(split) for split in ("train", "test")}

    def _generate_examples(self, split):
        n = self.params["n"]
        if not BEAM:
            return (_example(i) for i in range(n) if _in_split(_example(i), split))
        beam = tfds.core.lazy_imports.apache_beam
        return (
            beam.Create(range(n))
            | beam.Map(_example)
            | beam.Filter(_in_split, split)
        )
'''


@pytest.fixture
def write_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Return ``write(name, beam=True)``: the builder above in a bare registry folder."""

    def write(name: str, beam: bool = True, root: Path | None = None) -> Path:
        root = root or tmp_path / "reg"
        folder = root / "datasets" / name
        folder.mkdir(parents=True, exist_ok=True)
        source = BUILDER.replace("#BEAM#", repr(beam))
        (folder / f"{name.rsplit('/', 1)[-1]}_dataset_builder.py").write_text(source)
        return root

    return write


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run ``registry ARGS`` in this process; return what it printed (it must succeed)."""
    from registry.cli import main

    with pytest.raises(SystemExit) as done:
        main([*args])
        raise SystemExit(0)
    assert not done.value.code, capsys.readouterr().err
    return capsys.readouterr().out


def build_info(root: Path, name: str) -> dict[str, Any]:
    return json.loads((root / "datasets" / name / "build_info.json").read_text())


def numpy_statistics(folder: Path) -> dict[str, dict[str, Any]]:
    """Each split's statistics computed directly with NumPy from the decoded examples."""
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(str(folder))
    result: dict[str, dict[str, Any]] = {}
    for split in builder.info.splits:
        rows = list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
        price = np.array([r["price"] for r in rows], dtype=np.float32).astype(np.float64)
        present = price[~np.isnan(price)]
        titles = [r["title"].decode("utf-8") for r in rows]
        lengths = np.array([len(t) for t in titles if t])
        images = np.stack([r["image"] for r in rows])
        vector = np.stack([r["vector"] for r in rows]).astype(np.float64).ravel()
        counts = np.array([r["count"] for r in rows])
        result[split] = {
            "num_examples": len(rows),
            "price": (len(rows), len(rows) - len(present), present.mean(), present.std(),
                      present.min(), present.max()),
            "count": (counts.mean(), counts.std(), counts.min(), counts.max()),
            "label": {name: int(sum(r["label"] == i for r in rows))
                      for i, name in enumerate(["cat", "dog", "eel"])},
            "flag": {"false": int(sum(not r["flag"] for r in rows)),
                     "true": int(sum(bool(r["flag"]) for r in rows))},
            "title": (len(rows) - len(lengths), lengths.mean(), lengths.std(), lengths.min(),
                      lengths.max()),
            "image": (images.shape[0], images.astype(np.float64).mean()),
            "vector": (vector.size, vector.mean(), vector.std()),
            "meta/score": np.array([r["meta"]["score"] for r in rows]).mean(),
        }
    return result


def close(value: float | None, expected: float) -> bool:
    return value is not None and math.isclose(value, float(expected), rel_tol=1e-5, abs_tol=1e-6)


def test_a_builds_statistics_match_numpy_over_what_it_wrote(
    write_dataset: Callable[..., Path],
) -> None:
    root = write_dataset("grp/kinds")

    out = prepare_dataset(root, "grp/kinds", params={}, beam=IN_MEMORY)

    info = build_info(root, "grp/kinds")
    stats = info["statistics"]
    assert stats["schema"] == 1 and sorted(stats["splits"]) == ["test", "train"]
    assert info["features"]["label"]["names"] == ["cat", "dog", "eel"]
    expected = numpy_statistics(out)
    for split, want in expected.items():
        got = stats["splits"][split]
        features = got["features"]
        assert got["num_examples"] == want["num_examples"] == info["splits"][split]["num_examples"]
        assert sorted(features) == [
            "count", "flag", "image", "label", "meta/score", "meta/source", "price", "tags",
            "title", "vector",
        ]
        price = features["price"]
        assert price["kind"] == "numeric"
        assert (price["count"], price["missing"]) == want["price"][:2]
        for key, value in zip(("mean", "std", "min", "max"), want["price"][2:], strict=True):
            assert close(price[key], value), (split, key, price[key], value)
        count = features["count"]
        assert isinstance(count["min"], int) and isinstance(count["max"], int)
        for key, value in zip(("mean", "std", "min", "max"), want["count"], strict=True):
            assert close(count[key], value)
        assert features["label"] == {
            "kind": "categorical", "count": want["num_examples"], "missing": 0,
            "classes": want["label"],
        }
        assert features["flag"]["classes"] == want["flag"]
        title = features["title"]
        assert title["kind"] == "text" and title["missing"] == want["title"][0]
        for key, value in zip(("mean", "std", "min", "max"), want["title"][1:], strict=True):
            assert close(title["length"][key], value)
        assert features["image"]["shapes"] == {"4x3x1": want["image"][0]}
        assert close(features["image"]["mean_pixel"], want["image"][1])
        vector = features["vector"]
        assert vector["count"] == want["vector"][0]
        assert close(vector["mean"], want["vector"][1]) and close(vector["std"], want["vector"][2])
        assert close(features["meta/score"]["mean"], want["meta/score"])
        assert features["tags"] == {"kind": "other", "count": want["num_examples"], "missing": 0}
    # The raw examples the pipeline saw and the decoded ones read back agree exactly.
    assert statistics_of_prepared(str(out)) == stats


def test_two_worker_processes_write_the_same_build_info_as_in_memory(
    write_dataset: Callable[..., Path],
) -> None:
    # Beam splits the work differently in each mode; the statistics merge to the same numbers.
    root = write_dataset("grp/modes")
    prepare_dataset(root, "grp/modes", params={"n": 3000}, beam=IN_MEMORY)
    in_memory = (root / "datasets/grp/modes/build_info.json").read_bytes()

    prepare_dataset(root, "grp/modes", params={"n": 3000}, beam=TWO_PROCESSES)

    assert (root / "datasets/grp/modes/build_info.json").read_bytes() == in_memory
    assert json.loads(in_memory)["statistics"]["splits"]["train"]["num_examples"] == 2250


def test_build_info_is_byte_reproducible_and_a_generator_builder_gets_statistics(
    write_dataset: Callable[..., Path],
) -> None:
    # A builder whose splits are plain generators: accumulated in-process, same numbers as Beam.
    root = write_dataset("grp/plain", beam=False)
    prepare_dataset(root, "grp/plain", params={}, beam=IN_MEMORY)
    first = (root / "datasets/grp/plain/build_info.json").read_bytes()
    prepare_dataset(root, "grp/plain", params={}, beam=IN_MEMORY)
    assert (root / "datasets/grp/plain/build_info.json").read_bytes() == first

    beam_root = write_dataset("grp/plain", beam=True, root=root.parent / "beam-reg")
    prepare_dataset(beam_root, "grp/plain", params={}, beam=IN_MEMORY)
    assert json.loads(first)["statistics"] == build_info(beam_root, "grp/plain")["statistics"]


def test_statistics_switched_off_leave_them_out(
    write_dataset: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_dataset("grp/off")
    monkeypatch.setenv("REGISTRY_BUILD_STATISTICS", "0")

    prepare_dataset(root, "grp/off", params={"n": 20}, beam=IN_MEMORY)

    assert "statistics" not in build_info(root, "grp/off")


def test_a_bad_statistics_switch_is_a_config_error_before_building(
    write_dataset: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_dataset("grp/bad")
    monkeypatch.setenv("REGISTRY_BUILD_STATISTICS", "maybe")

    with pytest.raises(ConfigError) as caught:
        prepare_dataset(root, "grp/bad", params={"n": 20}, beam=IN_MEMORY)

    message = str(caught.value)
    assert "\n" not in message and "REGISTRY_BUILD_STATISTICS" in message and "'maybe'" in message
    assert not (root / "datasets/grp/bad/prepared").exists()


# -- merging -------------------------------------------------------------------------------------

SPECS = [
    ("f", "numeric", ("f",), None, "float64"),
    ("i", "numeric", ("i",), None, "int64"),
    ("c", "categorical", ("c",), ("a", "b", "c"), None),
    ("t", "text", ("t",), None, None),
    ("im", "image", ("im",), None, None),
]


def _examples(values: list[tuple[float, int, int, str]]) -> list[dict[str, Any]]:
    return [
        {"f": f, "i": i, "c": "abc"[c], "t": t, "im": np.full((2, 2, 1), i % 256, np.uint8)}
        for f, i, c, t in values
    ]


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.tuples(
            st.floats(-1e6, 1e6) | st.just(float("nan")),
            st.integers(-(2**40), 2**40),
            st.integers(0, 2),
            st.text(max_size=8),
        ),
        min_size=1,
        max_size=300,
    ),
    cuts=st.lists(st.integers(0, 300), max_size=6),
    seed=st.integers(0, 2**16),
)
def test_merging_in_any_order_gives_the_same_statistics(
    values: list[tuple[float, int, int, str]], cuts: list[int], seed: int
) -> None:
    examples = _examples(values)
    whole = SplitStatistics(SPECS)
    whole.add_all(examples)

    bounds = sorted({0, len(examples), *(c % (len(examples) + 1) for c in cuts)})
    parts = []
    for start, stop in itertools.pairwise(bounds):
        part = SplitStatistics(SPECS)
        part.add_all(examples[start:stop])
        # As Beam sends it between workers: its plain-data state.
        parts.append(SplitStatistics.from_state(SPECS, part.state()))
    random.Random(seed).shuffle(parts)
    merged = SplitStatistics(SPECS)
    for part in parts:
        merged.merge(part)

    assert merged.to_dict() == whole.to_dict()
    assert merged.to_dict()["num_examples"] == len(examples)


def test_missing_values_are_counted_and_left_out_of_the_numbers() -> None:
    stats = SplitStatistics(SPECS)
    stats.add_all(
        [
            {"f": float("nan"), "i": 1, "c": "z", "t": "", "im": np.zeros((0, 0, 1), np.uint8)},
            {"f": 2.0, "i": 3, "c": 7, "t": "ab", "im": np.full((1, 2, 1), 10, np.uint8)},
            {"f": 4.0},  # the other features absent
        ]
    )

    features = stats.to_dict()["features"]

    assert features["f"] == {
        "kind": "numeric", "count": 3, "missing": 1, "mean": 3.0, "std": 1.0, "min": 2.0,
        "max": 4.0,
    }
    assert features["i"]["missing"] == 1 and features["i"]["mean"] == 2.0
    assert features["c"] == {"kind": "categorical", "count": 3, "missing": 3, "classes": {}}
    assert features["t"]["missing"] == 2 and features["t"]["length"]["mean"] == 2.0
    assert features["im"]["missing"] == 2 and features["im"]["shapes"] == {"1x2x1": 1}
    assert features["im"]["mean_pixel"] == 10.0


# -- registry datasets info ------------------------------------------------------------------------


def test_info_shows_the_statistics_and_json_has_them(
    make_registry: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    name = "image_classification/digits"
    repo = make_registry(datasets=[name])
    stats = {
        "schema": 1,
        "splits": {
            "train": {
                "num_examples": 1000,
                "features": {
                    "label": {"kind": "categorical", "count": 1000, "missing": 0,
                              "classes": {"cat": 480, "dog": 520}},
                    "price": {"kind": "numeric", "count": 1000, "missing": 3, "mean": 1.5,
                              "std": 0.2, "min": 0.1, "max": 9.0},
                    "title": {"kind": "text", "count": 1000, "missing": 0,
                              "length": {"mean": 12.1, "std": 3.0, "min": 1, "max": 40}},
                    "image": {"kind": "image", "count": 1000, "missing": 0,
                              "shapes": {"8x8x1": 1000}, "mean_pixel": 7.3},
                },
            }
        },
    }
    path = repo / "datasets" / name / "build_info.json"
    info = json.loads(path.read_text())
    path.write_text(json.dumps({**info, "statistics": stats}))
    commit_all(repo, "Statistics")

    text = run_cli(capsys, "datasets", "info", name, "--registry", str(repo))
    data = json.loads(run_cli(capsys, "datasets", "info", name, "--registry", str(repo), "--json"))

    lines = [line.split() for line in text.splitlines()]
    assert ["statistics:"] in lines
    assert ["train", "(1,000", "examples)"] in lines
    assert ["label", "categorical", "dog", "52%", "cat", "48%"] in lines
    assert ["price", "numeric", "1.5", "±", "0.2", "[0.1,", "9]", "3", "missing"] in lines
    assert ["title", "text", "length", "12.1", "±", "3", "[1,", "40]"] in lines
    assert ["image", "image", "8x8x1", "100%", "mean", "pixel", "7.3"] in lines
    assert data["statistics"] == stats


def test_info_of_a_version_built_before_statistics_says_so(
    make_registry: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    name = "image_classification/digits"
    repo = make_registry(datasets=[name])
    path = repo / "datasets" / name / "build_info.json"
    info = json.loads(path.read_text())
    info.pop("statistics", None)
    path.write_text(json.dumps(info))
    commit_all(repo, "An old build_info.json")

    text = run_cli(capsys, "datasets", "info", name, "--registry", str(repo))
    data = json.loads(run_cli(capsys, "datasets", "info", name, "--registry", str(repo), "--json"))

    assert "statistics: not recorded (built before build statistics)" in text
    assert "splits:" in text  # the rest of the description is there
    assert data["statistics"] is None


def test_info_of_a_released_version_reads_its_tagged_statistics(
    released_registry: ReleasedRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = "image_classification/digits:1.0.0"
    clone = str(released_registry.clone)
    data = json.loads(run_cli(capsys, "datasets", "info", ref, "--registry", clone, "--json"))

    train = data["statistics"]["splits"]["train"]
    assert train["num_examples"] == data["build"]["splits"]["train"]["num_examples"]
    assert train["features"]["image"]["shapes"] == {"8x8x1": train["num_examples"]}
    assert sum(train["features"]["label"]["classes"].values()) == train["num_examples"]


def test_a_build_whose_shards_hold_other_counts_than_its_pipeline_is_refused() -> None:
    stats = {"splits": {"train": {"num_examples": 1_000}, "test": {"num_examples": 200}}}
    check_split_counts("a/b", stats, {"train": 1_000, "test": 200})
    check_split_counts("a/b", None, {"train": 7})  # statistics off: nothing to compare
    with pytest.raises(BuildError) as err:
        check_split_counts("a/b", stats, {"train": 774, "test": 200})
    assert str(err.value) == (
        "building 'a/b' wrote other example counts than its pipeline produced (train: 774 "
        "written, 1,000 produced; counted by the build's statistics): the build is discarded "
        "and the previous prepared folder kept; build again, and report it if it happens again"
    )

