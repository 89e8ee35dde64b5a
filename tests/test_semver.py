"""The semver bump checked at release: real builds of ``demo/shop`` diffed with its last release.

A version that understates the change is refused with what changed and the smallest acceptable
version; ``--allow-understated-bump --reason`` releases it anyway and records the override in the
tag, where ``info`` and ``lineage`` show it. The rule itself (:mod:`registry.semver`) is checked
on diffs made by hand too.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import registry
from registry.build.compare import DatasetDiff, FeatureChange, SplitDiff
from registry.errors import ReasonRequiredError, UnderstatedBumpError
from registry.grammar import Version
from registry.repo.records import bump_override, parse_lineage
from registry.repo.session import open_session
from registry.semver import (
    bump_reasons,
    model_bump_suggestions,
    required_bump,
    required_model_bump,
    smallest_version,
)
from tests.conftest import ReleasedRegistry, cli_ok, cli_raises, commit_all
from tests.diff_fixtures import NAME, Shop, rebuild
from tests.test_models import _fill_card, _model, _weights

COUNTS = {"num_examples": 5, "num_bytes": 50}


def _diff(splits: list[SplitDiff], features: tuple[FeatureChange, ...] = ()) -> DatasetDiff:
    return DatasetDiff("d", "a", "b", "key", "KEY_FEATURE 'id'", list(features), splits, [],
                       [], [])


def test_the_rule_on_diffs() -> None:
    same = SplitDiff("train", COUNTS, COUNTS, unchanged=5)
    assert required_bump(_diff([same])) == "patch"
    assert required_bump(_diff([SplitDiff("train", COUNTS, COUNTS, added=1)])) == "minor"
    assert required_bump(_diff([same, SplitDiff("test", None, COUNTS, added=5)])) == "minor"
    assert required_bump(_diff([SplitDiff("train", COUNTS, None, removed=5)])) == "major"
    assert required_bump(_diff([SplitDiff("train", COUNTS, COUNTS, changed=1)])) == "major"
    added = FeatureChange("x", "added", None, {"type": "Text"})
    assert required_bump(_diff([same], (added,))) == "minor"
    changed = FeatureChange("label", "changed", {}, {}, ["classes"])
    both = _diff([SplitDiff("train", COUNTS, COUNTS, added=2, removed=1)], (changed,))
    assert bump_reasons(both)["major"] == [
        "train: 1 example removed", "feature 'label' changed (classes)"
    ]
    assert bump_reasons(both)["minor"] == ["train: 2 examples added"]
    assert str(smallest_version(Version(1, 2, 3), "minor")) == "1.3.0"
    assert str(smallest_version(Version(1, 2, 3), "patch")) == "1.2.4"


def test_model_signature_change_needs_major() -> None:
    sig = {"inputs": {"image": [8, 8, 1]}, "outputs": {"label": [10]}}
    assert required_model_bump({"signature": sig}, {"signature": sig}) == "patch"
    other = {"inputs": {"image": [28, 28, 1]}, "outputs": {"label": [10]}}
    assert required_model_bump({"signature": sig}, {"signature": other}) == "major"
    assert required_model_bump({}, {"signature": sig}) == "patch"  # nothing to compare with


def test_architecture_framework_and_dataset_majors_only_suggest_major() -> None:
    card = {"architecture": "small-cnn", "framework": "keras", "datasets": ["a/b:1.2.0", "c:1.0.0"]}
    assert model_bump_suggestions(card, card) == []
    assert model_bump_suggestions(card, {**card, "datasets": ["a/b:1.3.0", "c:1.0.0"]}) == []
    moved = {"architecture": "resnet", "framework": "jax", "datasets": ["a/b:2.0.0", "d:1.0.0"]}
    assert model_bump_suggestions(card, moved) == [
        "the card's architecture changed ('small-cnn' -> 'resnet')",
        "the card's framework changed ('keras' -> 'jax')",
        "training dataset a/b moved to a new major version (1.2.0 -> 2.0.0)",
    ]
    assert required_model_bump(card, moved) == "patch"  # suggested, never refused


@pytest.mark.slow
def test_a_changed_example_is_refused_as_a_patch_and_overridden_with_a_reason(shop: Shop) -> None:
    shop.write_rows(shop.rows().replace("Would buy again.", "Would not buy again."))
    shop.set_version("1.0.1", "Fix a typo.")
    rebuild(shop, "Change r08's text, call it a patch")
    err = cli_raises(UnderstatedBumpError, "datasets", "release", NAME, cwd=shop.repo)
    assert str(err).startswith(
        f"cannot release '{NAME}' as 1.0.1: since 1.0.0, train: 1 example changed, which "
        "needs a MAJOR bump, so the smallest acceptable version is 2.0.0; set VERSION to "
        "2.0.0 (or above)"
    ) or str(err).startswith(
        f"cannot release '{NAME}' as 1.0.1: since 1.0.0, test: 1 example changed"
    )
    assert "--allow-understated-bump --reason TEXT" in str(err) and err.exit_code == 19
    assert (err.required, err.smallest) == ("major", "2.0.0")
    assert open_session(shop.repo).index().latest(NAME).version == Version(1, 0, 0)

    err2 = cli_raises(ReasonRequiredError, "datasets", "release", NAME,
                      "--allow-understated-bump", cwd=shop.repo)
    assert "needs a reason, which its tag records" in str(err2)

    out = cli_ok("datasets", "release", NAME, "--allow-understated-bump",
               "--reason", "a typo fix, no one trains on this text")
    assert f"released {NAME} 1.0.1" in out
    message = open_session(shop.repo).repo.tag_message(f"{NAME}@v1.0.1")
    record, _ = parse_lineage(message)
    assert record is not None
    check = record["bump_check"]
    assert (check["against"], check["required"], check["smallest"]) == ("1.0.0", "major", "2.0.0")
    assert check["override"]["reason"] == "a typo fix, no one trains on this text"
    assert check["override"]["by"] == "researcher@lab.test"
    override = bump_override(record)
    assert override is not None and override.startswith("understates a MAJOR change since 1.0.0")
    assert registry.dataset_info(f"{NAME}:1.0.1").understated_bump == override
    assert f"VERSION OVERRIDE: {override}" in cli_ok("datasets", "info", f"{NAME}:1.0.1")
    assert f"understated_bump: {override}"[:60] in cli_ok("lineage", f"{NAME}:1.0.1")


@pytest.mark.slow
def test_added_rows_need_a_minor_and_an_identical_build_a_patch(shop: Shop) -> None:
    shop.write_rows(shop.rows().rstrip("\n") + "\nr97,Fresh row.,positive\n")
    shop.set_version("1.0.1", "One row more.")
    rebuild(shop, "Add a row, call it a patch")
    err = cli_raises(UnderstatedBumpError, "datasets", "release", NAME, cwd=shop.repo)
    assert "example added, which needs a MINOR bump, so the smallest acceptable version is " \
        "1.1.0" in str(err)

    shop.edit_builder('"1.0.1": "One row more.",', '"1.1.0": "One row more.",')
    shop.edit_builder('Version("1.0.1")', 'Version("1.1.0")')
    rebuild(shop, "Call it 1.1.0")
    assert registry.release_dataset(NAME).version == Version(1, 1, 0)
    record, _ = parse_lineage(open_session(shop.repo).repo.tag_message(f"{NAME}@v1.1.0"))
    assert record is not None and record["bump_check"] == {
        "against": "1.0.0", "required": "minor", "smallest": "1.1.0"
    }

    # Only the card changes: the same examples, so a patch is enough.
    readme = shop.repo / "datasets" / NAME / "README.md"
    readme.write_text(readme.read_text() + "\nMore words.\n")
    shop.edit_builder('Version("1.1.0")', 'Version("1.1.1")')
    shop.edit_builder('"1.1.0": "One row more.",',
                      '"1.1.0": "One row more.",\n        "1.1.1": "Card.",')
    rebuild(shop, "A new card")
    assert registry.release_dataset(NAME).version == Version(1, 1, 1)


@pytest.mark.slow
def test_a_model_whose_card_signature_changed_needs_a_major(
    released_registry: ReleasedRegistry, tmp_path: Path, chdir: Callable[[Path], None]
) -> None:
    clone = released_registry.clone
    chdir(clone)
    signature = {"inputs": {"image": "uint8[8,8,1]"}, "outputs": {"label": "float32[10]"}}
    _model(clone, tmp_path, "m", signature=signature)
    registry.release_model("m")
    registry.add_model("m", _weights(tmp_path, content=b"v2"), force=True)
    _fill_card(clone, "m", signature={**signature, "inputs": {"image": "uint8[28,28,1]"}})
    commit_all(clone, "Retrain on bigger images")
    err = cli_raises(UnderstatedBumpError, "models", "release", "m", "--bump", "minor", cwd=clone)
    assert str(err).startswith(
        "cannot release 'm' as 1.1.0: since 1.0.0, the card's input/output signature changed, "
        "which needs a MAJOR bump, so the smallest acceptable version is 2.0.0; release it as "
        "2.0.0 ('registry models release m --bump major')"
    )
    cli_ok("models", "release", "m", "--bump", "minor", "--allow-understated-bump",
         "--reason", "only the card was wrong")
    record, _ = parse_lineage(open_session(clone).repo.tag_message("m@v1.1.0"))
    assert record is not None and record["bump_check"]["override"]["reason"] == (
        "only the card was wrong"
    )
    lineage = cli_ok("lineage", "m:1.1.0")
    assert "understated_bump: understates a MAJOR change since 1.0.0" in lineage


def test_a_model_whose_architecture_changed_is_released_with_a_warning_and_the_record(
    released_registry: ReleasedRegistry, tmp_path: Path, chdir: Callable[[Path], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    clone = released_registry.clone
    chdir(clone)
    _model(clone, tmp_path, "m")
    registry.release_model("m")
    registry.add_model("m", _weights(tmp_path, content=b"v2"), force=True)
    _fill_card(clone, "m", architecture="resnet-8")
    commit_all(clone, "A bigger network")
    cli_ok("models", "release", "m", "--bump", "minor")
    assert (
        "m 1.1.0: since 1.0.0, the card's architecture changed ('small-cnn' -> 'resnet-8'), which "
        "suggests a MAJOR version (2.0.0); released as 1.1.0" in caplog.text
    )
    record, _ = parse_lineage(open_session(clone).repo.tag_message("m@v1.1.0"))
    assert record is not None and record["bump_check"]["suggested"] == {
        "bump": "major", "changes": ["the card's architecture changed ('small-cnn' -> 'resnet-8')"]
    }
    assert bump_override(record) is None  # a suggestion, not an override


@pytest.mark.slow
def test_a_previous_release_whose_bytes_are_gone_is_not_checked_but_says_so(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.rmtree(shop.storage / "files")
    (shop.storage / "files").mkdir()
    shop.write_rows(shop.rows().replace("Would buy again.", "Would not buy again."))
    shop.set_version("1.0.1", "Fix a typo.")
    rebuild(shop, "Change r08's text, with 1.0.0's bytes gone from the remote")
    assert registry.release_dataset(NAME).version == Version(1, 0, 1)
    assert f"{NAME} 1.0.1 was not checked against 1.0.0: its data cannot be fetched" in (
        caplog.text
    )
    record, _ = parse_lineage(open_session(shop.repo).repo.tag_message(f"{NAME}@v1.0.1"))
    assert record is not None and record["bump_check"]["against"] == "1.0.0"
    assert record["bump_check"]["skipped"]
