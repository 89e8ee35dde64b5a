"""The model zoo end to end: cards, weights in DVC, releases with lineage, stages, search, load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import registry
from registry.cards import CardError, FrontMatterMemo, parse_card, render_card
from registry.errors import (
    AlreadyInStageError,
    ArtifactExistsError,
    ArtifactNotFoundError,
    ConfigError,
    InvalidCardError,
    StaleDataError,
    VersionNotAboveLatestError,
    VersionNotFoundError,
    VersionOnCommitError,
    VersionUnspecifiedError,
)
from registry.models import read_lineage
from tests.conftest import ReleasedRegistry, cli_raises, commit_all, git

pytestmark = pytest.mark.slow
DIGITS = "image_classification/digits:1.0.0"


def _weights(tmp_path: Path, name: str = "model.keras", content: bytes | None = None) -> Path:
    path = tmp_path / "trained-elsewhere" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content if content is not None else os.urandom(2048))
    return path


def _fill_card(clone: Path, name: str, **fields: object) -> None:
    path = clone / "models" / name / "README.md"
    card = parse_card(path.read_text())
    meta = {
        **card.meta,
        "task": "image-classification",
        "architecture": "small-cnn",
        "datasets": [DIGITS],
        "metrics": {"accuracy": 0.95},
        "owner": "vision-team",
        "license": "apache-2.0",
        **fields,
    }
    path.write_text(render_card(meta, card.body))


def _model(clone: Path, tmp_path: Path, name: str, **fields: object) -> None:
    """A model with filled card and DVC-tracked weights, committed."""
    registry.add_model(name, _weights(tmp_path, content=name.encode() * 100))
    _fill_card(clone, name, **fields)
    commit_all(clone, f"Add {name}")


@pytest.fixture
def zoo(released_registry: ReleasedRegistry, chdir) -> ReleasedRegistry:
    chdir(released_registry.clone)
    return released_registry


def test_add_release_promote_and_load(zoo: ReleasedRegistry, tmp_path: Path) -> None:
    clone = zoo.clone
    path = registry.new_model("digits-cnn", task="image-classification", owner="vision-team")
    assert parse_card(path.read_text()).get("owner") == "vision-team"
    weights = _weights(tmp_path)
    registry.add_model("digits-cnn", weights)
    assert (clone / "models/digits-cnn/model.keras.dvc").is_file()
    assert "digits-cnn:" in (clone / "dvc.yaml").read_text()  # declared under artifacts:
    _fill_card(clone, "digits-cnn")
    commit_all(clone, "Add digits-cnn")

    release = registry.release_model("digits-cnn")
    assert (release.tag, str(release.version)) == ("digits-cnn@v1.0.0", "1.0.0")
    assert "digits-cnn@v1.0.0" in git(zoo.origin, "tag").split()
    tag = registry.promote_model("digits-cnn:1.0.0", "prod")
    assert tag == "digits-cnn#prod#1"

    loaded = registry.load_model("digits-cnn@prod")
    assert loaded.name == "model.keras" and loaded.read_bytes() == weights.read_bytes()
    info = registry.model_info("digits-cnn@prod")
    assert info.stages == {"prod": "1.0.0"} and info.version == "1.0.0"
    assert info.lineage["datasets"] == {"image_classification/digits": "1.0.0"}
    assert info.lineage["commit"] == release.commit
    assert info.lineage["weights"]["path"] == "models/digits-cnn/model.keras"


def test_load_from_another_project_and_with_dvc_and_gto(
    zoo: ReleasedRegistry, tmp_path: Path, chdir, monkeypatch
) -> None:
    _model(zoo.clone, tmp_path, "digits-cnn")
    registry.release_model("digits-cnn")
    registry.promote_model("digits-cnn:1.0.0", "staging")
    expected = b"digits-cnn" * 100

    elsewhere = tmp_path / "another-project"
    elsewhere.mkdir()
    chdir(elsewhere)
    monkeypatch.setenv("REGISTRY_URL", f"file://{zoo.origin}")
    assert registry.load_model("digits-cnn@staging").read_bytes() == expected
    assert registry.load_model("digits-cnn:1.*").read_bytes() == expected

    for how in (["--rev", "v1.0.0"], ["--stage", "staging"]):
        out = tmp_path / f"artifact{how[0]}"
        done = subprocess.run(
            ["dvc", "artifacts", "get", str(zoo.origin), "digits-cnn", *how, "-o", str(out)],
            cwd=tmp_path, capture_output=True, text=True,
        )
        assert done.returncode == 0, done.stderr
        assert out.read_bytes() == expected
    shown = subprocess.run(["gto", "show", "--json"], cwd=zoo.clone, capture_output=True,
                           text=True, check=True).stdout
    assert "digits-cnn" in shown and "staging" in shown


def test_load_keras_model(zoo: ReleasedRegistry, tmp_path: Path) -> None:
    import keras

    layers = [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
    model = keras.Sequential(layers)
    weights = tmp_path / "tiny.keras"
    model.save(weights)
    registry.add_model("tiny", weights)
    _fill_card(zoo.clone, "tiny")
    commit_all(zoo.clone, "Add tiny")
    registry.release_model("tiny")
    loaded = registry.load_keras_model("tiny")
    assert loaded.count_params() == model.count_params()


def test_card_errors_name_the_field(zoo: ReleasedRegistry, tmp_path: Path) -> None:
    registry.add_model("half-done", _weights(tmp_path))
    commit_all(zoo.clone, "Add half-done")
    with pytest.raises(CardError, match=r"missing required field\(s\): task, architecture"):
        registry.release_model("half-done")
    _fill_card(zoo.clone, "half-done", datasets=["image_classification/digits"])
    commit_all(zoo.clone, "No version")
    with pytest.raises(CardError, match="needs an exact version"):
        registry.release_model("half-done")
    _fill_card(zoo.clone, "half-done", framework="caffe")
    commit_all(zoo.clone, "Bad framework")
    with pytest.raises(CardError, match="framework 'caffe' is not one of"):
        registry.release_model("half-done")
    _fill_card(zoo.clone, "half-done", framework="keras", metrics={"accuracy": "high"})
    commit_all(zoo.clone, "Bad metrics")
    with pytest.raises(CardError, match="metrics must map names to numbers"):
        registry.release_model("half-done")
    assert "half-done@v1.0.0" not in git(zoo.clone, "tag").split()


def test_lineage_must_point_at_releases(zoo: ReleasedRegistry, tmp_path: Path) -> None:
    _model(zoo.clone, tmp_path, "m", datasets=["image_classification/digits:9.9.9"])
    with pytest.raises(InvalidCardError, match="not a released dataset version"):
        registry.release_model("m")
    _fill_card(zoo.clone, "m", base_model="nope:1.0.0")
    commit_all(zoo.clone, "Bad base")
    with pytest.raises(InvalidCardError, match=r"base_model .nope:1\.0\.0. is not a released"):
        registry.release_model("m")
    assert not [t for t in git(zoo.clone, "tag").split() if t.startswith("m@")]


def test_stale_weights_are_refused(zoo: ReleasedRegistry, tmp_path: Path) -> None:
    _model(zoo.clone, tmp_path, "m")
    (zoo.clone / "models/m/model.keras").write_bytes(b"retrained but not re-added")
    with pytest.raises(StaleDataError, match="not up to date"):
        registry.release_model("m")


def test_versions_and_bumps(zoo: ReleasedRegistry, tmp_path: Path) -> None:
    _model(zoo.clone, tmp_path, "m")
    assert str(registry.release_model("m", version="0.1.0").version) == "0.1.0"
    with pytest.raises(VersionUnspecifiedError, match="say which: 'registry models release m"):
        registry.release_model("m")
    # gto show and stage tags cannot tell two versions on one commit apart.
    with pytest.raises(VersionOnCommitError, match="released from this very commit"):
        registry.release_model("m", bump="patch")
    registry.add_model("m", _weights(tmp_path, content=b"v2"), force=True)
    commit_all(zoo.clone, "Retrain")
    assert str(registry.release_model("m", bump="minor").version) == "0.2.0"
    with pytest.raises(VersionNotAboveLatestError, match=r"the latest release 0\.2\.0"):
        registry.release_model("m", version="0.1.5")
    assert [str(v) for v in registry.model_info("m").versions] == ["0.1.0", "0.2.0"]
    assert registry.load_model("m:0.1.0").read_bytes() == b"m" * 100
    assert registry.load_model("m").read_bytes() == b"v2"


def test_stage_rules_demote_and_deprecate(zoo: ReleasedRegistry, tmp_path: Path) -> None:
    _model(zoo.clone, tmp_path, "m")
    registry.release_model("m")
    with pytest.raises(ConfigError, match="stage 'qa' is not allowed; the stages are dev"):
        registry.promote_model("m:1.0.0", "qa")
    with pytest.raises(VersionNotFoundError, match=r"released: 1\.0\.0"):
        registry.promote_model("m:2.0.0", "prod")
    registry.promote_model("m:1.0.0", "prod")
    with pytest.raises(AlreadyInStageError, match="in 'prod' already"):
        registry.promote_model("m:1.0.0", "prod")
    assert registry.demote_model("m", "prod") == "m#prod!#2"
    with pytest.raises(VersionNotFoundError, match="@prod"):
        registry.load_model("m@prod")
    assert registry.deprecate_model("m") == "m@deprecated#3"
    [summary] = [s for s in registry.list_models() if s.name == "m"]
    assert summary.deprecated and summary.stages == {}


def test_names_never_clash(zoo: ReleasedRegistry) -> None:
    with pytest.raises(ArtifactExistsError, match="a dataset has that name"):
        registry.new_model("image_classification/digits")
    registry.new_model("m")
    with pytest.raises(ArtifactExistsError, match="a model of that name exists"):
        registry.new_model("m")
    with pytest.raises(ArtifactNotFoundError, match="Did you mean 'm'"):
        registry.model_info("mm:1.0.0")


def test_search(zoo: ReleasedRegistry, tmp_path: Path) -> None:
    _model(zoo.clone, tmp_path, "digits-cnn", tags=["vision"])
    registry.release_model("digits-cnn")
    _model(zoo.clone, tmp_path, "bert-ja", task="text-classification", architecture="bert-base",
           framework="tensorflow", language="ja", owner="nlp-team", metrics={"accuracy": 0.99},
           base_model="digits-cnn:1.0.0")
    registry.release_model("bert-ja")
    registry.promote_model("bert-ja:1.0.0", "prod")

    def names(**filters: object) -> list[str]:
        return [s.name for s in registry.search_models(**filters)]  # type: ignore[arg-type]

    assert names() == ["bert-ja", "digits-cnn"]
    assert names(architecture="BERT-base", language="ja") == ["bert-ja"]
    assert names(task="image-classification") == ["digits-cnn"]
    assert names(dataset="image_classification/digits:1.*") == ["bert-ja", "digits-cnn"]
    assert names(dataset="image_classification/digits:2.*") == []
    assert names(base_model="digits-cnn") == ["bert-ja"]
    assert names(owner="nlp-team", stage="prod") == ["bert-ja"]
    assert names(text="bert japanese") == []  # every word must appear
    assert names(text="bert nlp") == ["bert-ja"]
    assert names(sort="accuracy") == ["bert-ja", "digits-cnn"]
    done = subprocess.run(
        [sys.executable, "-m", "registry", "models", "search", "--framework", "keras", "--json"],
        capture_output=True, text=True, check=True,
    )
    assert '"name": "digits-cnn"' in done.stdout and "bert-ja" not in done.stdout


def test_cli_errors_are_one_line(zoo: ReleasedRegistry) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "registry", "models", "promote", "nope:1.0.0", "prod"],
        capture_output=True, text=True,
    )
    assert done.returncode == 3 and done.stderr.startswith("error: unknown model 'nope'")
    assert "Traceback" not in done.stderr


def test_lineage_parser_ignores_foreign_messages() -> None:
    assert read_lineage("Release x 1.0.0\n\nhand-written tag") is None
    assert read_lineage('x\nlineage: {"datasets": {}}') == {"datasets": {}}


def test_remote_down_means_no_tag_and_a_rerun_completes(
    zoo: ReleasedRegistry, tmp_path: Path
) -> None:
    from registry.errors import RemoteError

    _model(zoo.clone, tmp_path, "m")
    subprocess.run(["dvc", "remote", "modify", "--local", "storage", "url", "/dev/null/down"],
                   cwd=zoo.clone, check=True)
    with pytest.raises(RemoteError, match="nothing was tagged"):
        registry.release_model("m", remote="storage", allow_unshared_remote=True)
    assert "m@v1.0.0" not in git(zoo.clone, "tag").split()
    (zoo.clone / ".dvc" / "config.local").unlink()
    assert str(registry.release_model("m").version) == "1.0.0"
    assert "m@v1.0.0" in git(zoo.origin, "tag").split()


def test_a_released_model_removed_from_the_tree_is_not_a_dataset(
    zoo: ReleasedRegistry, tmp_path: Path
) -> None:
    import shutil

    _model(zoo.clone, tmp_path, "old-model")
    registry.release_model("old-model")
    shutil.rmtree(zoo.clone / "models" / "old-model")
    commit_all(zoo.clone, "Retire old-model")
    assert [s.name for s in registry.list_datasets()] == ["image_classification/digits"]
    assert "old-model" in [s.name for s in registry.list_models()]
    assert registry.load_model("old-model:1.0.0").read_bytes() == b"old-model" * 100


def test_front_matter_memo_answers_as_parsing_does(tmp_path: Path) -> None:
    """What the memo keeps is exactly what YAML parsed, by the text's hash (an edited card is
    parsed anew); what JSON cannot hold exactly (a date) is parsed each time; a corrupt or
    unwritable memo file is ignored, never an error."""
    memo_file = tmp_path / "cache" / "card-front-matter.json"
    cards = {
        "plain": "---\ntask: t\nmetrics:\n  accuracy: 0.5\nlist: [1, 2.0, true, null]\n---\nb",
        "edited": "---\ntask: u\nmetrics:\n  accuracy: 0.5\nlist: [1, 2.0, true, null]\n---\nb",
        "dated": "---\ntask: t\nreleased: 2026-12-06\n---\n",
        "number_keys": "---\nmetrics:\n  1: 0.5\n---\n",
    }
    parsed = {name: parse_card(text) for name, text in cards.items()}
    memo = FrontMatterMemo(memo_file)
    assert [parse_card(t, memo=memo) for t in cards.values()] == list(parsed.values())
    memo.save()
    again = FrontMatterMemo(memo_file)
    for name, text in cards.items():
        front = text.split("---\n")[1].removesuffix("\n")
        kept = again.get(front)
        assert kept == (parsed[name].meta if name in ("plain", "edited") else None), name
        assert parse_card(text, memo=again) == parsed[name]
    assert again.get("task: never parsed") is None

    memo_file.write_text("{not json")
    assert FrontMatterMemo(memo_file).get("task: t") is None
    assert parse_card(cards["plain"], memo=FrontMatterMemo(memo_file)) == parsed["plain"]
    blocked = tmp_path / "a-file" / "card-front-matter.json"  # its folder cannot be made
    blocked.parent.write_text("")
    unwritable = FrontMatterMemo(blocked)
    assert parse_card(cards["plain"], memo=unwritable) == parsed["plain"]
    unwritable.save()
    assert blocked.parent.read_text() == ""


def test_search_reads_cards_through_the_memo(zoo: ReleasedRegistry, tmp_path: Path) -> None:
    """A second search answers from the memo as the first did from the cards, and a release
    whose card changed is searched by its new fields."""
    _model(zoo.clone, tmp_path, "bert-ja", task="text-classification", language="ja")
    registry.release_model("bert-ja")
    memos = Path(os.environ["XDG_CACHE_HOME"]) / "lab-registry" / "card-front-matter"
    for old in memos.glob("*.json"):
        old.unlink()
    first = registry.search_models(language="ja")
    assert [s.name for s in first] == ["bert-ja"] and len(list(memos.glob("*.json"))) == 1
    assert [s.card for s in registry.search_models(language="ja")] == [first[0].card]
    card = zoo.clone / "models" / "bert-ja" / "README.md"
    card.write_text(card.read_text().replace("language: ja", "language: en", 1))
    commit_all(zoo.clone, "bert-ja is English after all")
    git(zoo.clone, "tag", "-a", "bert-ja@v1.1.0", "-m", "Registering bert-ja version v1.1.0")
    assert registry.search_models(language="ja") == []
    assert [s.name for s in registry.search_models(language="en")] == ["bert-ja"]


def test_a_released_card_that_no_longer_parses_is_a_warning(
    zoo: ReleasedRegistry, tmp_path: Path
) -> None:
    # A release whose card does not parse at its tag (tagged by another tool, or an older
    # parser): info, list and search show its fields blank, and say why on one line.
    _model(zoo.clone, tmp_path, "m")
    registry.release_model("m")
    card = zoo.clone / "models" / "m" / "README.md"
    card.write_text(card.read_text().replace("owner: vision-team", "owner: a: b", 1))
    commit_all(zoo.clone, "A card that does not parse")
    git(zoo.clone, "tag", "-a", "m@v1.1.0", "-m", "Registering artifact m version v1.1.0")
    line = "models/m/README.md at m@v1.1.0: the front matter is not valid YAML: line 10, column 9: "
    for argv in (["info", "m"], ["list"], ["search", "--task", "image-classification"]):
        done = subprocess.run(
            [sys.executable, "-m", "registry", "models", *argv],
            cwd=zoo.clone,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        warned = [w for w in done.stderr.splitlines() if "m@v1.1.0" in w]
        assert len(warned) == 1, done.stderr
        assert warned[0].startswith(line), warned[0]
        assert "mapping values are not allowed" in warned[0]
        assert warned[0].endswith("shown blank until a release with a card that parses")


def test_the_lineage_keeps_how_the_weights_were_trained(
    zoo: ReleasedRegistry, tmp_path: Path
) -> None:
    training = {"tensorflow": "2.21.0", "determinism": {"onednn": False, "intra_op_threads": 1}}
    _model(zoo.clone, tmp_path, "m", training=training)
    _model(zoo.clone, tmp_path, "n")
    registry.release_model("m")
    registry.release_model("n")
    assert registry.model_info("m:1.0.0").lineage["training"] == training
    assert registry.model_info("n:1.0.0").lineage["training"] is None


def test_a_weights_folder_with_a_link_leading_out_of_it_is_refused(
    zoo: ReleasedRegistry, tmp_path: Path
) -> None:
    """The copy would carry the link's target (a key file, say) into the registry's DVC remote."""
    clone, weights = zoo.clone, tmp_path / "saved_model"
    (weights / "variables").mkdir(parents=True)
    (weights / "saved_model.pb").write_bytes(b"graph")
    secret = tmp_path / "id_ed25519"
    secret.write_text("PRIVATE KEY")
    (weights / "variables" / "key").symlink_to(secret)
    error = cli_raises(ConfigError, "models", "add", "linked", "--from", str(weights), cwd=clone)
    assert str(error).startswith(
        f"{weights / 'variables' / 'key'} is a symbolic link to {secret}, outside {weights}: "
    )
    assert not (clone / "models" / "linked").exists()  # refused before anything was written
    # A link inside the folder is the folder's own file: copied as its content.
    (weights / "variables" / "key").unlink()
    (weights / "variables" / "key").symlink_to(weights / "saved_model.pb")
    dest = registry.add_model("linked", weights, registry=clone)
    assert (dest / "variables" / "key").read_bytes() == b"graph"
