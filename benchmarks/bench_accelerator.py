"""Training on accelerators: digits-cnn on the CPU and on every visible GPU, side by side.

Each variant runs in a fresh process (TensorFlow fixes its devices when it starts) and trains the
real ``digits-cnn`` recipe (``src.zoo.train.train_digits_cnn``) on this clone's own build of
``image_classification/digits`` (``dvc repro build@image_classification/digits`` first) into a
temporary folder, with the train stage's ``train.determinism`` from ``params.yaml``. "cpu" hides
the GPUs (``CUDA_VISIBLE_DEVICES=-1``) and trains in TensorFlow's default strategy; "gpu" takes
the strategy the train stage takes for ``train.strategy: gpu``
(``src.zoo.pipeline.choose_strategy``: ``MirroredStrategy`` over every visible GPU). Timed is
``TrainResult.seconds`` (data, training, test evaluation), so TensorFlow's start-up is left out.
The variants take turns; medians are compared. With no GPU visible it says so and prints the CPU
figure alone. TPUs are not measured.

    python benchmarks/bench_accelerator.py [--epochs 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from _common import report, train_in_child

ROOT = Path(__file__).resolve().parent.parent
MODES = ("cpu", "gpu")


def child(mode: str, epochs: int, out: Path) -> None:
    """Train digits-cnn once on ``mode``'s devices; print time, accuracy and devices as JSON."""
    sys.path.insert(0, str(ROOT))
    import registry
    from src.zoo import determinism, pipeline, train

    settings = (registry.read_params(ROOT).get("train") or {}).get("determinism")
    determinism.configure(settings)  # before TensorFlow starts, as the stage does
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    if mode == "gpu" and not gpus:
        print(json.dumps({"mode": mode, "gpus": 0}))
        return
    strategy, which = pipeline.choose_strategy(mode)
    result = train.train_digits_cnn(
        out, epochs=epochs, where=str(ROOT), source="workspace", strategy=strategy,
        settings=settings,
    )  # fmt: skip
    print(json.dumps({
        "mode": mode, "gpus": gpus, "strategy": which, "seconds": result.seconds,
        "accuracy": result.metrics["accuracy"], "md5": pipeline.file_md5(result.weights),
    }))  # fmt: skip


def run_child(mode: str, epochs: int, tmp: Path) -> dict[str, object]:
    """One fresh process of ``mode`` (``cpu``: no GPU visible to it): its JSON line."""
    hidden = {"CUDA_VISIBLE_DEVICES": "-1"} if mode == "cpu" else {}
    return train_in_child(__file__, mode, epochs, tmp, **hidden)


def _row(runs: list[dict[str, object]]) -> str:
    seconds = [float(str(r["seconds"])) for r in runs]
    accuracy = {str(r["accuracy"]) for r in runs}
    return (
        f"{statistics.median(seconds):.1f} s  ({', '.join(f'{s:.1f}' for s in seconds)}); "
        f"test accuracy {', '.join(sorted(accuracy))}; {len({r['md5'] for r in runs})} "
        f"distinct weights; {runs[0]['strategy']}"
    )


def main() -> None:
    """Probe the GPUs, run the variants in turn, print the medians side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs per training run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.epochs, args.out)
        return
    runs: dict[str, list[dict[str, object]]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        first = run_child("gpu", args.epochs, Path(tmp))  # also says whether there is a GPU
        modes = MODES if first["gpus"] else ("cpu",)
        if first["gpus"]:
            runs["gpu"].append(first)
        for i in range(args.repeat):
            for mode in modes if i % 2 else modes[::-1]:
                if len(runs[mode]) < args.repeat:
                    runs[mode].append(run_child(mode, args.epochs, Path(tmp)))
    rows = [("cpu (median)", _row(runs["cpu"]))]
    if runs["gpu"]:
        rows.append((f"{first['gpus']} GPU(s) (median)", _row(runs["gpu"])))
        cpu = statistics.median(float(str(r["seconds"])) for r in runs["cpu"])
        gpu = statistics.median(float(str(r["seconds"])) for r in runs["gpu"])
        rows.append(("speed-up gpu/cpu", f"{cpu / gpu:.2f}x"))
    else:
        rows.append(("gpu", "no GPU visible to TensorFlow: CPU figure only"))
    report(f"digits-cnn, {args.epochs} epochs, medians of {args.repeat} fresh processes", rows)


if __name__ == "__main__":
    main()
