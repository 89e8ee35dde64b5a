"""Declarative tests for dataset builders: build from dummy data, check the split sizes.

As in TFDS, a dataset's test lives in its folder (``<leaf>_dataset_builder_test.py``) and says
what its dummy data should produce::

    from registry.testing import check_builder

    def test_builds_from_dummy_data(tmp_path):
        builder = check_builder(__file__, expected_splits={"train": 17, "test": 3},
                                data_dir=tmp_path)
        # ... extra checks on builder.as_dataset(...)

The build runs the builder's real Beam pipeline, in memory (one process, no worker start-up), on
``dummy_data/`` (the ``raw_path`` knob), so a test takes seconds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry import layout
from registry.cloud.emulator import GCSEmulator

if TYPE_CHECKING:
    import tensorflow_datasets as tfds

__all__ = [
    "DUMMY_DATA_DIR",
    "IN_MEMORY_BEAM",
    "GCSEmulator",
    "check_builder",
    "resolve_dataset",
]

DUMMY_DATA_DIR = "dummy_data"
# Beam settings for tests: one in-memory worker, the fastest for a few dozen rows.
IN_MEMORY_BEAM: Mapping[str, Any] = {
    "runner": "DirectRunner",
    "direct_num_workers": 1,
    "direct_running_mode": "in_memory",
}


def resolve_dataset(
    dataset: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> tuple[Path, str]:
    """Find the registry root and the dataset name of ``dataset``.

    Args:
        dataset: A dataset name (``"products/product_a/ad_clicks"``), its folder, or a file in
            its folder (a test passes its own ``__file__``).
        root: The registry work tree; default: the folder above the ``datasets/`` folder that
            holds ``dataset`` when it is a path, else the registry enclosing the working
            directory.

    Returns:
        ``(root, name)``.

    Raises:
        ValueError: If ``dataset`` is a path outside any ``datasets/`` folder (or outside
            ``root/datasets``).
    """
    path = Path(dataset)
    if path.exists():
        folder = (path.parent if path.is_file() else path).resolve()
        found = (
            Path(root).resolve() / layout.DATASETS_DIR
            if root is not None
            else next((p for p in folder.parents if p.name == layout.DATASETS_DIR), None)
        )
        if found is None:
            raise ValueError(f"{folder} is not inside a registry's '{layout.DATASETS_DIR}/'")
        base = found
        try:
            name = folder.relative_to(base).as_posix()
        except ValueError:
            raise ValueError(f"{folder} is not inside {base}") from None
        return base.parent, name
    if root is None:
        from registry.config import find_registry_root

        root = find_registry_root() or Path.cwd()
    return Path(root), str(dataset).strip("/")


def check_builder(
    dataset: str | os.PathLike[str],
    *,
    expected_splits: Mapping[str, int],
    params: Mapping[str, Any] | None = None,
    root: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    read_back: bool = True,
    config: str | None = None,
) -> tfds.core.GeneratorBasedBuilder:
    """Build a dataset from its dummy data and assert its split sizes.

    Args:
        dataset: A dataset name, its folder, or a file in its folder (see
            :func:`resolve_dataset`).
        expected_splits: Split name -> number of examples the dummy data must give; the built
            dataset must have exactly these splits.
        params: Knobs for the builder, over ``{"raw_path": "dummy_data"}`` (that default
            applies when the builder has a ``raw_path`` knob). The shards are written in the
            ``file_format`` of the dataset's section of ``params.yaml`` (a new dataset's is
            ``array_record``), or of ``params``, so the check reads them as loads will.
        root: The registry work tree (see :func:`resolve_dataset`).
        data_dir: Where to build; default: a temporary folder removed when the returned builder
            is garbage-collected (pass pytest's ``tmp_path`` to keep it for the test report).
        read_back: Also read every split back and count its examples (checks the written files
            decode with the declared features).
        config: For a builder with ``BUILDER_CONFIGS``, the config to build (default: the
            first, TFDS's default); check each config with its own call.

    Returns:
        The prepared builder, for further checks (``builder.as_dataset(split="train")``).

    Raises:
        AssertionError: If the splits or their sizes differ from ``expected_splits``.
        BuildError, NotBuiltError: If the builder cannot be loaded.

    Example:
        >>> builder = check_builder("image_classification/digits",
        ...                         expected_splits={"train": 24, "test": 6})  # doctest: +SKIP
    """
    from registry.build.beam import beam_download_config
    from registry.build.builders import download_and_prepare, load_builder_class, make_builder
    from registry.build.dvcfiles import builder_params, dataset_params, file_format
    from registry.storage.array_records import enable_tf_data

    root_path, name = resolve_dataset(dataset, root)
    knobs: dict[str, Any] = {}
    defaults = getattr(load_builder_class(root_path, name), "DEFAULT_PARAMS", None) or {}
    if "raw_path" in defaults:
        knobs["raw_path"] = DUMMY_DATA_DIR
    knobs.update(builder_params(dict(params or {})))
    shards = file_format(name, {**dataset_params(root_path, name), **(params or {})})

    cleanup = data_dir is None
    build_dir = Path(data_dir or tempfile.mkdtemp(prefix="registry-check-"))
    try:
        extra = {} if config is None else {"config": config}
        builder = make_builder(root_path, name, knobs, data_dir=str(build_dir), **extra)
        download_and_prepare(builder, beam_download_config(IN_MEMORY_BEAM), file_format=shards)
    except BaseException:
        if cleanup:
            shutil.rmtree(build_dir, ignore_errors=True)
        raise
    if cleanup:
        weakref.finalize(builder, shutil.rmtree, str(build_dir), True)

    actual = {split: int(info.num_examples) for split, info in builder.info.splits.items()}
    expected = {split: int(n) for split, n in expected_splits.items()}
    if actual != expected:
        raise AssertionError(
            f"{name} built from {knobs or 'its defaults'} has splits {_describe(actual)}, "
            f"expected {_describe(expected)}: {_difference(actual, expected)}"
        )
    if read_back:
        if shards == "array_record":
            enable_tf_data()
        for split, count in actual.items():
            read = sum(1 for _ in builder.as_dataset(split=split))
            if read != count:
                raise AssertionError(
                    f"{name}: split {split!r} records {count} examples but {read} were read back"
                )
    return builder


def _describe(splits: Mapping[str, int]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(splits.items())) + "}"


def _difference(actual: Mapping[str, int], expected: Mapping[str, int]) -> str:
    """One phrase a differing split: what the test must change, or what the builder got wrong."""
    parts = []
    for split in sorted(set(actual) | set(expected)):
        if split not in actual:
            parts.append(f"no {split!r} split")
        elif split not in expected:
            parts.append(f"unexpected split {split!r} ({actual[split]} examples)")
        elif actual[split] != expected[split]:
            parts.append(f"{split!r} has {actual[split]} examples, not {expected[split]}")
    return "; ".join(parts)
