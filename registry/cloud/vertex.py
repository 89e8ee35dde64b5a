"""Training in the cloud: a Vertex AI custom job built from ``compute:`` in ``params.yaml``.

The job is described by data alone: :func:`build_job_spec` turns the ``compute.vertex`` section
and a model name into the exact CustomJob that Vertex AI receives (its worker pool with the machine,
GPUs or TPU slice, the container image, command and arguments, the Cloud Storage folder it writes
to and the service account it runs as). ``registry compute submit MODEL --dry-run`` prints it;
:func:`submit` sends it with ``google-cloud-aiplatform``.

Credentials never appear in ``params.yaml`` or in the job: they are Google's Application Default
Credentials, found by :func:`google.auth.default` (``gcloud auth application-default login``, or
``GOOGLE_APPLICATION_CREDENTIALS`` naming a key file kept outside the repository, or the
metadata server of a Google Cloud machine).

The section, with the values a GPU job might use (every key is documented in ``params.yaml``)::

    compute:
      backend: vertex
      vertex:
        project: my-lab
        region: us-central1
        staging_bucket: gs://my-lab-vertex/staging
        machine_type: g2-standard-8
        accelerator_type: NVIDIA_L4
        accelerator_count: 1
        image_uri: us-docker.pkg.dev/vertex-ai/training/tf-gpu.2-17.py310:latest
        image_repository: us-central1-docker.pkg.dev/my-lab/training
        command: [python, -m, src.zoo.train]
        args: ["{model}", --epochs, "10"]
        output_uri: gs://my-lab-vertex/training
        registry_url: git@github.com:my-lab/registry.git   # default: the clone's origin

``image_uri`` is the prebuilt TensorFlow image; with ``image_repository`` set, the job runs the
image that ``registry compute package`` builds FROM it with this repository's code instead
(:mod:`registry.cloud.training_image`). An empty ``command`` is :data:`TRAIN_COMMAND`.

A TPU v5e job sets ``machine_type: ct5lp-hightpu-4t`` (and optionally
``accelerator_type: TPU_V5_LITEPOD``, ``tpu_topology: 2x2``) instead.
"""

from __future__ import annotations

import copy
import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from registry.cloud import names
from registry.cloud.credentials import credentials_help
from registry.cloud.credentials import find_credentials as _find_credentials
from registry.errors import (
    ConfigError,
    CredentialsError,
    MissingDependencyError,
    RemoteError,
)

__all__ = [
    "ACCELERATOR_TYPES",
    "BACKENDS",
    "TRAIN_COMMAND",
    "CredentialsError",
    "SubmittedJob",
    "build_job_spec",
    "compute_section",
    "find_credentials",
    "image_repository",
    "submit",
    "to_custom_job",
]

BACKENDS = ("local", "vertex")
SECTION = "compute.vertex"
_FILE = "params.yaml"
_WHERE = "in params.yaml under compute: vertex:"

# GPU -> the machine families it attaches to (Vertex AI "configure compute" table).
_GPU_MACHINES: dict[str, tuple[str, ...]] = {
    "NVIDIA_TESLA_K80": ("n1-",),
    "NVIDIA_TESLA_P4": ("n1-",),
    "NVIDIA_TESLA_P100": ("n1-",),
    "NVIDIA_TESLA_V100": ("n1-",),
    "NVIDIA_TESLA_T4": ("n1-",),
    "NVIDIA_TESLA_A100": ("a2-highgpu-", "a2-megagpu-"),
    "NVIDIA_A100_80GB": ("a2-ultragpu-",),
    "NVIDIA_L4": ("g2-standard-",),
    "NVIDIA_H100_80GB": ("a3-highgpu-",),
    "NVIDIA_H100_MEGA_80GB": ("a3-megagpu-",),
    "NVIDIA_H200_141GB": ("a3-ultragpu-",),
    "NVIDIA_B200": ("a4-highgpu-",),
    "NVIDIA_GB200": ("a4x-highgpu-",),
    "NVIDIA_RTX_PRO_6000": ("g4-standard-",),
}
# TPU VMs: the machine type carries the chips; the job gives the slice shape (tpu_topology).
# prefix -> (accelerator it is, default topology per chips-per-host).
_TPU_VMS: dict[str, tuple[str | None, dict[int, str]]] = {
    "ct5lp-hightpu-": ("TPU_V5_LITEPOD", {1: "1x1", 4: "2x2", 8: "2x4"}),
    "ct5p-hightpu-": (None, {4: "2x2x1"}),  # TPU v5p (no AcceleratorType value of its own)
    "ct6e-standard-": (None, {1: "1x1", 4: "2x2", 8: "2x4"}),  # TPU v6e
}
# Legacy TPU nodes: machine type ``cloud-tpu`` with an accelerator type and count.
_CLOUD_TPU = "cloud-tpu"
_CLOUD_TPU_COUNTS = {"TPU_V2": 8, "TPU_V3": 8, "TPU_V4_POD": 4}
ACCELERATOR_TYPES = tuple(sorted({*_GPU_MACHINES, *_CLOUD_TPU_COUNTS, "TPU_V5_LITEPOD"}))

_REQUIRED = ("project", "region", "staging_bucket", "machine_type", "image_uri", "output_uri")
_KEYS = (
    *_REQUIRED,
    "accelerator_type",
    "accelerator_count",
    "tpu_topology",
    "replica_count",
    "boot_disk_size_gb",
    "command",
    "args",
    "service_account",
    "data_uri",
    "image_repository",
    "registry_url",
)
_PLACEHOLDERS = ("model", "job_id", "output_dir", "data_uri")
DEFAULT_ARGS = ("{model}",)
# The training entry command: the ENTRYPOINT of the image `registry compute package` writes
# (registry/cloud/training_image.py), and a job's command when compute.vertex.command is empty.
# `python -m src.zoo.train MODEL ...` from the image's working folder, the context's root.
TRAIN_COMMAND: tuple[str, ...] = ("python", "-m", "src.zoo.train")
DEFAULT_BOOT_DISK_GB = 100

_PREBUILT_EXAMPLE = "us-docker.pkg.dev/vertex-ai/training/tf-gpu.2-17.py310:latest"
_TOPOLOGY_RE = re.compile(r"^[1-9][0-9]*(x[1-9][0-9]*){1,2}$")
_JOB_ID_START_RE = re.compile(r"^[a-z0-9]")


@dataclass(frozen=True)
class SubmittedJob:
    """A custom job that Vertex AI accepted.

    Attributes:
        name: Its resource name, ``projects/<number>/locations/<region>/customJobs/<id>``.
        display_name: ``<model>-<job id>``.
        output_dir: Where it writes (Vertex sets ``AIP_MODEL_DIR`` to ``<output_dir>/model/``).
        console_url: The job's page in the Google Cloud console.
    """

    name: str
    display_name: str
    output_dir: str
    console_url: str


# -- the specification ----------------------------------------------------------------------------


def _key(name: str) -> str:
    return f"{SECTION}.{name}"


def _text(vertex: Mapping[str, Any], name: str) -> str | None:
    value = vertex.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{_key(name)} must be a string, not {value!r}; fix it {_WHERE}")
    return value.strip()


def _count(vertex: Mapping[str, Any], name: str) -> int | None:
    value = vertex.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"{_key(name)} must be a positive whole number, not {value!r}; fix it {_WHERE}"
        )
    return value


def _strings(vertex: Mapping[str, Any], name: str) -> list[str] | None:
    value = vertex.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
    ):
        raise ConfigError(
            f"{_key(name)} must be a list of strings, e.g. [python, -m, src.zoo.train], not "
            f"{value!r}; fix it {_WHERE}"
        )
    return [str(v) for v in value]


def _gcs(vertex: Mapping[str, Any], name: str, example: str) -> str | None:
    value = _text(vertex, name)
    return None if value is None else names.check_gs_path(value, _key(name), _FILE, example)


def _registry_url(vertex: Mapping[str, Any], default: str | None) -> str | None:
    """``compute.vertex.registry_url``, else ``default`` (the clone's ``origin``): the Git URL a
    job clones the registry from, set as its ``REGISTRY_URL``; refused if it holds a password or
    token, which would land in the job spec."""
    from urllib.parse import urlsplit

    value = _text(vertex, "registry_url")
    where = _key("registry_url") if value is not None else "the clone's origin remote URL"
    url = value if value is not None else default
    if url is None:
        return None
    if "://" in url and urlsplit(url).password is not None:
        raise ConfigError(
            f"{where} holds a password or token, which would go into the Vertex AI job: set "
            f"{_key('registry_url')} to the registry's Git URL without it (e.g. "
            "https://github.com/my-lab/registry.git, or git@github.com:my-lab/registry.git) and "
            "give the job's service account read access instead"
        )
    return url


def compute_section(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``compute:`` section of ``params``, checked for shape and backend.

    Raises:
        ConfigError: If it is not a mapping, names an unknown backend or has unknown keys.
    """
    compute = params.get("compute") or {}
    if not isinstance(compute, Mapping):
        raise ConfigError(f"'compute' in params.yaml must be a mapping, not {compute!r}")
    backend = compute.get("backend") or "local"
    if backend not in BACKENDS:
        raise ConfigError(
            f"compute.backend is {backend!r}; it must be one of {', '.join(BACKENDS)} "
            "(in params.yaml under compute:)"
        )
    vertex = compute.get("vertex") or {}
    if not isinstance(vertex, Mapping):
        raise ConfigError(f"compute.vertex in params.yaml must be a mapping, not {vertex!r}")
    unknown = sorted(set(vertex) - set(_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(_key(k) for k in unknown)} in params.yaml; the keys are "
            f"{', '.join(_KEYS)}"
        )
    return {"backend": backend, "vertex": dict(vertex)}


@dataclass(frozen=True)
class _Accelerators:
    """What the section asks of the machine: accelerator type, count and TPU slice shape."""

    type: str | None
    count: int | None
    topology: str | None


def _accelerators(vertex: Mapping[str, Any]) -> _Accelerators:
    """``accelerator_type``, ``accelerator_count`` and ``tpu_topology``, each checked alone."""
    accelerator = _text(vertex, "accelerator_type")
    count = _count(vertex, "accelerator_count")
    topology = _text(vertex, "tpu_topology")
    if accelerator is not None:
        accelerator = accelerator.upper()
        if accelerator not in ACCELERATOR_TYPES:
            raise ConfigError(
                f"{_key('accelerator_type')} {accelerator!r} is not a Vertex AI accelerator; use "
                f"one of {', '.join(ACCELERATOR_TYPES)} (or leave it empty for CPU only)"
            )
    if topology is not None and not _TOPOLOGY_RE.match(topology):
        raise ConfigError(
            f"{_key('tpu_topology')} must be a slice shape such as 2x2 or 2x2x1, not {topology!r}"
        )
    return _Accelerators(accelerator, count, topology)


def _machine_spec(vertex: Mapping[str, Any], machine: str) -> tuple[dict[str, Any], int | None]:
    """The worker pool's machine_spec, and the replica count a multi-host TPU slice needs.

    Each machine family has its own rules: a TPU VM (``ct5lp-hightpu-4t``...), a legacy TPU node
    (``cloud-tpu``), a machine with GPUs, or a CPU-only machine.
    """
    wanted = _accelerators(vertex)
    tpu_vm = next((prefix for prefix in _TPU_VMS if machine.startswith(prefix)), None)
    if tpu_vm is not None:
        return _tpu_vm_spec(machine, tpu_vm, wanted)
    if wanted.type in _CLOUD_TPU_COUNTS or machine == _CLOUD_TPU:
        return _cloud_tpu_spec(machine, wanted), None
    _refuse_tpu_settings(machine, wanted)
    if wanted.type is None:
        return _cpu_spec(machine, wanted), None
    return _gpu_spec(machine, wanted.type, wanted.count), None


def _tpu_vm_spec(
    machine: str, prefix: str, wanted: _Accelerators
) -> tuple[dict[str, Any], int]:
    """A TPU VM: the machine type carries the chips, the job the slice shape (and hosts)."""
    implied, topologies = _TPU_VMS[prefix]
    per_host = re.fullmatch(rf"{re.escape(prefix)}([0-9]+)t", machine)
    if per_host is None or int(per_host.group(1)) not in topologies:
        raise ConfigError(
            f"{_key('machine_type')} {machine!r} is not a TPU machine type Vertex AI offers; "
            f"use one of {', '.join(prefix + f'{n}t' for n in topologies)}"
        )
    chips = int(per_host.group(1))
    if wanted.type is not None and wanted.type != implied:
        raise ConfigError(
            f"{_key('accelerator_type')} {wanted.type} does not run on {machine} "
            f"({_key('machine_type')}), a TPU machine"
            + (f" with {implied} chips" if implied else "")
            + "; leave accelerator_type empty or make them match"
        )
    if wanted.count is not None and wanted.count != chips:
        raise ConfigError(
            f"{_key('accelerator_count')} is {wanted.count}, but {machine} has {chips} TPU "
            "chip(s); leave it empty (the machine type sets it)"
        )
    topology = wanted.topology or topologies[chips]
    slice_chips = math.prod(int(side) for side in topology.split("x"))
    if slice_chips % chips or slice_chips < chips:
        raise ConfigError(
            f"{_key('tpu_topology')} {topology} ({slice_chips} chips) does not fit {machine} "
            f"({chips} chips a host); use {topologies[chips]} for one host, or a slice of a "
            "multiple of its chips"
        )
    # TPU VMs take the slice shape, not an accelerator count (Vertex AI's TPU v5e / v6e form).
    return {"machine_type": machine, "tpu_topology": topology}, slice_chips // chips


def _cloud_tpu_spec(machine: str, wanted: _Accelerators) -> dict[str, Any]:
    """A legacy TPU node: machine type ``cloud-tpu`` with a TPU accelerator type and count."""
    accelerator = wanted.type
    if accelerator not in _CLOUD_TPU_COUNTS:
        raise ConfigError(
            f"{_key('machine_type')} {_CLOUD_TPU} needs {_key('accelerator_type')} "
            f"{' or '.join(_CLOUD_TPU_COUNTS)}"
            + (f", not {accelerator}" if accelerator else "")
        )
    if machine != _CLOUD_TPU:
        raise ConfigError(
            f"{_key('accelerator_type')} {accelerator} is a TPU and needs "
            f"{_key('machine_type')} {_CLOUD_TPU}, not {machine!r}"
        )
    cores = _CLOUD_TPU_COUNTS[accelerator]
    spec: dict[str, Any] = {
        "machine_type": machine,
        "accelerator_type": accelerator,
        "accelerator_count": wanted.count or cores,
    }
    if accelerator == "TPU_V4_POD":
        if wanted.topology is None:
            raise ConfigError(f"TPU_V4_POD needs {_key('tpu_topology')}, e.g. 2x2x1")
        spec["tpu_topology"] = wanted.topology
    elif wanted.count is not None and wanted.count != cores:
        raise ConfigError(
            f"{_key('accelerator_count')} for {accelerator} on {_CLOUD_TPU} must be "
            f"{cores}, not {wanted.count}"
        )
    return spec


def _refuse_tpu_settings(machine: str, wanted: _Accelerators) -> None:
    """A machine that is no TPU machine takes neither a TPU v5e nor a slice shape."""
    if wanted.type == "TPU_V5_LITEPOD":
        raise ConfigError(
            f"{_key('accelerator_type')} TPU_V5_LITEPOD (TPU v5e) needs a TPU machine type "
            f"such as ct5lp-hightpu-4t (4 chips), ct5lp-hightpu-1t or ct5lp-hightpu-8t in "
            f"{_key('machine_type')}, not {machine!r}"
        )
    if wanted.topology is not None:
        raise ConfigError(
            f"{_key('tpu_topology')} is set, but {machine} is not a TPU machine; leave it empty "
            "or use a TPU machine type such as ct5lp-hightpu-4t"
        )


def _fixed_gpus(machine: str) -> int | None:
    """How many GPUs a machine type comes with (a2-highgpu-2g: 2), None if it is not fixed."""
    attached = re.search(r"-([0-9]+)g$", machine)
    return int(attached.group(1)) if attached else None


def _cpu_spec(machine: str, wanted: _Accelerators) -> dict[str, Any]:
    """A CPU-only machine: no accelerator count, and not a machine that comes with GPUs."""
    if wanted.count is not None:
        raise ConfigError(
            f"{_key('accelerator_count')} is {wanted.count} but {_key('accelerator_type')} is "
            "empty; set the type, e.g. NVIDIA_TESLA_T4 or NVIDIA_L4"
        )
    if _fixed_gpus(machine) is not None or machine.startswith(("g2-", "a2-", "a3-", "a4")):
        raise ConfigError(
            f"{_key('machine_type')} {machine} comes with GPUs; set "
            f"{_key('accelerator_type')} to its GPU (e.g. NVIDIA_L4 for g2, "
            "NVIDIA_TESLA_A100 for a2-highgpu)"
        )
    return {"machine_type": machine}


def _gpu_spec(machine: str, accelerator: str, count: int | None) -> dict[str, Any]:
    """GPUs: the machine family the GPU attaches to, and a count it offers (or comes with)."""
    families = _GPU_MACHINES[accelerator]
    if not machine.startswith(families):
        raise ConfigError(
            f"{_key('accelerator_type')} {accelerator} does not attach to {machine} "
            f"({_key('machine_type')}); it needs a {' or '.join(f + '*' for f in families)} "
            "machine"
        )
    fixed = _fixed_gpus(machine)
    if fixed is not None:
        if count is not None and count != fixed:
            raise ConfigError(
                f"{_key('accelerator_count')} is {count}, but {machine} has {fixed} GPU(s); "
                "leave it empty or make them match"
            )
        count = fixed
    count = count or 1
    if count not in (1, 2, 4, 8, 16):
        raise ConfigError(
            f"{_key('accelerator_count')} must be 1, 2, 4, 8 or 16 GPUs a machine, not {count}"
        )
    return {"machine_type": machine, "accelerator_type": accelerator, "accelerator_count": count}


def _fill(template: str, values: Mapping[str, str | None], where: str) -> str:
    """Fill ``{model}``-style placeholders; ``{{`` and ``}}`` are literal braces."""
    out = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
        out.append(literal)
        if field is None:
            continue
        if field not in _PLACEHOLDERS or spec or conversion:
            raise ConfigError(
                f"{where} holds {{{field}}}; the placeholders are "
                f"{', '.join('{' + p + '}' for p in _PLACEHOLDERS)} (write {{{{ for a brace)"
            )
        value = values[field]
        if value is None:
            raise ConfigError(f"{where} uses {{{field}}}, but {_key(field)} is not set {_WHERE}")
        out.append(value)
    return "".join(out)


@dataclass(frozen=True)
class _Placement:
    """Where the job runs and writes, and as whom: the section's values, each checked."""

    project: str
    region: str
    staging_bucket: str
    output_uri: str
    data_uri: str | None
    image: str
    service_account: str | None


def _placement(vertex: Mapping[str, Any]) -> _Placement:
    """Every missing required key at once, then project, region, paths, image and account."""
    missing = [k for k in _REQUIRED if vertex.get(k) is None or vertex.get(k) == ""]
    if missing:
        raise ConfigError(
            f"Vertex AI training needs {', '.join(_key(k) for k in missing)}: set "
            f"{'it' if len(missing) == 1 else 'them'} {_WHERE}"
        )
    project = names.check_project(_text(vertex, "project") or "", _key("project"), _FILE)
    region = names.check_region(_text(vertex, "region") or "", _key("region"), _FILE)
    staging = _gcs(vertex, "staging_bucket", "gs://my-lab-vertex/staging") or ""
    output_uri = _gcs(vertex, "output_uri", "gs://my-lab-vertex/training") or ""
    data_uri = _gcs(vertex, "data_uri", "gs://my-lab-data/datasets")
    image = _text(vertex, "image_uri") or ""
    _check_image(image, "image_uri", _PREBUILT_EXAMPLE)
    image_repository(vertex)
    account = _text(vertex, "service_account")
    if account is not None:
        names.check_service_account(
            account, _key("service_account"), _FILE, example=f"trainer@{project}"
        )
    return _Placement(project, region, staging, output_uri, data_uri, image, account)


def _check_image(value: str, key: str, example: str) -> None:
    """A container image (or repository) name: no spaces, no URL scheme."""
    if re.search(r"\s", value) or value.startswith(("gs://", "http://", "https://")):
        raise ConfigError(
            f"{_key(key)} must be a container image such as {example}, not {value!r}"
        )


def image_repository(vertex: Mapping[str, Any]) -> str | None:
    """``compute.vertex.image_repository``: where the image of ``registry compute package``
    goes (an Artifact Registry repository), checked; ``None`` when not set.

    Example:
        >>> image_repository({"image_repository": "us-docker.pkg.dev/my-lab/training"})
        'us-docker.pkg.dev/my-lab/training'
    """
    repository = _text(vertex, "image_repository")
    if repository is not None:
        example = "us-central1-docker.pkg.dev/my-lab/training"
        _check_image(repository, "image_repository", example)
        if ":" in repository.rsplit("/", 1)[-1] or "@" in repository:
            raise ConfigError(
                f"{_key('image_repository')} is a repository, without a tag: e.g. "
                f"us-central1-docker.pkg.dev/my-lab/training, not {repository!r}"
            )
    return repository


def _worker_pool(vertex: Mapping[str, Any]) -> dict[str, Any]:
    """The worker pool without its container: machine, replicas (a TPU slice's hosts), disk."""
    machine = (_text(vertex, "machine_type") or "").lower()
    machine_spec, tpu_hosts = _machine_spec(vertex, machine)
    replicas = _count(vertex, "replica_count")
    if tpu_hosts is not None and replicas is not None and replicas != tpu_hosts:
        raise ConfigError(
            f"{_key('replica_count')} is {replicas}, but the TPU slice "
            f"{machine_spec['tpu_topology']} on {machine} needs {tpu_hosts} host(s); leave it "
            "empty"
        )
    disk = _count(vertex, "boot_disk_size_gb") or DEFAULT_BOOT_DISK_GB
    return {
        "machine_spec": machine_spec,
        "replica_count": replicas or tpu_hosts or 1,
        "disk_spec": {"boot_disk_type": "pd-ssd", "boot_disk_size_gb": disk},
    }


def _job_id(job_id: str | None) -> str:
    """The job id given, or the UTC time; checked as the label value it becomes."""
    if job_id is None:
        job_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    # It is also a folder name and part of the display name: it starts with a letter or digit.
    names.check_label_value(job_id, "job id")
    if not _JOB_ID_START_RE.match(job_id):
        raise ConfigError(
            f"job id {job_id!r} must start with a lowercase letter or digit, e.g. "
            "20261130-120000 or lr-sweep-3"
        )
    return job_id


def _container(
    vertex: Mapping[str, Any],
    image: str,
    values: Mapping[str, str | None],
    registry_url: str | None,
) -> dict[str, Any]:
    """The container spec: image, command and arguments with placeholders filled, environment
    (the model, the data URI, the registry's Git URL)."""
    command = _strings(vertex, "command") or list(TRAIN_COMMAND)
    args = _strings(vertex, "args")
    container: dict[str, Any] = {"image_uri": image}
    container["command"] = [_fill(c, values, _key("command")) for c in command]
    container["args"] = [
        _fill(a, values, _key("args")) for a in (DEFAULT_ARGS if args is None else args)
    ]
    env = [{"name": "REGISTRY_MODEL", "value": values["model"]}]
    if values["data_uri"] is not None:
        env.append({"name": "REGISTRY_DATA_URI", "value": values["data_uri"]})
    if registry_url is not None:
        env.append({"name": "REGISTRY_URL", "value": registry_url})
    container["env"] = env
    return container


def build_job_spec(
    model: str,
    params: Mapping[str, Any],
    *,
    job_id: str | None = None,
    image: str | None = None,
    registry_url: str | None = None,
) -> dict[str, Any]:
    """Build the Vertex AI CustomJob that trains ``model``, from the ``compute.vertex`` params.

    In order: the section's required keys (every missing one named at once) and where the job
    runs and writes (project, region, ``gs://`` paths, image, service account); the worker's
    machine, by machine family, with the hosts a TPU slice needs; the job id and output folder;
    the container, its command's placeholders filled; then the CustomJob that holds them.

    Args:
        model: The model to train, e.g. ``digits-cnn``: it names the job and its output
            folder and fills ``{model}`` in the command's arguments.
        params: The whole of ``params.yaml`` (only ``compute`` is read).
        job_id: Names this run (lowercase letters, digits, ``-``, ``_``); default: the UTC time
            as ``YYYYmmdd-HHMMSS``. The job writes under ``<output_uri>/<model>/<job_id>``.
        image: The container image the job runs; default ``compute.vertex.image_uri``.
            :func:`registry.compute.job_spec` passes the image ``registry compute package``
            names for the code of the clone when ``image_repository`` is set.
        registry_url: The registry's Git URL when ``compute.vertex.registry_url`` is empty
            (:func:`registry.compute.job_spec` passes the clone's ``origin``); the job's
            ``REGISTRY_URL``, which the trainer loads its datasets by.

    Returns:
        Plain data: ``project``, ``location``, ``staging_bucket``, and ``custom_job``, the
        CustomJob resource as Vertex AI's API spells it (``display_name``, ``labels``,
        ``job_spec`` with ``worker_pool_specs``, ``base_output_directory`` and
        ``service_account``).

    Raises:
        ConfigError: Naming every required key that is missing, or the first invalid one: a
            path that is not ``gs://``, an unknown accelerator, an accelerator that does not fit
            the machine type (a TPU needs a TPU machine type such as ``ct5lp-hightpu-4t``),
            a registry URL holding a password or token.

    Example:
        >>> spec = build_job_spec("digits-cnn", params, job_id="run1")  # doctest: +SKIP
        >>> spec["custom_job"]["job_spec"]["worker_pool_specs"][0]["machine_spec"]  # doctest: +SKIP
        {'machine_type': 'g2-standard-8', 'accelerator_type': 'NVIDIA_L4', 'accelerator_count': 1}
    """
    vertex = compute_section(params)["vertex"]
    place = _placement(vertex)
    pool = _worker_pool(vertex)
    job_id = _job_id(job_id)
    output_dir = f"{place.output_uri}/{model}/{job_id}"
    values: dict[str, str | None] = {"model": model, "job_id": job_id, "output_dir": output_dir}
    values["data_uri"] = place.data_uri
    url = _registry_url(vertex, registry_url)
    pool["container_spec"] = _container(vertex, image or place.image, values, url)

    job_spec: dict[str, Any] = {
        "worker_pool_specs": [pool],
        "base_output_directory": {"output_uri_prefix": output_dir},
    }
    if place.service_account is not None:
        job_spec["service_account"] = place.service_account
    return {
        "project": place.project,
        "location": place.region,
        "staging_bucket": place.staging_bucket,
        "custom_job": {
            "display_name": f"{model.replace('/', '-')}-{job_id}",
            "labels": {"registry-model": names.label_value(model), "registry-job": job_id},
            "job_spec": job_spec,
        },
    }


# -- credentials and submission -------------------------------------------------------------------


def _purpose(project: str | None) -> str:
    """What needs the credentials, for messages: Vertex AI, and the project if known."""
    target = f" for project {project!r} (compute.vertex.project in params.yaml)" if project else ""
    return f"Vertex AI{target}"


def find_credentials(project: str | None = None) -> Any:
    """Find Application Default Credentials for Vertex AI, quickly (see
    :func:`registry.cloud.credentials.find_credentials`).

    Args:
        project: The project the job goes to, named in the error message.

    Raises:
        CredentialsError: If none are configured or the key file cannot be used.
    """
    return _find_credentials(_purpose(project))


def to_custom_job(spec: Mapping[str, Any], credentials: Any) -> Any:
    """The ``aiplatform.CustomJob`` for ``spec``, not yet sent (no network is used).

    ``job_spec.service_account`` is applied when the job is submitted, as the SDK does.

    Args:
        spec: The specification, as :func:`build_job_spec` returns it.
        credentials: Google credentials for the job's API calls.

    Raises:
        MissingDependencyError: If google-cloud-aiplatform is not installed.
    """
    try:
        from google.cloud import aiplatform
    except ImportError as e:
        raise MissingDependencyError("google.cloud.aiplatform", "google-cloud-aiplatform") from e
    custom_job = spec["custom_job"]
    job_spec = copy.deepcopy(custom_job["job_spec"])
    return aiplatform.CustomJob(
        display_name=custom_job["display_name"],
        worker_pool_specs=job_spec["worker_pool_specs"],
        base_output_dir=job_spec["base_output_directory"]["output_uri_prefix"],
        project=spec["project"],
        location=spec["location"],
        staging_bucket=spec["staging_bucket"],
        labels=dict(custom_job.get("labels") or {}),
        credentials=credentials,
    )


def submit(
    spec: Mapping[str, Any], *, credentials: Any = None, timeout: float = 120.0
) -> SubmittedJob:
    """Submit a job built by :func:`build_job_spec` to Vertex AI; return without waiting for it.

    Args:
        spec: The specification (as :func:`build_job_spec` or ``--dry-run`` gives it).
        credentials: Google credentials; default: Application Default Credentials
            (:func:`find_credentials`), checked before anything is sent.
        timeout: Seconds to wait for Vertex AI to accept the job.

    Returns:
        The accepted job: resource name, output folder and console link.

    Raises:
        CredentialsError: If no credentials are configured (fast: no network), or Google refuses
            them.
        RemoteError: If Vertex AI cannot be reached or refuses the job (permissions, quota, an
            invalid machine or image).
        MissingDependencyError: If google-cloud-aiplatform is not installed.
    """
    custom_job = spec["custom_job"]
    if credentials is None:
        credentials = find_credentials(spec.get("project"))
    job = to_custom_job(spec, credentials)
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions

    job_spec = custom_job["job_spec"]
    try:
        job.submit(
            service_account=job_spec.get("service_account"), create_request_timeout=timeout
        )
    except auth_exceptions.RefreshError as e:
        raise CredentialsError(
            f"Google refused the credentials found ({e}). "
            + credentials_help(_purpose(spec["project"]))
        ) from e
    except (api_exceptions.GoogleAPIError, auth_exceptions.TransportError) as e:
        raise RemoteError(
            f"Vertex AI did not accept the job {custom_job['display_name']!r} in "
            f"{spec['project']}/{spec['location']}: {e}. Check the project, region, quota and "
            "permissions (roles/aiplatform.user; act-as on the service account)"
        ) from e
    name = job.resource_name
    job_number = name.rsplit("/", 1)[-1]
    return SubmittedJob(
        name=name,
        display_name=custom_job["display_name"],
        output_dir=job_spec["base_output_directory"]["output_uri_prefix"],
        console_url=(
            f"https://console.cloud.google.com/vertex-ai/locations/{spec['location']}/"
            f"training/{job_number}/cpu?project={spec['project']}"
        ),
    )
