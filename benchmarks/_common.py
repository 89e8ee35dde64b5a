"""Helpers shared by the benchmarks: timing commands side by side, a hermetic environment."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent


def env(**extra: str) -> dict[str, str]:
    """The environment benchmarks run commands in: telemetry off, the venv first on PATH, and
    Python's bytecode cached as an installed package has it (the first of a timed command's
    runs writes it)."""
    outer = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {
        **outer,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "GIT_AUTHOR_NAME": "Bench",
        "GIT_AUTHOR_EMAIL": "bench@lab.test",
        "GIT_COMMITTER_NAME": "Bench",
        "GIT_COMMITTER_EMAIL": "bench@lab.test",
        **extra,
    }


def time_command(
    args: Sequence[str],
    cwd: Path | None = None,
    repeat: int = 3,
    stdin: bytes | None = None,
    **extra: str,
) -> float:
    """Best wall time of ``repeat`` runs of a command (seconds), given ``stdin`` if any;
    raises if it fails."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(args, cwd=cwd, env=env(**extra), check=True, capture_output=True,
                       input=stdin)
        best = min(best, time.perf_counter() - start)
    return best


def load_note() -> str:
    """The machine's load, for a report: shared machines time everything slower."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min: {five:.1f}) on {os.cpu_count()} cores"


def against(value: float, anchor: float, aim: str) -> str:
    """A figure beside its anchor: ``0.180 s = 3.2x the anchor (aim: ...)``."""
    return f"{value:.3f} s = {value / anchor:.1f}x the anchor (aim: {aim})"


def time_call(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls of ``fn`` (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def shard_digest(folder: Path) -> str:
    """One hash of every shard's bytes (builds are byte-for-byte reproducible)."""
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.tfrecord*")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def report(title: str, rows: Sequence[tuple[str, str]]) -> None:
    """Print one benchmark's result as aligned lines."""
    print(f"\n## {title}")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}")


@dataclass(frozen=True)
class Result:
    """One figure a benchmark measured, as ``python -m benchmarks`` holds it to its aim.

    Each benchmark's ``measure(quick)`` returns these; ``main()`` prints the same numbers.

    Attributes:
        name: The key of its aim in ``benchmarks/aims.py`` (``beam.speedup``).
        value: What was measured: seconds, unless ``unit`` says otherwise.
        baseline: What it is compared with, measured side by side in the same run (seconds),
            or ``None`` where the aim is an absolute figure.
        ratio: The figure as the aim states it: a speed-up is ``baseline / value``, an
            overhead or a multiple ``value / baseline``; ``None`` without a baseline.
        unit: The unit of ``value`` and ``baseline``.
        detail: The size it was measured at, and anything the number needs to be read right.

    Example:
        >>> round(Result.times("tracking.overhead", 5.55, 5.46).ratio or 0, 3)
        1.016
    """

    name: str
    value: float
    baseline: float | None = None
    ratio: float | None = None
    unit: str = "s"
    detail: str = ""

    @classmethod
    def times(cls, name: str, value: float, baseline: float, detail: str = "") -> Result:
        """A result whose ratio is ``value / baseline`` (an overhead: lower is better)."""
        return cls(name, value, baseline, value / baseline, detail=detail)

    @classmethod
    def speedup(cls, name: str, value: float, baseline: float, detail: str = "") -> Result:
        """A result whose ratio is ``baseline / value`` (a speed-up: higher is better)."""
        return cls(name, value, baseline, baseline / value, detail=detail)


def make_generated_release(
    repo: Path,
    name: str,
    version: str,
    gen: str,
    gen_args: str,
    remote: Callable[[Callable[..., None]], None],
) -> tuple[float, float]:
    """A throwaway registry at ``repo`` whose dataset ``name`` is the folder the Python script
    ``gen`` writes (``python gen.py OUT_DIR GEN_ARGS``) in a ``dvc repro`` build stage; built,
    committed, pushed and tagged ``name@vVERSION`` (the bytes first, as a release does).

    ``remote(run)`` sets the DVC remote before the build, given ``run(*argv)``, which runs a
    command in ``repo`` (raising ``SystemExit`` with its output if it fails). Returns the
    seconds the build and the push took.
    """
    (repo / "datasets" / name).mkdir(parents=True)
    run_env = env(HOME=str(repo.parent / "home"))

    def run(*args: str) -> None:
        done = subprocess.run(args, cwd=repo, env=run_env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{' '.join(args)} failed: {done.stdout}{done.stderr}")

    run("git", "init", "-q", "-b", "main")
    run(str(BIN / "dvc"), "init", "-q")
    remote(run)
    leaf = name.rsplit("/", 1)[-1]
    (repo / "datasets" / name / f"{leaf}_dataset_builder.py").write_text("# benchmark data\n")
    (repo / "gen.py").write_text(gen)
    (repo / "dvc.yaml").write_text(
        textwrap.dedent(
            f"""\
            stages:
              build:
                foreach:
                  {name}: {{}}
                do:
                  cmd: {sys.executable} gen.py datasets/${{key}}/prepared {gen_args}
                  deps:
                    - gen.py
                  outs:
                    - datasets/${{key}}/prepared
            """
        )
    )
    start = time.perf_counter()
    run(str(BIN / "dvc"), "repro", "-q")
    built = time.perf_counter() - start
    run("git", "add", "-A")
    run("git", "commit", "-qm", f"Build {name}")
    start = time.perf_counter()
    run(str(BIN / "dvc"), "push", "-q")
    pushed = time.perf_counter() - start
    run("git", "tag", "-a", f"{name}@v{version}", "-m", f"Release {name} {version}")
    return built, pushed


def train_in_child(
    script: str, mode: str, epochs: int, tmp: Path, **extra: str
) -> dict[str, object]:
    """Run ``script --child MODE --epochs N --out DIR`` in a fresh process (``DIR``: a new
    model folder under ``tmp`` holding digits-cnn's card, for the child to train into) and
    return the JSON line it prints last; ``extra`` goes into its environment.

    Raises:
        RuntimeError: If the child fails (with the end of its stderr).
    """
    root = Path(__file__).resolve().parent.parent
    out = tmp / f"{mode}-model"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    shutil.copy(root / "models" / "digits-cnn" / "README.md", out / "README.md")
    done = subprocess.run(
        [sys.executable, script, "--child", mode, "--epochs", str(epochs), "--out", str(out)],
        cwd=root, env=env(PYTHONPATH=str(root), **extra), capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def release_commits(root: Path, count: int) -> list[str]:
    """``git fast-import`` commands for ``count`` commits after the repository's ``HEAD``, on
    its branch, marks ``:1`` to ``:count`` (each changes a ``VERSION`` file): one commit a
    release, for tags to point at (GTO allows one version of an artifact per commit)."""
    head, branch = subprocess.run(
        ["git", "rev-parse", "HEAD", "--symbolic-full-name", "HEAD"],
        cwd=root, capture_output=True, text=True, check=True,
    ).stdout.split()
    lines = []
    for v in range(count):
        content = f"{v}\n"
        lines += [f"commit {branch}", f"mark :{v + 1}",
                  f"committer Bench <bench@lab.test> {1700000000 + v} +0000",
                  "data 7", "release", *([f"from {head}"] if v == 0 else []),
                  "M 644 inline VERSION", f"data {len(content)}", content]
    return lines
