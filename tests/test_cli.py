"""The CLI's contract: help everywhere, one-line errors with exit codes, a fast start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

import registry
from registry.cli import cli, main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main([*args])
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def _commands(group: click.Group, prefix: str = "registry") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = [(prefix, group)]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.extend(_commands(command, f"{prefix} {name}"))
        else:
            found.append((f"{prefix} {name}", command))
    return found


def test_every_command_and_option_has_help() -> None:
    for path, command in _commands(cli):
        assert command.help, f"{path} has no help text"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{path} {param.opts} has no help text"


def test_public_api_is_pinned() -> None:
    assert registry.__all__ == [
        "Reference",
        "RegistryError",
        "Version",
        "__version__",
        "add_dataset",
        "add_model",
        "build_dataset",
        "dataset_info",
        "demote_model",
        "deprecate_model",
        "diff_datasets",
        "get_lineage",
        "list_datasets",
        "list_models",
        "load_dataset",
        "load_keras_model",
        "load_model",
        "load_settings",
        "model_info",
        "new_dataset",
        "new_model",
        "parse_reference",
        "promote_model",
        "pull_dataset",
        "read_params",
        "rebuild_dataset",
        "record_training_run",
        "release_dataset",
        "release_model",
        "reproduce_model",
        "resolve_model",
        "search_datasets",
        "search_models",
        "yank_dataset",
        "yank_model",
    ]
    for name in registry.__all__:
        assert getattr(registry, name) is not None


def test_import_and_help_load_no_heavy_library() -> None:
    code = (
        "import sys, registry, registry.cli\n"
        "from click.testing import CliRunner\n"
        "CliRunner().invoke(registry.cli.cli, ['datasets', '--help'])\n"
        "heavy = [m for m in ('tensorflow', 'apache_beam', 'mlflow', 'dvc', 'tensorflow_datasets')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_help_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "datasets", "release", "--help")
    assert code == 0
    assert "RELEASE_NOTES" in out and "registry.release_dataset" in out


def test_no_registry_is_a_one_line_error(tmp_path: Path, chdir, capsys) -> None:
    chdir(tmp_path)
    code, _, err = _run(capsys, "datasets", "list")
    assert code == 2
    assert err.startswith("error: no registry configured") and "REGISTRY_URL" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_malformed_reference_exits_2(make_registry, chdir, capsys) -> None:
    chdir(make_registry(datasets=[]))
    code, _, err = _run(capsys, "datasets", "info", "Bad Name:1")
    assert code == 2
    assert "invalid name" in err and "Traceback" not in err


def test_unknown_dataset_suggests_and_exits_3(make_registry, chdir, capsys) -> None:
    chdir(make_registry(datasets=["image_classification/digits"]))
    code, _, err = _run(capsys, "datasets", "info", "image_classification/digit")
    assert code == 3
    assert "Did you mean 'image_classification/digits'?" in err


def test_traceback_flag_shows_the_traceback(make_registry, chdir) -> None:
    root = make_registry(datasets=[])
    chdir(root)
    done = subprocess.run(
        [sys.executable, "-m", "registry", "--traceback", "datasets", "info", "nope"],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert done.returncode != 0
    assert "Traceback" in done.stderr and "ArtifactNotFoundError" in done.stderr


def test_unknown_command_is_a_usage_error(capsys) -> None:
    code, _, err = _run(capsys, "datasets", "frobnicate")
    assert code == 2
    assert "No such command" in err


def test_traceback_keeps_the_error_exit_code(make_registry, chdir) -> None:
    root = make_registry(datasets=[])
    for flag in ([], ["--traceback"]):
        done = subprocess.run(
            [sys.executable, "-m", "registry", *flag, "datasets", "info", "Bad Name"],
            capture_output=True,
            text=True,
            cwd=root,
        )
        assert done.returncode == 2, (flag, done.stderr)
        assert ("Traceback" in done.stderr) == bool(flag)
        assert "InvalidNameError" in done.stderr if flag else "invalid name" in done.stderr
