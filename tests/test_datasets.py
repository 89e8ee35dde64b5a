"""Loading released datasets end to end: a real Beam build, DVC remote, tags and cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import registry
from registry.errors import RemoteError, VersionNotFoundError
from tests.conftest import ReleasedRegistry, git

pytestmark = pytest.mark.slow
NAME = "image_classification/digits"


def test_release_made_an_annotated_tag_after_pushing_bytes(
    released_registry: ReleasedRegistry,
) -> None:
    tags = git(
        released_registry.origin, "for-each-ref", "--format=%(objecttype) %(refname:strip=2)"
    )
    assert f"tag {NAME}@v1.0.0" in tags.splitlines()
    import yaml

    lock = yaml.safe_load((released_registry.clone / "dvc.lock").read_text())
    [out] = [o for o in lock["stages"][f"build@{NAME}"]["outs"] if o["path"].endswith("prepared")]
    dir_hash = out["md5"].removesuffix(".dir")
    objects = released_registry.storage / "files" / "md5"
    assert (objects / dir_hash[:2] / f"{dir_hash[2:]}.dir").exists()


def test_load_inside_the_clone(released_registry: ReleasedRegistry, chdir) -> None:
    chdir(released_registry.clone / "datasets")
    train = registry.load_dataset(f"{NAME}:1.0.0", split="train")
    assert sum(1 for _ in train) == 1455
    ten_percent = registry.load_dataset(NAME, split="train[:10%]")
    assert sum(1 for _ in ten_percent) == 146
    image, label = next(iter(registry.load_dataset(NAME, split="test", as_supervised=True)))
    assert image.shape == (8, 8, 1) and 0 <= int(label) <= 9


def test_numpy_and_pandas_outputs(released_registry: ReleasedRegistry, chdir) -> None:
    chdir(released_registry.clone)
    examples = list(registry.load_dataset(f"{NAME}:1.*", split="test[:5]", output="numpy"))
    assert len(examples) == 5 and examples[0]["image"].dtype.name == "uint8"
    frame = registry.load_dataset(NAME, split="test", output="pandas")
    assert len(frame) == 342 and set(frame.columns) == {"image", "label"}
    splits = registry.load_dataset(NAME)
    assert set(splits) == {"train", "test"}


def test_load_from_another_project_by_git_url(
    released_registry: ReleasedRegistry, tmp_path: Path, chdir, monkeypatch
) -> None:
    elsewhere = tmp_path / "another-project"
    elsewhere.mkdir()
    chdir(elsewhere)
    monkeypatch.setenv("REGISTRY_URL", f"file://{released_registry.origin}")
    first = registry.pull_dataset(NAME)
    assert first.fetched_files == first.files > 0
    again = registry.pull_dataset(f"{NAME}:1.0.0")
    assert again.fetched_files == 0 and again.path == first.path
    assert sum(1 for _ in registry.load_dataset(NAME, split="test")) == 342
    assert not (elsewhere / ".dvc").exists() and not list(elsewhere.iterdir())


def test_cli_pull_then_already_cached(released_registry: ReleasedRegistry, chdir) -> None:
    chdir(released_registry.clone)
    run = [sys.executable, "-m", "registry", "datasets", "pull", NAME]
    first = subprocess.run(run, capture_output=True, text=True, check=True)
    assert "fetched" in first.stderr
    path = Path(first.stdout.strip())
    assert (path / "dataset_info.json").is_file()
    second = subprocess.run([*run, "--json"], capture_output=True, text=True, check=True)
    assert json.loads(second.stdout)["fetched_files"] == 0


def test_list_and_info_read_git_only(released_registry: ReleasedRegistry, chdir, capsys) -> None:
    chdir(released_registry.clone)
    [summary] = registry.list_datasets()
    assert (summary.name, summary.latest, summary.versions) == (NAME, "1.0.0", ["1.0.0"])
    assert summary.built == {"version": "1.0.0", "examples": 1455 + 342}
    info = registry.dataset_info(f"{NAME}:1.0.0")
    assert info.build["splits"]["train"]["num_examples"] == 1455
    assert info.build["features"]["label"]["num_classes"] == 10
    assert info.release_notes["1.0.0"].startswith("Initial release")
    assert info.card.startswith("# image_classification/digits")
    assert info.tag == f"{NAME}@v1.0.0"


def test_unknown_version_lists_existing(released_registry: ReleasedRegistry, chdir) -> None:
    chdir(released_registry.clone)
    with pytest.raises(VersionNotFoundError, match=r"released: 1\.0\.0"):
        registry.load_dataset(f"{NAME}:2.0.0")


def test_unreachable_remote_is_a_clear_error(released_registry: ReleasedRegistry, chdir) -> None:
    chdir(released_registry.clone)
    shutil.rmtree(released_registry.storage)
    with pytest.raises(RemoteError, match="dvc"):
        registry.load_dataset(NAME, split="train")


def test_gto_and_dvc_read_the_registry(released_registry: ReleasedRegistry, tmp_path: Path) -> None:
    shown = subprocess.run(
        ["gto", "show", "--json"], cwd=released_registry.clone, capture_output=True, text=True,
        check=True,
    )
    assert NAME in shown.stdout and "v1.0.0" in shown.stdout
    target = tmp_path / "got"
    subprocess.run(
        ["dvc", "get", str(released_registry.origin), f"datasets/{NAME}/prepared",
         "--rev", f"{NAME}@v1.0.0", "-o", str(target)],
        cwd=tmp_path, check=True, capture_output=True,
    )
    assert (target / "dataset_info.json").is_file()


def test_missing_remote_plugin_names_the_pip_install(
    released_registry: ReleasedRegistry, chdir
) -> None:
    clone = released_registry.clone
    chdir(clone)
    # An S3 remote needs dvc-s3, which the registry does not install.
    subprocess.run(
        ["dvc", "remote", "modify", "--local", "storage", "url", "s3://lab-bucket/registry"],
        cwd=clone, check=True,
    )
    done = subprocess.run(
        [sys.executable, "-m", "registry", "datasets", "pull", NAME],
        cwd=clone, capture_output=True, text=True,
    )
    assert done.returncode == 10
    assert "pip install 'dvc[s3]'" in done.stderr and "Traceback" not in done.stderr


def test_eight_processes_pull_the_same_cold_version_once(
    released_registry: ReleasedRegistry, tmp_path: Path
) -> None:
    # Another project, the registry by Git URL, a cold cache: the mirror and the bytes are made
    # once, whoever comes first, and every process gets the dataset.
    code = (
        "import json, registry\n"
        f"r = registry.pull_dataset({NAME + ':1.0.0'!r})\n"
        "print(json.dumps({'path': str(r.path), 'files': r.files, 'fetched': r.fetched_files}))\n"
    )
    elsewhere = tmp_path / "another-project"
    elsewhere.mkdir()
    env = {**os.environ, "REGISTRY_URL": f"file://{released_registry.origin}"}
    workers = [
        subprocess.Popen([sys.executable, "-c", code], cwd=elsewhere, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert len({r["path"] for r in results}) == 1
    assert sum(r["fetched"] for r in results) == results[0]["files"]


def test_tfds_build_works_on_a_dataset_folder_unchanged(tmp_path: Path) -> None:
    folder = Path(__file__).resolve().parent.parent / "datasets" / NAME
    done = subprocess.run(
        [str(Path(sys.executable).parent / "tfds"), "build", "--data_dir", str(tmp_path),
         "--beam_pipeline_options=runner=apache_beam.runners.portability.fn_api_runner.FnApiRunner"],
        cwd=folder, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads((tmp_path / "digits" / "1.0.0" / "dataset_info.json").read_text())
    assert sum(int(n) for s in info["splits"] for n in s["shardLengths"]) == 1455 + 342


def test_workspace_source_reads_this_clones_build(
    released_registry: ReleasedRegistry, chdir
) -> None:
    from registry.datasets import locate_dataset
    from registry.errors import NotBuiltError

    chdir(released_registry.clone)
    workspace = locate_dataset(NAME, source="workspace")
    released = locate_dataset(f"{NAME}:1.0.0")
    assert (workspace.version, workspace.source, workspace.tag) == ("1.0.0", "workspace", None)
    assert workspace.path == released_registry.clone / "datasets" / NAME / "prepared"
    assert (released.source, released.tag) == ("release", f"{NAME}@v1.0.0")
    assert released.path != workspace.path
    assert workspace.md5 == released.md5 and workspace.md5.endswith(".dir")  # same build bytes
    assert workspace.reference == f"{NAME}:1.0.0"
    assert sum(1 for _ in registry.load_dataset(NAME, split="test", source="workspace")) == 342
    with pytest.raises(VersionNotFoundError, match="workspace"):
        locate_dataset(f"{NAME}:2.0.0", source="workspace")
    shutil.rmtree(workspace.path)
    with pytest.raises(NotBuiltError, match="registry datasets build"):
        locate_dataset(NAME, source="workspace")
