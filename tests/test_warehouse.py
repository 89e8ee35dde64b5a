"""The warehouse layer against a real BigQuery emulator (bqemulator, on 127.0.0.1): parameters,
dry runs and the scan limit, paged reads, every error a user can hit, and snapshots whose bytes
depend on the rows alone."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.build.snapshot import read_snapshot, write_snapshot
from registry.cloud.bigquery import Query, Warehouse, bind, estimate, fill_in, open_client, read
from registry.errors import (
    BadQueryError,
    ConfigError,
    MissingDependencyError,
    TableNotFoundError,
    WarehousePermissionError,
    WarehouseUnreachableError,
)
from tests.conftest import on_ci

SAMPLE = {
    "tables": {
        "shop.orders": {
            "description": "One row per order.",
            "schema": [
                {"name": "order_id", "type": "INT64", "mode": "REQUIRED"},
                {"name": "day", "type": "DATE"},
                {"name": "country", "type": "STRING"},
                {"name": "total", "type": "FLOAT64"},
                {"name": "tags", "type": "STRING", "mode": "REPEATED"},
            ],
            "rows": [
                {"order_id": i, "day": f"2026-10-{1 + i % 28:02d}", "country": "DE" if i % 3
                 else "JP", "total": i * 1.5, "tags": ["gift"] * (i % 2)}
                for i in range(1, 241)
            ],
        },
        "shop.customers": {
            "schema": [{"name": "country", "type": "STRING"}, {"name": "name", "type": "STRING"}],
            "rows": [{"country": "DE", "name": "Germany"}, {"country": "JP", "name": "Japan"}],
        },
    }
}


def _emulator_or_skip() -> None:
    import importlib.util

    if importlib.util.find_spec("bqemulator") is None:
        message = "bqemulator is not installed (pip install -c constraints.txt -e '.[test]')"
        if on_ci():
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("warehouse") / "sample.json"
    path.write_text(json.dumps(SAMPLE))
    return path


@pytest.fixture(scope="module")
def bq(sample: Path) -> Iterator[Warehouse]:
    """A BigQuery emulator holding the sample; its dry runs report 2.5 GB."""
    _emulator_or_skip()
    from registry.cloud.bq_emulator import BigQueryEmulator

    with BigQueryEmulator(dry_run_bytes=2_500_000_000) as emulator:
        assert emulator.load(sample) == {"shop.orders": 240, "shop.customers": 2}
        yield emulator.warehouse


SQL = """-- Orders of one country from a day on, with the country's name.
-- (@not_a_parameter: comments and 'strings' hold none)
SELECT o.order_id, o.day, c.name AS country, o.total, o.tags
FROM shop.orders AS o
JOIN shop.customers AS c USING (country)
WHERE o.day >= @since AND o.country = @country AND '@x' = '@x'
"""


def test_parameters_are_the_ones_the_sql_uses_typed_from_yaml() -> None:
    values = {"since": dt.date(2026, 10, 20), "country": "JP", "unused": 3}
    assert bind(SQL, values, "q.sql") == {"since": dt.date(2026, 10, 20), "country": "JP"}
    filled = fill_in(SQL, bind(SQL, values, "q.sql"))
    assert "o.day >= DATE '2026-10-20' AND o.country = 'JP'" in filled
    assert "@not_a_parameter" in filled and "'@x' = '@x'" in filled  # comments, strings kept
    assert fill_in("SELECT @@project_id, @n", {"n": [1, 2]}) == "SELECT @@project_id, [1, 2]"
    assert fill_in("WHERE s = @s", {"s": "it's"}) == "WHERE s = 'it\\'s'"
    # DVC takes no YAML dates in params.yaml: ISO text is a DATE or a TIMESTAMP.
    when = {"d": "2026-10-01", "t": "2026-10-01T08:00:00Z", "s": "2026-10"}
    filled = "DATE '2026-10-01' TIMESTAMP '2026-10-01T08:00:00Z' '2026-10'"
    assert fill_in("@d @t @s", when) == filled


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"since": dt.date(2026, 1, 1)}, "uses @country but params.yaml gives no value"),
        ({"since": None, "country": None}, "uses @since, @country"),
        ({"since": {"a": 1}, "country": "JP"}, "a parameter is a number"),
        ({"since": [], "country": "JP"}, "needs at least one value"),
        ({"since": [1, "a"], "country": "JP"}, "all of one type"),
    ],
)
def test_a_parameter_without_a_usable_value_is_refused(values: dict, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        bind(SQL, values, "q.sql")


def test_dry_run_estimate_then_a_paged_read(bq: Warehouse) -> None:
    client = open_client(bq)
    query = Query(SQL, bind(SQL, {"since": "2026-10-20", "country": "JP"}, "q"), where="q")
    assert estimate(client, bq, query) == 2_500_000_000
    rows = read(client, bq, query, page_rows=7)
    batches = list(rows.batches)
    expected = [i for i in range(1, 241) if i % 3 == 0 and 1 + i % 28 >= 20]
    assert rows.total_rows == len(expected) == sum(b.num_rows for b in batches)
    assert max(b.num_rows for b in batches) <= 7 and len(batches) > 1  # a page at a time
    assert rows.schema.names == ["order_id", "day", "country", "total", "tags"]
    got = sorted(r["order_id"] for b in batches for r in b.to_pylist())
    assert got == expected and rows.job_id
    assert {r["country"] for b in batches for r in b.to_pylist()} == {"Japan"}


def test_a_table_is_read_whole(bq: Warehouse) -> None:
    rows = read(open_client(bq), bq, Query(table="shop.customers", where="table shop.customers"))
    assert rows.total_rows == 2
    assert sorted(r["name"] for b in rows.batches for r in b.to_pylist()) == ["Germany", "Japan"]


def test_a_missing_table_names_it(bq: Warehouse) -> None:
    with pytest.raises(TableNotFoundError, match=r"q\.sql: Not found: Table lab-warehouse\.shop"
                       r"\.returns was not found.*looked up there") as e:
        read(open_client(bq), bq, Query("SELECT * FROM shop.returns", {}, where="q.sql"))
    assert e.value.exit_code == 20


def test_bad_sql_gives_bigquerys_message_and_the_line(bq: Warehouse) -> None:
    sql = "SELECT order_id\nFROM shop.orders\nWHER day > '2026-01-01'\n"
    with pytest.raises(BadQueryError) as e:
        read(open_client(bq), bq, Query(sql, {}, where="datasets/x/query.sql"))
    assert str(e.value).startswith("datasets/x/query.sql, line 3, column")
    assert "WHER day > '2026-01-01' -- Syntax error" in str(e.value) and e.value.exit_code == 21


def test_permission_refused_names_the_roles(bq: Warehouse) -> None:
    # BigQuery answers 403 for a project it will not show (the emulator: a malformed id).
    with pytest.raises(WarehousePermissionError, match=r"Access Denied.*roles/bigquery\.jobUser "
                       r"on the project and roles/bigquery\.dataViewer") as e:
        query = Query("SELECT * FROM `Finance-Team.hr.salaries`", {}, where="q")
        estimate(open_client(bq), bq, query)
    assert e.value.exit_code == 22


def test_an_unreachable_warehouse_says_where() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gone = Warehouse("lab", endpoint=f"http://127.0.0.1:{port}", retry_s=1)
    with pytest.raises(WarehouseUnreachableError, match=f"127.0.0.1:{port} cannot be reached"):
        estimate(open_client(gone), gone, Query("SELECT 1", {}, where="q"))


def test_a_malformed_sample_is_refused(tmp_path: Path) -> None:
    _emulator_or_skip()
    from registry.cloud.bq_emulator import BigQueryEmulator

    bad = tmp_path / "sample.json"
    bad.write_text('{"tables": {"orders": {"rows": []}}}')
    with BigQueryEmulator() as emulator:
        with pytest.raises(ConfigError, match=r"DATASET\.TABLE.*not so: orders"):
            emulator.load(bad)
        with pytest.raises(ConfigError, match="does not exist"):
            emulator.load(tmp_path / "nothing.json")


def test_without_bqemulator_the_install_line_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from registry.cloud.bq_emulator import BigQueryEmulator

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "bqemulator" else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r"\.\[local-warehouse\]"):
        BigQueryEmulator().start()


# -- snapshots ----------------------------------------------------------------------------------


def _files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


ROWS = [
    {"id": i, "name": f"n{i % 7}", "day": dt.date(2026, 1, 1 + i % 28), "tags": ["a"] * (i % 3),
     "score": None if i % 5 == 0 else i / 3}
    for i in range(900)
]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32), page=st.integers(1, 400))
def test_a_snapshot_depends_on_the_rows_alone(tmp_path_factory: pytest.TempPathFactory,
                                              seed: int, page: int) -> None:
    import pyarrow as pa

    schema = pa.Table.from_pylist(ROWS).schema

    def write(rows: list[dict], page: int, out: Path) -> dict[str, str]:
        batches = [pa.RecordBatch.from_pylist(rows[i:i + page], schema=schema)
                   for i in range(0, len(rows), page)]
        info = write_snapshot(iter(batches), schema, len(rows), out, rows_per_shard=400)
        assert info.rows == len(rows) and len(info.files) == 3
        return _files(out)

    base = tmp_path_factory.mktemp("snap")
    reference = write(ROWS, 900, base / "a")
    shuffled = ROWS[:]
    random.Random(seed).shuffle(shuffled)
    assert write(shuffled, page, base / "b") == reference
    table = read_snapshot(base / "b")
    assert sorted(table.column("id").to_pylist()) == list(range(900))


def test_a_failed_snapshot_leaves_the_previous_one(tmp_path: Path) -> None:
    import pyarrow as pa

    schema = pa.schema([("id", pa.int64())])
    out = tmp_path / "dataset" / "snapshot"
    write_snapshot(iter([pa.RecordBatch.from_pylist([{"id": 1}], schema=schema)]), schema, 1, out)
    before = _files(out)

    def broken() -> Iterator[pa.RecordBatch]:
        yield pa.RecordBatch.from_pylist([{"id": 2}], schema=schema)
        raise WarehouseUnreachableError("the connection dropped")

    with pytest.raises(WarehouseUnreachableError):
        write_snapshot(broken(), schema, 5, out)
    with pytest.raises(ValueError, match="said 5 rows but sent 1"):
        write_snapshot(iter([pa.RecordBatch.from_pylist([{"id": 3}], schema=schema)]), schema,
                       5, out)
    assert _files(out) == before and [p.name for p in out.parent.iterdir()] == ["snapshot"]


def test_an_empty_result_is_one_empty_shard_with_the_schema(tmp_path: Path) -> None:
    import pyarrow as pa

    schema = pa.schema([("id", pa.int64()), ("day", pa.date32())])
    info = write_snapshot(iter([]), schema, 0, tmp_path / "s")
    table = read_snapshot(tmp_path / "s")
    assert info.files == ("part-00000-of-00001.parquet",) and table.num_rows == 0
    assert table.schema.names == ["id", "day"]
