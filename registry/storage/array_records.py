"""Reading ArrayRecord shards (``file_format: array_record``): in order, as ``tf.data``, and
by index.

TFDS 4.9.10 reads ArrayRecord shards only by index (``as_data_source``); its ``as_dataset``
raises ``NotImplementedError``. The registry reads them in order too, so that an ArrayRecord
build loads as ``tf.data`` (and so NumPy and pandas) exactly like a TFRecord build, with every
``as_dataset`` option TFDS has (split slices, ``as_supervised``, ``batch_size``, decoders):
:func:`enable_tf_data` gives TFDS's reader an ArrayRecord adapter that can make a
``tf.data.Dataset`` of one shard's records. Sequential reads through it run as fast as
TFRecord's (``benchmarks/bench_random_access.py``), which is why new datasets are built as
ArrayRecord (:data:`registry.build.dvcfiles.NEW_DATASET_FILE_FORMAT`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from registry.errors import first_line

__all__ = [
    "CORRUPT",
    "corrupt_read_text",
    "enable_tf_data",
    "is_corrupt_read",
    "read_records",
    "record_batches",
    "with_single_reads",
]

#: How a damaged ArrayRecord shard is reported while ``tf.data`` reads it. ``from_generator``
#: turns any Python error into ``tf.errors.UnknownError`` carrying its text, so this phrase is
#: what :func:`is_corrupt_read` looks for (TFRecord's reader raises ``DataLossError`` itself).
CORRUPT = "corrupted ArrayRecord shard"
# Records are read a range at a time (one call into the C++ reader per batch, not per record),
# as many as fit in about this many bytes, so a batch of large images stays small in memory.
_BATCH_BYTES = 8 << 20
_FIRST_BATCH = 64
_MAX_BATCH = 1 << 14


def record_batches(path: str | Path) -> Iterator[list[bytes]]:
    """The serialized records of one ArrayRecord shard, in order, a batch (list) at a time.

    Raises:
        ValueError: If the file is truncated, not an ArrayRecord file, or a chunk of it fails
            its hash (its text starts with :data:`CORRUPT`).
    """
    from array_record.python import array_record_module

    reader = array_record_module.ArrayRecordReader(str(path))
    try:
        # The reader reports a damaged file by ``ok()``, and raises only when it is closed.
        if not reader.ok():
            raise ValueError(f"{CORRUPT}: {path} is truncated or not an ArrayRecord file")
        total = reader.num_records()
        start, size = 0, _FIRST_BATCH
        while start < total:
            stop = min(start + size, total)
            try:
                batch = reader.read(start, stop)
            except RuntimeError as e:  # a chunk whose hash does not match
                raise ValueError(f"{CORRUPT}: {path}: {e}") from e
            yield batch
            average = max(1, sum(map(len, batch)) // len(batch))
            start, size = stop, max(1, min(_MAX_BATCH, _BATCH_BYTES // average))
    finally:
        with contextlib.suppress(RuntimeError):
            reader.close()


def read_records(path: str | Path) -> Iterator[bytes]:
    """The serialized records of one ArrayRecord shard, one by one, in order."""
    for batch in record_batches(path):
        yield from batch


def is_corrupt_read(error: BaseException) -> bool:
    """Whether reading through ``tf.data`` failed on a damaged shard: a TFRecord whose CRC32C
    did not match (``DataLossError``), or an ArrayRecord shard (:data:`CORRUPT`)."""
    import tensorflow as tf

    if isinstance(error, tf.errors.DataLossError):
        return True
    return isinstance(error, tf.errors.OpError) and CORRUPT in str(error)


def corrupt_read_text(error: BaseException) -> str:
    """What a failed read says, without the ``tf.data`` wrapping around an ArrayRecord
    shard's error (``{{function_node ...}} ValueError: ...``)."""
    text = str(error)
    start = text.find(CORRUPT)
    return text[start:].splitlines()[0] if start >= 0 else first_line(error)


def _shard_dataset(filename: Any) -> Any:
    """One shard's serialized records as a ``tf.data.Dataset`` of scalar strings."""
    import numpy as np
    import tensorflow as tf

    def batches(path: bytes) -> Iterator[Any]:
        for batch in record_batches(path.decode()):
            yield np.array(batch, dtype=object)

    # A batch a step, unbatched natively: one Python call per batch, not per record.
    return tf.data.Dataset.from_generator(
        batches, output_signature=tf.TensorSpec([None], tf.string), args=(filename,)
    ).unbatch()


def enable_tf_data() -> None:
    """Let TFDS's ``as_dataset`` read ArrayRecord shards (see the module's doc); once per
    process, and not at all where TFDS reads them itself.

    TFDS picks a shard reader from its ``ADAPTER_FOR_FORMAT`` table. This puts a subclass of its
    own ArrayRecord adapter there that adds ``make_tf_data``; writing, random access and every
    other format are left as they were, and nothing that worked before behaves otherwise.
    ``tests/test_random_access.py`` pins that every output reads the same examples from an
    ArrayRecord build as from a TFRecord one.
    """
    from tensorflow_datasets.core import file_adapters

    fmt = file_adapters.FileFormat.ARRAY_RECORD
    adapter = file_adapters.ADAPTER_FOR_FORMAT[fmt]
    if adapter.SUPPORTS_TF_DATA:
        return

    class ArrayRecordTfData(adapter):  # type: ignore[misc,valid-type]
        SUPPORTS_TF_DATA = True

        @classmethod
        def make_tf_data(cls, filename: Any, buffer_size: int | None = None) -> Any:
            return _shard_dataset(filename)  # a read-ahead buffer is the reader's own

    file_adapters.ADAPTER_FOR_FORMAT[fmt] = ArrayRecordTfData


def with_single_reads(source: Any) -> Any:
    """TFDS's ArrayRecord data source, its one-index reads made as fast as its batches.

    array_record 0.8's reader takes time in proportion to the file's record count for one index
    read as a list of indices (``read([i])``, what TFDS's ``source[i]`` does: ~180 µs an
    example at 100,000 records, ~2 ms at 1M), while a range (``read(i, i + 1)``) takes ~4 µs:
    ``source[i]`` is routed to the range (see ``benchmarks/bench_random_access.py``).
    """
    inner = getattr(source, "data_source", None)
    if inner is not None and hasattr(inner, "_reader_idx_and_position"):
        source.data_source = _SingleReads(inner)
    return source


class _SingleReads:
    """An array_record ``ArrayRecordDataSource`` whose ``[i]`` reads the range ``i:i+1``;
    everything else (``len``, ``__getitems__``, pickling for worker processes) is the inner
    source's."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __len__(self) -> int:
        return len(self._inner)

    def __getitem__(self, key: Any) -> bytes:
        inner = self._inner
        reader_idx, position = inner._reader_idx_and_position(key)
        inner._ensure_reader_exists(reader_idx)
        reader = inner._readers[reader_idx]
        if not hasattr(reader, "read"):  # pragma: no cover - a reader of another kind
            return bytes(inner[key])
        return bytes(reader.read(position, position + 1)[0])

    def __getitems__(self, keys: Sequence[int]) -> Sequence[bytes]:
        return list(self._inner.__getitems__(keys))

    def __getattr__(self, name: str) -> Any:
        if name == "_inner":  # while unpickling, before __dict__ is restored
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return repr(self._inner)
