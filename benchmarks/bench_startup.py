"""Start-up cost: `python -c "import registry"` and `registry --help`, against bare Python.

    python benchmarks/bench_startup.py
"""

from __future__ import annotations

import sys

from _common import BIN, Result, load_note, report, time_command


def measure(quick: bool) -> list[Result]:
    """The suite's figures: ``import registry`` and ``registry --help`` beside ``python -c
    pass``, best of 5 (``--quick``: of 3)."""
    repeat = 3 if quick else 5
    python = time_command([sys.executable, "-c", "pass"], repeat=repeat)
    imported = time_command([sys.executable, "-c", "import registry"], repeat=repeat)
    helped = time_command([str(BIN / "registry"), "--help"], repeat=repeat)
    return [Result.times("startup.import", imported, python, "beside python -c pass"),
            Result.times("startup.help", helped, python, "beside python -c pass")]


def main() -> None:
    python = time_command([sys.executable, "-c", "pass"], repeat=5)
    imported = time_command([sys.executable, "-c", "import registry"], repeat=5)
    helped = time_command([str(BIN / "registry"), "--help"], repeat=5)
    listed = time_command([str(BIN / "registry"), "datasets", "--help"], repeat=5)
    report(
        "start-up (best of 5; goal: each under 0.5 s, no TensorFlow, Beam or MLflow import; "
        f"{load_note()})",
        [
            ("python -c pass (the anchor)", f"{python:.3f} s"),
            ('python -c "import registry"', f"{imported:.3f} s = {imported / python:.1f}x"),
            ("registry --help", f"{helped:.3f} s = {helped / python:.1f}x"),
            ("registry datasets --help", f"{listed:.3f} s = {listed / python:.1f}x"),
        ],
    )


if __name__ == "__main__":
    main()
