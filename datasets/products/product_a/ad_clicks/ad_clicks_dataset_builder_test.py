"""products/product_a/ad_clicks builds from its dummy export, and every cleaning rule holds.

``dummy_data/`` holds 43 impression rows in two shards: 20 good impressions (a001..a020), four
extra copies of them (a002 twice, a007 three times across both shards, a003 again with a
malformed bid), and 19 rows to reject (m01..m18: malformed fields or unknown campaigns, and one
without an id); and a campaign table with a case of every campaign rule.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import tensorflow_datasets as tfds

from registry.testing import check_builder

GOOD_IDS = {f"a{i:03d}" for i in range(1, 21)}
MEDIAN_BUDGET = 725.0  # median of the valid budgets 300, 500, 650, 800, 900, 1200


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Build once; every example by impression id, with its split and class names decoded."""
    builder = check_builder(
        __file__,
        expected_splits={"train": 17, "test": 3},
        data_dir=tmp_path_factory.mktemp("ad_clicks"),
    )
    features = builder.info.features
    by_id: dict[str, dict[str, Any]] = {}
    for split in ("train", "test"):
        for raw in tfds.as_numpy(builder.as_dataset(split=split)):
            example = {
                key: value.decode() if isinstance(value, bytes) else value.item()
                for key, value in raw.items()
            }
            for key in ("device", "category", "clicked"):
                example[key] = features[key].int2str(example[key])
            example["split"] = split
            assert example["impression_id"] not in by_id, "duplicate impression id"
            by_id[example["impression_id"]] = example
    return by_id


def test_keeps_exactly_the_good_impressions_once(examples: dict[str, dict[str, Any]]) -> None:
    # Duplicates (a002, a007 three times, a003 with a malformed copy) are kept once; every
    # malformed row (m01..m18, the one without an id) and unknown campaign (c99999, c00008) goes.
    assert set(examples) == GOOD_IDS


def test_no_missing_values_and_normalised_ranges(examples: dict[str, dict[str, Any]]) -> None:
    for ex in examples.values():
        assert 0 <= ex["hour"] <= 23 and 0 <= ex["day_of_week"] <= 6
        assert 1 <= ex["position"] <= 10
        assert math.isfinite(ex["log_bid"]) and ex["log_bid"] >= 0
        assert math.isfinite(ex["log_daily_budget"]) and ex["log_daily_budget"] > 0
        assert ex["country"] and ex["advertiser"] and ex["campaign_id"]
        assert ex["country"] == "unknown" or (ex["country"].isupper() and len(ex["country"]) == 2)
        assert ex["query"] == " ".join(ex["query"].lower().split())
    assert examples["a001"]["log_bid"] == pytest.approx(math.log1p(0.85))
    assert examples["a015"]["hour"] == 20  # 22:40 at UTC+2
    assert examples["a014"]["hour"] == 11  # no zone: UTC
    assert examples["a005"]["hour"] == 0 and examples["a005"]["day_of_week"] == 3  # a Thursday


def test_missing_values_are_filled(examples: dict[str, dict[str, Any]]) -> None:
    assert examples["a009"]["device"] == "unknown"  # empty
    assert examples["a013"]["device"] == "unknown"  # smart-tv
    assert examples["a012"]["device"] == "mobile"  # " Mobile"
    assert examples["a010"]["country"] == "unknown"  # empty
    assert examples["a013"]["country"] == "unknown"  # "U.S."
    assert examples["a012"]["country"] == "DE"
    assert examples["a012"]["query"] == "wireless headphones"
    assert examples["a008"]["query"] == ""
    # Missing bids take the mean log-bid of the train split's known bids.
    imputed = {i for i, ex in examples.items() if ex["bid_imputed"]}
    assert imputed == {"a011", "a017"}
    train = [ex for ex in examples.values() if ex["split"] == "train"]
    known = [ex["log_bid"] for ex in train if not ex["bid_imputed"]]
    for i in imputed:
        assert examples[i]["log_bid"] == pytest.approx(sum(known) / len(known), rel=1e-5)


def test_join_fills_campaign_fields(examples: dict[str, dict[str, Any]]) -> None:
    a001 = examples["a001"]
    assert (a001["advertiser"], a001["category"]) == ("Acme Outfitters", "apparel")
    assert a001["headline"] == "Acme Outfitters: trainers, free shipping"
    assert a001["log_daily_budget"] == pytest.approx(math.log1p(500.0))
    assert examples["a002"]["advertiser"] == "Globex Travel"  # campaign listed twice
    assert examples["a003"]["log_daily_budget"] == pytest.approx(math.log1p(MEDIAN_BUDGET))
    assert examples["a006"]["log_daily_budget"] == pytest.approx(math.log1p(MEDIAN_BUDGET))
    assert examples["a004"]["advertiser"] == "unknown"
    assert examples["a005"]["category"] == "unknown"  # empty category
    assert examples["a008"]["category"] == "unknown"  # "import-export"
    assert examples["a008"]["headline"] == "Vandelay Imports: latex goods"  # spaces collapsed
    assert examples["a007"]["headline"] == ""
    assert examples["a007"]["category"] == "home"  # "Home"


def test_split_is_a_stable_hash_of_the_id(examples: dict[str, dict[str, Any]]) -> None:
    assert {i for i, ex in examples.items() if ex["split"] == "test"} == {"a005", "a014", "a016"}
