"""image_classification/digits: 8x8 handwritten digits, the UCI set that scikit-learn ships.

The raw source is scikit-learn's bundled ``digits.csv.gz`` (64 pixel values in 0..16 and a label
per row), so the dataset builds offline. The Beam pipeline parses rows, drops malformed ones,
rescales pixels to 0..255 and assigns each image to a split by a stable hash of its pixels, so
the split does not depend on row order.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import tensorflow_datasets as tfds

_HERE = Path(__file__).resolve().parent
_TEST_PERCENT = 20


def _sklearn_digits_csv() -> str:
    import sklearn.datasets

    return str(Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz")


def _read_lines(path: str) -> list[str]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return [line for line in f if line.strip()]


def _parse(line: str) -> list[tuple[str, dict[str, Any]]]:
    """One CSV row -> (key, example), or nothing for a malformed row."""
    try:
        values = [int(float(v)) for v in line.strip().split(",")]
    except ValueError:
        return []
    if len(values) != 65 or not all(0 <= v <= 16 for v in values[:64]) or not 0 <= values[64] <= 9:
        return []
    pixels = np.asarray(values[:64], dtype=np.uint8).reshape(8, 8, 1)
    image = (pixels.astype(np.uint16) * 255 // 16).astype(np.uint8)
    key = hashlib.sha1(image.tobytes() + bytes([values[64]])).hexdigest()
    return [(key, {"image": image, "label": values[64]})]


def _in_split(keyed: tuple[str, dict[str, Any]], split: str) -> bool:
    is_test = int(keyed[0][:8], 16) % 100 < _TEST_PERCENT
    return is_test == (split == "test")


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for image_classification/digits."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "Initial release: 8x8 grayscale digits rescaled to 0..255, 80/20 split by hash.",
    }
    # Knobs that params.yaml (datasets.image_classification/digits) may override.
    DEFAULT_PARAMS: ClassVar[dict[str, Any]] = {
        # Folder or file of raw CSV rows; None reads the copy that scikit-learn ships.
        "raw_path": None,
    }

    def __init__(self, *, params: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.params = {**self.DEFAULT_PARAMS, **(params or {})}
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 1)),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://archive.ics.uci.edu/dataset/80",
        )

    def _raw_files(self) -> list[str]:
        raw = self.params["raw_path"]
        if raw is None:
            return [_sklearn_digits_csv()]
        path = Path(raw) if Path(raw).is_absolute() else _HERE / raw
        return sorted(str(p) for p in path.glob("*.csv*")) if path.is_dir() else [str(path)]

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        files = self._raw_files()
        return {
            "train": self._generate_examples(files, "train"),
            "test": self._generate_examples(files, "test"),
        }

    def _generate_examples(self, files: list[str], split: str):
        beam = tfds.core.lazy_imports.apache_beam
        return (
            beam.Create(files)
            | "Read" >> beam.FlatMap(_read_lines)
            | "Reshuffle" >> beam.Reshuffle()
            | "Parse" >> beam.FlatMap(_parse)
            | "Split" >> beam.Filter(_in_split, split)
            # The same image twice would be two examples with one key: keep one.
            | "Dedupe" >> beam.CombinePerKey(lambda examples: next(iter(examples)))
        )
