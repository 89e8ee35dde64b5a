"""Training runs and model releases mirrored to MLflow; Git and DVC stay the source of truth.

Training code logs a run with :func:`run`; ``registry mlflow sync`` (:func:`sync`) replays runs
that could not reach MLflow and mirrors every model release and stage into MLflow's Model
Registry. MLflow is a mirror: it can be deleted and rebuilt from Git, DVC and the pending files.

Where runs go, in order: the ``tracking_uri`` argument, ``$MLFLOW_TRACKING_URI`` (a tracking
server), else the embedded default ``sqlite:///<registry root>/mlflow/mlflow.db``.

Example:
    >>> from registry import tracking
    >>> with tracking.run("digits-cnn", params={"epochs": 10},
    ...                   datasets=["image_classification/digits:1.0.0"]) as tracked:
    ...     model.fit(train, epochs=10, callbacks=[tracked.keras_callback()])
    ...     tracked.log_final({"accuracy": 0.97})
    ...     tracked.log_weights("models/digits-cnn/model.keras")

Cheap: the training process never imports MLflow. Each call records into the run's file
``mlflow/pending/<id>.json`` (replaced atomically); a logger process at the lowest priority
sends it to MLflow in batches and removes the file once all is logged. Runs shorter than
:data:`LIVE_AFTER_S` (60 s) reach MLflow when they end: their logger process starts then, so
nothing shares the CPU with training; longer ones are followed live from then on.

Never loses a run: if the tracking server cannot be reached (a 2-second ``/health`` check, then
no retries) or fails mid-run, training goes on, the file stays, and one warning says that
``registry mlflow sync`` will log it. Credentials never reach MLflow: the user info and secret
query keys of every URI logged are removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from registry import layout
from registry.atomic import atomic_write_text
from registry.config import mlflow_weights
from registry.errors import NotARegistryError, RegistryError, RemoteError
from registry.repo.records import mlflow_run
from registry.repo.session import RegistryArg, Session, as_reference, open_session
from registry.repo.tags import Release
from registry.storage.hashes import hash_file

__all__ = [
    "DatasetRef",
    "MlflowUnavailableWarning",
    "SyncReport",
    "TrackedRun",
    "dataset_ref",
    "mlflow_model_name",
    "recorded_run_link",
    "redact_uri",
    "run",
    "run_link",
    "sync",
    "tracking_uri",
    "training_run_link",
]

TRACKING_DIR = layout.TRACKING_DIR
PENDING_DIR = f"{TRACKING_DIR}/pending"
RECORD_FORMAT = 1
HEALTH_TIMEOUT_S = 2.0  # how long a run waits to learn that the tracking server is down
_POLL_S = 0.2  # how often the logger process looks for new epochs
LIVE_AFTER_S = 60.0  # runs shorter than this reach MLflow when they end, longer ones live
_LIVE_AFTER_ENV = "REGISTRY_MLFLOW_LIVE_AFTER"  # overrides LIVE_AFTER_S (seconds)
_SECRET_QUERY_KEYS = {"token", "access_token", "password", "secret", "key", "sig", "signature"}


class MlflowUnavailableWarning(UserWarning):
    """MLflow could not be reached; the run is kept locally until ``registry mlflow sync``."""


# -- names, URIs, datasets ------------------------------------------------------------------


def mlflow_model_name(name: str) -> str:
    """The Model Registry name of a registry model: ``/`` (refused by MLflow) becomes ``.``.

    Registry names never contain ``.``, so the mapping is one to one and reversible:
    ``vision/resnet18`` <-> ``vision.resnet18``.
    """
    return name.replace("/", ".")


def redact_uri(value: str) -> str:
    """``value`` with any credentials taken out: the user info of a URL and secret query keys.

    Example:
        >>> redact_uri("https://me:tok@host/x?token=abc&a=1")
        'https://host/x?a=1'
    """
    if "://" not in value:
        return value
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        return value
    netloc = parts.netloc.rsplit("@", 1)[-1]
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k.lower() not in _SECRET_QUERY_KEYS]
    if netloc == parts.netloc and len(kept) == len(pairs):
        return value  # nothing secret: the URI exactly as written
    query = urllib.parse.urlencode(kept)
    # Assembled by hand: urlunsplit turns the four slashes of an absolute sqlite:////path into
    # a relative sqlite://path.
    uri = f"{parts.scheme}://{netloc}{parts.path}"
    return uri + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def _clean(value: Any) -> str:
    return redact_uri(str(value))


@dataclass(frozen=True)
class DatasetRef:
    """A dataset version a run read: ``name:version`` and the DVC hash of its bytes.

    Attributes:
        name: The dataset name.
        version: Its exact version.
        md5: The DVC hash of its prepared folder (``...dir``), or ``None`` if unknown.
        registry_url: Where the registry is (credentials removed), or ``None``.
    """

    name: str
    version: str
    md5: str | None = None
    registry_url: str | None = None

    @property
    def reference(self) -> str:
        """``name:version``, as a card records it."""
        return f"{self.name}:{self.version}"


def dataset_ref(
    ref: str | Release | DatasetRef, *, registry: RegistryArg = None, session: Session | None = None
) -> DatasetRef:
    """Resolve a dataset reference (``name:1.0.0``, ``name:1.*``, ``name``, a :class:`Release`)
    to its exact version and DVC hash (read from ``dvc.lock`` at the release's commit).

    The hash is ``None`` where the release's ``dvc.lock`` does not record the build.

    Raises:
        ArtifactNotFoundError, VersionNotFoundError: If nothing matches.
        ConfigError, NotBuiltError: If its ``dvc.lock`` is unparsable, holds an invalid md5, or
            was written by DVC 2.
    """
    from registry.repo.lock import find_out_hash

    if isinstance(ref, DatasetRef):
        return ref
    session = session or open_session(registry)
    release = ref if isinstance(ref, Release) else session.resolve(as_reference(ref), "dataset")
    stage, out = layout.build_stage(release.name), layout.prepared_dir(release.name)
    md5 = find_out_hash(session.repo, release.commit, stage, out)
    return DatasetRef(release.name, str(release.version), md5, _clean(session.repo.url))


# -- where runs go --------------------------------------------------------------------------


def _local_root(session: Session | None) -> Path:
    """The folder that holds ``mlflow/``: the registry clone, else the working directory."""
    if session is not None and session.repo.work_tree is not None:
        return session.repo.work_tree
    return Path.cwd()


def _try_session(registry: RegistryArg) -> Session | None:
    try:
        return open_session(registry)
    except NotARegistryError:
        return None


def tracking_uri(tracking_uri: str | None = None, *, registry: RegistryArg = None) -> str:
    """The tracking URI runs and ``sync`` use: the argument, ``$MLFLOW_TRACKING_URI``, else
    ``sqlite:///<registry root>/mlflow/mlflow.db`` (the folder is created; Git ignores it)."""
    return _tracking_uri(tracking_uri, _local_root(_try_session(registry)))


def _tracking_uri(explicit: str | None, root: Path) -> str:
    uri = explicit or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    folder = root / TRACKING_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def run_link(
    run_id: str, tracking_uri: str | None = None, experiment_id: str | None = None
) -> str | None:
    """The web page of training run ``run_id`` on the tracking server, where one is known.

    The MLflow UI's routes (3.x, as 1.x and 2.x): ``#/experiments/<experiment id>/runs/<run
    id>``, and ``#/runs/<run id>``, which finds the experiment itself. Credentials in the URI
    (user info, secret query keys) are left out.

    Args:
        run_id: The MLflow run id.
        tracking_uri: The server; default ``$MLFLOW_TRACKING_URI``. A local store (a file or
            SQLite) has no page: ``None``.
        experiment_id: The run's experiment, if known.

    Example:
        >>> run_link("abc", "http://mlflow.lab:5000")
        'http://mlflow.lab:5000/#/runs/abc'
        >>> run_link("abc", "https://me:tok@mlflow.lab/", experiment_id="7")
        'https://mlflow.lab/#/experiments/7/runs/abc'
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri or not _is_http(uri):
        return None
    where = f"experiments/{urllib.parse.quote(experiment_id, safe='')}/" if experiment_id else ""
    run = urllib.parse.quote(run_id, safe="")
    # The UI's route is the fragment, after the server's own path and query.
    parts = urllib.parse.urlsplit(_clean(uri))
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}/{query}#/{where}runs/{run}"


def recorded_run_link(record: dict[str, Any]) -> str | None:
    """The web page of the training run a release's lineage record names, from what the
    record holds alone (``mlflow_run``: the server, experiment and run that logged it, noted
    when it was logged; :func:`registry.repo.records.mlflow_run`): no server is asked, and
    the environment's tracking URI plays no part. ``None`` when the record names none.

    Example:
        >>> recorded_run_link({"training_run": "9f3e", "mlflow_run": {
        ...     "tracking_uri": "https://mlflow.lab", "experiment_id": "3", "run_id": "5d0e"}})
        'https://mlflow.lab/#/experiments/3/runs/5d0e'
    """
    logged = mlflow_run(record)
    if logged is None:
        return None
    return run_link(logged["run_id"], logged["tracking_uri"], logged.get("experiment_id"))


def _note_logged(root: Path, uid: str, uri: str, run_id: str, experiment_id: str) -> None:
    """Note that MLflow run ``run_id`` (of ``experiment_id``, on ``uri``) logged training run
    ``uid`` (:func:`registry.repo.records.read_logged_run` reads it for the release of the
    weights it trained): only on an HTTP(S) server, whose runs have a page."""
    if not _is_http(uri):
        return
    note = {"tracking_uri": _clean(uri), "experiment_id": experiment_id, "run_id": run_id}
    with contextlib.suppress(OSError):  # a link to the run is enrichment: logging goes on
        atomic_write_text(layout.logged_run_file(root, uid),
                          json.dumps(note, sort_keys=True) + "\n")


def training_run_link(named: str, tracking_uri: str | None = None) -> str | None:
    """The web page of the training run a release's lineage names, where a server is known.

    A lineage record names its run by the registry's run uid (the run's ``registry.run_uid``
    tag) or, from a card, by an MLflow run id: the server is asked which run it is. MLflow is
    enrichment here: no server configured, a server that does not answer, or no such run on it
    gives ``None``, quickly, and never an error.

    Args:
        named: The record's ``training_run``.
        tracking_uri: The server; default ``$MLFLOW_TRACKING_URI`` (HTTP only).

    Example:
        >>> training_run_link("3f2a9c41d07b", "http://mlflow.lab:5000")  # doctest: +SKIP
        'http://mlflow.lab:5000/#/runs/5d0e3b...'
    """
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri or not _is_http(uri) or not _reachable(uri):
        return None
    try:
        run_id = _RunFinder(_client(uri)).find(named)
    except Exception:  # any failure of the enrichment leaves the lineage as Git has it
        return None
    return run_link(run_id, uri) if run_id else None


def _is_http(uri: str) -> bool:
    return urllib.parse.urlsplit(uri).scheme in ("http", "https")


def _reachable(uri: str) -> bool:
    """Whether a tracking server answers; non-HTTP stores count as reachable."""
    if not _is_http(uri):
        return True
    import base64
    import urllib.error
    import urllib.request  # 25 ms of http.client and email, paid only for a server

    try:
        # User info in the URI is credentials (as MLflow's own client, requests, reads it):
        # sent as Basic authentication, never in the URL, which urllib cannot parse with it.
        parts = urllib.parse.urlsplit(uri)
        host = parts.netloc.rsplit("@", 1)[-1]
        request = urllib.request.Request(
            f"{parts.scheme}://{host}{parts.path.rstrip('/')}/health"
        )
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            secret = urllib.parse.unquote(parts.password or "")
            token = base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=HEALTH_TIMEOUT_S):
            return True
    except urllib.error.HTTPError:
        return True  # it answered (e.g. 401): the server is up
    except (OSError, ValueError):
        return False


def _fail_fast() -> None:
    """Make MLflow's HTTP calls give up quickly instead of retrying for minutes."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI (``None`` for any other store)."""
    prefix = "sqlite:///"  # then a relative path, or a fourth slash and an absolute one
    if not uri.startswith(prefix):
        return None
    return Path(urllib.parse.unquote(uri[len(prefix) :].split("?", 1)[0]))


@contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """Hold a lock beside a SQLite store's file (no-op for a server): one writer at a time.

    MLflow creates and migrates a SQLite store's tables when a process first opens it, and two
    processes doing that at once fail ("duplicate column name"); two syncs would also race to
    register the same version. A server serialises its own writes.
    """
    db = _sqlite_path(uri)
    if db is None:
        yield
        return
    from filelock import FileLock

    db.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(db.with_name(db.name + ".lock"))):
        yield


SYNC_LEASE_MODEL = "LabRegistry.SyncLease"  # upper case: no registry model maps to it
SYNC_LEASE_TTL_S = 120.0  # a lease not renewed for this long was left by a sync that died
SYNC_LEASE_WAIT_S = 600.0  # how long a sync waits for another one to finish


class _SyncLease:
    """One ``sync`` at a time on a tracking server, whoever runs it from wherever.

    A server has no lock to offer, but creating a registered model is atomic: the name is the
    store's primary key, and a second create fails with ``RESOURCE_ALREADY_EXISTS``. The lease
    is the registered model :data:`SYNC_LEASE_MODEL`, tagged with its holder and the time it was
    last renewed (:meth:`renew`, after each model synced); it is deleted when the sync ends. A
    lease not renewed for :data:`SYNC_LEASE_TTL_S` was left by a sync that died, and is taken
    over. Without it, two syncs would both create the versions of a new release.
    """

    def __init__(self, client: Any, report: SyncReport) -> None:
        self.client = client
        self.report = report
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> _SyncLease:
        from mlflow.exceptions import MlflowException

        deadline = time.monotonic() + SYNC_LEASE_WAIT_S
        while True:
            try:
                self.client.create_registered_model(
                    SYNC_LEASE_MODEL,
                    tags=self._tags(),
                    description="Held while 'registry mlflow sync' runs; deleted when it ends.",
                )
                return self
            except MlflowException as e:
                if e.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            held = self._held()
            if held is not None and time.time() - held[1] > SYNC_LEASE_TTL_S:
                # Deleted only if it is still the stale one seen (another sync may have taken
                # it over meanwhile; what is left between the two calls is a few milliseconds).
                with contextlib.suppress(Exception):
                    if self._held() == held:
                        self.client.delete_registered_model(SYNC_LEASE_MODEL)
                self.report.actions.append(
                    f"took over the sync lease of {held[0]}, not renewed for "
                    f"{time.time() - held[1]:.0f} s"
                )
                continue
            if time.monotonic() > deadline:
                holder = held[0] if held else "another sync"
                raise RemoteError(
                    f"{holder} has been syncing {self.report.tracking_uri} for over "
                    f"{SYNC_LEASE_WAIT_S:.0f} s; run 'registry mlflow sync' again when it is done"
                )
            time.sleep(0.5)

    def __exit__(self, *exc: object) -> None:
        from mlflow.exceptions import MlflowException

        if self._held_by_me():
            with contextlib.suppress(MlflowException):
                self.client.delete_registered_model(SYNC_LEASE_MODEL)

    def renew(self) -> None:
        """Say that this sync is still at work (its lease is not stale)."""
        self.client.set_registered_model_tag(SYNC_LEASE_MODEL, "renewed", f"{time.time():.3f}")

    def _tags(self) -> dict[str, str]:
        return {"holder": self.holder, "renewed": f"{time.time():.3f}"}

    def _held(self) -> tuple[str, float] | None:
        """The lease's holder and last renewal, or ``None`` if nobody holds it."""
        from mlflow.exceptions import MlflowException

        try:
            tags = self.client.get_registered_model(SYNC_LEASE_MODEL).tags or {}
        except MlflowException:
            return None
        try:
            return str(tags.get("holder")), float(tags.get("renewed", 0))
        except ValueError:
            return str(tags.get("holder")), 0.0

    def _held_by_me(self) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            tags = self.client.get_registered_model(SYNC_LEASE_MODEL).tags or {}
        except MlflowException:
            return False
        return tags.get("holder") == self.holder


def _client(uri: str) -> Any:
    _fail_fast()
    # MLflow sets its loggers' level when it is imported, from this variable (default INFO:
    # "Creating initial MLflow database tables...", on the console or in a stage's log).
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    from mlflow.tracking import MlflowClient

    if _sqlite_path(uri) is None:
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    with _store_lock(uri):  # the first use of each store creates or migrates its tables
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    return client


def _git_commit(session: Session | None) -> tuple[str | None, bool]:
    """The commit of the code being run, and whether the work tree has changes."""
    try:
        if session is not None and session.repo.work_tree is not None:
            return session.repo.resolve_commit("HEAD"), session.repo.is_dirty()
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
        return done.stdout.strip() or None, False
    except (RegistryError, OSError, subprocess.CalledProcessError):
        return None, False


# -- a run ----------------------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Sender:
    """Sends what a run record holds and MLflow has not got yet, in batches."""

    def __init__(self, client: Any, run_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self.metrics = 0
        self.params: set[str] = set()
        self.tags: dict[str, str] = {}

    def push(self, record: dict[str, Any]) -> None:
        from mlflow.entities import Metric, Param, RunTag

        metrics = record["metrics"][self.metrics :]
        params = {k: v for k, v in record["params"].items() if k not in self.params}
        tags = {k: v for k, v in record["tags"].items() if self.tags.get(k) != v}
        _log_batch(
            self.client,
            self.run_id,
            [Metric(k, v, ts, step) for k, v, step, ts in metrics],
            [Param(k, v) for k, v in params.items()],
            [RunTag(k, v) for k, v in tags.items()],
        )
        self.metrics += len(metrics)
        self.params |= set(params)
        self.tags.update(tags)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Tail:
    """Rereads a pending file when it changes (the training process replaces it atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.key: tuple[int, int, int] | None = None
        self.read_at = 0.0

    def changed(self) -> dict[str, Any] | None:
        """The record if the file changed since the last read, else ``None``."""
        stat = self.path.stat()
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        # File times can be coarser than two quick writes: reread every second regardless.
        if key == self.key and time.monotonic() - self.read_at < 1.0:
            return None
        self.key, self.read_at = key, time.monotonic()
        record: dict[str, Any] = json.loads(self.path.read_text())
        return record


def _follow(pending: Path, parent_pid: int) -> int:
    """The logger process: follow a run's pending file into MLflow as training writes it.

    Runs at the lowest CPU priority, holding the file's lock. The training process starts it
    when the run ends or, for a longer run, :data:`LIVE_AFTER_S` seconds into it
    (``$REGISTRY_MLFLOW_LIVE_AFTER`` overrides them; MLflow's import and store cost about 2 s
    of CPU, too much for a short run to share); until then it only watches the file. A run
    that has ended is logged at once, a longer one is then followed live. Once everything is
    logged it removes the pending file and prints the MLflow run id. Exits 1, leaving the file
    for ``registry mlflow sync``, if training died mid-run.
    """
    with contextlib.suppress(OSError):
        os.nice(19)
    with _claim(pending) as claimed:
        if not pending.exists():
            return 1  # a sync logged it first
        return _log_followed(pending, parent_pid) if claimed else 1


@contextmanager
def _claim(pending: Path) -> Iterator[bool]:
    """Hold the lock of a pending file (``<id>.lock``); yields ``False`` if another holds it.

    The logger process holds it while it logs the run, so ``sync`` never logs it twice.
    """
    import fcntl

    lock_path = pending.with_suffix(".lock")
    with lock_path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            if not pending.exists():
                lock_path.unlink(missing_ok=True)
            fcntl.flock(lock, fcntl.LOCK_UN)


def _in_progress(record: dict[str, Any]) -> bool:
    """Whether the training process that writes ``record`` is still running it."""
    return (
        record["status"] == "RUNNING"
        and record.get("host") == socket.gethostname()
        and isinstance(record.get("pid"), int)
        and _alive(record["pid"])
    )


def _live_after() -> float:
    """Seconds into a run after which it is followed live: ``$REGISTRY_MLFLOW_LIVE_AFTER``,
    else :data:`LIVE_AFTER_S`."""
    try:
        return float(os.environ.get(_LIVE_AFTER_ENV, LIVE_AFTER_S))
    except ValueError:  # a tests' knob, not a setting: a bad value means the default
        return LIVE_AFTER_S


# The logger process's command: its priority is lowered before anything is imported.
_LOGGER_COMMAND = (
    "import os, sys; os.nice(19); "
    "from registry.tracking import _logger_main; sys.exit(_logger_main(sys.argv[1:]))"
)


def _log_followed(pending: Path, parent_pid: int) -> int:
    tail = _Tail(pending)
    record = tail.changed() or {}
    live_at = record["start_ms"] / 1000 + _live_after()
    while record["status"] == "RUNNING" and time.time() < live_at:
        if not _alive(parent_pid):
            return 1  # training died without ending the run: sync replays it as KILLED
        time.sleep(_POLL_S)
        record = tail.changed() or record
    client = _client(os.environ["MLFLOW_TRACKING_URI"])
    # The pending file is <root>/mlflow/pending/<uid>.json.
    sender = _Sender(client, _create_run(client, record, pending.parents[2]))
    while True:
        sender.push(record)
        if record["status"] != "RUNNING":
            for skipped in _upload_artifacts(client, sender.run_id, record):
                print(f"registry: {skipped}", file=sys.stderr)
            client.set_terminated(sender.run_id, status=record["status"],
                                  end_time=record["end_ms"])
            client.set_tag(sender.run_id, "registry.complete", "true")
            pending.unlink()
            with contextlib.suppress(OSError):  # the training process may be gone
                print(sender.run_id, file=sys.__stdout__, flush=True)
            return 0
        while (changed := tail.changed()) is None:
            if not _alive(parent_pid):
                return 1
            time.sleep(_POLL_S)
        record = changed


def _upload_artifacts(client: Any, run_id: str, record: dict[str, Any]) -> list[str]:
    """Log the files ``log_weights(upload=True)`` recorded as the run's artifacts, each only if
    its bytes are still the ones recorded, and tag the run with where the weights are; return
    a line for each file skipped."""
    skipped = []
    for artifact in record.get("artifacts", []):
        path = Path(artifact["path"])
        if not path.is_file() or hash_file(path) != artifact["md5"]:
            skipped.append(
                f"{path} changed or is gone since the run logged it: not uploaded to run {run_id}"
            )
            continue
        client.log_artifact(run_id, str(path), artifact["artifact_path"])
        where = f"{artifact['artifact_path']}/{path.name}"
        client.set_tag(run_id, "registry.weights_artifact", where)
        client.set_tag(run_id, "registry.weights_artifact.md5", artifact["md5"])
    return skipped


def _log_batch(client: Any, run_id: str | None, metrics: list, params: list, tags: list) -> None:
    """``log_batch`` in the chunks MLflow accepts (1000 metrics, 100 params, 100 tags)."""
    while metrics or params or tags:
        client.log_batch(run_id, metrics=metrics[:1000], params=params[:100], tags=tags[:100])
        metrics, params, tags = metrics[1000:], params[100:], tags[100:]


def _experiment_id(client: Any, name: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return str(experiment.experiment_id)
    try:
        return str(client.create_experiment(name))
    except Exception:  # created meanwhile by another run
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def _create_run(client: Any, record: dict[str, Any], root: Path) -> str:
    """Create the run with its start time, name and inputs; return its id. Which run it is
    is noted under ``root`` (:func:`_note_logged`), for the release of the weights it trains."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    experiment_id = _experiment_id(client, record["experiment"])
    created = client.create_run(
        experiment_id,
        start_time=record["start_ms"],
        tags={"registry.run_uid": record["uid"]},
        run_name=record.get("run_name"),
    )
    run_id = str(created.info.run_id)
    _note_logged(root, record["uid"], str(client.tracking_uri), run_id, experiment_id)
    inputs = [
        DatasetInput(
            Dataset(
                name=d["name"],
                digest=d["digest"],
                source_type=d["source_type"],
                source=d["source"],
            ),
            tags=[InputTag("mlflow.data.context", d["context"])],
        )
        for d in record["inputs"]
    ]
    if inputs:
        client.log_inputs(run_id, datasets=inputs)
    return run_id


def _input_of(ref: DatasetRef, context: str) -> dict[str, str]:
    """A run input: an MLflow dataset whose source is the registry reference."""
    registry_url = _clean(ref.registry_url) if ref.registry_url else None
    source = {"reference": ref.reference, "md5": ref.md5, "registry": registry_url}
    return {
        "name": ref.reference,
        "digest": (ref.md5 or ref.version).removesuffix(".dir")[:36],
        "source_type": "lab-registry",
        "source": json.dumps(source, sort_keys=True),
        "context": context,
    }


class TrackedRun:
    """One training run being logged; made by :func:`run`.

    Every call records in memory and rewrites the run's pending file (atomically), which the
    logger process follows into MLflow; it costs about a millisecond. The file is the whole run:
    if MLflow cannot be reached it stays for ``registry mlflow sync``.

    Attributes:
        uid: The run's own id (also the MLflow tag ``registry.run_uid``).
        tracking_uri: Where the run is logged (credentials removed).
    """

    def __init__(self, record: dict[str, Any], uri: str, pending_dir: Path) -> None:
        self._record = record
        self._uri = uri
        self._pending = pending_dir / f"{record['uid']}.json"
        self._lock = threading.Lock()
        self._logger: subprocess.Popen[str] | None = None
        self._timer: threading.Timer | None = None
        self._spawning = threading.Lock()  # the timer's thread and _finish may both start it
        self._offline = False
        self._ended = False
        self._run_id: str | None = None
        self._last_step = -1
        self.uid: str = record["uid"]
        self.tracking_uri = _clean(uri)

    # -- what training code calls ---------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record hyper-parameters (values are logged as text, credentials removed).

        Raises:
            ValueError: If a parameter was logged before with another value (MLflow keeps
                parameters immutable).
        """
        with self._lock:
            for key, value in _flatten(params).items():
                old = self._record["params"].get(key)
                if old is not None and old != value:
                    raise ValueError(f"parameter {key!r} was logged as {old!r}, not {value!r}")
                self._record["params"][key] = value
        self._changed()

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set run tags (credentials removed from the values)."""
        with self._lock:
            self._record["tags"].update({str(k): _clean(v) for k, v in tags.items()})
        self._changed()

    def log_epoch(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        """Record one epoch's metrics (``loss``, ``accuracy``, ``val_loss``...) at step ``epoch``.

        Values that are not numbers are skipped.
        """
        self._log_metrics(metrics, step=int(epoch))

    def log_final(self, metrics: Mapping[str, Any], prefix: str = "final_") -> None:
        """Record the final metrics of the run (e.g. on the test split), as ``prefix + key``."""
        self._log_metrics({f"{prefix}{k}": v for k, v in metrics.items()}, step=self._last_step)

    def log_weights(
        self, location: str | os.PathLike[str], *, upload: bool | None = None
    ) -> None:
        """Link the weights: a local path (relative to the registry root when inside it) or a
        URI, as the tag ``registry.weights``.

        With ``upload`` (default: ``$REGISTRY_MLFLOW_WEIGHTS``, off), a local file is also
        logged as the run's artifact ``weights/<file name>`` once the run has ended: on a
        tracking server, into its artifact store (e.g. a ``gs://`` bucket) through the server,
        so the training machine needs no bucket credentials. The tags
        ``registry.weights_artifact`` and ``registry.weights_artifact.md5`` then name it. It is
        not uploaded (the logger or ``sync`` says so) if the file's bytes changed since.

        Raises:
            FileNotFoundError: If ``upload`` is asked for a file that does not exist.
            ConfigError: If ``$REGISTRY_MLFLOW_WEIGHTS`` is not a boolean.
        """
        if upload is None:
            upload = mlflow_weights()
        text = os.fspath(location)
        if "://" not in text:
            path = Path(text).resolve()
            root = Path(self._record["root"])
            text = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
            if upload:
                artifact = {"path": str(path), "artifact_path": "weights", "md5": hash_file(path)}
                with self._lock:
                    self._record.setdefault("artifacts", []).append(artifact)
        self.set_tags({"registry.weights": text})

    def keras_callback(self) -> Any:
        """A ``keras.callbacks.Callback`` that logs each epoch's ``logs`` with :meth:`log_epoch`.

        Example:
            >>> model.fit(train, epochs=10, callbacks=[tracked.keras_callback()])
        """
        import keras

        tracked = self

        class RegistryMlflowCallback(keras.callbacks.Callback):
            """Logs each epoch's metrics to MLflow through :class:`TrackedRun`."""

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                tracked.log_epoch(epoch, logs or {})

        return RegistryMlflowCallback()

    @property
    def run_id(self) -> str | None:
        """The MLflow run id, known once :meth:`wait` has seen the run logged."""
        return self._run_id

    @property
    def offline(self) -> bool:
        """Whether the run is kept in the pending file for ``registry mlflow sync``."""
        return self._offline

    @property
    def pending_file(self) -> Path | None:
        """The pending file holding this run, if MLflow could not be reached."""
        return self._pending if self._offline else None

    def wait(self, timeout: float = 60.0) -> str | None:
        """Wait until the logger process has logged the ended run; return its MLflow run id.

        Training code need not call this: the logger finishes on its own, also after the
        training process has exited. ``None`` (and one warning) if the run went to the pending
        file instead.
        """
        logger = self._logger
        if self._offline or logger is None:
            return None
        try:
            out, _ = logger.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._go_offline(f"logging to MLflow did not finish in {timeout:.0f} s")
            return None
        if logger.returncode != 0 or not out.strip():
            self._go_offline(f"logging to MLflow failed (exit status {logger.returncode})")
            return None
        self._run_id = out.strip().splitlines()[-1]
        return self._run_id

    # -- internals ------------------------------------------------------------------------

    def _log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        ts = _now_ms()
        rows = []
        for key, value in metrics.items():
            try:
                rows.append([str(key), float(value), step, ts])
            except (TypeError, ValueError):
                continue
        with self._lock:
            self._record["metrics"].extend(rows)
        self._last_step = max(self._last_step, step)
        self._changed()

    def _start(self) -> None:
        if not _reachable(self._uri):
            self._go_offline(f"the MLflow tracking server {self.tracking_uri} is not reachable")
            return
        self._save_pending(durable=True)
        live_after = _live_after()
        if live_after <= 0:
            self._start_logger()
            return
        # A run shorter than ``live_after`` gets its logger process when it ends (_finish):
        # even asleep, a logger started with the run took CPU from training on a small machine
        # (Python's start and the registry's imports, ~50 ms of a core: a fifth of what logging
        # cost a 5-second run; docs/performance.md, issue 17). A longer run is followed live
        # from then on.
        self._timer = threading.Timer(live_after, self._start_logger)
        self._timer.daemon = True
        self._timer.start()

    def _start_logger(self) -> None:
        """Start the logger process, once (not when the run went offline)."""
        with self._spawning:
            if self._logger is not None or self._offline:
                return
            # A process of its own that lowers its priority before its imports: MLflow's
            # import and store cost no training time, and the GIL is not shared. The URI goes
            # by environment, not argv.
            self._logger = subprocess.Popen(
                [sys.executable, "-c", _LOGGER_COMMAND, str(self._pending), str(os.getpid())],
                env={**os.environ, "MLFLOW_TRACKING_URI": self._uri},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,  # outlives the training process if it has to
            )

    def _changed(self, durable: bool = False) -> None:
        if self._ended:
            raise RuntimeError("this run has ended: log inside the 'with tracking.run()' block")
        # Rewritten at every epoch: durable (fsync) only at the start and the end of the run.
        self._save_pending(durable)
        logger = self._logger
        if not self._offline and logger is not None and logger.poll() not in (None, 0):
            self._go_offline(f"logging to MLflow failed (exit status {logger.returncode})")

    def _go_offline(self, why: str) -> None:
        if self._offline:
            return
        self._offline = True
        if self._timer is not None:
            self._timer.cancel()
        with self._spawning:
            if self._logger is not None and self._logger.poll() is None:
                self._logger.kill()  # the pending file is the run's record now; sync replays it
        self._save_pending(durable=True)
        warnings.warn(
            f"{why}; the run continues and is kept in {self._pending}: run 'registry mlflow "
            "sync' when MLflow is back to log it",
            MlflowUnavailableWarning,
            stacklevel=4,
        )

    def _save_pending(self, durable: bool) -> None:
        with self._lock:
            text = json.dumps(self._record, sort_keys=True)
        atomic_write_text(self._pending, text, durable=durable)

    def _finish(self, status: str) -> None:
        with self._lock:
            self._record["status"] = status
            self._record["end_ms"] = _now_ms()
        self._changed(durable=True)
        self._ended = True
        if self._timer is not None:
            self._timer.cancel()
        self._start_logger()  # a short run's logger starts now; a long run's already has


def _short(error: BaseException) -> str:
    """The error's type and first line, with any URL credentials taken out."""
    lines = str(error).strip().splitlines()
    text = re.sub(r"://[^/@\s]+@", "://", lines[0][:300]) if lines else ""
    return f"{type(error).__name__}: {text}"


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"opt": {"lr": 0.1}}`` -> ``{"opt.lr": "0.1"}``, with credentials removed."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = _clean(value)[:6000]
    return flat


@contextmanager
def run(
    model_name: str,
    *,
    params: Mapping[str, Any] | None = None,
    datasets: Iterable[str | Release | DatasetRef] = (),
    tags: Mapping[str, Any] | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
    registry: RegistryArg = None,
    tracking_uri: str | None = None,
) -> Iterator[TrackedRun]:
    """Log a training run to MLflow: params, per-epoch and final metrics, lineage, weights.

    The run is tagged with the Git commit of the code (``mlflow.source.git.commit``), the
    model (``registry.model``), and each dataset read with its version and DVC hash
    (``dataset.<name>`` and ``dataset.<name>.md5``); the datasets are also the run's inputs
    (MLflow datasets whose source is the registry reference). An exception inside the block
    ends the run as ``FAILED`` and propagates.

    Args:
        model_name: The zoo model being trained (the experiment's name by default).
        params: Hyper-parameters; nested mappings are flattened to ``a.b``.
        datasets: The dataset versions read: references (``name:1.0.0``), releases or
            :class:`DatasetRef`.
        tags: More run tags.
        experiment: The MLflow experiment (default: ``model_name``).
        run_name: The MLflow run name (default: MLflow's).
        registry: A registry clone or Git URL; default from the configuration.
        tracking_uri: Where to log; default ``$MLFLOW_TRACKING_URI``, else the registry's
            ``mlflow/mlflow.db``.

    Yields:
        The :class:`TrackedRun` to log epochs, final metrics and weights with.

    Raises:
        ArtifactNotFoundError, VersionNotFoundError: If a dataset reference matches nothing.
    """
    session = _try_session(registry)
    refs = [dataset_ref(d, registry=registry, session=session) for d in datasets]
    root = _local_root(session)
    uri = _tracking_uri(tracking_uri, root)
    commit, dirty = _git_commit(session)
    run_tags: dict[str, str] = {"registry.model": model_name}
    if commit:
        run_tags["mlflow.source.git.commit"] = commit
        run_tags["registry.git_commit"] = commit
        run_tags["registry.git_dirty"] = str(dirty).lower()
    if session is not None:
        run_tags["registry.url"] = _clean(session.repo.url)
    for ref in refs:
        run_tags[f"dataset.{ref.name}"] = ref.version
        if ref.md5:
            run_tags[f"dataset.{ref.name}.md5"] = ref.md5
    run_tags.update({str(k): _clean(v) for k, v in (tags or {}).items()})
    record: dict[str, Any] = {
        "format": RECORD_FORMAT,
        "uid": uuid.uuid4().hex,
        "experiment": experiment or model_name,
        "run_name": run_name,
        "root": str(root),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "tracking_uri": _clean(uri),
        "start_ms": _now_ms(),
        "end_ms": None,
        "status": "RUNNING",
        "params": _flatten(params or {}),
        "tags": run_tags,
        "metrics": [],
        "inputs": [_input_of(ref, "training") for ref in refs],
    }
    tracked = TrackedRun(record, uri, root / PENDING_DIR)
    tracked._start()
    try:
        yield tracked
    except BaseException:
        tracked._finish("FAILED")
        raise
    tracked._finish("FINISHED")


# -- sync -----------------------------------------------------------------------------------


@dataclass
class SyncReport:
    """What ``sync`` did. Counts are of MLflow objects: registered models, model versions and
    aliases; ``replayed`` counts pending runs logged.

    Attributes:
        tracking_uri: Where it synced to (credentials removed).
        replayed: Pending runs logged to MLflow (their files removed).
        skipped: Pending runs left alone because their training or logger is still at it.
        created, updated, unchanged, deleted: Registry objects by outcome.
        actions: One line per change, e.g. ``alias digits-cnn@prod -> 1``.
        unlinked: The model versions whose release names a training run that is not in the
            tracking store (``model``, ``version``, ``training_run``): mirrored without the
            link, which a later sync adds once the run is there.
    """

    tracking_uri: str
    replayed: int = 0
    skipped: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    actions: list[str] = field(default_factory=list)
    unlinked: list[dict[str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything was written to MLflow."""
        return bool(self.replayed or self.created or self.updated or self.deleted)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for ``--json``."""
        return asdict(self)


def sync(registry: RegistryArg = None, tracking_uri: str | None = None) -> SyncReport:
    """Mirror Git and DVC into MLflow, idempotently; a second run changes nothing.

    1. Replays the pending runs (``mlflow/pending/*.json``) that could not reach MLflow, then
       removes their files. A run replayed before is not logged twice.
    2. Every released model version becomes a version of the registered model
       :func:`mlflow_model_name` (``/`` mapped to ``.``). Its source is the weights' DVC
       location ``dvc:///<path>?md5=<hash>``; its tags are ``registry.tag``, ``registry.version``,
       ``git_commit``, ``dataset.<name>`` (the lineage's versions), ``base_model``,
       ``training_run``, ``weights.md5``. Withdrawn versions get
       ``registry.status=deregistered``. A version is linked to its training run (MLflow's
       ``run_id``, so the UI goes version -> run -> the run's dataset inputs) when the run the
       lineage names is in the tracking store, found by its MLflow run id or by its
       ``registry.run_uid`` tag; otherwise the version is created without the link and listed
       in :attr:`SyncReport.unlinked`. MLflow cannot change a version's ``run_id``, so when a
       version lacks a link it could now have (created before the run was logged, or by a sync
       before links existed), the registered model is re-created with the same version numbers,
       sources, tags, descriptions and aliases, and the links set.
    3. Every stage becomes an alias (``prod`` -> that version); aliases of stages that no
       longer hold a version are deleted. The registered model's aliases mirror Git's stages.

    One sync writes at a time: on a SQLite file, a lock beside it; on a tracking server, a lease
    in the store (:class:`_SyncLease`), so syncs from several clones at once register each
    release once.

    Args:
        registry: A registry clone or Git URL; default from the configuration.
        tracking_uri: Where to sync; default ``$MLFLOW_TRACKING_URI``, else the registry's
            ``mlflow/mlflow.db``.

    Returns:
        A :class:`SyncReport`.

    Raises:
        NotARegistryError: If no registry is configured.
        RemoteError: If MLflow cannot be reached (nothing pending is lost), or another sync
            held the server's lease for longer than :data:`SYNC_LEASE_WAIT_S`.
    """
    session = open_session(registry)
    root = _local_root(session)
    uri = _tracking_uri(tracking_uri, root)
    report = SyncReport(tracking_uri=_clean(uri))
    if not _reachable(uri):
        raise RemoteError(
            f"the MLflow tracking server {report.tracking_uri} is not reachable; start it (or "
            "unset MLFLOW_TRACKING_URI for the local SQLite store) and run 'registry mlflow "
            "sync' again"
        )
    client = _client(uri)
    # A SQLite file: a lock beside it. A server: a lease in the store itself (_SyncLease).
    lease = contextlib.nullcontext() if _sqlite_path(uri) else _SyncLease(client, report)
    with _store_lock(uri), lease:
        _sync_into(session, client, root, report, lease)
    return report


def _sync_into(
    session: Session, client: Any, root: Path, report: SyncReport, lease: Any = None
) -> None:
    """Replay the pending runs, then mirror the released versions and stages (see :func:`sync`)."""
    uri = client.tracking_uri
    try:
        for path in sorted((root / PENDING_DIR).glob("*.json")):
            with _claim(path) as claimed:
                record = json.loads(path.read_text()) if claimed else None
                if record is None or _in_progress(record):
                    report.skipped += 1
                    report.actions.append(f"run {path.stem} is in progress: left for later")
                    continue
                if _replay(client, record, report, root):
                    report.replayed += 1
                    report.actions.append(f"replayed run {path.stem}")
                path.unlink()
        _sync_models(session, client, report, lease)
    except RegistryError:
        raise
    except Exception as e:
        if _is_http(uri) and not _reachable(uri):
            raise RemoteError(
                f"the MLflow tracking server {report.tracking_uri} went away during the sync "
                f"({_short(e)}); run 'registry mlflow sync' again"
            ) from e
        raise


def _replay(client: Any, record: dict[str, Any], report: SyncReport, root: Path) -> bool:
    """Log a pending run, and the weights it uploads; ``False`` if it was replayed before."""
    from mlflow.entities import Metric, Param, RunTag

    uid = record["uid"]
    experiment_id = _experiment_id(client, record["experiment"])
    earlier = client.search_runs(
        [experiment_id], filter_string=f"tags.`registry.run_uid` = '{uid}'"
    )
    if any(r.data.tags.get("registry.complete") == "true" for r in earlier):
        return False
    for stale in earlier:  # a partial run, or a replay cut short: superseded by this one
        if stale.info.status == "RUNNING":
            client.set_terminated(stale.info.run_id, status="KILLED")
        client.set_tag(stale.info.run_id, "registry.superseded", "true")
    run_id = _create_run(client, record, root)
    _log_batch(
        client,
        run_id,
        [Metric(k, v, ts, step) for k, v, step, ts in record["metrics"]],
        [Param(k, v) for k, v in record["params"].items()],
        [RunTag(k, v) for k, v in record["tags"].items()],
    )
    report.actions += [f"run {uid}: {line}" for line in _upload_artifacts(client, run_id, record)]
    status = record["status"] if record["status"] != "RUNNING" else "KILLED"
    client.set_terminated(run_id, status=status, end_time=record.get("end_ms"))
    client.set_tag(run_id, "registry.replayed", "true")
    client.set_tag(run_id, "registry.complete", "true")
    return True


def _sync_models(session: Session, client: Any, report: SyncReport, lease: Any = None) -> None:
    from registry.models import list_models, read_lineage

    session.repo.refresh()
    index = session.index()
    url = _clean(session.repo.url)
    runs = _RunFinder(client)
    for summary in list_models(registry=session.repo.work_tree or session.repo.url):
        if isinstance(lease, _SyncLease):
            lease.renew()
        name = summary.name
        releases = index.releases(name)
        if not releases:
            continue
        mlflow_name = mlflow_model_name(name)
        model_tags = {
            "registry.name": name,
            "registry.url": url,
            "registry.deprecated": str(summary.deprecated).lower(),
        }
        model = _ensure_registered_model(client, mlflow_name, model_tags, report)
        lineages = {
            str(r.version): read_lineage(session.repo.tag_message(r.tag)) or {} for r in releases
        }
        links = _run_links(runs, name, lineages, report)
        existing = _versions_by_release(client, mlflow_name)
        if _relink(client, mlflow_name, existing, links, report):
            model = client.get_registered_model(mlflow_name)
            existing = _versions_by_release(client, mlflow_name)
        numbers: dict[str, str] = {}
        for release in releases:
            version = str(release.version)
            numbers[version] = _sync_version(
                client, mlflow_name, release, lineages[version], url, links[version],
                existing.get(version), report,
            )
        released = {str(r.version) for r in releases}
        for version, mv in existing.items():
            if version not in released and mv.tags.get("registry.status") != "deregistered":
                client.set_model_version_tag(mlflow_name, mv.version, "registry.status",
                                             "deregistered")
                report.updated += 1
                report.actions.append(f"version {mlflow_name} {version}: deregistered")
        wanted = {stage: numbers[str(r.version)] for stage, r in index.stages(name).items()}
        _sync_aliases(client, mlflow_name, dict(model.aliases or {}), wanted, report)


def _versions_by_release(client: Any, mlflow_name: str) -> dict[str, Any]:
    """The registered model's versions that mirror a release, by registry version."""
    return {
        v.tags.get("registry.version"): v
        for v in client.search_model_versions(f"name='{mlflow_name}'")
        if v.tags.get("registry.version")
    }


class _RunFinder:
    """Finds the MLflow run a release's lineage names as its ``training_run``."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.found: dict[str, str | None] = {}
        self._experiments: list[str] | None = None

    def find(self, named: str) -> str | None:
        """The MLflow run id of ``named``: an MLflow run id, or a run's ``registry.run_uid``
        (what ``registry.tracking.run`` records); ``None`` if no live run in the store is it."""
        if named not in self.found:
            self.found[named] = self._by_id(named) or self._by_uid(named)
        return self.found[named]

    def _by_id(self, run_id: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(run_id)
        except MlflowException:  # no such run, or not a run id at all
            return None
        return run_id if run.info.lifecycle_stage == "active" else None

    def _by_uid(self, uid: str) -> str | None:
        if not re.fullmatch(r"[0-9A-Za-z_-]{1,64}", uid):
            return None  # not a uid we wrote; and nothing to quote into a filter
        if self._experiments is None:
            self._experiments = _experiment_ids(self.client)
        if not self._experiments:
            return None
        runs = self.client.search_runs(
            self._experiments, filter_string=f"tags.`registry.run_uid` = '{uid}'"
        )
        if not runs:
            return None
        # A replayed run supersedes a partial one: the complete, not superseded, latest run.
        best = max(runs, key=lambda r: (
            r.data.tags.get("registry.complete") == "true",
            r.data.tags.get("registry.superseded") != "true",
            r.info.start_time or 0,
        ))
        return str(best.info.run_id)


def _experiment_ids(client: Any) -> list[str]:
    """The ids of every live experiment in the store."""
    ids: list[str] = []
    page_token = None
    while True:
        page = client.search_experiments(page_token=page_token)
        ids += [str(e.experiment_id) for e in page]
        page_token = page.token
        if not page_token:
            return ids


def _run_links(
    runs: _RunFinder, name: str, lineages: dict[str, dict[str, Any]], report: SyncReport
) -> dict[str, str | None]:
    """Each release's MLflow run id, where its training run is in the store; the others are
    listed in ``report.unlinked``."""
    links: dict[str, str | None] = {}
    for version, lineage in lineages.items():
        named = lineage.get("training_run")
        links[version] = runs.find(str(named)) if named else None
        if named and links[version] is None:
            report.unlinked.append({"model": name, "version": version, "training_run": str(named)})
    return links


def _relink(
    client: Any, mlflow_name: str, existing: dict[str, Any], links: dict[str, str | None],
    report: SyncReport,
) -> bool:
    """Re-create the registered model if a version lacks the run link it can now have.

    MLflow cannot change a version's ``run_id``, and a deleted version's number is never given
    again; so the whole registered model is deleted and re-created, its versions in order with
    the same numbers (a gap is filled by a version deleted at once), sources, tags, descriptions
    and aliases. Returns whether it did. Interrupted, the next sync rebuilds it from Git.
    """
    stale = {v: run for v, mv in existing.items() if (run := links.get(v)) and mv.run_id != run}
    if not stale:
        return False
    model = client.get_registered_model(mlflow_name)
    versions = sorted(client.search_model_versions(f"name='{mlflow_name}'"),
                      key=lambda mv: int(mv.version))
    client.delete_registered_model(mlflow_name)
    client.create_registered_model(mlflow_name, tags=dict(model.tags or {}),
                                   description=model.description)
    numbers: dict[str, str] = {}
    following = 1  # the number MLflow gives the next version
    for mv in versions:
        while following < int(mv.version):  # a version deleted in MLflow: its number stays used
            gap = client.create_model_version(mlflow_name, "dvc:///deleted-version")
            client.delete_model_version(mlflow_name, gap.version)
            following = int(gap.version) + 1
        release = mv.tags.get("registry.version")
        run_id = stale.get(release) or mv.run_id or None
        created = client.create_model_version(
            mlflow_name, mv.source, run_id=run_id, tags=dict(mv.tags or {}),
            description=mv.description,
        )
        numbers[str(mv.version)] = str(created.version)
        following = int(created.version) + 1
        if release in stale:
            report.updated += 1
            report.actions.append(f"version {mlflow_name} {release}: linked to run {run_id} "
                                  f"(re-created as {created.version})")
    for alias, number in sorted((model.aliases or {}).items()):
        if str(number) in numbers:
            client.set_registered_model_alias(mlflow_name, alias, numbers[str(number)])
    return True


def _ensure_registered_model(
    client: Any, mlflow_name: str, tags: dict[str, str], report: SyncReport
) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(mlflow_name)
    except MlflowException as e:
        if e.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    else:
        changed = {k: v for k, v in tags.items() if (model.tags or {}).get(k) != v}
        for key, value in changed.items():
            client.set_registered_model_tag(mlflow_name, key, value)
        if changed:
            report.updated += 1
            report.actions.append(f"registered model {mlflow_name}: tags {', '.join(changed)}")
        else:
            report.unchanged += 1
        return model
    client.create_registered_model(
        mlflow_name,
        tags=tags,
        description=f"Mirror of the Lab Registry model {tags['registry.name']!r}; Git and DVC "
        "are the source of truth.",
    )
    report.created += 1
    report.actions.append(f"registered model {mlflow_name}")
    return client.get_registered_model(mlflow_name)


def _sync_version(
    client: Any,
    mlflow_name: str,
    release: Release,
    lineage: dict[str, Any],
    url: str,
    run_id: str | None,
    existing: Any,
    report: SyncReport,
) -> str:
    """Create or update the model version of ``release``, linked to MLflow run ``run_id`` (if
    known) when created; return its MLflow version number."""
    weights = lineage.get("weights") or {}
    tags = {
        "registry.tag": release.tag,
        "registry.version": str(release.version),
        "registry.status": "released",
        "registry.url": url,
        "git_commit": release.commit,
    }
    for dataset, version in sorted((lineage.get("datasets") or {}).items()):
        tags[f"dataset.{dataset}"] = str(version)
    for key, value in (
        ("base_model", lineage.get("base_model")),
        ("training_run", lineage.get("training_run")),
        ("weights.path", weights.get("path")),
        ("weights.md5", weights.get("md5")),
    ):
        if value:
            tags[key] = _clean(value)
    label = f"version {mlflow_name} {release.version}"
    if existing is None:
        source = f"dvc:///{weights.get('path') or release.name}?md5={weights.get('md5') or ''}"
        # The weights stay in DVC (no run artifact holds them): the source is their DVC
        # location, and the run_id field is MLflow's link from the version to its run.
        created = client.create_model_version(
            mlflow_name,
            source,
            run_id=run_id,
            tags=tags,
            description=(
                f"{release.name} {release.version} (Git tag {release.tag}); get the weights "
                f"with: dvc artifacts get {url} {release.name} --rev {release.tag}"
            ),
        )
        report.created += 1
        linked = f", linked to run {run_id}" if run_id else ""
        report.actions.append(f"{label}: created as {created.version}{linked}")
        return str(created.version)
    changed = {k: v for k, v in tags.items() if existing.tags.get(k) != v}
    for key, value in changed.items():
        client.set_model_version_tag(mlflow_name, existing.version, key, value)
    if changed:
        report.updated += 1
        report.actions.append(f"{label}: tags {', '.join(sorted(changed))}")
    else:
        report.unchanged += 1
    return str(existing.version)


def _sync_aliases(
    client: Any, mlflow_name: str, current: dict[str, str], wanted: dict[str, str],
    report: SyncReport,
) -> None:
    for alias, version in sorted(wanted.items()):
        if str(current.get(alias)) == version:
            report.unchanged += 1
            continue
        client.set_registered_model_alias(mlflow_name, alias, version)
        report.actions.append(f"alias {mlflow_name}@{alias} -> {version}")
        if alias in current:
            report.updated += 1
        else:
            report.created += 1
    for alias in sorted(set(current) - set(wanted)):
        client.delete_registered_model_alias(mlflow_name, alias)
        report.deleted += 1
        report.actions.append(f"alias {mlflow_name}@{alias} deleted")


def _logger_main(argv: list[str]) -> int:
    """Entry point of the logger process: one line on stderr, not a traceback, if MLflow fails."""
    pending = Path(argv[0])
    try:
        # MLflow prints "View run ... at URL" when a run on a server ends: on a pipe whose reader
        # (the training process) has often exited, that print failed the whole logging.
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            return _follow(pending, int(argv[1]))
    except Exception as e:
        print(
            f"registry: logging run {pending.stem} to MLflow failed ({_short(e)}); it is kept "
            f"in {pending}: run 'registry mlflow sync' to log it",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # the logger process that TrackedRun starts
    sys.exit(_logger_main(sys.argv[1:]))
