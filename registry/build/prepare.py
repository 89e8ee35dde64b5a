"""Building datasets: load a TFDS builder from its folder and run it with Apache Beam.

A dataset folder is a TFDS dataset folder (``tfds build datasets/<name>`` works on it as well).
The registry loads its builder module from the file, passes it the dataset's knobs from
``params.yaml`` (``datasets.<name>``) and runs ``download_and_prepare`` with the Beam runner
configured under ``beam`` in ``params.yaml``. The result replaces ``datasets/<name>/prepared``
atomically: a failed or interrupted build leaves the previous data untouched.

Runners:

- ``DirectRunner``: Beam's portable local engine (the ``FnApiRunner``, which is what
  DirectRunner uses underneath, without the Prism download), in ``multi_processing`` mode with
  ``direct_num_workers`` worker processes, or ``in_memory``.
- ``DataflowRunner``: needs ``project``, ``region``, ``temp_location`` (``gs://``) under
  ``beam.dataflow``; the workers install a generated package holding the builder and the
  registry (see :mod:`registry.cloud.dataflow`). :func:`pipeline_options` gives the full options
  without running anything (``registry datasets prepare NAME --dry-run``).
- ``FlinkRunner``: needs ``flink_master`` under ``beam.flink``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import json
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from registry import layout
from registry.atomic import atomic_write_text, replace_dir
from registry.errors import (
    BuildError,
    ConfigError,
    MissingDependencyError,
    NotBuiltError,
    RegistryError,
    first_line,
)

if TYPE_CHECKING:
    import tensorflow_datasets as tfds

__all__ = [
    "RUNNERS",
    "beam_flags",
    "load_builder_class",
    "make_builder",
    "pipeline_options",
    "prepare_dataset",
]

RUNNERS = ("DirectRunner", "DataflowRunner", "FlinkRunner")
_RUNNING_MODES = ("in_memory", "multi_processing")
_REQUIRED = {
    "FlinkRunner": ("flink", ("flink_master",)),
}


def beam_flags(beam: Mapping[str, Any]) -> list[str]:
    """Turn the ``beam`` section of ``params.yaml`` into Beam pipeline flags, validating it.

    Only the section of the chosen runner is used; empty (``null``) values are left out. For
    Dataflow, see :func:`registry.cloud.dataflow.dataflow_flags` (what is checked, and the default
    ``staging_location``); :func:`pipeline_options` adds what a given dataset needs.

    Args:
        beam: The ``beam`` mapping (``runner``, ``direct_*``, ``dataflow``, ``flink``).

    Returns:
        Flags such as ``["--runner=DataflowRunner", "--project=my-lab", ...]``.

    Raises:
        ConfigError: On an unknown runner or running mode, or a missing required option (the
            message names every missing key and where to set it).

    Example:
        >>> beam_flags({"runner": "DirectRunner", "direct_num_workers": 2})
        ['--runner=DirectRunner', '--direct_num_workers=2', '--direct_running_mode=multi_processing']
    """  # noqa: E501
    runner = beam.get("runner") or "DirectRunner"
    if runner not in RUNNERS:
        raise ConfigError(
            f"unknown Beam runner {runner!r} in params.yaml (beam.runner); use one of "
            f"{', '.join(RUNNERS)}"
        )
    flags = [f"--runner={runner}"]
    if runner == "DirectRunner":
        workers = beam.get("direct_num_workers", 2)
        mode = beam.get("direct_running_mode") or "multi_processing"
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ConfigError(
                "beam.direct_num_workers in params.yaml must be a positive integer, "
                f"not {workers!r}"
            )
        if mode not in _RUNNING_MODES:
            raise ConfigError(
                f"beam.direct_running_mode {mode!r} is not supported; use one of "
                f"{', '.join(_RUNNING_MODES)} (multi_threading corrupts TFDS output)"
            )
        return [*flags, f"--direct_num_workers={workers}", f"--direct_running_mode={mode}"]
    if runner == "DataflowRunner":
        from registry.cloud.dataflow import dataflow_flags

        return [*flags, *dataflow_flags(beam.get("dataflow") or {})]
    section_name, required = _REQUIRED[runner]
    section = beam.get(section_name) or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"beam.{section_name} in params.yaml must be a mapping")
    missing = [key for key in required if section.get(key) in (None, "")]
    if missing:
        raise ConfigError(
            f"{runner} needs {', '.join(missing)}: set "
            + ", ".join(f"beam.{section_name}.{key}" for key in missing)
            + " in params.yaml"
        )
    for key, value in section.items():
        if value not in (None, ""):
            flags.append(f"--{key}={value}")
    return flags


def pipeline_options(
    root: Path, name: str, beam: Mapping[str, Any] | None = None
) -> list[str]:
    """The full Beam pipeline options that building dataset ``name`` runs with.

    This is what ``registry datasets prepare NAME --dry-run`` prints. For ``DataflowRunner`` it
    also writes the worker package (see :mod:`registry.cloud.dataflow`) and adds ``--setup_file``
    naming it, and a ``--labels`` entry naming the dataset (for cost reports). Every flag is
    checked with Beam's own parser. Nothing is run and nothing is contacted; no credentials are
    read.

    Args:
        root: The registry work tree.
        name: The dataset name.
        beam: The Beam settings; default ``beam`` from ``params.yaml``.

    Returns:
        The flags, one string each, in the order ``params.yaml`` gives them.

    Raises:
        ConfigError: If the Beam settings are invalid, or name a flag Beam does not know (the
            message names the ``params.yaml`` key).
        NotBuiltError: If the dataset has no builder module (Dataflow only).

    Example:
        >>> pipeline_options(Path("."), "image_classification/digits")  # doctest: +SKIP
        ['--runner=DataflowRunner', '--project=my-lab', '--region=europe-west4',
         '--temp_location=gs://my-lab-beam/tmp', '--staging_location=gs://my-lab-beam/staging',
         '--machine_type=n2-standard-4', '--max_num_workers=20',
         '--service_account_email=dataflow@my-lab.iam.gserviceaccount.com',
         '--setup_file=/home/me/registry/.registry/dataflow/image_classification/digits/setup.py',
         '--labels=registry-dataset=image_classification-digits']
    """
    from registry.cloud.dataflow import unknown_beam_flags, write_worker_package
    from registry.cloud.names import label_value

    if beam is None:
        from registry.build.dvcfiles import read_params

        beam = read_params(root).get("beam") or {}
    flags = beam_flags(beam)
    runner = flags[0].split("=", 1)[1]
    if runner == "DataflowRunner":
        package = write_worker_package(root, name)
        label = label_value(name)
        flags += [f"--setup_file={package.setup_file}", f"--labels=registry-dataset={label}"]
    unknown = unknown_beam_flags(flags)
    if unknown:
        section = {"DataflowRunner": "beam.dataflow", "FlinkRunner": "beam.flink"}.get(
            runner, "beam"
        )
        keys = [f"{section}.{f.removeprefix('--').split('=', 1)[0]}" for f in unknown]
        raise ConfigError(
            f"Beam has no pipeline option {', '.join(keys)}; fix or remove "
            f"{'it' if len(keys) == 1 else 'them'} in params.yaml (see `python -m "
            "apache_beam.runners.dataflow.dataflow_runner --help` or Beam's pipeline options "
            "reference for the names)"
        )
    return flags


# Builder modules loaded in this process, by builder file and its modification time: two
# registries (or two datasets with the same last name) never share a module, and an edited
# builder is loaded again.
_MODULES: dict[tuple[Path, int], ModuleType] = {}


def load_builder_module(root: Path, name: str) -> ModuleType:
    """Import the builder module of dataset ``name`` from its file (once per process).

    The module is also registered with Beam's pickler "by value", so that Beam worker processes,
    which cannot import a module loaded from a folder, receive its functions' code.

    Raises:
        NotBuiltError: If the builder file does not exist.
        BuildError: If importing it raises.
    """
    path = (root / layout.builder_file(name)).resolve()
    # A top-level module named like the file, as `tfds build` imports it: TFDS derives the
    # dataset name from `<name>_dataset_builder` and looks for a package when the name is dotted.
    module_name = path.stem
    if not path.is_file():
        raise NotBuiltError(
            f"dataset {name!r} has no builder at {path}; create one with "
            f"'registry datasets new {name}'"
        )
    cache_key = (path, path.stat().st_mtime_ns)
    if cache_key in _MODULES:
        module = _MODULES[cache_key]
        # Another registry's builder of the same last name may have taken the name since.
        sys.modules[module_name] = module
        return module
    import tensorflow_datasets as tfds

    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        # Registering by name would make two datasets with the same last name collide.
        with tfds.core.registered.skip_registration():
            spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(module_name, None)
        raise BuildError(
            f"importing the builder of {name!r} ({path}) failed: {type(e).__name__}: "
            f"{first_line(e)}; fix {layout.builder_file(name)}"
        ) from e
    try:
        from apache_beam.internal.cloudpickle import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    except ImportError:  # pragma: no cover - Beam is a dependency; guard a broken install
        pass
    _MODULES[cache_key] = module
    return module


def load_builder_class(root: Path, name: str) -> type[tfds.core.GeneratorBasedBuilder]:
    """Return the ``Builder`` class of dataset ``name`` in the registry at ``root``."""
    module = load_builder_module(root, name)
    cls = getattr(module, "Builder", None)
    if cls is None:
        raise BuildError(
            f"{layout.builder_file(name)} defines no class named 'Builder' (TFDS's convention)"
        )
    if cls.__dict__.get("pkg_dir_path") is None:
        # TFDS finds README.md and CITATIONS.bib through the module's package, which a module
        # loaded from a file does not have: point it at the dataset folder.
        from etils import epath

        cls.pkg_dir_path = epath.Path(root / layout.dataset_dir(name))
    return cls


def make_builder(
    root: Path, name: str, params: Mapping[str, Any] | None = None, **kwargs: Any
) -> tfds.core.GeneratorBasedBuilder:
    """Instantiate dataset ``name``'s builder with its ``params`` (and TFDS keyword arguments)."""
    cls = load_builder_class(root, name)
    # Ask the signature rather than catching TypeError, which the builder's own code may raise.
    if _accepts_params(cls):
        return cls(params=dict(params or {}), **kwargs)
    # A plain TFDS builder that takes no params: still usable, with its own defaults.
    if params:
        raise BuildError(
            f"the builder of {name!r} takes no params, but params.yaml sets "
            f"datasets.{name}: {dict(params)}; add `params` to its __init__ (see the "
            "template of 'registry datasets new') or remove them"
        )
    return cls(**kwargs)


def _accepts_params(cls: type) -> bool:
    """Whether the builder's ``__init__`` takes a ``params`` keyword argument."""
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # pragma: no cover - a C-level __init__
        return False
    return "params" in parameters


@contextlib.contextmanager
def _reproducible_serialization() -> Iterator[None]:
    """Make TFDS serialize examples deterministically while the block runs.

    TFDS's own serialization differs from process to process (see
    :mod:`registry.build.reproducible`), so a rebuild would never match the released hash. TFDS
    creates its serializer by looking up ``example_serializer.ExampleSerializer``: the subclass is
    swapped in for the build, and pickled by value so that Beam workers use it too.
    """
    from tensorflow_datasets.core import example_serializer

    from registry.build import reproducible as _reproducible

    try:
        from apache_beam.internal.cloudpickle import cloudpickle

        cloudpickle.register_pickle_by_value(_reproducible)
    except ImportError:  # pragma: no cover - Beam is a dependency; guard a broken install
        pass
    original = example_serializer.ExampleSerializer
    example_serializer.ExampleSerializer = _reproducible.DeterministicExampleSerializer
    try:
        yield
    finally:
        example_serializer.ExampleSerializer = original


def download_and_prepare(builder: tfds.core.DatasetBuilder, download_config: Any) -> None:
    """Run ``builder.download_and_prepare`` so that it writes reproducible bytes."""
    with _reproducible_serialization():
        builder.download_and_prepare(download_config=download_config)


def _beam_download_config(
    beam: Mapping[str, Any], *, flags: list[str] | None = None, **kwargs: Any
) -> Any:
    """TFDS's download config running Beam with ``flags`` (default: ``beam_flags(beam)``)."""
    import tensorflow_datasets as tfds

    if flags is None:
        flags = beam_flags(beam)
    try:
        from apache_beam.options.pipeline_options import PipelineOptions
    except ImportError as e:  # pragma: no cover
        raise MissingDependencyError("apache_beam", "'apache-beam'") from e
    runner: Any = None
    if "--runner=DirectRunner" in flags:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        runner = FnApiRunner()
        flags = [f for f in flags if not f.startswith("--runner=")]
    return tfds.download.DownloadConfig(
        beam_runner=runner, beam_options=PipelineOptions(flags), **kwargs
    )


def prepare_dataset(
    root: Path,
    name: str,
    *,
    params: Mapping[str, Any] | None = None,
    beam: Mapping[str, Any] | None = None,
    output: Path | None = None,
) -> Path:
    """Build dataset ``name`` and atomically replace its prepared folder with the result.

    This is what the ``build@<name>`` stage of ``dvc.yaml`` runs (through
    ``registry datasets prepare``).

    Args:
        root: The registry work tree.
        name: The dataset name.
        params: The builder's knobs; default ``datasets.<name>`` from ``params.yaml``.
        beam: The Beam settings; default ``beam`` from ``params.yaml``.
        output: Where the prepared folder goes; default ``datasets/<name>/prepared``.

    Returns:
        The prepared folder.

    Raises:
        ConfigError: If the Beam settings are invalid.
        CredentialsError: On Dataflow, if no Google Cloud credentials are configured (checked
            before anything runs).
        MissingDependencyError: On Dataflow, if Beam's ``gcp`` extra is not installed.
        BuildError: If the builder or its pipeline fails (the old prepared folder stays).
    """
    from registry.build.dvcfiles import dataset_params, read_params

    if params is None:
        params = dataset_params(root, name)
    if beam is None:
        beam = read_params(root).get("beam") or {}
    output = output or root / layout.prepared_dir(name)
    flags = pipeline_options(root, name, beam)
    if "--runner=DataflowRunner" in flags:
        from registry.cloud.dataflow import check_credentials, check_submission_dependencies

        check_credentials(str((beam.get("dataflow") or {})["project"]))
        check_submission_dependencies()
    download_config = _beam_download_config(beam, flags=flags)
    output.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f".{output.name}.build-", dir=output.parent))
    # Dataflow's workers cannot write to this machine: they build under temp_location, and the
    # result is downloaded here once the job is done.
    remote_dir = remote_build_dir(beam, name)
    downloaded = False
    try:
        try:
            data_dir = remote_dir or str(workdir / "data")
            builder = make_builder(root, name, params, data_dir=data_dir)
            download_and_prepare(builder, download_config)
        except RegistryError:
            raise
        except Exception as e:
            raise BuildError(
                f"building {name!r} failed: {_describe_error(e)}; fix the "
                f"builder ({layout.builder_file(name)}) or its params, then run "
                f"'registry datasets build {name}' again (rerun with --traceback for details)"
            ) from e
        if remote_dir is not None:
            from registry.cloud.gcs import download_folder

            built = workdir / "data"
            try:
                download_folder(str(builder.data_dir), built)
            except RegistryError as e:
                # The job's output is kept: the download can be retried without rebuilding.
                raise type(e)(
                    f"{e}. Dataflow's build of {name!r} is kept at {builder.data_dir}; download "
                    "it again once fixed, or rebuild"
                ) from e
        else:
            built = Path(builder.data_dir)
        # Downloads and Beam temp files stay behind: only the prepared folder is the output.
        replace_dir(built, output)
        downloaded = True
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if remote_dir is not None and downloaded:
            _delete_quietly(remote_dir)
    if output == root / layout.prepared_dir(name):
        atomic_write_text(
            root / layout.build_info_file(name),
            json.dumps(build_summary(name, builder.info), indent=2, sort_keys=True) + "\n",
        )
    return output


def remote_build_dir(beam: Mapping[str, Any], name: str) -> str | None:
    """Where Dataflow's workers write a build of ``name``: a fresh folder under
    ``beam.dataflow.temp_location``; ``None`` for runners that write on this machine.

    Example:
        >>> beam = {"runner": "DataflowRunner", "dataflow": {"temp_location": "gs://lab/tmp"}}
        >>> remote_build_dir(beam, "a/b")  # doctest: +SKIP
        'gs://lab/tmp/registry-builds/a/b/5f0c...'
    """
    if (beam.get("runner") or "DirectRunner") != "DataflowRunner":
        return None
    temp = str((beam.get("dataflow") or {}).get("temp_location") or "").rstrip("/")
    if not temp.startswith("gs://"):
        raise ConfigError(
            f"beam.dataflow.temp_location must be a gs:// folder for Dataflow, not {temp!r}"
        )
    return f"{temp}/registry-builds/{name}/{uuid.uuid4().hex}"


def _delete_quietly(url: str) -> None:
    """Remove a finished build's folder from Cloud Storage; a failure only leaves temp files."""
    import logging

    from registry.cloud.gcs import delete_folder

    try:
        delete_folder(url)
    except Exception as e:  # the build's result is safe; say what was left behind
        logging.getLogger(__name__).warning("could not delete %s (%s); delete it by hand", url, e)


def build_summary(name: str, info: Any) -> dict[str, Any]:
    """Describe a built dataset for Git (``build_info.json``): version, splits, features.

    Committed beside the builder, it lets ``registry datasets info`` and ``list`` describe any
    released version without fetching its bytes, and shows what a rebuild changed in review.
    """
    features = {}
    for key, tensor in sorted(info.features.get_tensor_info().items()):
        feature = info.features[key]
        entry: dict[str, Any] = {
            "type": type(feature).__name__,
            "dtype": tensor.dtype.name,
            "shape": [d if d is None else int(d) for d in tensor.shape],
        }
        if hasattr(feature, "num_classes"):
            entry["num_classes"] = int(feature.num_classes)
        features[key] = entry
    return {
        "name": name,
        "tfds_name": info.name,
        "version": str(info.version),
        "splits": {
            split: {
                "num_examples": int(si.num_examples),
                "num_bytes": int(si.num_bytes),
                "num_shards": len(si.shard_lengths),
            }
            for split, si in sorted(info.splits.items())
        },
        "features": features,
        "supervised_keys": list(info.supervised_keys) if info.supervised_keys else None,
    }


def _describe_error(error: BaseException) -> str:
    """``Type: message`` of what went wrong, in one line.

    A Beam worker process reports its failure as a RuntimeError whose text is the worker's
    traceback (first line ``Traceback (most recent call last):``): the user's error is its last
    unindented ``Type: message`` line.
    """
    text = str(error).strip()
    if "Traceback (most recent call last):" in text:
        for line in reversed(text.splitlines()):
            if line and not line[0].isspace() and not line.startswith(
                ("Traceback", "During handling", "The above exception")
            ):
                return line.strip()
    return f"{type(error).__name__}: {first_line(error)}"

