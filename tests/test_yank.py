"""Yanking a version (GTO's ``NAME@vX.Y.Z!``), PEP 592 resolution, and what a yank affects.

Real clones, a real bare origin, real DVC remotes, and ``gto`` itself to check that GTO reads
the yank as the registry does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

import registry
from registry.errors import (
    AlreadyYankedError,
    ConfirmationRequiredError,
    InvalidCardError,
    InvalidReferenceError,
    NotPermittedError,
    ReasonRequiredError,
    VersionNotFoundError,
    YankedVersionError,
)
from registry.repo.session import YankedVersionWarning
from tests.conftest import ReleasedRegistry, cli_raises, commit_all, git
from tests.test_models import _model

pytestmark = pytest.mark.slow
DIGITS = "image_classification/digits"
REASON = "labels 3 and 8 are swapped in 4% of the train split"


@pytest.fixture
def zoo(released_registry: ReleasedRegistry, chdir, tmp_path: Path) -> ReleasedRegistry:
    """digits 1.0.0; digits-cnn 1.0.0 trained on it (in prod); digits-ft 1.0.0 trained on it
    too, fine-tuned from digits-cnn 1.0.0."""
    chdir(released_registry.clone)
    _model(released_registry.clone, tmp_path, "digits-cnn", datasets=[f"{DIGITS}:1.0.0"])
    registry.release_model("digits-cnn")
    registry.promote_model("digits-cnn:1.0.0", "prod")
    _model(released_registry.clone, tmp_path, "digits-ft", datasets=[f"{DIGITS}:1.0.0"],
           base_model="digits-cnn:1.0.0")
    registry.release_model("digits-ft")
    return released_registry


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    from registry.cli import main

    with pytest.raises(SystemExit) as done:
        main(list(args))
        raise SystemExit(0)
    out, err = capsys.readouterr()
    assert done.value.code in (0, None), err
    return out


def _gto(clone: Path, *args: str) -> str:
    gto = Path(shutil.which("gto") or "gto")
    done = subprocess.run([str(gto), *args], cwd=clone, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_yank_tags_prints_the_affected_models_and_gto_agrees(
    zoo: ReleasedRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _cli(capsys, "datasets", "yank", f"{DIGITS}:1.0.0", "--reason", REASON, "--yes")
    assert out.splitlines() == [
        f"tagged {DIGITS}@v1.0.0!: {DIGITS} 1.0.0 is yanked ({REASON})",
        "trained on it (retrain, or demote from their stages):",
        f"  digits-cnn 1.0.0  (via {DIGITS}:1.0.0)  stages: prod",
        f"  digits-ft 1.0.0  (via {DIGITS}:1.0.0)",
    ]
    # The tag reached the shared origin, annotated with the reason, who and when.
    assert f"{DIGITS}@v1.0.0!" in git(zoo.origin, "tag").split()
    message = git(zoo.origin, "tag", "-l", "--format=%(contents)", f"{DIGITS}@v1.0.0!")
    assert message.startswith(f"Yank {DIGITS} 1.0.0: {REASON}")
    assert "yanked-by: researcher@lab.test" in message and "yanked-at: 20" in message
    # GTO sees a deregistration, and no longer shows the version.
    assert f"{DIGITS}@v1.0.0!" in _gto(zoo.clone, "history", DIGITS)
    assert "deregistration" in _gto(zoo.clone, "history", DIGITS)
    assert "v1.0.0" not in _gto(zoo.clone, "show", DIGITS)


def test_a_pin_warns_latest_is_gone_and_strict_refuses(
    zoo: ReleasedRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = registry.yank_dataset(f"{DIGITS}:1.0.0", reason=REASON)
    assert [(a.name, a.version, a.stages) for a in result.affected] == [
        ("digits-cnn", "1.0.0", ["prod"]),
        ("digits-ft", "1.0.0", []),
    ]
    with pytest.warns(YankedVersionWarning, match=f"YANKED: {DIGITS} 1.0.0 .*{REASON}"):
        registry.pull_dataset(f"{DIGITS}:1.0.0")
    for ref in (DIGITS, f"{DIGITS}:1.*"):
        with pytest.raises(VersionNotFoundError, match=r"not yanked \(yanked: .*:1\.0\.0"):
            registry.pull_dataset(ref)
    with pytest.raises(YankedVersionError, match="strict loading") as refused:
        registry.pull_dataset(f"{DIGITS}:1.0.0", strict=True)
    assert refused.value.exit_code == 15 and refused.value.reason == REASON
    monkeypatch.setenv("REGISTRY_STRICT", "1")
    err = cli_raises(YankedVersionError, "datasets", "pull", f"{DIGITS}:1.0.0")
    assert str(err).startswith(f"{DIGITS} 1.0.0 is yanked ({REASON}; yanked by researcher@")


def test_a_stage_on_a_yanked_model_warns_and_listings_say_why(
    zoo: ReleasedRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    result = registry.yank_model("digits-cnn:1.0.0", reason="overfits")
    assert [(a.name, a.via) for a in result.affected] == [("digits-ft", "digits-cnn:1.0.0")]
    with pytest.warns(YankedVersionWarning, match="digits-cnn 1.0.0 was yanked .*: overfits"):
        registry.load_model("digits-cnn@prod")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        registry.load_model("digits-ft")  # a live version: no warning
    listed = json.loads(_cli(capsys, "models", "list", "--json"))
    assert {m["name"]: m["yanked"] for m in listed}["digits-cnn"] == {"1.0.0": "overfits"}
    assert "yanked 1.0.0 (overfits)" in _cli(capsys, "models", "list")
    text = _cli(capsys, "models", "info", "digits-cnn:1.0.0")  # warns, as one logged line
    assert "YANKED: overfits" in text and "yanked: 1.0.0 (overfits)" in text
    info = json.loads(_cli(capsys, "datasets", "info", DIGITS, "--json"))
    assert info["yanked"] == {}
    assert "yanked" not in _cli(capsys, "datasets", "list")


def test_the_cli_warns_in_one_line_and_strict_exits_15(zoo: ReleasedRegistry) -> None:
    registry.yank_dataset(f"{DIGITS}:1.0.0", reason=REASON)
    pull = ["registry", "datasets", "pull", f"{DIGITS}:1.0.0"]
    done = subprocess.run(pull, capture_output=True, text=True, cwd=zoo.clone)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "YANKED" in line]
    assert len(lines) == 1 and REASON in lines[0] and "Warning" not in lines[0]
    strict = subprocess.run(
        pull, capture_output=True, text=True, cwd=zoo.clone, env={**_env(), "REGISTRY_STRICT": "1"}
    )
    assert strict.returncode == 15 and "strict loading" in strict.stderr


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_yank_refusals(zoo: ReleasedRegistry) -> None:
    ref = f"{DIGITS}:1.0.0"
    err = cli_raises(ReasonRequiredError, "datasets", "yank", ref, "--yes")
    assert "needs a reason" in str(err) and "--reason" in str(err)
    assert "needs a reason" in str(cli_raises(ReasonRequiredError, "datasets", "yank", ref,
                                              "--reason", "  ", "--yes"))
    # pytest's stdin is no terminal: without --yes nothing is asked, and nothing is done.
    unconfirmed = cli_raises(ConfirmationRequiredError, "datasets", "yank", ref, "--reason", "x")
    assert "cannot be undone" in str(unconfirmed) and "--yes" in str(unconfirmed)
    ranged = cli_raises(InvalidReferenceError, "datasets", "yank", f"{DIGITS}:1.*",
                        "--reason", "x", "--yes")
    assert "names one version exactly" in str(ranged)
    unknown = cli_raises(VersionNotFoundError, "datasets", "yank", f"{DIGITS}:9.9.9",
                         "--reason", "x", "--yes")
    assert "released: 1.0.0" in str(unknown)
    assert not [t for t in git(zoo.clone, "tag").split() if t.endswith("!")]
    registry.yank_dataset(ref, reason=REASON)
    again = cli_raises(AlreadyYankedError, "datasets", "yank", ref, "--reason", "x", "--yes")
    assert str(again).startswith(f"{DIGITS} 1.0.0 is yanked already ({REASON})")


def test_yank_needs_an_owner(zoo: ReleasedRegistry) -> None:
    import yaml

    params = yaml.safe_load((zoo.clone / "params.yaml").read_text())
    params.setdefault("registry", {})["owners"] = {"digits-cnn": ["vision-lead@lab.test"]}
    (zoo.clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit_all(zoo.clone, "digits-cnn has an owner")
    err = cli_raises(NotPermittedError, "models", "yank", "digits-cnn:1.0.0", "--reason", "x",
                     "--yes")
    assert "may not yank model digits-cnn 1.0.0" in str(err)


def test_strict_loading_by_url_sees_a_yank_made_since(zoo: ReleasedRegistry) -> None:
    url = zoo.origin.as_uri()  # read through a mirror in the cache, as by any Git URL
    registry.pull_dataset(f"{DIGITS}:1.0.0", registry=url)  # the mirror knows 1.0.0 now
    registry.yank_dataset(f"{DIGITS}:1.0.0", reason=REASON)  # from the clone, pushed to origin
    with pytest.raises(YankedVersionError, match=REASON):
        registry.pull_dataset(f"{DIGITS}:1.0.0", registry=url, strict=True)
    with pytest.warns(YankedVersionWarning, match=REASON):  # the mirror has the tag now
        registry.pull_dataset(f"{DIGITS}:1.0.0", registry=url)


def test_nothing_new_points_at_a_yanked_version(zoo: ReleasedRegistry, tmp_path: Path) -> None:
    """PEP 592: a yanked version still loads by pin, but no model is released on it and no
    stage is moved to it."""
    clone = zoo.clone
    registry.yank_dataset(f"{DIGITS}:1.0.0", reason=REASON)
    _model(clone, tmp_path, "digits-new", datasets=[f"{DIGITS}:1.0.0"])
    err = cli_raises(InvalidCardError, "models", "release", "digits-new", cwd=clone)
    assert f"training dataset '{DIGITS}:1.0.0' is yanked ({REASON})" in str(err)
    assert "train on a released dataset version instead" in str(err)

    # Lineage marks the yanked version, upstream as downstream.
    up = registry.get_lineage("digits-ft:1.0.0")
    assert up.nodes[f"{DIGITS}:1.0.0"].yanked == REASON and not up.missing()
    assert f"YANKED ({REASON})" in up.to_text()

    registry.yank_model("digits-ft:1.0.0", reason="overfits")
    err2 = cli_raises(YankedVersionError, "models", "promote", "digits-ft:1.0.0", "prod",
                      cwd=clone)
    assert "digits-ft 1.0.0 is yanked (overfits" in str(err2)
    assert "a yanked version is never promoted; promote a later version" in str(err2)
    assert "digits-ft" not in {t.split("#")[0] for t in git(clone, "tag").split() if "#" in t}
