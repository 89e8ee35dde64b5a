"""Every error the registry raises on purpose: where the classes live, and one CLI test each.

The two meta-tests keep the rules of :mod:`registry.errors`: no module defines an error class
anywhere else, and every class there is raised from the CLI by some test (a ``cli_raises(Class,``
call in ``tests/``), which checks its exact class and its message. The tests after them are those
CLI tests for the classes no other test file raises: each runs ``registry ...`` in-process on a
real registry, in the state a user would meet the error in.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import inspect
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

import registry
import registry.errors as errors_module
from registry.errors import (
    ArtifactExistsError,
    ArtifactNotFoundError,
    BuildError,
    CardError,
    ConfigError,
    CorruptArtifactError,
    CredentialsError,
    DvcError,
    GitError,
    InvalidNameError,
    InvalidReferenceError,
    InvalidVersionError,
    MissingDependencyError,
    NotARegistryError,
    NotBuiltError,
    RegistryError,
    RelativeRemoteError,
    RemoteError,
    SourceNotFoundError,
    VersionNotFoundError,
)
from tests.conftest import PROJECT_ROOT, ReleasedArtifact, cli_raises, commit_all, git

REGISTRY = PROJECT_ROOT / "registry"
TESTS = PROJECT_ROOT / "tests"
DIGITS = "image_classification/digits"

# Classes no test raises from the CLI, each with the reason. Keep it to abstract bases.
NOT_RAISED_FROM_CLI = {
    # The base class: every error is one of its subclasses, never itself.
    "RegistryError": "abstract base",
    # The base of the release refusals: each refusal raises its own subclass (version exists,
    # not above the latest, ...), which tests/test_release.py raises from the CLI.
    "ReleaseError": "abstract base of the release refusals",
    # The base of the signature refusals: tests/test_trust.py raises each subclass.
    "UntrustedVersionError": "abstract base of the signature refusals",
}


# -- the rules of registry/errors.py -----------------------------------------------------------


def _error_classes_defined_outside_errors_py() -> list[str]:
    """``path:line Class`` for each exception class (not a warning) that a module of
    ``registry/`` other than errors.py defines, at any depth; found from the source alone."""
    defined: dict[str, tuple[str, int, list[str]]] = {}
    for path in sorted(REGISTRY.rglob("*.py")):
        rel = path.relative_to(PROJECT_ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases]
                defined[f"{rel}:{node.lineno} {node.name}"] = (node.name, node.lineno, bases)
    by_name = {name: bases for name, _, bases in defined.values()}

    def kind_of(base: str, seen: frozenset[str] = frozenset()) -> str | None:
        """``error``, ``warning`` or None (not an exception), following bases by name."""
        builtin = getattr(builtins, base, None)
        if isinstance(builtin, type) and issubclass(builtin, BaseException):
            return "warning" if issubclass(builtin, Warning) else "error"
        if base in by_name and base not in seen:
            kinds = {kind_of(b, seen | {base}) for b in by_name[base]}
            return "warning" if "warning" in kinds else "error" if "error" in kinds else None
        return "error" if base.endswith(("Error", "Exception")) else None

    return [
        where
        for where, (name, _, _) in defined.items()
        if not where.startswith("registry/errors.py:") and kind_of(name) == "error"
    ]


def test_every_error_class_is_defined_in_errors_py() -> None:
    misplaced = _error_classes_defined_outside_errors_py()
    assert misplaced == [], (
        f"error classes defined outside registry/errors.py: {misplaced}; move them there "
        "(a module may re-export one under its old name)"
    )


def _error_classes() -> list[type[RegistryError]]:
    """Every subclass of RegistryError that registry.errors defines (by introspection)."""
    return [
        cls
        for _, cls in inspect.getmembers(errors_module, inspect.isclass)
        if issubclass(cls, RegistryError) and cls.__module__ == errors_module.__name__
    ]


def _wrappers_of_cli_raises(tree: ast.Module) -> set[str]:
    """Functions of a test module that hand their first parameter on to ``cli_raises`` (a
    module's own ``_refused(error, ...)`` helper, say): a call of one counts as a call of it."""
    wrappers = set()
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef) or not func.args.args:
            continue
        first = func.args.args[0].arg
        if any(_first_argument(call, {"cli_raises"}) == first for call in ast.walk(func)):
            wrappers.add(func.name)
    return wrappers


def _first_argument(node: ast.AST, callees: set[str]) -> str | None:
    """The name passed first to a call of one of ``callees`` (``None`` for anything else)."""
    if (
        isinstance(node, ast.Call)
        and ast.unparse(node.func).rsplit(".", 1)[-1] in callees
        and node.args
    ):
        return ast.unparse(node.args[0]).rsplit(".", 1)[-1]
    return None


def _classes_raised_from_the_cli() -> set[str]:
    """Names of the classes some test passes to ``cli_raises(Class, ...)``, directly or through
    a wrapper (calls in the code, not in docstrings or comments)."""
    found: set[str] = set()
    for path in TESTS.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        callees = {"cli_raises", *_wrappers_of_cli_raises(tree)}
        for node in ast.walk(tree):
            if (name := _first_argument(node, callees)) is not None:
                found.add(name)
    return found


def test_every_error_class_is_raised_from_the_cli_by_a_test() -> None:
    classes = {cls.__name__ for cls in _error_classes()}
    assert {"RegistryError", "NotBuiltError", "CardError"} <= classes  # the scan finds them
    assert set(NOT_RAISED_FROM_CLI) <= classes, "the allow-list names a class that is gone"
    untested = sorted(classes - _classes_raised_from_the_cli() - set(NOT_RAISED_FROM_CLI))
    assert untested == [], (
        f"no test raises {untested} from the CLI: add a test that calls "
        "cli_raises(<Class>, 'datasets', 'info', ..., cwd=repo) (tests/conftest.py) and checks "
        "the message"
    )
    listed = sorted(classes & _classes_raised_from_the_cli() & set(NOT_RAISED_FROM_CLI))
    assert listed == [], f"{listed} are raised from the CLI now: take them off the allow-list"


def test_every_error_class_has_a_builtin_base_and_an_exit_code_of_its_kind() -> None:
    for cls in _error_classes():
        if cls is RegistryError:
            continue
        builtin_bases = [b for b in cls.__mro__ if b.__module__ == "builtins"]
        assert builtin_bases[0] is not Exception, f"{cls.__name__} resembles no built-in error"
        assert cls.exit_code >= 2, f"{cls.__name__}: exit code {cls.exit_code} (1: unexpected)"


def test_readme_and_help_list_every_exit_code() -> None:
    from registry.cli import _EPILOG

    code = re.compile(r"\b(\d+) [A-Za-z]")  # "2 bad input, 3 not found, ..."
    readme = (PROJECT_ROOT / "README.md").read_text().split("Errors print one line", 1)[1]
    in_readme = set(code.findall(readme.split(")", 1)[0]))
    in_help = set(code.findall(_EPILOG.split("Exit codes:", 1)[1]))
    for exit_code in sorted({cls.exit_code for cls in _error_classes()} - {1}):
        assert str(exit_code) in in_readme, f"README.md's list of exit codes lacks {exit_code}"
        assert str(exit_code) in in_help, f"'registry --help' lacks exit code {exit_code}"


# -- bad input (exit 2) ------------------------------------------------------------------------


@pytest.fixture
def empty_registry(make_registry: Callable[..., Path]) -> Path:
    """A registry with no dataset and no model."""
    return make_registry(datasets=[])


def test_bad_name(empty_registry: Path) -> None:
    err = cli_raises(InvalidNameError, "datasets", "info", "Bad Name", cwd=empty_registry)
    assert "invalid name 'Bad Name'" in str(err) and "lowercase" in str(err)
    assert err.exit_code == 2


def test_bad_version(empty_registry: Path) -> None:
    err = cli_raises(InvalidVersionError, "models", "info", "m:latest", cwd=empty_registry)
    assert "invalid version 'latest'" in str(err) and "MAJOR.MINOR.PATCH" in str(err)


def test_bad_reference(empty_registry: Path) -> None:
    ref = "grp/x:1.0.0@prod"
    err = cli_raises(InvalidReferenceError, "datasets", "pull", ref, cwd=empty_registry)
    assert "invalid reference 'grp/x:1.0.0@prod'" in str(err) and "Examples:" in str(err)


def test_stage_not_allowed_is_a_config_error(empty_registry: Path) -> None:
    err = cli_raises(ConfigError, "models", "promote", "m:1.0.0", "qa", cwd=empty_registry)
    assert "stage 'qa' is not allowed" in str(err) and "params.yaml" in str(err)


def test_no_registry(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    err = cli_raises(NotARegistryError, "models", "list", cwd=tmp_path / "elsewhere")
    assert "no registry configured" in str(err) and "REGISTRY_URL" in str(err)


def test_missing_weights_file_is_bad_input(empty_registry: Path, tmp_path: Path) -> None:
    missing = tmp_path / "trained" / "model.keras"
    err = cli_raises(
        SourceNotFoundError, "models", "add", "m", "--from", str(missing), cwd=empty_registry
    )
    assert str(err).startswith(f"cannot add weights to model 'm': {str(missing)!r} does not")
    assert isinstance(err, FileNotFoundError) and err.exit_code == 2
    assert not (empty_registry / "models" / "m").exists()


def _add_with_card(registry: Path, tmp_path: Path, card_text: str) -> CardError:
    """``registry models add m`` on a model whose card is ``card_text``: the CardError."""
    card = registry / "models" / "m" / "README.md"
    card.parent.mkdir(parents=True)
    card.write_text(card_text)
    weights = tmp_path / "model.keras"
    weights.write_bytes(b"weights")
    return cli_raises(CardError, "models", "add", "m", "--from", str(weights), cwd=registry)


def test_card_without_front_matter(empty_registry: Path, tmp_path: Path) -> None:
    err = _add_with_card(empty_registry, tmp_path, "# m\n\nA model.\n")
    assert "models/m/README.md has no front matter" in str(err)
    assert "start it with a '---' line" in str(err) and err.exit_code == 2


# -- not found (exit 3) ------------------------------------------------------------------------


def test_unknown_model_names_the_models_list(empty_registry: Path) -> None:
    err = cli_raises(ArtifactNotFoundError, "models", "info", "resnet", cwd=empty_registry)
    assert str(err) == "unknown model 'resnet'. Run 'registry models list' to see what exists."
    assert err.kind == "model"


def test_unreleased_model_names_the_models_release(empty_registry: Path) -> None:
    registry.new_model("m", registry=empty_registry)
    err = cli_raises(VersionNotFoundError, "models", "info", "m:1.0.0", cwd=empty_registry)
    assert "'m' has no released version matching '1.0.0' (released: none yet)" in str(err)
    assert "release one with 'registry models release m'" in str(err)
    assert "datasets" not in str(err)


# -- taken names (exit 11) ---------------------------------------------------------------------


def test_model_named_like_a_dataset(make_registry: Callable[..., Path]) -> None:
    root = make_registry(datasets=[DIGITS])
    err = cli_raises(ArtifactExistsError, "models", "new", DIGITS, cwd=root)
    assert str(err).startswith(f"cannot create model '{DIGITS}': a dataset has that name")
    assert "run 'registry datasets list' to see the datasets" in str(err)
    assert (err.kind, err.existing_kind) == ("model", "dataset")


def test_adding_weights_twice_asks_for_force(empty_registry: Path, tmp_path: Path) -> None:
    weights = tmp_path / "model.keras"
    weights.write_bytes(b"weights")
    # From another working directory, as a script that names the registry does.
    registry.add_model("m", weights, registry=empty_registry)
    assert "path: model.keras" in (empty_registry / "models/m/model.keras.dvc").read_text()
    err = cli_raises(
        ArtifactExistsError, "models", "add", "m", "--from", str(weights), cwd=empty_registry
    )
    assert str(err) == (
        "cannot add weights to model 'm': it already has weights. Pass --force to replace them."
    )


# -- failures of the tools underneath ----------------------------------------------------------


def test_builder_without_builder_class(empty_registry: Path) -> None:
    folder = empty_registry / "datasets" / "grp" / "noclass"
    folder.mkdir(parents=True)
    (folder / "noclass_dataset_builder.py").write_text("X = 1\n")
    err = cli_raises(BuildError, "datasets", "prepare", "grp/noclass", cwd=empty_registry)
    assert "defines no class named 'Builder'" in str(err)
    assert not (folder / "prepared").exists()


def test_tag_without_a_build(make_registry: Callable[..., Path]) -> None:
    root = make_registry(datasets=[DIGITS])
    (root / "dvc.lock").unlink(missing_ok=True)
    commit_all(root, "Never built")
    git(root, "tag", "-a", f"{DIGITS}@v1.0.0", "-m", "Released by hand")
    err = cli_raises(NotBuiltError, "datasets", "pull", f"{DIGITS}:1.0.0", cwd=root)
    assert "dvc.lock" in str(err) and err.exit_code == 4


def test_git_not_installed(empty_registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_git = empty_registry.parent / "bin-without-git"
    no_git.mkdir()
    monkeypatch.setenv("PATH", str(no_git))
    err = cli_raises(GitError, "datasets", "list", cwd=empty_registry)
    assert str(err) == "git is not installed or not on PATH; install git first"


def test_weights_a_stage_makes_cannot_be_added(empty_registry: Path, tmp_path: Path) -> None:
    from ruamel.yaml import YAML

    yaml = YAML()
    pipeline = yaml.load((empty_registry / "dvc.yaml").read_text())
    pipeline.setdefault("stages", {})["train-m"] = {
        "cmd": "python train.py",
        "outs": ["models/m/model.keras"],
    }
    with (empty_registry / "dvc.yaml").open("w") as f:
        yaml.dump(pipeline, f)
    commit_all(empty_registry, "Train m in the pipeline")
    weights = tmp_path / "model.keras"
    weights.write_bytes(b"weights trained elsewhere")
    err = cli_raises(DvcError, "models", "add", "m", "--from", str(weights), cwd=empty_registry)
    assert str(err).startswith("'dvc add models/m/model.keras' failed: ")
    assert "overlaps with an output of stage: 'train-m'" in str(err)
    assert "come from 'dvc repro', not 'registry models add'" in str(err) and err.exit_code == 12


# -- remotes and their bytes -------------------------------------------------------------------


def test_registry_url_that_cannot_be_cloned(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/no-such-registry.git"
    err = cli_raises(RemoteError, "datasets", "list", "--registry", url, cwd=tmp_path)
    assert f"cannot clone the registry from {url!r}" in str(err) and "REGISTRY_URL" in str(err)
    assert "does not appear to be a git repository" in str(err)  # git's reason, not its advice


def _set_remote_url(art: ReleasedArtifact, url: str, **options: str) -> None:
    """Point the released registry's DVC remote ``storage`` at ``url`` (committed)."""
    config = art.repo / ".dvc" / "config"
    extra = "".join(f"    {k} = {v}\n" for k, v in options.items())
    config.write_text(config.read_text().replace("url = ../../storage\n", f"url = {url}\n{extra}"))
    commit_all(art.repo, f"Remote {url}")


def test_corrupt_remote_object(released_artifact: ReleasedArtifact) -> None:
    art = released_artifact
    data = art.files["1.0.0"]["features.json"]
    bad = art.remote_object(hashlib.md5(data, usedforsecurity=False).hexdigest())
    os.chmod(bad, 0o644)
    bad.write_bytes(b"bit rot")
    err = cli_raises(CorruptArtifactError, "datasets", "pull", f"{DIGITS}:1.0.0", cwd=art.repo)
    assert "file 'features.json'" in str(err) and "dvc push" in str(err)
    assert err.exit_code == 8


def test_remote_whose_dvc_plugin_is_missing(released_artifact: ReleasedArtifact) -> None:
    _set_remote_url(released_artifact, "s3://lab-bucket/dvc")
    err = cli_raises(
        MissingDependencyError, "datasets", "pull", f"{DIGITS}:1.0.0", cwd=released_artifact.repo
    )
    assert "pip install 'dvc[s3]'" in str(err) and err.exit_code == 10


def test_remote_with_a_missing_key_file(released_artifact: ReleasedArtifact) -> None:
    key = released_artifact.repo.parent / "no-such-key.json"
    _set_remote_url(released_artifact, "gs://lab-bucket/dvc", credentialpath=str(key))
    err = cli_raises(
        CredentialsError, "datasets", "pull", f"{DIGITS}:1.0.0", cwd=released_artifact.repo
    )
    assert f"names the key file {key} (credentialpath), which does not exist" in str(err)
    assert "Application Default Credentials" in str(err)


def test_relative_remote_read_by_git_url(released_artifact: ReleasedArtifact, tmp_path: Path):
    url = f"file://{released_artifact.repo}"
    err = cli_raises(
        RelativeRemoteError, "datasets", "pull", f"{DIGITS}:1.0.0", "--registry", url, cwd=tmp_path
    )
    assert "is the relative path '../../storage'" in str(err)
    assert "set REGISTRY_URL to its folder" in str(err) and isinstance(err, ConfigError)


def test_card_with_broken_yaml_is_one_line_with_its_line(
    empty_registry: Path, tmp_path: Path
) -> None:
    card = "---\ntask: image-classification\nowner: a: b\n---\n# m\n"
    err = _add_with_card(empty_registry, tmp_path, card)
    assert str(err) == (
        "models/m/README.md: the front matter is not valid YAML: line 3, column 9: mapping "
        "values are not allowed in this context; fix it there"
    )
