"""Vertex AI training: the job built from compute: in params.yaml, its checks, and submission.

Nothing here reaches Google: specs are data, the SDK's CustomJob is built but never sent, and
submission is tried only where no credentials exist, where it must stop at once.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry.cloud.credentials import on_google_cloud
from registry.errors import ArtifactNotFoundError, ConfigError, CredentialsError
from registry.vertex import (
    build_job_spec,
    find_credentials,
    job_spec,
    to_custom_job,
)
from tests.conftest import NOT_APPLICABLE

GPU_IMAGE = "us-docker.pkg.dev/vertex-ai/training/tf-gpu.2-17.py310:latest"
TPU_IMAGE = "us-docker.pkg.dev/vertex-ai/training/tf-tpu.2-17.py310:latest"
# Written into a fake key file: it must never show up in anything the registry prints.
SECRET = "-----BEGIN PRIVATE KEY-----\\nTHIS-IS-NOT-A-REAL-KEY-0123456789\\n"

on_google_cloud = pytest.mark.skipif(
    on_google_cloud(),
    reason=NOT_APPLICABLE + "a Google Cloud machine has credentials from its metadata server",
)


def gpu_vertex() -> dict[str, Any]:
    return {
        "project": "my-lab",
        "region": "us-central1",
        "staging_bucket": "gs://my-lab-vertex/staging",
        "machine_type": "n1-standard-8",
        "accelerator_type": "NVIDIA_TESLA_T4",
        "accelerator_count": 2,
        "image_uri": GPU_IMAGE,
        "command": ["python", "-m", "src.zoo.train"],
        "args": ["{model}", "--epochs", 10, "--out", "{output_dir}/model"],
        "service_account": "trainer@my-lab.iam.gserviceaccount.com",
        "data_uri": "gs://my-lab-data/datasets",
        "output_uri": "gs://my-lab-vertex/training/",
    }


def params(backend: str = "vertex", **vertex: Any) -> dict[str, Any]:
    """params.yaml with the GPU configuration, ``vertex`` overriding (None removes a key)."""
    section = {**gpu_vertex(), **vertex}
    return {"compute": {"backend": backend, "vertex": section}}


# -- the specification ----------------------------------------------------------------------------


def test_gpu_job_spec_is_the_exact_custom_job() -> None:
    spec = build_job_spec("digits-cnn", params(), job_id="run-1")
    out = "gs://my-lab-vertex/training/digits-cnn/run-1"
    assert spec == {
        "project": "my-lab",
        "location": "us-central1",
        "staging_bucket": "gs://my-lab-vertex/staging",
        "custom_job": {
            "display_name": "digits-cnn-run-1",
            "labels": {"registry-model": "digits-cnn", "registry-job": "run-1"},
            "job_spec": {
                "worker_pool_specs": [
                    {
                        "machine_spec": {
                            "machine_type": "n1-standard-8",
                            "accelerator_type": "NVIDIA_TESLA_T4",
                            "accelerator_count": 2,
                        },
                        "replica_count": 1,
                        "disk_spec": {"boot_disk_type": "pd-ssd", "boot_disk_size_gb": 100},
                        "container_spec": {
                            "image_uri": GPU_IMAGE,
                            "command": ["python", "-m", "src.zoo.train"],
                            "args": ["digits-cnn", "--epochs", "10", "--out", f"{out}/model"],
                            "env": [
                                {"name": "REGISTRY_MODEL", "value": "digits-cnn"},
                                {"name": "REGISTRY_DATA_URI", "value": "gs://my-lab-data/datasets"},
                            ],
                        },
                    }
                ],
                "base_output_directory": {"output_uri_prefix": out},
                "service_account": "trainer@my-lab.iam.gserviceaccount.com",
            },
        },
    }


def test_gpu_defaults_cpu_only_and_fixed_gpu_machines() -> None:
    minimal = params(accelerator_count=None, command=None, args=None, service_account=None,
                     data_uri=None, machine_type="g2-standard-8", accelerator_type="NVIDIA_L4")
    pool = build_job_spec("digits-cnn", minimal, job_id="a")["custom_job"]["job_spec"]
    assert "service_account" not in pool
    worker = pool["worker_pool_specs"][0]
    assert worker["machine_spec"] == {
        "machine_type": "g2-standard-8", "accelerator_type": "NVIDIA_L4", "accelerator_count": 1
    }
    assert worker["container_spec"] == {
        "image_uri": GPU_IMAGE,
        # An empty command is the training entry command (the packaged image's ENTRYPOINT).
        "command": ["python", "-m", "src.zoo.train"],
        "args": ["digits-cnn"],
        "env": [{"name": "REGISTRY_MODEL", "value": "digits-cnn"}],
    }
    a100 = params(machine_type="a2-highgpu-4g", accelerator_type="NVIDIA_TESLA_A100",
                  accelerator_count=None)
    machine = build_job_spec("m", a100, job_id="a")["custom_job"]["job_spec"][
        "worker_pool_specs"][0]["machine_spec"]
    assert machine["accelerator_count"] == 4
    cpu = params(machine_type="n1-standard-4", accelerator_type=None, accelerator_count=None)
    machine = build_job_spec("m", cpu, job_id="a")["custom_job"]["job_spec"][
        "worker_pool_specs"][0]["machine_spec"]
    assert machine == {"machine_type": "n1-standard-4"}


def test_tpu_v5e_job_spec_uses_the_tpu_machine_and_topology() -> None:
    tpu = params(machine_type="ct5lp-hightpu-4t", accelerator_type="TPU_V5_LITEPOD",
                 accelerator_count=None, image_uri=TPU_IMAGE)
    spec = build_job_spec("digits-cnn", tpu, job_id="tpu-1")
    worker = spec["custom_job"]["job_spec"]["worker_pool_specs"][0]
    assert worker["machine_spec"] == {"machine_type": "ct5lp-hightpu-4t", "tpu_topology": "2x2"}
    assert worker["replica_count"] == 1
    assert worker["container_spec"]["image_uri"] == TPU_IMAGE
    assert spec["custom_job"]["job_spec"]["base_output_directory"] == {
        "output_uri_prefix": "gs://my-lab-vertex/training/digits-cnn/tpu-1"
    }
    # A 16-chip slice of 4-chip hosts runs on 4 replicas.
    pod = params(machine_type="ct5lp-hightpu-4t", accelerator_type=None, accelerator_count=None,
                 tpu_topology="4x4")
    worker = build_job_spec("m", pod, job_id="a")["custom_job"]["job_spec"]["worker_pool_specs"][0]
    assert worker["machine_spec"] == {"machine_type": "ct5lp-hightpu-4t", "tpu_topology": "4x4"}
    assert worker["replica_count"] == 4


def test_tpu_v3_job_spec_uses_cloud_tpu_with_eight_cores() -> None:
    v3 = params(machine_type="cloud-tpu", accelerator_type="TPU_V3", accelerator_count=None)
    worker = build_job_spec("m", v3, job_id="a")["custom_job"]["job_spec"]["worker_pool_specs"][0]
    assert worker["machine_spec"] == {
        "machine_type": "cloud-tpu", "accelerator_type": "TPU_V3", "accelerator_count": 8
    }


def test_default_job_id_is_the_utc_time() -> None:
    spec = build_job_spec("digits-cnn", params())
    job_id = spec["custom_job"]["labels"]["registry-job"]
    assert len(job_id) == len("20261130-120000") and job_id[8] == "-"
    assert spec["custom_job"]["display_name"] == f"digits-cnn-{job_id}"


REQUIRED = ["project", "region", "staging_bucket", "machine_type", "image_uri", "output_uri"]


@pytest.mark.parametrize("key", REQUIRED)
def test_each_missing_option_is_named_with_where_to_set_it(key: str) -> None:
    with pytest.raises(ConfigError) as e:
        build_job_spec("m", params(**{key: None}), job_id="a")
    assert f"compute.vertex.{key}" in str(e.value)
    assert "params.yaml" in str(e.value)


def test_every_missing_option_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as e:
        build_job_spec("m", {"compute": {"backend": "vertex", "vertex": {}}}, job_id="a")
    for key in REQUIRED:
        assert f"compute.vertex.{key}" in str(e.value)
    with pytest.raises(ConfigError, match=r"compute\.vertex\.project"):
        build_job_spec("m", {}, job_id="a")  # params.yaml without a compute section


@pytest.mark.parametrize(
    ("change", "named", "says"),
    [
        ({"staging_bucket": "my-lab-vertex/staging"}, "staging_bucket", "gs://"),
        ({"output_uri": "s3://bucket/out"}, "output_uri", "gs://"),
        ({"data_uri": "/data/datasets"}, "data_uri", "gs://"),
        ({"output_uri": "gs://"}, "output_uri", "gs://"),
        ({"project": "My Lab"}, "project", "project id"),
        ({"region": "us central"}, "region", "us-central1"),
        ({"image_uri": "gs://bucket/image.tar"}, "image_uri", "container image"),
        ({"service_account": "trainer"}, "service_account", "email"),
        ({"accelerator_type": "NVIDIA_TESLA_X"}, "accelerator_type", "NVIDIA_L4"),
        ({"accelerator_type": "TPU_V5_LITEPOD"}, "machine_type", "ct5lp-hightpu-4t"),
        ({"accelerator_type": "TPU_V3"}, "machine_type", "cloud-tpu"),
        ({"accelerator_type": "NVIDIA_L4"}, "machine_type", "g2-standard"),
        ({"machine_type": "ct5lp-hightpu-4t"}, "accelerator_type", "TPU machine"),
        ({"machine_type": "ct5lp-hightpu-3t", "accelerator_type": None}, "machine_type",
         "ct5lp-hightpu-4t"),
        ({"machine_type": "ct5lp-hightpu-4t", "accelerator_type": None}, "accelerator_count",
         "4 TPU chip"),
        ({"machine_type": "ct5lp-hightpu-4t", "accelerator_type": None,
          "accelerator_count": None, "tpu_topology": "3x3"}, "tpu_topology", "2x2"),
        ({"machine_type": "ct5lp-hightpu-4t", "accelerator_type": None,
          "accelerator_count": None, "tpu_topology": "4x4", "replica_count": 2}, "replica_count",
         "4 host"),
        ({"tpu_topology": "2x2"}, "tpu_topology", "not a TPU machine"),
        ({"machine_type": "cloud-tpu", "accelerator_type": None}, "accelerator_type", "TPU_V2"),
        ({"accelerator_count": 3}, "accelerator_count", "1, 2, 4, 8"),
        ({"accelerator_count": "two"}, "accelerator_count", "whole number"),
        ({"accelerator_type": None}, "accelerator_type", "set the type"),
        ({"machine_type": "a2-highgpu-1g", "accelerator_type": None, "accelerator_count": None},
         "accelerator_type", "comes with GPUs"),
        ({"machine_type": "a2-highgpu-1g", "accelerator_type": "NVIDIA_TESLA_A100",
          "accelerator_count": 2}, "accelerator_count", "1 GPU"),
        ({"args": ["{model}", "{bucket}"]}, "args", "{bucket}"),
        ({"args": ["{data_uri}"], "data_uri": None}, "data_uri", "not set"),
        ({"command": "python -m src.zoo.train"}, "command", "list of strings"),
        ({"replica_count": 0}, "replica_count", "positive"),
        ({"unknown_key": 1}, "unknown_key", "the keys are"),
    ],
)
def test_each_invalid_option_is_named(change: dict[str, Any], named: str, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        build_job_spec("m", params(**change), job_id="a")
    assert f"compute.vertex.{named}" in str(e.value) or named in str(e.value)
    assert says in str(e.value)


def test_invalid_backend_and_job_id() -> None:
    with pytest.raises(ConfigError, match=r"compute\.backend.*local, vertex"):
        build_job_spec("m", params(backend="cloud"), job_id="a")
    with pytest.raises(ConfigError, match="job id"):
        build_job_spec("m", params(), job_id="Run 1")


def test_the_sdk_takes_the_spec_unchanged() -> None:
    """The SDK's CustomJob (built, never sent) carries every field of the spec."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1

    for vertex in ({}, {"machine_type": "ct5lp-hightpu-4t", "accelerator_type": None,
                        "accelerator_count": None, "tpu_topology": "4x4"}):
        spec = build_job_spec("digits-cnn", params(**vertex), job_id="sdk")
        job = to_custom_job(copy.deepcopy(spec), AnonymousCredentials())
        sent = aiplatform_v1.CustomJob.to_dict(
            job._gca_resource, preserving_proto_field_name=True, use_integers_for_enums=False
        )
        ours = spec["custom_job"]
        assert sent["display_name"] == ours["display_name"]
        assert sent["labels"] == ours["labels"]
        assert (sent["job_spec"]["base_output_directory"]
                == ours["job_spec"]["base_output_directory"])
        (pool,) = sent["job_spec"]["worker_pool_specs"]
        (want,) = ours["job_spec"]["worker_pool_specs"]
        for part in ("machine_spec", "disk_spec", "container_spec"):
            got = {k: v for k, v in pool[part].items() if k in want[part]}
            assert got == want[part], part
        assert int(pool["replica_count"]) == want["replica_count"]


# -- through the CLI, in a registry -------------------------------------------------------------


@pytest.fixture
def vertex_registry(make_registry: Callable[..., Path]) -> Callable[..., Path]:
    """A registry with the model ``digits-cnn`` and ``compute:`` set to the GPU configuration."""

    def make(backend: str = "vertex") -> Path:
        repo = make_registry(datasets=[])
        card = repo / "models" / "digits-cnn" / "README.md"
        card.parent.mkdir(parents=True)
        card.write_text("---\ntask: image-classification\n---\n# digits-cnn\n")
        data = yaml.safe_load((repo / "params.yaml").read_text())
        data.update(params(backend))
        (repo / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        return repo

    return make


def _no_credentials_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GOOGLE_APPLICATION_CREDENTIALS", "NO_GCE_CHECK", "GCE_METADATA_HOST",
                        "GCE_METADATA_ROOT", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CONFIG")}
    env["HOME"] = str(home)
    env["CLOUDSDK_CONFIG"] = str(home / ".config" / "gcloud")  # empty: no gcloud login
    return env


def _registry(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "registry", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )


def test_dry_run_prints_the_spec_and_no_credentials(
    vertex_registry: Callable[..., Path], isolated_env: Path, tmp_path: Path
) -> None:
    repo = vertex_registry()
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"type": "service_account", "private_key": SECRET,
                               "client_email": "trainer@my-lab.iam.gserviceaccount.com"}))
    env = {**_no_credentials_env(isolated_env), "GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    done = _registry("compute", "submit", "digits-cnn", "--dry-run", "--job-id", "run-1",
                     cwd=repo, env=env)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed == build_job_spec("digits-cnn", params(), job_id="run-1")
    for secret in ("PRIVATE KEY", "THIS-IS-NOT-A-REAL-KEY", "private_key", str(key)):
        assert secret not in done.stdout + done.stderr


def test_dry_run_works_whatever_the_backend_but_submit_needs_vertex(
    vertex_registry: Callable[..., Path],
) -> None:
    repo = vertex_registry(backend="local")
    assert job_spec("digits-cnn", registry=repo, job_id="a")["project"] == "my-lab"
    with pytest.raises(ConfigError, match=r"compute\.backend.*vertex"):
        job_spec("digits-cnn", registry=repo, job_id="a", for_submit=True)
    with pytest.raises(ArtifactNotFoundError, match="digits-cnx"):
        job_spec("digits-cnx", registry=repo)


@on_google_cloud
def test_submit_without_credentials_fails_fast_and_clearly(
    vertex_registry: Callable[..., Path], isolated_env: Path
) -> None:
    repo = vertex_registry()
    started = time.monotonic()
    done = _registry("compute", "submit", "digits-cnn", cwd=repo,
                     env=_no_credentials_env(isolated_env))
    seconds = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert seconds < 5, f"took {seconds:.1f} s"
    assert done.stdout == ""
    err = done.stderr
    assert "Traceback" not in err
    assert err.startswith("error: no Google Cloud credentials found")
    for hint in ("gcloud auth application-default login", "GOOGLE_APPLICATION_CREDENTIALS",
                 "'my-lab'", "compute.vertex.project"):
        assert hint in err


@pytest.fixture
def silent_metadata_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point google-auth's metadata probe at a local port that accepts and never answers (as a
    firewall that drops packets would): a probe there waits seconds for each try."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    monkeypatch.setenv("GCE_METADATA_IP", f"127.0.0.1:{server.getsockname()[1]}")
    for var in ("GOOGLE_APPLICATION_CREDENTIALS", "NO_GCE_CHECK", "GCE_METADATA_HOST",
                "GCE_METADATA_ROOT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(Path(os.environ["HOME"]) / ".config" / "gcloud"))
    yield
    server.close()


@on_google_cloud
def test_missing_credentials_never_wait_on_the_metadata_server(
    silent_metadata_server: None,
) -> None:
    # As if gcsfs or DVC had loaded google-auth's metadata module before us.
    from google.auth.compute_engine import _metadata

    before = _metadata._NO_GCE_CHECK
    started = time.monotonic()
    with pytest.raises(CredentialsError) as e:
        find_credentials("my-lab")
    assert time.monotonic() - started < 5
    assert "gcloud auth application-default login" in str(e.value)
    assert isinstance(e.value, PermissionError)
    assert e.value.exit_code == 2
    assert "NO_GCE_CHECK" not in os.environ  # the environment is left as it was
    assert _metadata._NO_GCE_CHECK is before


@on_google_cloud
def test_an_unusable_key_file_is_named(
    silent_metadata_server: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.json"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(missing))
    with pytest.raises(CredentialsError, match=r"GOOGLE_APPLICATION_CREDENTIALS=.*nowhere\.json"):
        find_credentials("my-lab")
