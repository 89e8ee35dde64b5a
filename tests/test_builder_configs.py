"""A builder with ``BUILDER_CONFIGS``, end to end: every config built by DVC with Beam into one
prepared folder, released by one tag, loaded per config (and its default without one), shown by
``list`` and ``info``; a config with its own version and an unknown config name refused."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import registry
from registry.build.dvcfiles import set_raw_input
from registry.datasets import locate_dataset
from registry.errors import BuildError, ConfigError, UnderstatedBumpError
from registry.repo.records import parse_lineage
from tests.conftest import cli_ok, cli_raises, commit_all, git, registry_clone

NAME = "demo/sizes"
FOLDER = f"datasets/{NAME}"
BUILDER = f"{FOLDER}/sizes_dataset_builder.py"

pytestmark = pytest.mark.slow

# Two configs of one builder: the same features, other example counts (and a config-dependent
# value), generated with Beam, so the build needs no raw data.
SOURCE = '''\
"""demo/sizes: numbers and their squares, in two sizes (a builder with configs)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import tensorflow_datasets as tfds


def _example(i: int, scale: int) -> tuple[str, dict[str, Any]]:
    return f"{i:05d}", {"x": i, "y": i * i * scale}


class SizesConfig(tfds.core.BuilderConfig):
    """A size of demo/sizes."""

    def __init__(self, *, count: int, scale: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.count = count
        self.scale = scale


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for demo/sizes."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS: ClassVar[list[SizesConfig]] = [
        SizesConfig(name="small", description="Ten numbers.", count=10),
        SizesConfig(name="large", description="Forty numbers, squares doubled.", count=40,
                    scale=2),
    ]
    DEFAULT_PARAMS: ClassVar[dict[str, Any]] = {"raw_path": None}

    def __init__(self, *, params: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.params = {**self.DEFAULT_PARAMS, **(params or {})}
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"x": tfds.features.Scalar(dtype=np.int64),
                                                 "y": tfds.features.Scalar(dtype=np.int64)}),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        return {
            "train": self._generate_examples(0),
            "test": self._generate_examples(1),
        }

    def _generate_examples(self, parity: int):
        beam = tfds.core.lazy_imports.apache_beam
        config = self.builder_config
        numbers = [i for i in range(config.count) if i % 2 == parity]
        return beam.Create(numbers) | beam.Map(_example, config.scale)
'''


@pytest.fixture
def clone(tmp_path: Path, chdir: Callable[[Path], None]) -> Path:
    """A registry clone with demo/sizes (two configs) added and committed, a bare origin and a
    local DVC remote."""
    clone = registry_clone(tmp_path)
    chdir(clone)
    cli_ok("datasets", "new", NAME, "--description", "Numbers and squares.", "--owner", "ana")
    (clone / BUILDER).write_text(SOURCE)
    # It generates its data: no raw input (as the example datasets that generate theirs).
    set_raw_input(clone, NAME, None)
    commit_all(clone, f"Add {NAME}, with two configs")
    git(clone, "push", "-q", "origin", "main")
    return clone


def _build_and_release(clone: Path) -> None:
    assert "built: " + NAME in cli_ok("datasets", "build", NAME)
    commit_all(clone, f"Build {NAME} 1.0.0")
    git(clone, "push", "-q", "origin", "main")
    cli_ok("datasets", "release", NAME)


def test_every_config_is_built_released_by_one_tag_and_loaded(clone: Path) -> None:
    _build_and_release(clone)
    prepared = clone / FOLDER / "prepared"
    assert sorted(p.name for p in prepared.iterdir()) == ["large", "small"]
    assert (prepared / "small" / "dataset_info.json").is_file()
    assert git(clone, "tag", "--list").split() == [f"{NAME}@v1.0.0"]
    message = git(clone, "tag", "-l", "--format=%(contents)", f"{NAME}@v1.0.0")
    record, problem = parse_lineage(message)
    assert problem is None and record is not None
    assert record["data"]["configs"] == ["small", "large"]

    small = registry.load_dataset(f"{NAME}:1.0.0", "train", config="small", output="pandas")
    large = registry.load_dataset(f"{NAME}:1.0.0", "train", config="large", output="pandas")
    assert sorted(small["x"]) == [0, 2, 4, 6, 8]
    assert sorted(large["x"]) == list(range(0, 40, 2))
    assert all(large["y"] == 2 * large["x"] ** 2)
    # No config: TFDS's default, the first of BUILDER_CONFIGS.
    default = registry.load_dataset(NAME, "test", output="pandas")
    assert sorted(default["x"]) == [1, 3, 5, 7, 9]
    located = locate_dataset(f"{NAME}:1.0.0", config="large")
    assert located.config == "large" and located.path.name == "large"
    workspace = locate_dataset(NAME, source="workspace")
    assert workspace.config == "small" and workspace.path == prepared / "small"

    info = registry.dataset_info(NAME)
    assert info.default_config == "small"
    assert list(info.configs) == ["small", "large"]
    assert info.configs["large"]["splits"]["train"]["num_examples"] == 20
    assert info.configs["large"]["description"] == "Forty numbers, squares doubled."
    text = cli_ok("datasets", "info", NAME)
    assert "configs: small (default), large" in text
    assert "config large:" in text
    listed = json.loads(cli_ok("datasets", "list", "--json"))
    entry = next(d for d in listed if d["name"] == NAME)
    assert entry["configs"] == ["small", "large"]
    listing = cli_ok("datasets", "list")
    assert "1.0.0 (10 examples, config small)" in listing and "small, large" in listing
    large_info = registry.dataset_info(NAME, config="large")
    assert large_info.config == "large" and large_info.default_config == "small"
    assert large_info.build is not None and large_info.build["name"] == NAME
    assert large_info.build["splits"]["test"]["num_examples"] == 20
    assert large_info.statistics is not None
    assert large_info.statistics["splits"]["train"]["num_examples"] == 20
    assert "splits and features below: config large" in cli_ok(
        "datasets", "info", NAME, "--config", "large"
    )


def test_builds_of_configs_are_byte_reproducible(clone: Path) -> None:
    _build_and_release(clone)
    lock = (clone / "dvc.lock").read_text()
    info = (clone / FOLDER / "build_info.json").read_text()
    cli_ok("datasets", "build", NAME, "--force")
    assert (clone / "dvc.lock").read_text() == lock
    assert (clone / FOLDER / "build_info.json").read_text() == info
    # The version rebuilds from its tag, every config, to the released hash.
    assert registry.rebuild_dataset(f"{NAME}:1.0.0").equal is True


def test_check_builder_builds_each_config(clone: Path) -> None:
    from registry.testing import check_builder

    builder = check_builder(NAME, expected_splits={"train": 5, "test": 5})
    assert builder.builder_config.name == "small"
    large = check_builder(NAME, config="large", expected_splits={"train": 20, "test": 20})
    assert large.builder_config.name == "large"


def test_an_unknown_config_is_refused_with_the_known_ones(clone: Path) -> None:
    error = cli_raises(ConfigError, "datasets", "info", NAME, "--config", "small")
    assert "records no build" in str(error) and "registry datasets build" in str(error)
    _build_and_release(clone)
    with pytest.raises(ConfigError, match=r"no config 'medium'.*small, large"):
        registry.load_dataset(NAME, "train", config="medium")
    with pytest.raises(ConfigError, match=r"no config 'medium'.*small, large"):
        locate_dataset(NAME, source="workspace", config="medium")
    error = cli_raises(ConfigError, "datasets", "info", NAME, "--config", "medium")
    assert "small, large" in str(error)


def test_a_config_on_a_dataset_without_configs_is_refused(
    released_registry: object, chdir: Callable[[Path], None]
) -> None:
    clone = released_registry.clone  # type: ignore[attr-defined]
    chdir(clone)
    with pytest.raises(ConfigError, match="has no builder configs"):
        registry.load_dataset("image_classification/digits", "test", config="small")


def test_a_config_with_its_own_version_is_refused(clone: Path) -> None:
    (clone / BUILDER).write_text(
        SOURCE.replace('description="Ten numbers.", count=10',
                       'description="Ten numbers.", count=10, version="1.1.0"')
    )
    commit_all(clone, "A config with its own version")
    error = cli_raises(BuildError, "datasets", "prepare", NAME)
    assert "config 'small'" in str(error) and "declares version 1.1.0" in str(error)
    assert "VERSION (1.0.0)" in str(error)
    assert not (clone / FOLDER / "prepared").exists()
    done = subprocess.run(["registry", "datasets", "build", NAME], cwd=clone,
                          capture_output=True, text=True)
    assert done.returncode == BuildError.exit_code
    assert "declares version 1.1.0" in done.stderr and "Traceback" not in done.stderr


def test_a_second_release_checks_the_bump_config_by_config(clone: Path) -> None:
    _build_and_release(clone)
    # The large config's squares change (MAJOR); the small one stays the same.
    (clone / BUILDER).write_text(
        SOURCE.replace("scale=2", "scale=3")
        .replace('VERSION = tfds.core.Version("1.0.0")', 'VERSION = tfds.core.Version("1.1.0")')
        .replace('{"1.0.0": "Initial release."}',
                 '{"1.0.0": "Initial release.", "1.1.0": "Large squares tripled."}')
    )
    cli_ok("datasets", "build", NAME)
    commit_all(clone, f"Build {NAME} 1.1.0")
    error = cli_raises(UnderstatedBumpError, "datasets", "release", NAME)
    assert "config large: train: 19 examples removed" in str(error)
    assert "config small" not in str(error) and "2.0.0" in str(error)
    assert git(clone, "tag", "--list").split() == [f"{NAME}@v1.0.0"]

    diff = json.loads(cli_ok("datasets", "diff", f"{NAME}:1.0.0", "--config", "large", "--json"))
    assert {s["split"]: s["removed"] for s in diff["splits"]} == {"test": 20, "train": 19}
    # Without --config: the default config, small, which did not change.
    assert json.loads(cli_ok("datasets", "diff", f"{NAME}:1.0.0", "--json"))["identical"]
    error = cli_raises(ConfigError, "datasets", "diff", f"{NAME}:1.0.0", "--config", "medium")
    assert "its configs: small, large" in str(error)


def test_a_rebuild_that_differs_is_compared_config_by_config(
    clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The large config's scale comes from outside the repository: a rebuild with another value
    # differs from the release, in that config only.
    (clone / BUILDER).write_text(
        SOURCE.replace("scale=2", 'scale=int(__import__("os").environ.get("DEMO_SCALE", "2"))')
    )
    commit_all(clone, f"{NAME}: the large scale from the environment")
    _build_and_release(clone)
    monkeypatch.setenv("DEMO_SCALE", "3")
    result = registry.rebuild_dataset(f"{NAME}:1.0.0")
    assert result.equal is False
    assert not any("could not be compared" in line for line in result.unchecked), result.unchecked
    assert result.diff is not None and result.diff.after.endswith("config large")
    assert {s.split: (s.removed, s.added) for s in result.diff.splits} == {
        "test": (20, 20), "train": (19, 19),
    }
