"""Where things live in a registry work tree, derived from an artifact's name.

A dataset ``products/product_a/ad_clicks`` lives in ``datasets/products/product_a/ad_clicks/``,
as a TFDS dataset folder: its builder module is ``ad_clicks_dataset_builder.py`` (class
``Builder``), and its built data (a DVC output, not in Git) is the TFDS prepared folder
``prepared/`` beside it, written by the ``dvc.yaml`` stage ``build@<name>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "BUILDER_SUFFIX",
    "DATASETS_DIR",
    "EXTRACT_STAGE",
    "MODELS_DIR",
    "PREPARED_DIR",
    "SCRATCH_DIR",
    "SNAPSHOT_DIR",
    "TRACKING_DIR",
    "build_info_file",
    "build_stage",
    "builder_file",
    "card_file",
    "dataset_dir",
    "dataset_names_in",
    "extract_stage",
    "link_outside",
    "logged_run_file",
    "model_dir",
    "model_names_in",
    "prepared_dir",
    "scratch_dir",
    "snapshot_dir",
]

DATASETS_DIR = "datasets"
MODELS_DIR = "models"
#: The local MLflow mirror (ignored by Git): its store, pending runs, which runs were logged.
TRACKING_DIR = "mlflow"
BUILDER_SUFFIX = "_dataset_builder.py"
PREPARED_DIR = "prepared"
BUILD_STAGE = "build"
# The stage that runs a warehouse dataset's query into its snapshot (a raw input of its build).
EXTRACT_STAGE = "extract"
SNAPSHOT_DIR = "snapshot"
# This machine's own files in a clone (Dataflow worker packages, logs): never committed.
SCRATCH_DIR = ".registry"
# The SSH keys allowed to sign tags (``ssh-keygen``'s allowed signers format), committed; read
# from the default branch when ``registry.require_signed_tags`` is set. Not under SCRATCH_DIR,
# which Git ignores.
ALLOWED_SIGNERS_FILE = ".allowed_signers"


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


def extract_stage(name: str) -> str:
    """The ``dvc.yaml`` stage that snapshots a warehouse dataset's query (``extract``)."""
    return f"{EXTRACT_STAGE}@{name}"


def snapshot_dir(name: str) -> str:
    """A warehouse dataset's snapshot (Parquet shards, a DVC output), relative to the root."""
    return f"{dataset_dir(name)}/{SNAPSHOT_DIR}"


def model_dir(name: str) -> str:
    """The model's folder, relative to the registry root."""
    return f"{MODELS_DIR}/{name}"


def card_file(name: str) -> str:
    """The model's card (``README.md`` with YAML front matter), relative to the registry root."""
    return f"{model_dir(name)}/README.md"


def logged_run_file(root: Path, uid: str) -> Path:
    """Where :mod:`registry.tracking` notes which MLflow run, on which server, logged training
    run ``uid`` (a release of the weights it trained records it; this machine's knowledge)."""
    return root / TRACKING_DIR / "logged" / f"{uid}.json"


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


def scratch_dir(root: Path, *parts: str) -> Path:
    """A folder under the clone's ``.registry/`` (created), which ignores itself in Git.

    ``.registry/`` holds a ``.gitignore`` of ``*``, whatever the clone's own ``.gitignore`` says,
    so that what is written there never makes the work tree dirty.

    Example:
        >>> scratch_dir(Path("."), "logs")  # doctest: +SKIP
        PosixPath('.registry/logs')
    """
    top = root / SCRATCH_DIR
    folder = top.joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    ignore = top / ".gitignore"
    text = "# Generated by `registry` (build folders, logs): never committed.\n*\n"
    if not ignore.is_file() or ignore.read_text() != text:
        ignore.write_text(text)
    return folder


def link_outside(top: Path, path: Path) -> Path | None:
    """The symbolic link that takes ``path`` out of the folder ``top``, or ``None``.

    Where the registry copies or packages a folder's files (a model's weights folder, the
    Dataflow worker package), a link leading outside would carry its target along: a key file,
    another project. The link named is the one the user made: ``path`` itself, or the folder
    above it (below ``top``) that is a link.

    Example:
        >>> link_outside(Path("."), Path("datasets"))  # a plain folder of the tree
    """
    resolved = top.resolve()
    if path.resolve().is_relative_to(resolved):
        return None
    inside = [p for p in (path, *path.parents) if p.is_relative_to(top) and p != top]
    return next(
        (p for p in inside if p.is_symlink() and not p.resolve().is_relative_to(resolved)), path
    )
