"""Preparing a dataset: build it with its builder and Beam, and atomically replace
``datasets/<name>/prepared`` with the result.

This is what the ``build@<name>`` stage of ``dvc.yaml`` runs (``registry datasets prepare``). The
builder is loaded by :mod:`registry.build.builders` and run with the Beam options of
:mod:`registry.build.beam`. A failed or interrupted build leaves the previous data untouched. On
Dataflow the workers write under ``beam.dataflow.temp_location`` and the result is downloaded.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry import layout
from registry.atomic import atomic_write_text, replace_dir
from registry.build.beam import beam_download_config, pipeline_options
from registry.build.builders import (
    builder_configs,
    class_metadata,
    download_and_prepare,
    make_builder,
    with_manual_dir,
)
from registry.config import build_statistics
from registry.errors import BuildError, ConfigError, RegistryError, first_line

if TYPE_CHECKING:
    import tensorflow_datasets as tfds

__all__ = [
    "build_summary",
    "check_split_counts",
    "configs_summary",
    "prepare_dataset",
    "remote_build_dir",
]


def prepare_dataset(
    root: Path,
    name: str,
    *,
    params: Mapping[str, Any] | None = None,
    beam: Mapping[str, Any] | None = None,
    output: Path | None = None,
) -> Path:
    """Build dataset ``name`` and atomically replace its prepared folder with the result.

    This is what the ``build@<name>`` stage of ``dvc.yaml`` runs (through
    ``registry datasets prepare``). Steps: read the settings; on Dataflow, check credentials and
    dependencies before anything runs; build into a temporary folder here (local runners) or
    under ``temp_location`` and download it (Dataflow); swap the result in; on the default
    output, write ``build_info.json``.

    A builder with ``BUILDER_CONFIGS`` is built once per config, each into its own TFDS prepared
    folder ``prepared/<config>`` (one DVC output, one release for them all); its
    ``build_info.json`` describes every config (:func:`configs_summary`). A builder without
    configs writes its prepared folder as it always did.

    Args:
        root: The registry work tree.
        name: The dataset name.
        params: The dataset's knobs; default ``datasets.<name>`` from ``params.yaml`` (its
            ``file_format`` is the shards' format, the rest the builder's).
        beam: The Beam settings; default ``beam`` from ``params.yaml``.
        output: Where the prepared folder goes; default ``datasets/<name>/prepared``.

    Returns:
        The prepared folder.

    Raises:
        ConfigError: If the Beam settings are invalid.
        CredentialsError: On Dataflow, if no Google Cloud credentials are configured (checked
            before anything runs).
        MissingDependencyError: On Dataflow, if Beam's ``gcp`` extra is not installed.
        BuildError: If the builder or its pipeline fails (the old prepared folder stays), or a
            config declares a version of its own.

    Example:
        >>> prepare_dataset(Path("."), "image_classification/digits")  # doctest: +SKIP
        PosixPath('datasets/image_classification/digits/prepared')
    """
    from registry.build.dvcfiles import dataset_params, file_format, read_params

    if params is None:
        params = dataset_params(root, name)
    shard_format = file_format(name, dict(params))
    if beam is None:
        beam = read_params(root).get("beam") or {}
    output = output or root / layout.prepared_dir(name)
    flags = pipeline_options(root, name, beam)
    if "--runner=DataflowRunner" in flags:
        _check_dataflow_ready(beam)
    download_config = beam_download_config(beam, flags=flags)
    remote_dir = remote_build_dir(beam, name)
    with_statistics = build_statistics()
    configs = builder_configs(root, name)
    output.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f".{output.name}.build-", dir=output.parent))
    try:
        # A builder with configs: each config is built into its own folder of the prepared
        # folder (``prepared/<config>``, a TFDS prepared folder each), in one DVC output.
        built: dict[str | None, tuple[Path, Any, dict[str, Any] | None]] = {}
        parts: list[str | None] = list(configs) or [None]
        for config in parts:
            part = workdir if config is None else workdir / "configs" / config
            built[config] = _build_one(
                root, name, params, config, part, remote_dir, download_config, with_statistics,
                shard_format,
            )
        if configs:
            prepared = workdir / "prepared"
            prepared.mkdir()
            for config in configs:
                built[config][0].rename(prepared / config)
        else:
            prepared = built[None][0]
        # Downloads and Beam temp files stay behind: only the prepared folder is the output.
        replace_dir(prepared, output)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if remote_dir is not None:
        _delete_quietly(remote_dir)
    if output == root / layout.prepared_dir(name):
        if configs:
            summary = configs_summary(
                name, {c: (built[c][1], built[c][2]) for c in configs}, configs[0]
            )
        else:
            summary = build_summary(name, built[None][1], built[None][2])
        supported = class_metadata(root, name).supported_versions
        if supported:  # older versions the builder can still build (TFDS's SUPPORTED_VERSIONS)
            summary["supported_versions"] = supported
        atomic_write_text(
            root / layout.build_info_file(name),
            json.dumps(summary, indent=2, sort_keys=True) + "\n",
        )
    return output


def _build_one(
    root: Path,
    name: str,
    params: Mapping[str, Any],
    config: str | None,
    workdir: Path,
    remote_dir: str | None,
    download_config: Any,
    with_statistics: bool,
    file_format: str | None = None,
) -> tuple[Path, Any, dict[str, Any] | None]:
    """Build ``name`` (its ``config``, or the builder without configs) under ``workdir``: the
    built folder, the builder's ``info`` and the statistics (checked against the shards)."""
    # Each split's statistics, written by a branch of the build's own pipeline beside the
    # data (never inside it: the prepared folder's hash must not change).
    local_stats = workdir / "statistics"
    what = name if config is None else f"{name} ({config})"
    if remote_dir is None:
        stats_dir = str(local_stats) if with_statistics else None
        builder = _run_builder(
            root, name, params, str(workdir / "data"), download_config, stats_dir, config,
            file_format,
        )
        built = Path(builder.data_dir)
    else:
        # Dataflow's workers cannot write to this machine: they build under temp_location, and
        # the result is downloaded here once the job is done.
        remote = remote_dir if config is None else f"{remote_dir}/{config}"
        stats_dir = f"{remote}/statistics" if with_statistics else None
        builder = _run_builder(
            root, name, params, remote, download_config, stats_dir, config, file_format
        )
        built = _download_build(name, str(builder.data_dir), workdir / "data")
        if stats_dir is not None:
            _download_build(name, stats_dir, local_stats)
    statistics = _statistics(stats_dir, local_stats, built, builder.info)
    check_split_counts(
        what, statistics, {s: int(i.num_examples) for s, i in builder.info.splits.items()}
    )
    return built, builder.info, statistics


def _statistics(
    stats_dir: str | None, local: Path, built: Path, info: Any
) -> dict[str, Any] | None:
    """The build's statistics as the pipeline wrote them in ``local``; read from the built data
    for a split whose examples did not pass through TFDS's split builder; ``None`` when off."""
    if stats_dir is None:
        return None
    from registry.build.stats import read_statistics, statistics_of_prepared

    statistics = read_statistics(str(local), list(info.splits))
    return statistics if statistics is not None else statistics_of_prepared(str(built))


def check_split_counts(
    name: str, statistics: Mapping[str, Any] | None, written: Mapping[str, int]
) -> None:
    """Refuse a build whose shards hold other example counts than its pipeline produced.

    The statistics are a second consumer of each split's examples in the same pipeline (see
    :mod:`registry.build.stats`), so their ``num_examples`` is an independent count of what
    TFDS was handed; a shard writer that lost or duplicated examples would otherwise go
    unnoticed until a release's rebuild. Nothing to check when statistics are off.

    Raises:
        BuildError: Naming each split whose counts differ (the previous prepared folder stays).

    Example:
        >>> stats = {"splits": {"train": {"num_examples": 10}}}
        >>> check_split_counts("a/b", stats, {"train": 10})
    """
    splits = (statistics or {}).get("splits") or {}
    wrong = [
        f"{split}: {count:,} written, {int(splits[split].get('num_examples', -1)):,} produced"
        for split, count in sorted(written.items())
        if split in splits and int(splits[split].get("num_examples", -1)) != count
    ]
    if wrong:
        raise BuildError(
            f"building {name!r} wrote other example counts than its pipeline produced "
            f"({'; '.join(wrong)}; counted by the build's statistics): the build is discarded and "
            "the previous prepared folder kept; build again, and report it if it happens again"
        )


def _check_dataflow_ready(beam: Mapping[str, Any]) -> None:
    """Fail before submitting when Dataflow has no credentials or Beam lacks its gcp extra."""
    from registry.cloud.dataflow import check_credentials, check_submission_dependencies

    check_credentials(str((beam.get("dataflow") or {})["project"]))
    check_submission_dependencies()


def _run_builder(
    root: Path,
    name: str,
    params: Mapping[str, Any],
    data_dir: str,
    download_config: Any,
    statistics_dir: str | None = None,
    config: str | None = None,
    file_format: str | None = None,
) -> tfds.core.DatasetBuilder:
    """Build ``name`` (its ``config``, if given) into ``data_dir`` (and its statistics into
    ``statistics_dir``), its shards in ``file_format``; any failure but our own becomes one
    BuildError line."""
    kwargs: dict[str, Any] = {"data_dir": data_dir}
    if config is not None:
        kwargs["config"] = config
    try:
        builder = make_builder(root, name, params, **kwargs)
        download_config = with_manual_dir(builder, root, name, params, download_config)
        download_and_prepare(builder, download_config, statistics_dir, file_format)
    except RegistryError:
        raise
    except Exception as e:
        raise BuildError(
            f"building {name!r} failed: {_describe_error(e)}; fix the "
            f"builder ({layout.builder_file(name)}) or its params, then run "
            f"'registry datasets build {name}' again (rerun with --traceback for details)"
        ) from e
    return builder


def _download_build(name: str, remote: str, into: Path) -> Path:
    """Download Dataflow's build of ``name`` from ``remote``; on failure the build is kept."""
    from registry.cloud.gcs import download_folder

    try:
        download_folder(remote, into)
    except RegistryError as e:
        # The job's output is kept: the download can be retried without rebuilding.
        raise type(e)(
            f"{e}. Dataflow's build of {name!r} is kept at {remote}; download "
            "it again once fixed, or rebuild"
        ) from e
    return into


def remote_build_dir(beam: Mapping[str, Any], name: str) -> str | None:
    """Where Dataflow's workers write a build of ``name``: a fresh folder under
    ``beam.dataflow.temp_location``; ``None`` for runners that write on this machine.

    Example:
        >>> beam = {"runner": "DataflowRunner", "dataflow": {"temp_location": "gs://lab/tmp"}}
        >>> remote_build_dir(beam, "a/b")  # doctest: +SKIP
        'gs://lab/tmp/registry-builds/a/b/5f0c...'
    """
    if (beam.get("runner") or "DirectRunner") != "DataflowRunner":
        return None
    temp = str((beam.get("dataflow") or {}).get("temp_location") or "").rstrip("/")
    if not temp.startswith("gs://"):
        raise ConfigError(
            f"beam.dataflow.temp_location must be a gs:// folder for Dataflow, not {temp!r}"
        )
    return f"{temp}/registry-builds/{name}/{uuid.uuid4().hex}"


def _delete_quietly(url: str) -> None:
    """Remove a finished build's folder from Cloud Storage; a failure only leaves temp files."""
    import logging

    from registry.cloud.gcs import delete_folder

    try:
        delete_folder(url)
    except Exception as e:  # the build's result is safe; say what was left behind
        logging.getLogger(__name__).warning("could not delete %s (%s); delete it by hand", url, e)


def build_summary(
    name: str, info: Any, statistics: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Describe a built dataset for Git (``build_info.json``): version, splits, features, and
    the per-feature statistics of each split when the build computed them.

    Committed beside the builder, it lets ``registry datasets info`` and ``list`` describe any
    released version without fetching its bytes, and shows what a rebuild changed in review.
    Feature keys are those of ``info.features.get_tensor_info()``, nested ones as ``a/b``; a
    ``ClassLabel`` lists its class ``names``. ``statistics`` is :mod:`registry.build.stats`'
    ``{"schema": 1, "splits": {...}}``.
    """
    features = {}
    for key, feature, tensor in _flat_features(info.features):
        entry: dict[str, Any] = {
            "type": type(feature).__name__,
            "dtype": tensor.dtype.name,
            "shape": [d if d is None else int(d) for d in tensor.shape],
        }
        if hasattr(feature, "num_classes"):
            entry["num_classes"] = int(feature.num_classes)
        if type(feature).__name__ == "ClassLabel":
            entry["names"] = [str(n) for n in feature.names]
        features[key] = entry
    summary = {
        "name": name,
        "tfds_name": info.name,
        "version": str(info.version),
        "splits": {
            split: {
                "num_examples": int(si.num_examples),
                "num_bytes": int(si.num_bytes),
                "num_shards": len(si.shard_lengths),
            }
            for split, si in sorted(info.splits.items())
        },
        "features": features,
        "supervised_keys": list(info.supervised_keys) if info.supervised_keys else None,
    }
    shards = info.file_format.value if info.file_format is not None else "tfrecord"
    if shards != "tfrecord":  # said only when not TFDS's default: older summaries stay as they are
        summary["file_format"] = shards
    if statistics is not None:
        summary["statistics"] = dict(statistics)
    return summary


def configs_summary(
    name: str, infos: Mapping[str, tuple[Any, Mapping[str, Any] | None]], default: str
) -> dict[str, Any]:
    """Describe a build of a builder with configs for Git (``build_info.json``).

    The top level is the default config's :func:`build_summary` (so that whatever reads a
    build's splits, features or statistics reads the data that a load without ``config``
    reads), with ``config``: the default's name, and ``configs``: a list of each config's own
    summary (its ``name``, ``splits``, ``features``, ``supervised_keys``, ``statistics``,
    ``description``), in ``BUILDER_CONFIGS``' order (a list: the file's keys are sorted).

    Args:
        name: The dataset's name.
        infos: Config name -> (the builder's ``info``, the statistics or ``None``).
        default: The config a load without ``config`` reads (TFDS's default: the first).

    Example:
        >>> configs_summary("a/b", {"small": (info, None)}, "small")["config"]  # doctest: +SKIP
        'small'
    """
    configs: list[dict[str, Any]] = []
    for config, (info, statistics) in infos.items():
        summary = build_summary(name, info, statistics)
        for key in ("tfds_name", "version", "file_format"):
            summary.pop(key, None)
        summary["name"] = config
        summary["description"] = str(getattr(info, "config_description", None) or "")
        configs.append(summary)
    top = build_summary(name, infos[default][0], infos[default][1])
    top["config"] = default
    top["configs"] = configs
    return top


def _flat_features(features: Any) -> list[tuple[str, Any, Any]]:
    """``(key, feature, tensor info)`` of every leaf of ``get_tensor_info()``, nested keys as
    ``a/b``, sorted."""
    leaves: list[tuple[str, Any, Any]] = []

    def walk(feature: Any, tensors: Any, prefix: str) -> None:
        if not isinstance(tensors, dict):
            leaves.append((prefix, feature, tensors))
            return
        inner = getattr(feature, "feature", feature)  # a Sequence of a dict: its dict
        for key, tensor in tensors.items():
            try:
                child = inner[key]
            except (KeyError, TypeError):
                child = feature
            walk(child, tensor, f"{prefix}/{key}" if prefix else key)

    walk(features, features.get_tensor_info(), "")
    return sorted(leaves, key=lambda leaf: leaf[0])


def _describe_error(error: BaseException) -> str:
    """``Type: message`` of what went wrong, in one line.

    A Beam worker process reports its failure as a RuntimeError whose text is the worker's
    traceback (first line ``Traceback (most recent call last):``): the user's error is its last
    unindented ``Type: message`` line.
    """
    text = str(error).strip()
    if "Traceback (most recent call last):" in text:
        for line in reversed(text.splitlines()):
            if line and not line[0].isspace() and not line.startswith(
                ("Traceback", "During handling", "The above exception")
            ):
                return line.strip()
    return f"{type(error).__name__}: {first_line(error)}"

