"""The cost of machine-independent training: digits-cnn with ``train.determinism`` on and off.

"on" is what the train stage runs (``src/zoo/determinism.py``'s defaults: oneDNN off, op
determinism, XLA off, one intra- and one inter-op thread); "off" is TensorFlow's and Keras' own
choice (oneDNN on, nondeterministic ops allowed, Keras' ``jit_compile="auto"``, as many threads
as TensorFlow picks); "any-threads" is "on" with TensorFlow's thread counts (what the fixed
threads cost; its bytes depend on the machine's core count). Each run is a fresh process (the
settings are fixed at TensorFlow's start) that trains the real ``digits-cnn`` recipe on this
clone's own build of ``image_classification/digits`` (``dvc repro
build@image_classification/digits`` first) into a temporary folder; timed is
``TrainResult.seconds`` (data, training, test evaluation), so TensorFlow's start-up, equal for
all, is left out. The modes take turns; medians are compared. The weights' MD5 of each run is
shown: "on" must give one value, the one in dvc.lock.

    python benchmarks/bench_determinism.py [--epochs 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from _common import train_in_child

ROOT = Path(__file__).resolve().parent.parent
OFF = {"onednn": True, "op_determinism": False, "xla": True, "intra_op_threads": 0,
       "inter_op_threads": 0}  # fmt: skip
MODES = {"on": None, "off": OFF, "any-threads": {"intra_op_threads": 0, "inter_op_threads": 0}}


def child(mode: str, epochs: int, out: Path) -> None:
    """Train digits-cnn once in this process and print its time and weights' MD5 as JSON."""
    sys.path.insert(0, str(ROOT))
    from src.zoo import determinism, pipeline, train

    settings = MODES[mode]
    determinism.configure(settings)  # before TensorFlow starts, as the stage does
    result = train.train_digits_cnn(
        out, epochs=epochs, where=str(ROOT), source="workspace", settings=settings
    )
    md5 = pipeline.file_md5(result.weights)
    print(json.dumps({"mode": mode, "seconds": result.seconds, "md5": md5}))


def run_child(mode: str, epochs: int, tmp: Path) -> dict[str, object]:
    """One fresh process of ``mode``: its JSON line."""
    return train_in_child(__file__, mode, epochs, tmp)


def main() -> None:
    """Run the modes in turn; print each run, then the medians and their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=tuple(MODES))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.epochs, args.out)
        return
    runs: dict[str, list[dict[str, object]]] = {mode: [] for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            order = list(MODES)[i % len(MODES) :] + list(MODES)[: i % len(MODES)]
            for mode in order:
                run = run_child(mode, args.epochs, Path(tmp))
                runs[mode].append(run)
                print(f"{mode:>11}: {run['seconds']:.1f} s, weights md5 {run['md5']}")
    median = {m: statistics.median(float(str(r["seconds"])) for r in rs) for m, rs in runs.items()}
    print(f"digits-cnn, {args.epochs} epochs, medians of {args.repeat} fresh processes:")
    for mode, rs in runs.items():
        print(
            f"{mode:>11}: {median[mode]:.1f} s, {median[mode] / median['off']:.2f}x of off, "
            f"{len({r['md5'] for r in rs})} distinct weights"
        )


if __name__ == "__main__":
    main()
