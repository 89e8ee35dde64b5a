"""image_classification/digits builds from its dummy data (30 rows, one malformed, one twice)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from registry.testing import check_builder


def test_builds_from_dummy_data(tmp_path: Path) -> None:
    # 32 rows: the malformed one is dropped and the duplicate kept once, leaving 30 images.
    builder = check_builder(__file__, expected_splits={"train": 22, "test": 8}, data_dir=tmp_path)
    for split in ("train", "test"):
        for example in tfds.as_numpy(builder.as_dataset(split=split)):
            assert example["image"].shape == (8, 8, 1)
            assert example["image"].dtype == np.uint8
            assert 0 <= example["label"] <= 9
