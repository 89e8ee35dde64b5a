"""Training runs and releases mirrored to MLflow: a real SQLite store and a real tracking server."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import registry
from registry import tracking
from registry.cli import main
from registry.errors import ConfigError
from registry.repo.records import read_logged_run
from tests.conftest import ReleasedRegistry, commit_all, free_port
from tests.test_models import _fill_card, _weights

DIGITS = "image_classification/digits"


@pytest.fixture
def no_tracking_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _client(uri: str):  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _train(tracked: tracking.TrackedRun, epochs: int = 3) -> None:
    """A training-like loop: a few epochs of metrics, final metrics, weights."""
    for epoch in range(epochs):
        tracked.log_epoch(epoch, {"loss": 1.0 / (epoch + 1), "accuracy": 0.5 + epoch / 10})
    tracked.log_final({"accuracy": 0.93})
    tracked.log_weights("models/tracked-cnn/model.keras")


def _check_run(uri: str, run_id: str, epochs: int = 3) -> object:
    client = _client(uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"epochs": str(epochs), "optimizer.learning_rate": "0.001"}
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(e, 1.0 / (e + 1)) for e in range(epochs)]
    assert run.data.metrics["final_accuracy"] == 0.93
    assert run.data.tags["registry.weights"] == "models/tracked-cnn/model.keras"
    return run


def _live_history(client, uid: str) -> bool:  # type: ignore[no-untyped-def]
    experiment = client.get_experiment_by_name("server-run")
    if experiment is None:
        return False
    runs = client.search_runs([experiment.experiment_id], f"tags.`registry.run_uid` = '{uid}'")
    return bool(runs) and len(client.get_metric_history(runs[0].info.run_id, "loss")) == 3


# -- fast units ----------------------------------------------------------------------------------


def test_redact_uri_and_model_names() -> None:
    assert tracking.redact_uri("https://me:t0k@host:5000/x?token=abc&a=1") == (
        "https://host:5000/x?a=1"
    )
    scp_like = "git@github.com:lab/registry.git"  # no credentials: kept as it is
    assert tracking.redact_uri(scp_like) == scp_like
    absolute = "sqlite:////home/me/registry/mlflow/mlflow.db"  # four slashes: an absolute path
    assert tracking.redact_uri(absolute) == absolute
    assert tracking.redact_uri("sqlite:////x.db?token=abc") == "sqlite:////x.db"
    assert tracking.mlflow_model_name("vision/resnet18") == "vision.resnet18"
    assert tracking.mlflow_model_name("digits-cnn") == "digits-cnn"


def test_a_recorded_run_links_its_page_without_credentials(tmp_path: Path) -> None:
    """What the logger notes of a run on an HTTP(S) server (never its credentials), what a
    release copies into its record, and the link made from that record alone."""
    secret = "https://trainer:pw-8Zq4@mlflow.lab:5000/?token=t0k-3x&team=vision"
    tracking._note_logged(tmp_path, "uid1", secret, "run/1", "7")
    note = read_logged_run(tmp_path, "uid1")
    assert note == {"tracking_uri": "https://mlflow.lab:5000/?team=vision",
                    "experiment_id": "7", "run_id": "run/1"}
    assert "pw-8Zq4" not in (tmp_path / "mlflow/logged/uid1.json").read_text()
    link = tracking.recorded_run_link({"training_run": "uid1", "mlflow_run": note})
    assert link == "https://mlflow.lab:5000/?team=vision#/experiments/7/runs/run%2F1"
    # A record written by hand (a tag anyone could push) with credentials: left out of the link.
    assert tracking.recorded_run_link({"mlflow_run": {"tracking_uri": secret, "run_id": "r"}}) == (
        "https://mlflow.lab:5000/?team=vision#/runs/r")
    # A local store's run has no page: nothing noted, nothing linked.
    tracking._note_logged(tmp_path, "uid2", f"sqlite:///{tmp_path}/mlflow.db", "r2", "0")
    assert read_logged_run(tmp_path, "uid2") is None and read_logged_run(tmp_path, None) is None
    for bad in ({"mlflow_run": {"tracking_uri": "javascript:alert(1)", "run_id": "r"}},
                {"mlflow_run": {"tracking_uri": "file:///etc", "run_id": "r"}},
                {"mlflow_run": "http://x"}, {"training_run": "uid1"}, {}):
        assert tracking.recorded_run_link(bad) is None


def test_a_server_uri_with_credentials_is_reached_with_them() -> None:
    """A tracking URI holding user info (as MLflow's client accepts) is checked with Basic
    authentication, not given up as unreachable; a server that refuses (401) is up; a port
    where nothing listens is down."""
    import base64
    import http.server
    import threading

    seen: list[tuple[str, str | None]] = []

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(200 if self.headers.get("Authorization") else 401)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert tracking._reachable(f"http://trainer:pw%2F8@127.0.0.1:{port}/mlflow/?team=a")
        expected = "Basic " + base64.b64encode(b"trainer:pw/8").decode()
        assert seen == [("/mlflow/health", expected)]
        assert tracking._reachable(f"http://127.0.0.1:{port}")  # 401: it answered
        assert seen[-1] == ("/health", None)
    finally:
        server.shutdown()
        server.server_close()
    assert not tracking._reachable(f"http://trainer:pw@127.0.0.1:{free_port()}")


# -- runs ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_run_logs_to_the_sqlite_default(tmp_path: Path, chdir, no_tracking_env) -> None:
    chdir(tmp_path)
    # A password no MLflow run name can contain by chance (they are random words like
    # "secretive-sow-101", which made a check for "secret" fail now and then).
    dataset = tracking.DatasetRef(
        DIGITS, "1.0.0", "0123abcd.dir", "https://me:pw-7Hq2xZ@git/lab"
    )
    params = {"epochs": 3, "optimizer": {"learning_rate": 0.001}}
    with tracking.run("tracked-cnn", params=params, datasets=[dataset]) as tracked:
        _train(tracked)
    run_id = tracked.wait()  # the logger process finishes on its own; a test waits for it
    assert run_id and not tracked.offline
    uri = tracking.tracking_uri()
    assert uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    run = _check_run(uri, run_id)
    assert run.data.tags[f"dataset.{DIGITS}"] == "1.0.0"  # type: ignore[attr-defined]
    assert run.data.tags[f"dataset.{DIGITS}.md5"] == "0123abcd.dir"  # type: ignore[attr-defined]
    (given,) = run.inputs.dataset_inputs  # type: ignore[attr-defined]
    assert given.dataset.name == f"{DIGITS}:1.0.0" and given.dataset.digest == "0123abcd"
    source = json.loads(given.dataset.source)
    assert source == {"reference": f"{DIGITS}:1.0.0", "md5": "0123abcd.dir",
                      "registry": "https://git/lab"}
    assert "pw-7Hq2xZ" not in json.dumps(run.to_dictionary())  # type: ignore[attr-defined]

    with pytest.raises(RuntimeError), tracking.run("tracked-cnn") as failed:
        failed.log_epoch(0, {"loss": 2.0})
        raise RuntimeError("out of memory")
    failed_id = failed.wait()
    assert failed_id and _client(uri).get_run(failed_id).info.status == "FAILED"


def test_a_short_run_has_no_logger_until_it_ends_and_syncs_its_record_only_at_its_ends(
    tmp_path: Path, chdir, no_tracking_env, monkeypatch
) -> None:
    """What logging costs a short run (issue 17): no logger process shares the CPU until the run
    ends, and the pending record, rewritten at every epoch, is fsynced only when the run starts
    and when it ends; the run still reaches MLflow whole."""
    import os

    chdir(tmp_path)
    synced: list[int] = []
    fsync = os.fsync

    def counted(fd: int) -> None:
        synced.append(fd)
        fsync(fd)

    monkeypatch.setattr(os, "fsync", counted)
    params = {"epochs": 3, "optimizer": {"learning_rate": 0.001}}
    with tracking.run("tracked-cnn", params=params) as tracked:
        assert len(synced) == 1  # the run's first record
        _train(tracked)
        assert tracked._logger is None  # nothing started beside training
        assert len(synced) == 1  # 7 metrics and a tag rewritten, none fsynced
        record = json.loads((tmp_path / "mlflow" / "pending" / f"{tracked.uid}.json").read_text())
        assert len(record["metrics"]) == 7 and record["status"] == "RUNNING"
    assert len(synced) == 2 and tracked._logger is not None  # the last record, then the logger
    run_id = tracked.wait()
    assert run_id and not tracked.offline
    _check_run(tracking.tracking_uri(), run_id)


@pytest.mark.slow
def test_weights_are_uploaded_only_when_asked_and_only_as_logged(
    tmp_path: Path, chdir, no_tracking_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    chdir(tmp_path)
    weights = tmp_path / "models" / "tracked-cnn" / "model.keras"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"trained" * 100)
    monkeypatch.setenv("REGISTRY_MLFLOW_WEIGHTS", "maybe")
    with (
        pytest.raises(ConfigError, match="REGISTRY_MLFLOW_WEIGHTS"),
        tracking.run("tracked-cnn") as refused,
    ):
        refused.log_weights(weights)
    refused.wait()
    monkeypatch.setenv("REGISTRY_MLFLOW_WEIGHTS", "true")
    with tracking.run("tracked-cnn") as uploaded:
        uploaded.log_weights(weights)
    uploaded_id = uploaded.wait()  # uploaded after the run: before the next one overwrites them
    with tracking.run("tracked-cnn") as changed:
        changed.log_weights(weights)
        weights.write_bytes(b"retrained" * 100)  # before the logger uploads: not these bytes
    with tracking.run("tracked-cnn") as linked:
        linked.log_weights(weights, upload=False)
    client = _client(tracking.tracking_uri())
    import mlflow.artifacts

    first = client.get_run(uploaded_id)
    assert first.data.tags["registry.weights_artifact"] == "weights/model.keras"
    fetched = mlflow.artifacts.download_artifacts(
        f"{first.info.artifact_uri}/weights/model.keras", dst_path=str(tmp_path / "fetched")
    )
    assert Path(fetched).read_bytes() == b"trained" * 100
    for run in (changed, linked):
        kept = client.get_run(run.wait())
        assert kept.data.tags["registry.weights"] == "models/tracked-cnn/model.keras"
        assert "registry.weights_artifact" not in kept.data.tags
        assert not client.list_artifacts(kept.info.run_id)


@pytest.mark.slow
def test_run_logs_to_a_server_with_lineage(
    released_registry: ReleasedRegistry, chdir, mlflow_server: str, monkeypatch
) -> None:
    chdir(released_registry.clone)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("REGISTRY_MLFLOW_LIVE_AFTER", "0")  # followed live from the start
    params = {"epochs": 3, "optimizer": {"learning_rate": 0.001}}
    client = _client(mlflow_server)
    with tracking.run(
        "tracked-cnn", params=params, datasets=[f"{DIGITS}:1.*"], experiment="server-run"
    ) as tracked:
        _train(tracked)
        deadline = time.monotonic() + 30
        while not _live_history(client, tracked.uid):  # in MLflow while training goes on
            assert time.monotonic() < deadline, "the run was not followed live"
            time.sleep(0.2)
    run_id = tracked.wait()
    assert run_id and not tracked.offline
    run = _check_run(mlflow_server, run_id)
    tags = run.data.tags  # type: ignore[attr-defined]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=released_registry.clone,
                          capture_output=True, text=True, check=True).stdout.strip()
    assert tags["mlflow.source.git.commit"] == head
    expected_md5 = tracking.dataset_ref(f"{DIGITS}:1.0.0").md5
    assert expected_md5 and expected_md5.endswith(".dir")
    assert tags[f"dataset.{DIGITS}"] == "1.0.0"
    assert tags[f"dataset.{DIGITS}.md5"] == expected_md5
    (given,) = run.inputs.dataset_inputs  # type: ignore[attr-defined]
    assert json.loads(given.dataset.source)["reference"] == f"{DIGITS}:1.0.0"
    assert not list((released_registry.clone / "mlflow" / "pending").glob("*.json"))


@pytest.mark.slow
def test_mlflow_down_keeps_the_run_and_sync_replays_it(
    released_registry: ReleasedRegistry, chdir, mlflow_server: str, monkeypatch
) -> None:
    chdir(released_registry.clone)
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", down)
    params = {"epochs": 3, "optimizer": {"learning_rate": 0.001}}
    started = time.perf_counter()
    with (
        pytest.warns(tracking.MlflowUnavailableWarning, match="registry mlflow sync") as told,
        tracking.run("tracked-cnn", params=params, experiment="offline-run") as tracked,
    ):
        _train(tracked)
        during = tracking.sync(tracking_uri=mlflow_server)  # the run is not over: left alone
        assert (during.skipped, during.replayed) == (1, 0)
    assert time.perf_counter() - started < 3
    assert len(told) == 1  # told once, not once per epoch
    assert tracked.offline and tracked.pending_file is not None
    record = json.loads(tracked.pending_file.read_text())
    assert record["status"] == "FINISHED" and len(record["metrics"]) == 7

    with pytest.raises(registry.RegistryError, match="not reachable"):
        tracking.sync()
    assert tracked.pending_file.exists()  # nothing lost

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    report = tracking.sync()
    assert report.replayed == 1 and not tracked.pending_file.exists()
    client = _client(mlflow_server)
    experiment = client.get_experiment_by_name("offline-run")
    (run,) = client.search_runs([experiment.experiment_id])
    _check_run(mlflow_server, run.info.run_id)
    assert run.data.tags["registry.replayed"] == "true"
    assert tracking.sync().replayed == 0


@pytest.fixture
def broken_server() -> Iterator[str]:
    """An HTTP server whose /health answers but whose MLflow API fails (500)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 500)
            self.end_headers()
            self.wfile.write(b"OK")

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.slow
def test_mlflow_failing_mid_run_keeps_the_run(
    tmp_path: Path, chdir, broken_server: str, monkeypatch
) -> None:
    chdir(tmp_path)
    monkeypatch.setenv("REGISTRY_MLFLOW_LIVE_AFTER", "0")
    with (
        pytest.warns(tracking.MlflowUnavailableWarning, match="failed") as told,
        tracking.run("tracked-cnn", tracking_uri=broken_server) as tracked,
    ):
        deadline = time.monotonic() + 30
        epoch = 0
        while not tracked.offline:  # training goes on while the logger process fails
            assert time.monotonic() < deadline, "the failure was never noticed"
            tracked.log_epoch(epoch, {"loss": 1.0})
            epoch += 1
            time.sleep(0.2)
        tracked.log_epoch(epoch, {"loss": 0.5})
    assert len(told) == 1
    assert tracked.pending_file is not None
    record = json.loads(tracked.pending_file.read_text())
    assert record["status"] == "FINISHED" and record["metrics"][-1][:3] == ["loss", 0.5, epoch]


# -- sync of the model registry ------------------------------------------------------------------


@pytest.mark.slow
def test_sync_mirrors_releases_and_stages(
    released_registry: ReleasedRegistry, chdir, mlflow_server: str, monkeypatch, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clone = released_registry.clone
    chdir(clone)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    name = "vision/synced-cnn"  # a '/' in the name: registered as vision.synced-cnn
    registry.add_model(name, _weights(tmp_path, content=b"v1" * 500))
    _fill_card(clone, name)
    commit_all(clone, f"Add {name}")
    first = registry.release_model(name)
    client = _client(mlflow_server)
    # A card may name the MLflow run id itself; the server accepts it with the DVC source.
    server_run = client.create_run(client.create_experiment("synced")).info.run_id
    registry.add_model(name, _weights(tmp_path, content=b"v2" * 500), force=True)
    _fill_card(clone, name, training_run=server_run)
    commit_all(clone, f"Retrain {name}")
    registry.release_model(name, bump="minor")
    registry.promote_model(f"{name}:1.0.0", "prod")
    registry.promote_model(f"{name}:1.1.0", "staging")

    report = tracking.sync()
    # registered model, 2 versions, 2 aliases
    assert (report.created, report.updated, report.deleted) == (5, 0, 0), report.actions
    assert report.unlinked == []  # 1.0.0 names no training run: nothing to link, nothing missing
    model = client.get_registered_model("vision.synced-cnn")
    versions = {v.tags["registry.version"]: v for v in
                client.search_model_versions("name='vision.synced-cnn'")}
    assert set(versions) == {"1.0.0", "1.1.0"}
    v1 = versions["1.0.0"]
    assert v1.tags["registry.tag"] == f"{name}@v1.0.0"
    assert v1.tags["git_commit"] == first.commit
    assert v1.tags[f"dataset.{DIGITS}"] == "1.0.0"
    assert v1.source.startswith(f"dvc:///models/{name}/model.keras?md5=")
    assert model.aliases == {"prod": v1.version, "staging": versions["1.1.0"].version}
    assert not v1.run_id and versions["1.1.0"].run_id == server_run
    assert client.get_model_version_by_alias("vision.synced-cnn", "staging").run_id == server_run
    # Lineage links the run on the server: named by its id, or by the registry's run uid.
    node = registry.get_lineage(f"{name}:1.1.0").nodes[f"{name}:1.1.0"]
    assert node.details["training_run_url"] == f"{mlflow_server}/#/runs/{server_run}"
    client.set_tag(server_run, "registry.run_uid", "uid42")
    assert tracking.training_run_link("uid42") == f"{mlflow_server}/#/runs/{server_run}"
    assert tracking.training_run_link("no-such-uid") is None
    assert tracking.training_run_link("uid42", "http://127.0.0.1:9") is None  # nothing there

    assert main(["mlflow", "sync", "--json"]) is None
    again = json.loads(capsys.readouterr().out)
    assert (again["created"], again["updated"], again["deleted"], again["replayed"]) == (0, 0, 0, 0)
    assert again["unchanged"] == 5

    registry.demote_model(name, "prod")
    report = tracking.sync()
    assert (report.created, report.updated, report.deleted) == (0, 0, 1), report.actions
    assert client.get_registered_model("vision.synced-cnn").aliases == {
        "staging": versions["1.1.0"].version
    }
    assert not tracking.sync().changed


@pytest.mark.slow
def test_sync_links_each_version_to_its_training_run_and_relinks_an_old_store(
    released_registry: ReleasedRegistry, chdir, tmp_path: Path, no_tracking_env,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """mlflow#17134: ``get_model_version_by_alias(...).run_id`` was ``None`` after a sync."""
    clone = released_registry.clone
    chdir(clone)
    name, missing = "linked-cnn", "0123456789abcdef0123456789abcdef"
    with tracking.run(name, params={"epochs": 1}, datasets=[f"{DIGITS}:1.0.0"]) as tracked:
        tracked.log_final({"accuracy": 0.9})
    run_id = tracked.wait()
    assert run_id and run_id != tracked.uid  # the lineage names the uid, MLflow its own id
    first = _weights(tmp_path, content=b"l1" * 500)
    registry.add_model(name, first)
    _fill_card(clone, name)
    commit_all(clone, f"Add {name}")
    registry.record_training_run(name, tracked.uid, first)
    assert str(registry.release_model(name).version) == "1.0.0"
    registry.add_model(name, _weights(tmp_path, content=b"l2" * 500), force=True)
    _fill_card(clone, name, training_run=missing)  # a run this store never saw
    commit_all(clone, f"Retrain {name}")
    registry.release_model(name, bump="minor")
    registry.promote_model(f"{name}:1.0.0", "prod")
    registry.promote_model(f"{name}:1.1.0", "staging")
    uri = tracking.tracking_uri()
    client = _client(uri)
    client.create_registered_model(name)  # version 1 deleted in MLflow: its number stays used
    client.delete_model_version(name, client.create_model_version(name, "dvc:///x").version)

    report = tracking.sync()
    assert report.unlinked == [{"model": name, "version": "1.1.0", "training_run": missing}]
    prod = client.get_model_version_by_alias(name, "prod")
    assert (str(prod.version), prod.run_id) == ("2", run_id)
    assert f"{name} 1.0.0: created as 2, linked to run {run_id}" in "\n".join(report.actions)
    staging = client.get_model_version_by_alias(name, "staging")
    assert (str(staging.version), staging.run_id or None) == ("3", None)  # still mirrored
    run = client.get_run(prod.run_id)  # version -> run -> the dataset it read, with its hash
    (given,) = run.inputs.dataset_inputs
    md5 = tracking.dataset_ref(f"{DIGITS}:1.0.0").md5
    source = json.loads(given.dataset.source)
    assert (source["reference"], source["md5"]) == (f"{DIGITS}:1.0.0", md5)
    assert given.dataset.name == f"{DIGITS}:1.0.0" and md5 and md5.startswith(given.dataset.digest)

    assert main(["mlflow", "sync"]) is None  # the CLI says which run is missing, changes nothing
    out = capsys.readouterr().out
    assert f"version {name} 1.1.0: its training run {missing} is not in the tracking store" in out
    assert "0 created, 0 updated, 5 unchanged, 0 deleted, 1 without their run" in out

    # A store synced before versions were linked: its versions have no run_id.
    with sqlite3.connect(uri.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE model_versions SET run_id = NULL WHERE name = ?", (name,))
    assert client.get_model_version_by_alias(name, "prod").run_id is None
    report = tracking.sync()
    assert (report.created, report.updated, report.deleted) == (0, 1, 0), report.actions
    assert f"{name} 1.0.0: linked to run {run_id} (re-created as 2)" in report.actions[0]
    prod = client.get_model_version_by_alias(name, "prod")
    assert (str(prod.version), prod.run_id) == ("2", run_id)
    assert prod.tags["registry.tag"] == f"{name}@v1.0.0"
    assert prod.tags["training_run"] == tracked.uid
    aliases = client.get_registered_model(name).aliases
    assert {alias: str(v) for alias, v in aliases.items()} == {"prod": "2", "staging": "3"}
    assert client.get_registered_model(name).tags["registry.name"] == name
    assert client.get_model_version(name, "3").tags["registry.version"] == "1.1.0"
    assert not tracking.sync().changed  # a third sync is a no-op


@pytest.mark.slow
def test_two_syncs_at_once_on_a_new_sqlite_store_both_succeed_without_duplicates(
    released_registry: ReleasedRegistry, chdir, tmp_path: Path, no_tracking_env
) -> None:
    """MLflow creates a new SQLite store's tables on first use; two processes doing that at once
    failed ("duplicate column name"). The registry takes a lock beside the file."""
    clone = released_registry.clone
    chdir(clone)
    name = "vision/raced-cnn"
    registry.add_model(name, _weights(tmp_path, content=b"r1" * 500))
    _fill_card(clone, name)
    commit_all(clone, f"Add {name}")
    registry.release_model(name)
    registry.promote_model(f"{name}:1.0.0", "prod")
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    argv = [sys.executable, "-m", "registry", "mlflow", "sync", "--tracking-uri", uri]
    procs = [subprocess.Popen(argv, cwd=clone, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outcomes = [(p.communicate(timeout=120)[1], p.returncode) for p in procs]
    assert [code for _, code in outcomes] == [0, 0], outcomes
    client = _client(uri)
    versions = client.search_model_versions("name='vision.raced-cnn'")
    assert [v.tags["registry.version"] for v in versions] == ["1.0.0"]
    assert client.get_registered_model("vision.raced-cnn").aliases == {"prod": versions[0].version}
