"""Vertex AI training end to end, on a real GCS server (fake-gcs-server) on 127.0.0.1.

A registry releases digits to a bucket. The training entry command that ``compute submit``'s job
runs (``python -m src.zoo.train digits-cnn``) runs as a subprocess with the variables Vertex AI
sets (``AIP_MODEL_DIR``, ``AIP_TENSORBOARD_LOG_DIR``) and the job spec's ``REGISTRY_DATA_URI``:
it loads digits by registry reference through the bucket, trains with TensorFlow and writes its
output to the bucket. ``registry compute fetch`` brings it back, ``registry models release``
releases it and the released model loads. Broken outputs (unfinished, missing weights or lineage,
unreleased data) are refused with their own errors.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import registry
from registry.cards import parse_card
from registry.cloud.credentials import on_google_cloud
from registry.cloud.emulator import GCSEmulator
from registry.compute import COMPLETION_MARKER, LINEAGE_FILE, VertexEnvironment
from registry.errors import (
    ConfigError,
    CredentialsError,
    IncompleteJobOutputError,
    UnreleasedTrainingDataError,
)
from tests.conftest import (
    NOT_APPLICABLE,
    PROJECT_ROOT,
    GCSRegistry,
    cli_ok,
    cli_raises,
    commit_all,
    gcs_registry,
    git,
    hermetic_env,
)

pytestmark = pytest.mark.slow

DIGITS = "image_classification/digits"
MODEL = "digits-cnn"
JOB_ID = "job-1"
SECRET = "NOT-A-REAL-KEY-7d2e"


@dataclass(frozen=True)
class VertexSetup(GCSRegistry):
    """The registry on the bucket (:class:`GCSRegistry`, digits 1.0.0 released), and one
    finished emulated job.

    Attributes:
        model_dir: The job's ``AIP_MODEL_DIR``.
        job: The entry command's run (its stdout is the JSON summary).
        job_env: The environment the job ran with.
    """

    model_dir: str
    job: subprocess.CompletedProcess[str]
    job_env: dict[str, str]


def _objects(gcs: GCSEmulator, bucket: str, prefix: str) -> dict[str, bytes]:
    client = gcs.storage_client()
    return {
        b.name[len(prefix) :]: b.download_as_bytes()
        for b in client.list_blobs(bucket, prefix=prefix)
    }


@pytest.fixture(scope="module")
def gcs() -> Iterator[GCSEmulator]:
    """One fake-gcs-server for this module (in memory)."""
    with GCSEmulator() as server:
        yield server


def run_job(
    app: Path, env: dict[str, str], model: str = MODEL, *extra: str
) -> subprocess.CompletedProcess[str]:
    """The job's container command, as ``compute submit``'s spec runs it (command + args)."""
    return subprocess.run(
        [sys.executable, "-m", "src.zoo.train", model, "--epochs", "1", "--verbose", "0", *extra],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def vertex(gcs: GCSEmulator, tmp_path_factory: pytest.TempPathFactory) -> VertexSetup:
    """Release digits to a bucket through the real CLI, then run the training job once."""
    made = gcs_registry(
        gcs,
        tmp_path_factory.mktemp("vertex"),
        vertex={
            "image_uri": "us-docker.pkg.dev/vertex-ai/training/tf-cpu.2-17.py310:latest",
            "command": ["python", "-m", "src.zoo.train"],
        },
    )
    base, bucket, clone = made.base, made.bucket, made.clone

    # The job's container: the code and params.yaml, no clone; the registry by its Git URL.
    app = base / "app"
    app.mkdir()
    shutil.copy2(clone / "params.yaml", app / "params.yaml")
    job_dir = f"gs://{bucket}/training/{MODEL}/{JOB_ID}"
    key = base / "key.json"  # a key file the job's environment names: never copied anywhere
    key.write_text(json.dumps({"type": "service_account", "private_key": SECRET}))
    env = {
        **hermetic_env(base / "job-home"),
        "GOOGLE_APPLICATION_CREDENTIALS": str(key),
        "PYTHONPATH": str(PROJECT_ROOT),
        "REGISTRY_URL": str(made.origin),
        "REGISTRY_COMMIT": git(clone, "rev-parse", "HEAD").strip(),
        "STORAGE_EMULATOR_HOST": gcs.url,
        "AIP_MODEL_DIR": f"{job_dir}/model/",
        "AIP_TENSORBOARD_LOG_DIR": f"{job_dir}/logs/",
        "REGISTRY_DATA_URI": f"gs://{bucket}/dvc",
        "CLOUD_ML_JOB_ID": "1234567890",
    }
    job = run_job(app, env)
    assert job.returncode == 0, f"the job failed:\n{job.stdout}\n{job.stderr}"
    return VertexSetup(base, bucket, made.env, made.code_commit, f"{job_dir}/model", job, env)


@pytest.fixture
def clone(
    vertex: VertexSetup, tmp_path: Path, chdir: Callable[[Path], None],
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """A private copy of the registry clone and its origin (the same bucket), as the cwd."""
    dest = tmp_path / "copy"
    shutil.copytree(vertex.base, dest, symlinks=True, ignore=shutil.ignore_patterns("*home", "app"))
    git(dest / "clone", "remote", "set-url", "origin", str(dest / "origin.git"))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", vertex.job_env["STORAGE_EMULATOR_HOST"])
    chdir(dest / "clone")
    return dest / "clone"


def _copy_job(gcs: GCSEmulator, vertex: VertexSetup, name: str) -> str:
    """A copy of the job's output under another job folder (to break); its model dir."""
    client = gcs.storage_client()
    source = f"training/{MODEL}/{JOB_ID}/model/"
    target = f"training/{MODEL}/{name}/model/"
    bucket = client.bucket(vertex.bucket)
    for blob in client.list_blobs(vertex.bucket, prefix=source):
        bucket.copy_blob(blob, bucket, target + blob.name[len(source) :])
    return f"gs://{vertex.bucket}/{target.rstrip('/')}"


# -- the job ------------------------------------------------------------------------------------


def test_the_job_writes_weights_metrics_lineage_and_marker_last(
    gcs: GCSEmulator, vertex: VertexSetup
) -> None:
    import hashlib

    prefix = f"training/{MODEL}/{JOB_ID}/"
    objects = _objects(gcs, vertex.bucket, prefix)
    model = {k[len("model/") :]: v for k, v in objects.items() if k.startswith("model/")}
    assert set(model) == {
        "model.keras", "training.json", "training.csv", LINEAGE_FILE, COMPLETION_MARKER
    }
    marker = json.loads(model[COMPLETION_MARKER])
    assert marker["model"] == MODEL
    assert marker["files"] == {
        name: hashlib.md5(data).hexdigest()
        for name, data in model.items()
        if name != COMPLETION_MARKER
    }
    lineage = json.loads(model[LINEAGE_FILE])
    lock = yaml.safe_load((vertex.clone / "dvc.lock").read_text())
    released_hash = next(
        o["md5"]
        for o in lock["stages"][f"build@{DIGITS}"]["outs"]
        if o["path"].endswith("prepared")
    )
    # The release record's shape, with the job's facts.
    assert lineage["artifact"] == MODEL and lineage["kind"] == "model"
    assert lineage["datasets"] == {DIGITS: "1.0.0"}
    assert lineage["data"] == [
        {"dataset": f"{DIGITS}:1.0.0", "md5": released_hash, "uri": f"gs://{vertex.bucket}/dvc"}
    ]
    assert lineage["commit"] == vertex.job_env["REGISTRY_COMMIT"]
    assert lineage["params"]["epochs"] == 1 and lineage["params"]["dataset"] == DIGITS
    assert lineage["compute"]["backend"] == "vertex"
    assert lineage["compute"]["strategy"].startswith("cpu")  # no GPU on this machine
    assert lineage["compute"]["machine"]["vertex_job"] == "1234567890"
    assert lineage["compute"]["machine"]["cpus"] == os.cpu_count()
    assert lineage["training"]["tensorflow"] and "determinism" in lineage["training"]
    assert lineage["weights"]["md5"] == hashlib.md5(model["model.keras"]).hexdigest()
    metrics = json.loads(model["training.json"])
    assert metrics["epochs"] == 1 and 0.0 <= metrics["test"]["accuracy"] <= 1.0
    # TensorBoard's event files went to AIP_TENSORBOARD_LOG_DIR.
    assert any(k.startswith("logs/") and "tfevents" in k for k in objects)
    # Nothing secret or local leaked into the output or the job's log.
    for data in objects.values():
        assert SECRET.encode() not in data and b"key.json" not in data
        assert str(vertex.base).encode() not in data
    assert SECRET not in vertex.job.stdout + vertex.job.stderr


def test_a_data_uri_that_is_not_the_registry_remote_stops_before_training(
    vertex: VertexSetup, gcs: GCSEmulator
) -> None:
    env = {**vertex.job_env, "REGISTRY_DATA_URI": "gs://another-bucket/dvc"}
    env["AIP_MODEL_DIR"] = f"gs://{vertex.bucket}/training/{MODEL}/wrong-data/model"
    done = run_job(vertex.base / "app", env)
    assert done.returncode == ConfigError.exit_code, done.stderr
    assert "REGISTRY_DATA_URI is gs://another-bucket/dvc" in done.stderr
    assert f"gs://{vertex.bucket}/dvc" in done.stderr and "Traceback" not in done.stderr
    assert _objects(gcs, vertex.bucket, f"training/{MODEL}/wrong-data/") == {}


def test_the_environment_is_read_as_vertex_sets_it() -> None:
    assert VertexEnvironment.from_environ({}) is None
    env = VertexEnvironment.from_environ(
        {"AIP_MODEL_DIR": "gs://b-1/t/m/1/model/", "AIP_TENSORBOARD_LOG_DIR": "gs://b-1/t/logs/"}
    )
    assert env == VertexEnvironment("gs://b-1/t/m/1/model", None, "gs://b-1/t/logs")
    with pytest.raises(ConfigError, match="AIP_MODEL_DIR must be a gs:// path"):
        VertexEnvironment.from_environ({"AIP_MODEL_DIR": "/tmp/model"})


# -- fetch, release, load -----------------------------------------------------------------------


def test_fetch_by_job_id_then_release_then_load(
    vertex: VertexSetup, clone: Path, tmp_path: Path, chdir: Callable[[Path], None]
) -> None:
    out = cli_ok("compute", "fetch", MODEL, JOB_ID, "--json")
    fetched = json.loads(out)
    assert fetched["uri"] == vertex.model_dir and fetched["tracked"] == "dvc add"
    assert fetched["datasets"] == [f"{DIGITS}:1.0.0"]
    folder = clone / "models" / MODEL
    card = parse_card((folder / "README.md").read_text())
    job = json.loads((folder / "job.json").read_text())
    assert card.meta["datasets"] == [f"{DIGITS}:1.0.0"] and card.meta["base_model"] is None
    assert card.meta["metrics"] == json.loads((folder / "training.json").read_text())["test"]
    assert card.meta["training"] == job["training"]
    assert (folder / "model.keras.dvc").is_file() and (folder / "training.csv").is_file()
    weights = (folder / "model.keras").read_bytes()

    commit_all(clone, "Trained digits-cnn on Vertex AI")
    cli_ok("models", "release", MODEL)
    info = registry.model_info(f"{MODEL}:1.0.0")
    lineage = info.lineage or {}
    assert lineage["datasets"] == {DIGITS: "1.0.0"}
    assert lineage["compute"]["backend"] == "vertex"
    assert lineage["params"]["epochs"] == 1  # the job's, not params.yaml's 10
    assert lineage["job"]["commit"] == vertex.job_env["REGISTRY_COMMIT"]
    assert lineage["job"]["uri"] == vertex.model_dir
    assert lineage["weights"]["md5"] == job["weights"]["md5"]

    # Another project loads the released model by Git URL, through the bucket.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    chdir(elsewhere)
    origin = str(clone.parent / "origin.git")
    git(clone, "push", "-q", "origin", "main")
    assert Path(registry.load_model(f"{MODEL}:1.0.0", registry=origin)).read_bytes() == weights
    import numpy as np

    model = registry.load_keras_model(f"{MODEL}:1.0.0", registry=origin)
    assert model.predict(np.zeros((2, 8, 8, 1), "float32"), verbose=0).shape == (2, 10)


def test_fetch_by_uri_takes_the_base_output_folder(vertex: VertexSetup, clone: Path) -> None:
    base = vertex.model_dir.removesuffix("/model")
    out = cli_ok("compute", "fetch", MODEL, base)
    assert f"fetched {MODEL} from {vertex.model_dir}" in out
    assert "registry models release digits-cnn" in out


# -- refusals -----------------------------------------------------------------------------------


def _delete(gcs: GCSEmulator, vertex: VertexSetup, uri: str, name: str) -> None:
    prefix = uri.removeprefix(f"gs://{vertex.bucket}/")
    gcs.storage_client().bucket(vertex.bucket).blob(f"{prefix}/{name}").delete()


def _unchanged(clone: Path) -> None:
    assert git(clone, "status", "--porcelain") == ""
    assert not (clone / "models" / MODEL / "model.keras").exists()


def test_an_unfinished_job_is_refused(gcs: GCSEmulator, vertex: VertexSetup, clone: Path) -> None:
    uri = _copy_job(gcs, vertex, "unfinished")
    _delete(gcs, vertex, uri, COMPLETION_MARKER)
    err = cli_raises(IncompleteJobOutputError, "compute", "fetch", MODEL, uri)
    assert f"no completion marker {COMPLETION_MARKER}" in str(err)
    assert "has not finished" in str(err) and err.exit_code == 24
    _unchanged(clone)


@pytest.mark.parametrize("missing", ["model.keras", LINEAGE_FILE])
def test_an_output_without_weights_or_lineage_is_refused(
    gcs: GCSEmulator, vertex: VertexSetup, clone: Path, missing: str
) -> None:
    uri = _copy_job(gcs, vertex, f"no-{missing.split('.')[0]}")
    _delete(gcs, vertex, uri, missing)
    err = cli_raises(IncompleteJobOutputError, "compute", "fetch", MODEL, uri)
    assert f"{missing} is missing, though the job's marker lists it" in str(err)
    _unchanged(clone)


def test_a_job_id_with_no_output_is_refused(vertex: VertexSetup, clone: Path) -> None:
    err = cli_raises(IncompleteJobOutputError, "compute", "fetch", MODEL, "never-ran")
    assert f"gs://{vertex.bucket}/training/{MODEL}/never-ran/model" in str(err)
    assert "there is nothing there" in str(err)
    _unchanged(clone)


def test_a_model_trained_on_an_unreleased_dataset_is_refused(
    gcs: GCSEmulator, vertex: VertexSetup, clone: Path
) -> None:
    import hashlib

    uri = _copy_job(gcs, vertex, "unreleased")
    prefix = uri.removeprefix(f"gs://{vertex.bucket}/")
    bucket = gcs.storage_client().bucket(vertex.bucket)
    # A job that trained on digits 1.1.0, which this registry never released.
    lineage = json.loads(bucket.blob(f"{prefix}/{LINEAGE_FILE}").download_as_bytes())
    lineage["datasets"] = {DIGITS: "1.1.0"}
    lineage["data"][0]["dataset"] = f"{DIGITS}:1.1.0"
    text = json.dumps(lineage).encode()
    bucket.blob(f"{prefix}/{LINEAGE_FILE}").upload_from_string(text)
    marker = json.loads(bucket.blob(f"{prefix}/{COMPLETION_MARKER}").download_as_bytes())
    marker["files"][LINEAGE_FILE] = hashlib.md5(text).hexdigest()
    bucket.blob(f"{prefix}/{COMPLETION_MARKER}").upload_from_string(json.dumps(marker))
    err = cli_raises(UnreleasedTrainingDataError, "compute", "fetch", MODEL, uri)
    assert f"trained on {DIGITS}:1.1.0, which this registry has not released" in str(err)
    assert f"registry datasets release {DIGITS}" in str(err) and err.exit_code == 25
    _unchanged(clone)


def _train_in_the_pipeline(clone: Path) -> None:
    """Make ``clone`` train the model in dvc.yaml, as this project does (train@digits-cnn)."""
    from ruamel.yaml import YAML

    shutil.copytree(PROJECT_ROOT / "src", clone / "src", ignore=shutil.ignore_patterns("__py*"))
    ruamel = YAML()
    project = ruamel.load((PROJECT_ROOT / "dvc.yaml").read_text())
    pipeline = ruamel.load((clone / "dvc.yaml").read_text())
    pipeline["stages"]["train"] = project["stages"]["train"]
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["models"] = {MODEL: params["models"][MODEL]}  # the model this registry has
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with (clone / "dvc.yaml").open("w") as f:
        ruamel.dump(pipeline, f)
    commit_all(clone, "Train digits-cnn in the pipeline")


def test_fetched_weights_of_a_pipeline_stage_are_committed_to_dvc_lock(
    vertex: VertexSetup, clone: Path
) -> None:
    """In a registry whose dvc.yaml trains the model (as this project's), the stage's output
    is recorded in dvc.lock (dvc commit), so that release finds the weights up to date."""
    _train_in_the_pipeline(clone)
    # The command as users run it: DVC's chatter stays off stdout, which is the JSON alone.
    done = subprocess.run(
        ["registry", "compute", "fetch", MODEL, JOB_ID, "--json"],
        cwd=clone, capture_output=True, text=True, check=True,
    )
    fetched = json.loads(done.stdout)
    assert fetched["tracked"] == f"stage train@{MODEL}"
    assert not (clone / "models" / MODEL / "model.keras.dvc").exists()
    lock = yaml.safe_load((clone / "dvc.lock").read_text())
    outs = lock["stages"][f"train@{MODEL}"]["outs"]
    job = json.loads((clone / "models" / MODEL / "job.json").read_text())
    assert outs[0]["md5"] == job["weights"]["md5"]
    done = subprocess.run(
        ["dvc", "status", f"train@{MODEL}"], cwd=clone, capture_output=True, text=True, check=True
    )
    assert "up to date" in done.stdout
    commit_all(clone, "Trained digits-cnn on Vertex AI")
    cli_ok("models", "release", MODEL)
    assert (registry.model_info(f"{MODEL}:1.0.0").lineage or {})["compute"]["backend"] == "vertex"


def test_a_stage_whose_dataset_build_is_not_the_jobs_is_refused(
    vertex: VertexSetup, clone: Path
) -> None:
    _train_in_the_pipeline(clone)
    prepared = clone / "datasets" / DIGITS / "prepared"
    (prepared / "extra.txt").write_text("another build\n")  # not the released 1.0.0 any more
    err = cli_raises(UnreleasedTrainingDataError, "compute", "fetch", MODEL, JOB_ID)
    assert f"is not the build in datasets/{DIGITS}/prepared that train@{MODEL}" in str(err)
    (prepared / "extra.txt").unlink()
    _unchanged(clone)


@pytest.mark.skipif(
    on_google_cloud(),
    reason=NOT_APPLICABLE + "a Google Cloud machine has credentials from its metadata server",
)
def test_fetch_without_credentials_says_how_to_get_them(
    clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")  # the real Cloud Storage: credentials needed
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    err = cli_raises(CredentialsError, "compute", "fetch", MODEL, "gs://my-lab-vertex/t/1")
    assert "gcloud auth application-default login" in str(err)
    _unchanged(clone)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("weights-rewritten", "model.keras is not the file the job wrote (its MD5 differs)"),
        ("marker-points-out", "its marker lists '../secrets', which is not a file of the job"),
        ("lineage-not-json", f"its {LINEAGE_FILE} is not JSON"),
    ],
)
def test_an_output_that_is_not_what_its_marker_says_is_refused(
    gcs: GCSEmulator, vertex: VertexSetup, clone: Path, case: str, expected: str
) -> None:
    import hashlib

    uri = _copy_job(gcs, vertex, case)
    prefix = uri.removeprefix(f"gs://{vertex.bucket}/")
    bucket = gcs.storage_client().bucket(vertex.bucket)
    marker_blob = bucket.blob(f"{prefix}/{COMPLETION_MARKER}")
    marker = json.loads(marker_blob.download_as_bytes())
    if case == "weights-rewritten":  # e.g. a second job writing to the same folder
        bucket.blob(f"{prefix}/model.keras").upload_from_string(b"other weights")
    elif case == "marker-points-out":
        marker["files"]["../secrets"] = hashlib.md5(b"").hexdigest()
    else:
        bucket.blob(f"{prefix}/{LINEAGE_FILE}").upload_from_string(b"{not json")
        marker["files"][LINEAGE_FILE] = hashlib.md5(b"{not json").hexdigest()
    marker_blob.upload_from_string(json.dumps(marker))
    err = cli_raises(IncompleteJobOutputError, "compute", "fetch", MODEL, uri)
    assert expected in str(err) and err.exit_code == 24
    _unchanged(clone)
