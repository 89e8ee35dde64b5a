"""What a person sees from a build: one line a step; the libraries' chatter in a log file.

The builds run the real ``registry`` command in a subprocess, so that what is checked is what a
terminal shows: Beam's worker processes, TensorFlow's C++ log and TFDS write to the process's
file descriptors, not only through Python's streams.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from registry import console

DIGITS = "image_classification/digits"
LOG = ".registry/logs/build-image_classification-digits.log"
DONE = re.compile(rf"^build {DIGITS} \.\.\. 1\.0\.0, 1,797 examples, \d+\.\d s$")


def prepare(
    repo: Path, *flags: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["registry", *flags, "datasets", "prepare", DIGITS],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def set_beam(repo: Path, **beam: object) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["beam"].update(beam)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.slow
def test_a_build_prints_one_line_and_logs_the_chatter(
    make_registry: Callable[..., Path],
) -> None:
    repo = make_registry(datasets=[DIGITS])  # Beam in multi_processing mode: worker processes
    done = prepare(repo)

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert [DONE.match(line) is not None for line in done.stderr.splitlines()] == [True]
    log = (repo / LOG).read_text()
    assert log.startswith(f"== build {DIGITS} (")
    assert "INFO absl: Generating dataset digits" in log  # Python logging
    assert "Downloading and preparing dataset" in log  # TFDS's print
    assert "semi_persistent_directory" in log  # a Beam worker process's own stderr
    # The log lives in the clone's .registry/, which ignores itself: the work tree stays clean.
    assert ".registry" not in subprocess.run(
        ["git", "status", "--porcelain", "--ignored=no"],
        cwd=repo, capture_output=True, text=True, check=True,
    ).stdout


@pytest.mark.slow
def test_verbose_shows_the_chatter_live(make_registry: Callable[..., Path]) -> None:
    repo = make_registry(datasets=[DIGITS])
    set_beam(repo, direct_running_mode="in_memory")  # faster; the chatter is the same kind
    # -v sets REGISTRY_VERBOSE, which the stages that DVC runs inherit.
    done = prepare(repo, "-v", env={"REGISTRY_VERBOSE": ""})

    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == f"build {DIGITS} ..."
    assert DONE.match(lines[-1])
    assert "INFO: Generating dataset digits" in done.stderr
    assert "Downloading and preparing dataset" in done.stderr  # TFDS's print: stdout joins stderr
    assert done.stdout == ""
    assert "INFO absl: Generating dataset digits" in (repo / LOG).read_text()


def test_a_failed_build_is_one_error_line_and_names_the_log(
    make_registry: Callable[..., Path],
) -> None:
    repo = make_registry(datasets=[DIGITS])
    builder = repo / "datasets" / DIGITS / "digits_dataset_builder.py"
    builder.write_text(builder.read_text() + '\nraise RuntimeError("broken on purpose")\n')
    run_log = repo / "run.log"

    for _ in range(2):
        done = prepare(repo, env={"REGISTRY_LOG_FILE": str(run_log)})
        assert done.returncode == 5
        assert done.stdout == ""
        step, error = done.stderr.splitlines()
        failed = rf"build {DIGITS} \.\.\. failed after \d+\.\d s \(log: run\.log\)"
        assert re.fullmatch(failed, step)
        assert error.startswith(f"error: importing the builder of '{DIGITS}'")
        assert "RuntimeError: broken on purpose" in error
    # $REGISTRY_LOG_FILE (make run's log for the whole run) gathers every step, in order.
    assert run_log.read_text().count(f"== build {DIGITS} (") == 2
    assert not (repo / LOG).exists()


def test_a_step_in_process_shows_our_warnings_and_logs_the_rest(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(console.VERBOSE_ENV, raising=False)
    with console.step("train", "zoo/model") as line:
        logging.getLogger("apache_beam.worker").info("chatter from a library")
        logging.getLogger("registry.tracking").warning("the tracking server is away")
        warnings.warn("a library's deprecation", UserWarning, stacklevel=1)
        print("a library's print")
        line.done("accuracy 0.9")

    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[0] == "train zoo/model ..."
    assert err.splitlines()[1] == "WARNING: the tracking server is away"
    assert re.fullmatch(r"train zoo/model ... accuracy 0.9, \d+\.\d s", err.splitlines()[2])
    log = (tmp_path / ".registry/logs/train-zoo-model.log").read_text()
    for said in ("chatter from a library", "the tracking server is away",
                 "a library's deprecation", "a library's print"):
        assert said in log
    assert (tmp_path / ".registry/.gitignore").read_text().endswith("\n*\n")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("Yes", True), ("on", True), ("0", False), ("", False),
     ("false", False), ("no", False)],
)
def test_verbosity_is_read_from_the_environment(
    value: str, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(console.VERBOSE_ENV, value)
    assert console.verbose() is expected


@pytest.mark.parametrize("variable", ["REGISTRY_VERBOSE", "REGISTRY_TRACEBACK"])
def test_a_boolean_variable_that_is_no_boolean_is_one_clear_line(
    variable: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        ["registry", "datasets", "list"],
        cwd=tmp_path,
        env={**os.environ, variable: "maybe"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"error: the environment variable {variable} is 'maybe', which is not a boolean: use "
        "true or false (or 1/0, yes/no, on/off)\n"
    )


@pytest.mark.parametrize(
    ("traceback", "verbose", "shown"), [(False, "", False), (True, "", True), (False, "1", True)]
)
def test_storage_clients_error_logs_show_only_with_traceback_or_verbose(
    traceback: bool, verbose: str, shown: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # gcsfs logs a traceback for each request it gave up on, before the registry's one line
    # (the whole path, against a server that is down, is in test_gcs.py).
    monkeypatch.setenv(console.VERBOSE_ENV, verbose)
    clients = ("gcsfs", "aiohttp", "fsspec", "asyncio")
    saved = {name: logging.getLogger(name).level for name in clients}
    try:
        console.configure_logging(traceback=traceback)
        for name in clients:
            assert logging.getLogger(name).isEnabledFor(logging.ERROR) is shown, name
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
