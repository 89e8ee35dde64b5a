"""Where things live in a registry work tree, derived from an artifact's name.

A dataset ``products/product_a/ad_clicks`` lives in ``datasets/products/product_a/ad_clicks/``,
as a TFDS dataset folder: its builder module is ``ad_clicks_dataset_builder.py`` (class
``Builder``), and its built data (a DVC output, not in Git) is the TFDS prepared folder
``prepared/`` beside it, written by the ``dvc.yaml`` stage ``build@<name>``.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "BUILDER_SUFFIX",
    "DATASETS_DIR",
    "MODELS_DIR",
    "PREPARED_DIR",
    "build_info_file",
    "build_stage",
    "builder_file",
    "card_file",
    "dataset_dir",
    "dataset_names_in",
    "model_dir",
    "model_names_in",
    "prepared_dir",
]

DATASETS_DIR = "datasets"
MODELS_DIR = "models"
BUILDER_SUFFIX = "_dataset_builder.py"
PREPARED_DIR = "prepared"
BUILD_STAGE = "build"


def dataset_dir(name: str) -> str:
    """The dataset's folder, relative to the registry root."""
    return f"{DATASETS_DIR}/{name}"


def builder_file(name: str) -> str:
    """The dataset's TFDS builder module, relative to the registry root."""
    return f"{dataset_dir(name)}/{name.rsplit('/', 1)[-1]}{BUILDER_SUFFIX}"


def prepared_dir(name: str) -> str:
    """The dataset's built TFDS folder (a DVC output), relative to the registry root."""
    return f"{dataset_dir(name)}/{PREPARED_DIR}"


def build_info_file(name: str) -> str:
    """Summary of the built data (version, splits, features), kept in Git beside the builder."""
    return f"{dataset_dir(name)}/build_info.json"


def build_stage(name: str) -> str:
    """The ``dvc.yaml`` stage that builds the dataset (a ``foreach`` entry of ``build``)."""
    return f"{BUILD_STAGE}@{name}"


def model_dir(name: str) -> str:
    """The model's folder, relative to the registry root."""
    return f"{MODELS_DIR}/{name}"


def card_file(name: str) -> str:
    """The model's card (``README.md`` with YAML front matter), relative to the registry root."""
    return f"{model_dir(name)}/README.md"


def model_names_in(paths: Iterable[str]) -> list[str]:
    """Find models among repository paths: folders under ``models/`` holding a README.md card.

    Example:
        >>> model_names_in(["models/README.md", "models/digits-cnn/README.md"])
        ['digits-cnn']
    """
    prefix, suffix = f"{MODELS_DIR}/", "/README.md"
    return sorted(
        p[len(prefix) : -len(suffix)]
        for p in paths
        if p.startswith(prefix) and p.endswith(suffix) and p.count("/") >= 2
    )


def dataset_names_in(paths: Iterable[str]) -> list[str]:
    """Find datasets among repository paths: folders holding ``<folder>_dataset_builder.py``.

    Example:
        >>> dataset_names_in(["datasets/image_classification/digits/digits_dataset_builder.py"])
        ['image_classification/digits']
    """
    prefix = f"{DATASETS_DIR}/"
    names = set()
    for path in paths:
        if not (path.startswith(prefix) and path.endswith(BUILDER_SUFFIX)):
            continue
        folder, _, filename = path[len(prefix) :].rpartition("/")
        if folder and filename == f"{folder.rsplit('/', 1)[-1]}{BUILDER_SUFFIX}":
            names.add(folder)
    return sorted(names)
