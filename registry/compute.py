"""Training in the cloud, for a model of this registry: the Vertex AI job from ``params.yaml``.

:func:`job_spec` reads the registry's ``compute:`` section and builds the job
(:func:`registry.cloud.vertex.build_job_spec`, pure data); :func:`submit` sends it. ``registry
compute submit MODEL [--dry-run]`` is the command line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from registry.cloud.vertex import SubmittedJob, build_job_spec, compute_section, submit
from registry.config import read_params
from registry.errors import ArtifactNotFoundError, ConfigError
from registry.grammar import parse_name
from registry.repo.session import open_session

__all__ = ["SubmittedJob", "job_spec", "submit"]


def job_spec(
    model: str,
    *,
    registry: str | os.PathLike[str] | None = None,
    job_id: str | None = None,
    for_submit: bool = False,
) -> dict[str, Any]:
    """Build the Vertex AI job for ``model`` from a registry clone's ``params.yaml``.

    Args:
        model: A model of the registry (a folder ``models/<model>/`` with its card).
        registry: A registry clone; default from the configuration.
        job_id: See :func:`~registry.cloud.vertex.build_job_spec`.
        for_submit: Also require ``compute.backend: vertex`` (a dry run does not).

    Returns:
        The specification, as :func:`~registry.cloud.vertex.build_job_spec` returns it.

    Raises:
        InvalidNameError: If ``model`` is not a valid name.
        ArtifactNotFoundError: If the registry has no such model.
        ConfigError: If ``compute`` is incomplete or invalid (see
            :func:`~registry.cloud.vertex.build_job_spec`).

    Example:
        >>> job_spec("digits-cnn", job_id="run1")["custom_job"]["display_name"]  # doctest: +SKIP
        'digits-cnn-run1'
    """
    model = parse_name(model)
    session = open_session(registry)
    root: Path = session.root
    known = session.known_models()
    if model not in known:
        raise ArtifactNotFoundError(model, known, kind="model")
    params = read_params(root)
    section = compute_section(params)
    if for_submit and section["backend"] != "vertex":
        raise ConfigError(
            f"compute.backend is {section['backend']!r}, so training runs on this machine; to "
            "train on Vertex AI set compute.backend: vertex in params.yaml (or run with "
            "--dry-run to see the job first)"
        )
    return build_job_spec(model, params, job_id=job_id)
