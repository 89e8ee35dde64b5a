"""A warehouse dataset's extract: its reviewed SQL, run once into a snapshot that DVC tracks.

A dataset reads the lab's warehouse when ``params.yaml`` gives it a ``warehouse`` section::

    datasets:
      products/product_b/search_sessions:
        warehouse:
          query: query.sql                  # beside the builder; or  table: dataset.table
          sample: warehouse_sample.json     # the embedded default's tables (no account)
          params: {start_date: 2026-10-01}  # the query's @start_date
        raw_path: snapshot

The ``extract@NAME`` stage runs the query (:func:`extract`) and writes its rows to
``datasets/NAME/snapshot/`` as Parquet shards (:mod:`registry.build.snapshot`: the same rows give
the same bytes), the raw input that ``build@NAME`` reads with Beam. DVC records the snapshot's hash
in ``dvc.lock``, the release records it in its lineage, and a rebuild reads the snapshot from the
DVC remote: only an extract ever queries the warehouse.

Where the query runs is ``warehouse.project`` (and ``location``) in ``params.yaml``; left empty,
the embedded default starts a local BigQuery emulator, loads the dataset's sample into it, runs
the query there and stops it. ``BIGQUERY_EMULATOR_HOST`` (as Google's client reads it) sends the
query to an emulator of one's own instead, anonymously. Before a query runs, BigQuery's dry run
estimates what it scans; a query over ``registry.max_query_gb`` runs only when confirmed
(``--yes``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from registry import layout
from registry.build.dvcfiles import WAREHOUSE_KEY, dataset_params
from registry.build.snapshot import SnapshotInfo, write_snapshot
from registry.cloud.bigquery import Query, Warehouse, bind, estimate, fill_in, open_client, read
from registry.cloud.bq_emulator import DEFAULT_PROJECT, LOCAL_RETRY_S
from registry.config import read_params, registry_section
from registry.errors import ConfigError, ScanLimitError

__all__ = [
    "DEFAULT_MAX_QUERY_GB",
    "ExtractPlan",
    "Extracted",
    "WarehouseSource",
    "extract",
    "in_extract_stage",
    "plan_extract",
    "warehouse_source",
]

# What a query may scan without --yes (registry.max_query_gb), in GB (10**9 bytes).
DEFAULT_MAX_QUERY_GB = 100.0
# An emulator that the user runs (as Google's BigQuery client reads it): queried anonymously.
EMULATOR_HOST_VAR = "BIGQUERY_EMULATOR_HOST"


@dataclass(frozen=True)
class WarehouseSource:
    """A dataset's ``warehouse`` section: what it reads from the warehouse.

    Attributes:
        name: The dataset.
        query: The SQL file, relative to the dataset folder (``None`` for a table).
        table: ``dataset.table`` or ``project.dataset.table`` (``None`` for SQL).
        params: The query's named parameters' values.
        sample: The embedded default's sample tables, relative to the dataset folder.
    """

    name: str
    query: str | None
    table: str | None
    params: Mapping[str, Any] = field(default_factory=dict)
    sample: str | None = None


def warehouse_source(root: Path, name: str) -> WarehouseSource | None:
    """Dataset ``name``'s warehouse source from ``params.yaml``, or ``None`` if it has none.

    Raises:
        ConfigError: If the section is malformed: not a mapping, neither or both of ``query``
            and ``table``, ``params`` not a mapping, a path leading out of the dataset folder.
    """
    section = dataset_params(root, name).get(WAREHOUSE_KEY)
    if section is None:
        return None
    where = f"datasets.{name}.{WAREHOUSE_KEY} in params.yaml"
    if not isinstance(section, dict):
        raise ConfigError(f"{where} must be a mapping (query: query.sql, or table: ds.table)")
    query, table = section.get("query"), section.get("table")
    if bool(query) == bool(table):
        raise ConfigError(
            f"{where} needs exactly one of query (a SQL file beside the builder, e.g. "
            "query.sql) and table (dataset.table or project.dataset.table)"
        )
    params = section.get("params") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: params must be a mapping of the query's @parameters")
    unknown = sorted(set(section) - {"query", "table", "params", "sample"})
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: query, table, params, sample")
    for key in ("query", "sample"):
        value = section.get(key)
        if value and (Path(str(value)).is_absolute() or ".." in Path(str(value)).parts):
            raise ConfigError(f"{where}: {key} {value!r} must be a file in the dataset folder")
    return WarehouseSource(name, query and str(query), table and str(table), dict(params),
                           section.get("sample") and str(section["sample"]))


def _configured(root: Path) -> tuple[Warehouse | None, float]:
    """The configured warehouse (``None``: the embedded default) and the scan limit in GB."""
    params = read_params(root)
    section = params.get("warehouse") or {}
    if not isinstance(section, dict):
        raise ConfigError("warehouse in params.yaml must be a mapping (project, location)")
    limit = registry_section(params, "params.yaml").get("max_query_gb", DEFAULT_MAX_QUERY_GB)
    if limit is None:
        limit = DEFAULT_MAX_QUERY_GB
    if isinstance(limit, bool) or not isinstance(limit, int | float) or limit < 0:
        raise ConfigError(
            f"registry.max_query_gb in params.yaml must be a number of GB >= 0, not {limit!r}"
        )
    project, location = section.get("project"), section.get("location") or None
    emulator = os.environ.get(EMULATOR_HOST_VAR)
    if emulator:
        return Warehouse(
            str(project or DEFAULT_PROJECT), location, endpoint=emulator, retry_s=LOCAL_RETRY_S,
            description=f"the BigQuery emulator at {emulator} ({EMULATOR_HOST_VAR})",
        ), float(limit)
    if not project:
        return None, float(limit)
    return Warehouse(str(project), str(location) if location else None), float(limit)


@dataclass(frozen=True)
class ExtractPlan:
    """What an extract would run, and where (``registry datasets extract --dry-run``).

    Attributes:
        source: The dataset's warehouse section.
        query: The SQL (or table) with its bound parameters.
        sql: The SQL with the parameters filled in, as it runs (``None`` for a table).
        warehouse: Where it runs, in words.
        estimate: BigQuery's dry-run estimate of the bytes scanned.
        limit_gb: ``registry.max_query_gb``.
    """

    source: WarehouseSource
    query: Query
    sql: str | None
    warehouse: str
    estimate: int
    limit_gb: float

    @property
    def over_limit(self) -> bool:
        """Whether the query needs confirming (``--yes``)."""
        return self.estimate > self.limit_gb * 1e9


@dataclass(frozen=True)
class Extracted:
    """What :func:`extract` wrote.

    Attributes:
        plan: What ran.
        snapshot: The snapshot folder, relative to the registry root.
        info: Rows, files and bytes written.
        job_id: The BigQuery job (``None`` for a table read).
    """

    plan: ExtractPlan
    snapshot: str
    info: SnapshotInfo
    job_id: str | None


def _query(root: Path, source: WarehouseSource) -> Query:
    folder = root / layout.dataset_dir(source.name)
    if source.table is not None:
        return Query(table=source.table, where=f"table {source.table}")
    path = folder / str(source.query)
    where = f"{layout.dataset_dir(source.name)}/{source.query}"
    try:
        sql = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{where} does not exist; datasets.{source.name}.warehouse.query in params.yaml "
            "names it"
        ) from None
    return Query(sql, bind(sql, source.params, where), where=where)


@contextlib.contextmanager
def _warehouse(root: Path, source: WarehouseSource) -> Iterator[tuple[Warehouse, float]]:
    """The warehouse to query and the scan limit: the configured project, or a local emulator
    holding the dataset's sample tables for as long as the block runs."""
    configured, limit = _configured(root)
    if configured is not None:
        yield configured, limit
        return
    if not source.sample:
        raise ConfigError(
            f"warehouse.project in params.yaml is empty (the embedded default: a local "
            f"BigQuery emulator), and datasets.{source.name}.warehouse has no sample of "
            "tables to load into it; set warehouse.project to your Google Cloud project, or "
            "give the dataset a sample (sample: warehouse_sample.json)"
        )
    from registry.cloud.bq_emulator import BigQueryEmulator

    sample = root / layout.dataset_dir(source.name) / source.sample
    with BigQueryEmulator() as emulator:
        emulator.load(sample)
        local = replace(emulator.warehouse,
                        description=f"a local BigQuery emulator holding {source.sample}")
        yield local, limit


def _plan(source: WarehouseSource, query: Query, warehouse: Warehouse, limit: float,
          client: Any) -> ExtractPlan:
    sql = fill_in(query.sql, query.parameters or {}) if query.sql is not None else None
    return ExtractPlan(source, query, sql, warehouse.label, estimate(client, warehouse, query),
                       limit)


def _source(root: Path, name: str) -> WarehouseSource:
    source = warehouse_source(root, name)
    if source is None:
        raise ConfigError(
            f"dataset {name!r} reads no warehouse: give it a warehouse section in params.yaml "
            f"(datasets.{name}.warehouse: query: query.sql, or table: dataset.table)"
        )
    return source


def plan_extract(root: Path, name: str) -> ExtractPlan:
    """The query of dataset ``name`` with its parameters filled in, where it would run, and the
    dry run's estimate of what it scans; nothing is read.

    Raises:
        ConfigError: If the dataset has no warehouse section, or it is malformed, or the SQL uses
            a parameter that params.yaml does not give.
        TableNotFoundError, BadQueryError, WarehousePermissionError, WarehouseUnreachableError,
            CredentialsError: As BigQuery answers the dry run.
    """
    source = _source(root, name)
    query = _query(root, source)
    with _warehouse(root, source) as (warehouse, limit):
        return _plan(source, query, warehouse, limit, open_client(warehouse))


def extract(root: Path, name: str, *, yes: bool = False) -> Extracted:
    """Run dataset ``name``'s query (or read its table) into ``datasets/NAME/snapshot/``.

    The dry run comes first: a query that would scan more than ``registry.max_query_gb`` runs
    only with ``yes``. The rows are read a page at a time and written as Parquet shards whose
    bytes depend on the rows alone; the previous snapshot is replaced only once the new one is
    complete.

    Args:
        root: The registry work tree.
        name: A dataset with a warehouse section.
        yes: Run a query over the scan limit.

    Returns:
        What was written.

    Raises:
        ScanLimitError: If the query is over the limit and ``yes`` is false (nothing ran).
        ConfigError, TableNotFoundError, BadQueryError, WarehousePermissionError,
            WarehouseUnreachableError, CredentialsError: As :func:`plan_extract`.
    """
    source = _source(root, name)
    query = _query(root, source)
    with _warehouse(root, source) as (warehouse, limit):
        client = open_client(warehouse)
        plan = _plan(source, query, warehouse, limit, client)
        if plan.over_limit and not yes:
            raise ScanLimitError(name, plan.estimate, limit)
        rows = read(client, warehouse, query)
        out = root / layout.snapshot_dir(name)
        info = write_snapshot(rows.batches, rows.schema, rows.total_rows, out)
    return Extracted(plan, layout.snapshot_dir(name), info, rows.job_id)


def in_extract_stage(name: str) -> bool:
    """Whether this process is DVC running ``extract@NAME`` (``dvc repro``), which records
    the snapshot itself."""
    return os.environ.get("DVC_STAGE") == layout.extract_stage(name)
