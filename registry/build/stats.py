"""Per-feature statistics of a build, computed while it is built.

Every build of a dataset describes each split's features in ``build_info.json`` (schema below),
so ``registry datasets info``, the diff of two versions' statistics and the catalog need no
bytes. The statistics are accumulated over **the example dicts the builder yields** (what its
``_generate_examples`` or its Beam ``PCollection`` holds, before TFDS encodes them): a class
label may be its name or its index, a text a ``str`` or UTF-8 ``bytes``, an image a ``uint8``
array. The same accumulators also take **decoded examples** as ``tfds.as_numpy`` yields them
(indices, ``bytes``, arrays), which is how :func:`statistics_of_prepared` describes a version
built before statistics existed; both give the same numbers.

Per feature kind (the flattened keys of ``info.features.get_tensor_info()``, ``a/b`` when
nested):

- ``categorical`` (``ClassLabel``, ``bool`` scalars): ``classes``, the count of each class seen;
  a label outside the classes is ``missing``.
- ``numeric`` (int and float scalars and fixed-shape tensors): ``mean``, ``std`` (population),
  ``min``, ``max`` over every element; ``count`` and ``missing`` (NaN) count elements too, so
  for a scalar they count examples.
- ``text`` (``Text``, scalar string tensors): ``length`` of the value in characters (``mean``,
  ``std``, ``min``, ``max``); an empty string is ``missing``.
- ``image`` (``Image``): ``shapes`` (``HxWxC`` -> count) and ``mean_pixel``; an empty image is
  ``missing``.
- ``other`` (sequences, video, audio, ...): ``count`` only.

``count`` includes ``missing``; the other numbers describe the values that are not missing
(``null`` when there are none). Floats are rounded to 6 significant digits. Accumulators merge
in any order with the same result: integer data (labels, lengths, pixels, int features) are
summed exactly; float features merge mean and spread with Chan's parallel formula, whose last
bits the rounding hides.

This module is pickled by value to Beam workers (like :mod:`registry.build.reproducible`), so it
imports nothing from ``registry`` and only NumPy at module level: Beam and TFDS are imported
where they are used.

Example:
    >>> specs = [("x", "numeric", (), None, "float32"),
    ...          ("label", "categorical", (), ("cat", "dog"), None)]
    >>> stats = SplitStatistics(specs)
    >>> stats.add_all([{"x": 1.0, "label": "cat"}, {"x": 3.0, "label": 1}])
    >>> stats.to_dict()["features"]["label"]["classes"]
    {'cat': 1, 'dog': 1}
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "SCHEMA",
    "FeatureStatistics",
    "SplitStatistics",
    "combine_fn",
    "feature_specs",
    "read_statistics",
    "statistics_branch",
    "statistics_of_prepared",
    "write_split_statistics",
]

SCHEMA = 1

# A feature spec: (flattened key, kind, path of keys into the example dict, class names, NumPy
# dtype name or None). Plain data: it travels to Beam workers.
Spec = tuple[str, str, tuple[str, ...], "tuple[str, ...] | None", "str | None"]

# Values are buffered per feature and reduced with NumPy this many at a time.
_BATCH = 4096
_BOOL_NAMES = ("false", "true")


def _round(value: float | int | None) -> float | int | None:
    """A JSON number that is the same in every run: ints as they are, floats to 6 digits."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    number = float(value)
    if not math.isfinite(number):
        return None
    return float(f"{number:.6g}")


class _Moments:
    """Count, mean, spread, min and max of numbers, mergeable in any order.

    Integers are summed exactly (``s``, ``ss`` as Python ints); floats keep ``mean`` and ``m2``
    (the sum of squared deviations) and merge them with Chan's parallel formula.
    """

    __slots__ = ("exact", "m2", "max", "mean", "min", "n", "s", "ss")

    def __init__(self) -> None:
        self.n = 0
        self.exact = True
        self.s = 0
        self.ss = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min: Any = None
        self.max: Any = None

    def add_array(self, values: np.ndarray) -> None:
        """Add the (already finite, non-missing) numbers of a 1-D array."""
        if values.size == 0:
            return
        other = _Moments()
        other.n = int(values.size)
        if values.dtype.kind in "iub":
            ints = values.astype(np.int64, copy=False)
            # Summed in int64 chunks that cannot overflow, then as Python ints: exact.
            top = max(int(np.abs(ints).max()), 1)
            step = max(1, 2**62 // (top * top * 2))
            for start in range(0, ints.size, step):
                chunk = ints[start : start + step]
                other.s += int(chunk.sum())
                other.ss += int(np.dot(chunk, chunk))
            other.min, other.max = int(ints.min()), int(ints.max())
        else:
            floats = values.astype(np.float64, copy=False)
            other.exact = False
            other.mean = float(floats.mean())
            other.m2 = float(np.square(floats - other.mean).sum())
            other.min, other.max = float(floats.min()), float(floats.max())
        self.merge(other)

    def _floats(self) -> tuple[float, float]:
        """``(mean, m2)`` of an exact accumulator, correctly rounded."""
        if self.n == 0:
            return 0.0, 0.0
        return self.s / self.n, (self.n * self.ss - self.s * self.s) / self.n

    def merge(self, other: _Moments) -> None:
        """Add ``other``'s numbers to these."""
        if other.n == 0:
            return
        if self.n == 0:
            for name in self.__slots__:
                setattr(self, name, getattr(other, name))
            return
        if self.exact and other.exact:
            self.s += other.s
            self.ss += other.ss
        else:
            mean_a, m2_a = (self.mean, self.m2) if not self.exact else self._floats()
            mean_b, m2_b = (other.mean, other.m2) if not other.exact else other._floats()
            n = self.n + other.n
            delta = mean_b - mean_a
            self.mean = mean_a + delta * other.n / n
            self.m2 = m2_a + m2_b + delta * delta * self.n * other.n / n
            self.exact = False
        self.n += other.n
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def state(self) -> list[Any]:
        """Plain data (builtins only) that :meth:`from_state` reads back."""
        return [getattr(self, name) for name in self.__slots__]

    @classmethod
    def from_state(cls, state: Sequence[Any]) -> _Moments:
        """The moments :meth:`state` described."""
        moments = cls()
        for name, value in zip(cls.__slots__, state, strict=True):
            setattr(moments, name, value)
        return moments

    def to_dict(self) -> dict[str, Any]:
        """``mean``, ``std``, ``min``, ``max`` (``None`` when empty)."""
        if self.n == 0:
            return {"mean": None, "std": None, "min": None, "max": None}
        mean, m2 = self._floats() if self.exact else (self.mean, self.m2)
        return {
            "mean": _round(mean),
            "std": _round(math.sqrt(max(m2, 0.0) / self.n)),
            "min": _round(self.min),
            "max": _round(self.max),
        }


class FeatureStatistics:
    """The statistics of one feature: add values one at a time or in batches, merge, report.

    Use :meth:`for_spec` to get the accumulator of a feature's kind. Values are buffered and
    reduced with NumPy :data:`_BATCH` at a time.
    """

    kind = "other"

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.count = 0
        self.missing = 0
        self._buffer: list[Any] = []

    @staticmethod
    def for_spec(spec: Spec) -> FeatureStatistics:
        """The accumulator for ``spec``'s kind."""
        kinds: dict[str, type[FeatureStatistics]] = {
            "numeric": _Numeric,
            "categorical": _Categorical,
            "text": _Text,
            "image": _Image,
        }
        return kinds.get(spec[1], FeatureStatistics)(spec)

    def add(self, value: Any) -> None:
        """Add one value (``None``: the feature is absent from the example)."""
        self._buffer.append(value)
        if len(self._buffer) >= _BATCH:
            self.flush()

    def add_batch(self, values: Iterable[Any]) -> None:
        """Add many values at once."""
        self._buffer.extend(values)
        if len(self._buffer) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        """Reduce the buffered values into the statistics."""
        # Emptied in place: SplitStatistics appends to this very list.
        values = self._buffer[:]
        self._buffer.clear()
        if values:
            self._reduce(values)

    def _reduce(self, values: list[Any]) -> None:
        self.count += len(values)
        self.missing += sum(v is None for v in values)

    def merge(self, other: FeatureStatistics) -> None:
        """Add ``other``'s values (of the same feature) to these."""
        self.flush()
        other.flush()
        self.count += other.count
        self.missing += other.missing
        self._merge(other)

    def _merge(self, other: Any) -> None:
        pass

    def to_dict(self) -> dict[str, Any]:
        """The feature's entry in ``statistics.splits.<split>.features``."""
        self.flush()
        return {"kind": self.kind, "count": self.count, "missing": self.missing, **self._dict()}

    def _dict(self) -> dict[str, Any]:
        return {}

    def state(self) -> dict[str, Any]:
        """The reduced numbers as plain data (builtins only), for :meth:`from_state`.

        Beam sends accumulators between workers with a coder that pickles this, not the
        object: a worker's copy of this module's classes is pickled by value and would not be
        found by name on the other side.
        """
        self.flush()
        return {"count": self.count, "missing": self.missing, **self._state()}

    def _state(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def from_state(spec: Spec, state: Mapping[str, Any]) -> FeatureStatistics:
        """The accumulator of ``spec`` that :meth:`state` described."""
        feature = FeatureStatistics.for_spec(spec)
        feature.count, feature.missing = state["count"], state["missing"]
        feature._load(state)
        return feature

    def _load(self, state: Mapping[str, Any]) -> None:
        pass


class _Numeric(FeatureStatistics):
    kind = "numeric"

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.moments = _Moments()

    def _reduce(self, values: list[Any]) -> None:
        if any(v is None for v in values):
            present = [v for v in values if v is not None]
            self.count += len(values) - len(present)
            self.missing += len(values) - len(present)
            values = present
            if not values:
                return
        # As TFDS stores them (a Python float in a float32 feature is rounded to float32), so
        # that raw and decoded examples give the same statistics.
        dtype = self.spec[4] if len(self.spec) > 4 else None
        array = np.asarray(values, dtype=dtype).ravel()
        if array.dtype.kind == "O":  # mixed Python types: numbers all the same
            array = array.astype(np.float64)
        self.count += int(array.size)
        if array.dtype.kind == "f":
            finite = np.isfinite(array)
            if not finite.all():
                self.missing += int(np.isnan(array).sum())
                array = array[finite]
        self.moments.add_array(array)

    def _merge(self, other: Any) -> None:
        self.moments.merge(other.moments)

    def _dict(self) -> dict[str, Any]:
        return self.moments.to_dict()

    def _state(self) -> dict[str, Any]:
        return {"moments": self.moments.state()}

    def _load(self, state: Mapping[str, Any]) -> None:
        self.moments = _Moments.from_state(state["moments"])


class _Categorical(FeatureStatistics):
    kind = "categorical"

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.classes: Counter[int] = Counter()

    def _index(self, value: Any, names: Sequence[str]) -> int:
        """The class index of a raw (name or index) or decoded value; -1 when none."""
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if isinstance(value, str):
            try:
                return names.index(value)
            except ValueError:
                return -1
        index = int(value)
        return index if 0 <= index < len(names) else -1

    def _reduce(self, values: list[Any]) -> None:
        names = self.spec[3] or _BOOL_NAMES
        self.count += len(values)
        try:
            counts = Counter(values)
        except TypeError:  # 0-d arrays are not hashable
            counts = Counter(v.item() if isinstance(v, np.ndarray) else v for v in values)
        for value, n in counts.items():
            index = -1 if value is None else self._index(value, names)
            if index < 0:
                self.missing += n
            else:
                self.classes[index] += n

    def _merge(self, other: Any) -> None:
        self.classes.update(other.classes)

    def _dict(self) -> dict[str, Any]:
        names = self.spec[3] or _BOOL_NAMES
        return {"classes": {names[i]: n for i, n in sorted(self.classes.items())}}

    def _state(self) -> dict[str, Any]:
        return {"classes": dict(self.classes)}

    def _load(self, state: Mapping[str, Any]) -> None:
        self.classes = Counter(state["classes"])


def _chars(value: Any) -> int:
    """The length of a text in characters (``bytes`` are UTF-8); ``-1`` when absent."""
    if value is None:
        return -1
    if isinstance(value, str):
        return len(value)
    return len(bytes(value).decode("utf-8"))


class _Text(FeatureStatistics):
    kind = "text"

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.length = _Moments()

    def _reduce(self, values: list[Any]) -> None:
        if all(type(v) is str for v in values):
            lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
        else:
            lengths = np.fromiter(map(_chars, values), dtype=np.int64, count=len(values))
        self.count += len(values)
        present = lengths[lengths > 0]
        self.missing += len(values) - int(present.size)
        self.length.add_array(present)

    def _merge(self, other: Any) -> None:
        self.length.merge(other.length)

    def _dict(self) -> dict[str, Any]:
        return {"length": self.length.to_dict()}

    def _state(self) -> dict[str, Any]:
        return {"length": self.length.state()}

    def _load(self, state: Mapping[str, Any]) -> None:
        self.length = _Moments.from_state(state["length"])


def _image_array(value: Any) -> np.ndarray | None:
    """An image value as an array: arrays as they are, encoded bytes or a path decoded."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return value
    import io

    from PIL import Image

    source = io.BytesIO(value) if isinstance(value, bytes) else value
    with Image.open(source) as image:
        return np.asarray(image)


class _Image(FeatureStatistics):
    kind = "image"

    def __init__(self, spec: Spec) -> None:
        super().__init__(spec)
        self.shapes: Counter[str] = Counter()
        # The mean pixel: the sum of every pixel (an exact int for integer images) over their
        # number.
        self.pixel_sum: int | float = 0
        self.pixel_count = 0

    def _reduce(self, values: list[Any]) -> None:
        self.count += len(values)
        arrays = [_image_array(v) for v in values]
        present = [a for a in arrays if a is not None and a.size]
        self.missing += len(values) - len(present)
        if not present:
            return
        shape = present[0].shape
        same = all(a.shape == shape for a in present)
        for group in [np.stack(present)] if same else [a[None] for a in present]:
            self.shapes["x".join(map(str, group.shape[1:]))] += len(group)
            self.pixel_count += int(group.size)
            if group.dtype.kind in "iub":
                self.pixel_sum += int(group.sum(dtype=np.int64))
            else:
                self.pixel_sum += float(group.sum(dtype=np.float64))

    def _merge(self, other: Any) -> None:
        self.shapes.update(other.shapes)
        self.pixel_sum += other.pixel_sum
        self.pixel_count += other.pixel_count

    def _dict(self) -> dict[str, Any]:
        mean = self.pixel_sum / self.pixel_count if self.pixel_count else None
        return {"shapes": dict(sorted(self.shapes.items())), "mean_pixel": _round(mean)}

    def _state(self) -> dict[str, Any]:
        return {
            "shapes": dict(self.shapes),
            "pixel_sum": self.pixel_sum,
            "pixel_count": self.pixel_count,
        }

    def _load(self, state: Mapping[str, Any]) -> None:
        self.shapes = Counter(state["shapes"])
        self.pixel_sum, self.pixel_count = state["pixel_sum"], state["pixel_count"]


def _lookup(example: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` in a (nested) example dict; ``None`` when absent."""
    value: Any = example
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
        if value is None:
            return None
    return value


class SplitStatistics:
    """The statistics of one split: every feature's, and the number of examples.

    Feed it examples (raw dicts the builder yields, or decoded ``tfds.as_numpy`` ones, or
    ``(key, example)`` pairs), merge partial ones in any order, and read :meth:`to_dict`.

    Args:
        specs: The features, from :func:`feature_specs`.

    Example:
        >>> stats = SplitStatistics([("n", "numeric", ("n",), None, "int64")])
        >>> stats.add_all([{"n": 1}, {"n": 2}, {"n": 3}])
        >>> stats.to_dict()["features"]["n"]["mean"]
        2.0
    """

    def __init__(self, specs: Sequence[Spec]) -> None:
        self.num_examples = 0
        self.features = [FeatureStatistics.for_spec(tuple(s)) for s in specs]  # type: ignore[arg-type]
        self._columns = [
            (f._buffer, (tuple(s[2]) or (s[0],)))
            for f, s in zip(self.features, specs, strict=True)
        ]
        self._pending = 0

    def add(self, example: Any) -> None:
        """Add one example (a dict, or a ``(key, dict)`` pair as a split's PCollection holds)."""
        if isinstance(example, tuple) and len(example) == 2:
            example = example[1]
        self.num_examples += 1
        # The hot path of every build: one append per feature, reduced in batches.
        get = example.get
        for buffer, path in self._columns:
            buffer.append(get(path[0]) if len(path) == 1 else _lookup(example, path))
        self._pending += 1
        if self._pending >= _BATCH:
            self.flush()

    def flush(self) -> None:
        """Reduce every feature's buffered values."""
        for feature in self.features:
            feature.flush()
        self._pending = 0

    def state(self) -> list[Any]:
        """The reduced statistics as plain data (builtins only), for :meth:`from_state`."""
        return [self.num_examples, [f.state() for f in self.features]]

    @classmethod
    def from_state(cls, specs: Sequence[Spec], state: Sequence[Any]) -> SplitStatistics:
        """The statistics of ``specs`` that :meth:`state` described."""
        stats = cls(specs)
        stats.num_examples = state[0]
        for i, (spec, feature_state) in enumerate(zip(specs, state[1], strict=True)):
            stats.features[i] = FeatureStatistics.from_state(tuple(spec), feature_state)  # type: ignore[arg-type]
            stats._columns[i] = (stats.features[i]._buffer, stats._columns[i][1])
        return stats

    def add_all(self, examples: Iterable[Any]) -> None:
        """Add every example of an iterable."""
        for example in examples:
            self.add(example)

    def merge(self, other: SplitStatistics) -> SplitStatistics:
        """Add ``other``'s examples to these; returns ``self``."""
        self.flush()
        other.flush()
        self.num_examples += other.num_examples
        for mine, theirs in zip(self.features, other.features, strict=True):
            mine.merge(theirs)
        return self

    def to_dict(self) -> dict[str, Any]:
        """``{"num_examples": N, "features": {key: {...}}}``, the split's entry in the JSON."""
        self.flush()
        return {
            "num_examples": self.num_examples,
            "features": {f.spec[0]: f.to_dict() for f in self.features},
        }


def combine_fn(specs: Sequence[Spec]) -> Any:
    """A Beam ``CombineFn`` from a split's examples to its statistics (:meth:`SplitStatistics.
    to_dict`), for ``beam.CombineGlobally``."""
    import pickle

    import apache_beam as beam

    class StateCoder(beam.coders.Coder):
        """Accumulators as their plain-data state: Beam's default coder would pickle this
        module's classes by name, which a worker (this module pickled by value) cannot."""

        def __init__(self, specs: Sequence[Spec]) -> None:
            self.specs = list(specs)

        def encode(self, value: SplitStatistics) -> bytes:
            return pickle.dumps(value.state(), protocol=4)

        def decode(self, encoded: bytes) -> SplitStatistics:
            return SplitStatistics.from_state(self.specs, pickle.loads(encoded))

        def is_deterministic(self) -> bool:
            return False

    class SplitStatisticsCombineFn(beam.CombineFn):
        """Examples (or ``(key, example)`` pairs) -> the split's statistics as plain data."""

        def __init__(self, specs: Sequence[Spec]) -> None:
            self.specs = list(specs)

        def create_accumulator(self) -> SplitStatistics:
            return SplitStatistics(self.specs)

        def add_input(self, accumulator: SplitStatistics, element: Any) -> SplitStatistics:
            accumulator.add(element)
            return accumulator

        def merge_accumulators(self, accumulators: Iterable[SplitStatistics]) -> SplitStatistics:
            merged = SplitStatistics(self.specs)
            for accumulator in accumulators:
                merged.merge(accumulator)
            return merged

        def compact(self, accumulator: SplitStatistics) -> SplitStatistics:
            accumulator.flush()
            return accumulator

        def extract_output(self, accumulator: SplitStatistics) -> dict[str, Any]:
            return accumulator.to_dict()

        def get_accumulator_coder(self) -> StateCoder:
            return StateCoder(self.specs)

    return SplitStatisticsCombineFn(specs)


def write_split_statistics(statistics: Mapping[str, Any], path: str) -> None:
    """Write one split's statistics as JSON to ``path``, local or on a Beam filesystem."""
    data = json.dumps(statistics, sort_keys=True).encode("utf-8")
    if "://" in path:
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.create(path) as f:
            f.write(data)
        return
    import os

    os.makedirs(os.path.dirname(path), exist_ok=True)
    temp = f"{path}.tmp"
    with open(temp, "wb") as f:
        f.write(data)
    os.replace(temp, path)


def statistics_branch(specs: Sequence[Spec], path: str) -> Any:
    """A Beam ``PTransform`` that combines a split's examples into its statistics and writes
    them to ``path`` (a branch beside TFDS's writer, in the same pipeline)."""
    import apache_beam as beam

    @beam.ptransform_fn
    def branch(examples: Any) -> Any:
        return (
            examples
            | "Combine" >> beam.CombineGlobally(combine_fn(specs))
            | "Write" >> beam.Map(write_split_statistics, path=path)
        )

    return branch()


def feature_specs(features: Any) -> list[Spec]:
    """The statistics' features of a TFDS ``FeaturesDict``: ``(key, kind, path, names)`` each,
    keys flattened (``a/b``) and sorted."""
    import tensorflow_datasets as tfds

    specs: list[Spec] = []

    def walk(feature: Any, path: tuple[str, ...], inside_sequence: bool) -> None:
        if isinstance(feature, tfds.features.FeaturesDict):
            for key in feature:
                walk(feature[key], (*path, key), inside_sequence)
            return
        if isinstance(feature, tfds.features.Sequence) and isinstance(
            feature.feature, tfds.features.FeaturesDict
        ):
            walk(feature.feature, path, True)
            return
        key = "/".join(path)
        lookup = path if not inside_sequence else path[:1]
        kind = "other" if inside_sequence else _kind(feature)
        dtype = np.dtype(feature.np_dtype).name if kind == "numeric" else None
        specs.append((key, kind, lookup, _names(feature), dtype))

    walk(features, (), False)
    return sorted(specs)


def _kind(feature: Any) -> str:
    """The statistics kind of a (non-dict) TFDS feature."""
    import tensorflow_datasets as tfds

    f = tfds.features
    if isinstance(feature, f.ClassLabel):
        return "categorical"
    if isinstance(feature, f.Image):
        return "image"
    if isinstance(feature, f.Text):
        return "text"
    if isinstance(feature, f.Sequence) or not isinstance(feature, f.Tensor):
        return "other"
    dtype = np.dtype(feature.np_dtype) if feature.np_dtype is not object else np.dtype(object)
    shape = tuple(feature.shape)
    if dtype.kind in "OSU":
        return "text" if shape == () else "other"
    if any(d is None for d in shape):
        return "other"
    if dtype.kind == "b":
        return "categorical" if shape == () else "numeric"
    return "numeric" if dtype.kind in "iuf" else "other"


def _names(feature: Any) -> tuple[str, ...] | None:
    import tensorflow_datasets as tfds

    if isinstance(feature, tfds.features.ClassLabel):
        return tuple(feature.names)
    return None


def read_statistics(folder: str, splits: Iterable[str]) -> dict[str, Any] | None:
    """The ``statistics`` of ``build_info.json`` from the files a build wrote in ``folder``
    (``<split>.json`` each); ``None`` if a split's file is missing."""
    import os

    result: dict[str, Any] = {}
    for split in sorted(splits):
        path = os.path.join(folder, f"{split}.json")
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as f:
            result[split] = json.load(f)
    return {"schema": SCHEMA, "splits": result}


def statistics_of_prepared(folder: str) -> dict[str, Any]:
    """The statistics of a prepared TFDS folder, read example by example (for a version built
    before builds recorded statistics): the same structure as ``build_info.json``'s.

    Example:
        >>> folder = "datasets/image_classification/digits/prepared"
        >>> statistics_of_prepared(folder)  # doctest: +SKIP
        {'schema': 1, 'splits': {'test': {'num_examples': 342, 'features': {...}}, ...}}
    """
    import tensorflow_datasets as tfds

    # Imported here: this module imports nothing from ``registry`` at module level (see above).
    from registry.storage.array_records import enable_tf_data

    enable_tf_data()  # an ArrayRecord build reads as a TFRecord one does
    builder = tfds.builder_from_directory(str(folder))
    specs = feature_specs(builder.info.features)
    splits = {}
    for split in sorted(builder.info.splits):
        stats = SplitStatistics(specs)
        dataset = builder.as_dataset(split=split, shuffle_files=False)
        stats.add_all(tfds.as_numpy(dataset))
        splits[split] = stats.to_dict()
    return {"schema": SCHEMA, "splits": splits}
