"""The registry's ``dvc.yaml`` and ``params.yaml``: which datasets the pipeline builds, and how.

Datasets are built by one ``foreach`` stage, ``build``, whose keys are dataset names, so the stage
of ``image_classification/digits`` is ``build@image_classification/digits``. Each dataset's knobs
are ``datasets.<name>`` in ``params.yaml``; Beam's are ``beam``. Edits keep comments and order
(ruamel.yaml round-trip) and are written atomically; plain reads of ``params.yaml`` go through
:func:`registry.config.read_params`, its one reader.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from registry import layout
from registry.atomic import atomic_write_text
from registry.config import read_params
from registry.errors import ConfigError

__all__ = [
    "add_dataset",
    "dataset_params",
    "declared_datasets",
    "pipeline_datasets",
    "remove_dataset",
    "set_artifact",
]

BUILD_STAGE_TEMPLATE: dict[str, Any] = {
    "cmd": "registry datasets prepare ${key}",
    "deps": [
        "datasets/${key}/${item.module}",
        "datasets/${key}/README.md",
        "datasets/${key}/CITATIONS.bib",
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
    """Add dataset ``name`` to the ``build`` stage and to ``params.yaml`` (if not there yet)."""
    dvc_yaml = root / "dvc.yaml"
    data = _load(dvc_yaml) or {}
    stages = data.setdefault("stages", {})
    build = stages.get(layout.BUILD_STAGE)
    if build is None:
        build = stages[layout.BUILD_STAGE] = {"foreach": {}, "do": dict(BUILD_STAGE_TEMPLATE)}
    foreach = build.setdefault("foreach", {})
    foreach[name] = {"module": Path(layout.builder_file(name)).name}
    _dump(dvc_yaml, data)

    params_yaml = root / "params.yaml"
    params_data = _load(params_yaml) or {}
    datasets = params_data.setdefault("datasets", {})
    if name not in datasets:
        datasets[name] = dict(params or {})
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
    """Take dataset ``name`` out of ``dvc.yaml`` and ``params.yaml`` (its folder stays)."""
    for filename, keys in (("dvc.yaml", ("stages", layout.BUILD_STAGE, "foreach")),
                           ("params.yaml", ("datasets",))):
        path = root / filename
        data = _load(path)
        node = data
        for key in keys:
            node = (node or {}).get(key)
        if node is not None and name in node:
            del node[name]
            _dump(path, data)
