"""Raw inputs are part of lineage: a build depends on them, a release records their hash."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import registry
from registry.build.dvcfiles import dataset_params, set_raw_input
from registry.cli import cli
from registry.cloud.emulator import GCSEmulator
from registry.errors import ArtifactNotFoundError, DvcError, RawInputError, SourceNotFoundError
from registry.repo.records import LINEAGE_SCHEMA, parse_lineage
from registry.repo.session import open_session
from tests.conftest import ReleasedRegistry, cli_raises, commit_all, git

pytestmark = pytest.mark.slow
NAME = "demo/shop"
FOLDER = f"datasets/{NAME}"
DIGITS = "image_classification/digits"


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def shop(make_registry: Callable[..., Path], chdir: Callable[[Path], None]) -> Path:
    """A registry with a new dataset (the scaffold: a few CSV rows), committed."""
    repo = make_registry(datasets=[])
    chdir(repo)
    registry.new_dataset(NAME)
    commit_all(repo, f"Add {NAME}")
    return repo


def _stage_status(repo: Path) -> list[object]:
    """What ``dvc status`` says of the dataset's build stage (empty: up to date)."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        return list(dvc.status(targets=[f"build@{NAME}"]).get(f"build@{NAME}", []))


def test_an_imported_export_is_a_build_dependency_and_recorded_in_the_release(
    shop: Path, tmp_path: Path
) -> None:
    export = tmp_path / "exports" / "2024-06"
    export.mkdir(parents=True)
    shutil.copy(shop / FOLDER / "dummy_data" / "shop.csv", export / "shop.csv")
    assert "raw input of demo/shop: raw" in _run("datasets", "raw", NAME, str(export))
    assert dataset_params(shop, NAME)["raw_path"] == "raw"
    stage = yaml.safe_load((shop / "dvc.yaml").read_text())["stages"]["build"]
    assert stage["foreach"][NAME]["raw"] == "raw" and "datasets/${key}/${item.raw}" in (
        stage["do"]["deps"]
    )
    commit_all(shop, "Import the raw export")
    registry.build_dataset([NAME])
    commit_all(shop, "Build it")
    assert _stage_status(shop) == []

    # Changing a raw file makes the build out of date; putting it back makes it current.
    csv = shop / FOLDER / "raw" / "shop.csv"
    original = csv.read_bytes()
    csv.write_bytes(original + b"99,one more row,positive\n")
    assert "datasets/demo/shop/raw" in json.dumps(_stage_status(shop))
    csv.write_bytes(original)
    assert _stage_status(shop) == []

    registry.release_dataset(NAME)
    session = open_session(".")
    record, problem = parse_lineage(session.repo.tag_message(f"{NAME}@v1.0.0"))
    assert problem is None and record is not None
    assert record["schema"] == LINEAGE_SCHEMA and record["kind"] == "dataset"
    lock = yaml.safe_load((shop / "dvc.lock").read_text())["stages"][f"build@{NAME}"]
    [locked] = [d for d in lock["deps"] if d["path"] == f"{FOLDER}/raw"]
    assert record["raw"] == [{"path": f"{FOLDER}/raw", "md5": locked["md5"],
                              "source": str(export)}]
    assert record["params"]["raw_path"] == "raw"

    graph = registry.get_lineage(f"{NAME}:1.0.0")
    assert [(e.relation, e.target) for e in graph.edges] == [("built_from", f"{FOLDER}/raw")]
    assert graph.nodes[f"{FOLDER}/raw"].hash == locked["md5"] and graph.missing() == []
    text = _run("lineage", f"{NAME}:1.0.0")
    assert f"built_from {FOLDER}/raw (raw) md5 {locked['md5']} imported from {export}" in text


def test_a_folder_in_the_dataset_is_tracked_in_place_and_errors_say_why(
    shop: Path, tmp_path: Path
) -> None:
    exports = shop / FOLDER / "exports"
    exports.mkdir()
    shutil.copy(shop / FOLDER / "dummy_data" / "shop.csv", exports / "shop.csv")
    registry.datasets.add_raw_input(NAME, f"{FOLDER}/exports/")
    assert (shop / FOLDER / "exports.dvc").is_file()
    assert dataset_params(shop, NAME)["raw_path"] == "exports"
    foreach = yaml.safe_load((shop / "dvc.yaml").read_text())["stages"]["build"]["foreach"]
    assert foreach[NAME] == {"module": "shop_dataset_builder.py", "raw": "exports"}
    # The example datasets generate their data: their stage names only their builder.
    assert foreach[DIGITS]["raw"] == foreach[DIGITS]["module"]

    err = cli_raises(SourceNotFoundError, "datasets", "raw", NAME, "nope", cwd=shop)
    assert "cannot track the raw input of 'demo/shop': 'nope' does not exist" in str(err)
    err2 = cli_raises(RawInputError, "datasets", "raw", NAME, "params.yaml", cwd=shop)
    assert "raw input 'params.yaml' of dataset 'demo/shop' is in the repository but not in" in (
        str(err2)
    )
    outside = tmp_path / "outside"
    outside.mkdir()
    err3 = cli_raises(RawInputError, "datasets", "raw", NAME, str(outside), "--to", "../x",
                      cwd=shop)
    assert "'../x' of dataset 'demo/shop' is not inside the dataset folder" in str(err3)
    err4 = cli_raises(RawInputError, "datasets", "raw", NAME, str(outside), "--to", "prepared",
                      cwd=shop)
    assert "is an output of the build, not an input" in str(err4)
    # Git tracks the scaffold's dummy data: DVC refuses, and says what to do.
    err6 = cli_raises(DvcError, "datasets", "raw", NAME, f"{FOLDER}/dummy_data", cwd=shop)
    assert f"'dvc add {FOLDER}/dummy_data' failed" in str(err6) and "git rm" in str(err6)
    err5 = cli_raises(ArtifactNotFoundError, "datasets", "raw", "demo/shoop", str(outside),
                      cwd=shop)
    assert "demo/shop" in str(err5)


def test_generated_data_and_releases_without_a_record(
    released_registry: ReleasedRegistry, chdir: Callable[[Path], None]
) -> None:
    clone = released_registry.clone
    chdir(clone)
    record, _ = parse_lineage(open_session(".").repo.tag_message(f"{DIGITS}@v1.0.0"))
    assert record is not None and record["raw"] == "generated"
    graph = registry.get_lineage(f"{DIGITS}:1.0.0")
    assert graph.edges == [] and graph.missing() == []
    assert graph.nodes[graph.root].details["raw_inputs"].startswith("generated")

    # A release made before datasets recorded lineage: read from dvc.lock, and said so.
    git(clone, "tag", "--annotate", "--message", f"Release {DIGITS} 0.9.0", f"{DIGITS}@v0.9.0")
    old = registry.get_lineage(f"{DIGITS}:0.9.0")
    node = old.nodes[old.root]
    assert node.details["raw_inputs"].startswith("generated")
    assert any(p.endswith("digits_dataset_builder.py") for p in node.details["builder_files"])
    [missing] = old.missing()
    assert "records no lineage (released before datasets recorded it)" in missing


def test_a_dvc_yaml_from_before_raw_inputs_gets_the_dependency(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  build:\n    foreach:\n      a/b:\n        module: b_dataset_builder.py\n"
        "      a/c:  # kept\n        module: c_dataset_builder.py\n"
        "    do:\n      cmd: registry datasets prepare ${key}\n"
        "      deps:\n        - datasets/${key}/${item.module}\n"
    )
    (tmp_path / "params.yaml").write_text("datasets:\n  a/b: {}\n")
    set_raw_input(tmp_path, "a/b", "./raw/")
    text = (tmp_path / "dvc.yaml").read_text()
    assert "# kept" in text
    stage = yaml.safe_load(text)["stages"]["build"]
    assert stage["do"]["deps"] == ["datasets/${key}/${item.module}", "datasets/${key}/${item.raw}"]
    assert stage["foreach"] == {
        "a/b": {"module": "b_dataset_builder.py", "raw": "raw"},
        "a/c": {"module": "c_dataset_builder.py", "raw": "c_dataset_builder.py"},
    }
    assert dataset_params(tmp_path, "a/b") == {"raw_path": "raw"}
    with pytest.raises(RawInputError, match="'/abs' of dataset 'a/b' is not inside the dataset"):
        set_raw_input(tmp_path, "a/b", "/abs")


# -- an export on Cloud Storage (the emulator) ---------------------------------------------------


def _upload(gcs: GCSEmulator, bucket: str, name: str, data: bytes) -> None:
    client = gcs.storage_client()
    client.bucket(bucket).blob(name).upload_from_string(data)


def test_an_export_on_gcs_is_imported_released_and_refreshed(
    shop: Path, gcs: GCSEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"exports-{uuid.uuid4().hex[:12]}"
    gcs.create_bucket(bucket)
    rows = (shop / FOLDER / "dummy_data" / "shop.csv").read_bytes()
    _upload(gcs, bucket, "exports/2024-06/shop.csv", rows)
    url = f"gs://{bucket}/exports/2024-06"
    # Every Google client (gcsfs, so DVC, too) goes to the emulator named here.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)

    assert "raw input of demo/shop: raw" in _run("datasets", "raw", NAME, url)
    assert (shop / FOLDER / "raw" / "shop.csv").read_bytes() == rows
    stage = yaml.safe_load((shop / FOLDER / "raw.dvc").read_text())
    assert stage["deps"][0]["path"] == url and gcs.url not in json.dumps(stage)
    # The emulator takes no credentials: the import says so, and `dvc update` reads it.
    assert stage["deps"][0]["fs_config"] == {"allow_anonymous_login": True}
    commit_all(shop, "Import the raw export from GCS")
    registry.build_dataset([NAME])
    commit_all(shop, "Build it")
    assert _stage_status(shop) == []
    registry.release_dataset(NAME)
    record, _ = parse_lineage(open_session(".").repo.tag_message(f"{NAME}@v1.0.0"))
    lock = yaml.safe_load((shop / "dvc.lock").read_text())["stages"][f"build@{NAME}"]
    [locked] = [d for d in lock["deps"] if d["path"] == f"{FOLDER}/raw"]
    assert record is not None and record["raw"] == [
        {"path": f"{FOLDER}/raw", "md5": locked["md5"], "source": url}
    ]
    assert f"imported from {url}" in _run("lineage", f"{NAME}:1.0.0")

    # A new export in the bucket: `dvc update` fetches it and the build is out of date.
    _upload(gcs, bucket, "exports/2024-06/shop.csv", rows + b"99,one more row,positive\n")
    done = subprocess.run(["dvc", "update", "-q", f"{FOLDER}/raw.dvc"], cwd=shop,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (shop / FOLDER / "raw" / "shop.csv").read_bytes().endswith(b"one more row,positive\n")
    assert f"{FOLDER}/raw" in json.dumps(_stage_status(shop))

    # Importing again replaces the import: here with a newer export folder.
    _upload(gcs, bucket, "exports/2024-07/shop.csv", rows)
    _run("datasets", "raw", NAME, f"gs://{bucket}/exports/2024-07")
    stage = yaml.safe_load((shop / FOLDER / "raw.dvc").read_text())
    assert stage["deps"][0]["path"] == f"gs://{bucket}/exports/2024-07"
    assert (shop / FOLDER / "raw" / "shop.csv").read_bytes() == rows
    assert _stage_status(shop) == []  # the same rows as the release was built from

    # Nothing at the URL: a clear error, and the last import is left as it was.
    err = cli_raises(RawInputError, "datasets", "raw", NAME, f"gs://{bucket}/exports/nope",
                     cwd=shop)
    assert f"raw input 'gs://{bucket}/exports/nope' of dataset 'demo/shop' does not exist " in (
        str(err)
    ) and "check the bucket and the path" in str(err)
    assert yaml.safe_load((shop / FOLDER / "raw.dvc").read_text()) == stage
    assert (shop / FOLDER / "raw" / "shop.csv").read_bytes() == rows
    assert _stage_status(shop) == []
