"""Shared fixtures: a hermetic environment and real, throwaway registries.

Every test runs with its own ``HOME``, XDG folders, Git identity and registry cache, and with
telemetry off. Registries are real Git + DVC repositories with a local directory remote, made from
this project's own files, so tests exercise what users run.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from registry.errors import RegistryError

if TYPE_CHECKING:
    from registry.cloud.emulator import GCSEmulator
    from tests.diff_fixtures import Shop

PROJECT_ROOT = Path(__file__).resolve().parent.parent
E = TypeVar("E", bound=RegistryError)

# Set before anything imports DVC, MLflow or gcsfs.
os.environ.update(
    {
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
)
# `dvc`, and the `registry` that dvc.yaml's stages call, are the ones installed beside this Python.
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


# A skip whose reason starts with this says the test does not apply to this machine (it has a
# GPU, Google Cloud credentials, an optional extra); any other skip means a component is missing.
NOT_APPLICABLE = "not applicable here: "


def on_ci() -> bool:
    """Whether this is a CI run (CI sets ``CI=true``): there a missing component is a failure."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under ``CI=true`` turn a skip into a failure unless it is marked not applicable.

    A test that needs a real component (an emulator, a server, a browser, a fresh virtual
    environment) must never pass CI by skipping because the component is missing.
    """
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not (report.skipped and on_ci()) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if NOT_APPLICABLE not in reason:
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every component must be present: {reason}"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Give each test its own HOME, config, cache and Git identity; return that HOME."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Researcher")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "researcher@lab.test")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Researcher")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "researcher@lab.test")
    for var in (
        "REGISTRY_URL",
        "REGISTRY_CONFIG",
        "REGISTRY_CACHE_DIR",
        "REGISTRY_REMOTE",
        "REGISTRY_SHARED_CACHE",
    ):
        monkeypatch.delenv(var, raising=False)
    subprocess.run(
        ["git", "config", "--global", "init.defaultBranch", "main"], check=True, env=os.environ
    )
    return home


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` and return stdout (raises on failure)."""
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def commit_all(repo: Path, message: str) -> str:
    """Stage everything in ``repo``, commit it, and return the commit hash."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def cli_raises(error: type[E], *args: str, cwd: Path | None = None) -> E:
    """Run ``registry ARGS`` in this process and return the error it stops with.

    The run must end with exactly ``error`` (not a subclass, not another class): the CLI prints
    any :class:`~registry.errors.RegistryError` as one line and exits with its ``exit_code``
    (``registry.cli.main``, tested once in test_cli.py), so what a test checks here is the class
    and its message. ``tests/test_errors.py`` finds these calls to check that every error class
    is raised from the CLI by some test.

    Example:
        >>> err = cli_raises(InvalidNameError, "datasets", "info", "Bad Name")  # doctest: +SKIP
        >>> assert "lower case" in str(err)  # doctest: +SKIP
    """
    from registry.cli import main

    saved_cwd, saved_env = Path.cwd(), os.environ.get("REGISTRY_TRACEBACK")
    # With a traceback asked for, main exits with the error's code and the error as the cause.
    os.environ["REGISTRY_TRACEBACK"] = "1"
    try:
        if cwd is not None:
            os.chdir(cwd)
        with pytest.raises(SystemExit) as exited:
            main(list(args))
    finally:
        os.chdir(saved_cwd)
        if saved_env is None:
            os.environ.pop("REGISTRY_TRACEBACK", None)
        else:
            os.environ["REGISTRY_TRACEBACK"] = saved_env
    caught = exited.value.__cause__
    assert type(caught) is error, f"exit {exited.value.code}: {type(caught).__name__}: {caught}"
    assert isinstance(caught, RegistryError) and exited.value.code == caught.exit_code
    return caught


def _project_files() -> list[str]:
    out = git(PROJECT_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return [p for p in out.split("\0") if p and (PROJECT_ROOT / p).is_file()]


# The stages of dvc.yaml that train and evaluate the zoo models (they run src/, write models/).
MODEL_STAGES = ("train", "evaluate")


def drop_model_stages(repo: Path) -> None:
    """Take the zoo's train and evaluate stages out of a copied ``dvc.yaml`` and their entries
    out of ``dvc.lock``, for a registry made without ``src/`` and ``models/``: its models are
    added by hand (``registry models add``), which DVC refuses for a stage's output."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    for name in ("dvc.yaml", "dvc.lock"):
        path = repo / name
        if not path.exists():
            continue
        data = yaml.load(path.read_text())
        stages = (data or {}).get("stages") or {}
        for stage in list(stages):
            if stage.split("@", 1)[0] in MODEL_STAGES:
                del stages[stage]
        with path.open("w") as f:
            yaml.dump(data, f)


@pytest.fixture
def make_registry(tmp_path: Path) -> Callable[..., Path]:
    """Return a factory that makes a real registry repo and returns its work tree.

    ``make_registry(datasets=["image_classification/digits"])`` copies the registry skeleton of
    this project (``.dvc/config``, ``dvc.yaml``, ``params.yaml``, ``registry`` is not copied: it is
    installed) and the named example dataset folders, points the DVC default remote at a fresh
    local folder, and commits. ``datasets=None`` copies every example dataset. Without
    ``models=True`` the zoo's train and evaluate stages are taken out (``drop_model_stages``);
    with it, ``src/`` and ``models/`` are copied too and ``dvc repro`` trains the zoo. Datasets
    not copied are taken out of the pipeline when ``models=True``.
    """
    counter = iter(range(1000))

    def factory(
        datasets: list[str] | None = None, name: str | None = None, models: bool = False
    ) -> Path:
        repo = tmp_path / (name or f"registry{next(counter)}")
        repo.mkdir()
        skipped = {"registry", "tests", "benchmarks", "docs", ".ci"}
        if not models:
            skipped |= {"src", "models"}
        for rel in _project_files():
            top = rel.split("/", 1)[0]
            if top in skipped:
                continue
            if top == "datasets" and datasets is not None and not any(
                rel.startswith(f"datasets/{d}/") for d in datasets
            ):
                continue
            dest = repo / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / rel, dest)
        (repo / "datasets").mkdir(exist_ok=True)
        (repo / "models").mkdir(exist_ok=True)
        if not models:
            drop_model_stages(repo)
        elif datasets is not None:
            from registry.build.dvcfiles import pipeline_datasets, remove_dataset

            for other in pipeline_datasets(repo):
                if other not in datasets:
                    remove_dataset(repo, other)
        git(repo, "init", "-q")
        if not (repo / ".dvc").is_dir():
            subprocess.run(["dvc", "init", "-q"], cwd=repo, check=True)
        storage = tmp_path / f"{repo.name}-dvc-storage"
        storage.mkdir()  # a release never creates its remote's folder
        subprocess.run(
            ["dvc", "remote", "add", "--force", "--default", "storage", str(storage)],
            cwd=repo,
            check=True,
            capture_output=True,
        )
        commit_all(repo, "Create the registry")
        return repo

    return factory


def cli_ok(*args: str) -> str:
    """Run ``registry ARGS`` in this process (Click's runner), check it exits 0, return its
    stdout (a step's progress line goes to stderr)."""
    from click.testing import CliRunner

    from registry.cli import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def chdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """Return a function that changes the working directory for the rest of the test."""
    yield monkeypatch.chdir


# -- a released DVC folder artifact (for registry.storage) -------------------------------------

RELEASED_NAME = "image_classification/digits"

# The stage command: writes a small TFDS-like folder whose content depends on `rev` in
# params.yaml. 100 files at rev 1; rev 2 changes two of them and adds one, so 98 are shared.
_GENERATE_SCRIPT = '''\
import json, os, random, sys
import yaml

key = sys.argv[1]
rev = yaml.safe_load(open("params.yaml"))["datasets"][key]["rev"]
out = f"datasets/{key}/prepared"
os.makedirs(f"{out}/metadata", exist_ok=True)

def write(rel, data):
    with open(f"{out}/{rel}", "wb") as f:
        f.write(data)

write("dataset_info.json", json.dumps({"name": "digits", "rev": rev}).encode())
write("features.json", b'{"image": "uint8[8,8]", "label": "int64"}')
write("metadata/labels.txt", b"\\n".join(str(i).encode() for i in range(10)))
for i in range(96):
    shard_rev = rev if i == 0 else 1
    write(f"digits-train.tfrecord-{i:05d}-of-00096", f"shard {i} rev {shard_rev}\\n".encode() * 20)
if rev >= 2:
    write("digits-test.tfrecord-00000-of-00001", b"test shard\\n" * 50)
# One 3 MiB file, last in path order, so a fetch can be caught in the middle of it.
write("digits-validation.tfrecord-00000-of-00001", random.Random(0).randbytes(3 << 20))
'''


@dataclass(frozen=True)
class ReleasedArtifact:
    """A throwaway registry whose dataset ``image_classification/digits`` is released twice.

    Attributes:
        repo: The registry's work tree (Git + DVC).
        storage: Its DVC remote, a local folder (configured by the relative path
            ``../../storage``, so a copy of both stays consistent).
        stage: The dvc.yaml stage that builds it.
        out: The stage's output folder, relative to ``repo``.
        commits: Commit per version (``"1.0.0"``, ``"2.0.0"``), and ``"init"`` (no dvc.lock).
        hashes: The output's ``.dir`` md5 per version, as dvc.lock records it.
        files: Per version, each file of the output (path relative to it) and its bytes.
    """

    repo: Path
    storage: Path
    stage: str
    out: str
    commits: dict[str, str]
    hashes: dict[str, str]
    files: dict[str, dict[str, bytes]]

    def remote_object(self, md5: str) -> Path:
        """Where object ``md5`` is stored in the DVC remote."""
        return self.storage / "files" / "md5" / md5[:2] / md5[2:]


def _read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="session")
def released_artifact_template(tmp_path_factory: pytest.TempPathFactory) -> ReleasedArtifact:
    """Build once per session: a Git + DVC registry with one folder output, released as
    ``image_classification/digits@v1.0.0`` and ``@v2.0.0`` and pushed to a local remote.
    Tests use copies (``released_artifact``)."""
    import yaml

    root = tmp_path_factory.mktemp("released")
    env = hermetic_env(root / "home")
    repo = root / "repo"
    repo.mkdir()

    def run(*args: str) -> None:
        subprocess.run(args, cwd=repo, env=env, check=True, capture_output=True)

    def dvc(*args: str) -> None:
        run(sys.executable, "-m", "dvc", *args)

    run("git", "init", "-q", "-b", "main")
    dvc("init", "-q")
    with (repo / ".dvc" / "config").open("a") as f:
        f.write("[core]\n    remote = storage\n['remote \"storage\"']\n    url = ../../storage\n")
    (repo / "generate.py").write_text(_GENERATE_SCRIPT)
    (repo / "dvc.yaml").write_text(
        "stages:\n  build:\n    foreach:\n      " + RELEASED_NAME + ": {}\n    do:\n"
        f"      cmd: {shlex.quote(sys.executable)} generate.py ${{key}}\n"
        "      deps:\n        - generate.py\n"
        "      params:\n        - datasets.${key}\n"
        "      outs:\n        - datasets/${key}/prepared\n"
    )
    run("git", "add", "-A")
    run("git", "commit", "-q", "-m", "Create the registry")
    commits = {"init": git(repo, "rev-parse", "HEAD").strip()}
    stage = f"build@{RELEASED_NAME}"
    out = f"datasets/{RELEASED_NAME}/prepared"
    hashes, files = {}, {}
    for rev, version in ((1, "1.0.0"), (2, "2.0.0")):
        params = {"datasets": {RELEASED_NAME: {"rev": rev}}}
        (repo / "params.yaml").write_text(yaml.safe_dump(params))
        dvc("repro", "-q")
        run("git", "add", "-A")
        run("git", "commit", "-q", "-m", f"Build {RELEASED_NAME} {version}")
        dvc("push", "-q")
        run("git", "tag", "-a", f"{RELEASED_NAME}@v{version}", "-m", f"Release {version}")
        commits[version] = git(repo, "rev-parse", "HEAD").strip()
        lock = yaml.safe_load((repo / "dvc.lock").read_text())
        hashes[version] = lock["stages"][stage]["outs"][0]["md5"]
        files[version] = _read_tree(repo / out)
    return ReleasedArtifact(repo, root / "storage", stage, out, commits, hashes, files)


@pytest.fixture
def released_artifact(
    tmp_path: Path, released_artifact_template: ReleasedArtifact
) -> ReleasedArtifact:
    """A private copy of the released registry and its DVC remote (tests may break either)."""
    import dataclasses

    template = released_artifact_template
    dest = tmp_path / "released"
    skip_home = shutil.ignore_patterns("home")
    shutil.copytree(template.repo.parent, dest, symlinks=True, ignore=skip_home)
    return dataclasses.replace(template, repo=dest / "repo", storage=dest / "storage")


# -- a real registry with a built and released example dataset ---------------------------------


@dataclass(frozen=True)
class ReleasedRegistry:
    """A registry clone whose ``image_classification/digits`` 1.0.0 was built by DVC with Beam
    and released by ``registry datasets release``, with a bare Git ``origin`` and a local DVC
    remote (``storage``)."""

    clone: Path
    origin: Path
    storage: Path
    name: str = "image_classification/digits"
    version: str = "1.0.0"


def hermetic_env(home: Path) -> dict[str, str]:
    """Environment for subprocesses of session fixtures (which run outside ``isolated_env``)."""
    home.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"),
        "DVC_NO_ANALYTICS": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "GIT_AUTHOR_NAME": "Test Researcher",
        "GIT_AUTHOR_EMAIL": "researcher@lab.test",
        "GIT_COMMITTER_NAME": "Test Researcher",
        "GIT_COMMITTER_EMAIL": "researcher@lab.test",
    }


@pytest.fixture(scope="session")
def released_registry_template(tmp_path_factory: pytest.TempPathFactory) -> ReleasedRegistry:
    """Build and release digits once per session, through the real CLI, DVC and Beam."""
    return build_released_registry(tmp_path_factory.mktemp("released-registry"))


def registry_tree(dest: Path, keep: str | None = None) -> None:
    """Make ``dest`` a registry work tree from this project's files, without the code
    (``registry/``, ``src/``, ``models/``, tests ...), with dataset ``keep`` alone in the pipeline
    (``None``: none) and the model stages dropped, building with in-process Beam."""
    import yaml

    from registry.build.dvcfiles import pipeline_datasets, remove_dataset

    dest.mkdir()
    for rel in _project_files():
        top = rel.split("/", 1)[0]
        if top in ("registry", "tests", "benchmarks", "docs", ".ci", "src", "models"):
            continue
        if top == "datasets" and (keep is None or not rel.startswith(f"datasets/{keep}/")):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / rel, dest / rel)
    (dest / "datasets").mkdir(exist_ok=True)
    for other in pipeline_datasets(dest):
        if other != keep:
            remove_dataset(dest, other)
    drop_model_stages(dest)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    # In-process Beam: the same pipeline, without starting worker processes (faster on 2 cores).
    params["beam"]["direct_running_mode"] = "in_memory"
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def registry_clone(base: Path, keep: str | None = None) -> Path:
    """A committed registry clone in ``base/clone`` (:func:`registry_tree`'s files, with dataset
    ``keep`` or none), its local DVC remote ``base/storage`` set as the default, and a bare
    ``base/origin.git`` that ``main`` is pushed to; return the clone."""
    clone, storage, origin = base / "clone", base / "storage", base / "origin.git"
    storage.mkdir()  # a release never creates its remote's folder
    registry_tree(clone, keep=keep)
    git(clone, "init", "-q", "-b", "main")
    cli_ok("remote", "set", str(storage), "--registry", str(clone))
    commit_all(clone, "Create the registry")
    git(base, "init", "-q", "--bare", "-b", "main", str(origin))
    git(clone, "remote", "add", "origin", str(origin))
    git(clone, "push", "-q", "origin", "main")
    return clone


def build_released_registry(base: Path, knobs: dict[str, Any] | None = None) -> ReleasedRegistry:
    """Make, in the empty folder ``base``, a registry clone with a bare ``origin`` and a local DVC
    remote, and build and release digits 1.0.0 there through the real CLI, DVC and Beam (also
    used by ``benchmarks/reliability.py``); ``knobs``: digits' entry in ``params.yaml`` (e.g.
    ``{"file_format": "array_record"}``), default as the project has it."""

    env = hermetic_env(base / "home")
    clone, origin, storage = base / "clone", base / "origin.git", base / "storage"

    def run(*args: str, cwd: Path = clone) -> None:
        done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"

    storage.mkdir()  # a release never creates its remote's folder
    registry_tree(clone, keep="image_classification/digits")
    if knobs is not None:
        import yaml

        params = yaml.safe_load((clone / "params.yaml").read_text())
        params["datasets"]["image_classification/digits"] = knobs
        (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run("git", "init", "-q", "-b", "main")
    run("dvc", "remote", "add", "--force", "--default", "storage", str(storage))
    run("git", "add", "-A")
    run("git", "commit", "-q", "-m", "Create the registry")
    run("git", "init", "-q", "--bare", "-b", "main", str(origin), cwd=base)
    run("git", "remote", "add", "origin", str(origin))
    run("git", "push", "-q", "origin", "main")
    run("registry", "datasets", "build", "image_classification/digits")
    run("git", "add", "-A")
    # Builds are reproducible: the copied dvc.lock may already hold these hashes.
    run("git", "commit", "-q", "--allow-empty", "-m", "Build image_classification/digits 1.0.0")
    run("git", "push", "-q", "origin", "main")
    run("registry", "datasets", "release", "image_classification/digits")
    return ReleasedRegistry(clone, origin, storage)


@pytest.fixture
def released_registry(
    tmp_path: Path, released_registry_template: ReleasedRegistry
) -> ReleasedRegistry:
    """A private copy of the released registry, its origin and its DVC remote."""
    template = released_registry_template
    dest = tmp_path / "released-registry"
    skip_home = shutil.ignore_patterns("home")
    shutil.copytree(template.clone.parent, dest, symlinks=True, ignore=skip_home)
    copy = ReleasedRegistry(dest / "clone", dest / "origin.git", dest / "storage")
    # The copies must point at each other, not at the template.
    git(copy.clone, "remote", "set-url", "origin", str(copy.origin))
    subprocess.run(
        ["dvc", "remote", "modify", "storage", "url", str(copy.storage)],
        cwd=copy.clone,
        check=True,
        capture_output=True,
    )
    commit_all(copy.clone, "Point at the copied remote")
    git(copy.clone, "push", "-q", "origin", "main")
    return copy


@pytest.fixture
def shop(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, chdir: Callable[[Path], None]
) -> Shop:
    """A private copy of a clone with the keyed ``demo/shop`` 1.0.0 released
    (``tests/diff_fixtures.py``; the template is built once per process); the working directory."""
    from tests.diff_fixtures import copy_shop, shop_template

    copy = copy_shop(shop_template(tmp_path_factory), tmp_path / "shop")
    chdir(copy.repo)
    return copy


def flip(path: Path, offset: int = 0) -> None:
    """Flip one bit of ``path`` in place (same inode), keeping its mtime and mode."""
    st = path.stat()
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.chmod(path, st.st_mode)


# -- servers: the GCS emulator, PostgreSQL, an MLflow tracking server ----------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def gcs() -> Iterator[GCSEmulator]:
    """One fake-gcs-server for the session (in memory); tests use their own buckets."""
    from registry.cloud.emulator import GCSEmulator

    with GCSEmulator() as server:
        yield server


@dataclass(frozen=True)
class GCSRegistry:
    """A registry clone whose DVC remote is a bucket on the GCS emulator, digits 1.0.0 released.

    Attributes:
        base: The folder holding ``clone``, ``origin.git`` and ``home``.
        bucket: The bucket: the DVC remote under ``dvc/``, training jobs under ``training/``.
        env: The environment its commands ran with (a throwaway ``HOME``).
        code_commit: The commit that added ``registry/`` and ``src/`` (``code=True``), else
            ``None``.
    """

    base: Path
    bucket: str
    env: dict[str, str]
    code_commit: str | None

    @property
    def clone(self) -> Path:
        return self.base / "clone"

    @property
    def origin(self) -> Path:
        return self.base / "origin.git"


def gcs_registry(
    gcs: GCSEmulator, base: Path, *, code: bool = False, vertex: dict[str, Any] | None = None
) -> GCSRegistry:
    """Make, in the empty folder ``base``, a registry clone (``digits-cnn``'s card, a bare
    ``origin``) releasing to a new bucket on ``gcs``, and build and release digits 1.0.0 there
    through the real CLI.

    Args:
        gcs: The emulator.
        base: An empty folder.
        code: Also commit this checkout's ``registry/`` and ``src/``, as the lab's clone holds
            them (what ``registry compute package`` takes into the image).
        vertex: Keys of ``compute.vertex`` to set beside the bucket's folders.
    """
    import uuid

    import yaml

    env = hermetic_env(base / "home")
    clone, origin = base / "clone", base / "origin.git"
    bucket = f"lab-{uuid.uuid4().hex[:12]}"
    gcs.create_bucket(bucket)

    def run(*args: str, cwd: Path = clone) -> str:
        done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    registry_tree(clone, keep="image_classification/digits")
    card = clone / "models" / "digits-cnn" / "README.md"
    card.parent.mkdir(parents=True)
    for name in ("README.md", ".gitignore"):
        shutil.copy2(PROJECT_ROOT / "models" / "digits-cnn" / name, card.parent / name)
    if code:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for folder in ("registry", "src"):
            shutil.copytree(PROJECT_ROOT / folder, clone / folder, ignore=ignore)
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["compute"]["vertex"].update(
        project="my-lab",
        region="us-central1",
        staging_bucket=f"gs://{bucket}/staging",
        machine_type="n1-standard-4",
        data_uri=f"gs://{bucket}/dvc",
        output_uri=f"gs://{bucket}/training",
        **(vertex or {}),
    )
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run("git", "init", "-q", "-b", "main")
    run("registry", "remote", "set", f"gs://{bucket}/dvc", "--endpoint-url", gcs.url, "--anonymous")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "Create the registry, releasing to GCS")
    code_commit = run("git", "rev-parse", "HEAD").strip() if code else None
    run("git", "init", "-q", "--bare", "-b", "main", str(origin), cwd=base)
    run("git", "remote", "add", "origin", str(origin))
    run("registry", "datasets", "build", "image_classification/digits")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "Build digits 1.0.0", "--allow-empty")
    run("git", "push", "-q", "origin", "main")
    run("registry", "datasets", "release", "image_classification/digits")
    return GCSRegistry(base, bucket, env, code_commit)


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(f"{url}/health", timeout=1).close()
        return True
    except OSError:
        return False


@contextmanager
def mlflow_server_on(
    base: Path, backend_store_uri: str, artifacts_destination: str, **env: str
) -> Iterator[str]:
    """A real ``mlflow server`` with this store and artifact store, in ``base``; yields its URL.

    ``env`` is added to the server's environment only (what a lab gives its server, e.g.
    ``GOOGLE_APPLICATION_CREDENTIALS``; here ``STORAGE_EMULATOR_HOST``).
    """
    port = free_port()
    server_env = {**hermetic_env(base / "home"), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server_env.pop("MLFLOW_TRACKING_URI", None)
    server_env.update(env)
    log_path = base / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"), "server",
                "--backend-store-uri", backend_store_uri,
                "--artifacts-destination", artifacts_destination,
                "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            ],
            cwd=base, env=server_env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        try:
            while not _answers(url):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server did not start:\n{log_path.read_text()}")
                time.sleep(0.2)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on a SQLite store, for the whole session; yields its URL."""
    base = tmp_path_factory.mktemp("mlflow-server")
    with mlflow_server_on(base, f"sqlite:///{base / 'mlflow.db'}", str(base / "artifacts")) as url:
        yield url


def postgres_bindir() -> Path | None:
    """Where PostgreSQL's server programs are: ``initdb`` on ``PATH``, else Debian's newest
    ``/usr/lib/postgresql/<major>/bin``; ``None`` if it is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    majors = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    majors.sort(key=lambda bindir: int(bindir.parent.name) if bindir.parent.name.isdigit() else 0)
    return majors[-1] if majors else None


@contextmanager
def postgres_server(database: str = "mlflow") -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (TCP only, trust authentication, no fsync),
    with an empty ``database``; yields its URI ``postgresql://registry@127.0.0.1:PORT/NAME``.

    PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` system
    user (else ``nobody``) and its programs run through ``runuser``, in a folder under the
    system's temporary folder that this user owns. Skips (a failure under ``CI=true``) when the
    PostgreSQL server is not installed: ``make install-test`` installs Debian's.
    """
    import pwd

    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin): "
            "apt-get install postgresql, or make install-test"
        )
    base = Path(tempfile.mkdtemp(prefix="registry-postgres-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        names = {entry.pw_name for entry in pwd.getpwall()}
        owner = pwd.getpwnam("postgres" if "postgres" in names else "nobody")
        os.chown(base, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", owner.pw_name, "--"]
    data, port = base / "data", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"

    run(str(bindir / "initdb"), "-D", str(data), "-U", "registry", "-A", "trust", "-E", "UTF8",
        "--no-sync")  # fmt: skip
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories= -c fsync=off"
    try:
        run(str(bindir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(data), "-o", options,
            "-l", str(base / "server.log"))  # fmt: skip
        try:
            import psycopg

            with psycopg.connect(host="127.0.0.1", port=port, user="registry", dbname="postgres",
                                 autocommit=True) as admin:  # fmt: skip
                admin.execute(f'CREATE DATABASE "{database}"')
            yield f"postgresql://registry@127.0.0.1:{port}/{database}"
        finally:
            run(str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``registry ARGS`` run in this process as the console script runs it (``main``, which
    exits): its exit code, stdout and stderr."""
    from registry.cli import main

    with pytest.raises(SystemExit) as done:
        main([*args])
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err
