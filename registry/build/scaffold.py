"""Scaffold a new dataset, as ``tfds new`` does: ``registry datasets new <group/.../name>``.

The new folder is a TFDS dataset folder that builds as it is, from its own dummy data: a builder
module with a Beam pipeline (read raw CSV rows, clean them, split by a stable hash), a card
(``README.md``), ``CITATIONS.bib``, ``TAGS.txt``, ``checksums.tsv``, ``dummy_data/`` and a
declarative test. It is added to the ``build`` stage of ``dvc.yaml`` and to ``params.yaml``, so
``registry datasets build <name>`` and ``tfds build datasets/<name>`` both work at once; TODO
comments show where the lab's own source, features and cleaning go.

The files are rendered from the templates in ``registry/build/templates/dataset/`` (package data,
with ``string.Template`` placeholders such as ``${name}``).
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import string
import textwrap
import uuid
from pathlib import Path

from registry import layout
from registry.errors import ArtifactExistsError, InvalidNameError

__all__ = [
    "DEFAULT_PARAMS",
    "DUMMY_SPLITS",
    "TEMPLATE_DIR",
    "check_builder_name",
    "render_dataset_folder",
    "write_dataset_folder",
]

# Package data (pyproject's package-data); by file path, which also holds in editable installs
# that expose `registry` as a namespace package, where importlib.resources cannot read it.
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates" / "dataset"
# Template (under TEMPLATE_DIR) -> file in the dataset folder ({leaf}: last part).
_FILES = {
    "builder.py.tmpl": "{leaf}" + layout.BUILDER_SUFFIX,
    "builder_test.py.tmpl": "{leaf}_dataset_builder_test.py",
    "README.md.tmpl": "README.md",
    "CITATIONS.bib.tmpl": "CITATIONS.bib",
    "TAGS.txt.tmpl": "TAGS.txt",
    "checksums.tsv.tmpl": "checksums.tsv",
    "dummy_data/data.csv.tmpl": "dummy_data/{leaf}.csv",
}
# The knobs a new dataset gets in params.yaml (the template builder's DEFAULT_PARAMS).
DEFAULT_PARAMS = {"raw_path": "dummy_data"}
# Split sizes that the template's dummy data builds to (its generated test asserts them).
DUMMY_SPLITS = {"train": 7, "test": 2}
_DEFAULT_DESCRIPTION = "TODO: one line saying what the dataset holds."


def render_dataset_folder(
    name: str, *, description: str | None = None, owner: str | None = None
) -> dict[str, str]:
    """Render the files of a new dataset folder, without writing anything.

    Args:
        name: The dataset name (not validated here; :func:`write_dataset_folder` does).
        description: One line saying what the dataset holds; a TODO if omitted.
        owner: The team or person to ask about it; a TODO if omitted.

    Returns:
        File contents by path relative to the dataset folder, e.g.
        ``{"ad_clicks_dataset_builder.py": "...", "README.md": "...", ...}``.
    """
    leaf = name.rsplit("/", 1)[-1]
    description = " ".join((description or "").split()) or _DEFAULT_DESCRIPTION
    owner = " ".join((owner or "").split())
    values = {
        "name": name,
        "leaf": leaf,
        "description": description,
        # The builder's docstring: escaped for a Python string and wrapped to the line length.
        "doc_description": textwrap.fill(
            description.replace("\\", "\\\\").replace('"', '\\"'),
            width=99,
            initial_indent=" " * (len(name) + 5),
            subsequent_indent="",
        ).lstrip(),
        "owner": owner or "TODO: the team or person to ask about it",
        "todo": f"TODO({owner})" if owner else "TODO",
        "test_path": f"{layout.dataset_dir(name)}/{leaf}_dataset_builder_test.py",
        "bibkey": re.sub(r"[^a-z0-9]+", "_", name) + str(datetime.date.today().year),
        "bib_name": _bibtex_escape(name),
        "bib_owner": "{" + _bibtex_escape(owner or "TODO") + "}",
        "year": str(datetime.date.today().year),
        "dummy_train": str(DUMMY_SPLITS["train"]),
        "dummy_test": str(DUMMY_SPLITS["test"]),
    }
    rendered = {}
    for template, target in _FILES.items():
        text = (TEMPLATE_DIR / template).read_text(encoding="utf-8")
        rendered[target.format(leaf=leaf)] = string.Template(text).substitute(values)
    return rendered


def _bibtex_escape(text: str) -> str:
    """Make ``text`` safe inside a BibTeX field: no braces of its own, LaTeX specials escaped."""
    text = text.replace("{", "").replace("}", "").replace("\\", "")
    return re.sub(r"([_&%$#])", r"\\\1", text)


def write_dataset_folder(
    root: Path, name: str, *, description: str | None = None, owner: str | None = None
) -> Path:
    """Write a ready-to-build dataset folder for ``name`` and add it to the pipeline.

    The caller has checked that the name is free (``Session.check_new_name``, as
    :func:`registry.datasets.new_dataset` does). The folder ``datasets/<name>/`` gets a TFDS
    builder (``<leaf>_dataset_builder.py``, class ``Builder``, version 1.0.0) whose Beam pipeline
    reads the CSV rows of ``raw_path`` (``dummy_data`` by default), cleans them and splits them by
    a stable hash; a card (``README.md``), ``CITATIONS.bib``, ``TAGS.txt``, ``checksums.tsv``,
    ``dummy_data/<leaf>.csv`` and a declarative test, ``<leaf>_dataset_builder_test.py``. The
    dataset is added to the ``build`` stage of ``dvc.yaml`` and to ``params.yaml``
    (``datasets.<name>``). The folder appears whole or not at all, and is removed again if
    registering it fails.

    Args:
        root: The registry work tree (the folder holding ``dvc.yaml`` and ``datasets/``).
        name: The new dataset's name, a path of lowercase segments grouped by product or task,
            such as ``products/product_a/ad_clicks``; its last segment names the builder module,
            so it must also be a Python identifier.
        description: One line saying what the dataset holds (the card's and the builder's first
            line); a TODO if omitted.
        owner: The team or person to ask about the dataset (the card's owner); a TODO if omitted.

    Returns:
        The new dataset folder, ``root/datasets/<name>``.

    Raises:
        InvalidNameError: If the last segment of ``name`` is not a Python identifier (``x/1abc``,
            ``x/ad-clicks``).
        ArtifactExistsError: If the folder appears while it is being written.

    Example:
        >>> folder = write_dataset_folder(Path("."), "products/product_a/ad_clicks", owner="ads")
        >>> sorted(p.name for p in folder.iterdir())  # doctest: +SKIP
        ['CITATIONS.bib', 'README.md', 'TAGS.txt', 'ad_clicks_dataset_builder.py',
         'ad_clicks_dataset_builder_test.py', 'checksums.tsv', 'dummy_data']
    """
    root = Path(root)
    check_builder_name(name)
    files = render_dataset_folder(name, description=description, owner=owner)

    target = root / layout.dataset_dir(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed into place, so no half-written folder is ever seen.
    staging = target.parent / f".{target.name}.new-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        try:
            os.rename(staging, target)
        except OSError as e:
            raise ArtifactExistsError(
                name,
                name,
                f"{layout.dataset_dir(name)}/ appeared while it was being written",
                kind="dataset",
            ) from e
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)

    from registry.build.dvcfiles import add_dataset, remove_dataset

    try:
        add_dataset(root, name, dict(DEFAULT_PARAMS))
    except BaseException:
        remove_dataset(root, name)
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def check_builder_name(name: str) -> None:
    """Raise unless the last part of dataset ``name`` can name its builder module.

    Raises:
        InvalidNameError: If it is not a Python identifier (``x/1abc``, ``x/ad-clicks``).
    """
    leaf = name.rsplit("/", 1)[-1]
    if not leaf.isidentifier():
        raise InvalidNameError(
            name,
            f"its last part {leaf!r} names the builder module ({leaf}{layout.BUILDER_SUFFIX}), "
            "so it must be a Python identifier: letters, digits and '_', not starting with a "
            f"digit (e.g. {_identifier_hint(leaf)!r})",
        )


def _identifier_hint(leaf: str) -> str:
    """A valid spelling close to ``leaf``, for the error message."""
    hint = re.sub(r"\W", "_", leaf)
    return hint if hint.isidentifier() else f"ds_{hint}"
