"""Training in the cloud, for a model of this registry: the Vertex AI job from ``params.yaml``,
the image it runs, what the job gives back, and bringing it into the zoo.

:func:`package` writes the build context of the training image (the prebuilt TensorFlow image of
``compute.vertex.image_uri`` with this repository's code, :mod:`registry.cloud.training_image`);
:func:`job_spec` reads the registry's ``compute:`` section and builds the job
(:func:`registry.cloud.vertex.build_job_spec`, pure data), naming the packaged image when
``compute.vertex.image_repository`` is set; :func:`check_image` says whether that image is one
``package`` produced; :func:`submit` sends the job. ``registry compute package MODEL`` and
``registry compute submit MODEL [--dry-run]`` are the command line.

Inside the job, the training entry point (``python -m src.zoo.train MODEL``) finds what Vertex AI
gives it with :meth:`VertexEnvironment.from_environ` (``AIP_MODEL_DIR``, ``REGISTRY_DATA_URI``,
``AIP_TENSORBOARD_LOG_DIR``), checks the data URI against the registry's DVC remote
(:func:`check_data_uri`) and writes its output with :func:`write_job_output`: the weights,
``training.json`` (metrics), ``training.csv`` (one row an epoch), ``lineage.json`` (the record a
release makes, with the dataset hashes, commit, params, strategy and machine), and last
``registry-job.json``, the completion marker listing every file's MD5.

``registry compute fetch MODEL JOB_ID_OR_URI`` (:func:`fetch`) refuses an output without that
marker or whose files are not the ones it lists, and a model whose training datasets are not
released here; otherwise it puts the weights in ``models/MODEL/``, tracks them with DVC and
records metrics and lineage as local training does, so that ``registry models release MODEL``
follows.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry import layout
from registry.atomic import atomic_write_text
from registry.cards import CardError, parse_card, render_card
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
from registry.errors import (
    ArtifactNotFoundError,
    ConfigError,
    IncompleteJobOutputError,
    UnpackagedImageError,
    UnreleasedTrainingDataError,
)
from registry.grammar import parse_name, parse_version
from registry.repo.session import Session, open_session
from registry.storage.hashes import hash_file

if TYPE_CHECKING:
    from registry.datasets import DatasetVersion

__all__ = [
    "COMPLETION_MARKER",
    "DATA_URI_ENV",
    "LINEAGE_FILE",
    "MODEL_DIR_ENV",
    "TENSORBOARD_ENV",
    "FetchedModel",
    "SubmittedJob",
    "TrainingImage",
    "VertexEnvironment",
    "check_data_uri",
    "check_image",
    "fetch",
    "image_commit",
    "job_output_uri",
    "job_spec",
    "package",
    "submit",
    "write_job_output",
]

# What Vertex AI sets in a custom job's container (and the job spec's own variable).
MODEL_DIR_ENV = "AIP_MODEL_DIR"  # gs://<base_output_dir>/model/
TENSORBOARD_ENV = "AIP_TENSORBOARD_LOG_DIR"  # gs://<base_output_dir>/logs/
DATA_URI_ENV = "REGISTRY_DATA_URI"  # compute.vertex.data_uri: the registry's DVC remote
# What a job writes to AIP_MODEL_DIR; the marker last, so that its presence means "finished".
WEIGHTS_FILE = "model.keras"
METRICS_FILE = "training.json"
HISTORY_FILE = "training.csv"
LINEAGE_FILE = "lineage.json"
COMPLETION_MARKER = "registry-job.json"
_MARKER_FORMAT = 1
_REQUIRED_FILES = (WEIGHTS_FILE, METRICS_FILE, LINEAGE_FILE)


# Where `registry compute package` writes the build context by default (ignored by Git).
IMAGE_CONTEXT = (layout.SCRATCH_DIR, "vertex", "image")


def _model_session(model: str, registry: str | os.PathLike[str] | None) -> tuple[str, Session]:
    """The checked model name and the clone's session (the model must exist there)."""
    model = parse_name(model)
    session = open_session(registry)
    known = session.known_models()
    if model not in known:
        raise ArtifactNotFoundError(model, known, kind="model")
    return model, session


def image_commit(session: Session) -> tuple[str | None, list[str]]:
    """The commit holding the code the training image takes, and the image's source paths with
    uncommitted changes.

    The commit is the newest that changed the image's sources
    (:data:`~registry.cloud.training_image.SOURCE_PATHS`: ``registry/``, ``src/``,
    ``pyproject.toml`` ...), so a commit elsewhere (a dataset, a card) keeps the image's name. If
    one of those paths has uncommitted changes, no commit holds that code: ``None`` and the paths.

    Example:
        >>> image_commit(open_session("."))  # doctest: +SKIP
        ('4c1d2e...', [])
    """
    repo = session.repo
    paths = training_image.SOURCE_PATHS
    status = repo.git("status", "--porcelain", "--untracked-files=all", "-z", "--", *paths,
                      check=False)
    dirty = sorted(entry[3:] for entry in status.split("\0") if entry[3:])
    if dirty:
        return None, dirty
    commit = repo.git("log", "-1", "--format=%H", "--", *paths, check=False).strip()
    return (commit or None), []


def _registry_url(session: Session) -> str | None:
    """The clone's ``origin`` Git URL (what a job clones the registry from by default)."""
    remote = session.repo.push_remote()
    if remote is None:
        return None
    return session.repo.git("remote", "get-url", remote, check=False).strip() or None


def _packaged_image(session: Session, params: dict[str, Any]) -> str | None:
    """The name ``package`` gives the image of this clone's code; ``None`` without
    ``compute.vertex.image_repository``."""
    vertex = compute_section(params)["vertex"]
    repository = image_repository(vertex)
    base = vertex.get("image_uri")
    if repository is None or not base:
        return None
    commit, _ = image_commit(session)
    return training_image.image_name(repository, session.root, params, str(base), commit)


def package(
    model: str,
    *,
    registry: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
) -> TrainingImage:
    """Write the container build context of the image that trains ``model`` on Vertex AI.

    The context holds a Dockerfile ``FROM`` the prebuilt TensorFlow image
    (``compute.vertex.image_uri``) that installs this repository's package and ``src/``, with
    :data:`registry.cloud.vertex.TRAIN_COMMAND` as its entry command and ``REGISTRY_COMMIT``
    set to the commit holding that code (:func:`image_commit`), which a job's lineage names (see
    :mod:`registry.cloud.training_image`); the image is recorded as produced here, so that
    :func:`job_spec` names it and :func:`check_image` accepts it.

    Args:
        model: A model of the registry (the image trains any; the name is checked).
        registry: A registry clone; default from the configuration.
        out: The context's folder (replaced whole); default ``.registry/vertex/image``.

    Returns:
        The context, the image's name, the ``gcloud builds submit --tag IMAGE CONTEXT`` line,
        the commit set in the image, and the image's paths with uncommitted changes (then no
        commit is set: commit them and package again).

    Raises:
        ArtifactNotFoundError: If the registry has no such model.
        ConfigError: If ``compute.vertex.image_uri`` or ``image_repository`` is not set or
            invalid, the image's Python cannot install the repository (a ``.py310`` image), or
            the clone lacks the files the image needs.

    Example:
        >>> package("digits-cnn").build_command  # doctest: +SKIP
        'gcloud builds submit --tag us-docker.pkg.dev/my-lab/training/lab-registry-train:3f0c...'
    """
    model, session = _model_session(model, registry)
    root = session.root
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
    commit, uncommitted = image_commit(session)
    written = training_image.write_context(
        root, params, base=str(vertex["image_uri"]), repository=repository,
        dest=dest.absolute(), commit=commit,
    )
    return dataclasses.replace(written, uncommitted=tuple(uncommitted))


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
        this clone's code (whether it was packaged: :func:`check_image`). Its ``REGISTRY_URL``
        (where the job clones the registry from) is ``compute.vertex.registry_url``, else the
        clone's ``origin`` URL.

    Raises:
        InvalidNameError: If ``model`` is not a valid name.
        ArtifactNotFoundError: If the registry has no such model.
        ConfigError: If ``compute`` is incomplete or invalid, or the registry's URL holds a
            password or token (see :func:`~registry.cloud.vertex.build_job_spec`).

    Example:
        >>> job_spec("digits-cnn", job_id="run1")["custom_job"]["display_name"]  # doctest: +SKIP
        'digits-cnn-run1'
    """
    model, session = _model_session(model, registry)
    params = read_params(session.root)
    section = compute_section(params)
    if for_submit and section["backend"] != "vertex":
        raise ConfigError(
            f"compute.backend is {section['backend']!r}, so training runs on this machine; to "
            "train on Vertex AI set compute.backend: vertex in params.yaml (or run with "
            "--dry-run to see the job first)"
        )
    return build_job_spec(
        model,
        params,
        job_id=job_id,
        image=_packaged_image(session, params),
        registry_url=_registry_url(session),
    )


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


# -- inside the job: what Vertex AI gives, what the job gives back -------------------------------


@dataclass(frozen=True)
class VertexEnvironment:
    """What Vertex AI gives a custom job's container, read from its environment.

    Attributes:
        model_dir: ``AIP_MODEL_DIR``: where the job's output goes (``gs://.../model/``).
        data_uri: ``REGISTRY_DATA_URI`` (``compute.vertex.data_uri``): the ``gs://`` URL of the
            registry's DVC remote the datasets are read from; ``None`` if not set.
        tensorboard_dir: ``AIP_TENSORBOARD_LOG_DIR``: where TensorBoard logs go, or ``None``.
    """

    model_dir: str
    data_uri: str | None
    tensorboard_dir: str | None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> VertexEnvironment | None:
        """The job's environment, or ``None`` when ``AIP_MODEL_DIR`` is not set (not on Vertex).

        Raises:
            ConfigError: If a variable that is set is not a ``gs://`` path.

        Example:
            >>> VertexEnvironment.from_environ({"AIP_MODEL_DIR": "gs://lab/t/m/1/model/"})
            VertexEnvironment(model_dir='gs://lab/t/m/1/model', data_uri=None, tensorboard_dir=None)
        """
        from registry.cloud.names import check_gs_path

        env = os.environ if environ is None else environ

        def read(name: str, example: str) -> str | None:
            value = (env.get(name) or "").strip()
            if not value:
                return None
            return check_gs_path(value, f"the environment variable {name}", "", example)

        model_dir = read(MODEL_DIR_ENV, "gs://my-lab-vertex/training/digits-cnn/1/model")
        if model_dir is None:
            return None
        return cls(
            model_dir=model_dir,
            data_uri=read(DATA_URI_ENV, "gs://my-lab-registry/dvc"),
            tensorboard_dir=read(TENSORBOARD_ENV, "gs://my-lab-vertex/training/m/1/logs"),
        )


def _same_url(a: str, b: str) -> bool:
    def norm(url: str) -> str:
        return url.replace("gcs://", "gs://", 1).rstrip("/")

    return norm(a) == norm(b)


def check_data_uri(data_uri: str | None, *, registry: str | os.PathLike[str] | None = None) -> str:
    """Check that the registry's DVC remote can be read, and is ``data_uri`` when one is given.

    A job loads its datasets by registry reference, so their bytes come from the remote that the
    registry's committed ``.dvc/config`` names; ``data_uri`` (``compute.vertex.data_uri``) says
    which one the job's service account was given. Checked before training starts.

    Args:
        data_uri: The ``gs://`` URL the job was told to read from, or ``None``.
        registry: The registry (its Git URL, inside a job); default from the configuration.

    Returns:
        The remote's URL.

    Raises:
        ConfigError: If the registry's remote is another one.
        CredentialsError, RemoteError: If the remote cannot be read.
    """
    from registry.remotes import check_remote

    status = check_remote(registry=registry)
    if data_uri is not None and not _same_url(status.url, data_uri):
        raise ConfigError(
            f"{DATA_URI_ENV} is {data_uri}, but the registry's DVC remote {status.name!r} is "
            f"{status.url}: set compute.vertex.data_uri in params.yaml to {status.url} (the "
            "remote the datasets are released to)"
        )
    return status.url


def _code_commit() -> str | None:
    """The commit of the code this job runs: the Git work tree it runs in, else
    ``REGISTRY_COMMIT`` (set by the image build), else ``None``."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        done = None
    if done is not None and done.returncode == 0 and done.stdout.strip():
        return done.stdout.strip()
    return os.environ.get("REGISTRY_COMMIT") or None


def _machine(accelerators: Sequence[str]) -> dict[str, Any]:
    """The machine the job ran on, as far as the container sees it."""
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "accelerators": list(accelerators),
        "vertex_job": os.environ.get("CLOUD_ML_JOB_ID"),
    }


def _upload(path: Path, url: str) -> None:
    from registry.cloud.gcs import upload_file

    upload_file(path, url)


def write_job_output(
    environment: VertexEnvironment,
    model: str,
    folder: str | os.PathLike[str],
    *,
    datasets: Sequence[DatasetVersion],
    base_model: str | None,
    params: Mapping[str, Any],
    training: Mapping[str, Any] | None,
    strategy: str,
    accelerators: Sequence[str] = (),
    logs: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Write a finished job's output to ``AIP_MODEL_DIR``: its files, the lineage, then the
    completion marker.

    ``folder`` holds what training wrote: ``model.keras``, ``training.json`` and optionally
    ``training.csv``. The lineage record has the shape of a model release's (artifact, commit,
    datasets, base model, params, training, compute, weights) and adds ``data`` (each dataset
    version with its DVC hash and the remote it came from) and ``job`` (where it wrote).

    Args:
        environment: What Vertex AI gave the job.
        model: The model trained.
        folder: The local folder training wrote to.
        datasets: The dataset versions it trained on, as ``registry.datasets.locate_dataset``
            describes them (name, version, hash).
        base_model: The exact base model version, or ``None``.
        params: The training knobs (epochs, batch size, learning rate, seed, dataset ...).
        training: The TensorFlow version and determinism settings (the card's ``training``).
        strategy: The ``tf.distribute`` strategy, in words.
        accelerators: The GPUs or TPU cores TensorFlow saw.
        logs: A local folder of TensorBoard logs, uploaded to ``AIP_TENSORBOARD_LOG_DIR``
            (ignored when Vertex AI gives none).

    Returns:
        The lineage record written.

    Raises:
        NotBuiltError: If ``folder`` lacks the weights or metrics.
        RemoteError, CredentialsError: If Cloud Storage refuses the upload.
    """
    from registry.errors import NotBuiltError

    folder = Path(folder)
    for name in (WEIGHTS_FILE, METRICS_FILE):
        if not (folder / name).is_file():
            raise NotBuiltError(f"the job wrote no {name} in {folder}: training did not finish")
    lineage: dict[str, Any] = {
        "artifact": model,
        "kind": "model",
        "commit": _code_commit(),
        "datasets": {d.name: d.version for d in datasets},
        "base_model": base_model,
        "params": dict(params),
        "training_run": None,
        "training": dict(training) if training is not None else None,
        "compute": {"backend": "vertex", "strategy": strategy, "machine": _machine(accelerators)},
        "weights": {"path": WEIGHTS_FILE, "md5": hash_file(folder / WEIGHTS_FILE)},
        "data": [
            {"dataset": d.reference, "md5": d.md5, "uri": environment.data_uri} for d in datasets
        ],
        "job": {
            "model_dir": environment.model_dir,
            "tensorboard_log_dir": environment.tensorboard_dir,
        },
    }
    atomic_write_text(folder / LINEAGE_FILE, json.dumps(lineage, indent=2, sort_keys=True) + "\n")
    files = [n for n in (WEIGHTS_FILE, METRICS_FILE, HISTORY_FILE, LINEAGE_FILE)
             if (folder / n).is_file()]
    for name in files:
        _upload(folder / name, f"{environment.model_dir}/{name}")
    if logs is not None and environment.tensorboard_dir is not None:
        for path in sorted(p for p in Path(logs).rglob("*") if p.is_file()):
            rel = path.relative_to(logs).as_posix()
            _upload(path, f"{environment.tensorboard_dir}/{rel}")
    marker = {
        "format": _MARKER_FORMAT,
        "model": model,
        "finished": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": {name: hash_file(folder / name) for name in files},
    }
    atomic_write_text(folder / COMPLETION_MARKER, json.dumps(marker, indent=2) + "\n")
    _upload(folder / COMPLETION_MARKER, f"{environment.model_dir}/{COMPLETION_MARKER}")
    return lineage


# -- bringing a job's output back ---------------------------------------------------------------


@dataclass(frozen=True)
class FetchedModel:
    """A cloud job's output, brought into the clone by :func:`fetch`.

    Attributes:
        model: The model.
        uri: The job's output folder it came from.
        weights: The weights in ``models/<model>/``, tracked by DVC.
        tracked: How DVC tracks them: ``dvc add``, or ``stage train@<model>`` (a stage's output).
        metrics: The test metrics, as written to the card.
        datasets: The dataset versions it was trained on (``name:X.Y.Z``).
        base_model: Its base model version, or ``None``.
        commit: The commit of the code the job ran, if it knew it.
    """

    model: str
    uri: str
    weights: Path
    tracked: str
    metrics: dict[str, Any]
    datasets: list[str]
    base_model: str | None
    commit: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for ``--json``."""
        return {**self.__dict__, "weights": str(self.weights)}


def job_output_uri(
    model: str, job: str, *, registry: str | os.PathLike[str] | None = None
) -> str:
    """The ``AIP_MODEL_DIR`` of ``model``'s job ``job``: a job id, or its ``gs://`` folder.

    A job id is found where ``registry compute submit`` sent the job:
    ``<compute.vertex.output_uri>/<model>/<job id>/model`` (its ``base_output_directory`` and
    the ``model/`` folder Vertex AI gives it). A ``gs://`` folder is the job's base output
    directory or its ``model/`` folder.

    Raises:
        ConfigError: If the id cannot be resolved (``compute.vertex`` incomplete) or a URI is
            not a valid ``gs://`` path.
    """
    from registry.cloud.names import check_gs_path

    if job.startswith("gs://"):
        uri = check_gs_path(job, "JOB_ID_OR_URI", "", "gs://my-lab-vertex/training/m/1/model")
        return uri if uri.rsplit("/", 1)[-1] == "model" else f"{uri}/model"
    spec = job_spec(model, registry=registry, job_id=job)
    return f"{spec['custom_job']['job_spec']['base_output_directory']['output_uri_prefix']}/model"


def fetch(
    model: str, job: str, *, registry: str | os.PathLike[str] | None = None
) -> FetchedModel:
    """Bring the output of the cloud job that trained ``model`` into the registry clone.

    Checks, then hands off: the output must be a finished job's (the completion marker, and
    every file it lists with its MD5), for this model, trained on dataset versions released here
    with the bytes it recorded; then the weights go to ``models/<model>/<card's weights>`` and
    are tracked by DVC (:func:`registry.models.track_weights`), the card gets ``datasets``,
    ``base_model``, ``metrics`` and ``training`` as local training writes them,
    ``training.json`` / ``training.csv`` are written beside it, and the job's lineage is kept
    in ``models/<model>/job.json`` for the release to record. Commit, then
    ``registry models release MODEL``.

    Args:
        model: A model of the registry (with its card).
        job: A job id (see :func:`job_output_uri`) or the job's ``gs://`` output folder.
        registry: A registry clone; default from the configuration.

    Returns:
        What was fetched.

    Raises:
        ArtifactNotFoundError: If the registry has no such model.
        IncompleteJobOutputError: If the output is missing, unfinished, or lacks (or has other
            bytes for) its weights, metrics or lineage.
        UnreleasedTrainingDataError: If a training dataset version is not released here, or
            its released bytes are not the ones the job recorded.
        CardError: If the card's ``weights`` is not a ``.keras`` file.
        ConfigError: If a job id cannot be resolved.
        RemoteError, CredentialsError: If Cloud Storage cannot be read.
        DvcError: If DVC cannot track the weights.

    Example:
        >>> fetch("digits-cnn", "20261130-120000")  # doctest: +SKIP
        FetchedModel(model='digits-cnn', uri='gs://my-lab-vertex/training/digits-cnn/...', ...)
    """
    model = parse_name(model)
    session = open_session(registry)
    if model not in session.known_models():
        raise ArtifactNotFoundError(model, session.known_models(), kind="model")
    uri = job_output_uri(model, job, registry=session.root)
    weights_name = _card_weights(session.root, model)
    staging = session.root / ".registry" / "fetch"
    staging.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=staging) as tmp:
        output = Path(tmp)
        lineage, history = _download_job_output(uri, model, output)
        _check_training_data(session, model, lineage)
        return _install(session.root, model, uri, weights_name, output, lineage, history)


def _card_weights(root: Path, model: str) -> str:
    """The card's ``weights`` file name: where the job's ``model.keras`` goes."""
    path = root / layout.card_file(model)
    card = parse_card(path.read_text(encoding="utf-8"), where=layout.card_file(model))
    weights = str(card.get("weights") or WEIGHTS_FILE)
    if not weights.endswith(".keras") or "/" in weights:
        raise CardError(
            f"{layout.card_file(model)}: weights {weights!r} must be a .keras file in the model's "
            "folder to receive a cloud job's weights (model.keras)"
        )
    return weights


def _incomplete(uri: str, problem: str) -> IncompleteJobOutputError:
    return IncompleteJobOutputError(
        uri,
        problem,
        "see the job's state and logs in the Vertex AI console (a failed or cancelled job "
        "never writes its marker), and fetch once it has succeeded, or train again",
    )


def _download_job_output(
    uri: str, model: str, dest: Path
) -> tuple[dict[str, Any], bool]:
    """Download a finished job's output into ``dest`` and check it against its marker; return
    the lineage and whether a ``training.csv`` came with it."""
    from registry.cloud.gcs import download_folder, list_folder

    names = list_folder(uri)
    if not names:
        raise IncompleteJobOutputError(
            uri,
            "there is nothing there",
            "check the job id or URI (registry compute submit printed the output folder); a "
            "job that has not started writes nothing",
        )
    if COMPLETION_MARKER not in names:
        missing = [n for n in _REQUIRED_FILES if n not in names]
        state = f" ({', '.join(missing)} missing)" if missing else ""
        raise _incomplete(
            uri, f"it has no completion marker {COMPLETION_MARKER}, so the job has not finished"
            f"{state}"
        )
    download_folder(uri, dest)
    try:
        marker = json.loads((dest / COMPLETION_MARKER).read_text(encoding="utf-8"))
        listed = dict(marker["files"])
    except (ValueError, KeyError, TypeError) as e:
        raise _incomplete(uri, f"its marker {COMPLETION_MARKER} cannot be read ({e})") from None
    for name in _REQUIRED_FILES:
        if name not in listed:
            raise _incomplete(uri, f"its marker lists no {name}")
    for name in listed:
        if not isinstance(name, str) or "/" in name or name in ("", ".", ".."):
            raise _incomplete(uri, f"its marker lists {name!r}, which is not a file of the job")
    for name, md5 in listed.items():
        path = dest / name
        if not path.is_file():
            raise _incomplete(uri, f"{name} is missing, though the job's marker lists it")
        if hash_file(path) != md5:
            raise _incomplete(uri, f"{name} is not the file the job wrote (its MD5 differs)")
    if marker.get("model") != model:
        raise IncompleteJobOutputError(
            uri,
            f"it is the output of a job for {marker.get('model')!r}, not {model!r}",
            f"fetch it as 'registry compute fetch {marker.get('model')} {uri}'",
        )
    try:
        lineage = json.loads((dest / LINEAGE_FILE).read_text(encoding="utf-8"))
    except ValueError as e:
        raise _incomplete(uri, f"its {LINEAGE_FILE} is not JSON ({e})") from None
    if not isinstance(lineage, dict) or not isinstance(lineage.get("datasets"), dict):
        raise _incomplete(uri, f"its {LINEAGE_FILE} names no training datasets")
    if (lineage.get("weights") or {}).get("md5") != listed[WEIGHTS_FILE]:
        raise _incomplete(uri, f"its {LINEAGE_FILE} describes other weights than {WEIGHTS_FILE}")
    return lineage, HISTORY_FILE in listed


def _check_training_data(session: Session, model: str, lineage: Mapping[str, Any]) -> None:
    """Each training dataset version is released here, with the bytes the job trained on."""
    from registry.datasets import released_data_hash

    hashes = {
        str(d.get("dataset")): d.get("md5")
        for d in lineage.get("data") or []
        if isinstance(d, dict)
    }
    index = session.index()
    for name, version in lineage["datasets"].items():
        reference = f"{name}:{version}"
        release = index.find(name, parse_version(str(version)))
        if release is None:
            raise UnreleasedTrainingDataError(model, reference, "this registry has not released")
        if release.yanked:
            raise UnreleasedTrainingDataError(model, reference, "is yanked here")
        recorded = hashes.get(reference)
        if recorded is not None and recorded != released_data_hash(session, release):
            raise UnreleasedTrainingDataError(
                model, reference, "this registry released with other bytes"
            )


def _install(
    root: Path,
    model: str,
    uri: str,
    weights_name: str,
    output: Path,
    lineage: dict[str, Any],
    history: bool,
) -> FetchedModel:
    """Put the checked output in ``models/<model>/`` as local training leaves it."""
    from registry.models import check_stage_inputs, job_record_file, track_weights

    folder = root / layout.model_dir(model)
    weights = folder / weights_name
    inputs = {
        layout.prepared_dir(str(d["dataset"]).split(":", 1)[0]): (str(d["dataset"]), str(d["md5"]))
        for d in lineage.get("data") or []
        if isinstance(d, dict) and d.get("dataset") and d.get("md5")
    }
    check_stage_inputs(root, model, weights, inputs)  # before anything changes
    os.replace(output / WEIGHTS_FILE, weights)
    shutil.copyfile(output / METRICS_FILE, folder / METRICS_FILE)
    if history:
        shutil.copyfile(output / HISTORY_FILE, folder / HISTORY_FILE)
    summary = json.loads((folder / METRICS_FILE).read_text(encoding="utf-8"))
    metrics = dict(summary.get("test") or {}) if isinstance(summary, dict) else {}
    datasets = [f"{n}:{v}" for n, v in lineage["datasets"].items()]
    base = lineage.get("base_model")
    card_path = root / layout.card_file(model)
    card = parse_card(card_path.read_text(encoding="utf-8"), where=layout.card_file(model))
    meta = {
        **card.meta,
        "datasets": datasets,
        "base_model": base,
        "metrics": metrics,
        "training": lineage.get("training"),
    }
    atomic_write_text(card_path, render_card(meta, card.body))
    record = {**lineage, "uri": uri}
    # The path the weights have in the clone (the card's), as a release records it.
    path = weights.relative_to(root).as_posix()
    record["weights"] = {**(lineage.get("weights") or {}), "path": path}
    atomic_write_text(
        job_record_file(root, model), json.dumps(record, indent=2, sort_keys=True) + "\n"
    )
    tracked = track_weights(root, model, weights)
    return FetchedModel(
        model=model,
        uri=uri,
        weights=weights,
        tracked=tracked,
        metrics=metrics,
        datasets=datasets,
        base_model=str(base) if base else None,
        commit=lineage.get("commit"),
    )
