"""The lineage record in a release tag's message: its schema, how it is written and read.

The one home of that format, for every artifact kind. A release tag's message is a subject line,
then (for datasets) the release notes' first line, then one line ``lineage: {JSON object}``. The
object has a ``"schema"`` key (2 since datasets record one too and models record ``compute``;
model records written before had none, which reads as schema 1) and a ``"kind"`` (``model`` or
``dataset``). A reader ignores fields it does not know, so older clients read newer records, and
reads whatever an older record has, so newer clients read older ones; a message without the line
(a release made before lineage was recorded) is reported, never an error.

A version's reproductions (``registry datasets rebuild --record``, ``registry models reproduce
--record``) are appended to the lineage as a Git note on the tagged commit
(:data:`registry.repo.git.NOTES_REF`): one JSON object a line, ``date`` first, naming the tag it
reproduced (one commit may carry several releases). Lines are only ever added; the notes of two
clones merge by keeping every line once.

Optional fields read here: ``bump_check`` (a dataset release checked against its previous
release by :mod:`registry.semver`: ``against``, ``required``, ``smallest``, and ``override``
``{"reason", "by", "changes"}`` when a version that understates the change was released with
``--allow-understated-bump``; or ``against`` and ``skipped``, why the previous release could not
be compared); :func:`bump_override` is its one reader. A record without it (an
older release, or a first release) reads as no override. And ``mlflow_run`` (a model release
whose training run was logged to an HTTP(S) tracking server: ``{"tracking_uri",
"experiment_id", "run_id"}``, the server without credentials, from the note the run's logger
left, :func:`read_logged_run`); :func:`mlflow_run` is its one reader.

Example:
    >>> message = "Release m 1.0.0\\n\\n" + lineage_line({"kind": "model"})
    >>> parse_lineage(message)
    ({'kind': 'model', 'schema': 2}, None)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from registry import layout

__all__ = [
    "LINEAGE_MARK",
    "LINEAGE_SCHEMA",
    "bump_override",
    "last_reproduced",
    "lineage_line",
    "mlflow_run",
    "parse_lineage",
    "read_logged_run",
    "reproduction_line",
    "reproductions",
]

LINEAGE_MARK = "lineage: "
# 2 added ``schema``, models' ``compute`` and datasets' records (1: models only, no ``schema``).
LINEAGE_SCHEMA = 2


def lineage_line(record: dict[str, Any]) -> str:
    """The tag message's lineage line for ``record``, stamped with :data:`LINEAGE_SCHEMA`.

    Args:
        record: The release's lineage (JSON-serialisable; keys are sorted).

    Returns:
        ``lineage: {...}`` on one line.

    Example:
        >>> lineage_line({"kind": "dataset"})
        'lineage: {"kind": "dataset", "schema": 2}'
    """
    # default=str: anything YAML read as other than JSON's types (a date) is recorded as text.
    text = json.dumps({**record, "schema": LINEAGE_SCHEMA}, sort_keys=True, default=str)
    return f"{LINEAGE_MARK}{text}"


def parse_lineage(message: str) -> tuple[dict[str, Any] | None, str | None]:
    """The lineage record of a release's tag message, or ``None`` and why there is none.

    The one reader of that record. Records of every schema are read: before schema 2 a record
    had no ``schema`` field (and no ``compute``); a field a reader does not know is ignored, so
    older clients read newer records too.

    Args:
        message: The tag's whole message.

    Returns:
        ``(record, None)``, or ``(None, problem)`` where ``problem`` says that the message has no
        lineage line or that the line is not a JSON object.

    Example:
        >>> parse_lineage('Release m 1.0.0\\n\\nlineage: {"schema": 2}')
        ({'schema': 2}, None)
    """
    for line in message.splitlines():
        if line.startswith(LINEAGE_MARK):
            try:
                value = json.loads(line[len(LINEAGE_MARK) :])
            except ValueError as e:
                return None, f"its lineage line is not valid JSON ({e})"
            if not isinstance(value, dict):
                return None, f"its lineage line is JSON {type(value).__name__}, not an object"
            return value, None
    return None, "its message has no lineage line (released before lineage was recorded?)"


def reproduction_line(record: dict[str, Any]) -> str:
    """One line of the reproduction note: the record as JSON, ``date`` first (so that sorted
    lines, as a notes merge leaves them, are in date order), the rest sorted.

    Example:
        >>> reproduction_line({"tag": "a@v1.0.0", "equal": True, "date": "2026-01-02T03:04:05Z"})
        '{"date": "2026-01-02T03:04:05Z", "equal": true, "tag": "a@v1.0.0"}'
    """
    rest = {k: record[k] for k in sorted(record) if k != "date"}
    return json.dumps({"date": record.get("date", ""), **rest})


def reproductions(note: str, tag: str) -> list[dict[str, Any]]:
    """The reproduction records of release ``tag`` in a commit's note, oldest first.

    Lines that are not JSON objects (another tool's note) are skipped.

    Example:
        >>> note = reproduction_line({"tag": "a@v1.0.0", "date": "2026-01-02", "equal": True})
        >>> [r["equal"] for r in reproductions(note, "a@v1.0.0")]
        [True]
    """
    found = []
    for line in note.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("tag") == tag:
            found.append(value)
    return sorted(found, key=lambda r: str(r.get("date", "")))


def last_reproduced(note: str, tag: str) -> dict[str, Any] | None:
    """What ``info`` shows of the latest reproduction of ``tag`` (``None``: never recorded):
    ``{"date", "equal", "by"}`` and the whole record as ``record``.

    Example:
        >>> note = reproduction_line({"tag": "a@v1.0.0", "date": "2026-01-02", "equal": False,
        ...                           "by": "ada@lab.org"})
        >>> last_reproduced(note, "a@v1.0.0")["equal"]
        False
    """
    found = reproductions(note, tag)
    if not found:
        return None
    last = found[-1]
    return {
        "date": last.get("date"),
        "equal": bool(last.get("equal")),
        "by": last.get("by", ""),
        "record": last,
    }


def bump_override(record: dict[str, Any] | None) -> str | None:
    """The override of the checked semver bump that a release record holds, as one sentence
    (``None``: no override, or a record without ``bump_check``).

    Example:
        >>> check = {"against": "1.0.0", "required": "major", "smallest": "2.0.0",
        ...          "override": {"reason": "typo fix", "by": "a@lab.test"}}
        >>> print(bump_override({"bump_check": check}))  # doctest: +NORMALIZE_WHITESPACE
        understates a MAJOR change since 1.0.0 (smallest 2.0.0); released by a@lab.test
        anyway: typo fix
    """
    check = (record or {}).get("bump_check")
    if not isinstance(check, dict) or not isinstance(check.get("override"), dict):
        return None
    override = check["override"]
    by = f" by {override['by']}" if override.get("by") else ""
    return (
        f"understates a {str(check.get('required', '?')).upper()} change since "
        f"{check.get('against', '?')} (smallest {check.get('smallest', '?')}); released{by} "
        f"anyway: {override.get('reason', '')}"
    )


_MLFLOW_RUN_KEYS = ("tracking_uri", "experiment_id", "run_id")


def mlflow_run(record: dict[str, Any] | None) -> dict[str, str] | None:
    """The tracking server, experiment and run that logged a model release's training run
    (its record's ``mlflow_run``); ``None`` if the record has none (or a malformed one).

    Example:
        >>> mlflow_run({"mlflow_run": {"tracking_uri": "https://mlflow.lab", "run_id": "5d"}})
        {'tracking_uri': 'https://mlflow.lab', 'run_id': '5d'}
    """
    logged = (record or {}).get("mlflow_run")
    if not isinstance(logged, dict) or not logged.get("run_id") or not logged.get("tracking_uri"):
        return None
    return {k: str(logged[k]) for k in _MLFLOW_RUN_KEYS if logged.get(k)}


def read_logged_run(root: Path, uid: str | None) -> dict[str, str] | None:
    """What :mod:`registry.tracking` noted when it logged training run ``uid`` to an HTTP(S)
    server (``mlflow/logged/<uid>.json`` under the clone ``root``): a release's ``mlflow_run``.
    ``None`` if there is no such note (a card's own run id, a local store, not logged yet)."""
    if not uid:
        return None
    try:
        note = json.loads(layout.logged_run_file(root, uid).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return mlflow_run({"mlflow_run": note}) if isinstance(note, dict) else None
