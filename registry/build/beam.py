"""Beam options for building a dataset: the ``beam`` section of ``params.yaml`` as pipeline
flags, and TFDS's download config that runs a build with them.

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

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from registry.config import required_section
from registry.errors import ConfigError, MissingDependencyError

__all__ = [
    "RUNNERS",
    "beam_download_config",
    "beam_flags",
    "pipeline_options",
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
    section = required_section(
        beam.get(section_name) or {}, f"beam.{section_name}", required, runner
    )
    return [*flags, *(f"--{key}={value}" for key, value in section.items())]


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
        from registry.config import read_params

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


def beam_download_config(
    beam: Mapping[str, Any], *, flags: list[str] | None = None, **kwargs: Any
) -> Any:
    """TFDS's download config that runs a build with Beam, configured by ``beam``.

    For ``DirectRunner``, Beam's ``FnApiRunner`` runs the pipeline directly (what DirectRunner
    uses underneath, without fetching the Prism runner).

    Args:
        beam: The ``beam`` settings (see :func:`beam_flags`).
        flags: The pipeline flags; default ``beam_flags(beam)`` (pass
            :func:`pipeline_options`' to include what a dataset needs on Dataflow).
        **kwargs: More ``tfds.download.DownloadConfig`` arguments.

    Returns:
        A ``tfds.download.DownloadConfig`` for ``builder.download_and_prepare``.

    Raises:
        ConfigError: If the Beam settings are invalid.
        MissingDependencyError: If Apache Beam is not installed.

    Example:
        >>> config = beam_download_config({"direct_running_mode": "in_memory"})  # doctest: +SKIP
    """
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
