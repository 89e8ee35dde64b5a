"""Scaffold a new dataset, as ``tfds new`` does: ``registry datasets new <group/.../name>``.

The new folder is a TFDS dataset folder that builds as it is, from its own dummy data: a builder
module with a Beam pipeline (read raw CSV rows, clean them, split by a stable hash), a card
(``README.md``), ``CITATIONS.bib``, ``TAGS.txt``, ``checksums.tsv``, ``dummy_data/`` and a
declarative test. It is added to the ``build`` stage of ``dvc.yaml`` and to ``params.yaml``, so
``registry datasets build <name>`` and ``tfds build datasets/<name>`` both work at once; TODO
comments show where the lab's own source, features and cleaning go.

``registry datasets new <name> --query`` scaffolds a warehouse dataset instead: a commented
``query.sql`` (GoogleSQL with a named parameter) and ``warehouse_sample.json`` (a tiny table that
the embedded default's local BigQuery emulator loads), a builder that reads the extract stage's
Parquet snapshot with Beam, and ``dummy_data/`` holding the query's output on the sample, written
as an extract writes it; the dataset joins the ``extract`` stage too, whose snapshot is its raw
input (:func:`registry.build.dvcfiles.set_warehouse_source`).

The files are rendered from the templates in ``registry/build/templates/dataset/`` (package data,
with ``string.Template`` placeholders such as ``${name}``); the warehouse variant's own ones are
in its ``query/`` folder.
"""

from __future__ import annotations

import datetime
import json
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
    "QUERY_DEFAULT_PARAMS",
    "QUERY_DUMMY_SPLITS",
    "QUERY_PARAMS",
    "TEMPLATE_DIR",
    "check_builder_name",
    "render_dataset_folder",
    "template_query_rows",
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
# The warehouse variant (--query): its own builder, card, query and sample; the rest shared.
_QUERY_FILE = "query.sql"
_SAMPLE_FILE = "warehouse_sample.json"
_QUERY_FILES = {
    **{t: f for t, f in _FILES.items() if not t.startswith(("builder.py", "README", "dummy"))},
    "query/builder.py.tmpl": "{leaf}" + layout.BUILDER_SUFFIX,
    "query/README.md.tmpl": "README.md",
    "query/query.sql.tmpl": _QUERY_FILE,
    "query/warehouse_sample.json.tmpl": _SAMPLE_FILE,
}
# The knobs a new dataset gets in params.yaml (the template builder's DEFAULT_PARAMS).
DEFAULT_PARAMS = {"raw_path": "dummy_data"}
QUERY_DEFAULT_PARAMS = {"raw_path": layout.SNAPSHOT_DIR}
# The template query's @parameters (datasets.<name>.warehouse.params).
QUERY_PARAMS = {"start_date": "2026-01-01"}
# Split sizes that the template's dummy data builds to (its generated test asserts them).
DUMMY_SPLITS = {"train": 7, "test": 2}
QUERY_DUMMY_SPLITS = {"train": 8, "test": 2}
_DUMMY_DOC = {
    False: "The 12 dummy rows hold one with no text, one with an unknown label and one id twice.",
    True: "dummy_data/ is query.sql's output on warehouse_sample.json, as an extract writes it:\n"
    "10 of its 13 reviews (one is older than start_date, two have no text).",
}
_DEFAULT_DESCRIPTION = "TODO: one line saying what the dataset holds."


def render_dataset_folder(
    name: str,
    *,
    description: str | None = None,
    owner: str | None = None,
    query: bool = False,
) -> dict[str, str]:
    """Render the text files of a new dataset folder, without writing anything.

    Args:
        name: The dataset name (not validated here; :func:`write_dataset_folder` does).
        description: One line saying what the dataset holds; a TODO if omitted.
        owner: The team or person to ask about it; a TODO if omitted.
        query: The warehouse variant: ``query.sql`` and ``warehouse_sample.json`` instead of a
            CSV file, and a builder that reads the extract's snapshot (its ``dummy_data/``
            Parquet file is written by :func:`write_dataset_folder`).

    Returns:
        File contents by path relative to the dataset folder, e.g.
        ``{"ad_clicks_dataset_builder.py": "...", "README.md": "...", ...}``.

    Example:
        >>> sorted(render_dataset_folder("products/demo/orders", query=True))[-3:]
        ['orders_dataset_builder_test.py', 'query.sql', 'warehouse_sample.json']
    """
    leaf = name.rsplit("/", 1)[-1]
    splits = QUERY_DUMMY_SPLITS if query else DUMMY_SPLITS
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
        "dummy_train": str(splits["train"]),
        "dummy_test": str(splits["test"]),
        "dummy_doc": _DUMMY_DOC[query],
    }
    rendered = {}
    for template, target in (_QUERY_FILES if query else _FILES).items():
        text = (TEMPLATE_DIR / template).read_text(encoding="utf-8")
        rendered[target.format(leaf=leaf)] = string.Template(text).substitute(values)
    return rendered


def _bibtex_escape(text: str) -> str:
    """Make ``text`` safe inside a BibTeX field: no braces of its own, LaTeX specials escaped."""
    text = text.replace("{", "").replace("}", "").replace("\\", "")
    return re.sub(r"([_&%$#])", r"\\\1", text)


def write_dataset_folder(
    root: Path,
    name: str,
    *,
    description: str | None = None,
    owner: str | None = None,
    query: bool = False,
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

    With ``query``, a warehouse dataset: ``query.sql`` (a commented GoogleSQL template reading
    one table since ``@start_date``) and ``warehouse_sample.json`` (that table, a few rows)
    instead of the CSV file; a builder that reads ``raw_path`` (``snapshot``, the extract's
    Parquet shards) with ``beam.io.ReadFromParquet``; and
    ``dummy_data/part-00000-of-00001.parquet``, the query's output on the sample, written by
    :func:`registry.build.snapshot.write_snapshot` as an extract writes it. The dataset also
    joins the ``extract`` stage, with its ``warehouse`` section in ``params.yaml``
    (:func:`registry.build.dvcfiles.set_warehouse_source`).

    Args:
        root: The registry work tree (the folder holding ``dvc.yaml`` and ``datasets/``).
        name: The new dataset's name, a path of lowercase segments grouped by product or task,
            such as ``products/product_a/ad_clicks``; its last segment names the builder module,
            so it must also be a Python identifier.
        description: One line saying what the dataset holds (the card's and the builder's first
            line); a TODO if omitted.
        owner: The team or person to ask about the dataset (the card's owner); a TODO if omitted.
        query: Scaffold a warehouse dataset (``registry datasets new NAME --query``).

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
    files = render_dataset_folder(name, description=description, owner=owner, query=query)

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
        if query:
            _write_dummy_snapshot(files[_SAMPLE_FILE], staging / "dummy_data")
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

    from registry.build.dvcfiles import add_dataset, remove_dataset, set_warehouse_source

    try:
        add_dataset(root, name, dict(QUERY_DEFAULT_PARAMS if query else DEFAULT_PARAMS))
        if query:
            set_warehouse_source(root, name, query=_QUERY_FILE, sample=_SAMPLE_FILE,
                                 params=dict(QUERY_PARAMS))
    except BaseException:
        remove_dataset(root, name)
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def template_query_rows(sample: str) -> list[dict[str, str]]:
    """The rows the template's ``query.sql`` returns on the template's ``warehouse_sample.json``
    (its text), with :data:`QUERY_PARAMS`: what its dummy snapshot holds.

    The query's rules, in Python: reviews since ``start_date`` whose text is not blank, labelled
    positive from 4 stars. ``tests/test_scaffold.py`` checks this against the query itself, run
    on a local BigQuery emulator loaded with the sample.

    Example:
        >>> sample = render_dataset_folder("x/y", query=True)["warehouse_sample.json"]
        >>> template_query_rows(sample)[0]
        {'id': 'r01', 'text': 'The new release is fast and easy to use.', 'label': 'positive'}
    """
    rows = json.loads(sample)["tables"]["shop.reviews"]["rows"]
    return [
        {"id": row["review_id"], "text": row["text"],
         "label": "positive" if row["stars"] >= 4 else "negative"}
        for row in rows
        if row["review_date"] >= QUERY_PARAMS["start_date"] and (row.get("text") or "").strip()
    ]


def _write_dummy_snapshot(sample: str, out: Path) -> None:
    """The template query's output on the sample, as an extract writes it (BigQuery's STRING
    columns are Arrow strings)."""
    import pyarrow as pa

    from registry.build.snapshot import write_snapshot

    rows = template_query_rows(sample)
    schema = pa.schema([(column, pa.string()) for column in ("id", "text", "label")])
    write_snapshot([pa.RecordBatch.from_pylist(rows, schema=schema)], schema, len(rows), out)


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
