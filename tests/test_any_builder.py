"""Any TFDS builder, as it is: ``registry datasets add NAME --from PATH_OR_MODULE:CLASS``, then
built by DVC with Beam, released (with ``--notes`` when the builder has none) and loaded, on a
real registry clone with a bare origin and a local DVC remote.

``DummyMnist`` from the tensorflow-datasets package comes in unmodified, with an inherited
``VERSION`` and no ``RELEASE_NOTES``; a builder file whose class extends a base that holds
``VERSION`` and ``RELEASE_NOTES`` reads its raw files from TFDS's ``manual_dir``. Every refusal
on the way is one line with its exit code.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import registry
from registry.build.adopt import parse_source
from registry.datasets import builder_literals, builder_metadata
from registry.errors import (
    BuildError,
    BuilderSourceError,
    MissingReleaseNotesError,
    SourceNotFoundError,
    VersionUnspecifiedError,
)
from registry.grammar import Version
from tests.conftest import cli_ok, cli_raises, commit_all, git, registry_clone

MNIST = "image_classification/dummy_mnist"
DUMMY_MNIST = "tensorflow_datasets.testing.test_utils:DummyMnist"
POEMS = "text_generation/poems"

# A builder as a lab may already have one: its class is not named Builder, and VERSION and
# RELEASE_NOTES are inherited from a base; its raw files are downloaded by hand (manual_dir).
POEMS_BUILDER = '''\
"""Poems, one a line, downloaded by hand."""

import tensorflow_datasets as tfds


class _Versioned(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.2.0")
    RELEASE_NOTES = {"1.2.0": "Poems read from the manual folder."}
    SUPPORTED_VERSIONS = [tfds.core.Version("1.1.0")]


class Poems(_Versioned):
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Put poems.txt, one poem a line, in the manual folder."

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self, features=tfds.features.FeaturesDict({"text": tfds.features.Text()})
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(dl_manager.manual_dir / "poems.txt")}

    def _generate_examples(self, path):
        for i, line in enumerate(path.read_text().splitlines()):
            yield i, {"text": line}
'''


@pytest.fixture
def clone(tmp_path: Path, chdir: Callable[[Path], None]) -> Path:
    """A registry clone with no dataset in its pipeline, a bare origin and a local remote."""
    clone = registry_clone(tmp_path)
    chdir(clone)
    return clone


def _params(clone: Path, name: str) -> object:
    return yaml.safe_load((clone / "params.yaml").read_text())["datasets"][name]


@pytest.mark.slow
def test_dummy_mnist_is_added_built_released_with_notes_and_loaded(clone: Path) -> None:
    assert "added" in cli_ok("datasets", "add", MNIST, "--from", DUMMY_MNIST)
    folder = clone / "datasets" / MNIST
    builder = (folder / "dummy_mnist_dataset_builder.py").read_text()
    assert "from tensorflow_datasets.testing.test_utils import DummyMnist" in builder
    assert "class Builder(DummyMnist):" in builder
    assert builder_metadata(builder) == (None, {})  # VERSION inherited, as the package has it
    assert (folder / "README.md").read_text().startswith(f"# {MNIST}\n")
    assert _params(clone, MNIST) == {"file_format": "array_record"}  # new datasets' default
    dvc_yaml = yaml.safe_load((clone / "dvc.yaml").read_text())
    assert MNIST in dvc_yaml["stages"]["build"]["foreach"]

    assert f"built: {MNIST}" in cli_ok("datasets", "build", MNIST)
    commit_all(clone, "Add DummyMnist as it is")
    git(clone, "push", "-q", "origin", "main")

    # DummyMnist has no RELEASE_NOTES: the release says how to give them.
    error = cli_raises(MissingReleaseNotesError, "datasets", "release", MNIST)
    assert "has no entry for 3.0.1" in str(error)
    assert f"'registry datasets release {MNIST} --notes TEXT'" in str(error)
    assert not git(clone, "tag", "-l")

    notes = "DummyMnist from tensorflow-datasets, as it is.\n\nTwenty examples a split."
    out = cli_ok("datasets", "release", MNIST, "--notes", notes)
    assert f"released {MNIST} 3.0.1" in out
    message = git(clone, "tag", "-l", "--format=%(contents)", f"{MNIST}@v3.0.1")
    assert message.startswith(f"Release {MNIST} 3.0.1\n\n{notes}\n")

    info = registry.dataset_info(MNIST)
    assert info.version == "3.0.1" and info.release_notes == {"3.0.1": notes}

    train = list(registry.load_dataset(f"{MNIST}:3.0.1", split="train", output="numpy"))
    assert len(train) == 20
    assert sorted(int(e["label"]) for e in train) == sorted(list(range(10)) * 2)
    assert train[0]["image"].shape == (28, 28, 1)


@pytest.mark.slow
def test_a_builder_file_with_inherited_version_reads_manual_dir_and_releases(
    clone: Path, tmp_path: Path
) -> None:
    source = tmp_path / "lab" / "poems.py"
    source.parent.mkdir()
    source.write_text(POEMS_BUILDER)
    cli_ok("datasets", "add", POEMS, "--from", f"{source}:Poems")
    builder = clone / "datasets" / POEMS / "poems_dataset_builder.py"
    # Copied byte for byte; the registry's name for the class is one line appended.
    alias = "\n\nBuilder = Poems  # the name the registry loads\n"
    assert builder.read_text() == POEMS_BUILDER + alias
    assert builder_metadata(builder.read_text()) == (None, {})  # inherited: not in the source

    # The manual folder (raw/ in the dataset folder) is empty: the builder's instructions.
    error = cli_raises(BuildError, "datasets", "prepare", POEMS)
    assert "needs files downloaded by hand (TFDS's manual_dir)" in str(error)
    assert "'Put poems.txt, one poem a line, in the manual folder.'" in str(error)
    assert f"'registry datasets raw {POEMS} datasets/{POEMS}/raw'" in str(error)

    raw = clone / "datasets" / POEMS / "raw"
    raw.mkdir()
    (raw / "poems.txt").write_text("The sea is calm tonight.\nSo much depends\nupon a red wheel\n")
    cli_ok("datasets", "raw", POEMS, f"datasets/{POEMS}/raw")
    # The folder, not a knob of the builder (nor is the shard format).
    assert _params(clone, POEMS) == {"raw_path": "raw", "file_format": "array_record"}
    assert f"built: {POEMS}" in cli_ok("datasets", "build", POEMS)
    commit_all(clone, "Add poems")
    git(clone, "push", "-q", "origin", "main")

    assert f"released {POEMS} 1.2.0" in cli_ok("datasets", "release", POEMS)
    message = git(clone, "tag", "-l", "--format=%(contents)", f"{POEMS}@v1.2.0")
    assert message.startswith(f"Release {POEMS} 1.2.0\n\nPoems read from the manual folder.\n")
    texts = [e["text"] for e in registry.load_dataset(POEMS, split="train", output="numpy")]
    assert sorted(t.decode() for t in texts) == [
        "So much depends", "The sea is calm tonight.", "upon a red wheel",
    ]
    # A new dataset is built as ArrayRecord: it reads by index too.
    source = registry.load_dataset(POEMS, split="train", output="data_source")
    assert sorted(source[i]["text"].decode() for i in range(len(source))) == sorted(
        t.decode() for t in texts
    )
    # SUPPORTED_VERSIONS, inherited, was recorded by the build: info shows it with no import.
    info = registry.dataset_info(POEMS)
    assert (info.file_format, info.supported_versions) == ("array_record", ["1.1.0"])
    out = cli_ok("datasets", "info", POEMS)
    assert "the builder can also build: 1.1.0 (SUPPORTED_VERSIONS)" in out
    assert "shards: array_record (random access: output='data_source')" in out


def test_a_builder_without_version_anywhere_is_refused_at_release(
    clone: Path, tmp_path: Path
) -> None:
    source = tmp_path / "nameless.py"
    source.write_text(textwrap.dedent('''\
        import tensorflow_datasets as tfds


        class Nameless(tfds.core.GeneratorBasedBuilder):
            """No VERSION, neither its own nor inherited."""
        '''))
    cli_ok("datasets", "add", "text_generation/nameless", "--from", str(source))
    commit_all(clone, "Add a builder without a version")
    error = cli_raises(VersionUnspecifiedError, "datasets", "release", "text_generation/nameless")
    assert "has no VERSION, neither its own nor inherited" in str(error)
    assert "set VERSION = tfds.core.Version('X.Y.Z')" in str(error)


def test_bad_sources_are_refused_and_leave_nothing(clone: Path, tmp_path: Path) -> None:
    error = cli_raises(BuilderSourceError, "datasets", "add", "text_generation/x", "--from", "a b")
    assert str(error).startswith("cannot add a builder from 'a b': it is neither an existing file")
    refused = [
        (BuilderSourceError, "not a spec!", "neither an existing file or folder nor"),
        (SourceNotFoundError, "lab/missing_builder.py", "'lab/missing_builder.py' does not exist"),
        (SourceNotFoundError, "lab/missing.py:Data", "'lab/missing.py' does not exist"),
        (BuilderSourceError, "no_such_package.datasets:Data",
         "importing no_such_package.datasets failed (ModuleNotFoundError"),
        (BuilderSourceError, "tensorflow_datasets.testing.test_utils:NoSuchBuilder",
         "tensorflow_datasets.testing.test_utils has no class 'NoSuchBuilder'; its builder "
         "classes: "),
        (BuilderSourceError, "pathlib:Path", "Path is not a TFDS dataset builder"),
    ]
    plain = tmp_path / "plain.py"
    plain.write_text("class Helper:\n    pass\n")
    refused.append((BuilderSourceError, str(plain), "defines no TFDS builder class"))
    two = tmp_path / "two.py"
    two.write_text(POEMS_BUILDER + "\n\nclass Other(tfds.core.GeneratorBasedBuilder):\n    pass\n")
    refused.append((BuilderSourceError, str(two), "holds several builder classes (Poems, Other)"))
    refused.append((BuilderSourceError, f"{two}:Missing", "defines no class 'Missing'"))
    for error_class, spec, expected in refused:
        error = cli_raises(error_class, "datasets", "add", "text_generation/x", "--from", spec)
        assert expected in str(error), str(error)
    assert not (clone / "datasets" / "text_generation").exists()
    assert git(clone, "status", "--porcelain") == ""


def test_source_grammar_and_literals() -> None:
    assert parse_source("tensorflow_datasets.testing.test_utils:DummyMnist").kind == "module"
    assert parse_source(".").kind == "folder"
    source = 'class Data:\n    VERSION = tfds.core.Version("2.0.0")\n' \
             '    SUPPORTED_VERSIONS = ["1.0.0"]\nBuilder = Data\n'
    assert builder_literals(source) == {
        "VERSION": Version(2, 0, 0), "SUPPORTED_VERSIONS": ["1.0.0"],
    }
    computed = "class Builder:\n    VERSION = tfds.core.Version(_VERSION)\n"
    assert builder_literals(computed) == {}


def test_a_tfds_folder_is_copied_and_a_no_params_builder_takes_raw_path_as_its_folder(
    clone: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "lab" / "poems"
    folder.mkdir(parents=True)
    (folder / "poems_dataset_builder.py").write_text(POEMS_BUILDER)
    (folder / "README.md").write_text("# Poems\n\nOne poem a line.\n")
    (folder / "checksums.tsv").write_text("")
    cli_ok("datasets", "add", "text_generation/verses", "--from", str(folder))
    added = clone / "datasets" / "text_generation" / "verses"
    assert sorted(p.name for p in added.iterdir()) == [
        "CITATIONS.bib", "README.md", "checksums.tsv", "verses_dataset_builder.py",
    ]
    assert (added / "README.md").read_text() == "# Poems\n\nOne poem a line.\n"  # its own card
    assert (added / "verses_dataset_builder.py").read_text().endswith("\nBuilder = Poems  # the "
                                                                       "name the registry loads\n")

    # The scaffold's raw_path names the raw data folder of a builder without params, not a knob;
    # any other knob is refused.
    from registry.build.builders import make_builder, manual_dir

    params = {"raw_path": "dummy_data"}
    assert make_builder(clone, "text_generation/verses", params, data_dir=str(tmp_path / "d"))
    assert manual_dir(clone, "text_generation/verses", params) == added / "dummy_data"
    knobs = yaml.safe_load((clone / "params.yaml").read_text())
    knobs["datasets"]["text_generation/verses"]["seed"] = 0
    (clone / "params.yaml").write_text(yaml.safe_dump(knobs, sort_keys=False))
    error = cli_raises(BuildError, "datasets", "prepare", "text_generation/verses")
    assert "takes no params, but params.yaml sets datasets.text_generation/verses: {'seed': 0}" \
        in str(error)
