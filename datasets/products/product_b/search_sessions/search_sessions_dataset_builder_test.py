"""products/product_b/search_sessions builds from its dummy snapshot, and bad snapshots are refused.

``dummy_data/`` is a warehouse snapshot as the extract stage writes it: two Parquet shards
holding ``query.sql``'s answer, with the default parameters (October 2026, 30-minute gap, ten
searches a minute), on the tiny seed ``dummy_data/warehouse.json``, run on the BigQuery
emulator. The seed has a case of every rule of the query; what survives is 12 sessions of 9
visitors:

- dropped by the query: a client retry (ana's second search logged twice), blank searches
  (chloe's), crawlers (Googlebot, bingbot, AhrefsBot, HeadlessChrome, python-requests,
  facebookexternalhit), a probe with no user agent, a staff account, a scraper firing 12
  searches in 44 seconds (and its slow search days later), ben's sessions that start in
  September or November;
- kept: a phone whose user agent says CUBOT, a person at exactly ten searches a minute (fast),
  a visitor missing from ``visitors`` (new) and one without a country (dan), ben's session from
  31 October 23:50 into November, whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow_datasets as tfds

from registry.testing import check_builder

HERE = Path(__file__).resolve().parent
SESSIONS = {
    "v-ana-20261005T090000",
    "v-ana-20261005T093130",
    "v-ana-20261022T194000",
    "v-ben-20261031T235000",
    "v-chloe-20261010T200000",
    "v-cubot-20261015T210000",
    "v-dan-20261012T080000",
    "v-dan-20261028T083000",
    "v-eve-20261003T140000",
    "v-eve-20261025T170000",
    "v-fast-20261016T200000",
    "v-new-20261020T180000",
}


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Build once; every example by session id, with its split and class names decoded."""
    builder = check_builder(
        __file__,
        expected_splits={"train": 9, "test": 3},
        data_dir=tmp_path_factory.mktemp("search_sessions"),
    )
    features = builder.info.features
    by_id: dict[str, dict[str, Any]] = {}
    for split in ("train", "test"):
        for raw in tfds.as_numpy(builder.as_dataset(split=split)):
            example: dict[str, Any] = {
                key: value.decode() if isinstance(value, bytes) else value
                for key, value in raw.items()
            }
            example["queries"] = [q.decode() for q in example["queries"]]
            for key in ("device", "success"):
                example[key] = features[key].int2str(example[key])
            example["split"] = split
            assert example["session_id"] not in by_id, "duplicate session id"
            by_id[example["session_id"]] = example
    return by_id


def test_one_example_per_session_of_a_real_user(sessions: dict[str, dict[str, Any]]) -> None:
    assert set(sessions) == SESSIONS


def test_features_are_the_sessions_values(sessions: dict[str, dict[str, Any]]) -> None:
    fast = sessions["v-fast-20261016T200000"]
    assert (fast["num_searches"], fast["duration_seconds"], fast["num_clicks"]) == (10, 54, 1)
    assert fast["queries"][:3] == ["road bike", "iphone 13", "sofa"]
    assert (fast["hour"], fast["day_of_week"]) == (20, 4)  # a Friday, UTC
    assert fast["start_time"] == 1792180800  # 2026-10-16T20:00:00Z
    assert (fast["device"], fast["country"], fast["success"]) == ("mobile", "NL", "yes")
    chloe = sessions["v-chloe-20261010T200000"]
    assert chloe["queries"] == ["iphnoe 13", "iphone 13"]  # the blank searches between: gone
    assert (chloe["num_zero_results"], chloe["device"]) == (1, "mobile")  # logged "Mobile"
    ana = sessions["v-ana-20261005T090000"]
    assert ana["queries"] == ["road bike", "road bike 54cm"]  # the retry counted once
    assert (ana["num_searches"], ana["duration_seconds"]) == (2, 90)
    ben = sessions["v-ben-20261031T235000"]
    assert (ben["queries"], ben["duration_seconds"], ben["day_of_week"]) == (
        ["sofa", "grey sofa"],
        1200,
        5,
    )
    assert sessions["v-dan-20261012T080000"]["device"] == "unknown"
    assert {sessions[s]["country"] for s in ("v-dan-20261012T080000", "v-new-20261020T180000")} == {
        "unknown"
    }


def test_success_is_a_click_on_the_last_search(sessions: dict[str, dict[str, Any]]) -> None:
    failed = {s for s, ex in sessions.items() if ex["success"] == "no"}
    # A click then another search (ana's lego, eve's coat), or no click at all.
    assert failed == {
        "v-ana-20261005T093130",
        "v-ana-20261022T194000",
        "v-dan-20261012T080000",
        "v-eve-20261003T140000",
    }
    assert sessions["v-ana-20261005T093130"]["num_clicks"] == 1


def test_split_keeps_a_visitors_sessions_together(sessions: dict[str, dict[str, Any]]) -> None:
    test = {s for s, ex in sessions.items() if ex["split"] == "test"}
    assert test == {s for s in SESSIONS if s.startswith("v-ana-")}


def test_supervised_inputs_leave_out_what_gives_the_label_away() -> None:
    builder = check_builder(__file__, expected_splits={"train": 9, "test": 3}, read_back=False)
    inputs, label = builder.info.supervised_keys
    assert label == "success"
    assert set(inputs) == {
        "hour",
        "day_of_week",
        "country",
        "device",
        "queries",
        "num_searches",
        "num_zero_results",
    }


# ---------------------------------------------------------------------------------------------
# Refusals: a missing or foreign snapshot, and params that belong elsewhere.


def test_a_missing_snapshot_folder_names_the_extract_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no snapshot folder.*registry datasets extract"):
        check_builder(__file__, expected_splits={}, params={"raw_path": str(tmp_path / "none")})


def test_a_folder_without_parquet_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a snapshot\n")
    with pytest.raises(FileNotFoundError, match=r"holds no warehouse snapshot \(\*\.parquet\)"):
        check_builder(__file__, expected_splits={}, params={"raw_path": str(tmp_path)})


def test_a_snapshot_missing_columns_names_them(tmp_path: Path) -> None:
    table = pq.read_table(HERE / "dummy_data" / "part-00000-of-00002.parquet")
    pq.write_table(table.drop_columns(["success", "queries"]), tmp_path / "part-0.parquet")
    with pytest.raises(ValueError, match=r"lacks the columns \['queries', 'success'\]"):
        check_builder(__file__, expected_splits={}, params={"raw_path": str(tmp_path)})


def test_a_row_outside_the_querys_contract_is_refused(tmp_path: Path) -> None:
    table = pq.read_table(HERE / "dummy_data" / "part-00000-of-00002.parquet").slice(0, 1)
    devices = pa.array(["smart-tv"])
    table = table.set_column(table.schema.get_field_index("device"), "device", devices)
    pq.write_table(table, tmp_path / "part-0.parquet")
    with pytest.raises(ValueError, match=r"device 'smart-tv', not one of"):
        check_builder(__file__, expected_splits={}, params={"raw_path": str(tmp_path)})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start_date": "2026-10-01"}, r"unknown params \['start_date'\].*warehouse: params:"),
        ({"test_percent": 120}, "test_percent must be an integer in 0..100"),
    ],
)
def test_bad_params_are_refused(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_builder(__file__, expected_splits={}, params=params)
