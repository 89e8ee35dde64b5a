"""The cost of MLflow logging on training: the same small Keras loop with logging on and off.

Each variant runs in a fresh process (as a training job does: MLflow is imported and connected
in that process), on the embedded default store ``sqlite:///<dir>/mlflow/mlflow.db``. The loop
is a small dense network on random data, 20 epochs, logged per epoch with
``tracking.run(...).keras_callback()``, then final metrics and the weights link. Timed inside
the child: from entering the training section to the end of the ``with`` block, so
TensorFlow's start-up, equal for both, is left out; the training process's CPU time over the
same section is shown too (steadier than wall time on a shared machine). MLflow itself runs in
a logger process at the lowest priority, started when a short run ends, that may finish after
training; the time until it has logged everything is shown too (the benchmark waits for it
before the next run).

The first "on" run creates the SQLite store (cold); later runs find it (warm). Off and on
alternate, and the median of each is compared.

    python benchmarks/bench_tracking.py [--epochs 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import Result, env, report


def child(mode: str, epochs: int) -> None:
    """Train once and print the loop's wall time as JSON."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16384, 64)).astype("float32")
    y = (x[:, :8].sum(axis=1) > 0).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    params = {"epochs": epochs, "batch_size": 128, "optimizer": {"name": "adam"}}

    started, cpu_started = time.perf_counter(), time.process_time()
    if mode == "on":
        from registry import tracking

        with tracking.run("bench-mlp", params=params, experiment="bench-tracking") as tracked:
            model.fit(x, y, batch_size=128, epochs=epochs, verbose=0,
                      callbacks=[tracked.keras_callback()])
            tracked.log_final(model.evaluate(x, y, verbose=0, return_dict=True))
            tracked.log_weights("models/bench-mlp/model.keras")
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        assert tracked.wait() is not None, "the run was not logged"
        logged = time.perf_counter() - started
    else:
        model.fit(x, y, batch_size=128, epochs=epochs, verbose=0)
        model.evaluate(x, y, verbose=0, return_dict=True)
        seconds = logged = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    print(json.dumps({"mode": mode, "seconds": seconds, "logged": logged, "cpu": cpu}))


def run_child(mode: str, epochs: int, cwd: Path) -> tuple[float, float, float]:
    """One training in a fresh process: its wall time, until logged, and CPU time."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--epochs", str(epochs)],
        cwd=cwd, env=env(), capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), float(result["logged"]), float(result["cpu"])


@dataclass(frozen=True)
class Figures:
    """The seconds of every run: training with logging off, on (warm store), the first run
    (which creates the store), and until MLflow had each "on" run."""

    off: list[float]
    on: list[float]
    cold: float
    cold_logged: float
    logged: list[float]
    off_cpu: list[float]
    on_cpu: list[float]


def time_runs(epochs: int, repeat: int) -> Figures:
    """Off and on, alternating in fresh processes, in a new folder (so a new store)."""
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        first = run_child("off", epochs, cwd)
        off, off_cpu = [first[0]], [first[2]]
        cold, cold_logged, _ = run_child("on", epochs, cwd)  # creates mlflow/mlflow.db
        on, logged, on_cpu = [], [], []
        for _ in range(repeat):
            seconds, _, cpu = run_child("off", epochs, cwd)
            off.append(seconds)
            off_cpu.append(cpu)
            seconds, until_logged, cpu = run_child("on", epochs, cwd)
            on.append(seconds)
            logged.append(until_logged)
            on_cpu.append(cpu)
    return Figures(off, on, cold, cold_logged, logged, off_cpu, on_cpu)


def measure(quick: bool, epochs: int = 20, repeat: int = 3) -> list[Result]:
    """The suite's figure: median "on" (warm store) over median "off" (``--quick``: 10 epochs,
    1 repeat)."""
    if quick:
        epochs, repeat = 10, 1
    figures = time_runs(epochs, repeat)
    base, warm = statistics.median(figures.off), statistics.median(figures.on)
    return [Result.times("tracking.overhead", warm, base,
                         f"{epochs} epochs, medians of {len(figures.on)}")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs per training run")
    parser.add_argument("--repeat", type=int, default=3, help="warm runs of each variant")
    parser.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.epochs)
        return
    figures = time_runs(args.epochs, args.repeat)
    off, on, logged = figures.off, figures.on, figures.logged
    cold, cold_logged = figures.cold, figures.cold_logged
    base = statistics.median(off)
    warm = statistics.median(on)
    report(
        f"MLflow logging on vs off: {args.epochs}-epoch Keras loop, fresh process each",
        [
            ("off (median)", f"{base:.2f} s  ({', '.join(f'{s:.2f}' for s in off)})"),
            ("on, warm store (median)", f"{warm:.2f} s  ({', '.join(f'{s:.2f}' for s in on)})"),
            ("on, first run (creates the store)", f"{cold:.2f} s"),
            ("on, until MLflow has it all (median)", f"{statistics.median(logged):.2f} s  "
             f"(first run {cold_logged:.2f} s; the logger process runs after training ends)"),
            ("ratio on/off, warm", f"{warm / base:.3f}x  (aim <= 1.02x)"),
            ("CPU of the training process, off / on (medians)",
             f"{statistics.median(figures.off_cpu):.2f} s / "
             f"{statistics.median(figures.on_cpu):.2f} s"),
            ("ratio on/off, first run", f"{cold / base:.3f}x"),
        ],
    )


if __name__ == "__main__":
    main()
