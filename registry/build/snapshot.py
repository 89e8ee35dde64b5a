"""A warehouse snapshot: rows written as sharded Parquet files whose bytes depend on the rows
alone, not on the order the warehouse returned them in, nor on how it paged them.

Each row goes to shard ``hash(row) % shards``, where the shard count follows from the row count
(:data:`ROWS_PER_SHARD`); within a shard, rows are sorted by that hash. The hash is a digest of
the row's values (:func:`row_hash`), so the same rows always land in the same places, and the
Parquet writer's settings are fixed. Writing streams: pages are spread over the shards as they
arrive (Arrow IPC files in a scratch folder beside the snapshot), then each shard is sorted and
written on its own, so memory holds one page and one shard at a time. The new snapshot replaces
the old one only once it is complete.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ROWS_PER_SHARD", "SnapshotInfo", "read_snapshot", "row_hash", "write_snapshot"]

ROWS_PER_SHARD = 500_000
_HASH = "__row_hash"
# Fixed writer settings: the bytes must not depend on pyarrow's defaults of the day.
_PARQUET = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "row_group_size": 100_000,
    "data_page_size": 1 << 20,
    "version": "2.6",
}


@dataclass(frozen=True)
class SnapshotInfo:
    """What :func:`write_snapshot` wrote.

    Attributes:
        rows: Rows written.
        files: The shard files' names, in order.
        bytes: Their total size.
    """

    rows: int
    files: tuple[str, ...]
    bytes: int


def row_hash(values: Iterable[Any]) -> int:
    """A 64-bit digest of a row's values (their ``repr``, which is exact for every type Arrow
    hands back: numbers, text, bytes, dates, decimals, lists and dicts).

    Example:
        >>> row_hash([1, "a"]) == row_hash((1, "a")) != row_hash([1, "b"])
        True
    """
    return int.from_bytes(
        hashlib.blake2b(repr(tuple(values)).encode(), digest_size=8).digest(), "big"
    )


def _hashes(batch: pa.RecordBatch) -> list[int]:
    columns = [column.to_pylist() for column in batch.columns]
    return [row_hash(row) for row in zip(*columns, strict=True)]


def write_snapshot(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    total_rows: int,
    out: Path,
    *,
    rows_per_shard: int = ROWS_PER_SHARD,
) -> SnapshotInfo:
    """Write rows as ``out/part-NNNNN-of-MMMMM.parquet``, replacing what ``out`` held.

    Args:
        batches: The rows, in any order and paging.
        schema: Their schema (what an empty result is written with).
        total_rows: How many rows ``batches`` holds (sets the shard count).
        out: The snapshot folder.
        rows_per_shard: Rows a shard holds at most, on average.

    Returns:
        What was written.

    Raises:
        ValueError: If ``batches`` held another number of rows than ``total_rows``.

    Example:
        >>> write_snapshot(rows.batches, rows.schema, rows.total_rows, Path("snapshot"))
        ... # doctest: +SKIP
        SnapshotInfo(rows=1203, files=('part-00000-of-00001.parquet',), bytes=48211)
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    shards = max(1, math.ceil(total_rows / rows_per_shard))
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        hashed = schema.append(pa.field(_HASH, pa.uint64()))
        spread = scratch / "spread"
        spread.mkdir()
        writers = [pa.ipc.new_file(spread / f"{k}.arrow", hashed) for k in range(shards)]
        seen = 0
        try:
            for batch in batches:
                seen += batch.num_rows
                hashes = np.array(_hashes(batch), dtype=np.uint64)
                batch = pa.RecordBatch.from_arrays(
                    [*batch.cast(schema).columns, pa.array(hashes)], schema=hashed
                )
                slots = hashes % np.uint64(shards)
                for k in range(shards):
                    part = batch if shards == 1 else batch.filter(pa.array(slots == k))
                    if part.num_rows:
                        writers[k].write_batch(part)
        finally:
            for writer in writers:
                writer.close()
        if seen != total_rows:
            raise ValueError(f"the warehouse said {total_rows} rows but sent {seen}")
        data = scratch / "data"
        data.mkdir()
        files, size = [], 0
        for k in range(shards):
            with pa.memory_map(str(spread / f"{k}.arrow")) as source:
                table = pa.ipc.open_file(source).read_all()
            table = table.sort_by(_HASH).drop_columns([_HASH])
            name = f"part-{k:05d}-of-{shards:05d}.parquet"
            pq.write_table(table, data / name, **_PARQUET)
            (spread / f"{k}.arrow").unlink()
            files.append(name)
            size += (data / name).stat().st_size
        _replace(out, data, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return SnapshotInfo(total_rows, tuple(files), size)


def _replace(out: Path, new: Path, scratch: Path) -> None:
    """Put folder ``new`` at ``out``; the previous ``out`` goes only once ``new`` is there."""
    old = scratch / "previous"
    if out.is_symlink() or out.is_file():
        out.unlink()
    elif out.exists():
        out.rename(old)
    new.rename(out)


def read_snapshot(folder: Path) -> pa.Table:
    """Every row of a snapshot folder, shard by shard (for checks and small snapshots)."""
    import pyarrow.parquet as pq

    return pq.read_table(sorted(str(p) for p in folder.glob("part-*.parquet")))
