"""``dvc repro`` trains and evaluates the zoo models: the ``train`` and ``evaluate`` stages.

A registry made from this project's ``dvc.yaml``, ``params.yaml``, ``src/`` and ``models/`` builds
``image_classification/digits``, trains ``digits-cnn`` and ``digits-parity`` on that build (one
epoch each, set in ``params.yaml``), and scores them, as ``make run`` does; DVC then knows every
output is up to date, runs experiments with ``-S``, and shows metrics and plots.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from registry.cards import parse_card, render_card
from registry.datasets import locate_dataset
from registry.errors import ConfigError
from src.zoo import determinism, pipeline
from tests.conftest import NOT_APPLICABLE, PROJECT_ROOT, commit_all, git

DIGITS = "image_classification/digits"
MODELS = ("digits-cnn", "digits-parity")


def _dvc(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["dvc", *args], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, f"dvc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _set_card(repo: Path, name: str, **fields: object) -> None:
    path = repo / "models" / name / "README.md"
    card = parse_card(path.read_text())
    path.write_text(render_card({**card.meta, **fields}, card.body))


@pytest.mark.slow
def test_dvc_repro_trains_and_evaluates_the_zoo(
    make_registry: Callable[..., Path],
    chdir: Callable[[Path], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import registry

    repo = make_registry(datasets=[DIGITS], models=True)
    chdir(repo)
    # A tracking server that refuses at once: runs are kept in mlflow/pending/ for
    # 'registry mlflow sync' (no MLflow import or logger process in this test).
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["beam"]["direct_running_mode"] = "in_memory"  # no worker processes: faster here
    params["train"]["strategy"] = "cpu"
    for name in MODELS:
        params["models"][name]["epochs"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # Training keeps the card's base_model unless the base's weights are a release's.
    _set_card(repo, "digits-parity", base_model=None)
    commit_all(repo, "One epoch each")

    done = _dvc(repo, "repro")
    for stage in (
        "build@image_classification/digits",
        "train@digits-cnn",
        "evaluate@digits-cnn",
        "train@digits-parity",
        "evaluate@digits-parity",
    ):
        assert f"Running stage '{stage}'" in done.stdout
    # Each stage says one line on stderr (plus our own warnings); the chatter of Beam, TFDS,
    # TensorFlow, Keras and MLflow is in the stage's log.
    steps = [
        line
        for line in done.stderr.splitlines()
        if not line.startswith("WARNING: ") and not line.endswith(" ...")  # cut by a warning
    ]
    expected = [
        rf"build {DIGITS} \.\.\. 1\.0\.0, 1,797 examples",
        *[
            pattern
            for name in MODELS
            for pattern in (
                rf"train {name} \.\.\. test accuracy [01]\.\d{{4}}, strategy cpu \(default "
                r"strategy, 1 device\)",
                rf"evaluate {name} \.\.\. accuracy [01]\.\d{{4}} on [\d,]+ test examples",
            )
        ],
    ]
    assert len(steps) == len(expected), done.stderr
    for pattern in expected:
        assert any(re.fullmatch(rf"{pattern}, \d+\.\d s", line) for line in steps), pattern
    warned = [line for line in done.stderr.splitlines() if line.startswith("WARNING: ")]
    assert any("release digits-cnn first" in line for line in warned)
    assert "INFO" not in done.stderr and " - loss: " not in done.stdout + done.stderr
    logs = repo / ".registry" / "logs"
    built = (logs / "build-image_classification-digits.log").read_text()
    assert "Generating dataset digits" in built
    trained = (logs / "train-digits-cnn.log").read_text()
    assert "train digits-cnn: strategy cpu" in trained
    assert " - loss: " in trained  # Keras' line for the epoch
    assert '"training_run": ' in trained  # the stage's JSON summary

    for name in MODELS:
        out = repo / "models" / name
        assert (out / "model.keras").is_file()
        assert "/model.keras" in (out / ".gitignore").read_text()  # DVC's, not Git's
        card = parse_card((out / "README.md").read_text())
        assert card.datasets == [f"{DIGITS}:1.0.0"]
        evaluation = json.loads((out / "evaluation.json").read_text())
        assert evaluation["accuracy"] > 0.5 and evaluation["examples"] > 0
        assert card.meta["metrics"]["accuracy"] == evaluation["accuracy"]
        assert (out / "training.csv").read_text().splitlines()[0] == "epoch,accuracy,loss"
    assert (
        parse_card((repo / "models/digits-parity/README.md").read_text()).get("base_model") is None
    )

    # Each training run is tracked: its params, the exact data it read, its test metrics.
    workspace = locate_dataset(DIGITS, source="workspace")
    runs = {}
    for pending in (repo / "mlflow" / "pending").glob("*.json"):
        record = json.loads(pending.read_text())
        runs[record["tags"]["registry.model"]] = record
    assert sorted(runs) == sorted(MODELS)
    for name, record in runs.items():
        assert record["status"] == "FINISHED"
        assert record["tags"][f"dataset.{DIGITS}"] == "1.0.0"
        assert record["tags"][f"dataset.{DIGITS}.md5"] == workspace.md5
        assert record["tags"]["registry.strategy"].startswith("cpu")
        assert record["tags"]["registry.tensorflow"] == card.meta["training"]["tensorflow"]
        assert record["tags"]["registry.determinism.onednn"] in (False, "False")
        assert record["tags"]["registry.weights"] == f"models/{name}/model.keras"
        assert record["params"]["epochs"] == "1"
        assert "test_accuracy" in {row[0] for row in record["metrics"]}
        card = parse_card((repo / "models" / name / "README.md").read_text())
        assert card.get("training_run") is None  # a retrain must not change a tracked file
        assert card.meta["training"]["determinism"] == determinism.DEFAULTS
        local = json.loads((repo / "mlflow" / "runs" / f"{name}.json").read_text())
        assert local["run"] == record["uid"]

    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    cnn = lock["train@digits-cnn"]
    assert cnn["params"]["params.yaml"]["models.digits-cnn"]["epochs"] == 1
    assert cnn["params"]["params.yaml"]["train"]["strategy"] == "cpu"
    prepared = next(d for d in cnn["deps"] if d["path"] == f"datasets/{DIGITS}/prepared")
    assert prepared["md5"] == workspace.md5
    parity_deps = [d["path"] for d in lock["train@digits-parity"]["deps"]]
    assert "models/digits-cnn/model.keras" in parity_deps

    metrics = json.loads(_dvc(repo, "metrics", "show", "--json").stdout)
    shown = json.dumps(metrics)
    assert '"models/digits-cnn/evaluation.json"' in shown
    assert '"models/digits-parity/training.json"' in shown
    plots = json.loads(_dvc(repo, "plots", "show", "--json").stdout)
    assert "models/digits-cnn/training.csv" in json.dumps(plots)

    # Nothing changed: nothing runs again.
    again = _dvc(repo, "repro")
    assert "Running stage" not in again.stdout
    commit_all(repo, "Train the zoo")

    # Once digits-cnn's workspace weights are released, digits-parity's card names that release.
    registry.release_dataset(DIGITS, push=False)
    registry.release_model("digits-cnn", push=False)
    lineage = registry.model_info("digits-cnn:1.0.0").lineage
    assert lineage["training_run"] == runs["digits-cnn"]["uid"]  # the run behind these weights
    weights = repo / "models/digits-cnn/model.keras"
    assert pipeline.release_with_weights("digits-cnn", pipeline.file_md5(weights)) == (
        "digits-cnn:1.0.0"
    )
    assert pipeline.release_with_weights("digits-cnn", "0" * 32) is None
    done = _dvc(repo, "repro", "--force", "--single-item", "train@digits-parity")
    assert "release digits-cnn first" not in done.stderr
    card = parse_card((repo / "models/digits-parity/README.md").read_text())
    assert card.get("base_model") == "digits-cnn:1.0.0"
    commit_all(repo, "Record digits-parity's base")

    # An experiment with another knob: DVC runs it and lists it.
    _dvc(repo, "exp", "run", "-S", "models.digits-cnn.epochs=2")
    shown = json.loads(_dvc(repo, "exp", "show", "--json").stdout)
    head = next(row for row in shown if row["rev"] != "workspace")
    [experiment] = head["experiments"]
    [exp_rev] = experiment["revs"]
    data = exp_rev["data"]
    assert data["params"]["params.yaml"]["data"]["models"]["digits-cnn"]["epochs"] == 2
    assert data["metrics"]["models/digits-cnn/training.json"]["data"]["epochs"] == 2


@pytest.mark.slow
def test_a_fresh_clone_trains_to_the_committed_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What `make run` does on a new machine, cut to the stage that failed there: digits-cnn
    # trained in a fresh clone of this repository's committed tree (its dataset built first, as
    # dvc repro does) leaves nothing to commit: same weights, metrics, card and training logs.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(PROJECT_ROOT), str(clone))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # runs kept in pending/
    done = _dvc(clone, "repro", "train@digits-cnn")
    assert "Running stage 'train@digits-cnn'" in done.stdout
    assert git(clone, "status", "--porcelain") == ""
    assert "up to date" in _dvc(clone, "status", "train@digits-cnn").stdout
    lock = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]["train@digits-cnn"]
    [weights] = [o for o in lock["outs"] if o["path"] == "models/digits-cnn/model.keras"]
    assert pipeline.file_md5(clone / "models/digits-cnn/model.keras") == weights["md5"]


def test_an_unknown_strategy_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"train\.strategy .* auto, cpu, gpu, tpu, not 'mps'"):
        pipeline.choose_strategy("mps")


@pytest.mark.slow
def test_cpu_and_auto_use_the_default_strategy_here(monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        pytest.skip(NOT_APPLICABLE + "this machine has a GPU: auto picks MirroredStrategy")
    default = tf.distribute.get_strategy()
    strategy, which = pipeline.choose_strategy("cpu")
    assert strategy is default and which.startswith("cpu")
    monkeypatch.delenv("TPU_NAME", raising=False)
    strategy, which = pipeline.choose_strategy("auto")
    assert strategy is default and which.startswith("cpu")
    with pytest.raises(ConfigError, match="no GPU"):
        pipeline.choose_strategy("gpu")

    # A TPU that does not resolve: auto falls back, tpu says so.
    def unreachable(tpu: str | None) -> tf.distribute.Strategy:
        raise ValueError(f"cannot reach {tpu}")

    monkeypatch.setattr(pipeline, "_tpu_strategy", unreachable)
    assert pipeline.choose_strategy("auto", "grpc://10.0.0.2:8470")[0] is default
    with pytest.raises(
        ConfigError, match=r"no TPU resolves .*cannot reach grpc://10\.0\.0\.2:8470"
    ):
        pipeline.choose_strategy("tpu", "grpc://10.0.0.2:8470")
