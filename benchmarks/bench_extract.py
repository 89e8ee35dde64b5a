"""What a warehouse extract holds in memory: the paged snapshot vs reading the result whole.

Starts a local BigQuery emulator (bqemulator), fills a table with `--rows` rows made by SQL
(an id, a day, a country, a price, a text), and in a fresh process each:

- extract: `registry.cloud.bigquery.read` (pages of 20,000 rows) into
  `registry.build.snapshot.write_snapshot` (sharded Parquet, 500,000 rows a shard);
- whole: `QueryJob.to_arrow()`, the result in memory at once, written with `pyarrow.parquet`
  (what a notebook does);

at `--rows` and at a tenth of it, and prints each one's wall time and peak resident memory, and
how memory grows with ten times the rows (flat: the extract's peak is set by a page and a shard,
not by the result).

    python benchmarks/bench_extract.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import env

_CHILD = """
import json, resource, sys, time
from pathlib import Path
from registry.cloud.bigquery import Query, Warehouse, open_client, read
mode, url, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
warehouse = Warehouse("lab-warehouse", endpoint=url, retry_s=30)
client = open_client(warehouse)
query = Query("SELECT * FROM bench.orders", {}, where="bench")
start = time.perf_counter()
if mode == "extract":
    from registry.build.snapshot import write_snapshot
    rows = read(client, warehouse, query)
    info = write_snapshot(rows.batches, rows.schema, rows.total_rows, out)
    n = info.rows
else:
    import pyarrow.parquet as pq
    table = client.query(query.sql).to_arrow(create_bqstorage_client=False)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out / "all.parquet")
    n = table.num_rows
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": n, "seconds": seconds, "peak_mib": peak}))
"""

_FILL = """
CREATE TABLE bench.orders AS
SELECT id, DATE_ADD(DATE '2026-01-01', INTERVAL MOD(id, 365) DAY) AS day,
       ['DE', 'JP', 'US', 'BR'][OFFSET(MOD(id, 4))] AS country,
       MOD(id * 7919, 100000) / 100 AS price,
       CONCAT('order ', CAST(id AS STRING), ' of a customer') AS note
FROM UNNEST(GENERATE_ARRAY(1, {rows})) AS id
"""


def run(mode: str, url: str, scratch: Path) -> dict[str, float]:
    out = scratch / f"{mode}-out"
    done = subprocess.run([sys.executable, "-c", _CHILD, mode, url, str(out)], env=env(),
                          check=True, capture_output=True, text=True)
    subprocess.run(["rm", "-rf", str(out)], check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    from registry.cloud.bigquery import open_client
    from registry.cloud.bq_emulator import BigQueryEmulator

    results: dict[tuple[str, int], dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, BigQueryEmulator() as emulator:
        client = open_client(emulator.warehouse)
        client.create_dataset("bench")
        for rows in (args.rows // 10, args.rows):
            client.query("DROP TABLE IF EXISTS bench.orders").result()
            client.query(_FILL.format(rows=rows)).result()
            for mode in ("extract", "whole"):
                results[mode, rows] = run(mode, emulator.url or "", Path(tmp))
                assert results[mode, rows]["rows"] == rows
    print(f"{'':<9}{'rows':>11}{'seconds':>10}{'peak MiB':>10}")
    for (mode, rows), r in results.items():
        print(f"{mode:<9}{rows:>11,}{r['seconds']:>10.1f}{r['peak_mib']:>10.0f}")
    for mode in ("extract", "whole"):
        small, big = results[mode, args.rows // 10], results[mode, args.rows]
        print(f"{mode}: peak memory x{big['peak_mib'] / small['peak_mib']:.2f} for 10x the rows,"
              f" {args.rows / big['seconds']:,.0f} rows/s")


if __name__ == "__main__":
    main()
