"""products/product_b/search_sessions: product B's site-search sessions, from the warehouse.

The rows come from the lab's warehouse through ``query.sql`` (beside this file): the extract
stage runs it once and writes its result as a snapshot (Parquet files in ``snapshot/``, tracked
by DVC), and this builder reads that snapshot with Beam. It never queries the warehouse, so a
version rebuilds exactly from its snapshot even after the tables change.

Who is a real user, what a session is and when it succeeds are decided in ``query.sql``, whose
comments say why. The builder only shapes each session (one snapshot row) into features and
splits the sessions train/test by a stable hash of the visitor, so that a model is tested on
visitors it never saw.

Every function the pipeline runs is at module level: Beam pickles this module by value to send
them to its workers.
"""

from __future__ import annotations

import hashlib
from datetime import UTC
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import tensorflow_datasets as tfds

_HERE = Path(__file__).resolve().parent
NAME = "products/product_b/search_sessions"

# The query's output columns that the builder reads (a snapshot may hold more).
COLUMNS = (
    "session_id",
    "visitor_id",
    "start_time",
    "country",
    "device",
    "num_searches",
    "num_zero_results",
    "num_clicks",
    "duration_seconds",
    "queries",
    "success",
)
DEVICES = ("desktop", "mobile", "tablet", "unknown")


def is_test(visitor_id: str, test_percent: int) -> bool:
    """Whether a visitor's sessions belong to the test split: a stable hash of the visitor id.

    Example:
        >>> is_test("v-ana", 20), is_test("v-ben", 20)
        (True, False)
    """
    digest = hashlib.md5(visitor_id.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:4], "big") % 100 < test_percent


def _to_example(row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A snapshot row (one session, as Beam's Parquet reader gives it) -> ``(session_id, example)``.

    Raises:
        ValueError: If the row breaks query.sql's contract (an unknown device, a missing value).
    """
    session_id = row["session_id"]
    missing = sorted(key for key in COLUMNS if row[key] is None)
    if missing:
        raise ValueError(f"{NAME}: session {session_id!r} has no value for {missing}")
    if row["device"] not in DEVICES:
        raise ValueError(
            f"{NAME}: session {session_id!r} has device {row['device']!r}, not one of "
            f"{list(DEVICES)} (query.sql maps the others to 'unknown')"
        )
    start = row["start_time"]
    if start.tzinfo is None:  # Parquet TIMESTAMP columns are UTC
        start = start.replace(tzinfo=UTC)
    start = start.astimezone(UTC)
    return session_id, {
        "session_id": session_id,
        "visitor_id": row["visitor_id"],
        "start_time": int(start.timestamp()),
        "hour": start.hour,
        "day_of_week": start.weekday(),
        "country": row["country"],
        "device": row["device"],
        "queries": list(row["queries"]),
        "num_searches": row["num_searches"],
        "num_zero_results": row["num_zero_results"],
        "num_clicks": row["num_clicks"],
        "duration_seconds": row["duration_seconds"],
        "success": int(row["success"]),
    }


def _split_index(keyed: tuple[str, dict[str, Any]], num_partitions: int, test_percent: int) -> int:
    """Partition function: 0 = train, 1 = test, by the session's visitor."""
    return int(is_test(keyed[1]["visitor_id"], test_percent))


def _snapshot_files(folder: str) -> list[str]:
    """The snapshot's Parquet files, checked to hold every column the builder reads.

    ``folder`` is local or on a Beam filesystem (``gs://``). Runs in the launching process, so
    that a missing or stale snapshot fails before the pipeline starts.

    Raises:
        FileNotFoundError: If the folder holds no ``*.parquet`` file.
        ValueError: If a file lacks some of :data:`COLUMNS`.
    """
    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    files = sorted(m.path for m in FileSystems.match([f"{folder}/*.parquet"])[0].metadata_list)
    if not files:
        raise FileNotFoundError(
            f"{folder} holds no warehouse snapshot (*.parquet): run "
            f"`registry datasets extract {NAME}` (or `dvc pull` for the released one)"
        )
    for path in files:
        with FileSystems.open(path) as f:
            names = set(pq.read_schema(f).names)
        missing = [column for column in COLUMNS if column not in names]
        if missing:
            raise ValueError(
                f"{path} lacks the columns {missing}: the snapshot is not query.sql's output; "
                f"re-run `registry datasets extract {NAME} --refresh`"
            )
    return files


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for products/product_b/search_sessions."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "Initial release: October 2026's search sessions of real users (query.sql), "
        "labelled by a click on the last search; 80/20 split by a hash of the visitor.",
    }
    # Examples are matched by session id when two versions are compared (`datasets diff`).
    KEY_FEATURE = "session_id"
    # Knobs that params.yaml (datasets.products/product_b/search_sessions) may override. The
    # query's own parameters (`warehouse.params` there) belong to the extract stage.
    DEFAULT_PARAMS: ClassVar[dict[str, Any]] = {
        # Folder of the warehouse snapshot (query.sql's result as Parquet files), absolute,
        # relative to this folder, or gs://.
        "raw_path": "snapshot",
        # Share of visitors whose sessions go to the test split, 0..100.
        "test_percent": 20,
    }

    def __init__(self, *, params: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.params = {**self.DEFAULT_PARAMS, **(params or {})}
        unknown = sorted(set(self.params) - set(self.DEFAULT_PARAMS))
        if unknown:
            raise ValueError(
                f"unknown params {unknown} for {NAME}; known: {sorted(self.DEFAULT_PARAMS)} "
                "(the query's parameters go under `warehouse: params:`)"
            )
        percent = self.params["test_percent"]
        if not isinstance(percent, int) or not 0 <= percent <= 100:
            raise ValueError(f"test_percent must be an integer in 0..100, not {percent!r}")
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        features = tfds.features.FeaturesDict(
            {
                "session_id": tfds.features.Text(
                    doc="visitor_id-YYYYMMDDTHHMMSS of the first search (UTC)."
                ),
                "visitor_id": tfds.features.Text(doc="Cookie or account id."),
                "start_time": tfds.features.Scalar(
                    np.int64, doc="First search, Unix seconds (UTC)."
                ),
                "hour": tfds.features.Scalar(np.int32, doc="Hour of the first search (UTC)."),
                "day_of_week": tfds.features.Scalar(np.int32, doc="0 = Monday .. 6 = Sunday."),
                "country": tfds.features.Text(doc="ISO country code, or 'unknown'."),
                "device": tfds.features.ClassLabel(names=DEVICES, doc="Of the first search."),
                "queries": tfds.features.Sequence(
                    tfds.features.Text(), doc="The queries in order, lower-cased."
                ),
                "num_searches": tfds.features.Scalar(np.int32, doc="Searches in the session."),
                "num_zero_results": tfds.features.Scalar(
                    np.int32, doc="Searches that found nothing."
                ),
                "num_clicks": tfds.features.Scalar(
                    np.int32,
                    doc="Searches with a click on a result (not an input: it gives "
                    "the label away).",
                ),
                "duration_seconds": tfds.features.Scalar(
                    np.int32, doc="First to last search (not an input: measured after them)."
                ),
                "success": tfds.features.ClassLabel(
                    names=("no", "yes"), doc="The label: the last search got a click."
                ),
            }
        )
        inputs = {
            key: key
            for key in features
            if key
            not in (
                "session_id",
                "visitor_id",
                "start_time",
                "num_clicks",
                "duration_seconds",
                "success",
            )
        }
        return self.dataset_info_from_configs(
            features=features,
            supervised_keys=(inputs, "success"),
            homepage="https://example.com/product-b/search",
        )

    def _snapshot_folder(self) -> str:
        """The snapshot's folder: a local path (relative to this folder) or a ``gs://`` URL."""
        raw = str(self.params["raw_path"]).rstrip("/")
        if "://" in raw:
            return raw  # read through Beam's filesystems (gs:// with Application Default Creds)
        path = Path(raw) if Path(raw).is_absolute() else _HERE / raw
        if not path.is_dir():
            raise FileNotFoundError(
                f"raw_path {raw!r}: no snapshot folder at {path}; run "
                f"`registry datasets extract {NAME}` (or `dvc pull`)"
            )
        return str(path)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager, pipeline: Any):
        # One pipeline for both splits: read and shape once, then partition.
        beam = tfds.core.lazy_imports.apache_beam
        examples = pipeline | "Examples" >> self._generate_examples(self._snapshot_folder())
        train, test = examples | "Split" >> beam.Partition(
            _split_index, 2, self.params["test_percent"]
        )
        return {"train": train, "test": test}

    def _generate_examples(self, folder: str):
        """Every session of the snapshot at ``folder``, keyed by session id (a Beam transform)."""
        beam = tfds.core.lazy_imports.apache_beam
        _snapshot_files(folder)  # fails here, before the pipeline runs

        @beam.ptransform_fn
        def examples(root):
            return (
                root
                | "ReadSnapshot"
                >> beam.io.ReadFromParquet(f"{folder}/*.parquet", columns=list(COLUMNS))
                | "ToExamples" >> beam.Map(_to_example)
            )

        return examples()
