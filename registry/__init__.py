"""Lab Registry: a lab's datasets and pretrained models, versioned in Git and DVC.

Load a released dataset as easily as a public one::

    import registry
    ds = registry.load_dataset("products/product_a/ad_clicks:1.0.0", split="train[:10%]")

Heavy libraries (TensorFlow, Beam, MLflow, DVC) are imported only inside the functions that need
them, so ``import registry`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> module that defines it; resolved on first access (PEP 562).
_EXPORTS = {
    "add_dataset": "registry.datasets",
    "build_dataset": "registry.datasets",
    "dataset_info": "registry.datasets",
    "list_datasets": "registry.datasets",
    "load_dataset": "registry.datasets",
    "new_dataset": "registry.datasets",
    "pull_dataset": "registry.datasets",
    "release_dataset": "registry.datasets",
    "yank_dataset": "registry.withdraw",
    "Reference": "registry.grammar",
    "Version": "registry.grammar",
    "parse_reference": "registry.grammar",
    "RegistryError": "registry.errors",
    "add_model": "registry.models",
    "demote_model": "registry.models",
    "deprecate_model": "registry.models",
    "list_models": "registry.models",
    "load_keras_model": "registry.models",
    "load_model": "registry.models",
    "model_info": "registry.models",
    "new_model": "registry.models",
    "promote_model": "registry.models",
    "record_training_run": "registry.models",
    "release_model": "registry.models",
    "resolve_model": "registry.models",
    "search_models": "registry.models",
    "yank_model": "registry.withdraw",
    "get_lineage": "registry.lineage",
    "rebuild_dataset": "registry.reproduce",
    "reproduce_model": "registry.reproduce",
    "diff_datasets": "registry.diff",
    "search_datasets": "registry.catalog",
    "load_settings": "registry.config",
    "read_params": "registry.config",
}

__all__ = [
    "Reference",
    "RegistryError",
    "Version",
    "__version__",
    "add_dataset",
    "add_model",
    "build_dataset",
    "dataset_info",
    "demote_model",
    "deprecate_model",
    "diff_datasets",
    "get_lineage",
    "list_datasets",
    "list_models",
    "load_dataset",
    "load_keras_model",
    "load_model",
    "load_settings",
    "model_info",
    "new_dataset",
    "new_model",
    "parse_reference",
    "promote_model",
    "pull_dataset",
    "read_params",
    "rebuild_dataset",
    "record_training_run",
    "release_dataset",
    "release_model",
    "reproduce_model",
    "resolve_model",
    "search_datasets",
    "search_models",
    "yank_dataset",
    "yank_model",
]

if TYPE_CHECKING:
    from registry.catalog import search_datasets
    from registry.config import load_settings, read_params
    from registry.datasets import (
        add_dataset,
        build_dataset,
        dataset_info,
        list_datasets,
        load_dataset,
        new_dataset,
        pull_dataset,
        release_dataset,
    )
    from registry.diff import diff_datasets
    from registry.errors import RegistryError
    from registry.grammar import Reference, Version, parse_reference
    from registry.lineage import get_lineage
    from registry.models import (
        add_model,
        demote_model,
        deprecate_model,
        list_models,
        load_keras_model,
        load_model,
        model_info,
        new_model,
        promote_model,
        record_training_run,
        release_model,
        resolve_model,
        search_models,
    )
    from registry.reproduce import rebuild_dataset, reproduce_model
    from registry.withdraw import yank_dataset, yank_model


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'registry' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
