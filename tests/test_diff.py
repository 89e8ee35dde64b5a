"""``registry datasets diff``: real builds of a small keyed dataset, changed, rebuilt, diffed.

``demo/shop`` 1.0.0 is released from the scaffold's 9 valid rows (r01 twice: kept once), keyed
by ``id``. Each test edits the rows or the builder, builds with DVC and Beam, and diffs the
release with the workspace build, two releases, or two prepared folders on disk.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import registry
from registry.build.compare import DatasetDiff, SplitDiff, StatShift, _shift, declared_key
from registry.errors import (
    DatasetMismatchError,
    NotBuiltError,
    RemoteError,
    VersionNotFoundError,
)
from registry.semver import required_bump
from tests.conftest import cli_ok, cli_raises
from tests.diff_fixtures import FOLDER, NAME, Shop, rebuild

pytestmark = pytest.mark.slow
V1 = f"{NAME}:1.0.0"


def _totals(diff: DatasetDiff) -> tuple[int, int, int]:
    """Added, removed, changed over every split."""
    return (
        sum(s.added for s in diff.splits),
        sum(s.removed for s in diff.splits),
        sum(s.changed for s in diff.splits),
    )


def _edit_rows(shop: Shop) -> None:
    """r06's text changed, r07 removed, r99 added."""
    rows = shop.rows().replace("Works exactly as described.", "Works as described mostly.")
    rows = rows.replace("r07,Too expensive for what it does.,negative\n", "")
    shop.write_rows(rows.rstrip("\n") + "\nr99,Brand new row.,positive\n")


def test_same_build_is_no_changes(shop: Shop) -> None:
    diff = registry.diff_datasets(V1)
    assert diff.identical and _totals(diff) == (0, 0, 0)
    assert diff.matched_by == "key" and diff.key == "KEY_FEATURE 'id'"
    assert {s.split: s.unchanged for s in diff.splits} == {"test": 2, "train": 7}
    assert [(s.before, s.after) for s in diff.splits if s.before != s.after] == []
    text = cli_ok("datasets", "diff", V1)
    assert "no changes: same schema, same examples in every split" in text
    assert f"{NAME}: {NAME} 1.0.0 -> workspace build (1.0.0)" in text
    # Both builds recorded their statistics in build_info.json: compared, nothing moved.
    assert "statistics (largest shift first):\n  no shifts" in text
    assert "statistics: not recorded" not in text


def test_edited_rows_are_counted_by_key_and_shown(shop: Shop) -> None:
    _edit_rows(shop)
    rebuild(shop, "Edit rows")
    diff = registry.diff_datasets(V1, show=5)
    assert _totals(diff) == (1, 1, 1)
    assert sum(s.unchanged for s in diff.splits) == 7
    assert required_bump(diff) == "major"
    shown = {(e.change, e.key): e.fields for e in diff.examples}
    assert shown[("changed", "r06")] == {
        "text": ["'Works exactly as described.'", "'Works as described mostly.'"]
    }
    assert shown[("removed", "r07")]["text"] == ["'Too expensive for what it does.'", None]
    assert shown[("added", "r99")]["label"] == [None, "1"]
    text = cli_ok("datasets", "diff", V1, "--show", "1")
    assert text.count("\n  ~ ") + text.count("\n  - ") + text.count("\n  + ") == 1
    assert "matched by key (KEY_FEATURE 'id')" in text
    data = json.loads(cli_ok("datasets", "diff", V1, "--json"))
    assert sorted(data) == [
        "after", "before", "examples", "features", "identical", "key", "matched_by", "name",
        "notes", "splits", "statistics",
    ]
    assert data["identical"] is False and data["examples"] == []
    assert sum(s["changed"] for s in data["splits"]) == 1


def test_without_a_key_examples_are_matched_by_content(shop: Shop) -> None:
    shop.edit_builder('    KEY_FEATURE = "id"\n', "")
    _edit_rows(shop)
    rebuild(shop, "Edit rows, no key")
    diff = registry.diff_datasets(V1, show=10)
    # The changed row is one removed and one added.
    assert diff.matched_by == "content" and _totals(diff) == (2, 2, 0)
    assert any("matched by content: no key declared for workspace build" in n for n in diff.notes)
    assert {e.change for e in diff.examples} == {"added", "removed"}
    assert all(e.key.startswith("content ") for e in diff.examples)


def test_example_key_function_is_read_from_the_builder(shop: Shop) -> None:
    shop.edit_builder(
        '    KEY_FEATURE = "id"\n',
        "    @staticmethod\n    def example_key(example):\n        return example['id']\n",
    )
    _edit_rows(shop)
    rebuild(shop, "Key function")
    diff = registry.diff_datasets(V1, show=1)
    assert diff.matched_by == "key" and _totals(diff) == (1, 1, 1)
    assert any("each side's own key is used" in n for n in diff.notes)


def test_class_names_and_features_changed(shop: Shop) -> None:
    shop.edit_builder(
        'LABELS = ("negative", "positive")', 'LABELS = ("negative", "positive", "neutral")'
    )
    shop.edit_builder(
        'return [(key, {"id": key, "text": text, "label": label})]',
        'return [(key, {"id": key, "label": label})]',
    )
    shop.edit_builder('"text": tfds.features.Text(),\n', "")
    shop.edit_builder('supervised_keys=("text", "label"),', "supervised_keys=None,")
    rebuild(shop, "Rename classes, drop text")
    diff = registry.diff_datasets(V1)
    changes = {f.feature: (f.change, f.fields) for f in diff.features}
    assert changes == {"label": ("changed", ["classes"]), "text": ("removed", [])}
    # Every example lost its text: all changed, none added or removed.
    assert _totals(diff) == (0, 0, 9) and required_bump(diff) == "major"
    text = cli_ok("datasets", "diff", V1)
    assert "~ label  classes: ClassLabel int64 [] classes [negative, positive] -> ClassLabel " \
        "int64 [] classes [negative, positive, neutral]" in text
    assert "- text  Text string []" in text


def test_rows_only_added_and_two_releases(shop: Shop) -> None:
    shop.write_rows(shop.rows().rstrip("\n") + "\nr98,Another new row.,negative\n")
    shop.set_version("1.1.0", "One row more.")
    rebuild(shop, "Add a row")
    registry.release_dataset(NAME)
    diff = registry.diff_datasets(V1, f"{NAME}:1.1.0")
    assert _totals(diff) == (1, 0, 0) and required_bump(diff) == "minor"
    assert (diff.before, diff.after) == (f"{NAME} 1.0.0", f"{NAME} 1.1.0")
    assert registry.diff_datasets(f"{NAME}:1.1.0").identical  # the workspace is 1.1.0


def test_two_folders_on_disk(shop: Shop, tmp_path: Path) -> None:
    old = tmp_path / "old" / "prepared"
    shutil.copytree(shop.repo / FOLDER / "prepared", old)
    _edit_rows(shop)
    rebuild(shop, "Edit rows")
    diff = registry.diff_datasets(old, shop.repo / FOLDER / "prepared")
    # A bare folder has no builder beside it: matched by content. Nor a build_info.json: its
    # statistics are computed from its examples, and compared with the recorded ones.
    assert diff.matched_by == "content" and _totals(diff) == (2, 2, 0)
    text = diff.to_text()
    assert f"statistics: not recorded in {old} (built before build statistics); computed from " \
        "its examples for this diff" in text
    shifts = {(s.split, s.feature): s for s in diff.statistics}
    assert shifts[("train", "label")].before["count"] == 7  # the old build's 7 training rows
    assert shifts[("train", "label")].after["count"] == 7  # one removed, one added
    # In a registry's layout the builder and build_info.json beside it count.
    diff = registry.diff_datasets(shop.repo / FOLDER / "prepared", old)
    assert diff.name == NAME


def test_errors(shop: Shop, tmp_path: Path) -> None:
    other = tmp_path / "datasets" / "demo" / "other"
    shutil.copytree(shop.repo / FOLDER / "prepared", other / "prepared")
    info = json.loads((shop.repo / FOLDER / "build_info.json").read_text())
    (other / "build_info.json").write_text(json.dumps({**info, "name": "demo/other"}))
    err = cli_raises(DatasetMismatchError, "datasets", "diff", str(shop.repo / FOLDER / "prepared"),
                     str(other / "prepared"), cwd=shop.repo)
    assert str(err).startswith("cannot diff 'demo/shop' with 'demo/other': they are two")
    assert err.exit_code == 18

    err2 = cli_raises(VersionNotFoundError, "datasets", "diff", f"{NAME}:9.0.0", cwd=shop.repo)
    assert "has no released version matching '9.0.0'" in str(err2)

    err4 = cli_raises(NotBuiltError, "datasets", "diff", "./nowhere/prepared", cwd=shop.repo)
    assert str(err4).startswith("./nowhere/prepared is not a folder: a path names")

    shutil.rmtree(shop.repo / FOLDER / "prepared")
    err3 = cli_raises(NotBuiltError, "datasets", "diff", V1, cwd=shop.repo)
    assert "no workspace build to compare" in str(err3)
    assert f"run 'registry datasets build {NAME}'" in str(err3)


def test_release_bytes_missing_from_the_remote(shop: Shop) -> None:
    shutil.rmtree(shop.storage / "files")
    (shop.storage / "files").mkdir()
    err = cli_raises(RemoteError, "datasets", "diff", V1, cwd=shop.repo)
    assert "is missing from DVC remote 'storage'" in str(err)
    assert "the release's bytes were never pushed there" in str(err) and err.exit_code == 7


def test_a_keyed_builder_is_read_without_importing_it() -> None:
    assert declared_key('class Builder:\n    KEY_FEATURE = "id"\n') is not None
    assert declared_key("class Builder:\n    VERSION = 1\n") is None
    assert declared_key("not python (") is None


def test_statistics_shift_largest_first(shop: Shop) -> None:
    info_path = shop.repo / FOLDER / "build_info.json"
    info = json.loads(info_path.read_text())

    def stats(price_mean: float, dog: int) -> dict[str, object]:
        return {"schema": 1, "splits": {"train": {"num_examples": 100, "features": {
            "price": {"kind": "numeric", "count": 100, "missing": 0, "mean": price_mean,
                      "std": 1.0, "min": 0.0, "max": 9.0},
            "label": {"kind": "categorical", "count": 100, "missing": 0,
                      "classes": {"cat": 100 - dog, "dog": dog}},
            "title": {"kind": "text", "count": 100, "missing": 0,
                      "length": {"mean": 10.0, "std": 2.0, "min": 1, "max": 20}},
        }}}}

    info_path.write_text(json.dumps({**info, "statistics": stats(1.0, 50)}))
    old = shop.repo.parent / "old"
    shutil.copytree(shop.repo / FOLDER, old / "shop")
    info_path.write_text(json.dumps({**info, "statistics": stats(3.0, 60)}))
    diff = registry.diff_datasets(old / "shop" / "prepared", shop.repo / FOLDER / "prepared")
    assert [(s.feature, s.shift) for s in diff.statistics] == [
        ("price", 2.0), ("label", 0.1), ("title", 0.0),
    ]
    text = diff.to_text().split("statistics (largest shift first):")[1]
    assert text.index("price") < text.index("label") and "title" not in text  # no shift
    assert "statistics: not recorded" not in text


def test_shift_measures() -> None:
    numeric = {"kind": "numeric", "count": 10, "missing": 0, "mean": 1.0, "std": 0.5}
    assert _shift(numeric, {**numeric, "mean": 2.0}) == 2.0
    assert _shift(numeric, {**numeric, "missing": 5}) == 0.5  # half missing now
    assert _shift(None, numeric) is None
    image = {"kind": "image", "count": 4, "missing": 0, "shapes": {"8x8x1": 4}, "mean_pixel": 10}
    assert _shift(image, {**image, "mean_pixel": 12}) == 0.2
    diff = DatasetDiff("d", "a", "b", "content", None, [],
                       [SplitDiff("train", {"num_examples": 1, "num_bytes": 1},
                                  {"num_examples": 1, "num_bytes": 1}, unchanged=1)], [],
                       [StatShift("train", "x", "numeric", float("inf"), numeric, numeric)], [])
    assert diff.identical and required_bump(diff) == "patch"
    assert diff.to_dict()["statistics"][0]["shift"] == "inf"
