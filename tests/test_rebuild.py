"""Verified rebuilds of old dataset versions and reproduced model versions, recorded in Git
notes: real Git, DVC and Beam on the example registry."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import registry
from registry.cli import cli
from registry.errors import (
    BuildError,
    ConfigError,
    NotBuiltError,
    PurgedVersionError,
    RawInputMissingError,
    VersionNotFoundError,
)
from registry.repo.git import NOTES_REF
from registry.repo.session import YankedVersionWarning
from tests.conftest import ReleasedRegistry, cli_raises, commit_all, git

pytestmark = pytest.mark.slow
DIGITS = "image_classification/digits"
BUILDER = f"datasets/{DIGITS}/digits_dataset_builder.py"


def _run(*args: str, code: int = 0) -> str:
    """``registry ARGS``'s stdout (the step line goes to stderr)."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.stdout


def _release_2_0_0(clone: Path) -> None:
    """Change the builder (labels shifted: existing data changed) and release 2.0.0."""
    source = (clone / BUILDER).read_text()
    changed = source.replace('VERSION = tfds.core.Version("1.0.0")',
                             'VERSION = tfds.core.Version("2.0.0")')
    changed = changed.replace(
        "RELEASE_NOTES: ClassVar[dict[str, str]] = {",
        'RELEASE_NOTES: ClassVar[dict[str, str]] = {\n        "2.0.0": "Labels shifted by one.",',
    )
    changed = changed.replace('"label": values[64]}', '"label": (values[64] + 1) % 10}')
    assert changed != source and "2.0.0" in changed
    (clone / BUILDER).write_text(changed)
    registry.build_dataset([DIGITS])
    commit_all(clone, "digits 2.0.0")
    git(clone, "push", "-q", "origin", "main")
    registry.release_dataset(DIGITS)


def test_an_old_version_rebuilds_equal_after_the_builder_changed(
    released_registry: ReleasedRegistry, chdir: Callable[[Path], None], tmp_path: Path
) -> None:
    clone = released_registry.clone
    chdir(clone)
    _release_2_0_0(clone)
    assert registry.dataset_info(DIGITS).version == "2.0.0"
    head_builder = (clone / BUILDER).read_text()

    out = tmp_path / "rebuilt-1.0.0"
    result = registry.rebuild_dataset(f"{DIGITS}:1.0.0", output=out)
    assert result.equal is True and result.rebuilt == result.released
    assert result.released.endswith(".dir") and result.differences == []
    assert result.output == out and (out / "dataset_info.json").is_file()
    assert json.loads((out / "dataset_info.json").read_text())["version"] == "1.0.0"
    # The work tree, its builder and the released bytes are untouched; no worktree is left.
    assert (clone / BUILDER).read_text() == head_builder
    assert git(clone, "status", "--porcelain") == ""
    assert len(git(clone, "worktree", "list").splitlines()) == 1

    # From the CLI: without --output the folder is temporary, and the report says so.
    text = _run("datasets", "rebuild", f"{DIGITS}:1.0.0")
    assert "equal: the version rebuilds byte for byte from its tag" in text
    assert f"released: {result.released}" in text and "rebuilt folder: removed" in text
    data = json.loads(_run("datasets", "rebuild", f"{DIGITS}:2.0.0", "--json"))
    assert data["equal"] is True and data["version"] == "2.0.0" and data["output"] is None

    # Errors: an unknown version, an --output with files in it.
    err = cli_raises(VersionNotFoundError, "datasets", "rebuild", f"{DIGITS}:9.9.9", cwd=clone)
    assert "9.9.9" in str(err)
    (out / "keep.txt").write_text("mine")
    err2 = cli_raises(ConfigError, "datasets", "rebuild", f"{DIGITS}:1.0.0", "-o", str(out),
                      cwd=clone)
    assert "exists and is not an empty folder" in str(err2)
    # A purged version's bytes are gone: refused, nothing built.
    registry.yank_dataset(f"{DIGITS}:1.0.0", reason="labels were wrong", purge=True)
    err3 = cli_raises(PurgedVersionError, "datasets", "rebuild", f"{DIGITS}:1.0.0", cwd=clone)
    assert "was purged" in str(err3)


def _nondeterministic_2_0_0(clone: Path) -> None:
    """Release 2.0.0 from a builder whose labels depend on an unseeded random draw."""
    source = (clone / BUILDER).read_text()
    changed = source.replace('VERSION = tfds.core.Version("1.0.0")',
                             'VERSION = tfds.core.Version("2.0.0")')
    changed = changed.replace(
        "RELEASE_NOTES: ClassVar[dict[str, str]] = {",
        'RELEASE_NOTES: ClassVar[dict[str, str]] = {\n        "2.0.0": "Noisy labels.",',
    )
    changed = changed.replace(
        '"label": values[64]}',
        '"label": (values[64] + (__import__("random").random() < 0.2)) % 10}',
    )
    assert "__import__(\"random\")" in changed
    (clone / BUILDER).write_text(changed)
    registry.build_dataset([DIGITS])
    commit_all(clone, "digits 2.0.0, nondeterministic")
    git(clone, "push", "-q", "origin", "main")
    registry.release_dataset(DIGITS)


def test_a_rebuild_that_differs_names_the_files_and_records_are_git_notes(
    released_registry: ReleasedRegistry, chdir: Callable[[Path], None], tmp_path: Path
) -> None:
    clone, origin = released_registry.clone, released_registry.origin
    chdir(clone)
    _nondeterministic_2_0_0(clone)

    out = tmp_path / "rebuilt-2.0.0"
    text = _run("datasets", "rebuild", f"{DIGITS}:2.0.0", "--output", str(out), "--record",
                code=1)
    assert "DIFFERS: " in text and f"rebuilt folder: {out}" in text
    changed = re.findall(r"^  changed\s+(\S+)", text, re.M)
    assert changed and all(".tfrecord-" in path for path in changed), text
    assert (out / changed[0]).is_file()
    assert "recorded in the lineage of image_classification/digits@v2.0.0" in text
    # What differs in the data, by the diff: no key, so relabelled images are removed + added.
    data = text.split("what differs in the data (registry datasets diff):")[1]
    assert "schema:\n    no changes" in data and "examples matched by content" in data
    assert re.search(r"\+[1-9]\d* added\s+-[1-9]\d* removed", data), data

    # The note is on the tagged commit, pushed to origin, and info shows it.
    tag_commit = git(clone, "rev-parse", f"{DIGITS}@v2.0.0^{{commit}}").strip()
    [line] = git(clone, "notes", "--ref", NOTES_REF, "show", tag_commit).splitlines()
    note = json.loads(line)
    assert note["tag"] == f"{DIGITS}@v2.0.0" and note["equal"] is False
    assert note["by"] == "researcher@lab.test" and note["environment"]["tfds"]
    assert any(d.startswith("changed ") and ".tfrecord-" in d for d in note["differences"])
    counts = note["examples"]
    assert counts["added"] == counts["removed"] > 0 and counts["schema_changes"] == 0
    assert git(origin, "rev-parse", NOTES_REF).strip() == git(clone, "rev-parse", NOTES_REF).strip()
    info = _run("datasets", "info", f"{DIGITS}:2.0.0")
    assert f"last reproduced: {note['date'][:10]}, differs (researcher@lab.test)" in info
    assert json.loads(_run("datasets", "info", f"{DIGITS}:2.0.0", "--json"))["reproduced"][
        "equal"] is False
    assert "last reproduced" not in _run("datasets", "info", f"{DIGITS}:1.0.0")

    # A yanked version still rebuilds (with a warning): equal, and appended, never overwritten.
    registry.yank_dataset(f"{DIGITS}:1.0.0", reason="superseded")
    with pytest.warns(YankedVersionWarning, match="rebuilding it anyway"):
        first = registry.rebuild_dataset(f"{DIGITS}:1.0.0", record=True)
        again = registry.rebuild_dataset(f"{DIGITS}:1.0.0", record=True)
    assert first.equal and again.equal and first.yanked == "superseded" and again.recorded
    old_commit = git(clone, "rev-parse", f"{DIGITS}@v1.0.0^{{commit}}").strip()
    lines = git(clone, "notes", "--ref", NOTES_REF, "show", old_commit).splitlines()
    assert len(lines) == 2 and all(json.loads(x)["equal"] is True for x in lines)

    # Read by Git URL (a mirror), and fetched by a clone with the tags.
    by_url = registry.dataset_info(f"{DIGITS}:1.0.0", registry=str(origin))
    assert by_url.reproduced is not None and by_url.reproduced["equal"] is True
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(origin), str(other))
    assert registry.dataset_info(f"{DIGITS}:2.0.0", registry=other).reproduced is None
    from registry.repo.session import open_session

    open_session(other).repo.fetch_tags()
    assert registry.dataset_info(f"{DIGITS}:2.0.0", registry=other).reproduced["equal"] is False


SHOP = "demo/shop"


def test_raw_inputs_come_from_the_remote_and_gone_ones_are_a_clear_error(
    make_registry: Callable[..., Path], chdir: Callable[[Path], None], tmp_path: Path
) -> None:
    repo = make_registry(datasets=[])
    chdir(repo)
    registry.new_dataset(SHOP)
    exports = repo / f"datasets/{SHOP}/exports"
    exports.mkdir()
    shutil.copy(repo / f"datasets/{SHOP}/dummy_data/shop.csv", exports / "shop.csv")
    registry.datasets.add_raw_input(SHOP, f"datasets/{SHOP}/exports/")
    commit_all(repo, "The shop dataset and its raw export, tracked in place")
    registry.build_dataset([SHOP])
    commit_all(repo, "Build it")
    release = registry.release_dataset(SHOP)
    # The raw folder in the work tree is not what the rebuild reads: it is fetched.
    shutil.rmtree(exports)
    result = registry.rebuild_dataset(f"{SHOP}:1.0.0")
    assert result.equal is True and result.unchecked == []

    from registry.datasets import build_inputs
    from registry.repo.session import open_session

    session = open_session(repo)
    [raw] = build_inputs(session, release.commit, SHOP).raw
    storage = tmp_path / f"{repo.name}-dvc-storage"  # make_registry's DVC remote
    shutil.rmtree(storage / "files")
    shutil.rmtree(session.content_cache().root)
    err = cli_raises(RawInputMissingError, "datasets", "rebuild", f"{SHOP}:1.0.0", cwd=repo)
    assert f"its input datasets/{SHOP}/exports (md5 {raw['md5']}) is not in DVC remote" in str(err)


CNN = "digits-cnn"


def _trained_registry(
    make_registry: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A registry with digits 1.0.0 released and digits-cnn trained (1 epoch, CPU) on it."""
    import yaml

    repo = make_registry(datasets=[DIGITS], models=True)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # runs kept in pending/
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["beam"]["direct_running_mode"] = "in_memory"
    params["train"]["strategy"] = "cpu"
    params["models"] = {CNN: {**params["models"][CNN], "epochs": 1}}  # digits-parity: not here
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.rmtree(repo / "models/digits-parity")
    commit_all(repo, "digits-cnn alone, one epoch")
    done = subprocess.run(["dvc", "repro", f"train@{CNN}"], cwd=repo, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    commit_all(repo, "Train digits-cnn")
    registry.release_dataset(DIGITS, push=False)
    registry.release_model(CNN, push=False)
    return repo


def test_a_model_version_retrains_to_its_released_weights(
    make_registry: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _trained_registry(make_registry, monkeypatch)
    weights = repo / f"models/{CNN}/model.keras"
    released = registry.model_info(f"{CNN}:1.0.0")
    head = git(repo, "rev-parse", "HEAD")

    # Bit-identical on one machine (train.determinism): equal, recorded, as JSON.
    data = json.loads(_run("models", "reproduce", f"{CNN}:1.0.0", "--record", "--json"))
    assert data["equal"] is True and data["rebuilt"] == data["released"]
    assert data["tag"] == f"{CNN}@v1.0.0" and data["differences"] == []
    assert data["recorded"] is True and data["metrics_after"] == data["metrics_before"]
    assert data["metrics_before"]["epochs"] == 1
    tag_commit = git(repo, "rev-parse", f"{CNN}@v1.0.0^{{commit}}").strip()
    [line] = git(repo, "notes", "--ref", NOTES_REF, "show", tag_commit).splitlines()
    note = json.loads(line)
    assert note["kind"] == "model" and note["equal"] is True
    assert note["environment"]["tensorflow"] and note["released"] == data["released"]
    assert "last reproduced: " in _run("models", "info", f"{CNN}:1.0.0")
    # The work tree and its weights are untouched; no worktree is left.
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == ""
    assert len(git(repo, "worktree", "list").splitlines()) == 1
    assert released.version == "1.0.0"

    # 1.0.1: weights that the recorded params did not produce, committed to dvc.lock as if
    # they had been (`dvc commit` without retraining), then released.
    weights.write_bytes(weights.read_bytes() + b"\0")
    done = subprocess.run(["dvc", "commit", "-f", f"train@{CNN}"], cwd=repo, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    commit_all(repo, "Other weights, same card")
    registry.release_model(CNN, version="1.0.1", push=False)
    text = _run("models", "reproduce", f"{CNN}:1.0.1", code=1)
    assert "DIFFERS:" in text and f"weights models/{CNN}/model.keras: md5 " in text
    assert data["released"] in text  # the retrained weights are 1.0.0's


@pytest.mark.parametrize("kept_back", [False, True], ids=["import", "import-push-false"])
def test_an_imported_raw_input_is_pushed_by_the_release_and_rebuilds_once_gone(
    make_registry: Callable[..., Path], chdir: Callable[[Path], None], tmp_path: Path,
    kept_back: bool,
) -> None:
    # `dvc import-url` of a folder outside the registry. DVC 3 pushes a plain import's objects;
    # it keeps back an output marked `push: false`, which it writes for an import from a
    # version-aware source (a versioned bucket). The release pushes those too, so the version
    # rebuilds once every other copy (the source, the work tree, both caches) is gone.
    repo = make_registry(datasets=[])
    chdir(repo)
    registry.new_dataset(SHOP)
    export = tmp_path / "warehouse" / "2024-06"
    export.mkdir(parents=True)
    shutil.copy(repo / f"datasets/{SHOP}/dummy_data/shop.csv", export / "shop.csv")
    registry.datasets.add_raw_input(SHOP, str(export))
    if kept_back:
        import yaml

        dvcfile = repo / f"datasets/{SHOP}/raw.dvc"
        data = yaml.safe_load(dvcfile.read_text())
        data["outs"][0]["push"] = False
        dvcfile.write_text(yaml.safe_dump(data, sort_keys=False))
    commit_all(repo, "Import the shop export")
    registry.build_dataset([SHOP])
    commit_all(repo, "Build it")
    registry.release_dataset(SHOP)

    from registry.repo.session import open_session

    shutil.rmtree(export.parent)
    shutil.rmtree(repo / f"datasets/{SHOP}/raw")
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(open_session(repo).content_cache().root, ignore_errors=True)
    result = registry.rebuild_dataset(f"{SHOP}:1.0.0")
    assert result.equal is True and result.unchecked == []


def test_a_build_that_fails_at_the_old_commit_is_one_clear_error_and_leaves_no_worktree(
    released_registry: ReleasedRegistry, chdir: Callable[[Path], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 2.0.0's builder reads something of its environment (here: a variable standing for a
    # warehouse) that is gone when it is rebuilt.
    clone = released_registry.clone
    chdir(clone)
    source = (clone / BUILDER).read_text()
    changed = source.replace('VERSION = tfds.core.Version("1.0.0")',
                             'VERSION = tfds.core.Version("2.0.0")').replace(
        "RELEASE_NOTES: ClassVar[dict[str, str]] = {",
        'RELEASE_NOTES: ClassVar[dict[str, str]] = {\n        "2.0.0": "From the warehouse.",',
    ).replace(
        "        files = self._raw_files()\n",
        '        if __import__("os").environ.get("DIGITS_WAREHOUSE") == "down":\n'
        '            raise ConnectionError("the warehouse is unreachable")\n'
        "        files = self._raw_files()\n",
    )
    assert "DIGITS_WAREHOUSE" in changed
    (clone / BUILDER).write_text(changed)
    registry.build_dataset([DIGITS])
    commit_all(clone, "digits 2.0.0, from the warehouse")
    registry.release_dataset(DIGITS, push=False)

    monkeypatch.setenv("DIGITS_WAREHOUSE", "down")
    err = cli_raises(BuildError, "datasets", "rebuild", f"{DIGITS}:2.0.0", cwd=clone)
    text = str(err)
    assert "rebuilding image_classification/digits 2.0.0 at its tagged commit failed" in text
    assert "the warehouse is unreachable" in text
    assert "'git worktree add DIR TAG' and 'registry datasets prepare NAME' there" in text
    assert len(git(clone, "worktree", "list").splitlines()) == 1
    assert git(clone, "status", "--porcelain") == ""


def test_a_tag_without_a_lineage_record_rebuilds_from_its_commits_dvc_lock(
    released_registry: ReleasedRegistry, chdir: Callable[[Path], None]
) -> None:
    # A release made before tags carried a lineage record: the same commit, a plain message.
    clone = released_registry.clone
    chdir(clone)
    tag = f"{DIGITS}@v1.0.0"
    commit = git(clone, "rev-parse", f"{tag}^{{commit}}").strip()
    git(clone, "tag", "-d", tag)
    git(clone, "tag", "-a", tag, "-m", "Release image_classification/digits 1.0.0", commit)

    text = _run("datasets", "rebuild", f"{DIGITS}:1.0.0")
    assert "equal: the version rebuilds byte for byte from its tag" in text
    [gap] = [line for line in text.splitlines() if line.startswith("not checked: ")]
    assert tag in gap and "rebuilt from the commit's dvc.lock alone" in gap
    data = json.loads(_run("datasets", "rebuild", f"{DIGITS}:1.0.0", "--json", "--no-verify"))
    assert data["equal"] is None and data["rebuilt"] == data["released"]
    assert data["unchecked"] == [gap.removeprefix("not checked: ")]


def test_weights_added_by_hand_cannot_be_retrained_and_say_why(
    released_registry: ReleasedRegistry, chdir: Callable[[Path], None], tmp_path: Path
) -> None:
    from registry.cards import parse_card, render_card

    clone = released_registry.clone
    chdir(clone)
    weights = tmp_path / "trained-elsewhere.keras"
    weights.write_bytes(b"weights from a laptop" * 100)
    registry.add_model("laptop-cnn", weights)
    card_path = clone / "models/laptop-cnn/README.md"
    card = parse_card(card_path.read_text())
    card_path.write_text(render_card({
        **card.meta, "task": "image-classification", "architecture": "small-cnn",
        "datasets": [f"{DIGITS}:1.0.0"], "metrics": {"accuracy": 0.9}, "owner": "vision",
        "license": "apache-2.0",
    }, card.body))
    commit_all(clone, "laptop-cnn, trained elsewhere")
    registry.release_model("laptop-cnn", push=False)
    err = cli_raises(NotBuiltError, "models", "reproduce", "laptop-cnn:1.0.0", cwd=clone)
    assert "records no train@laptop-cnn stage" in str(err)
    assert "added with 'registry models add'" in str(err)
