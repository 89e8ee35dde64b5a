"""Comparing two builds of a dataset: schema, splits, examples and statistics.

The engine of ``registry datasets diff`` (:mod:`registry.diff`) and of the semver check at
release (:mod:`registry.semver`). It compares two TFDS prepared folders, wherever they come from
(the cache, a work tree, any folder on disk), each described by a :class:`Side`:

- **schema**: features added, removed, or changed in type, shape, dtype or class names;
- **splits**: examples and bytes per split, before and after;
- **examples**: added / removed / changed per split, matched by the key the builder declares
  (``KEY_FEATURE = "id"``, or ``example_key(example) -> str``, in its class ``Builder``), or else
  by a content hash (then a changed example counts as one removed and one added);
- **statistics**: each feature's shift between the two ``build_info.json`` ``statistics``
  objects, largest first.

Examples are streamed: each shard's records (serialized ``tf.train.Example``) are read from the
TFRecord files, hashed, and ``(key digest, content digest)`` pairs are spilled to
hash-partitioned temporary files, which are compared partition by partition, so memory stays
flat whatever the size. The registry's serializer is deterministic
(:mod:`registry.build.reproducible`), so equal examples are equal bytes; a shard written before
it (map entries in hash order) is re-serialized deterministically before hashing.

Example:
    >>> a = Side("digits 1.0.0", Path("cache/digits-1.0.0"))  # doctest: +SKIP
    >>> b = Side("workspace build", Path("datasets/image_classification/digits/prepared"))
    >>> compare(a, b).splits[0].changed  # doctest: +SKIP
    0
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import math
import struct
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from registry.errors import BuildError, CorruptArtifactError, NotBuiltError, first_line
from registry.storage.array_records import read_records

__all__ = [
    "DatasetDiff",
    "ExampleChange",
    "FeatureChange",
    "KeySpec",
    "Side",
    "SplitDiff",
    "StatShift",
    "compare",
    "declared_key",
]

Change = Literal["added", "removed", "changed"]

# Spilled pairs per partition file (32 bytes each): a partition's two Counters stay small.
_PARTITION_PAIRS = 1 << 16
_DIGEST = 16
# Records of a shard checked for the deterministic encoding before trusting its bytes as they are.
_SAMPLED = 64
_VALUE_CHARS = 60
_BLOCK = 4 << 20


# -- the two sides ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeySpec:
    """How a builder names its examples: a feature, or a function of the example.

    Attributes:
        feature: ``KEY_FEATURE``: the (flattened) feature whose value is the key.
        function: ``example_key(example) -> str``: called with the example as plain values
            (``{feature: value}``; one value unwrapped, text as ``str``, lists as lists).
    """

    feature: str | None = None
    function: Callable[[dict[str, Any]], Any] | None = None

    def describe(self) -> str:
        """``KEY_FEATURE 'id'`` or ``example_key()``, for the report."""
        return f"KEY_FEATURE {self.feature!r}" if self.feature else "example_key()"

    def key(self, example: Any) -> str:
        """The key of a parsed ``tf.train.Example``."""
        if self.feature is not None:
            feature = example.features.feature.get(self.feature)
            if feature is None:
                return ""
            return _key_text(_values(feature))
        assert self.function is not None
        return _key_text(self.function(_plain(example)))


@dataclass(frozen=True)
class Side:
    """One build to compare.

    Attributes:
        label: How the report names it (``digits 1.0.0``, ``workspace build (1.1.0)``, a path).
        path: Its TFDS prepared folder.
        build_info: Its ``build_info.json`` (``None`` where there is none).
        key: The key its builder declares (``None``: none, or no builder known).
        name: The registry's name of the dataset, where known.
    """

    label: str
    path: Path
    build_info: dict[str, Any] | None = None
    key: KeySpec | None = None
    name: str | None = None


def declared_key(source: str, file_name: str = "builder.py") -> KeySpec | None:
    """The key that a builder's source declares in its class ``Builder``, if any.

    ``KEY_FEATURE = "id"`` is read from the source without importing it; for an ``example_key``
    method the source (the builder at a release's commit, or the work tree's) is written to a
    temporary folder and imported from there.

    Args:
        source: The builder module's source.
        file_name: The builder's file name (its module is imported under a name made from it).

    Returns:
        The key, or ``None`` when the builder declares none.

    Raises:
        BuildError: If the builder declares ``example_key`` and importing it fails.

    Example:
        >>> declared_key('class Builder:\\n    KEY_FEATURE = "id"\\n')
        KeySpec(feature='id', function=None)
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef) or node.name != "Builder":
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.Assign | ast.AnnAssign):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                value = stmt.value
                if (
                    any(isinstance(t, ast.Name) and t.id == "KEY_FEATURE" for t in targets)
                    and isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                ):
                    return KeySpec(feature=value.value)
            if isinstance(stmt, ast.FunctionDef) and stmt.name == "example_key":
                with tempfile.TemporaryDirectory(prefix="registry-builder-") as folder:
                    path = Path(folder) / file_name
                    path.write_text(source)
                    return KeySpec(function=_key_function(path))
    return None


def _key_function(builder_file: Path) -> Callable[[dict[str, Any]], Any]:
    """``Builder.example_key`` of the module at ``builder_file`` (imported under its own name)."""
    import tensorflow_datasets as tfds

    digest = hashlib.blake2b(str(builder_file).encode(), digest_size=8).hexdigest()
    module_name = f"_registry_diff_{digest}_{builder_file.stem}"  # TFDS: *_dataset_builder
    spec = importlib.util.spec_from_file_location(module_name, builder_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        with tfds.core.registered.skip_registration():
            spec.loader.exec_module(module)
        function: Callable[[dict[str, Any]], Any] = module.Builder.example_key
    except Exception as e:
        raise BuildError(
            f"importing example_key from {builder_file} failed: {type(e).__name__}: "
            f"{first_line(e)}; fix the builder's example_key"
        ) from e
    return function


# -- the result ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureChange:
    """A feature added, removed or changed (type, shape, dtype, class names).

    Attributes:
        feature: Its flattened key (``a/b`` for nested features).
        change: ``added``, ``removed`` or ``changed``.
        before: Its description before (``type``, ``dtype``, ``shape``, ``names``...).
        after: Its description after.
        fields: What changed in it (``type``, ``shape``, ``dtype``, ``classes``).
    """

    feature: str
    change: Change
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SplitDiff:
    """One split, before and after.

    Attributes:
        split: Its name.
        before: ``{"num_examples", "num_bytes"}`` before (``None``: the split is new).
        after: The same after (``None``: the split is gone).
        added, removed, changed, unchanged: Examples, matched as :attr:`DatasetDiff.matched_by`
            says.
    """

    split: str
    before: dict[str, int] | None
    after: dict[str, int] | None
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class ExampleChange:
    """One concrete example that differs (``--show``).

    Attributes:
        split: Its split.
        change: ``added``, ``removed`` or ``changed``.
        key: Its key (or, matched by content, the start of its content hash).
        fields: Feature -> ``[before, after]`` as short text (``None`` where absent); for an
            added or removed example, each feature's value on its side.
    """

    split: str
    change: Change
    key: str
    fields: dict[str, list[str | None]]


@dataclass(frozen=True)
class StatShift:
    """A feature's statistics in one split, before and after.

    Attributes:
        split: The split.
        feature: The feature.
        kind: ``numeric``, ``categorical``, ``text``, ``image`` or ``other``.
        shift: How far it moved (``None``: the feature is on one side only, which sorts first):
            numeric ``|Δmean| / std`` (the larger std), categorical the total variation distance
            of the class distributions, text and image the relative change of the mean length
            or mean pixel (and, for images, of the shapes' distribution); at least the change
            in the fraction missing.
        before: Its statistics before (``None``: absent).
        after: Its statistics after.
    """

    split: str
    feature: str
    kind: str
    shift: float | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True)
class DatasetDiff:
    """What changed between two builds of a dataset (``registry datasets diff``).

    Attributes:
        name: The dataset.
        before: The first side's label (``REF_A``).
        after: The second side's label.
        matched_by: ``key`` (the builder's key) or ``content`` (a content hash).
        key: How the key is declared (``KEY_FEATURE 'id'``), when matched by key.
        features: Features added, removed or changed.
        splits: Every split of either side, with example counts.
        examples: Up to ``show`` concrete differing examples.
        statistics: Each feature's statistics per split, largest shift first.
        notes: What the report must say besides (no statistics recorded, how matching was
            decided).
    """

    name: str
    before: str
    after: str
    matched_by: Literal["key", "content"]
    key: str | None
    features: list[FeatureChange]
    splits: list[SplitDiff]
    examples: list[ExampleChange]
    statistics: list[StatShift]
    notes: list[str]

    @property
    def examples_changed(self) -> bool:
        """Whether an existing example changed or was removed (in any split)."""
        return any(s.changed or s.removed for s in self.splits)

    @property
    def examples_added(self) -> bool:
        """Whether an example was added (in any split)."""
        return any(s.added for s in self.splits)

    @property
    def identical(self) -> bool:
        """Whether the two builds hold the same schema and the same examples."""
        return not (self.features or self.examples_changed or self.examples_added)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for ``--json`` (keys stable; ``shift`` ``None`` for one-sided)."""
        data = asdict(self)
        data["identical"] = self.identical
        for entry in data["statistics"]:  # JSON has no infinity
            if entry["shift"] is not None and math.isinf(entry["shift"]):
                entry["shift"] = "inf"
        return data

    def to_text(self) -> str:
        """The report: schema, splits and examples, examples shown, statistics."""
        lines = [f"{self.name}: {self.before} -> {self.after}"]
        if self.identical:
            lines.append("no changes: same schema, same examples in every split")
        lines.append("\nschema:")
        if not self.features:
            lines.append("  no changes")
        for f in self.features:
            if f.change == "added":
                lines.append(f"  + {f.feature}  {_feature_text(f.after)}")
            elif f.change == "removed":
                lines.append(f"  - {f.feature}  {_feature_text(f.before)}")
            else:
                lines.append(
                    f"  ~ {f.feature}  {', '.join(f.fields)}: {_feature_text(f.before)} -> "
                    f"{_feature_text(f.after)}"
                )
        how = f"by key ({self.key})" if self.matched_by == "key" else (
            "by content (no key declared: a changed example is one removed and one added)"
        )
        lines.append(f"\nsplits (examples matched {how}):")
        for s in self.splits:
            lines.append(f"  {s.split:<12} {_counts(s.before)} -> {_counts(s.after)}")
            if s.before is not None and s.after is not None:
                lines.append(
                    f"  {'':<12} +{s.added:,} added  -{s.removed:,} removed  "
                    f"~{s.changed:,} changed  ={s.unchanged:,} unchanged"
                )
        if self.examples:
            lines.append("\nexamples:")
            for e in self.examples:
                mark = {"added": "+", "removed": "-", "changed": "~"}[e.change]
                lines.append(f"  {mark} {e.split} {e.key}")
                for feature, (before, after) in e.fields.items():
                    if e.change == "changed":
                        lines.append(f"      {feature}: {before} -> {after}")
                    else:
                        lines.append(f"      {feature}: {before if after is None else after}")
        lines.append("\nstatistics (largest shift first):")
        moved = [t for t in self.statistics if t.shift is None or t.shift > 0]
        if not moved and self.statistics:
            lines.append("  no shifts")
        for t in moved:
            shift = "new/gone" if t.shift is None else f"{t.shift:.3g}"
            lines.append(
                f"  {t.split:<8} {t.feature:<20} {t.kind:<11} shift {shift:<8} "
                f"{_stats_text(t.before)} -> {_stats_text(t.after)}"
            )
        lines.extend(f"  {note}" for note in self.notes if note.startswith("statistics:"))
        other = [n for n in self.notes if not n.startswith("statistics:")]
        if other:
            lines.append("\nnotes:")
            lines.extend(f"  {note}" for note in other)
        return "\n".join(lines)


def _feature_text(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "-"
    text = f"{entry.get('type')} {entry.get('dtype')} {entry.get('shape')}"
    if entry.get("names") is not None:
        names = [str(n) for n in entry["names"]]
        shown = ", ".join(names[:6]) + (f" ... ({len(names)})" if len(names) > 6 else "")
        text += f" classes [{shown}]"
    return text


def _counts(entry: dict[str, int] | None) -> str:
    if entry is None:
        return "(none)"
    return f"{entry['num_examples']:,} examples, {entry['num_bytes']:,} bytes"


def _stats_text(stats: dict[str, Any] | None) -> str:
    if stats is None:
        return "-"
    kind = stats.get("kind")
    if kind == "numeric":
        return f"mean {stats.get('mean'):.4g} std {stats.get('std'):.4g}" + _missing(stats)
    if kind == "categorical":
        classes = stats.get("classes") or {}
        total = sum(classes.values()) or 1
        top = sorted(classes.items(), key=lambda kv: -kv[1])[:4]
        return " ".join(f"{k}:{v / total:.0%}" for k, v in top) + _missing(stats)
    if kind == "text":
        length = stats.get("length") or {}
        return f"length mean {length.get('mean', 0):.4g}" + _missing(stats)
    if kind == "image":
        return f"mean pixel {stats.get('mean_pixel', 0):.4g}" + _missing(stats)
    return f"count {stats.get('count')}"


def _missing(stats: dict[str, Any]) -> str:
    return f" missing {stats['missing']}" if stats.get("missing") else ""


# -- comparing ----------------------------------------------------------------------------------


def compare(a: Side, b: Side, *, show: int = 0, name: str | None = None) -> DatasetDiff:
    """Compare two builds: schema, splits, examples (streamed), statistics.

    Steps: read both folders' metadata (features, splits, shards); compare the schema; pick the
    matching (by key when both builders declare one, else by content); stream each split present
    on both sides; with ``show``, read again for the concrete examples; compare statistics.

    Args:
        a: The build before.
        b: The build after.
        show: How many concrete differing examples to report.
        name: The dataset's name for the report (default: a side's name).

    Returns:
        The diff.

    Raises:
        NotBuiltError: If a folder is not a TFDS prepared folder.
        CorruptArtifactError: If a shard is truncated or not a TFRecord file.

    Example:
        >>> compare(Side("1.0.0", old), Side("workspace", new)).identical  # doctest: +SKIP
        True
    """
    info_a, info_b = _read_info(a), _read_info(b)
    features = _feature_changes(_schema(info_a, a), _schema(info_b, b))
    notes: list[str] = []
    if a.key is not None and b.key is not None:
        matched_by: Literal["key", "content"] = "key"
        key: str | None = b.key.describe()
        if a.key.describe() != key:
            notes.append(f"{a.label} declares {a.key.describe()}, {b.label} {key}: each side's "
                         "own key is used")
    else:
        matched_by, key = "content", None
        lacking = [s.label for s in (a, b) if s.key is None]
        notes.append(
            f"examples matched by content: no key declared for {' and '.join(lacking)} "
            "(KEY_FEATURE or example_key in class Builder)"
        )
    splits: list[SplitDiff] = []
    samples: list[tuple[str, Change, bytes, bytes | None, bytes | None]] = []
    with tempfile.TemporaryDirectory(prefix="registry-diff-") as tmp:
        for split in sorted(set(info_a.splits) | set(info_b.splits)):
            sa, sb = info_a.splits.get(split), info_b.splits.get(split)
            before, after = _split_counts(sa), _split_counts(sb)
            if sa is None or sb is None:
                n = (before or after or {}).get("num_examples", 0)
                splits.append(SplitDiff(split, before, after, added=n if sa is None else 0,
                                        removed=n if sb is None else 0))
                continue
            counts, found = _compare_split(
                split, (a, sa), (b, sb), matched_by == "key", Path(tmp), show - len(samples)
            )
            splits.append(SplitDiff(split, before, after, **counts))
            samples.extend(found)
    examples = _show(samples, a, b, info_a, info_b, matched_by == "key") if samples else []
    statistics = _statistics(a, b, notes)
    return DatasetDiff(
        name=name or b.name or a.name or str(info_b.name),
        before=a.label,
        after=b.label,
        matched_by=matched_by,
        key=key,
        features=features,
        splits=splits,
        examples=examples,
        statistics=statistics,
        notes=notes,
    )


def _read_info(side: Side) -> Any:
    """The TFDS ``DatasetInfo`` of a prepared folder."""
    import tensorflow_datasets as tfds

    if not (side.path / "dataset_info.json").is_file():
        raise NotBuiltError(
            f"{side.label}: {side.path} is not a TFDS prepared folder (no dataset_info.json); "
            "name a built dataset's prepared folder, or build it with 'registry datasets build'"
        )
    return tfds.builder_from_directory(str(side.path)).info


def _schema(info: Any, side: Side) -> dict[str, dict[str, Any]]:
    """Each flattened feature: type, dtype, shape, and class names (``build_info.json``'s first)."""
    recorded = (side.build_info or {}).get("features") or {}
    schema = {}
    for key, tensor in sorted(info.features.get_tensor_info().items()):
        feature = info.features[key]
        entry: dict[str, Any] = {
            "type": type(feature).__name__,
            "dtype": str(tensor.tf_dtype.name),
            "shape": [d if d is None else int(d) for d in tensor.shape],
        }
        names = (recorded.get(key) or {}).get("names")
        if names is None and hasattr(feature, "names"):
            names = list(feature.names)
        if names is not None:
            entry["names"] = [str(n) for n in names]
        schema[key] = entry
    return schema


def _feature_changes(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]
) -> list[FeatureChange]:
    changes = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old is None:
            changes.append(FeatureChange(key, "added", None, new))
        elif new is None:
            changes.append(FeatureChange(key, "removed", old, None))
        else:
            fields = [f for f in ("type", "shape", "dtype") if old.get(f) != new.get(f)]
            if old.get("names") != new.get("names"):
                fields.append("classes")
            if fields:
                changes.append(FeatureChange(key, "changed", old, new, fields))
    return changes


def _split_counts(split_info: Any) -> dict[str, int] | None:
    if split_info is None:
        return None
    return {"num_examples": int(split_info.num_examples), "num_bytes": int(split_info.num_bytes)}


# -- examples, streamed -------------------------------------------------------------------------


def _records(path: Path) -> Iterator[bytes]:
    """The records of a TFRecord file (length, CRC, data, CRC), read in blocks of 4 MiB, or of
    an ArrayRecord file (``file_format: array_record``), a few thousand at a time.

    Read in blocks, not mapped: a mapped shard's pages would count as the process's memory.
    The CRCs are not checked here: the cache verified the file's hash, and a work-tree build is
    what the builder just wrote.
    """
    if ".array_record-" in path.name:
        try:
            yield from read_records(path)
        except ValueError as e:  # a truncated file, or a chunk that fails its hash
            if "truncated" in str(e):
                raise _truncated(path, "an ArrayRecord") from e
            raise _damaged(f"{path} is corrupt ({first_line(e)})") from e
        return
    unpack = struct.Struct("<Q").unpack_from
    with path.open("rb") as f:
        buffer = b""
        pos = 0
        while True:
            block = f.read(_BLOCK)
            if not block:
                if pos < len(buffer):
                    raise _truncated(path)
                return
            buffer = buffer[pos:] + block
            pos = 0
            end = len(buffer)
            while pos + 12 <= end:
                (length,) = unpack(buffer, pos)
                start = pos + 12
                stop = start + length + 4
                if stop > end:
                    break
                yield buffer[start : start + length]
                pos = stop


def _truncated(path: Path, kind: str = "a TFRecord") -> CorruptArtifactError:
    return _damaged(f"{path} is truncated or not {kind} file")


def _damaged(what: str) -> CorruptArtifactError:
    return CorruptArtifactError(
        f"{what}; for a release run 'registry datasets pull REF --verify' (it repairs the "
        "cache), for a build run 'registry datasets build NAME --force'"
    )


def _example_class() -> Any:
    from tensorflow.core.example import example_pb2

    return example_pb2.Example


def _canonical_records(path: Path) -> Iterator[bytes]:
    """A shard's records, each in the deterministic (key-sorted) encoding.

    Records the registry's serializer wrote are that already; a shard written before it is
    re-serialized record by record (decided on its first records: one process wrote a shard,
    with one map order).
    """
    example = _example_class()
    records = _records(path)
    head = []
    canonical = True
    for record in records:
        head.append(record)
        if example.FromString(record).SerializeToString(deterministic=True) != record:
            canonical = False
            break
        if len(head) >= _SAMPLED:
            break
    if canonical:
        yield from head
        yield from records
        return
    for record in [*head, *records]:
        yield example.FromString(record).SerializeToString(deterministic=True)


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=_DIGEST).digest()


def _pairs(side: Side, split_info: Any, by_key: bool) -> Iterator[tuple[bytes, bytes, bytes]]:
    """``(key digest, content digest, record)`` of every example of a split of ``side``."""
    example = _example_class()
    key = side.key
    for shard in split_info.filepaths:
        for record in _canonical_records(Path(str(shard))):
            content = _digest(record)
            if by_key:
                assert key is not None
                yield _digest(key.key(example.FromString(record)).encode()), content, record
            else:
                yield content, content, record


def _spill(
    side: Side, split_info: Any, by_key: bool, folder: Path, partitions: int
) -> list[Path]:
    """Write ``key + content`` digests of a split to ``partitions`` files, by the key digest."""
    folder.mkdir(parents=True)
    paths = [folder / f"{p:03d}" for p in range(partitions)]
    buffers: list[list[bytes]] = [[] for _ in range(partitions)]
    files = [p.open("wb") for p in paths]
    try:
        for key, content, _ in _pairs(side, split_info, by_key):
            buffer = buffers[key[0] % partitions]
            buffer.append(key + content)
            if len(buffer) >= 4096:
                files[key[0] % partitions].write(b"".join(buffer))
                buffer.clear()
        for f, buffer in zip(files, buffers, strict=True):
            f.write(b"".join(buffer))
    finally:
        for f in files:
            f.close()
    return paths


def _pair_counts(path: Path) -> Counter[bytes]:
    data = path.read_bytes()
    step = 2 * _DIGEST
    return Counter(data[i : i + step] for i in range(0, len(data), step))


def _compare_split(
    split: str,
    a: tuple[Side, Any],
    b: tuple[Side, Any],
    by_key: bool,
    tmp: Path,
    show: int,
) -> tuple[dict[str, int], list[tuple[str, Change, bytes, bytes | None, bytes | None]]]:
    """Counts of one split, partition by partition; up to ``show`` samples (key, contents)."""
    largest = max(int(a[1].num_examples), int(b[1].num_examples), 1)
    partitions = min(1024, max(1, math.ceil(largest / _PARTITION_PAIRS)))
    spilled_a = _spill(a[0], a[1], by_key, tmp / f"{split}-a", partitions)
    spilled_b = _spill(b[0], b[1], by_key, tmp / f"{split}-b", partitions)
    counts = {"added": 0, "removed": 0, "changed": 0, "unchanged": 0}
    samples: list[tuple[str, Change, bytes, bytes | None, bytes | None]] = []

    def sample(change: Change, key: bytes, before: bytes | None, after: bytes | None) -> None:
        if len(samples) < show:
            samples.append((split, change, key, before, after))

    for path_a, path_b in zip(spilled_a, spilled_b, strict=True):
        pairs_a, pairs_b = _pair_counts(path_a), _pair_counts(path_b)
        path_a.unlink()
        path_b.unlink()
        counts["unchanged"] += sum((pairs_a & pairs_b).values())
        only_a, only_b = pairs_a - pairs_b, pairs_b - pairs_a
        del pairs_a, pairs_b
        # What is left, by key: as many of a key's examples as both sides have are changed.
        by_key_a: dict[bytes, list[bytes]] = {}
        by_key_b: dict[bytes, list[bytes]] = {}
        for pairs, grouped in ((only_a, by_key_a), (only_b, by_key_b)):
            for pair, n in pairs.items():
                grouped.setdefault(pair[:_DIGEST], []).extend([pair[_DIGEST:]] * n)
        for key, contents in by_key_a.items():
            others = by_key_b.pop(key, [])
            paired = min(len(contents), len(others))
            counts["changed"] += paired
            counts["removed"] += len(contents) - paired
            for before, after in zip(contents, others, strict=False):
                sample("changed", key, before, after)
            for before in contents[paired:]:
                sample("removed", key, before, None)
        for key, contents in by_key_b.items():
            counts["added"] += len(contents)
            for after in contents:
                sample("added", key, None, after)
    return counts, samples


def _show(
    samples: list[tuple[str, Change, bytes, bytes | None, bytes | None]],
    a: Side,
    b: Side,
    info_a: Any,
    info_b: Any,
    by_key: bool,
) -> list[ExampleChange]:
    """The sampled examples, read again from the shards (those with a wanted content digest)."""
    example = _example_class()
    wanted: dict[tuple[str, str], set[bytes]] = {}
    for split, _, _, before, after in samples:
        if before is not None:
            wanted.setdefault((split, "a"), set()).add(before)
        if after is not None:
            wanted.setdefault((split, "b"), set()).add(after)
    found: dict[bytes, Any] = {}
    for (split, which), digests in wanted.items():
        side, info = (a, info_a) if which == "a" else (b, info_b)
        for shard in info.splits[split].filepaths:
            for record in _canonical_records(Path(str(shard))):
                content = _digest(record)
                if content in digests:
                    found[content] = example.FromString(record)
                    digests.discard(content)
            if not digests:
                break
    shown = []
    for split, change, _key, before, after in samples:
        old = found.get(before) if before is not None else None
        new = found.get(after) if after is not None else None
        present = new if new is not None else old
        if by_key and present is not None:
            side = b if new is not None else a
            assert side.key is not None
            key = side.key.key(present)
        else:
            key = f"content {(after or before or b'').hex()[:12]}"
        plain_old = _plain(old) if old is not None else {}
        plain_new = _plain(new) if new is not None else {}
        fields: dict[str, list[str | None]] = {}
        for feature in sorted(set(plain_old) | set(plain_new)):
            value_old, value_new = plain_old.get(feature), plain_new.get(feature)
            if change == "changed" and value_old == value_new:
                continue
            fields[feature] = [
                None if old is None or feature not in plain_old else _short(value_old),
                None if new is None or feature not in plain_new else _short(value_new),
            ]
        shown.append(ExampleChange(split, change, key, fields))
    return shown


def _values(feature: Any) -> list[Any]:
    kind = feature.WhichOneof("kind")
    return list(getattr(feature, kind).value) if kind else []


def _plain(example: Any) -> dict[str, Any]:
    """A parsed ``tf.train.Example`` as plain values: one value unwrapped, UTF-8 text as str."""
    plain: dict[str, Any] = {}
    for name, feature in example.features.feature.items():
        values = [_text(v) for v in _values(feature)]
        plain[name] = values[0] if len(values) == 1 else values
    return plain


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def _key_text(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    value = _text(value)
    return value if isinstance(value, str) else repr(value)


def _short(value: Any) -> str:
    """A value for the report: long text and bytes cut, long lists shortened."""
    if isinstance(value, bytes):
        if len(value) <= 24:
            return repr(value)
        return f"<{len(value):,} bytes {hashlib.blake2b(value, digest_size=4).hexdigest()}>"
    if isinstance(value, list):
        if len(value) > 8:
            inner = ", ".join(_short(v) for v in value[:8])
            return f"[{inner}, ... ({len(value):,} values)]"
        return "[" + ", ".join(_short(v) for v in value) + "]"
    text = repr(value)
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 3] + "..."


# -- statistics ---------------------------------------------------------------------------------


def _statistics(a: Side, b: Side, notes: list[str]) -> list[StatShift]:
    """Each feature's shift per split, from both ``build_info.json`` ``statistics`` objects.

    A side built before builds recorded statistics has them computed from its examples
    (:func:`registry.build.stats.statistics_of_prepared`: it reads the whole version, decoded,
    so a note says so); without a readable prepared folder, the note says they are missing.
    """
    from registry.build.stats import statistics_of_prepared

    recorded: list[Mapping[str, Any] | None] = []
    for side in (a, b):
        stats = (side.build_info or {}).get("statistics")
        if not isinstance(stats, Mapping):
            try:
                stats = statistics_of_prepared(str(side.path))
            except Exception as e:  # an unreadable folder: the rest of the diff still stands
                notes.append(
                    f"statistics: not recorded in {side.label} (built before build "
                    f"statistics), and computing them from its data failed: {first_line(e)}"
                )
                stats = None
            else:
                notes.append(
                    f"statistics: not recorded in {side.label} (built before build "
                    "statistics); computed from its examples for this diff"
                )
        recorded.append(stats)
    if recorded[0] is None or recorded[1] is None:
        return []
    splits_a, splits_b = recorded[0].get("splits") or {}, recorded[1].get("splits") or {}
    shifts = []
    for split in sorted(set(splits_a) & set(splits_b)):
        fa = (splits_a[split] or {}).get("features") or {}
        fb = (splits_b[split] or {}).get("features") or {}
        for feature in sorted(set(fa) | set(fb)):
            before, after = fa.get(feature), fb.get(feature)
            kind = str((after or before or {}).get("kind", "other"))
            shifts.append(StatShift(split, feature, kind, _shift(before, after), before, after))
    shifts.sort(key=lambda s: (s.shift is not None, -(s.shift or 0.0), s.split, s.feature))
    return shifts


def _shift(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> float | None:
    """How far a feature's statistics moved (see :class:`StatShift`); ``None``: one-sided."""
    if before is None or after is None:
        return None
    missing = abs(_fraction_missing(after) - _fraction_missing(before))
    kind = after.get("kind")
    if kind != before.get("kind"):
        return math.inf
    if kind == "numeric":
        measure = _standardized(before.get("mean"), after.get("mean"),
                                max(_num(before.get("std")), _num(after.get("std"))))
    elif kind == "categorical":
        measure = _total_variation(before.get("classes") or {}, after.get("classes") or {})
    elif kind == "text":
        measure = _relative((before.get("length") or {}).get("mean"),
                            (after.get("length") or {}).get("mean"))
    elif kind == "image":
        measure = max(
            _relative(before.get("mean_pixel"), after.get("mean_pixel")),
            _total_variation(before.get("shapes") or {}, after.get("shapes") or {}),
        )
    else:
        measure = _relative(before.get("count"), after.get("count"))
    return round(max(measure, missing), 6)


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _fraction_missing(stats: Mapping[str, Any]) -> float:
    count = _num(stats.get("count"))
    return _num(stats.get("missing")) / count if count > 0 else 0.0


def _standardized(before: Any, after: Any, std: float) -> float:
    delta = abs(_num(after) - _num(before))
    if delta == 0:
        return 0.0
    return delta / std if std > 0 else math.inf


def _relative(before: Any, after: Any) -> float:
    old, new = _num(before), _num(after)
    if old == new:
        return 0.0
    return abs(new - old) / abs(old) if old else math.inf


def _total_variation(before: Mapping[str, Any], after: Mapping[str, Any]) -> float:
    total_a = sum(_num(v) for v in before.values())
    total_b = sum(_num(v) for v in after.values())
    if total_a <= 0 or total_b <= 0:
        return 0.0 if total_a == total_b else 1.0
    return 0.5 * sum(
        abs(_num(before.get(k)) / total_a - _num(after.get(k)) / total_b)
        for k in set(before) | set(after)
    )
