"""The example models train on a released dataset, record it in their cards, and fine-tune.

``src/zoo`` is the lab's research code: it reads data with ``registry.load_dataset`` from the
registry around the working directory, as a researcher's script would.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from registry.cards import ModelCard, parse_card, validate_card
from src.zoo import determinism, train
from tests.conftest import PROJECT_ROOT, ReleasedRegistry, commit_all, git

DIGITS = "image_classification/digits:1.0.0"


def _model_folder(tmp_path: Path, name: str) -> Path:
    """A copy of the zoo's card for ``name``, as the training run's ``--out``."""
    out = tmp_path / "zoo" / name
    out.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "models" / name / "README.md", out / "README.md")
    return out


def _card(out: Path) -> ModelCard:
    return parse_card((out / "README.md").read_text(), str(out))


@pytest.mark.slow
def test_digits_cnn_trains_and_digits_parity_reuses_its_backbone(
    released_registry: ReleasedRegistry,
    tmp_path: Path,
    chdir: Callable[[Path], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    import keras
    import numpy as np
    import tensorflow as tf

    import registry

    chdir(released_registry.clone)
    cnn = _model_folder(tmp_path, "digits-cnn")
    original = _card(cnn)
    argv = ["digits-cnn", "--dataset", "image_classification/digits", "--epochs", "5"]
    assert train.main([*argv, "--out", str(cnn), "--verbose", "0"]) == 0

    # The card names the exact dataset version resolved from "latest" and the test metrics;
    # everything else (other fields, their order, the body) is as it was.
    card = _card(cnn)
    validate_card(card)
    assert card.datasets == [DIGITS]
    assert card.get("base_model") is None
    assert card.meta["metrics"]["accuracy"] > 0.8
    assert list(card.meta) == list(original.meta)
    assert card.body == original.body
    assert {k: v for k, v in card.meta.items() if k not in ("metrics", "training")} == {
        k: v for k, v in original.meta.items() if k not in ("metrics", "training")
    }
    # How it was trained: in this process TensorFlow ran before, so what was in effect.
    assert card.meta["training"]["tensorflow"] == tf.__version__
    assert set(card.meta["training"]["determinism"]) == set(determinism.DEFAULTS)

    # The weights file loads and scores what the card says on the test split.
    base = keras.saving.load_model(cnn / "model.keras")
    test = list(registry.load_dataset(DIGITS, split="test", output="numpy", as_supervised=True))
    images = np.stack([image for image, _ in test]).astype("float32")
    labels = np.array([label for _, label in test])
    predicted = base.predict(images, verbose=0).argmax(axis=1)
    assert (predicted == labels).mean() == pytest.approx(card.meta["metrics"]["accuracy"], abs=1e-3)
    assert base.get_layer("backbone").output.shape == (None, 64)

    # Fine-tune parity from those weights, backbone frozen: a new head, the same backbone.
    parity = _model_folder(tmp_path, "digits-parity")
    weights = str(cnn / "model.keras")
    argv = ["digits-parity", "--base", "digits-cnn:1.0.0", "--base-weights", weights]
    assert train.main([*argv, "--epochs", "3", "--out", str(parity), "--verbose", "0"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert '"base_model": "digits-cnn:1.0.0"' in summary
    card = _card(parity)
    validate_card(card)
    assert card.get("base_model") == "digits-cnn:1.0.0"
    assert card.datasets == [DIGITS]
    assert card.meta["metrics"]["accuracy"] > 0.8
    tuned = keras.saving.load_model(parity / "model.keras")
    assert tuned.output.shape == (None, 1)
    base_weights = base.get_layer("backbone").get_weights()
    tuned_weights = tuned.get_layer("backbone").get_weights()
    assert len(tuned_weights) == len(base_weights) == 6  # conv1, conv2, embedding: kernel + bias
    for tuned_w, base_w in zip(tuned_weights, base_weights, strict=True):
        np.testing.assert_array_equal(tuned_w, base_w)
    odd = tuned.predict(images, verbose=0)[:, 0] > 0.5
    assert (odd == (labels % 2 == 1)).mean() == pytest.approx(
        card.meta["metrics"]["accuracy"], abs=1e-3
    )

    # Once digits-cnn is released, --base alone fetches it from the registry: same weights, so
    # the same bytes as from the file; the card records the version "latest" resolved to.
    shutil.copytree(cnn, released_registry.clone / "models" / "digits-cnn")
    (released_registry.clone / "models" / "digits-cnn" / "model.keras").unlink()
    registry.add_model("digits-cnn", cnn / "model.keras")
    commit_all(released_registry.clone, "Add digits-cnn")
    registry.release_model("digits-cnn", push=False)
    fetched = _model_folder(tmp_path / "fetched", "digits-parity")
    argv_fetched = ["digits-parity", "--base", "digits-cnn", "--epochs", "3", "--verbose", "0"]
    assert train.main([*argv_fetched, "--out", str(fetched)]) == 0
    assert _card(fetched).get("base_model") == "digits-cnn:1.0.0"
    assert (fetched / "model.keras").read_bytes() == (parity / "model.keras").read_bytes()

    # Both examples released and promoted; the zoo finds the fine-tuned one by its base.
    shutil.copytree(fetched, released_registry.clone / "models" / "digits-parity")
    (released_registry.clone / "models" / "digits-parity" / "model.keras").unlink()
    registry.add_model("digits-parity", fetched / "model.keras")
    commit_all(released_registry.clone, "Add digits-parity")
    registry.release_model("digits-parity", push=False)
    registry.promote_model("digits-cnn:1.0.0", "prod", push=False)
    registry.promote_model("digits-parity:1.0.0", "staging", push=False)
    found = registry.search_models(base_model="digits-cnn:1.*", stage="staging")
    assert [s.name for s in found] == ["digits-parity"]
    lineage = registry.model_info("digits-parity@staging").lineage
    assert lineage["base_model"] == "digits-cnn:1.0.0"
    assert lineage["datasets"] == {"image_classification/digits": "1.0.0"}
    staged = registry.load_keras_model("digits-parity@staging")
    assert staged.output.shape == (None, 1)

    # Unfrozen for an epoch after the frozen one, the backbone moves away from the base's.
    argv = [*argv, "--epochs", "1", "--unfreeze-epochs", "1", "--out", str(parity)]
    assert train.main([*argv, "--verbose", "0"]) == 0
    unfrozen = keras.saving.load_model(parity / "model.keras").get_layer("backbone").get_weights()
    assert any(not np.array_equal(u, b) for u, b in zip(unfrozen, base_weights, strict=True))


@pytest.mark.slow
def test_training_is_deterministic_to_the_byte(
    released_registry: ReleasedRegistry, tmp_path: Path, chdir: Callable[[Path], None]
) -> None:
    # Same seed and data, same weights file: retraining leaves the DVC hash as it was.
    chdir(released_registry.clone)
    runs = []
    for run in ("a", "b"):
        out = _model_folder(tmp_path / run, "digits-cnn")
        assert train.main(["digits-cnn", "--epochs", "1", "--out", str(out), "--verbose", "0"]) == 0
        runs.append((_card(out).meta["metrics"], (out / "model.keras").read_bytes()))
    assert runs[0] == runs[1]


def test_a_run_without_a_card_stops_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train.main(["digits-cnn", "--out", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "no model card" in err
    assert "registry models new" in err


def test_update_card_keeps_the_other_fields_and_the_body(tmp_path: Path) -> None:
    text = (
        "---\ntask: image-classification\nmetrics: {accuracy: 0.1}\nowner: me\n---\n\n"
        "# A model\n\nKept as written.\n"
    )
    (tmp_path / "README.md").write_text(text)
    train.update_card(tmp_path, metrics={"accuracy": 0.9}, datasets=[DIGITS])
    card = _card(tmp_path)
    assert card.meta == {
        "task": "image-classification",
        "metrics": {"accuracy": 0.9},
        "owner": "me",
        "datasets": [DIGITS],
    }
    assert card.body == "\n# A model\n\nKept as written.\n"


def test_a_training_run_is_recorded_for_the_release_lineage(tmp_path: Path) -> None:
    import hashlib
    import json

    import registry
    from registry.errors import NotBuiltError

    repo = tmp_path / "reg"
    (repo / "models/digits-cnn").mkdir(parents=True)
    git(repo, "init", "-q")
    weights = repo / "models/digits-cnn/model.keras"

    with pytest.raises(NotBuiltError, match=r"its weights .*model\.keras do not exist; save"):
        registry.record_training_run("digits-cnn", "run-1", weights, registry=str(repo))

    weights.write_bytes(b"weights")
    record = registry.record_training_run("digits-cnn", "run-1", weights, registry=str(repo))
    assert record == repo / "mlflow/runs/digits-cnn.json"  # beside MLflow's store, not in Git
    assert json.loads(record.read_text()) == {
        "run": "run-1",
        "weights_md5": hashlib.md5(b"weights").hexdigest(),
    }
