"""A real BigQuery API server on 127.0.0.1, for the embedded default and the tests: bqemulator
(DuckDB + SQLGlot behind BigQuery's REST API), in a child process.

The embedded default has no warehouse account: a dataset's extract stage starts one of these,
loads the dataset's sample tables into it (:meth:`BigQueryEmulator.load`, from a JSON file kept
in the repository), runs the dataset's query against it, and stops it. A lab points the same
stage at its real BigQuery project by setting ``warehouse.project`` in ``params.yaml``.

Two things are handled in the child: bqemulator downloads DuckDB's ``spatial`` extension when it
starts (impossible offline, and GEOGRAPHY is not needed here), so that load is skipped; and its
dry runs report 0 bytes (it has no cost model), so ``dry_run_bytes`` lets a test say what they
report, to exercise the scan limit.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from registry.cloud.bigquery import Query, Warehouse, open_client, warehouse_errors
from registry.errors import ConfigError, MissingDependencyError, WarehouseUnreachableError

__all__ = ["DEFAULT_PROJECT", "EMULATOR_EXTRA", "LOCAL_RETRY_S", "BigQueryEmulator"]

EMULATOR_EXTRA = "-c constraints.txt -e '.[local-warehouse]'"
# The project id an emulator answers for by default.
DEFAULT_PROJECT = "lab-warehouse"
# Seconds to wait for the child to listen (it starts in about a second).
START_TIMEOUT_S = 60.0
# A call to it is retried this long: on this machine, a refused connection means it is gone.
LOCAL_RETRY_S = 3.0


class BigQueryEmulator:
    """A BigQuery emulator (bqemulator) on 127.0.0.1, in a child process, in memory.

    Args:
        project: The project id it answers for (queries' default project).
        dry_run_bytes: What its dry runs report as bytes processed (default 0, its own).

    Example:
        >>> with BigQueryEmulator() as bq:  # doctest: +SKIP
        ...     bq.load(Path("datasets/products/product_b/search_sessions/warehouse_sample.json"))
        ...     client = open_client(bq.warehouse)
        {'product_b.search_events': 3112, 'product_b.visitors': 400}
    """

    def __init__(self, project: str = DEFAULT_PROJECT, *, dry_run_bytes: int | None = None):
        self.project = project
        self.dry_run_bytes = dry_run_bytes
        self.url: str | None = None
        self._process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    @property
    def warehouse(self) -> Warehouse:
        """Where queries to it go."""
        if self.url is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return Warehouse(self.project, endpoint=self.url, retry_s=LOCAL_RETRY_S,
                         description=f"the local BigQuery emulator ({self.url})")

    def start(self) -> BigQueryEmulator:
        """Start the server and wait until it listens.

        Raises:
            MissingDependencyError: If bqemulator is not installed.
            WarehouseUnreachableError: If it does not start (the message quotes its log).
        """
        if importlib.util.find_spec("bqemulator") is None:
            raise MissingDependencyError("bqemulator", EMULATOR_EXTRA)
        # Its log, quoted if it fails to start; closed by stop().
        self._log = tempfile.TemporaryFile("w+", prefix="bqemulator-", suffix=".log")  # noqa: SIM115
        command = [sys.executable, "-m", __name__, self.project]
        if self.dry_run_bytes is not None:
            command.append(str(self.dry_run_bytes))
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        line = _read_line(self._process, START_TIMEOUT_S)
        try:
            self.url = json.loads(line)["rest"]
        except (ValueError, KeyError, TypeError):
            log = self._log_tail()
            self.stop()
            raise WarehouseUnreachableError(
                f"the local BigQuery emulator did not start: {log or 'no output'}"
            ) from None
        return self

    def stop(self) -> None:
        """Stop the server (closing its stdin ends it; then it is terminated). Idempotent."""
        process, self._process, self.url = self._process, None, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        lines = [line.strip() for line in self._log.read().splitlines() if line.strip()]
        return lines[-1][:500] if lines else ""

    def __enter__(self) -> BigQueryEmulator:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def load(self, sample: Path) -> dict[str, int]:
        """Create the tables of a sample file and load its rows; return rows by table.

        The file is JSON: ``{"tables": {"DATASET.TABLE": {"description": ..., "schema": [BigQuery
        JSON schema fields], "rows": [{...}, ...]}}}`` (rows as BigQuery's JSON: timestamps
        ``"2026-10-01T08:15:00Z"``, dates ``"2026-10-01"``).

        Raises:
            ConfigError: If the file is missing, not JSON, or not in that shape.
        """
        from google.cloud import bigquery

        tables = _read_sample(sample)
        client = open_client(self.warehouse)
        loaded = {}
        with warehouse_errors(Query(where=str(sample)), client):
            for name, spec in tables.items():
                dataset = name.rsplit(".", 1)[0]
                client.create_dataset(dataset, exists_ok=True)
                schema = [bigquery.SchemaField.from_api_repr(f) for f in spec["schema"]]
                table = bigquery.Table(f"{self.project}.{name}", schema=schema)
                table.description = spec.get("description")
                client.create_table(table, exists_ok=True)
                rows = spec.get("rows") or []
                if rows:
                    data = "\n".join(json.dumps(row) for row in rows).encode()
                    config = bigquery.LoadJobConfig(
                        schema=schema, source_format="NEWLINE_DELIMITED_JSON"
                    )
                    client.load_table_from_file(io.BytesIO(data), table, job_config=config).result()
                loaded[name] = len(rows)
        return loaded


def _read_sample(sample: Path) -> dict[str, dict[str, Any]]:
    """The ``tables`` of a sample file, checked."""
    try:
        data = json.loads(sample.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"the warehouse sample {sample} does not exist") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read the warehouse sample {sample}: {e}") from e
    tables = data.get("tables") if isinstance(data, dict) else None
    bad = [
        name for name, spec in (tables or {}).items()
        if name.count(".") != 1 or not isinstance(spec, dict)
        or not isinstance(spec.get("schema"), list) or not isinstance(spec.get("rows", []), list)
    ]
    if not isinstance(tables, dict) or not tables or bad:
        raise ConfigError(
            f"the warehouse sample {sample} must hold {{\"tables\": {{\"DATASET.TABLE\": "
            "{\"schema\": [...], \"rows\": [...]}}}}"
            + (f"; not so: {', '.join(bad)}" if bad else "")
        )
    return tables


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The child's first line of output, or ``""`` if it ends or says nothing in time."""
    result: list[str] = []
    reader = threading.Thread(
        target=lambda: result.append(process.stdout.readline() if process.stdout else ""),
        daemon=True,
    )
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""


def _serve(project: str, dry_run_bytes: int | None) -> None:
    """The child: run bqemulator until stdin closes; print its endpoint as one JSON line."""
    import asyncio

    # bqemulator logs to stdout: the endpoint line goes to the original stdout, the rest to
    # stderr (the parent's log file).
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    from bqemulator.storage import engine

    # It loads DuckDB's spatial extension from the network when it starts; GEOGRAPHY is not
    # needed here, and offline the download cannot work.
    engine.DuckDBEngine._load_spatial = lambda self: None  # type: ignore[method-assign]
    if dry_run_bytes is not None:
        import bqemulator.api.routes.jobs as jobs

        dry_run = jobs._dry_run_response

        async def reporting(**kwargs: Any) -> Any:
            body = await dry_run(**kwargs)
            body["totalBytesProcessed"] = str(dry_run_bytes)
            return body

        jobs._dry_run_response = reporting
    from bqemulator.config import LogLevel, PersistenceMode, Settings
    from bqemulator.server import EmulatorServer

    async def main() -> None:
        settings = Settings(
            persistence_mode=PersistenceMode.EPHEMERAL, rest_host="127.0.0.1", rest_port=0,
            grpc_host="127.0.0.1", grpc_port=0, log_level=LogLevel.WARNING,
            enable_format_extensions=False, default_project_id=project,
        )
        server = EmulatorServer(settings)
        await server.start()
        print(json.dumps({"rest": server.rest_url}), file=out, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await server.stop()

    asyncio.run(main())


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)
