"""Datasets and models are told apart: every command and card field checks the kind.

A dataset named to a ``registry models`` command (or a model to a ``registry datasets`` one) is
refused with "X is a dataset, not a model" and the command for the right kind; a card that lists
a model among its training datasets, or a dataset as its base model, is not released.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import registry
from registry.cards import CardError, parse_card, validate_card
from registry.errors import InvalidCardError, WrongKindError
from registry.repo.session import open_session
from tests.conftest import ReleasedRegistry, cli_raises, commit_all, git
from tests.test_models import _fill_card, _model

pytestmark = pytest.mark.slow
DIGITS = "image_classification/digits"


@pytest.fixture
def zoo(released_registry: ReleasedRegistry, chdir, tmp_path: Path) -> ReleasedRegistry:
    """The released digits dataset and a released model ``digits-cnn`` trained on it."""
    chdir(released_registry.clone)
    _model(released_registry.clone, tmp_path, "digits-cnn")
    registry.release_model("digits-cnn")
    return released_registry


def test_model_commands_refuse_a_dataset(zoo: ReleasedRegistry) -> None:
    not_a_model = f"'{DIGITS}' is a dataset, not a model"
    err = cli_raises(WrongKindError, "models", "promote", f"{DIGITS}:1.0.0", "prod")
    assert str(err).startswith(not_a_model)
    assert f"use 'registry datasets info {DIGITS}'" in str(err)
    assert (err.name, err.actual, err.wanted, err.exit_code) == (DIGITS, "dataset", "model", 3)
    for argv in (
        ("models", "info", DIGITS),
        ("models", "info", f"{DIGITS}:1.0.0"),
        ("models", "demote", DIGITS, "prod"),
        ("models", "deprecate", DIGITS),
    ):
        assert str(cli_raises(WrongKindError, *argv)).startswith(not_a_model), argv
    pulled = cli_raises(WrongKindError, "models", "pull", f"{DIGITS}:1.0.0")
    assert f"use 'registry datasets pull {DIGITS}'" in str(pulled)
    released = cli_raises(WrongKindError, "models", "release", DIGITS)
    assert f"use 'registry datasets release {DIGITS}'" in str(released)
    # Nothing was tagged: no stage and no deprecation of a dataset.
    assert [t for t in git(zoo.clone, "tag").split() if t.startswith(DIGITS)] == [
        f"{DIGITS}@v1.0.0"
    ]


def test_dataset_commands_refuse_a_model(zoo: ReleasedRegistry) -> None:
    not_a_dataset = "'digits-cnn' is a model, not a dataset"
    for argv in (
        ("datasets", "info", "digits-cnn"),
        ("datasets", "info", "digits-cnn:1.0.0"),
        ("datasets", "prepare", "digits-cnn"),
    ):
        assert str(cli_raises(WrongKindError, *argv)).startswith(not_a_dataset), argv
    pulled = cli_raises(WrongKindError, "datasets", "pull", "digits-cnn")
    assert str(pulled).startswith(not_a_dataset) and "dvc.lock" not in str(pulled)
    assert "use 'registry models pull digits-cnn'" in str(pulled)
    released = cli_raises(WrongKindError, "datasets", "release", "digits-cnn")
    assert "use 'registry models release digits-cnn'" in str(released)
    with pytest.raises(WrongKindError, match=not_a_dataset):
        registry.load_dataset("digits-cnn:1.0.0", split="train")


def test_a_model_gone_from_the_tree_is_still_a_model(zoo: ReleasedRegistry) -> None:
    shutil.rmtree(zoo.clone / "models" / "digits-cnn")
    commit_all(zoo.clone, "Retire digits-cnn")
    err = cli_raises(WrongKindError, "datasets", "pull", "digits-cnn:1.0.0")
    assert str(err).startswith("'digits-cnn' is a model, not a dataset")
    assert open_session(zoo.clone).kind_of("digits-cnn") == "model"


def test_card_fields_of_the_wrong_kind_are_not_released(
    zoo: ReleasedRegistry, tmp_path: Path
) -> None:
    _model(zoo.clone, tmp_path, "m", datasets=["digits-cnn:1.0.0"])
    err = cli_raises(InvalidCardError, "models", "release", "m")
    assert "training dataset 'digits-cnn:1.0.0' is wrong: 'digits-cnn' is a model, not a " \
        "dataset" in str(err)
    _fill_card(zoo.clone, "m", base_model=f"{DIGITS}:1.0.0")
    commit_all(zoo.clone, "A dataset as the base model")
    err = cli_raises(InvalidCardError, "models", "release", "m")
    assert f"base_model '{DIGITS}:1.0.0' is wrong: '{DIGITS}' is a dataset, not a model" in str(
        err
    )
    assert not [t for t in git(zoo.clone, "tag").split() if t.startswith("m@")]


def test_validate_card_checks_kinds_when_told_them(zoo: ReleasedRegistry) -> None:
    card = parse_card((zoo.clone / "models/digits-cnn/README.md").read_text())
    kind_of = open_session(zoo.clone).kind_of
    validate_card(card, kind_of=kind_of)  # the real card: a dataset, no base model
    wrong = parse_card(
        (zoo.clone / "models/digits-cnn/README.md")
        .read_text()
        .replace(f"{DIGITS}:1.0.0", "digits-cnn:1.0.0")
    )
    validate_card(wrong)  # without kinds, only the form is checked
    with pytest.raises(CardError, match="'digits-cnn' is a model, not a dataset"):
        validate_card(wrong, "card.md", kind_of=kind_of)
