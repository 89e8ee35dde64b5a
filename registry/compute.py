"""Training in the cloud, for a model of this registry: the Vertex AI job from ``params.yaml``.

:func:`package` writes the build context of the training image (the prebuilt TensorFlow image of
``compute.vertex.image_uri`` with this repository's code, :mod:`registry.cloud.training_image`);
:func:`job_spec` reads the registry's ``compute:`` section and builds the job
(:func:`registry.cloud.vertex.build_job_spec`, pure data), naming the packaged image when
``compute.vertex.image_repository`` is set; :func:`check_image` says whether that image is one
``package`` produced; :func:`submit` sends the job. ``registry compute package MODEL`` and
``registry compute submit MODEL [--dry-run]`` are the command line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from registry import layout
from registry.cloud import training_image
from registry.cloud.training_image import TrainingImage
from registry.cloud.vertex import (
    SubmittedJob,
    build_job_spec,
    compute_section,
    find_credentials,
    image_repository,
)
from registry.cloud.vertex import submit as _submit
from registry.config import read_params
from registry.errors import ArtifactNotFoundError, ConfigError, UnpackagedImageError
from registry.grammar import parse_name
from registry.repo.session import open_session

__all__ = ["SubmittedJob", "TrainingImage", "check_image", "job_spec", "package", "submit"]

# Where `registry compute package` writes the build context by default (ignored by Git).
IMAGE_CONTEXT = (layout.SCRATCH_DIR, "vertex", "image")


def _model_root(model: str, registry: str | os.PathLike[str] | None) -> tuple[str, Path]:
    """The checked model name and the clone's root (the model must exist there)."""
    model = parse_name(model)
    session = open_session(registry)
    known = session.known_models()
    if model not in known:
        raise ArtifactNotFoundError(model, known, kind="model")
    return model, session.root


def _packaged_image(root: Path, params: dict[str, Any]) -> str | None:
    """The name ``package`` gives the image of this clone's code; ``None`` without
    ``compute.vertex.image_repository``."""
    vertex = compute_section(params)["vertex"]
    repository = image_repository(vertex)
    base = vertex.get("image_uri")
    if repository is None or not base:
        return None
    return training_image.image_name(repository, root, params, str(base))


def package(
    model: str,
    *,
    registry: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
) -> TrainingImage:
    """Write the container build context of the image that trains ``model`` on Vertex AI.

    The context holds a Dockerfile ``FROM`` the prebuilt TensorFlow image
    (``compute.vertex.image_uri``) that installs this repository's package and ``src/``, with
    :data:`registry.cloud.vertex.TRAIN_COMMAND` as its entry command (see
    :mod:`registry.cloud.training_image`); the image is recorded as produced here, so that
    :func:`job_spec` names it and :func:`check_image` accepts it.

    Args:
        model: A model of the registry (the image trains any; the name is checked).
        registry: A registry clone; default from the configuration.
        out: The context's folder (replaced whole); default ``.registry/vertex/image``.

    Returns:
        The context, the image's name and the ``gcloud builds submit --tag IMAGE CONTEXT`` line.

    Raises:
        ArtifactNotFoundError: If the registry has no such model.
        ConfigError: If ``compute.vertex.image_uri`` or ``image_repository`` is not set or
            invalid, the image's Python cannot install the repository (a ``.py310`` image), or
            the clone lacks the files the image needs.

    Example:
        >>> package("digits-cnn").build_command  # doctest: +SKIP
        'gcloud builds submit --tag us-docker.pkg.dev/my-lab/training/lab-registry-train:3f0c...'
    """
    model, root = _model_root(model, registry)
    params = read_params(root)
    vertex = compute_section(params)["vertex"]
    missing = [k for k in ("image_uri", "image_repository") if not vertex.get(k)]
    if missing:
        raise ConfigError(
            f"registry compute package needs {' and '.join('compute.vertex.' + k for k in missing)}"
            " in params.yaml: image_uri is the prebuilt TensorFlow image to build from (e.g. "
            "us-docker.pkg.dev/vertex-ai/training/tf-gpu.2-21.py311:latest), image_repository "
            "where the image goes (e.g. us-central1-docker.pkg.dev/my-lab/training)"
        )
    repository = image_repository(vertex) or ""
    dest = Path(out) if out is not None else root.joinpath(*IMAGE_CONTEXT)
    return training_image.write_context(
        root, params, base=str(vertex["image_uri"]), repository=repository, dest=dest.absolute()
    )


def check_image(
    spec: dict[str, Any], *, registry: str | os.PathLike[str] | None = None
) -> None:
    """Refuse a job whose image ``registry compute package`` did not produce in this clone.

    Args:
        spec: The job, as :func:`job_spec` builds it.
        registry: The clone it was built from.

    Raises:
        UnpackagedImageError: If the image is the prebuilt one (no
            ``compute.vertex.image_repository``) or one ``package`` did not write for this code
            (the code changed since, or it never ran here). ``--dry-run`` prints it as a warning.
    """
    session = open_session(registry)
    container = spec["custom_job"]["job_spec"]["worker_pool_specs"][0]["container_spec"]
    image = str(container["image_uri"])
    model = next(
        (e["value"] for e in container.get("env", []) if e["name"] == "REGISTRY_MODEL"), "MODEL"
    )
    if image in training_image.packaged_images(session.root):
        return
    vertex = compute_section(read_params(session.root))["vertex"]
    reason = (
        "compute.vertex.image_repository is not set, so the job runs the prebuilt image_uri"
        if image_repository(vertex) is None
        else "the code changed since it was packaged, or it was never packaged in this clone"
    )
    raise UnpackagedImageError(image, model, reason)


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
        The specification, as :func:`~registry.cloud.vertex.build_job_spec` returns it. With
        ``compute.vertex.image_repository`` set, its image is the one :func:`package` names for
        this clone's code (whether it was packaged: :func:`check_image`).

    Raises:
        InvalidNameError: If ``model`` is not a valid name.
        ArtifactNotFoundError: If the registry has no such model.
        ConfigError: If ``compute`` is incomplete or invalid (see
            :func:`~registry.cloud.vertex.build_job_spec`).

    Example:
        >>> job_spec("digits-cnn", job_id="run1")["custom_job"]["display_name"]  # doctest: +SKIP
        'digits-cnn-run1'
    """
    model, root = _model_root(model, registry)
    params = read_params(root)
    section = compute_section(params)
    if for_submit and section["backend"] != "vertex":
        raise ConfigError(
            f"compute.backend is {section['backend']!r}, so training runs on this machine; to "
            "train on Vertex AI set compute.backend: vertex in params.yaml (or run with "
            "--dry-run to see the job first)"
        )
    return build_job_spec(model, params, job_id=job_id, image=_packaged_image(root, params))


def submit(
    spec: dict[str, Any],
    *,
    registry: str | os.PathLike[str] | None = None,
    credentials: Any = None,
    timeout: float = 120.0,
) -> SubmittedJob:
    """Submit a job built by :func:`job_spec` to Vertex AI; return without waiting for it.

    In order: credentials (fast, offline: :func:`registry.cloud.vertex.find_credentials`), the
    job's image (:func:`check_image`), then :func:`registry.cloud.vertex.submit`.

    Args:
        spec: The job, as :func:`job_spec` builds it.
        registry: The clone it was built from (for :func:`check_image`).
        credentials: Google credentials; default: Application Default Credentials.
        timeout: Seconds to wait for Vertex AI to accept the job.

    Raises:
        CredentialsError: If no credentials are configured, or Google refuses them.
        UnpackagedImageError: If the image is not one ``registry compute package`` produced.
        RemoteError: If Vertex AI cannot be reached or refuses the job.
        MissingDependencyError: If google-cloud-aiplatform is not installed.
    """
    if credentials is None:
        credentials = find_credentials(spec.get("project"))
    check_image(spec, registry=registry)
    return _submit(spec, credentials=credentials, timeout=timeout)
