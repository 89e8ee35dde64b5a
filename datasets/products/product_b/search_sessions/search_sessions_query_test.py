"""query.sql, run on a real BigQuery emulator holding dummy_data/warehouse.json (a case of every
rule: retries, blank searches, crawlers, staff, rapid-fire scripts, gaps, the window's edges),
gives exactly the rows of the dummy snapshot that the builder test builds from. So the SQL's
rules are checked here, and the builder's from its output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from registry.build.extract import warehouse_source
from registry.cloud.bigquery import Query, bind, open_client, read
from registry.cloud.bq_emulator import BigQueryEmulator

HERE = Path(__file__).resolve().parent
NAME = "products/product_b/search_sessions"


def _rows(tables: list[Any]) -> list[dict[str, Any]]:
    rows = [row for table in tables for row in table.to_pylist()]
    return sorted(rows, key=lambda row: row["session_id"])


@pytest.mark.slow
def test_the_query_gives_the_dummy_snapshot() -> None:
    # The knobs the pipeline runs it with (params.yaml), on the dummy tables.
    source = warehouse_source(HERE.parents[3], NAME)
    assert source is not None and source.query == "query.sql"
    sql = (HERE / "query.sql").read_text()
    query = Query(sql, bind(sql, source.params, "query.sql"), where="query.sql")
    with BigQueryEmulator() as emulator:
        emulator.load(HERE / "dummy_data" / "warehouse.json")
        warehouse = emulator.warehouse
        result = read(open_client(warehouse), warehouse, query)
        got = _rows(list(result.batches))
    expected = _rows([pq.read_table(p) for p in sorted((HERE / "dummy_data").glob("*.parquet"))])
    assert result.schema.names == pq.read_schema(
        next((HERE / "dummy_data").glob("*.parquet"))).names
    assert got == expected and len(got) == 12
