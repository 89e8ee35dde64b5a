"""The registry's ``dvc.yaml`` and ``params.yaml``: which datasets the pipeline builds, and how.

Datasets are built by one ``foreach`` stage, ``build``, whose keys are dataset names, so the stage
of ``image_classification/digits`` is ``build@image_classification/digits``. Each dataset's knobs
are ``datasets.<name>`` in ``params.yaml``; Beam's are ``beam``. A dataset's raw input (its
``raw_path`` knob: a folder or file in the dataset folder, tracked by ``dvc add`` or ``dvc
import-url``) is a dependency of its stage through the ``foreach`` item's ``raw`` key; a builder
that generates its data (``raw_path: null``) names its own module there, so its stage depends on
nothing more (DVC 3 interpolates no lists and has no defaults: every item needs the key). Edits
keep comments and order (ruamel.yaml round-trip) and are written atomically; plain reads of
``params.yaml`` go through :func:`registry.config.read_params`, its one reader.
"""

from __future__ import annotations

import copy
import io
import posixpath
from pathlib import Path
from typing import Any

from registry import layout
from registry.atomic import atomic_write_text
from registry.config import read_params
from registry.errors import ConfigError, RawInputError

__all__ = [
    "FILE_FORMATS",
    "FILE_FORMAT_KEY",
    "WAREHOUSE_KEY",
    "add_dataset",
    "builder_params",
    "check_raw_path",
    "dataset_params",
    "declared_datasets",
    "file_format",
    "pipeline_datasets",
    "pipeline_extracts",
    "remove_dataset",
    "set_artifact",
    "set_raw_input",
    "set_warehouse_source",
]

# The build stage's dependency on a dataset's raw input (the item's ``raw``, from its folder).
RAW_DEP = "datasets/${key}/${item.raw}"

# A dataset's knobs for its extract stage (``datasets.<name>.warehouse``: query or table, the
# query's parameters, the embedded default's sample), not its builder's: see
# :mod:`registry.build.extract`.
WAREHOUSE_KEY = "warehouse"

# How a dataset's shards are written (``datasets.<name>.file_format``), a registry knob handed to
# TFDS's ``download_and_prepare``, not to the builder. ``array_record`` gives random access
# (``load_dataset(..., output="data_source")``); absent: TFDS's default, ``tfrecord``.
FILE_FORMAT_KEY = "file_format"
FILE_FORMATS = ("tfrecord", "array_record")
# What a dataset added to the pipeline is built as (``registry datasets new`` and ``add`` write
# it into its params.yaml section): ArrayRecord reads in order as fast as TFRecord does, through
# tf.data too (registry.storage.array_records), and by index besides. A section without the key
# stays TFRecord, so every released version still rebuilds byte for byte.
NEW_DATASET_FILE_FORMAT = "array_record"

# The keys of a dataset's section that are the registry's, not its builder's.
_REGISTRY_KEYS = (WAREHOUSE_KEY, FILE_FORMAT_KEY)

EXTRACT_STAGE_TEMPLATE: dict[str, Any] = {
    "cmd": "registry datasets extract ${key}",
    "deps": ["datasets/${key}/${item.query}", "datasets/${key}/${item.sample}"],
    "params": ["datasets.${key}.warehouse", "warehouse"],
    "outs": ["datasets/${key}/snapshot"],
}

BUILD_STAGE_TEMPLATE: dict[str, Any] = {
    "cmd": "registry datasets prepare ${key}",
    "deps": [
        "datasets/${key}/${item.module}",
        "datasets/${key}/README.md",
        "datasets/${key}/CITATIONS.bib",
        "datasets/${key}/${item.raw}",
    ],
    "params": ["datasets.${key}"],
    "outs": [
        "datasets/${key}/prepared",
        {"datasets/${key}/build_info.json": {"cache": False}},
    ],
}


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    return yaml


def _load(path: Path) -> Any:
    if not path.exists():
        return None
    try:
        return _yaml().load(path.read_text())
    except Exception as e:  # ruamel raises many unrelated classes for bad YAML
        raise ConfigError(f"cannot parse {path}: {e}") from e


def _dump(path: Path, data: Any) -> None:
    buffer = io.StringIO()
    _yaml().dump(data, buffer)
    atomic_write_text(path, buffer.getvalue())


def dataset_params(root: Path, name: str) -> dict[str, Any]:
    """Return the knobs of dataset ``name`` from ``params.yaml`` (``datasets.<name>``)."""
    section = read_params(root).get("datasets") or {}
    value = section.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"datasets.{name} in params.yaml must be a mapping, not {value!r}")
    return dict(value)


def builder_params(params: dict[str, Any]) -> dict[str, Any]:
    """A dataset's knobs as its builder takes them: without the extract stage's ``warehouse``
    and the shards' ``file_format``."""
    return {k: v for k, v in params.items() if k not in _REGISTRY_KEYS}


def file_format(name: str, params: dict[str, Any]) -> str | None:
    """The shard format that dataset ``name``'s knobs ask for (``file_format``), or ``None``
    when they name none (TFDS's default, ``tfrecord``).

    Raises:
        ConfigError: If it is not one of :data:`FILE_FORMATS`.

    Example:
        >>> file_format("a/b", {"file_format": "array_record", "seed": 0})
        'array_record'
        >>> file_format("a/b", {"seed": 0}) is None
        True
    """
    value = params.get(FILE_FORMAT_KEY)
    if value is None:
        return None
    if value not in FILE_FORMATS:
        raise ConfigError(
            f"datasets.{name}.{FILE_FORMAT_KEY} in params.yaml must be "
            f"{' or '.join(FILE_FORMATS)}, not {value!r}"
        )
    return str(value)


def pipeline_extracts(root: Path) -> list[str]:
    """Names of the datasets that ``dvc.yaml``'s ``extract`` stage snapshots from the warehouse."""
    data = _load(root / "dvc.yaml") or {}
    stage = (data.get("stages") or {}).get(layout.EXTRACT_STAGE) or {}
    return sorted((stage.get("foreach") or {}).keys())


def pipeline_datasets(root: Path) -> list[str]:
    """Names of the datasets that ``dvc.yaml``'s ``build`` stage builds."""
    data = _load(root / "dvc.yaml") or {}
    build = (data.get("stages") or {}).get(layout.BUILD_STAGE) or {}
    return sorted((build.get("foreach") or {}).keys())


def declared_datasets(root: Path) -> list[str]:
    """Datasets named in ``dvc.yaml``'s ``build`` stage or under ``datasets:`` in ``params.yaml``
    (a name there is taken even if its folder is gone)."""
    names = set(pipeline_datasets(root)) | set(read_params(root).get("datasets") or {})
    return sorted(names)


def add_dataset(root: Path, name: str, params: dict[str, Any] | None = None) -> None:
    """Add dataset ``name`` to the ``build`` stage and to ``params.yaml`` (if not there yet),
    with ``params`` and, unless they name one, ``file_format: array_record``
    (:data:`NEW_DATASET_FILE_FORMAT`)."""
    dvc_yaml = root / "dvc.yaml"
    data = _load(dvc_yaml) or {}
    stages = data.setdefault("stages", {})
    build = stages.get(layout.BUILD_STAGE)
    if build is None:
        build = stages[layout.BUILD_STAGE] = {"foreach": {}, "do": dict(BUILD_STAGE_TEMPLATE)}
    foreach = build.setdefault("foreach", {})
    item = {"module": Path(layout.builder_file(name)).name}
    if RAW_DEP in (build.get("do") or {}).get("deps", []):
        item["raw"] = (params or {}).get("raw_path") or item["module"]
    foreach[name] = item
    _dump(dvc_yaml, data)

    params_yaml = root / "params.yaml"
    params_data = _load(params_yaml) or {}
    datasets = params_data.setdefault("datasets", {})
    if name not in datasets:
        datasets[name] = {**(params or {})}
        datasets[name].setdefault(FILE_FORMAT_KEY, NEW_DATASET_FILE_FORMAT)
    _dump(params_yaml, params_data)


def _knobs(params_data: Any, name: str) -> Any:
    """Dataset ``name``'s section of parsed ``params.yaml`` (``datasets.<name>``), made a
    mapping if it is missing or empty, for an edit in place."""
    datasets = params_data.setdefault("datasets", {})
    if not isinstance(datasets.get(name), dict):
        datasets[name] = {}
    return datasets[name]


def set_warehouse_source(
    root: Path,
    name: str,
    *,
    query: str,
    sample: str | None = None,
    params: dict[str, Any] | None = None,
) -> None:
    """Make dataset ``name`` read the warehouse: ``extract@NAME`` runs ``query`` into its
    snapshot, and the snapshot is its build's raw input.

    In ``dvc.yaml``, the dataset joins the ``foreach`` of the ``extract`` stage (created from
    :data:`EXTRACT_STAGE_TEMPLATE` before ``build`` if absent) with its ``query`` and ``sample``
    (the query file again when there is no sample: a ``foreach`` item needs every key), and its
    build item gets ``raw: snapshot`` (:func:`set_raw_input`). In ``params.yaml``,
    ``datasets.<name>`` gets, first, ``warehouse: {query, sample, params}`` (the extract stage's
    section, read by :func:`registry.build.extract.warehouse_source`), and ``raw_path: snapshot``;
    a ``params.yaml`` with no top-level ``warehouse`` (a dependency of the stage) gets an empty
    one: the embedded default.

    Args:
        root: The registry work tree.
        name: A dataset of the ``build`` stage.
        query: The SQL file, relative to the dataset folder (e.g. ``query.sql``).
        sample: The embedded default's sample tables, relative to the dataset folder (e.g.
            ``warehouse_sample.json``); ``None``: none (a real ``warehouse.project`` only).
        params: The query's named parameters' values (text in ISO form for dates).

    Raises:
        ConfigError: If ``name`` is not in the ``build`` stage, or a file cannot be parsed.

    Example:
        >>> set_warehouse_source(root, "products/demo/orders", query="query.sql",
        ...                      sample="warehouse_sample.json",
        ...                      params={"start_date": "2026-01-01"})  # doctest: +SKIP
    """
    # First: it refuses a dataset that is not in the build stage, before anything is written.
    set_raw_input(root, name, layout.SNAPSHOT_DIR)
    dvc_yaml = root / "dvc.yaml"
    data = _load(dvc_yaml) or {}
    stages = data.setdefault("stages", {})
    if layout.EXTRACT_STAGE not in stages:
        # Before build, which reads its output: dvc.yaml reads in the order things run.
        at = list(stages).index(layout.BUILD_STAGE) if layout.BUILD_STAGE in stages else len(stages)
        stage = {"foreach": {}, "do": copy.deepcopy(EXTRACT_STAGE_TEMPLATE)}
        if hasattr(stages, "insert"):
            stages.insert(at, layout.EXTRACT_STAGE, stage)
        else:
            stages[layout.EXTRACT_STAGE] = stage
    extract = stages[layout.EXTRACT_STAGE]
    if not isinstance(extract.get("foreach"), dict):
        extract["foreach"] = {}
    extract["foreach"][name] = {"query": query, "sample": sample or query}
    _dump(dvc_yaml, data)

    params_yaml = root / "params.yaml"
    params_data = _load(params_yaml) or {}
    knobs = _knobs(params_data, name)
    # The extract stage depends on the warehouse's settings: DVC refuses a missing param.
    if not isinstance(params_data.get("warehouse"), dict):
        params_data["warehouse"] = {"project": None, "location": None}
    section: dict[str, Any] = {"query": query}
    if sample:
        section["sample"] = sample
    section["params"] = dict(params or {})
    if hasattr(knobs, "insert"):
        knobs.pop(WAREHOUSE_KEY, None)
        knobs.insert(0, WAREHOUSE_KEY, section)
    else:
        params_data["datasets"][name] = {WAREHOUSE_KEY: section, **knobs}
    _dump(params_yaml, params_data)


def set_artifact(
    root: Path, name: str, *, path: str, type: str, desc: str = "", labels: list[str] | None = None
) -> None:
    """Declare (or update) ``name`` under ``artifacts:`` in dvc.yaml.

    Declared artifacts are what ``dvc artifacts get <url> <name> --rev vX.Y.Z`` fetches and what
    ``gto show`` describes (type, path, description, labels).
    """
    dvc_yaml = root / "dvc.yaml"
    data = _load(dvc_yaml) or {}
    artifacts = data.setdefault("artifacts", {})
    entry: dict[str, Any] = {"path": path, "type": type}
    if desc:
        entry["desc"] = desc
    if labels:
        entry["labels"] = list(dict.fromkeys(labels))
    artifacts[name] = entry
    _dump(dvc_yaml, data)


def remove_dataset(root: Path, name: str) -> None:
    """Take dataset ``name`` out of ``dvc.yaml`` (its build and extract stages) and
    ``params.yaml`` (its folder stays); an extract stage left with no dataset goes too."""
    for filename, keys in (("dvc.yaml", ("stages", layout.BUILD_STAGE, "foreach")),
                           ("dvc.yaml", ("stages", layout.EXTRACT_STAGE, "foreach")),
                           ("params.yaml", ("datasets",))):
        path = root / filename
        data = _load(path)
        node = data
        for key in keys:
            node = (node or {}).get(key)
        if node is not None and name in node:
            del node[name]
            if not node and keys[1:2] == (layout.EXTRACT_STAGE,):
                del data["stages"][layout.EXTRACT_STAGE]
            _dump(path, data)


def check_raw_path(name: str, raw_path: str) -> str:
    """``raw_path`` in one spelling, if it names a place inside dataset ``name``'s folder.

    Args:
        name: The dataset.
        raw_path: Relative to the dataset folder, e.g. ``raw`` or ``./exports/2024``.

    Returns:
        The normalised path, e.g. ``exports/2024``.

    Raises:
        RawInputError: If it is absolute, leads out of the dataset folder, is the folder itself,
            or is one of the build's outputs.

    Example:
        >>> check_raw_path("image_classification/digits", "./raw/")
        'raw'
    """
    folder = layout.dataset_dir(name)
    norm = posixpath.normpath(raw_path.replace("\\", "/")) if raw_path else ""
    if not norm or norm == "." or posixpath.isabs(norm) or norm.split("/")[0] == "..":
        raise RawInputError(
            name, raw_path, f"is not inside the dataset folder {folder}/ (raw inputs live there, "
            "so that the build stage can depend on them)"
        )
    outputs = (Path(layout.prepared_dir(name)).name, Path(layout.build_info_file(name)).name)
    if norm.split("/")[0] in outputs:
        raise RawInputError(name, raw_path, "is an output of the build, not an input")
    return norm


def set_raw_input(root: Path, name: str, raw_path: str | None) -> None:
    """Make ``raw_path`` dataset ``name``'s raw input: its knob and its build stage's dependency.

    Sets ``datasets.<name>.raw_path`` in ``params.yaml`` and the ``foreach`` item's ``raw`` key in
    ``dvc.yaml`` (the builder module when ``raw_path`` is ``None``: the builder generates its
    data). A ``dvc.yaml`` from before raw inputs were dependencies gets the ``raw`` dependency in
    its ``do`` and every other item ``raw: <module>``, which leaves their ``dvc.lock`` entries
    valid (DVC reads a dependency's hash by its path).

    Args:
        root: The registry work tree.
        name: A dataset of the ``build`` stage.
        raw_path: Relative to the dataset folder (checked by :func:`check_raw_path`), or ``None``.

    Raises:
        RawInputError: If ``raw_path`` is not inside the dataset folder.
        ConfigError: If ``name`` is not in the ``build`` stage, or a file cannot be parsed.

    Example:
        >>> set_raw_input(root, "products/product_a/ad_clicks", "raw")  # doctest: +SKIP
    """
    norm = check_raw_path(name, raw_path) if raw_path is not None else None
    dvc_yaml = root / "dvc.yaml"
    data = _load(dvc_yaml) or {}
    build = (data.get("stages") or {}).get(layout.BUILD_STAGE) or {}
    foreach = build.get("foreach") or {}
    if name not in foreach:
        raise ConfigError(
            f"dataset {name!r} is not in the build stage of dvc.yaml; add it with "
            "'registry datasets new' (or to the stage's foreach by hand)"
        )
    deps = build.setdefault("do", {}).setdefault("deps", [])
    if RAW_DEP not in deps:
        deps.append(RAW_DEP)
    for key, item in foreach.items():
        item.setdefault("raw", item.get("module"))
        if key == name:
            item["raw"] = norm or item.get("module")
    _dump(dvc_yaml, data)

    params_yaml = root / "params.yaml"
    params_data = _load(params_yaml) or {}
    _knobs(params_data, name)["raw_path"] = norm
    _dump(params_yaml, params_data)
