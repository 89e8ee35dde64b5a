"""The ``train`` and ``evaluate`` stages of ``dvc.yaml``: the zoo models, trained by ``dvc repro``.

Usage (what the stages run, from the root of a registry clone)::

    python -m src.zoo.pipeline train digits-cnn      # knobs: models.digits-cnn and train
    python -m src.zoo.pipeline evaluate digits-cnn   # in params.yaml

Unlike ``python -m src.zoo.train`` (released data, any registry), a stage reads the clone's own
build of its dataset (``registry.load_dataset(name, source="workspace")``, the
``datasets/<name>/prepared`` folder the stage depends on) and records exactly which one
(``registry.datasets.locate_dataset``): its version in the card's ``datasets``, its DVC hash in
dvc.lock and the stage's summary. A fine-tuned model starts from its base's workspace weights
(``models/<base>/model.keras``, the output of the base's train stage); its card's ``base_model``
names the release of the base whose weights are exactly those bytes, if there is one.

``train`` writes ``models/<name>/model.keras`` (DVC-tracked), the card's metrics, and two small
files kept in Git: ``training.csv`` (one row an epoch, ``dvc plots show``) and ``training.json``
(``dvc metrics show``). ``evaluate`` scores the weights on the test split into
``evaluation.json``. The ``tf.distribute`` strategy comes from ``train.strategy``
(:func:`choose_strategy`).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import registry
from registry.atomic import atomic_write_text
from registry.errors import ConfigError, NotBuiltError, RegistryError
from src.zoo import determinism

if TYPE_CHECKING:
    import tensorflow as tf

STRATEGIES = ("auto", "cpu", "gpu", "tpu")
TRAINING_CSV = "training.csv"
TRAINING_JSON = "training.json"
EVALUATION_JSON = "evaluation.json"
# Named, not __name__: run as `python -m`, this module is __main__.
_log = logging.getLogger("src.zoo.pipeline")


# -- the distribution strategy ------------------------------------------------------------------


def _tpu_hinted(tpu: str | None) -> bool:
    """Whether a TPU may be there: an address, ``TPU_NAME``, or a TPU VM's local chips. Checked
    before asking TensorFlow, whose resolver would otherwise query the GCE metadata server."""
    return bool(tpu or os.environ.get("TPU_NAME")) or any(
        Path(p).exists() for p in ("/dev/accel0", "/dev/vfio/0")
    )


def _tpu_strategy(tpu: str | None) -> tf.distribute.Strategy:
    import tensorflow as tf

    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def choose_strategy(
    name: str = "auto", tpu: str | None = None
) -> tuple[tf.distribute.Strategy, str]:
    """The ``tf.distribute`` strategy that ``train.strategy`` asks for, and a line saying which.

    ``cpu``: TensorFlow's default strategy (one device; byte-reproducible training). ``gpu``:
    ``MirroredStrategy`` over every visible GPU. ``tpu``: ``TPUStrategy`` on the TPU that
    ``tpu`` names (or ``TPU_NAME``, or this TPU VM's). ``auto``: a TPU if one resolves, else the
    GPUs if there are any, else the default strategy.

    Raises:
        ConfigError: For an unknown name, ``gpu`` without a GPU, or a TPU that does not resolve.
    """
    if name not in STRATEGIES:
        raise ConfigError(
            f"train.strategy in params.yaml must be one of {', '.join(STRATEGIES)}, not {name!r}"
        )
    import tensorflow as tf

    if name == "tpu" or (name == "auto" and _tpu_hinted(tpu)):
        try:
            strategy = _tpu_strategy(tpu)
        except (ValueError, RuntimeError, tf.errors.OpError) as e:
            if name == "tpu":
                raise ConfigError(
                    f"train.strategy is tpu but no TPU resolves ({tpu or 'TPU_NAME/local'}): {e}"
                ) from e
        else:
            return strategy, f"tpu (TPUStrategy, {strategy.num_replicas_in_sync} cores)"
    gpus = tf.config.list_logical_devices("GPU") if name in ("gpu", "auto") else []
    if name == "gpu" and not gpus:
        raise ConfigError("train.strategy is gpu but TensorFlow sees no GPU; use cpu or auto")
    if gpus:
        strategy = tf.distribute.MirroredStrategy([g.name for g in gpus])
        return strategy, f"gpu (MirroredStrategy, {len(gpus)} GPUs)"
    return tf.distribute.get_strategy(), "cpu (default strategy, 1 device)"


# -- which release a file's bytes are --------------------------------------------------------------


def file_md5(path: Path) -> str:
    """The DVC (3.x) hash of a file: the MD5 of its bytes."""
    digest = hashlib.md5()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def release_with_weights(name: str, md5: str, *, where: str | None = None) -> str | None:
    """``name:X.Y.Z``, the latest release of model ``name`` whose weights hash (from its tag's
    lineage) is ``md5``, or ``None`` if no release has those weights."""
    for version in reversed(registry.model_info(name, registry=where).versions):
        lineage = registry.model_info(f"{name}:{version}", registry=where).lineage or {}
        if (lineage.get("weights") or {}).get("md5") == md5:
            return f"{name}:{version}"
    return None


# -- the stages ---------------------------------------------------------------------------------


def _model_params(root: Path, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    params = registry.read_params(root)
    models = params.get("models") or {}
    if name not in models or not isinstance(models[name], dict):
        raise ConfigError(
            f"params.yaml has no models.{name}; the models are {', '.join(models) or 'none'}"
        )
    return dict(models[name]), dict(params.get("train") or {})


def _epoch_logger(rows: list[dict[str, Any]]) -> Any:
    import keras

    class EpochLog(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            values = {k: round(float(v), 6) for k, v in sorted((logs or {}).items())}
            rows.append({"epoch": epoch + 1, **values})

    return EpochLog()


def _write_history(out: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    fields = list(dict.fromkeys(k for row in rows for k in row)) or ["epoch"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / TRAINING_CSV, buffer.getvalue())


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_training_record(out: Path, rows: list[dict[str, Any]], test: dict[str, Any]) -> None:
    """A training run's record in model folder ``out``: ``training.csv`` (one row an epoch) and
    ``training.json`` (epochs, the last epoch's train metrics, the ``test`` metrics); the same
    for a local run and a Vertex AI job."""
    _write_history(out, rows)
    last = rows[-1] if rows else {}
    _write_json(
        out / TRAINING_JSON,
        {
            "epochs": len(rows),
            "train": {k: v for k, v in last.items() if k != "epoch"},
            "test": test,
        },
    )


def train_stage(name: str, root: Path = Path("."), *, verbose: int = 2) -> dict[str, Any]:
    """Train zoo model ``name`` with its knobs from ``params.yaml`` (the ``train@name`` stage).

    Returns the run's summary (also printed by the command line).

    Raises:
        ConfigError: For missing or bad params, or an unknown model.
        NotBuiltError: If the dataset (or the base model's weights) is not built in the clone.
    """
    from registry import tracking
    from registry.datasets import locate_dataset

    root = Path(root)
    where = str(root)
    knobs, settings = _model_params(root, name)
    # Before TensorFlow is imported (choose_strategy): oneDNN, XLA and threads, machine-independent.
    applied = determinism.configure(settings.get("determinism"))
    dataset = locate_dataset(str(knobs.get("dataset") or ""), source="workspace", registry=where)
    strategy, which = choose_strategy(
        str(settings.get("strategy") or "auto"), settings.get("tpu") or None
    )
    print(f"train {name}: strategy {which}", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    with tracking.run(
        name,
        params={**knobs, "train": settings},
        datasets=[tracking.DatasetRef(dataset.name, dataset.version, dataset.md5)],
        tags={
            "registry.strategy": which,
            "registry.data_source": dataset.source,
            "registry.tensorflow": applied["tensorflow"],
            **{
                f"registry.determinism.{k}": v
                for k, v in determinism.record(applied)["determinism"].items()
            },
        },
        registry=where,
    ) as tracked:
        result = _train(
            name,
            knobs,
            settings,
            root,
            dataset.reference,
            strategy,
            verbose,
            callbacks=[_epoch_logger(rows), tracked.keras_callback()],
        )
        tracked.log_final(result.metrics, prefix="test_")
        tracked.log_weights(result.weights)
    # The MLflow run behind these weights (its tag registry.run_uid): release copies it into the
    # tag's lineage when the weights are the same.
    registry.record_training_run(name, tracked.uid, result.weights, registry=where)
    write_training_record(root / "models" / name, rows, result.metrics)
    return {
        **result.to_dict(),
        "strategy": which,
        "training_run": tracked.uid,
        "data": [{"dataset": dataset.reference, "md5": dataset.md5, "source": dataset.source}],
    }


def _train(
    name: str,
    knobs: dict[str, Any],
    settings: dict[str, Any],
    root: Path,
    dataset: str,
    strategy: tf.distribute.Strategy,
    verbose: int,
    callbacks: list[Any],
) -> Any:
    """Run the recipe of zoo model ``name``: ``src.zoo.train``'s function for it."""
    from src.zoo import train

    where = str(root)
    common: dict[str, Any] = {
        "out": root / "models" / name,
        "dataset": dataset,
        "epochs": int(knobs.get("epochs", 1)),
        "batch_size": int(knobs.get("batch_size", 32)),
        "learning_rate": float(knobs.get("learning_rate", 1e-3)),
        "seed": int(knobs.get("seed", 0)),
        "where": where,
        "source": "workspace",
        "strategy": strategy,
        "callbacks": callbacks,
        "verbose": verbose,
        "settings": settings.get("determinism"),
    }
    base = knobs.get("base")
    if name == "digits-cnn" and not base:
        return train.train_digits_cnn(**common)
    elif name == "digits-parity" and base:
        weights = f"models/{base}/model.keras"
        if knobs.get("upstream") != weights:
            raise ConfigError(
                f"models.{name}.upstream in params.yaml must be {weights} (the base's weights), "
                "so that dvc repro trains the base first"
            )
        if not (root / weights).is_file():
            raise NotBuiltError(f"{weights} does not exist: run 'dvc repro train@{base}' first")
        exact = release_with_weights(str(base), file_md5(root / weights), where=where)
        if exact is None:
            _log.warning(
                f"{weights} are not the weights of any release of {base}, so the card's "
                f"base_model stays as it is; release {base} first (registry models release "
                f"{base}) and run again to record it"
            )
        return train.train_digits_parity(
            **common,
            base=exact or str(base),
            base_weights=root / weights,
            unfreeze_epochs=int(knobs.get("unfreeze_epochs", 0)),
            keep_unknown_base=True,
        )
    raise ConfigError(
        f"no training recipe for models.{name} (base {base!r}) in src.zoo.pipeline: the "
        "recipes are digits-cnn (base: null) and digits-parity (base: digits-cnn)"
    )


def evaluate_stage(name: str, root: Path = Path(".")) -> dict[str, Any]:
    """Score ``models/<name>/model.keras`` on its dataset's test split (the ``evaluate@name``
    stage) and write ``models/<name>/evaluation.json``; return what it wrote."""
    import keras
    import numpy as np

    root = Path(root)
    knobs, _ = _model_params(root, name)
    data = list(
        registry.load_dataset(
            str(knobs.get("dataset") or ""),
            split="test",
            output="numpy",
            as_supervised=True,
            source="workspace",
            registry=str(root),
        )
    )
    images = np.stack([image for image, _ in data]).astype("float32")
    labels = np.array([label for _, label in data])
    model = keras.saving.load_model(root / "models" / name / "model.keras")
    scores = model.predict(images, verbose=0)
    if scores.shape[-1] == 1:  # one sigmoid unit: a parity model (1 = odd)
        labels, predicted = labels % 2, (scores[:, 0] > 0.5).astype(labels.dtype)
    else:
        predicted = scores.argmax(axis=-1)
    result = {
        "accuracy": round(float((predicted == labels).mean()), 4),
        "examples": len(labels),
    }
    _write_json(root / "models" / name / EVALUATION_JSON, result)
    return result


def _trained(summary: dict[str, Any]) -> str:
    """The result of a train stage in a few words: test accuracy and strategy."""
    accuracy = (summary.get("metrics") or {}).get("accuracy")
    scored = f"test accuracy {accuracy:.4f}, " if isinstance(accuracy, float) else ""
    return f"{scored}strategy {summary['strategy']}"


def main(argv: Sequence[str] | None = None) -> int:
    """The stages' command line; returns the exit status.

    Prints one line (``train digits-cnn ... test accuracy 0.9472, strategy cpu (...), 41.0 s``);
    TensorFlow's, Keras' and MLflow's output and the stage's JSON summary go to the log file of
    :func:`registry.console.step` (``REGISTRY_VERBOSE=1`` shows them live).
    """
    parser = argparse.ArgumentParser(
        prog="python -m src.zoo.pipeline",
        description="Run a zoo model's dvc.yaml stage: train it (models.NAME and train in "
        "params.yaml) or evaluate its weights on the test split.",
    )
    parser.add_argument("stage", choices=("train", "evaluate"))
    parser.add_argument("model", help="the model name, a key of models: in params.yaml")
    parser.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    args = parser.parse_args(argv)
    from registry import console

    try:
        with console.step(args.stage, args.model) as line:
            if args.stage == "train":
                summary = train_stage(args.model, verbose=args.verbose)
                line.done(_trained(summary))
            else:
                summary = evaluate_stage(args.model)
                line.done(
                    f"accuracy {summary['accuracy']:.4f} on {summary['examples']:,} test examples"
                )
            print(json.dumps(summary))  # into the log: the run's ids, data hashes, metrics
    except RegistryError as e:
        print(f"error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
