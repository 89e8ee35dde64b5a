"""The lab's warehouse, BigQuery: where a dataset's extract stage runs its reviewed SQL.

A query is plain GoogleSQL with named parameters (``@start_date``), kept beside the builder
(``query.sql``) and bound from ``params.yaml``: :func:`bind` finds the parameters the SQL uses
(SQLGlot's BigQuery tokenizer, so an ``@name`` in a comment or a string is not one) and types
them from their YAML values. :func:`estimate` is BigQuery's dry run (the bytes a query would
scan); :func:`read` runs the query, or reads a table, and hands the rows back as Arrow record
batches a page at a time, so memory stays flat however many rows come back.

Every failure is one of the registry's errors (:func:`warehouse_errors`): a table or dataset
that does not exist, SQL that BigQuery refuses (its message, and the line of ``query.sql``), a
permission refused (the roles to ask for), the warehouse unreachable, no credentials.
Credentials are Application Default Credentials, found by :mod:`registry.cloud.credentials`;
nothing of them is written anywhere.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry.errors import (
    BadQueryError,
    ConfigError,
    MissingDependencyError,
    TableNotFoundError,
    WarehousePermissionError,
    WarehouseUnreachableError,
    first_line,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from google.cloud import bigquery

__all__ = [
    "Query",
    "Rows",
    "Warehouse",
    "bind",
    "estimate",
    "fill_in",
    "open_client",
    "read",
    "warehouse_errors",
]

# What BigQuery needs to run a query job and read what it returns.
QUERY_ROLES = "roles/bigquery.jobUser on the project and roles/bigquery.dataViewer on the tables"
# Rows a page of results (BigQuery also caps a page at 10 MB): what memory holds at a time.
# The client parses a page's JSON into Python objects first: 50,000 rows of five columns cost
# ~140 MiB there, 20,000 ~40 MiB, for ~1.5x the requests (benchmarks/bench_extract.py).
PAGE_ROWS = 20_000


@dataclass(frozen=True)
class Warehouse:
    """Where queries run.

    Attributes:
        project: The Google Cloud project query jobs run in (and are billed to); tables named
            ``dataset.table`` in the SQL are looked up there.
        location: BigQuery location of the jobs (``EU``, ``US``, ``europe-west4``); ``None``:
            BigQuery's default for the tables.
        endpoint: An emulator's REST endpoint (``http://127.0.0.1:PORT``), reached anonymously;
            ``None``: Google's API, with Application Default Credentials.
        description: How to name it in messages (default: the project).
        retry_s: How long a call is retried on errors BigQuery calls transient (a refused
            connection included) before it fails: Google's client waits 10 minutes by default.
    """

    project: str
    location: str | None = None
    endpoint: str | None = None
    description: str | None = None
    retry_s: float = 120.0

    @property
    def label(self) -> str:
        """``BigQuery project 'my-lab'``, or the emulator's description."""
        return self.description or f"BigQuery project {self.project!r}"


@dataclass(frozen=True)
class Query:
    """What to read: SQL with its parameters, or a whole table.

    Attributes:
        sql: GoogleSQL text (``None`` for a table).
        parameters: The named parameters' values, by name (only those the SQL uses).
        table: ``dataset.table`` or ``project.dataset.table`` (``None`` for SQL).
        where: How to name the query in messages, e.g. ``datasets/.../query.sql``.
    """

    sql: str | None = None
    parameters: Mapping[str, Any] | None = None
    table: str | None = None
    where: str = "the query"


@dataclass
class Rows:
    """The rows of a query or table: their Arrow schema, count, and batches a page at a time.

    Attributes:
        schema: The columns, as BigQuery's client maps them to Arrow.
        total_rows: How many rows :attr:`batches` yields.
        batches: The rows, a page (at most :data:`PAGE_ROWS`) at a time; iterate once.
        job_id: The query job's id (``None`` for a table read).
        bytes_processed: What the query scanned, as BigQuery reports it (``None`` if unknown).
    """

    schema: pa.Schema
    total_rows: int
    batches: Iterator[pa.RecordBatch]
    job_id: str | None = None
    bytes_processed: int | None = None


def _bigquery() -> Any:
    try:
        from google.cloud import bigquery
    except ImportError as e:  # pragma: no cover - a dependency of the registry
        raise MissingDependencyError("google.cloud.bigquery", "'lab-registry'") from e
    return bigquery


def open_client(warehouse: Warehouse) -> bigquery.Client:
    """A BigQuery client for ``warehouse``: anonymous to an emulator, else with Application
    Default Credentials (found without waiting on a metadata server).

    Raises:
        CredentialsError: If no credentials are configured for a real project.
    """
    bigquery = _bigquery()
    if warehouse.endpoint:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        return bigquery.Client(
            project=warehouse.project,
            location=warehouse.location,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=warehouse.endpoint),
        )
    from registry.cloud.credentials import find_credentials

    credentials = find_credentials(f"BigQuery in project {warehouse.project!r}")
    return bigquery.Client(
        project=warehouse.project, location=warehouse.location, credentials=credentials
    )


# -- parameters ---------------------------------------------------------------------------------


def _parameter_tokens(sql: str) -> list[tuple[str, int, int]]:
    """Each named parameter of ``sql``: ``(name, start, end)``, end exclusive, in order.

    SQLGlot's BigQuery tokenizer skips comments and strings; ``@@system_variable`` is not one.
    """
    from sqlglot.dialects.bigquery import BigQuery
    from sqlglot.errors import TokenError
    from sqlglot.tokens import TokenType

    try:
        tokens = BigQuery().tokenize(sql)
    except TokenError as e:
        raise BadQueryError(f"cannot read the SQL: {first_line(e)}") from e
    found = []
    for before, at, name in zip([None, *tokens], tokens, [*tokens[1:], None], strict=False):
        if at.token_type != TokenType.PARAMETER or name is None or name.start != at.end + 1:
            continue
        if before is not None and before.token_type == TokenType.PARAMETER \
                and before.end + 1 == at.start:
            continue  # @@system_variable
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name.text):
            found.append((name.text, at.start, name.end + 1))
    return found


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})"
)


def _type_of(value: Any, name: str, where: str) -> str:
    """BigQuery's type for a parameter's YAML value: text in ISO form is a DATE
    (``"2026-10-01"``) or a TIMESTAMP (``"2026-10-01T08:00:00Z"``), the rest as YAML typed it.
    """
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, decimal.Decimal):
        return "NUMERIC"
    if isinstance(value, str):
        # DVC takes no YAML dates in params.yaml: a date or a timestamp is written as text.
        if _ISO_DATE.fullmatch(value):
            return "DATE"
        if _ISO_TIMESTAMP.fullmatch(value):
            return "TIMESTAMP"
        return "STRING"
    if isinstance(value, dt.datetime):
        return "TIMESTAMP" if value.tzinfo is not None else "DATETIME"
    if isinstance(value, dt.date):
        return "DATE"
    raise ConfigError(
        f"parameter @{name} of {where} is {value!r}: a parameter is a number, true/false, text, "
        "a date ('2026-10-01'), a timestamp ('2026-10-01T08:00:00Z'), or a list of one of those"
    )


def bind(sql: str, values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The named parameters ``sql`` uses, with their values from ``values``.

    Args:
        sql: GoogleSQL text.
        values: Parameter values by name (``datasets.<name>.warehouse.params`` in params.yaml);
            those the SQL does not use are left out.
        where: The query and where its values are set, for messages.

    Returns:
        ``{name: value}`` for every ``@name`` in the SQL, in order of first use.

    Raises:
        ConfigError: If the SQL uses a parameter that has no value, or a value has no BigQuery
            type (a mapping, an empty list, a list of mixed types).

    Example:
        >>> bind("SELECT * FROM t WHERE d >= @start_date -- not @this", {"start_date": 1}, "q")
        {'start_date': 1}
    """
    bound: dict[str, Any] = {}
    missing = []
    for name, _, _ in _parameter_tokens(sql):
        if name in bound or name in missing:
            continue
        if name not in values or values[name] is None:
            missing.append(name)
            continue
        value = values[name]
        items = value if isinstance(value, list) else [value]
        types = {_type_of(item, name, where) for item in items}
        if not items or len(types) != 1:
            raise ConfigError(
                f"parameter @{name} of {where} is {value!r}: a list parameter needs at least "
                "one value, all of one type"
            )
        bound[name] = value
    if missing:
        raise ConfigError(
            f"{where} uses " + ", ".join(f"@{m}" for m in missing) + " but params.yaml gives "
            "no value for " + ("it" if len(missing) == 1 else "them") + ": set "
            + ", ".join(missing) + " under the dataset's warehouse.params"
        )
    return bound


def _query_parameters(parameters: Mapping[str, Any]) -> list[Any]:
    bigquery = _bigquery()
    out: list[Any] = []
    for name, value in parameters.items():
        if isinstance(value, list):
            kind = _type_of(value[0], name, "")
            out.append(bigquery.ArrayQueryParameter(name, kind, [_typed(v, kind) for v in value]))
        else:
            kind = _type_of(value, name, "")
            out.append(bigquery.ScalarQueryParameter(name, kind, _typed(value, kind)))
    return out


def _typed(value: Any, kind: str) -> Any:
    """A DATE or TIMESTAMP written as text, as the Python value BigQuery's client sends."""
    if isinstance(value, str) and kind == "DATE":
        return dt.date.fromisoformat(value)
    if isinstance(value, str) and kind == "TIMESTAMP":
        return dt.datetime.fromisoformat(value.replace(" ", "T"))
    return value


def _literal(value: Any) -> str:
    """A GoogleSQL literal of a parameter's value."""
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | decimal.Decimal):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, dt.datetime):
        kind = "TIMESTAMP" if value.tzinfo is not None else "DATETIME"
        return f"{kind} '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    kind = _type_of(value, "", "") if isinstance(value, str) else "STRING"
    return f"'{text}'" if kind == "STRING" else f"{kind} '{text}'"


def fill_in(sql: str, parameters: Mapping[str, Any]) -> str:
    """``sql`` with each bound ``@name`` replaced by its value as a literal: the query as it
    runs, for a reader (``registry datasets extract --dry-run``); comments are kept.

    Example:
        >>> import datetime
        >>> fill_in("WHERE d >= @start -- @start", {"start": datetime.date(2026, 10, 1)})
        "WHERE d >= DATE '2026-10-01' -- @start"
    """
    out, last = [], 0
    for name, start, end in _parameter_tokens(sql):
        if name in parameters:
            out += [sql[last:start], _literal(parameters[name])]
            last = end
    return "".join([*out, sql[last:]])


# -- running ------------------------------------------------------------------------------------


def _retry(warehouse: Warehouse) -> Any:
    from google.cloud.bigquery.retry import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(warehouse.retry_s)


def _job_retry(warehouse: Warehouse) -> Any:
    from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY

    return DEFAULT_JOB_RETRY.with_timeout(warehouse.retry_s)


def estimate(client: bigquery.Client, warehouse: Warehouse, query: Query) -> int:
    """The bytes ``query`` would scan: BigQuery's dry run of the SQL (nothing runs, nothing is
    billed), or a table's size.

    Raises:
        TableNotFoundError, BadQueryError, WarehousePermissionError, WarehouseUnreachableError:
            As :func:`warehouse_errors` says.
    """
    bigquery = _bigquery()
    with warehouse_errors(query, client):
        if query.table is not None:
            return int(client.get_table(query.table, retry=_retry(warehouse)).num_bytes or 0)
        config = bigquery.QueryJobConfig(
            dry_run=True,
            use_query_cache=False,
            query_parameters=_query_parameters(query.parameters or {}),
        )
        job = client.query(str(query.sql), job_config=config, api_method="QUERY",
                           retry=_retry(warehouse), job_retry=_job_retry(warehouse))
        return int(job.total_bytes_processed or 0)


def read(
    client: bigquery.Client, warehouse: Warehouse, query: Query, page_rows: int = PAGE_ROWS
) -> Rows:
    """Run ``query`` (or list its table's rows) in ``warehouse`` and return the rows, paged as
    Arrow batches.

    The query runs once; the result is read a page at a time through BigQuery's REST API, so
    memory holds one page, whatever the result's size.

    Raises:
        TableNotFoundError, BadQueryError, WarehousePermissionError, WarehouseUnreachableError:
            As :func:`warehouse_errors` says (reading the pages too).
    """
    bigquery = _bigquery()
    with warehouse_errors(query, client):
        if query.table is not None:
            table = client.get_table(query.table, retry=_retry(warehouse))
            result = client.list_rows(table, page_size=page_rows, retry=_retry(warehouse))
            job_id, scanned = None, None
        else:
            config = bigquery.QueryJobConfig(
                query_parameters=_query_parameters(query.parameters or {})
            )
            job = client.query(str(query.sql), job_config=config, retry=_retry(warehouse),
                               job_retry=_job_retry(warehouse))
            result = job.result(page_size=page_rows, retry=_retry(warehouse),
                                job_retry=_job_retry(warehouse))
            job_id, scanned = job.job_id, job.total_bytes_processed
        batches = result.to_arrow_iterable(bqstorage_client=None)
        first = next(batches, None)
        # The schema of an empty result comes from BigQuery's, as the client maps it.
        schema = first.schema if first is not None else result.to_arrow(
            create_bqstorage_client=False).schema
    return Rows(schema, int(result.total_rows or 0), _pages(first, batches, query, client),
                job_id, int(scanned) if scanned is not None else None)


def _pages(
    first: pa.RecordBatch | None, rest: Iterator[pa.RecordBatch], query: Query, client: Any
) -> Iterator[pa.RecordBatch]:
    if first is None:
        return
    yield first
    with warehouse_errors(query, client):
        yield from rest


@contextlib.contextmanager
def warehouse_errors(query: Query, client: Any) -> Iterator[None]:
    """Turn what BigQuery's client raises into the registry's errors, each saying what to do.

    Raises:
        TableNotFoundError: A table or dataset (or project) the query names does not exist.
        BadQueryError: BigQuery refused the SQL: its message, and the line of the query file.
        WarehousePermissionError: 403 access denied: the roles to ask for.
        WarehouseUnreachableError: The endpoint does not answer, or BigQuery is unavailable.
        CredentialsError: Google refused the credentials (401).
    """
    from google.api_core import exceptions as gexc

    project = getattr(client, "project", "?")
    try:
        yield
    except gexc.NotFound as e:
        raise TableNotFoundError(_bq_message(e), query.where, project) from e
    except gexc.Forbidden as e:
        if _reason(e) in {"quotaExceeded", "rateLimitExceeded", "billingNotEnabled"}:
            raise WarehouseUnreachableError(
                f"BigQuery refused {query.where} in project {project!r}: {_bq_message(e)}; "
                "wait, or ask the project's owner"
            ) from e
        raise WarehousePermissionError(
            f"BigQuery refused {query.where} in project {project!r}: {_bq_message(e)}; ask "
            f"for {QUERY_ROLES} (for the identity of `gcloud auth application-default login` "
            "or GOOGLE_APPLICATION_CREDENTIALS)"
        ) from e
    except gexc.Unauthorized as e:
        from registry.cloud.credentials import credentials_help
        from registry.errors import CredentialsError

        raise CredentialsError(
            f"BigQuery did not accept the credentials ({_bq_message(e)}). "
            + credentials_help(f"BigQuery in project {project!r}")
        ) from e
    except gexc.BadRequest as e:
        raise BadQueryError(_located(_bq_message(e), query)) from e
    except (gexc.ServerError, gexc.TooManyRequests) as e:
        raise WarehouseUnreachableError(
            f"BigQuery could not run {query.where} in project {project!r}: {_bq_message(e)}; "
            "try again later"
        ) from e
    except gexc.RetryError as e:
        raise WarehouseUnreachableError(
            f"the warehouse at {_endpoint(client)} cannot be reached ({_cause(e)}); check the "
            "network, or warehouse.project in params.yaml"
        ) from e
    except (OSError, _requests_error()) as e:
        raise WarehouseUnreachableError(
            f"the warehouse at {_endpoint(client)} cannot be reached ({first_line(e)}); check "
            "the network, or warehouse.project in params.yaml"
        ) from e


def _cause(error: Any) -> str:
    """What a retried call last failed with, in a few words."""
    cause = getattr(error, "cause", None) or error
    text = first_line(cause)
    refused = re.search(r"\[Errno \d+\] [^\"')]+", text)
    return refused.group(0) if refused else text


def _requests_error() -> type[Exception]:
    import requests

    return requests.exceptions.RequestException


def _endpoint(client: Any) -> str:
    connection = getattr(client, "_connection", None)
    return str(getattr(connection, "API_BASE_URL", None) or "bigquery.googleapis.com")


def _reason(error: Any) -> str | None:
    errors = getattr(error, "errors", None) or []
    return errors[0].get("reason") if errors and isinstance(errors[0], dict) else None


def _bq_message(error: Any) -> str:
    """BigQuery's own message (the first error's), without the client's request line."""
    errors = getattr(error, "errors", None) or []
    if errors and isinstance(errors[0], dict) and errors[0].get("message"):
        return " ".join(str(errors[0]["message"]).split())
    return first_line(error)


def _located(message: str, query: Query) -> str:
    """BigQuery's message, with the line of the query it points at (``at [L:C]``)."""
    at = re.search(r"at \[(\d+):(\d+)\]", message)
    if query.sql is None or at is None:
        return f"{query.where}: {message}"
    line, column = int(at.group(1)), int(at.group(2))
    lines = query.sql.splitlines()
    text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    shown = f": {text}" if text else ""
    return f"{query.where}, line {line}, column {column}{shown} -- {message}"

