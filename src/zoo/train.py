"""Train the zoo's example models and record the result in their cards.

Usage (from a registry clone, or anywhere with ``--registry`` / ``REGISTRY_URL``)::

    python -m src.zoo.train digits-cnn --dataset image_classification/digits:1.0.0 \\
        --epochs 10 --out models/digits-cnn
    python -m src.zoo.train digits-parity --base digits-cnn:1.0.0 --out models/digits-parity
    # before digits-cnn is released: the weights from a file, the version it will carry
    python -m src.zoo.train digits-parity --base digits-cnn:1.0.0 \\
        --base-weights models/digits-cnn/model.keras --out models/digits-parity

Each run reads its data with ``registry.load_dataset`` (train on ``train``, evaluate on
``test``), is deterministic for a given ``--seed`` on a given machine (``train.determinism``
of the ``params.yaml`` in the current directory, else the defaults: :mod:`src.zoo.determinism`),
writes the weights to ``<out>/<weights>`` (the card's ``weights`` field, ``model.keras``), and
updates the card ``<out>/README.md``: ``metrics`` (test split), ``datasets`` and ``base_model``
with exact versions, and ``training`` (TensorFlow version, determinism settings). The rest of
the card is kept.

On Vertex AI (``AIP_MODEL_DIR`` set: ``registry compute submit`` runs this module as the job's
command) the run trains the same way on released data, read by registry reference through the
registry's DVC remote on Cloud Storage (``--registry`` or ``REGISTRY_URL`` names the registry's
Git URL; ``REGISTRY_DATA_URI``, from ``compute.vertex.data_uri``, must be that remote), with the
``tf.distribute`` strategy of ``--strategy`` (default: ``train.strategy``), and writes no card:
the weights, ``training.json``, ``training.csv``, ``lineage.json`` and last the completion
marker go to ``AIP_MODEL_DIR``, TensorBoard logs to ``AIP_TENSORBOARD_LOG_DIR``
(:func:`registry.compute.write_job_output`). ``registry compute fetch MODEL JOB`` brings them
back into ``models/MODEL/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import registry
from registry.atomic import atomic_write_text
from registry.cards import ModelCard, parse_card, render_card, validate_card
from registry.compute import VertexEnvironment
from registry.datasets import Source, locate_dataset
from registry.errors import CardError, ConfigError, RegistryError
from src.zoo import determinism

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

DEFAULT_DATASET = "image_classification/digits"
DEFAULT_BASE = "digits-cnn"
CARD = "README.md"


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced.

    Attributes:
        model: The zoo model trained (``digits-cnn``, ``digits-parity``).
        weights: The written ``.keras`` file.
        card: The updated model card.
        metrics: Test-split metrics, as written to the card.
        datasets: The exact dataset versions it was trained on.
        base_model: The exact base model version (fine-tuned models), or ``None``.
        seconds: Wall time of training and evaluation (data loading included).
        training: The TensorFlow version and determinism settings (the card's ``training``).
    """

    model: str
    weights: Path
    card: Path
    metrics: dict[str, float]
    datasets: list[str]
    base_model: str | None
    seconds: float
    training: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for the CLI's JSON summary."""
        return {**asdict(self), "weights": str(self.weights), "card": str(self.card)}


# -- the card -----------------------------------------------------------------------------------


def read_card(out: Path) -> ModelCard:
    """Read ``<out>/README.md``; a run needs a card to record its result in.

    Raises:
        CardError: If the card is missing or has no valid front matter.
    """
    path = out / CARD
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CardError(
            f"no model card at {path}: create the model folder with 'registry models new NAME' "
            "(or copy models/<name>/README.md there) and train again"
        ) from None
    return parse_card(text, where=str(path))


def update_card(out: Path, **fields: Any) -> ModelCard:
    """Set front matter ``fields`` of ``<out>/README.md``, keeping the other fields (in their
    order) and the body; write it atomically and return the new card."""
    card = read_card(out)
    meta = {**card.meta, **fields}
    atomic_write_text(out / CARD, render_card(meta, card.body))
    return ModelCard(meta, card.body)


def _weights_path(out: Path, card: ModelCard) -> Path:
    weights = str(card.get("weights") or "model.keras")
    if not weights.endswith(".keras"):
        raise CardError(
            f"{out / CARD}: weights {weights!r} must be a .keras file (Keras saves only those)"
        )
    return out / weights


# -- data and determinism ---------------------------------------------------------------------


def seed_everything(seed: int, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Pin TensorFlow to machine-independent results (``train.determinism``, see
    :mod:`src.zoo.determinism`) and seed Python, NumPy and TensorFlow; return what was applied."""
    applied = determinism.configure(settings)
    import keras

    keras.utils.set_random_seed(seed)
    return applied


def exact_dataset(ref: str, where: str | None = None, source: Source = "release") -> str:
    """Resolve a dataset reference (``name``, ``name:1.*``, ``name@prod``) to ``name:X.Y.Z``.

    With ``source="workspace"``, the version of the clone's own build (``locate_dataset``).

    Raises:
        ConfigError: If the reference names a dataset with no release (only a work tree).
        NotBuiltError: For the workspace, if the clone has no build of it.
    """
    if source != "release":
        return locate_dataset(ref, source=source, registry=where).reference
    info = registry.dataset_info(ref, registry=where)
    if info.version is None:
        raise ConfigError(
            f"dataset {ref!r} has no release to train on: release it "
            f"('registry datasets release {info.name}') so the card can name an exact version"
        )
    return f"{info.name}:{info.version}"


def load_split(
    ref: str,
    split: str,
    *,
    where: str | None = None,
    source: Source = "release",
    batch_size: int = 32,
    shuffle_seed: int | None = None,
    label_fn: Callable[[tf.Tensor], tf.Tensor] | None = None,
) -> tf.data.Dataset:
    """One split of an image dataset as batches of ``(float32 pixels, label)``; ``source`` as
    for ``registry.load_dataset`` (``workspace``: the clone's own build)."""
    import tensorflow as tf

    data = registry.load_dataset(
        ref, split=split, as_supervised=True, source=source, registry=where
    )

    def to_example(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.cast(image, tf.float32), label_fn(label) if label_fn else label

    data = data.map(to_example).cache()
    if shuffle_seed is not None:
        data = data.shuffle(8192, seed=shuffle_seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def save_model(model: keras.Model, path: Path) -> None:
    """Save ``model`` to the ``.keras`` file ``path``, atomically and reproducibly.

    Readers see the old file or the new one. Equal models give equal bytes, so retraining with
    the same seed and data leaves the DVC hash as it was: Keras writes the save time, Python
    object ids and zip timestamps into the archive, and these are normalised away.
    """
    import zipfile

    path.parent.mkdir(parents=True, exist_ok=True)
    saved = path.with_name(f".{path.stem}.saved-{os.getpid()}.keras")  # Keras needs the suffix
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.keras")
    try:
        model.save(saved)
        with zipfile.ZipFile(saved) as src, zipfile.ZipFile(tmp, "w") as dest:
            for entry in src.infolist():
                data = src.read(entry)
                if entry.filename == "metadata.json":
                    metadata = json.loads(data)
                    metadata.pop("date_saved", None)  # Keras does not read it back
                    data = json.dumps(metadata).encode()
                elif entry.filename == "config.json":
                    data = json.dumps(_renumber_shared_objects(json.loads(data))).encode()
                info = zipfile.ZipInfo(entry.filename, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = entry.compress_type
                info.external_attr = 0o644 << 16
                dest.writestr(info, data)
        os.replace(tmp, path)
    finally:
        saved.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


def _renumber_shared_objects(config: Any) -> Any:
    """Replace Keras's ``shared_object_id`` values (``id()`` of Python objects, different in
    every process) by 0, 1, 2... in order of appearance; they only pair up shared objects."""
    ids: dict[Any, int] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: ids.setdefault(v, len(ids)) if k == "shared_object_id" else walk(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(config)


@contextmanager
def _scope(strategy: tf.distribute.Strategy | None) -> Iterator[None]:
    """``strategy.scope()``, or nothing for ``None`` (TensorFlow's default strategy)."""
    if strategy is None:
        yield
    else:
        with strategy.scope():
            yield


def _evaluate(model: keras.Model, data: tf.data.Dataset) -> dict[str, float]:
    scores = model.evaluate(data, verbose=0, return_dict=True)
    return {
        "accuracy": round(float(scores["accuracy"]), 4),
        "loss": round(float(scores["loss"]), 4),
    }


# -- the models ---------------------------------------------------------------------------------


def train_digits_cnn(
    out: str | os.PathLike[str] = "models/digits-cnn",
    *,
    dataset: str = DEFAULT_DATASET,
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
    where: str | None = None,
    source: Source = "release",
    strategy: tf.distribute.Strategy | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 0,
    settings: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train ``digits-cnn`` (10-way digit classifier) from scratch.

    Args:
        out: The model folder: holds the card, receives the weights.
        dataset: A reference to a released ``image_classification/digits``-like dataset.
        epochs: Passes over the training split.
        batch_size: Examples per step.
        learning_rate: Adam's learning rate.
        seed: Seeds weights, dropout and shuffling.
        where: A registry clone or Git URL; default from the configuration.
        source: ``release`` (a released version) or ``workspace`` (the clone's own build, as a
            ``dvc.yaml`` stage reads it).
        strategy: The ``tf.distribute`` strategy to build and train in (None: the default).
        callbacks: Keras callbacks for ``fit`` (e.g. to log each epoch).
        verbose: Keras ``fit`` verbosity (0 silent, 2 one line per epoch).
        settings: ``train.determinism`` of ``params.yaml`` (None: the defaults).

    Raises:
        CardError: If ``<out>/README.md`` is missing or malformed.
        RegistryError: If the dataset cannot be resolved or fetched.
    """
    from src.zoo.models import build_digits_cnn

    out = Path(out)
    weights = _weights_path(out, read_card(out))
    ref = exact_dataset(dataset, where, source)
    started = time.perf_counter()
    applied = seed_everything(seed, settings)
    import keras

    split: dict[str, Any] = {"where": where, "source": source}
    train = load_split(ref, "train", **split, batch_size=batch_size, shuffle_seed=seed)
    test = load_split(ref, "test", **split, batch_size=256)
    with _scope(strategy):
        model = build_digits_cnn()
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate, name="adam"),  # no "adam_1" in a 2nd run
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=determinism.jit_compile(applied),
        )
    model.fit(train, epochs=epochs, shuffle=False, verbose=verbose, callbacks=list(callbacks))
    metrics = _evaluate(model, test)
    seconds = time.perf_counter() - started
    save_model(model, weights)
    training = determinism.record(applied)
    update_card(out, datasets=[ref], base_model=None, metrics=metrics, training=training)
    return TrainResult(
        "digits-cnn", weights, out / CARD, metrics, [ref], None, round(seconds, 1), training
    )


def load_base(
    base: str, base_weights: str | os.PathLike[str] | None = None, where: str | None = None
) -> tuple[keras.Model, str | None]:
    """The base model and the exact version to record as ``base_model``.

    Without ``base_weights``, ``base`` is resolved in the registry and its released weights are
    loaded (``registry.load_keras_model``). With it, the weights come from that ``.keras`` file
    and ``base`` only names them: recorded if it is an exact version, else ``None``.
    """
    if base_weights is not None:
        import keras

        model = keras.saving.load_model(Path(base_weights))
        ref = registry.parse_reference(base)
        exact = ref.version is not None and ref.version.is_exact
        return model, str(ref) if exact else None
    release = registry.resolve_model(base, registry=where)
    version = release.reference
    return registry.load_keras_model(version, registry=where), version


def _parity(label: tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    return tf.cast(label % 2, tf.float32)  # 1 = odd


def train_digits_parity(
    out: str | os.PathLike[str] = "models/digits-parity",
    *,
    base: str = DEFAULT_BASE,
    base_weights: str | os.PathLike[str] | None = None,
    dataset: str = DEFAULT_DATASET,
    epochs: int = 5,
    unfreeze_epochs: int = 0,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    seed: int = 0,
    where: str | None = None,
    source: Source = "release",
    strategy: tf.distribute.Strategy | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    keep_unknown_base: bool = False,
    verbose: int = 0,
    settings: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Fine-tune ``digits-parity`` (even vs odd digit) from the ``digits-cnn`` backbone.

    The base model's backbone is reused with its trained weights under a new head:
    ``epochs`` with the backbone frozen, then ``unfreeze_epochs`` with it trainable at a tenth
    of the learning rate.

    Args:
        out: The model folder: holds the card, receives the weights.
        base: The base model reference (``digits-cnn:1.0.0``, ``digits-cnn@prod``).
        base_weights: Take the base weights from this ``.keras`` file instead of the registry
            (``base`` is then recorded only if it is an exact version).
        dataset: A reference to a released digits dataset.
        epochs: Epochs with the backbone frozen.
        unfreeze_epochs: Further epochs with the backbone trainable (0: it stays as the base's).
        batch_size: Examples per step.
        learning_rate: Adam's learning rate (a tenth of it once unfrozen).
        seed: Seeds the head's weights, dropout and shuffling.
        where: A registry clone or Git URL; default from the configuration.
        source: ``release`` or ``workspace``, for the dataset (as for ``digits-cnn``).
        strategy: The ``tf.distribute`` strategy to build and train in (None: the default).
        callbacks: Keras callbacks for ``fit`` (e.g. to log each epoch).
        keep_unknown_base: If ``base`` is not an exact version, leave the card's ``base_model``
            as it is (and say nothing) instead of clearing it with a warning.
        verbose: Keras ``fit`` verbosity.
        settings: ``train.determinism`` of ``params.yaml`` (None: the defaults).

    Raises:
        CardError: If ``<out>/README.md`` is missing or malformed.
        RegistryError: If the dataset or base model cannot be resolved or fetched.
    """
    from src.zoo.models import build_digits_parity

    out = Path(out)
    weights = _weights_path(out, read_card(out))
    ref = exact_dataset(dataset, where, source)
    started = time.perf_counter()
    applied = seed_everything(seed, settings)
    with _scope(strategy):
        base_model, base_ref = load_base(base, base_weights, where)
    if base_ref is None and not keep_unknown_base:
        print(
            f"warning: {base!r} is not an exact version, so the card's base_model stays empty; "
            "pass --base NAME:X.Y.Z to record which release these weights are",
            file=sys.stderr,
        )
    split: dict[str, Any] = {"where": where, "source": source, "label_fn": _parity}
    train = load_split(ref, "train", **split, batch_size=batch_size, shuffle_seed=seed)
    test = load_split(ref, "test", **split, batch_size=256)
    with _scope(strategy):
        model = build_digits_parity(base_model)
    _fine_tune(
        model,
        train,
        learning_rate,
        epochs,
        unfreeze_epochs,
        strategy=strategy,
        callbacks=callbacks,
        verbose=verbose,
        jit_compile=determinism.jit_compile(applied),
    )
    metrics = _evaluate(model, test)
    seconds = time.perf_counter() - started
    save_model(model, weights)
    training = determinism.record(applied)
    if base_ref is None and keep_unknown_base:  # the card's base_model stays; report it
        kept = update_card(out, datasets=[ref], metrics=metrics, training=training)
        base_ref = None if kept.get("base_model") is None else str(kept.get("base_model"))
    else:
        update_card(out, datasets=[ref], base_model=base_ref, metrics=metrics, training=training)
    seconds = round(seconds, 1)
    return TrainResult(
        "digits-parity", weights, out / CARD, metrics, [ref], base_ref, seconds, training
    )


def _fine_tune(
    model: keras.Model,
    train: tf.data.Dataset,
    learning_rate: float,
    epochs: int,
    unfreeze_epochs: int,
    *,
    strategy: tf.distribute.Strategy | None,
    callbacks: Sequence[keras.callbacks.Callback],
    verbose: int,
    jit_compile: bool | str = "auto",
) -> None:
    """Fit ``model``'s head for ``epochs`` with the backbone frozen, then the whole model for
    ``unfreeze_epochs`` at a tenth of the learning rate (epochs numbered on from the first)."""
    import keras

    from src.zoo.models import backbone_of

    def compile_and_fit(rate: float, first: int, last: int) -> None:
        with _scope(strategy):
            model.compile(
                optimizer=keras.optimizers.Adam(rate, name="adam"),
                loss="binary_crossentropy",
                metrics=["accuracy"],
                jit_compile=jit_compile,
            )
        model.fit(
            train,
            initial_epoch=first,
            epochs=last,
            shuffle=False,
            verbose=verbose,
            callbacks=list(callbacks),
        )

    compile_and_fit(learning_rate, 0, epochs)
    if unfreeze_epochs > 0:
        backbone_of(model).trainable = True
        compile_and_fit(learning_rate / 10, epochs, epochs + unfreeze_epochs)


# -- the command line -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per zoo model."""
    parser = argparse.ArgumentParser(
        prog="python -m src.zoo.train",
        description="Train a zoo model on a released dataset; write its weights and update its "
        "card (metrics on the test split, exact dataset and base model versions).",
    )
    models = parser.add_subparsers(dest="model", required=True, metavar="MODEL")
    cnn = models.add_parser(
        "digits-cnn", help="10-way digit classifier, trained from scratch (the backbone)"
    )
    _add_common_options(cnn, epochs=10)
    parity = models.add_parser(
        "digits-parity", help="even vs odd digit, fine-tuned from digits-cnn's backbone"
    )
    _add_common_options(parity, epochs=5, what="epochs with the backbone frozen")
    parity.add_argument(
        "--base",
        default=DEFAULT_BASE,
        help=f"base model reference, recorded as base_model (default: {DEFAULT_BASE}, latest)",
    )
    parity.add_argument(
        "--base-weights",
        type=Path,
        help="take the base weights from this .keras file instead of the registry",
    )
    parity.add_argument(
        "--unfreeze-epochs",
        type=int,
        default=0,
        help="epochs with the backbone unfrozen after the frozen ones (default: 0)",
    )
    return parser


def _add_common_options(
    sub: argparse.ArgumentParser, epochs: int, what: str = "training epochs"
) -> None:
    """The options every zoo model's training takes (data, schedule, output, registry)."""
    sub.add_argument(
        "--dataset",
        default=DEFAULT_DATASET,
        help=f"dataset reference to train and evaluate on (default: {DEFAULT_DATASET}, "
        "its latest release)",
    )
    sub.add_argument("--epochs", type=int, default=epochs, help=f"{what} (default: {epochs})")
    sub.add_argument("--batch-size", type=int, default=32, help="batch size (default: 32)")
    sub.add_argument(
        "--learning-rate", type=float, default=1e-3, help="Adam learning rate (default: 1e-3)"
    )
    sub.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    sub.add_argument(
        "--out",
        type=Path,
        help="the model folder with its card README.md (default: models/MODEL)",
    )
    sub.add_argument(
        "--registry",
        help="registry clone or Git URL (default: REGISTRY_URL or the clone around here)",
    )
    sub.add_argument(
        "--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras fit verbosity"
    )
    sub.add_argument(
        "--strategy",
        choices=("auto", "cpu", "gpu", "tpu"),
        help="tf.distribute strategy on Vertex AI (AIP_MODEL_DIR set); default: train.strategy "
        "of params.yaml here, else auto",
    )


def _train(args: argparse.Namespace, common: dict[str, Any]) -> TrainResult:
    """Train the model ``args`` names with the knobs ``common`` holds (and, for digits-parity,
    its base model's)."""
    if args.model == "digits-cnn":
        return train_digits_cnn(**common)
    return train_digits_parity(
        **common,
        base=args.base,
        base_weights=args.base_weights,
        unfreeze_epochs=args.unfreeze_epochs,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; print a JSON summary of the run on stdout and return the exit status."""
    args = _parser().parse_args(argv)
    try:
        # train.determinism of the params.yaml here (the lab's code and knobs), before anything
        # imports TensorFlow; the defaults without one.
        settings = (registry.read_params(".").get("train") or {}).get("determinism")
        determinism.configure(settings)
    except RegistryError as e:
        print(f"error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 1)
    try:
        environment = VertexEnvironment.from_environ()
    except RegistryError as e:
        print(f"error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 1)
    if environment is not None:
        return _main_on_vertex(args, environment, settings)
    common = {
        "out": args.out or Path("models") / args.model,
        "dataset": args.dataset,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "where": args.registry,
        "verbose": args.verbose,
        "settings": settings,
    }
    try:
        result = _train(args, common)
        try:
            validate_card(parse_card(result.card.read_text(encoding="utf-8")), str(result.card))
        except CardError as e:
            print(f"warning: the card is not ready for release: {e}", file=sys.stderr)
    except RegistryError as e:
        print(f"error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 1)
    print(json.dumps(result.to_dict()))
    return 0


# -- on Vertex AI -------------------------------------------------------------------------------


def _recipe_knobs(args: argparse.Namespace) -> dict[str, Any]:
    """The run's knobs, as ``models.<name>`` in params.yaml holds them for local training."""
    knobs: dict[str, Any] = {
        "dataset": args.dataset,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
    }
    if args.model == "digits-parity":
        knobs.update(base=args.base, unfreeze_epochs=args.unfreeze_epochs)
    return knobs


def train_on_vertex(
    args: argparse.Namespace,
    environment: VertexEnvironment,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``args.model`` inside a Vertex AI job and write its output to ``AIP_MODEL_DIR``.

    In order: the data URI is checked against the registry's DVC remote (before any training),
    the strategy is chosen, the recipe trains in a scratch folder (its card only names the
    weights file), then :func:`registry.compute.write_job_output` uploads weights, metrics,
    epoch history, lineage (with each dataset's hash) and TensorBoard logs, and the completion
    marker last. Returns the lineage record.

    Raises:
        ConfigError: If ``REGISTRY_DATA_URI`` is not the registry's remote, or the strategy
            cannot be had.
        RegistryError: If the data cannot be resolved or fetched, or Cloud Storage refuses.
    """
    import tempfile

    from registry.compute import check_data_uri, write_job_output
    from src.zoo.pipeline import _epoch_logger, choose_strategy, write_training_record

    where = args.registry
    check_data_uri(environment.data_uri, registry=where)
    train_section = registry.read_params(".").get("train") or {}
    strategy, which = choose_strategy(
        args.strategy or str(train_section.get("strategy") or "auto"),
        train_section.get("tpu") or None,
    )
    print(f"train {args.model} on Vertex AI: strategy {which}", file=sys.stderr)
    import keras
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="registry-job-") as tmp:
        out, logs = Path(tmp) / "out", Path(tmp) / "logs"
        out.mkdir()
        atomic_write_text(out / CARD, render_card({"weights": "model.keras"}, ""))
        rows: list[dict[str, Any]] = []
        callbacks: list[Any] = [_epoch_logger(rows)]
        if environment.tensorboard_dir is not None:
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(logs)))
        common: dict[str, Any] = {
            "out": out,
            "dataset": args.dataset,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "seed": args.seed,
            "where": where,
            "verbose": args.verbose,
            "settings": settings,
            "strategy": strategy,
            "callbacks": callbacks,
        }
        result = _train(args, common)
        write_training_record(out, rows, result.metrics)
        datasets = [locate_dataset(ref, registry=where) for ref in result.datasets]
        devices = tf.config.list_logical_devices("GPU") + tf.config.list_logical_devices("TPU")
        return write_job_output(
            environment,
            result.model,
            out,
            datasets=datasets,
            base_model=result.base_model,
            params=_recipe_knobs(args),
            training=result.training,
            strategy=which,
            accelerators=[d.name for d in devices],
            logs=logs if logs.is_dir() else None,
        )


def _main_on_vertex(
    args: argparse.Namespace, environment: VertexEnvironment, settings: Any
) -> int:
    """:func:`train_on_vertex` as the command line runs it: a JSON summary or one error line."""
    try:
        lineage = train_on_vertex(args, environment, settings)
    except RegistryError as e:
        print(f"error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 1)
    print(json.dumps({"model_dir": environment.model_dir, "lineage": lineage}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
