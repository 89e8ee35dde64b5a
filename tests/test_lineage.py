"""Lineage both ways, from Git alone: real releases, hand-made older tags, the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import registry
from registry.cards import parse_card, render_card
from registry.cli import cli
from registry.errors import (
    ArtifactNotFoundError,
    ConfigError,
    MalformedLineageError,
    VersionNotFoundError,
    WrongKindError,
)
from registry.models import LINEAGE_SCHEMA, parse_lineage
from registry.repo.lock import locked_stage
from registry.repo.session import open_session
from tests.conftest import ReleasedRegistry, cli_raises, commit_all, git

pytestmark = pytest.mark.slow
DIGITS = "image_classification/digits"


def _model(clone: Path, tmp_path: Path, name: str, **fields: object) -> None:
    """A model with a filled card and DVC-tracked weights, committed."""
    weights = tmp_path / "trained-elsewhere" / f"{name}.keras"
    weights.parent.mkdir(exist_ok=True)
    weights.write_bytes(name.encode() * 100 + os.urandom(16))
    registry.add_model(name, weights)
    path = clone / "models" / name / "README.md"
    card = parse_card(path.read_text())
    meta = {**card.meta, "task": "image-classification", "architecture": "small-cnn",
            "datasets": [f"{DIGITS}:1.0.0"], "metrics": {"accuracy": 0.9}, "owner": "vision",
            "license": "apache-2.0", **fields}
    path.write_text(render_card(meta, card.body))
    commit_all(clone, f"Add {name}")


@pytest.fixture
def zoo(released_registry: ReleasedRegistry, chdir, tmp_path: Path) -> ReleasedRegistry:
    """digits 1.0.0; cnn trained on it; ft fine-tuned from cnn and in prod."""
    chdir(released_registry.clone)
    _model(released_registry.clone, tmp_path, "cnn")
    registry.release_model("cnn")
    _model(released_registry.clone, tmp_path, "ft", base_model="cnn:1.0.0")
    registry.release_model("ft")
    registry.promote_model("ft:1.0.0", "prod")
    return released_registry


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_model_upstream_is_recursive_and_complete(zoo: ReleasedRegistry) -> None:
    message = open_session(".").repo.tag_message("ft@v1.0.0")
    record, problem = parse_lineage(message)
    assert problem is None and record is not None and record["schema"] == LINEAGE_SCHEMA == 2
    assert record["compute"] == {"backend": "local", "strategy": "auto"}

    graph = registry.get_lineage("ft@prod")
    assert graph.root == "ft:1.0.0" and graph.missing() == []
    edges = {(e.source, e.relation, e.target) for e in graph.edges}
    assert edges == {
        ("ft:1.0.0", "fine_tuned_from", "cnn:1.0.0"),
        ("ft:1.0.0", "trained_on", f"{DIGITS}:1.0.0"),
        ("cnn:1.0.0", "trained_on", f"{DIGITS}:1.0.0"),
    }
    ft, digits = graph.nodes["ft:1.0.0"], graph.nodes[f"{DIGITS}:1.0.0"]
    assert ft.stages == ["prod"] and ft.kind == "model" and ft.tag == "ft@v1.0.0"
    assert ft.details["compute"] == {"backend": "local", "strategy": "auto"}
    assert ft.hash == record["weights"]["md5"]
    session = open_session(".")
    [release] = session.index().releases(DIGITS)
    assert digits.hash == registry.datasets.released_data_hash(session, release)
    assert digits.details["builder_commit"] == release.commit

    shallow = registry.get_lineage("ft:1.0.0", depth=1)
    assert {e.source for e in shallow.edges} == {"ft:1.0.0"}
    assert json.loads(json.dumps(graph.to_dict()))["root"] == "ft:1.0.0"


def test_dataset_upstream_says_the_builder_generates_its_data(zoo: ReleasedRegistry) -> None:
    graph = registry.get_lineage(f"{DIGITS}:1.0.0")
    node = graph.nodes[graph.root]
    assert graph.edges == [] and node.details["params"] == {}
    assert "generates its data" in node.details["raw_inputs"]
    assert any(p.endswith("digits_dataset_builder.py") for p in node.details["builder_files"])
    # locked_stage parses only the stage's lines of dvc.lock: the same entry as the whole file.
    repo = open_session(".").repo
    lock = yaml.safe_load(repo.read_file(node.commit, "dvc.lock") or b"")
    stage = f"build@{DIGITS}"
    assert locked_stage(repo, node.commit, stage) == lock["stages"][stage]
    assert locked_stage(repo, node.commit, "build@nope") is None


def test_downstream_of_a_dataset_reaches_fine_tuned_models(zoo: ReleasedRegistry) -> None:
    graph = registry.get_lineage(DIGITS, direction="down")
    assert set(graph.nodes) == {f"{DIGITS}:1.0.0", "cnn:1.0.0", "ft:1.0.0"}
    assert graph.nodes["ft:1.0.0"].stages == ["prod"]
    assert [e.source for e in registry.get_lineage("cnn:1.0.0", "down").edges] == ["ft:1.0.0"]
    assert registry.get_lineage(DIGITS, "down", depth=0).edges == []

    text = _run("lineage", DIGITS, "--down")
    assert "trained_on it: cnn:1.0.0 (model)" in text and "[prod]" in text
    assert _run("lineage", "ft:1.0.0", "--format", "mermaid").startswith("flowchart BT")
    dot = _run("lineage", "ft:1.0.0", "--format", "dot")
    assert '"ft:1.0.0" -> "cnn:1.0.0" [label="fine_tuned_from"];' in dot
    data = json.loads(_run("lineage", "cnn:1.0.0", "--down", "--json"))
    assert data["direction"] == "down" and [n["id"] for n in data["nodes"]][1] == "ft:1.0.0"


def test_info_shows_a_short_lineage_section(zoo: ReleasedRegistry) -> None:
    text = _run("models", "info", "cnn:1.0.0")
    assert f"trained_on {DIGITS}:1.0.0 md5 " in text
    assert "used by ft:1.0.0 (fine_tuned_from) [prod]" in text
    data = json.loads(_run("datasets", "info", f"{DIGITS}:1.0.0", "--json"))
    downstream = {e["ref"] for e in data["lineage_summary"]["downstream"]}
    assert downstream == {"cnn:1.0.0", "ft:1.0.0"}


def _hand_tag(clone: Path, tag: str, message: str) -> None:
    git(clone, "tag", "--annotate", "--message", message, tag)


def test_older_and_broken_records_are_read_as_far_as_possible(zoo: ReleasedRegistry) -> None:
    clone = zoo.clone
    _hand_tag(clone, "cnn@v0.1.0", "Release cnn 0.1.0")  # before lineage was recorded
    graph = registry.get_lineage("cnn:0.1.0")
    assert [(e.relation, e.target) for e in graph.edges] == [("trained_on", f"{DIGITS}:1.0.0")]
    [missing] = graph.missing()
    assert "has no lineage line" in missing and "read from its card" in missing

    _hand_tag(clone, "cnn@v0.2.0", "Release cnn 0.2.0\n\nlineage: {broken")
    assert "not valid JSON" in registry.get_lineage("cnn:0.2.0").missing()[0]

    old = {"artifact": "cnn", "kind": "model", "commit": "x", "datasets": {DIGITS: "1.0.0"},
           "base_model": None, "params": {}, "training_run": None, "weights": {"md5": "ab"}}
    _hand_tag(clone, "cnn@v0.3.0", f"Release cnn 0.3.0\n\nlineage: {json.dumps(old)}")
    [schema1] = registry.get_lineage("cnn:0.3.0").missing()
    assert "records no training, compute (lineage schema 1)" in schema1
    # Downstream reads them too: the card of 0.1.0 and the record of 0.3.0 name digits.
    down = registry.get_lineage(f"{DIGITS}:1.0.0", "down")
    assert {"cnn:0.1.0", "cnn:0.3.0"} <= set(down.nodes)

    err = cli_raises(MalformedLineageError, "lineage", "cnn:0.2.0", "--strict", cwd=clone)
    assert "'cnn@v0.2.0' cannot be read: its lineage line is not valid JSON" in str(err)


def test_lineage_errors(zoo: ReleasedRegistry) -> None:
    clone = zoo.clone
    err = cli_raises(ArtifactNotFoundError, "lineage", "cnm:1.0.0", cwd=clone)
    assert "unknown model 'cnm'. Did you mean 'cnn'?" in str(err)
    err2 = cli_raises(VersionNotFoundError, "lineage", f"{DIGITS}:9.0.0", cwd=clone)
    assert "9.0.0" in str(err2) and "1.0.0" in str(err2)
    with pytest.raises(WrongKindError, match=f"'{DIGITS}' is a dataset, not a model"):
        registry.get_lineage(DIGITS, kind="model")
    with pytest.raises(ConfigError, match="direction must be 'up' or 'down', not 'sideways'"):
        registry.get_lineage("cnn", "sideways")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="depth must be 0 or more"):
        registry.get_lineage("cnn", depth=-1)


def test_tag_messages_reads_many_tags_in_one_call(zoo: ReleasedRegistry) -> None:
    repo = open_session(".").repo
    messages = repo.tag_messages(["cnn@v1.0.0", "ft@v1.0.0", "nope@v1.0.0"])
    assert set(messages) == {"cnn@v1.0.0", "ft@v1.0.0"}
    assert messages["cnn@v1.0.0"].strip() == repo.tag_message("cnn@v1.0.0").strip()
    assert repo.tag_messages([]) == {}
    assert "ft@v1.0.0" in repo.tag_messages()


def test_downstream_matches_names_and_versions_exactly(zoo: ReleasedRegistry) -> None:
    """Downstream finds records by their text, then checks each exactly: a name that extends
    the dataset's, or another version of it, is no child."""
    clone = zoo.clone
    for version, datasets in [("0.4.0", {f"{DIGITS}_v2": "1.0.0"}), ("0.5.0", {DIGITS: "2.0.0"}),
                              ("0.6.0", {DIGITS: "1.0.0"})]:
        record = {"schema": 2, "artifact": "cnn", "kind": "model", "datasets": datasets}
        _hand_tag(clone, f"cnn@v{version}", f"Release cnn {version}\n\nlineage: "
                  f"{json.dumps(record)}")
    down = registry.get_lineage(f"{DIGITS}:1.0.0", "down")
    assert "cnn:0.6.0" in down.nodes
    assert not {"cnn:0.4.0", "cnn:0.5.0"} & set(down.nodes)
