"""Releasing datasets and models (registry.release): each refusal is its own class, raised from
the CLI with a message naming the command for the artifact kind; no refusal leaves a tag, and a
failed push can simply be run again."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

import registry
from registry.cards import parse_card, render_card
from registry.errors import (
    AlreadyDeprecatedError,
    AlreadyInStageError,
    ConfigError,
    DirtyWorkTreeError,
    InvalidCardError,
    MissingReleaseNotesError,
    NameClashError,
    RemoteError,
    StaleDataError,
    TagRaceError,
    UnsharedRemoteError,
    VersionExistsError,
    VersionNotAboveLatestError,
    VersionOnCommitError,
    VersionUnspecifiedError,
)
from tests.conftest import ReleasedRegistry, cli_raises, commit_all, git

pytestmark = pytest.mark.slow
NAME = "image_classification/digits"
MODEL = "m"
E = TypeVar("E", bound=BaseException)


def _builder(clone: Path) -> Path:
    return clone / "datasets" / NAME / "digits_dataset_builder.py"


def _set_version(clone: Path, version: str, note: str | None) -> None:
    path = _builder(clone)
    source = re.sub(r'Version\("[0-9.]+"\)', f'Version("{version}")', path.read_text())
    if note is not None:
        entry = f'\n        "{version}": "{note}",'
        source = re.sub(r"(RELEASE_NOTES[^=]*= \{)", lambda m: m.group(1) + entry, source)
    path.write_text(source)


def _tags(repo: Path) -> set[str]:
    return set(git(repo, "tag").split())


@pytest.fixture
def clone(released_registry: ReleasedRegistry, chdir: Callable[[Path], None]) -> Path:
    """The released registry's clone, as the working directory (``dvc add`` needs it)."""
    chdir(released_registry.clone)
    return released_registry.clone


def _refused(error: type[E], kind: str, name: str, *args: str, clone: Path) -> str:
    """``registry KIND release NAME ARGS`` stops with ``error``, tagging nothing; its message."""
    before = _tags(clone)
    message = str(cli_raises(error, kind, "release", name, *args, cwd=clone))
    assert _tags(clone) == before
    return message


def _model(clone: Path, tmp_path: Path, content: bytes = b"weights", **fields: object) -> None:
    """Model ``m`` with DVC-tracked weights (``content``) and a filled card, committed."""
    weights = tmp_path / "trained" / "model.keras"
    weights.parent.mkdir(exist_ok=True)
    weights.write_bytes(content * 100)
    registry.add_model(MODEL, weights, registry=clone, force=True)
    card_path = clone / "models" / MODEL / "README.md"
    card = parse_card(card_path.read_text())
    meta = {
        **card.meta,
        "task": "image-classification",
        "architecture": "small-cnn",
        "datasets": [f"{NAME}:1.0.0"],
        "metrics": {"accuracy": 0.9},
        "owner": "vision-team",
        "license": "apache-2.0",
        **fields,
    }
    card_path.write_text(render_card(meta, card.body))
    commit_all(clone, f"Train {MODEL} on {content!r}")


def _released_model(clone: Path, tmp_path: Path) -> None:
    """Model ``m`` released as 1.0.0, then retrained and committed (HEAD carries no release)."""
    _model(clone, tmp_path)
    registry.release_model(MODEL, registry=clone)
    _model(clone, tmp_path, b"retrained")


def test_dirty_work_tree_is_refused(clone: Path, tmp_path: Path) -> None:
    _model(clone, tmp_path)
    (clone / "notes.txt").write_text("uncommitted")
    for kind, name in (("datasets", NAME), ("models", MODEL)):
        message = _refused(DirtyWorkTreeError, kind, name, clone=clone)
        assert "the work tree has uncommitted changes (notes.txt)" in message
        assert f"then run 'registry {kind} release {name}'" in message


def test_a_version_is_never_released_again(clone: Path, tmp_path: Path) -> None:
    message = _refused(VersionExistsError, "datasets", NAME, clone=clone)
    assert f"version 1.0.0 was released already (tag {NAME}@v1.0.0)" in message
    assert f"bump VERSION in the builder of '{NAME}'" in message
    _released_model(clone, tmp_path)
    message = _refused(VersionExistsError, "models", MODEL, "--version", "1.0.0", clone=clone)
    assert "version 1.0.0 was released already (tag m@v1.0.0)" in message
    assert "run 'registry models release m --bump major|minor|patch'" in message


def test_a_new_version_is_above_the_latest(clone: Path, tmp_path: Path) -> None:
    _released_model(clone, tmp_path)
    message = _refused(VersionNotAboveLatestError, "models", MODEL, "--version", "0.5.0",
                       clone=clone)
    assert "version 0.5.0 is not greater than the latest release 1.0.0" in message
    assert "'registry models release m --bump" in message
    _set_version(clone, "0.9.0", "Older")
    commit_all(clone, "Go back")
    message = _refused(VersionNotAboveLatestError, "datasets", NAME, clone=clone)
    assert "version 0.9.0 is not greater than the latest release 1.0.0" in message
    assert "bump VERSION in the builder" in message


def test_a_commit_carries_one_version(clone: Path, tmp_path: Path) -> None:
    _model(clone, tmp_path)
    assert registry.release_model(MODEL, registry=clone).reference == "m:1.0.0"
    # gto show and stage tags cannot tell two versions on one commit apart.
    message = _refused(VersionOnCommitError, "models", MODEL, "--bump", "patch", clone=clone)
    assert "version 1.0.0 was released from this very commit" in message
    assert "then run 'registry models release m'" in message
    # A dataset's version is its builder's, so only a tag made by hand gets here.
    _set_version(clone, "1.1.0", "More digits")
    commit_all(clone, "Bump")
    git(clone, "tag", "-a", f"{NAME}@v1.0.1", "-m", "Tagged by hand")
    message = _refused(VersionOnCommitError, "datasets", NAME, clone=clone)
    assert "version 1.0.1 was released from this very commit" in message
    assert f"then run 'registry datasets release {NAME}'" in message


def test_the_version_must_be_said_once(clone: Path, tmp_path: Path) -> None:
    _released_model(clone, tmp_path)
    message = _refused(VersionUnspecifiedError, "models", MODEL, clone=clone)
    assert "it has releases (latest 1.0.0) and no version was given; say which" in message
    assert "'registry models release m --bump major|minor|patch'" in message
    both = ("--version", "2.0.0", "--bump", "major")
    message = _refused(VersionUnspecifiedError, "models", MODEL, *both, clone=clone)
    assert "--version and --bump were both given" in message
    path = _builder(clone)
    path.write_text(re.sub(r"\n +VERSION = .*", "", path.read_text()))
    commit_all(clone, "No VERSION")
    message = _refused(VersionUnspecifiedError, "datasets", NAME, clone=clone)
    assert "digits_dataset_builder.py has no VERSION, neither its own nor inherited" in message
    assert f"commit, and run 'registry datasets release {NAME}'" in message


def test_release_notes_entry_is_required(clone: Path) -> None:
    _set_version(clone, "1.1.0", note=None)
    commit_all(clone, "Bump without notes")
    message = _refused(MissingReleaseNotesError, "datasets", NAME, clone=clone)
    assert re.search(r"RELEASE_NOTES in \S+digits_dataset_builder.py has no entry for 1\.1\.0",
                     message)
    assert f"add one that says what changed, commit, and run 'registry datasets release {NAME}'" \
        in message


def test_stale_data_and_weights_are_refused(clone: Path, tmp_path: Path) -> None:
    _model(clone, tmp_path)
    (clone / "models" / MODEL / "model.keras").write_bytes(b"retrained but not re-added")
    message = _refused(StaleDataError, "models", MODEL, clone=clone)
    assert "the weights models/m/model.keras are not up to date" in message
    assert ("'registry models add m --from FILE --force', commit, and run "
            "'registry models release m'") in message
    _set_version(clone, "1.1.0", "More digits")
    commit_all(clone, "Bump, not rebuilt")
    message = _refused(StaleDataError, "datasets", NAME, clone=clone)
    assert "the built data is not up to date with its builder and params" in message
    assert (f"run 'registry datasets build {NAME}', commit, and run "
            f"'registry datasets release {NAME}'") in message


def test_a_card_must_name_released_versions(clone: Path, tmp_path: Path) -> None:
    _model(clone, tmp_path, datasets=[f"{NAME}:9.9.9"])
    message = _refused(InvalidCardError, "models", MODEL, clone=clone)
    assert (f"its card's training dataset '{NAME}:9.9.9' is not a released dataset version "
            "(released: 1.0.0)") in message
    assert f"fix models/m/README.md, or release it first with 'registry datasets release {NAME}'" \
        in message
    _model(clone, tmp_path, base_model="nope:1.0.0")
    message = _refused(InvalidCardError, "models", MODEL, clone=clone)
    assert "its card's base_model 'nope:1.0.0' is not a released model version (released: none)" \
        in message
    assert "'registry models release nope'" in message


def test_a_model_never_takes_a_datasets_name(clone: Path) -> None:
    card = clone / "models" / NAME / "README.md"
    card.parent.mkdir(parents=True)
    card.write_text(render_card({"task": "x"}, "A model folder made by hand"))
    message = _refused(NameClashError, "models", NAME, clone=clone)
    assert f"cannot release '{NAME}' as a model: a dataset has that name (datasets/{NAME})" \
        in message


def test_stage_and_deprecation_tags_are_never_repeated(clone: Path, tmp_path: Path) -> None:
    _model(clone, tmp_path)
    registry.release_model(MODEL, registry=clone)
    registry.promote_model(f"{MODEL}:1.0.0", "prod", registry=clone)
    error = cli_raises(AlreadyInStageError, "models", "promote", f"{MODEL}:1.0.0", "prod",
                       cwd=clone)
    assert "m 1.0.0 is in 'prod' already, so nothing was tagged" in str(error)
    assert "'registry models promote m:X.Y.Z prod'" in str(error)
    registry.deprecate_model(MODEL, registry=clone)
    error = cli_raises(AlreadyDeprecatedError, "models", "deprecate", MODEL, cwd=clone)
    assert "'m' is deprecated already, so nothing was tagged" in str(error)


def test_failed_pushes_leave_no_tag_and_a_rerun_completes(
    released_registry: ReleasedRegistry, chdir, tmp_path: Path
) -> None:
    clone, storage = released_registry.clone, released_registry.storage
    chdir(clone)
    _set_version(clone, "1.1.0", "Same digits, new serialisation")
    registry.build_dataset([NAME])
    commit_all(clone, "Build 1.1.0")
    tag = f"{NAME}@v1.1.0"

    # The DVC remote is down: nothing is tagged.
    subprocess.run(["dvc", "remote", "modify", "--local", "storage", "url", "/dev/null/down"],
                   cwd=clone, check=True)
    with pytest.raises(RemoteError, match=r"(?i)nothing was (pushed or )?tagged"):
        registry.release_dataset(NAME, remote="storage", allow_unshared_remote=True)
    assert tag not in _tags(clone)

    # The Git remote is down: its tags cannot be fetched, so nothing is pushed or tagged.
    (clone / ".dvc" / "config.local").unlink()
    git(clone, "remote", "set-url", "origin", str(tmp_path / "missing.git"))
    with pytest.raises(RemoteError, match="cannot fetch the tags of Git remote 'origin'"):
        registry.release_dataset(NAME)
    assert tag not in _tags(clone)

    # The Git remote refuses the push: the bytes are pushed, but the local tag is taken back.
    git(clone, "remote", "set-url", "origin", str(released_registry.origin))
    git(clone, "remote", "set-url", "--push", "origin", str(tmp_path / "missing.git"))
    with pytest.raises(RemoteError, match="pushing tag"):
        registry.release_dataset(NAME)
    assert tag not in _tags(clone)

    # Both back: running it again completes the release.
    git(clone, "config", "--unset", "remote.origin.pushurl")
    release = registry.release_dataset(NAME)
    assert str(release.version) == "1.1.0"
    assert tag in _tags(clone) and tag in _tags(released_registry.origin)
    assert any(storage.rglob("*.dir"))


@pytest.fixture
def silent_git_server() -> Iterator[str]:
    """A git:// URL on 127.0.0.1 whose server accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    yield f"git://127.0.0.1:{server.getsockname()[1]}/registry.git"
    server.close()
    for conn in held:
        conn.close()


def test_a_git_remote_that_never_answers_stops_the_release_in_time(
    clone: Path, tmp_path: Path, silent_git_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _released_model(clone, tmp_path)
    monkeypatch.setenv("REGISTRY_GIT_TIMEOUT", "2")
    git(clone, "remote", "set-url", "origin", silent_git_server)
    started = time.monotonic()
    message = _refused(RemoteError, "models", MODEL, "--bump", "patch", clone=clone)
    assert time.monotonic() - started < 30  # not the default 300 s: the variable is honoured
    assert "git ls-remote got no answer from the remote within 2 s" in message
    assert "REGISTRY_GIT_TIMEOUT" in message


@pytest.mark.parametrize("value", ["soon", "0", "-5", "inf", "nan"])
def test_a_bad_git_timeout_is_refused(
    clone: Path, tmp_path: Path, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _released_model(clone, tmp_path)
    monkeypatch.setenv("REGISTRY_GIT_TIMEOUT", value)
    message = _refused(ConfigError, "models", MODEL, "--bump", "patch", clone=clone)
    assert message == (
        f"REGISTRY_GIT_TIMEOUT={value!r} is not a positive number of seconds; unset it for the "
        "default (300)"
    )


def test_failing_build_exits_5_with_one_line(released_registry: ReleasedRegistry) -> None:
    clone = released_registry.clone
    path = _builder(clone)
    broken = path.read_text().replace("def _parse(line: str)", "def _parse(line: str, oops)")
    path.write_text(broken)
    done = subprocess.run(
        [sys.executable, "-m", "registry", "datasets", "build", NAME],
        cwd=clone, capture_output=True, text=True,
    )
    assert done.returncode == 5
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "registry datasets build" in last
    assert "Traceback" not in last


def _dvc(clone: Path, *args: str) -> None:
    subprocess.run(["dvc", *args], cwd=clone, check=True, capture_output=True)


def test_a_release_pushes_only_to_the_shared_remote(
    released_registry: ReleasedRegistry, chdir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case: a personal override of the remote's URL made the release push where
    nobody else reads, create that folder, and tag; a clone by Git URL then could not load it."""
    clone, origin = released_registry.clone, released_registry.origin
    chdir(clone)
    _model(clone, tmp_path)
    nowhere = tmp_path / "nonexistent" / "sub"
    _dvc(clone, "remote", "modify", "--local", "storage", "url", str(nowhere))
    message = _refused(UnsharedRemoteError, "models", MODEL, clone=clone)
    assert (f".dvc/config.local points the push at DVC remote 'storage' ({nowhere}), but the "
            f"registry's committed .dvc/config names 'storage' ({released_registry.storage})"
            ) in message
    assert "run 'registry models release m --remote storage --allow-unshared-remote'" in message

    # Allowed, the check still refuses a folder that does not exist, and does not create it.
    allowed = ("--remote", "storage", "--allow-unshared-remote")
    message = _refused(RemoteError, "models", MODEL, *allowed, clone=clone)
    assert f"is the folder {nowhere}, which does not exist" in message
    assert "Nothing was pushed, and nothing was tagged" in message
    assert not (tmp_path / "nonexistent").exists()

    # A remote only this clone defines, named by REGISTRY_REMOTE or made the local default.
    (clone / ".dvc" / "config.local").unlink()
    personal = tmp_path / "personal"
    personal.mkdir()
    _dvc(clone, "remote", "add", "--local", "personal", str(personal))
    monkeypatch.setenv("REGISTRY_REMOTE", "personal")
    message = _refused(UnsharedRemoteError, "models", MODEL, clone=clone)
    assert "REGISTRY_REMOTE=personal (a setting for loads) points the push at" in message
    monkeypatch.delenv("REGISTRY_REMOTE")
    _dvc(clone, "remote", "default", "--local", "personal")
    message = _refused(UnsharedRemoteError, "models", MODEL, "--allow-unshared-remote",
                       clone=clone)
    assert ".dvc/config.local points the push at DVC remote 'personal'" in message
    message = _refused(UnsharedRemoteError, "models", MODEL, "--remote", "personal", clone=clone)
    assert "--remote personal points the push at DVC remote 'personal'" in message

    # Other local options (credentials, jobs) are fine: the release goes to the shared remote,
    # and a load by Git URL finds the bytes.
    _dvc(clone, "remote", "default", "--local", "--unset")
    _dvc(clone, "remote", "modify", "--local", "storage", "jobs", "2")
    assert registry.release_model(MODEL, registry=clone).reference == "m:1.0.0"
    weights = registry.load_model("m:1.0.0", registry=str(origin))
    assert weights.read_bytes() == b"weights" * 100

    # Named and allowed, a personal remote gets the bytes.
    _model(clone, tmp_path, b"retrained")
    release = registry.release_model(
        MODEL, bump="patch", registry=clone, remote="personal", allow_unshared_remote=True
    )
    assert release.reference == "m:1.0.1"
    assert any(p.is_file() for p in (personal / "files" / "md5").rglob("*"))


def _second_clone(released_registry: ReleasedRegistry, tmp_path: Path) -> Path:
    """Another researcher's clone of the same origin (and so the same DVC remote)."""
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(released_registry.origin), str(other))
    return other


def test_a_stale_clone_does_not_release_out_of_order(
    released_registry: ReleasedRegistry, chdir, tmp_path: Path
) -> None:
    """The issue's case: clone A released 1.1.0; clone B, which has not fetched since, asked for
    1.0.5 and got it, after 1.1.0. Now B fetches the tags first and is refused."""
    a = released_registry.clone
    b = _second_clone(released_registry, tmp_path)
    chdir(a)
    _model(a, tmp_path)
    registry.release_model(MODEL, registry=a)
    _model(a, tmp_path, b"retrained")
    registry.release_model(MODEL, bump="minor", registry=a)
    chdir(b)
    _model(b, tmp_path, b"b's weights")
    assert f"{MODEL}@v1.1.0" not in _tags(b)
    error = cli_raises(VersionNotAboveLatestError, "models", "release", MODEL, "--version",
                       "1.0.5", cwd=b)
    assert "version 1.0.5 is not greater than the latest release 1.1.0" in str(error)
    assert {f"{MODEL}@v1.0.0", f"{MODEL}@v1.1.0"} <= _tags(b)  # fetched, not made
    assert f"{MODEL}@v1.0.5" not in _tags(b) | _tags(released_registry.origin)


def test_the_loser_of_a_release_race_is_told_what_to_run(
    released_registry: ReleasedRegistry, chdir, tmp_path: Path
) -> None:
    """Two clones release m 1.0.0 at once: B fetched the tags (here: from a copy of the origin
    taken then) before A pushed its tag, so B picks 1.0.0 too and its push is rejected."""
    origin = released_registry.origin
    a = released_registry.clone
    b = _second_clone(released_registry, tmp_path)
    before = tmp_path / "origin-before-a.git"
    git(tmp_path, "clone", "-q", "--bare", str(origin), str(before))
    git(b, "remote", "set-url", "origin", str(before))  # what B fetched ...
    git(b, "remote", "set-url", "--push", "origin", str(origin))  # ... and where it pushes
    chdir(a)
    _model(a, tmp_path)
    registry.release_model(MODEL, registry=a)
    chdir(b)
    _model(b, tmp_path, b"b's weights")
    message = _refused(TagRaceError, "models", MODEL, clone=b)
    assert ("another clone tagged first: Git remote 'origin' got tag 'm@v1.0.0' from another "
            "clone" in message)
    assert "run 'git fetch --tags origin', then release again with a new version" in message
    assert git(origin, "rev-parse", f"{MODEL}@v1.0.0^{{commit}}") == git(a, "rev-parse", "HEAD")

    # B's view catches up: releasing again picks a version above A's.
    git(b, "remote", "set-url", "origin", str(origin))
    git(b, "config", "--unset", "remote.origin.pushurl")
    assert registry.release_model(MODEL, bump="patch", registry=b).reference == "m:1.0.1"


def _stale_view(released_registry: ReleasedRegistry, b: Path, tmp_path: Path) -> None:
    """B's fetches see the origin as it is now (a copy), while its pushes go to the origin: as if
    B fetched the tags just before another clone pushed."""
    before = tmp_path / f"origin-seen-by-{b.name}.git"
    git(tmp_path, "clone", "-q", "--mirror", str(released_registry.origin), str(before))
    git(b, "remote", "set-url", "origin", str(before))
    git(b, "remote", "set-url", "--push", "origin", str(released_registry.origin))


def test_a_lower_version_decided_on_stale_tags_never_lands(
    released_registry: ReleasedRegistry, chdir, tmp_path: Path
) -> None:
    """The issue's simultaneous case: A tags 1.1.0 while B, having checked 1.0.5 against the
    tags before A's push, tags 1.0.5. B's push expects the model's tip where it saw it, so it
    changes nothing on the origin and B is told to run it again."""
    origin, a = released_registry.origin, released_registry.clone
    chdir(a)
    _model(a, tmp_path)
    registry.release_model(MODEL, registry=a)
    git(a, "push", "-q", "origin", "HEAD:main")
    b = _second_clone(released_registry, tmp_path)
    _stale_view(released_registry, b, tmp_path)
    _model(a, tmp_path, b"retrained")
    registry.release_model(MODEL, bump="minor", registry=a)  # 1.1.0
    chdir(b)
    _model(b, tmp_path, b"b's weights")
    message = _refused(TagRaceError, "models", MODEL, "--version", "1.0.5", clone=b)
    assert ("another clone tagged first: Git remote 'origin' got another tag of 'm' from "
            "another clone while this one made 'm@v1.0.5'") in message
    assert "then release again with a new version" in message
    assert f"{MODEL}@v1.0.5" not in _tags(origin) | _tags(b)
    assert {f"{MODEL}@v1.0.0", f"{MODEL}@v1.1.0"} <= _tags(origin)

    # With B's view current again, the version is refused for what it is.
    git(b, "remote", "set-url", "origin", str(origin))
    error = cli_raises(VersionNotAboveLatestError, "models", "release", MODEL, "--version",
                       "1.0.5", cwd=b)
    assert "not greater than the latest release 1.1.0" in str(error)


def test_stage_tags_from_a_stale_clone_fetch_first_and_never_share_a_counter(
    released_registry: ReleasedRegistry, chdir, tmp_path: Path
) -> None:
    origin, a = released_registry.origin, released_registry.clone
    chdir(a)
    _model(a, tmp_path)
    registry.release_model(MODEL, registry=a)
    git(a, "push", "-q", "origin", "HEAD:main")
    b = _second_clone(released_registry, tmp_path)
    assert registry.promote_model(f"{MODEL}:1.0.0", "prod", registry=a) == "m#prod#1"

    # A stale clone fetches the tags first: it counts on from A's tag and sees prod taken.
    chdir(b)
    assert "m#prod#1" not in _tags(b)
    assert registry.promote_model(f"{MODEL}:1.0.0", "staging", registry=b) == "m#staging#2"
    assert registry.demote_model(MODEL, "prod", registry=b) == "m#prod!#3"

    # Two promotions decided from the same tags: the second changes nothing on the origin.
    _stale_view(released_registry, b, tmp_path)
    chdir(a)
    assert registry.promote_model(f"{MODEL}:1.0.0", "dev", registry=a) == "m#dev#4"
    error = cli_raises(TagRaceError, "models", "promote", f"{MODEL}:1.0.0", "prod", cwd=b)
    assert "got another tag of 'm' from another clone while this one made 'm#prod#4'" \
        in str(error)
    assert "then run 'registry models promote m:1.0.0 prod' again" in str(error)
    assert "m#prod#4" not in _tags(origin) | _tags(b)
    for command, args in (("demote", (MODEL, "staging")), ("deprecate", (MODEL,))):
        error = cli_raises(TagRaceError, "models", command, *args, cwd=b)
        assert f"then run 'registry models {command} {' '.join(args)}' again" in str(error)
    assert [t for t in _tags(origin) if t.endswith("#4")] == ["m#dev#4"]
