"""The lab's MLflow as labs run it: a tracking server on PostgreSQL, its artifacts on Cloud Storage.

One server for the module, ``mlflow server --backend-store-uri postgresql://...
--artifacts-destination gs://...``, on Debian's PostgreSQL (a throwaway cluster) and the GCS
emulator, both on 127.0.0.1. Against it: the zoo's training logs its run and uploads its weights
(read back from the bucket), two ``registry mlflow sync`` at once make no duplicate versions, and
a sync that died leaves a lease that the next one takes over.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import registry
from registry import tracking
from registry.cloud.emulator import GCSEmulator
from registry.errors import RemoteError
from tests.conftest import (
    PROJECT_ROOT,
    ReleasedRegistry,
    commit_all,
    mlflow_server_on,
    postgres_server,
)
from tests.test_models import _fill_card, _weights

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class LabServer:
    """The module's tracking server: its URL, and the bucket and prefix of its artifacts."""

    url: str
    bucket: str
    gcs: GCSEmulator


@pytest.fixture(scope="module")
def lab_server(gcs: GCSEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """``mlflow server`` on a fresh PostgreSQL database, artifacts in a bucket on the emulator."""
    bucket = f"lab-mlflow-{uuid.uuid4().hex[:8]}"
    gcs.create_bucket(bucket)
    base = tmp_path_factory.mktemp("lab-mlflow")
    with (
        postgres_server() as database,
        # STORAGE_EMULATOR_HOST stands for the lab's GOOGLE_APPLICATION_CREDENTIALS: given to the
        # server alone; clients upload and download through it.
        mlflow_server_on(
            base, database, f"gs://{bucket}/mlflow", STORAGE_EMULATOR_HOST=gcs.url
        ) as url,
    ):
        yield LabServer(url, bucket, gcs)


def _client(uri: str):  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _logged_run(url: str, uid: str, timeout: float = 90.0):  # type: ignore[no-untyped-def]
    """The complete MLflow run whose ``registry.run_uid`` is ``uid`` (its logger may still be
    at it when training returns)."""
    client = _client(url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        experiments = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(experiments, f"tags.`registry.run_uid` = '{uid}'")
        if runs and runs[0].data.tags.get("registry.complete") == "true":
            return runs[0]
        time.sleep(0.5)
    raise AssertionError(f"run {uid} was not logged to {url} in {timeout:.0f} s")


def _bucket_objects(gcs: GCSEmulator, bucket: str) -> dict[str, bytes]:
    client = gcs.storage_client()
    return {blob.name: blob.download_as_bytes() for blob in client.list_blobs(bucket)}


def test_the_zoo_trains_into_the_lab_server_and_its_weights_land_on_gcs(
    lab_server: LabServer,
    released_registry: ReleasedRegistry,
    chdir: Callable[[Path], None],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from src.zoo import pipeline

    clone = released_registry.clone
    chdir(clone)
    out = clone / "models" / "digits-cnn"
    out.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "models" / "digits-cnn" / "README.md", out)
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["train"]["strategy"] = "cpu"
    params["models"]["digits-cnn"]["epochs"] = 1
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # What a lab sets on its training machines: the server's URL and the weights' upload. No
    # bucket credentials: the server writes to the bucket.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", lab_server.url)
    monkeypatch.setenv("REGISTRY_MLFLOW_WEIGHTS", "1")
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)

    summary = pipeline.train_stage("digits-cnn", clone, verbose=0)
    run = _logged_run(lab_server.url, summary["training_run"])
    assert run.info.status == "FINISHED"
    assert run.data.params["epochs"] == "1" and run.data.params["train.strategy"] == "cpu"
    assert run.data.metrics["test_accuracy"] == summary["metrics"]["accuracy"]
    history = _client(lab_server.url).get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0]
    assert run.data.tags["dataset.image_classification/digits"] == "1.0.0"
    assert run.data.tags["registry.weights"] == "models/digits-cnn/model.keras"
    assert run.data.tags["registry.weights_artifact"] == "weights/model.keras"
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")  # through the server

    weights = (out / "model.keras").read_bytes()
    import mlflow.artifacts

    fetched = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="weights/model.keras",
        tracking_uri=lab_server.url, dst_path=str(tmp_path / "fetched"),
    )  # fmt: skip
    assert Path(fetched).read_bytes() == weights
    stored = {
        name: data
        for name, data in _bucket_objects(lab_server.gcs, lab_server.bucket).items()
        if run.info.run_id in name and name.endswith("/artifacts/weights/model.keras")
    }
    assert list(stored.values()) == [weights], sorted(stored)
    assert next(iter(stored)).startswith("mlflow/")  # under --artifacts-destination


def _released_model(clone: Path, tmp_path: Path, name: str) -> None:
    registry.add_model(name, _weights(tmp_path, content=b"pg" * 500))
    _fill_card(clone, name)
    commit_all(clone, f"Add {name}")
    registry.release_model(name)
    registry.promote_model(f"{name}:1.0.0", "prod")


def test_two_syncs_at_once_make_each_version_once(
    lab_server: LabServer, released_registry: ReleasedRegistry, chdir: Callable[[Path], None],
    tmp_path: Path,
) -> None:
    """Two syncs from two machines would both find a new release missing and both create it:
    the lease in the store (tracking._SyncLease) lets one sync at a time."""
    clone = released_registry.clone
    chdir(clone)
    name = "vision/pg-raced-cnn"
    _released_model(clone, tmp_path, name)
    argv = [sys.executable, "-m", "registry", "mlflow", "sync", "--json",
            "--tracking-uri", lab_server.url]  # fmt: skip
    procs = [
        subprocess.Popen(argv, cwd=clone, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outcomes = [(*p.communicate(timeout=180), p.returncode) for p in procs]
    assert [code for *_, code in outcomes] == [0, 0], outcomes
    # One made the registered model, its version and the alias; the other found them made.
    reports = [json.loads(out) for out, _, _ in outcomes]
    assert sorted((r["created"], r["unchanged"]) for r in reports) == [(0, 3), (3, 0)], reports
    client = _client(lab_server.url)
    versions = client.search_model_versions("name='vision.pg-raced-cnn'")
    assert [v.tags["registry.version"] for v in versions] == ["1.0.0"]
    assert client.get_registered_model("vision.pg-raced-cnn").aliases == {
        "prod": versions[0].version
    }
    assert not client.search_registered_models(f"name='{tracking.SYNC_LEASE_MODEL}'")
    assert not tracking.sync(tracking_uri=lab_server.url).changed


def test_a_lease_left_by_a_sync_that_died_is_taken_over(
    lab_server: LabServer, released_registry: ReleasedRegistry, chdir: Callable[[Path], None],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clone = released_registry.clone
    chdir(clone)
    _released_model(clone, tmp_path, "pg-leased-cnn")
    client = _client(lab_server.url)
    client.create_registered_model(
        tracking.SYNC_LEASE_MODEL, tags={"holder": "crashed-host:1", "renewed": "0"}
    )
    report = tracking.sync(tracking_uri=lab_server.url)
    assert any("took over the sync lease of crashed-host:1" in a for a in report.actions)
    assert client.get_registered_model("pg-leased-cnn").aliases
    assert not client.search_registered_models(f"name='{tracking.SYNC_LEASE_MODEL}'")

    # A lease renewed a moment ago is another sync at work: a sync waits for it, and gives up
    # with a clear error after its wait (shortened here).
    client.create_registered_model(
        tracking.SYNC_LEASE_MODEL, tags={"holder": "busy-host:2", "renewed": f"{time.time()}"}
    )
    monkeypatch.setattr(tracking, "SYNC_LEASE_WAIT_S", 1.0)
    with pytest.raises(registry.RegistryError, match="busy-host:2 has been syncing") as error:
        tracking.sync(tracking_uri=lab_server.url)
    assert error.value.exit_code == RemoteError.exit_code
    client.delete_registered_model(tracking.SYNC_LEASE_MODEL)
