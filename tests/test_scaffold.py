"""`registry datasets new`: the scaffold writes a folder that builds at once, or refuses clearly."""

from __future__ import annotations

import ast
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import registry
from registry.build.scaffold import (
    DEFAULT_PARAMS,
    DUMMY_SPLITS,
    render_dataset_folder,
    write_dataset_folder,
)
from registry.errors import ArtifactExistsError, InvalidNameError, RegistryError
from tests.conftest import cli_raises, git

EXPECTED_FILES = {
    "CITATIONS.bib",
    "README.md",
    "TAGS.txt",
    "checksums.tsv",
    "dummy_data/reviews.csv",
    "reviews_dataset_builder.py",
    "reviews_dataset_builder_test.py",
}


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def plain_registry(tmp_path: Path) -> Path:
    """A registry folder without DVC or commits: dvc.yaml and params.yaml with one dataset."""
    root = tmp_path / "reg"
    root.mkdir()
    git(root, "init", "-q")
    (root / "datasets/image_classification/digits").mkdir(parents=True)
    (root / "datasets/image_classification/digits/digits_dataset_builder.py").write_text("")
    (root / "models/resnet18_product_images").mkdir(parents=True)
    (root / "models/text_gen/ad_writer").mkdir(parents=True)
    (root / "dvc.yaml").write_text(
        "stages:\n  build:\n    foreach:\n"
        "      image_classification/digits:\n        module: digits_dataset_builder.py\n"
        "      products/product_a/clicks_only_in_dvc_yaml:\n        module: x_dataset_builder.py\n"
        "    do:\n      cmd: registry datasets prepare ${key}\n"
    )
    (root / "params.yaml").write_text("datasets:\n  image_classification/digits: {}\n")
    return root


def test_scaffold_writes_a_registered_tfds_folder(make_registry: Callable[..., Path]) -> None:
    root = make_registry(datasets=[])

    folder = registry.new_dataset(
        "products/product_b/reviews",
        registry=str(root),
        description='Reviews of "B", by star.',
        owner="ads team",
    )

    assert folder == root / "datasets/products/product_b/reviews"
    assert _files(folder) == EXPECTED_FILES
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging left
    assert folder.stat().st_mode & 0o755 == 0o755
    builder = (folder / "reviews_dataset_builder.py").read_text()
    tree = ast.parse(builder)
    assert ast.get_docstring(tree).startswith('products/product_b/reviews: Reviews of "B", by')
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    assert cls.name == "Builder"
    assert 'VERSION = tfds.core.Version("1.0.0")' in builder
    assert "TODO(ads team)" in builder
    assert "def _generate_examples(self, files: list[str], split: str):" in builder
    readme = (folder / "README.md").read_text()
    assert readme.startswith('# products/product_b/reviews\n\nReviews of "B", by star.\n')
    for section in ("**Features**", "**Splits**", "**Preprocessing**", "**Params**",
                    "**Owner**: ads team", "**Licence**",
                    'registry.load_dataset("products/product_b/reviews:1.0.0", split="train")'):
        assert section in readme
    assert "@misc{products_product_b_reviews" in (folder / "CITATIONS.bib").read_text()

    dvc_yaml = yaml.safe_load((root / "dvc.yaml").read_text())
    foreach = dvc_yaml["stages"]["build"]["foreach"]
    # Its dummy data is its raw input (raw_path), so the build depends on it.
    assert foreach["products/product_b/reviews"] == {
        "module": "reviews_dataset_builder.py", "raw": "dummy_data"
    }
    params = yaml.safe_load((root / "params.yaml").read_text())
    # A new dataset is built as ArrayRecord: tf.data reads it, and it gives random access.
    assert params["datasets"]["products/product_b/reviews"] == {
        **DEFAULT_PARAMS, "file_format": "array_record"
    }


@pytest.mark.slow
def test_scaffold_builds_from_its_dummy_data_and_its_test_passes(
    plain_registry: Path, tmp_path: Path
) -> None:
    from registry.build.prepare import prepare_dataset

    # A name no other test builds: builder modules are cached per process by dataset name.
    name = "products/scaffold_build/reviews_smoke"
    folder = write_dataset_folder(plain_registry, name)

    prepared = prepare_dataset(
        plain_registry,
        name,
        beam={"runner": "DirectRunner", "direct_running_mode": "in_memory",
              "direct_num_workers": 1},
    )
    info = yaml.safe_load((folder / "build_info.json").read_text())
    assert info["version"] == "1.0.0"
    assert {s: v["num_examples"] for s, v in info["splits"].items()} == DUMMY_SPLITS
    assert (prepared / "dataset_info.json").is_file()

    # The generated declarative test passes as it is (it builds once more, with check_builder).
    test_file = folder / "reviews_smoke_dataset_builder_test.py"
    spec = importlib.util.spec_from_file_location("reviews_smoke_dataset_builder_test", test_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.test_builds_from_dummy_data(tmp_path / "generated-test")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../x", "relative path"),
        ("A/B", "lowercase"),
        ("a b", "cannot contain ' '"),
        ("", "empty"),
        ("x/1abc", "must be a Python identifier"),
        ("x/ad-clicks", "e.g. 'ad_clicks'"),
    ],
)
def test_invalid_names_are_refused(plain_registry: Path, name: str, message: str) -> None:
    with pytest.raises(InvalidNameError, match=message) as caught:
        registry.new_dataset(name, registry=str(plain_registry))
    assert isinstance(caught.value, ValueError) and caught.value.name == name


@pytest.mark.parametrize(
    ("name", "conflict", "message"),
    [
        ("image_classification/digits", "image_classification/digits",
         "a dataset of that name exists"),
        ("image_classification/digits/extra", "image_classification/digits",
         "would be inside dataset 'image_classification/digits'"),
        ("image_classification", "image_classification/digits",
         "is a group holding dataset 'image_classification/digits'"),
        ("products/product_a/clicks_only_in_dvc_yaml", "products/product_a/clicks_only_in_dvc_yaml",
         "a dataset of that name exists"),
        ("resnet18_product_images", "resnet18_product_images", "model"),
        ("text_gen/ad_writer", "text_gen/ad_writer", "a dataset and a model never share a name"),
    ],
)
def test_taken_names_are_refused(
    plain_registry: Path, name: str, conflict: str, message: str
) -> None:
    before = {f: (plain_registry / f).read_text() for f in ("dvc.yaml", "params.yaml")}
    datasets_before = _files(plain_registry / "datasets")

    error = cli_raises(
        ArtifactExistsError, "datasets", "new", name, "--registry", str(plain_registry)
    )

    assert re.search(message, str(error))
    assert isinstance(error, RegistryError) and isinstance(error, FileExistsError)
    assert (error.name, error.conflict) == (name, conflict)
    assert "Pick another name" in str(error)
    assert {f: (plain_registry / f).read_text() for f in before} == before
    assert _files(plain_registry / "datasets") == datasets_before


def test_an_existing_folder_without_a_builder_is_not_overwritten(plain_registry: Path) -> None:
    (plain_registry / "datasets/nlp/notes").mkdir(parents=True)
    (plain_registry / "datasets/nlp/notes/raw.txt").write_text("keep me")

    with pytest.raises(ArtifactExistsError, match="holds no builder"):
        registry.new_dataset("nlp/notes", registry=str(plain_registry))
    assert (plain_registry / "datasets/nlp/notes/raw.txt").read_text() == "keep me"


def test_a_failed_registration_leaves_nothing_behind(
    plain_registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import registry.build.dvcfiles

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(registry.build.dvcfiles, "add_dataset", broken)
    with pytest.raises(OSError, match="disk full"):
        registry.new_dataset("nlp/notes", registry=str(plain_registry))
    assert not (plain_registry / "datasets/nlp/notes").exists()
    assert "nlp/notes" not in (plain_registry / "dvc.yaml").read_text()


def test_rendered_builder_is_valid_python_for_any_description() -> None:
    description = 'Quotes """, a backslash \\ and\na newline; ' + "long words " * 20
    files = render_dataset_folder("x/y", description=description)

    source = files["y_dataset_builder.py"]
    module = compile(source, "y_dataset_builder.py", "exec")  # a SyntaxError would fail here
    assert module is not None
    assert all(len(line) <= 100 for line in source.splitlines())
    assert ast.get_docstring(ast.parse(source)).startswith('x/y: Quotes """, a backslash \\ and a')
    assert "TODO: one line" in render_dataset_folder("x/y")["README.md"]
    assert "${" not in "".join(render_dataset_folder("x/y").values())


def test_names_that_only_look_alike_are_free(plain_registry: Path) -> None:
    # Conflicts are by path segment, not by string prefix; a last part may repeat in a group.
    for name in ("image_classification/digits2", "image_classification/dig", "products/digits"):
        registry.new_dataset(name, registry=str(plain_registry))
    names = yaml.safe_load((plain_registry / "params.yaml").read_text())["datasets"]
    assert {"image_classification/digits2", "image_classification/dig", "products/digits"} <= set(
        names
    )


def test_models_and_datasets_share_one_naming_rule(plain_registry: Path) -> None:
    # One rule (Session.check_new_name) for both kinds: a name either kind has is taken for both.
    with pytest.raises(ArtifactExistsError, match=r"a dataset has that name .*never share a name"):
        registry.new_model("image_classification/digits", registry=str(plain_registry))
    declared_only = "products/product_a/clicks_only_in_dvc_yaml"  # in dvc.yaml, with no folder
    with pytest.raises(ArtifactExistsError, match="a dataset has that name"):
        registry.new_model(declared_only, registry=str(plain_registry))
    # A model folder without a card yet is where the new model's card goes.
    card = registry.new_model("resnet18_product_images", registry=str(plain_registry))
    assert card == plain_registry / "models/resnet18_product_images/README.md"
    with pytest.raises(ArtifactExistsError, match="a model of that name exists"):
        registry.new_model("resnet18_product_images", registry=str(plain_registry))
