"""`registry datasets new NAME --query`: a warehouse dataset that extracts, builds and passes its
own test at once, from the local BigQuery emulator (no account), or a clear refusal."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

import registry
from registry.build.dvcfiles import set_warehouse_source
from registry.build.scaffold import (
    QUERY_DEFAULT_PARAMS,
    QUERY_DUMMY_SPLITS,
    QUERY_PARAMS,
    render_dataset_folder,
    template_query_rows,
)
from registry.errors import ArtifactExistsError, ConfigError
from tests.conftest import cli_ok, cli_raises, git, registry_clone
from tests.test_warehouse import _emulator_or_skip

NAME = "products/demo/orders"
FOLDER = f"datasets/{NAME}"
DUMMY = "dummy_data/part-00000-of-00001.parquet"
EXPECTED_FILES = {
    "CITATIONS.bib",
    "README.md",
    "TAGS.txt",
    "checksums.tsv",
    DUMMY,
    "orders_dataset_builder.py",
    "orders_dataset_builder_test.py",
    "query.sql",
    "warehouse_sample.json",
}


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def plain_registry(tmp_path: Path) -> Path:
    """A registry folder without DVC or commits: a build stage with one dataset, a train stage,
    and a params.yaml with no warehouse section."""
    root = tmp_path / "reg"
    (root / "datasets/image_classification/digits").mkdir(parents=True)
    git(root, "init", "-q")
    (root / "datasets/image_classification/digits/digits_dataset_builder.py").write_text("")
    (root / "dvc.yaml").write_text(
        "stages:\n  build:\n    foreach:\n"
        "      image_classification/digits:\n        module: digits_dataset_builder.py\n"
        "    do:\n      cmd: registry datasets prepare ${key}\n"
        "  train:\n    cmd: python train.py\n"
    )
    (root / "params.yaml").write_text("# the knobs\ndatasets:\n  image_classification/digits: {}\n")
    return root


def test_query_scaffold_writes_a_warehouse_folder_and_wires_its_extract(
    plain_registry: Path,
) -> None:
    folder = registry.new_dataset(NAME, registry=str(plain_registry), owner="ops", query=True)
    name = NAME

    assert folder == plain_registry / FOLDER
    assert _files(folder) == EXPECTED_FILES
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging left

    # dvc.yaml: the extract stage, created before build, snapshots it; build reads the snapshot.
    dvc_yaml = yaml.safe_load((plain_registry / "dvc.yaml").read_text())
    assert list(dvc_yaml["stages"]) == ["extract", "build", "train"]
    extract = dvc_yaml["stages"]["extract"]
    assert extract["foreach"] == {name: {"query": "query.sql", "sample": "warehouse_sample.json"}}
    assert extract["do"]["outs"] == ["datasets/${key}/snapshot"]
    assert extract["do"]["cmd"] == "registry datasets extract ${key}"
    build = dvc_yaml["stages"]["build"]["foreach"]
    assert build[name] == {"module": "orders_dataset_builder.py", "raw": "snapshot"}
    # Older items get their module as raw input (set_raw_input): their stage is unchanged.
    assert build["image_classification/digits"]["raw"] == "digits_dataset_builder.py"
    assert "datasets/${key}/${item.raw}" in dvc_yaml["stages"]["build"]["do"]["deps"]

    # params.yaml: the extract stage's section first, then the builder's knobs, then the
    # shard format (a new dataset's default).
    text = (plain_registry / "params.yaml").read_text()
    params = yaml.safe_load(text)
    section = params["datasets"][name]
    assert list(section) == ["warehouse", "raw_path", "file_format"]
    assert section == {
        "warehouse": {"query": "query.sql", "sample": "warehouse_sample.json",
                      "params": QUERY_PARAMS},
        **QUERY_DEFAULT_PARAMS,
        "file_format": "array_record",
    }
    assert "start_date: '2026-01-01'" in text  # text, as DVC's params must hold a date
    assert params["warehouse"] == {"project": None, "location": None}  # the embedded default
    assert text.startswith("# the knobs\n")  # comments kept

    # dummy_data: the query's rows on the sample, as an extract writes them.
    table = pq.read_table(folder / DUMMY)
    assert table.column_names == ["id", "text", "label"]
    sample = (folder / "warehouse_sample.json").read_text()
    by_id = {row["id"]: row for row in template_query_rows(sample)}
    assert sorted(table.to_pylist(), key=lambda r: r["id"]) == [by_id[k] for k in sorted(by_id)]
    assert len(by_id) == sum(QUERY_DUMMY_SPLITS.values()) == 10

    builder = (folder / "orders_dataset_builder.py").read_text()
    assert 'beam.io.ReadFromParquet(f"{folder}/*.parquet", columns=list(COLUMNS))' in builder
    assert '"raw_path": "snapshot"' in builder and "TODO(ops)" in builder
    test = (folder / "orders_dataset_builder_test.py").read_text()
    assert '"train": 8, "test": 2' in test
    readme = (folder / "README.md").read_text()
    assert f"registry datasets extract {name} --dry-run" in readme


def test_the_rendered_query_folder_is_valid_for_any_name_and_description() -> None:
    name = "products/product_b/reviews_from_the_warehouse"
    files = render_dataset_folder(name, description='Quotes """ and @ signs', query=True)

    leaf = name.rsplit("/", 1)[-1]
    for module in (f"{leaf}_dataset_builder.py", f"{leaf}_dataset_builder_test.py"):
        source = files[module]
        compile(source, module, "exec")  # a SyntaxError would fail here
        assert all(len(line) <= 100 for line in source.splitlines()), module
    assert ast.get_docstring(ast.parse(files[f"{leaf}_dataset_builder.py"])).startswith(
        f'{name}: Quotes """ and @ signs'
    )
    # The local emulator takes any at sign in a comment for a parameter: none there.
    for line in files["query.sql"].splitlines():
        assert "@" not in line.partition("--")[2], line
    assert "WHERE review_date >= @start_date" in files["query.sql"]
    assert "${" not in "".join(files.values())


def test_query_on_a_taken_name_is_refused_as_without_it(plain_registry: Path) -> None:
    before = {f: (plain_registry / f).read_text() for f in ("dvc.yaml", "params.yaml")}

    error = cli_raises(
        ArtifactExistsError, "datasets", "new", "image_classification/digits", "--query",
        "--registry", str(plain_registry),
    )

    assert "a dataset of that name exists" in str(error) and "Pick another name" in str(error)
    assert {f: (plain_registry / f).read_text() for f in before} == before
    assert _files(plain_registry / "datasets") == {
        "image_classification/digits/digits_dataset_builder.py"
    }


def test_a_failed_wiring_leaves_nothing_behind(
    plain_registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import registry.build.dvcfiles

    before = {f: (plain_registry / f).read_text() for f in ("dvc.yaml", "params.yaml")}

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(registry.build.dvcfiles, "set_warehouse_source", broken)
    with pytest.raises(OSError, match="disk full"):
        registry.new_dataset(NAME, registry=str(plain_registry), query=True)
    assert not (plain_registry / FOLDER).exists()
    after = yaml.safe_load((plain_registry / "dvc.yaml").read_text())
    assert after == yaml.safe_load(before["dvc.yaml"])
    assert NAME not in (plain_registry / "params.yaml").read_text()


def test_set_warehouse_source_refuses_a_dataset_the_pipeline_does_not_build(
    plain_registry: Path,
) -> None:
    before = {f: (plain_registry / f).read_text() for f in ("dvc.yaml", "params.yaml")}

    with pytest.raises(ConfigError, match=r"is not in the build stage of dvc\.yaml"):
        set_warehouse_source(plain_registry, "nlp/notes", query="query.sql")
    assert {f: (plain_registry / f).read_text() for f in before} == before

    # Without a sample, the item repeats the query (a foreach item needs every key).
    set_warehouse_source(plain_registry, "image_classification/digits", query="q.sql")
    dvc_yaml = yaml.safe_load((plain_registry / "dvc.yaml").read_text())
    item = dvc_yaml["stages"]["extract"]["foreach"]["image_classification/digits"]
    assert item == {"query": "q.sql", "sample": "q.sql"}
    params = yaml.safe_load((plain_registry / "params.yaml").read_text())
    assert params["datasets"]["image_classification/digits"] == {
        "warehouse": {"query": "q.sql", "params": {}}, "raw_path": "snapshot"
    }


@pytest.mark.slow
def test_new_query_dataset_extracts_builds_and_passes_its_own_test(
    tmp_path: Path, chdir: Callable[[Path], None]
) -> None:
    _emulator_or_skip()
    clone = registry_clone(tmp_path)  # no dataset, so no extract stage: the scaffold makes it
    chdir(clone)
    assert "extract" not in yaml.safe_load((clone / "dvc.yaml").read_text())["stages"]

    out = cli_ok("datasets", "new", NAME, "--query", "--description", "Orders, by review.")
    assert f"registry datasets extract {NAME} --dry-run" in out

    # The query as it runs, its parameter filled in; nothing is written.
    plan = cli_ok("datasets", "extract", NAME, "--dry-run")
    assert "WHERE review_date >= DATE '2026-01-01'" in plan
    assert "-- runs in: a local BigQuery emulator holding warehouse_sample.json" in plan
    assert not (clone / FOLDER / "snapshot").exists()

    # DVC runs extract@ (the local emulator, no account), then build@.
    assert f"built: {NAME}" in cli_ok("datasets", "build", NAME)
    lock = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]
    assert {f"extract@{NAME}", f"build@{NAME}"} <= set(lock)
    # The query's output on the sample is exactly the dummy snapshot the scaffold wrote.
    snapshot = sorted((clone / FOLDER / "snapshot").iterdir())
    assert [p.name for p in snapshot] == [Path(DUMMY).name]
    assert snapshot[0].read_bytes() == (clone / FOLDER / DUMMY).read_bytes()
    info = yaml.safe_load((clone / FOLDER / "build_info.json").read_text())
    assert {s: v["num_examples"] for s, v in info["splits"].items()} == QUERY_DUMMY_SPLITS

    # The generated builder test passes as it is, run as a lab member runs it.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(registry.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", FOLDER],
        cwd=clone, env=env, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
