"""Beam on Google Cloud Dataflow: pipeline options from ``params.yaml`` and the worker package.

With ``beam.runner: DataflowRunner`` a dataset's Beam pipeline runs on Dataflow workers, which
start from Beam's container image and know nothing of this registry. Two things make the job:

- **Pipeline options**, from ``beam.dataflow`` in ``params.yaml``: every key of that section is a
  Beam flag of the same name (``project``, ``region``, ``temp_location``, ``staging_location``,
  ``machine_type``, ``max_num_workers``, ``service_account_email``, and any other Dataflow flag
  such as ``network`` or ``disk_size_gb``). :func:`dataflow_flags` validates them and names the
  ``params.yaml`` key of any bad value; a key Beam does not know is refused (Beam would drop it
  silently). An empty ``staging_location`` is ``temp_location``, as Beam does, but spelled out.
- **The worker package**, a small Python source package that :func:`write_worker_package`
  generates from the code as it is in this clone, passed to Beam as ``--setup_file``. At submission
  Beam runs ``python setup.py sdist`` on it and every worker pip-installs the result, so the
  workers get:

  - the ``registry`` package, copied from where it is imported (without ``__pycache__``);
  - the dataset's builder module (``<leaf>_dataset_builder.py``) and its sibling ``.py`` modules,
    as top-level modules of the same names the registry imports them by (see
    :func:`registry.build.builders.load_builder_module`); its ``README.md``, ``CITATIONS.bib``,
    ``checksums.tsv`` and ``TAGS.txt`` travel in the archive too (TFDS reads them on the
    submitting machine, where the dataset's metadata is computed);
  - ``install_requires``: TensorFlow Datasets, TensorFlow (``tensorflow-cpu``: Dataflow workers
    are x86-64 Linux), ``importlib_resources``, ``protobuf`` and every distribution the builder
    modules import, each pinned to the version installed here, so workers run what the submitter
    ran. Apache Beam itself is not listed: the worker image comes with the submitter's version.

  The package is written to ``.registry/dataflow/<dataset name>/`` in the clone (a folder that
  ignores itself in Git: it holds a ``.gitignore`` of ``*``), replaced whole on every run, and
  byte-for-byte the same for the same code and installed versions.

Credentials are never read from ``params.yaml`` and never printed or written: a real run checks
that Application Default Credentials exist (``gcloud auth application-default login`` or
``GOOGLE_APPLICATION_CREDENTIALS``) before submitting; a dry run needs none and contacts nothing.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import io
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry import layout
from registry.atomic import replace_dir
from registry.cloud import names
from registry.config import required_section
from registry.errors import ConfigError

__all__ = [
    "PACKAGE_DIR",
    "WorkerPackage",
    "check_credentials",
    "check_submission_dependencies",
    "dataflow_flags",
    "unknown_beam_flags",
    "worker_package_dir",
    "worker_requirements",
    "write_worker_package",
]

SECTION = "beam.dataflow"
PACKAGE_DIR = ".registry/dataflow"
_REQUIRED = ("project", "region", "temp_location")
_LOCATIONS = ("temp_location", "staging_location")
# The worker's own needs, whatever the builder imports: (import name, requirement on workers).
_BASE_MODULES = ("tensorflow_datasets", "tensorflow", "importlib_resources", "google.protobuf")
# Distributions that provide `tensorflow` (tensorflow, tensorflow-cpu, tensorflow-macos ...):
# Dataflow workers are x86-64 Linux without GPUs.
_WORKER_TENSORFLOW = "tensorflow-cpu"
# Preinstalled in Beam's worker image at the submitter's version; reinstalling it is slow and risky.
_NOT_REQUIRED = {"apache_beam", "registry"}
_DATA_FILES = ("README.md", "CITATIONS.bib", "checksums.tsv", "TAGS.txt")

_MACHINE_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)+$")


def _key(name: str) -> str:
    return f"{SECTION}.{name}"


def _fix(name: str) -> str:
    return f"; fix {_key(name)} in params.yaml"


def dataflow_flags(section: Mapping[str, Any] | None) -> list[str]:
    """Validate ``beam.dataflow`` and turn it into Dataflow pipeline flags (without the runner).

    Every non-empty key becomes ``--<key>=<value>``, in the section's order; an empty
    ``staging_location`` becomes ``temp_location``, which is what Beam would use.

    Args:
        section: The ``beam.dataflow`` mapping of ``params.yaml``.

    Returns:
        Flags such as ``["--project=my-lab", "--region=europe-west4", ...]``.

    Raises:
        ConfigError: Naming every missing required key (``project``, ``region``,
            ``temp_location``), or the first invalid value and its ``params.yaml`` key: a location
            that is not ``gs://BUCKET/...``, a project id or region that cannot be one, a
            ``max_num_workers`` that is not a positive whole number, a ``service_account_email``
            that is not an email, a ``machine_type`` that is not a machine type name.

    Example:
        >>> dataflow_flags({"project": "my-lab", "region": "europe-west4",
        ...                 "temp_location": "gs://my-lab-beam/tmp", "max_num_workers": 8})
        ['--project=my-lab', '--region=europe-west4', '--temp_location=gs://my-lab-beam/tmp', \
'--staging_location=gs://my-lab-beam/tmp', '--max_num_workers=8']
    """
    values = _set_values(section)
    _check_values(values)
    return _flags(values)


def _set_values(section: Mapping[str, Any] | None) -> dict[str, Any]:
    """The section's non-empty values, every missing required key named at once."""
    return required_section(section, SECTION, _REQUIRED, "DataflowRunner")


def _check_values(values: Mapping[str, Any]) -> None:
    """Check the values the registry knows the form of; Beam's parser checks the others."""
    for key in ("project", "region", "machine_type", "service_account_email", *_LOCATIONS):
        if key in values and not isinstance(values[key], str):
            raise ConfigError(f"{_key(key)} must be a string, not {values[key]!r}{_fix(key)}")
    for key in _LOCATIONS:
        if key in values:
            example = f"gs://my-lab-beam/{key.split('_')[0]}"
            names.check_gs_path(values[key], _key(key), "params.yaml", example)
    project = names.check_project(values["project"], _key("project"), "params.yaml")
    names.check_region(values["region"], _key("region"), "params.yaml")
    for key in ("max_num_workers", "num_workers", "disk_size_gb"):
        value = values.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ConfigError(
                f"{_key(key)} must be a positive whole number, not {value!r}{_fix(key)}"
            )
    machine = values.get("machine_type")
    if machine is not None and not _MACHINE_RE.match(machine):
        raise ConfigError(
            f"{_key('machine_type')} {machine!r} is not a Compute Engine machine type such as "
            f"n2-standard-4 or e2-highmem-8{_fix('machine_type')}"
        )
    account = values.get("service_account_email")
    if account is not None:
        names.check_service_account(
            account, _key("service_account_email"), "params.yaml",
            example=f"dataflow-worker@{project}",
        )


def _flags(values: Mapping[str, Any]) -> list[str]:
    """``--key=value`` for each value, in order; a bool is a switch, ``--key`` or ``--no_key``."""
    flags = []
    for key, value in values.items():
        if isinstance(value, bool):
            # Beam's switches take no value: use_public_ips: false is --no_use_public_ips.
            flags.append(f"--{key}" if value else f"--no_{key}")
            continue
        flags.append(f"--{key}={value}")
        if key == "temp_location" and "staging_location" not in values:
            # Beam's own default, spelled out so that the printed options say where files go.
            flags.append(f"--staging_location={value}")
    return flags


def unknown_beam_flags(flags: Iterable[str]) -> list[str]:
    """The flags among ``flags`` that Beam's ``PipelineOptions`` does not recognise.

    Beam drops an unknown flag with a warning, so a misspelt ``params.yaml`` key would be ignored;
    this asks Beam's own parser (importing Beam, about a second).

    Raises:
        ConfigError: If Beam's parser refuses a value (e.g. text for a number), with its reason.

    Example:
        >>> unknown_beam_flags(["--project=my-lab", "--max_workers=3"])  # doctest: +SKIP
        ['--max_workers=3']
    """
    import logging

    flags = list(flags)
    # Beam warns on the root logger that BigQuery's clients are missing (not needed here), and
    # "Discarding unparseable args" for unknown flags: those are reported below instead.
    logs = [logging.getLogger(), logging.getLogger("apache_beam.options.pipeline_options")]
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(logging.ERROR)
    try:
        from apache_beam.options.pipeline_options import PipelineOptions

        options = PipelineOptions(flags)
        # argparse prints its usage and exits on a value it cannot take: keep its one line.
        with contextlib.redirect_stderr(io.StringIO()) as said:
            try:
                known = options.get_all_options()
                everything = options.get_all_options(retain_unknown_options=True)
            except SystemExit:
                reason = said.getvalue().strip().splitlines()[-1:] or ["invalid options"]
                raise ConfigError(
                    f"Beam refused the pipeline options made from params.yaml: "
                    f"{reason[0].split('error: ', 1)[-1]}; fix that key under beam in params.yaml"
                ) from None
    finally:
        for log, level in zip(logs, levels, strict=True):
            log.setLevel(level)
    unknown = set(everything) - set(known)
    return [f for f in flags if f.removeprefix("--").split("=", 1)[0] in unknown]


# -- the worker package ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerPackage:
    """The generated source package that Dataflow workers install.

    Attributes:
        folder: Where it was written (``<clone>/.registry/dataflow/<name>``).
        setup_file: Its ``setup.py``, what ``--setup_file`` names.
        distribution: The package's name, e.g. ``registry-dataflow-image-classification-digits``.
        version: ``<registry version>+<hash of the package's content>``.
        modules: The top-level modules it installs besides ``registry``: the builder first.
        requirements: Its ``install_requires``, pinned to the versions installed here.
    """

    folder: Path
    setup_file: Path
    distribution: str
    version: str
    modules: tuple[str, ...]
    requirements: tuple[str, ...]


def worker_package_dir(root: Path, name: str) -> Path:
    """Where the worker package of dataset ``name`` is written in the clone at ``root``."""
    return root / PACKAGE_DIR / name


def _stdlib(module: str) -> bool:
    return module.split(".", 1)[0] in sys.stdlib_module_names


def _imported_modules(paths: Iterable[Path]) -> set[str]:
    """Absolute imports anywhere in these files (top-level or inside functions), dotted."""
    found: set[str] = set()
    for path in paths:
        try:
            tree = ast.parse(path.read_text(), filename=str(path))
        except SyntaxError:
            continue  # importing the builder reports it, with the builder's name
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
    return found


def _distribution_of(module: str, providers: Mapping[str, list[str]]) -> str | None:
    """The installed distribution that provides ``module`` (None if it is not installed)."""
    from importlib import metadata

    top = module.split(".", 1)[0]
    candidates = sorted(set(providers.get(top, ())))
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    # A namespace package (google.*): the distribution holding the module's own folder or file.
    parts = module.split(".")
    for depth in range(len(parts), 1, -1):
        prefix = "/".join(parts[:depth])
        for name in candidates:
            files = metadata.distribution(name).files or []
            if any(
                str(f).startswith(prefix + "/") or str(f) == prefix + ".py" for f in files
            ):
                return name
    return None


def worker_requirements(modules: Iterable[str]) -> list[str]:
    """Pinned requirements for Dataflow workers that import ``modules``, plus the base ones.

    Args:
        modules: Dotted module names (what the builder modules import); standard-library modules,
            ``registry``, Apache Beam and modules not installed here are left out.

    Returns:
        Sorted ``name==version`` requirements, e.g. ``["numpy==2.1.3", "protobuf==6.31.1",
        "tensorflow-cpu==2.21.0", ...]``; any distribution providing ``tensorflow`` becomes
        ``tensorflow-cpu`` at the same version.

    Example:
        >>> worker_requirements(["numpy", "json"])  # doctest: +SKIP
        ['importlib_resources==6.5.2', 'numpy==2.1.3', 'protobuf==6.31.1', ...]
    """
    from importlib import metadata

    providers = metadata.packages_distributions()
    pins: dict[str, str] = {}
    for module in sorted({*_BASE_MODULES, *modules}):
        if _stdlib(module) or module.split(".", 1)[0] in _NOT_REQUIRED:
            continue
        dist = _distribution_of(module, providers)
        if dist is None:
            continue
        version = metadata.version(dist)
        name = _WORKER_TENSORFLOW if module.split(".", 1)[0] == "tensorflow" else dist
        pins[name.lower()] = f"{name}=={version}"
    return [pins[k] for k in sorted(pins)]


def _registry_files() -> list[tuple[str, Path]]:
    """The ``registry`` package as imported: (path in the package, source file), sorted."""
    import registry

    source = Path(registry.__file__).resolve().parent
    files = []
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_dir() or "__pycache__" in rel.parts or path.suffix in (".pyc", ".pyo"):
            continue
        files.append((f"registry/{rel.as_posix()}", path))
    return files


def _dataset_files(root: Path, name: str) -> tuple[list[str], list[tuple[str, Path]]]:
    """The builder's modules (builder first) and the dataset files that go into the package."""
    folder = root / layout.dataset_dir(name)
    builder = root / layout.builder_file(name)
    siblings = sorted(
        p
        for p in folder.glob("*.py")
        if p != builder and not p.name.endswith("_test.py") and p.name != "conftest.py"
    )
    modules = [builder.stem, *(p.stem for p in siblings)]
    if "registry" in modules or "setup" in modules:
        clash = "registry.py" if "registry" in modules else "setup.py"
        raise ConfigError(
            f"{layout.dataset_dir(name)}/{clash} would shadow the worker package's own "
            f"{clash.removesuffix('.py')}; rename it"
        )
    files = [(p.name, p) for p in [builder, *siblings]]
    files += [(n, folder / n) for n in _DATA_FILES if (folder / n).is_file()]
    for _, path in files:
        _refuse_link_outside(root, path)
    return modules, files


def _refuse_link_outside(root: Path, path: Path) -> None:
    """Refuse ``path`` if a symlink takes it outside the repository ``root`` (its target would be
    shipped to the cloud in the worker package)."""
    link = layout.link_outside(root, path)
    if link is None:
        return
    shown = link.relative_to(root) if link.is_relative_to(root) else link
    raise ConfigError(
        f"{shown} is a symbolic link to {link.resolve()}, outside the repository "
        f"{root.resolve()}: the Dataflow worker package takes only files of the repository; "
        "copy the file into the dataset folder instead of linking it"
    )


_SETUP_PY = '''\
"""Dataflow worker package of the dataset {name} (generated by `registry`: do not edit).

Beam runs `python setup.py sdist` on this folder when the job is submitted, and every
worker pip-installs the result: the `registry` package and the builder module {builder}
(importable by the name the registry uses), with what they import, at the versions of
the submitting machine. Regenerated on every run (see registry/cloud/dataflow.py).
"""

import setuptools

setuptools.setup(
{arguments})
'''


def _setup_arguments(arguments: Mapping[str, Any]) -> str:
    """``key=value,`` lines for ``setup()``, one list item or mapping entry a line."""

    def literal(value: Any, indent: str) -> str:
        inner = indent + "    "
        if isinstance(value, list) and value:
            return "[\n" + "".join(f"{inner}{v!r},\n" for v in value) + indent + "]"
        if isinstance(value, dict) and value:
            items = "".join(f"{inner}{k!r}: {literal(v, inner)},\n" for k, v in value.items())
            return "{\n" + items + indent + "}"
        return repr(value)

    return "".join(f"    {key}={literal(value, '    ')},\n" for key, value in arguments.items())


def _packages(files: Iterable[str]) -> tuple[list[str], dict[str, list[str]]]:
    """``packages`` and ``package_data`` for the ``registry`` files of the package."""
    packages: set[str] = set()
    data: dict[str, list[str]] = {}
    entries = list(files)
    for rel in entries:
        if rel.endswith("/__init__.py"):
            packages.add(rel.removesuffix("/__init__.py").replace("/", "."))
    for rel in entries:
        if rel.endswith(".py"):
            continue
        # The innermost package holding the file.
        parts = rel.split("/")
        for depth in range(len(parts) - 1, 0, -1):
            package = ".".join(parts[:depth])
            if package in packages:
                data.setdefault(package, []).append("/".join(parts[depth:]))
                break
    return sorted(packages), {k: sorted(v) for k, v in sorted(data.items())}


def write_worker_package(root: Path, name: str, dest: Path | None = None) -> WorkerPackage:
    """Generate the source package that Dataflow workers install for dataset ``name``.

    The files are gathered (the ``registry`` package, the builder's modules and data files), the
    requirements pinned from what the builder modules import, the version made from a hash of
    all of it, and ``setup.py`` and ``MANIFEST.in`` written with the files into ``dest``,
    replaced whole.

    Args:
        root: The registry work tree.
        name: The dataset, e.g. ``image_classification/digits``.
        dest: Where to write it; default :func:`worker_package_dir` (replaced whole).

    Returns:
        The package: its folder, ``setup.py`` (for ``--setup_file``), modules and requirements.

    Raises:
        NotBuiltError: If the dataset has no builder module.
        ConfigError: If a module of the dataset folder is named ``registry`` or ``setup``, or a
            file of it is a symlink (or lies in a linked folder) leading outside the repository.

    Example:
        >>> package = write_worker_package(Path("."), "image_classification/digits")
        ... # doctest: +SKIP
        >>> package.modules, package.setup_file.name  # doctest: +SKIP
        (('digits_dataset_builder',), 'setup.py')
    """
    from registry.errors import NotBuiltError

    builder = root / layout.builder_file(name)
    if not builder.is_file():
        raise NotBuiltError(
            f"dataset {name!r} has no builder at {builder}; create one with "
            f"'registry datasets new {name}'"
        )
    modules, dataset_files = _dataset_files(root, name)
    registry_files = _registry_files()
    files = [*registry_files, *dataset_files]
    module_paths = [path for rel, path in dataset_files if rel.endswith(".py")]
    requirements = worker_requirements(_imported_modules(module_paths))
    version = _package_version(files, requirements)
    distribution = "registry-dataflow-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    packages, package_data = _packages(rel for rel, _ in registry_files)
    setup_py = _SETUP_PY.format(
        name=name,
        builder=modules[0],
        arguments=_setup_arguments(
            {
                "name": distribution,
                "version": version,
                "description": f"The builder of {name} and the registry, for Dataflow workers",
                "packages": packages,
                "package_data": package_data,
                "py_modules": sorted(modules),
                "install_requires": requirements,
                "python_requires": f"~={sys.version_info.major}.{sys.version_info.minor}.0",
            }
        ),
    )
    dest = dest or worker_package_dir(root, name)
    _write_package(root, dest, files, setup_py)
    return WorkerPackage(
        folder=dest,
        setup_file=dest / "setup.py",
        distribution=distribution,
        version=version,
        modules=tuple(modules),
        requirements=tuple(requirements),
    )


def _package_version(files: Iterable[tuple[str, Path]], requirements: Iterable[str]) -> str:
    """``<registry version>+<hash of the files and requirements>``: new for any change."""
    from registry import __version__

    digest = hashlib.sha256()
    for rel, path in files:
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update("\n".join(requirements).encode())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def _write_package(
    root: Path, dest: Path, files: Iterable[tuple[str, Path]], setup_py: str
) -> None:
    """Write the files, ``setup.py`` and ``MANIFEST.in`` beside ``dest``, then swap it in whole."""
    files = list(files)
    # sdist takes exactly these files (setuptools would otherwise guess from the folder).
    manifest = "".join(f"include {rel}\n" for rel, _ in files if "/" not in rel)
    manifest += "graft registry\n"  # caches are never copied in
    _ignore_in_git(root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for rel, path in files:
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        (staging / "setup.py").write_text(setup_py)
        (staging / "MANIFEST.in").write_text(manifest)
        replace_dir(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _ignore_in_git(root: Path) -> None:
    """Make ``.registry/`` ignore itself, whatever the clone's own ``.gitignore`` says."""
    layout.scratch_dir(root)


# -- credentials ----------------------------------------------------------------------------------


def check_credentials(project: str) -> None:
    """Check that Google Cloud credentials exist before a Dataflow job is submitted.

    Fast and offline away from Google Cloud (see
    :func:`registry.cloud.credentials.find_credentials`); the credentials themselves are never
    printed, logged or written.

    Raises:
        CredentialsError: If none are configured: says to run ``gcloud auth
            application-default login`` or set ``GOOGLE_APPLICATION_CREDENTIALS``.
    """
    from registry.cloud.credentials import find_credentials
    from registry.errors import CredentialsError

    try:
        find_credentials(f"Dataflow for project {project!r}")
    except CredentialsError as e:
        import os

        key_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        # google-auth's reason names the file and what is wrong with it, never its content.
        cause = e.__cause__
        first = cause.args[0] if cause is not None and cause.args else cause
        reason = str(first or "").strip().splitlines()[:1]
        found = (
            f"GOOGLE_APPLICATION_CREDENTIALS={key_file} could not be used"
            + (f" ({reason[0]})" if reason else "")
            if key_file
            else "no Google Cloud credentials found"
        )
        raise CredentialsError(
            f"{found}. Dataflow needs Google Cloud credentials for project {project!r} "
            f"({_key('project')} in params.yaml): run `gcloud auth application-default login`, "
            "or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file kept outside "
            "the repository; never put credentials in params.yaml. `registry datasets prepare "
            "NAME --dry-run` shows the job's options without any"
        ) from e


def check_submission_dependencies() -> None:
    """Check that Beam can submit to Dataflow here (its ``gcp`` extra is installed).

    Raises:
        MissingDependencyError: If Beam's Dataflow client is missing: says to install
            ``apache-beam[gcp]``.
    """
    from registry.errors import MissingDependencyError

    try:
        from apache_beam.runners.dataflow.internal import apiclient  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(
            "apache_beam.runners.dataflow (Beam's Dataflow client)", "'apache-beam[gcp]'"
        ) from e
