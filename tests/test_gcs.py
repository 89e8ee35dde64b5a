"""The registry on Google Cloud Storage, against a real GCS server (fake-gcs-server) on 127.0.0.1.

One session-wide registry releases a dataset and a model to a bucket through the real CLI; the
tests load them from a fresh clone, from another project (by Git URL), with ``dvc pull`` and with
``dvc import``. Fault tests use their own buckets, and a loopback proxy in front of the server
where a fault needs one: refusing writes with Google's 403 (a read-only account), or stopping the
server in the middle of an upload.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import registry
from registry.cards import parse_card, render_card
from registry.cli import main
from registry.cloud.emulator import GCSEmulator
from registry.errors import (
    CredentialsError,
    PurgedVersionError,
    RemoteError,
    VersionNotFoundError,
)
from registry.remotes import set_remote
from tests.conftest import (
    PROJECT_ROOT,
    ReleasedRegistry,
    commit_all,
    git,
    hermetic_env,
)

pytestmark = pytest.mark.slow

DIGITS = "image_classification/digits"
MODEL = "tiny-digits"
KEY_MARKER = "NOT-A-REAL-KEY-4f1c"


# -- a proxy in front of the server (the session's `gcs` of tests/conftest.py) ---------------------


def _bucket(gcs: GCSEmulator) -> str:
    name = f"lab-{uuid.uuid4().hex[:12]}"
    gcs.create_bucket(name)
    return name


class GCSProxy:
    """A loopback HTTP proxy in front of the emulator that injects Cloud Storage faults.

    Args:
        upstream: The emulator.
        refuse: ``"writes"`` answers every request but reads with Google's 403 JSON error (a
            read-only service account); ``"all"`` refuses reads too.
        stop_after_uploads: Kill the emulator right after it stored this many uploads, as a
            server that goes down in the middle of a push.
        damage_downloads: Flip one bit in the middle of each download's body.
        cut_downloads: Serve each download's body without its last byte (and a matching
            ``Content-Length``), as a transfer cut short that the client cannot tell.
        drop_hashes: Leave out the ``x-goog-hash`` headers (a composite object has no MD5,
            and a proxy may drop headers).

    Attributes:
        requests: Every request that passed, as ``(method, path with query, Range header)``.
    """

    def __init__(
        self,
        upstream: GCSEmulator,
        *,
        refuse: str | None = None,
        stop_after_uploads: int | None = None,
        damage_downloads: bool = False,
        cut_downloads: bool = False,
        drop_hashes: bool = False,
    ) -> None:
        self.upstream = upstream
        self.refuse = refuse
        self.damage_downloads = damage_downloads
        self.cut_downloads = cut_downloads
        self.drop_hashes = drop_hashes
        self.stop_after_uploads = stop_after_uploads
        self.uploads = 0
        self.requests: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                refused = {"all": True, "writes": self.command != "GET"}.get(
                    proxy.refuse or "", proxy.refuse == "deletes" and self.command == "DELETE"
                )
                if refused:
                    self._send(403, _forbidden(self.path))
                    return
                with proxy._lock:
                    proxy.requests.append((self.command, self.path, self.headers["Range"] or ""))
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream.port, timeout=30)
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                except OSError:
                    # The server is gone: drop the connection, as a dead server would.
                    self.close_connection = True
                    return
                download = "alt=media" in self.path
                if download and proxy.damage_downloads and len(data) > 1:
                    middle = len(data) // 2
                    data = data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :]
                if download and proxy.cut_downloads and data:
                    data = data[:-1]
                # The server's headers pass (x-goog-hash, Content-Range...), but for the length,
                # which the body sent decides, and those that are the connection's own.
                passed = [
                    (k, v)
                    for k, v in response.getheaders()
                    if k.lower() not in _HOP_HEADERS
                    and not (proxy.drop_hashes and k.lower() == "x-goog-hash")
                ]
                self._send(response.status, data, response.getheader("Content-Type"), passed)
                if self.path.startswith("/upload/") and response.status < 300:
                    with proxy._lock:
                        proxy.uploads += 1
                        if proxy.uploads == proxy.stop_after_uploads:
                            proxy.upstream.stop(kill=True)

            def _send(
                self,
                status: int,
                data: bytes,
                content_type: str | None = None,
                headers: list[tuple[str, str]] | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type or "application/json")
                for key, value in headers or []:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# Headers the proxy sets itself rather than pass on from the server.
_HOP_HEADERS = frozenset(
    {"content-length", "content-type", "connection", "keep-alive", "transfer-encoding", "date",
     "server"}
)


class _QuietServer(ThreadingHTTPServer):
    """The proxy's server: a client that hangs up early (as a failing download does) is not an
    error worth a traceback on the test's stderr, which the tests read."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


def _forbidden(path: str) -> bytes:
    message = (
        "reader@lab.iam.gserviceaccount.com does not have storage.objects.create access to the "
        f"Google Cloud Storage object {path}."
    )
    error = {"code": 403, "message": message, "errors": [{"reason": "forbidden"}]}
    return json.dumps({"error": error}).encode()


# -- a registry released to the bucket ------------------------------------------------------------


@dataclass(frozen=True)
class GcsRegistry:
    """A registry whose default DVC remote is a bucket on the emulator, with ``DIGITS`` 1.1.0 and
    ``MODEL`` 1.0.0 released there (and 1.0.0 of ``DIGITS`` on the old local remote)."""

    clone: Path
    origin: Path
    bucket: str
    weights: bytes


def _fill_card(path: Path) -> None:
    """Fill the fields a release requires in the card template ``registry models add`` wrote."""
    card = parse_card(path.read_text())
    meta = {
        **card.meta,
        "task": "image-classification",
        "architecture": "small-cnn",
        "datasets": [f"{DIGITS}:1.1.0"],
        "metrics": {"accuracy": 0.9},
        "owner": "vision-team",
        "license": "apache-2.0",
    }
    path.write_text(render_card(meta, card.body))


def _set_version(clone: Path, version: str, note: str) -> None:
    path = clone / "datasets" / DIGITS / "digits_dataset_builder.py"
    source = re.sub(r'Version\("[0-9.]+"\)', f'Version("{version}")', path.read_text())
    entry = f'\n        "{version}": "{note}",'
    source = re.sub(r"(RELEASE_NOTES[^=]*= \{)", lambda m: m.group(1) + entry, source)
    path.write_text(source)


@pytest.fixture(scope="session")
def gcs_registry(
    gcs: GCSEmulator,
    released_registry_template: ReleasedRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> GcsRegistry:
    """Move the released registry to a bucket and release there, through the real CLI."""
    base = tmp_path_factory.mktemp("gcs-registry")
    env = hermetic_env(base / "home")
    shutil.copytree(
        released_registry_template.clone.parent,
        base / "r",
        symlinks=True,
        ignore=shutil.ignore_patterns("home"),
    )
    clone, origin = base / "r" / "clone", base / "r" / "origin.git"
    bucket = _bucket(gcs)

    def run(*args: str) -> str:
        done = subprocess.run(args, cwd=clone, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    run("git", "remote", "set-url", "origin", str(origin))
    run("dvc", "remote", "modify", "storage", "url", str(base / "r" / "storage"))
    # One command moves the registry to the bucket; committing it moves every clone.
    run("registry", "remote", "set", f"gs://{bucket}/dvc", "--endpoint-url", gcs.url, "--anonymous")
    run("registry", "remote", "check", "--write")
    run("git", "commit", "-qam", "Store releases on GCS")
    _set_version(clone, "1.1.0", "Same digits, released to GCS")
    run("registry", "datasets", "build", DIGITS)
    run("git", "add", "-A")
    run("git", "commit", "-qm", "Build digits 1.1.0")
    weights = os.urandom(4096)
    (base / "model.keras").write_bytes(weights)
    run("registry", "models", "add", MODEL, "--from", str(base / "model.keras"))
    _fill_card(clone / "models" / MODEL / "README.md")
    run("git", "add", "-A")
    run("git", "commit", "-qm", f"Add {MODEL}")
    run("git", "push", "-q", "origin", "main")
    run("registry", "datasets", "release", DIGITS)
    run("registry", "models", "release", MODEL, "--version", "1.0.0")
    return GcsRegistry(clone, origin, bucket, weights)


def _objects(gcs: GCSEmulator, bucket: str) -> list[str]:
    client = gcs.storage_client()
    return sorted(blob.name for blob in client.list_blobs(bucket))


def _anonymous() -> object:
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials()  # type: ignore[no-untyped-call]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main([*args])
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _listing(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# -- released to GCS, loaded everywhere -----------------------------------------------------------


def test_release_puts_the_bytes_in_the_bucket(gcs: GCSEmulator, gcs_registry: GcsRegistry) -> None:
    names = _objects(gcs, gcs_registry.bucket)
    assert names and all(n.startswith("dvc/files/md5/") for n in names)
    dir_objects = [n for n in names if n.endswith(".dir")]
    assert len(dir_objects) == 1  # the dataset's listing; the model is a single file
    # The config committed for everyone names the bucket and endpoint, and no credentials.
    config = (gcs_registry.clone / ".dvc" / "config").read_text()
    assert f"gs://{gcs_registry.bucket}/dvc" in config and gcs.url in config
    assert "credential" not in config.lower()


def test_a_fresh_clone_loads_and_dvc_pulls_from_the_bucket(
    gcs_registry: GcsRegistry, tmp_path: Path, chdir: Callable[[Path], None]
) -> None:
    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(gcs_registry.origin), str(fresh))
    chdir(fresh)
    ds = registry.load_dataset(f"{DIGITS}:1.1.0", split="test")
    assert sum(1 for _ in ds) > 0
    model = registry.load_model(f"{MODEL}:1.0.0")
    assert Path(model).read_bytes() == gcs_registry.weights

    # `dvc pull` in the clone fetches the build that dvc.lock names, from the bucket.
    subprocess.run(["dvc", "pull", "-q", f"build@{DIGITS}"], cwd=fresh, check=True)
    prepared = fresh / "datasets" / DIGITS / "prepared"
    assert _listing(prepared) == _listing(gcs_registry.clone / "datasets" / DIGITS / "prepared")
    weights = fresh / "models" / MODEL / "model.keras"
    subprocess.run(["dvc", "pull", "-q", str(weights)], cwd=fresh, check=True)
    assert weights.read_bytes() == gcs_registry.weights


def test_another_project_loads_by_git_url_and_dvc_imports(
    gcs_registry: GcsRegistry, tmp_path: Path, chdir: Callable[[Path], None]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    chdir(project)
    url = str(gcs_registry.origin)  # a Git URL: read through a mirror, not a clone
    pulled = registry.pull_dataset(f"{DIGITS}:1.1.0", registry=url)
    assert pulled.fetched_files == pulled.files > 0
    reference = _listing(gcs_registry.clone / "datasets" / DIGITS / "prepared")
    assert _listing(pulled.path) == reference
    calls: list[tuple[int, int]] = []
    weights = registry.load_model(
        f"{MODEL}:1.0.0", registry=url, progress=lambda done, total: calls.append((done, total))
    )
    assert Path(weights).read_bytes() == gcs_registry.weights
    size = len(gcs_registry.weights)
    assert calls and calls[-1] == (size, size)  # the progress bar's feed, for one file

    git(project, "init", "-q")
    subprocess.run(["dvc", "init", "-q"], cwd=project, check=True)
    tag = f"{DIGITS}@v1.1.0"
    subprocess.run(
        ["dvc", "import", "-q", url, f"datasets/{DIGITS}/prepared", "-o", "digits", "--rev", tag],
        cwd=project,
        check=True,
    )
    assert _listing(project / "digits") == reference
    subprocess.run(
        ["dvc", "import", "-q", url, f"models/{MODEL}/model.keras", "--rev", f"{MODEL}@v1.0.0"],
        cwd=project,
        check=True,
    )
    assert (project / "model.keras").read_bytes() == gcs_registry.weights


def test_a_builder_reads_its_raw_data_from_gcs(
    gcs: GCSEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    from registry.testing import check_builder

    bucket = _bucket(gcs)
    client = gcs.storage_client()
    dummy = PROJECT_ROOT / "datasets" / "products" / "product_a" / "ad_clicks" / "dummy_data"
    for path in dummy.iterdir():
        client.bucket(bucket).blob(f"exports/ad_clicks/{path.name}").upload_from_filename(path)
    # Beam's gs:// filesystem (google-cloud-storage underneath) finds the server here.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
    builder = check_builder(
        dummy.parent,
        expected_splits={"train": 17, "test": 3},  # as from the local dummy_data
        data_dir=tmp_path / "built",
        params={"raw_path": f"gs://{bucket}/exports/ad_clicks"},
    )
    ids = {
        ex["impression_id"].decode() for ex in builder.as_dataset(split="train").as_numpy_iterator()
    }
    assert len(ids) == 17 and all(i.startswith("a") for i in ids)


# -- faults ---------------------------------------------------------------------------------------


@pytest.fixture
def gcs_clone(
    gcs_registry: GcsRegistry, tmp_path: Path, chdir: Callable[[Path], None]
) -> GcsRegistry:
    """A private copy of the GCS registry and its origin (same bucket, read-only use)."""
    dest = tmp_path / "copy"
    shutil.copytree(gcs_registry.clone.parent, dest, symlinks=True)
    copy = GcsRegistry(
        dest / "clone", dest / "origin.git", gcs_registry.bucket, gcs_registry.weights
    )
    git(copy.clone, "remote", "set-url", "origin", str(copy.origin))
    chdir(copy.clone)
    return copy


def _folder_model(clone: Path, tmp_path: Path, files: int = 24) -> None:
    """A model whose weights are a folder of many files (a SavedModel-like export), committed."""
    folder = tmp_path / "export"
    (folder / "variables").mkdir(parents=True)
    for i in range(files):
        (folder / "variables" / f"shard-{i:03d}").write_bytes(os.urandom(20_000))
    registry.add_model("folder-model", folder)
    _fill_card(clone / "models" / "folder-model" / "README.md")
    commit_all(clone, "Add folder-model")


def test_server_stopped_mid_release_leaves_nothing_and_a_rerun_completes(
    gcs_clone: GcsRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clone = gcs_clone.clone
    # A server whose objects survive a restart, behind a proxy that kills it after 2 uploads:
    # the release's write check, then one of the model's 7 objects (6 files and their listing).
    server = GCSEmulator(root=tmp_path / "gcs-data").start()
    proxy = GCSProxy(server, stop_after_uploads=2)
    try:
        server.create_bucket("lab-flaky")
        set_remote("gs://lab-flaky/dvc", endpoint_url=proxy.url, anonymous=True)
        commit_all(clone, "Move to the flaky bucket")
        # Fewer files than DVC's parallel uploads: gcsfs retries each for ~30 s before giving up.
        _folder_model(clone, tmp_path, files=6)
        code, _, err = _cli(capsys, "models", "release", "folder-model", "--version", "1.0.0")
        assert code == 7, err
        assert "cannot reach Google Cloud Storage" in err and "Traceback" not in err
        assert not server.running and proxy.uploads == 2
        stored = list((tmp_path / "gcs-data" / "lab-flaky").rglob("*"))
        assert len([f for f in stored if "files/md5" in f.as_posix() and f.is_file()]) == 1
        # Nothing is tagged, here or at the origin, so no loader can see a half-pushed version.
        assert "folder-model@v1.0.0" not in git(clone, "tag")
        assert "folder-model@v1.0.0" not in git(gcs_clone.origin, "tag")
        with pytest.raises(VersionNotFoundError):
            registry.load_model("folder-model:1.0.0")

        # The server is back (with what it had stored): running the release again completes it.
        server.start()
        proxy.stop_after_uploads = None
        release = registry.release_model("folder-model", version="1.0.0")
        assert str(release.version) == "1.0.0"
        assert "folder-model@v1.0.0" in git(gcs_clone.origin, "tag")
        cache = Path(os.environ["HOME"]) / "fresh-cache"
        os.environ["REGISTRY_CACHE_DIR"] = str(cache)
        calls: list[tuple[int, int]] = []
        loaded = Path(
            registry.load_model(
                "folder-model:1.0.0",
                registry=str(gcs_clone.origin),
                jobs=3,
                progress=lambda done, total: calls.append((done, total)),
            )
        )
        assert len(list(loaded.rglob("shard-*"))) == 6
        assert calls[-1] == (6 * 20_000, 6 * 20_000)
    finally:
        os.environ.pop("REGISTRY_CACHE_DIR", None)
        proxy.close()
        server.stop()


def test_a_permission_refusal_names_the_role_and_tags_nothing(
    gcs: GCSEmulator, gcs_clone: GcsRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clone = gcs_clone.clone
    proxy = GCSProxy(gcs, refuse="writes")  # a read-only account
    try:
        set_remote(f"gs://{gcs_clone.bucket}/dvc", endpoint_url=proxy.url, anonymous=True)
        commit_all(clone, "Through the read-only proxy")
        # Reading is allowed: the released model loads.
        assert Path(registry.load_model(f"{MODEL}:1.0.0")).read_bytes() == gcs_clone.weights
        _folder_model(clone, tmp_path, files=3)
        code, _, err = _cli(capsys, "models", "release", "folder-model", "--version", "1.0.0")
        assert code == 2, err
        assert "permission denied" in err and "roles/storage.objectCreator" in err
        assert "folder-model@v1.0.0" not in git(clone, "tag")

        proxy.refuse = "all"
        os.environ["REGISTRY_CACHE_DIR"] = str(tmp_path / "other-cache")
        code, _, err = _cli(capsys, "datasets", "pull", f"{DIGITS}:1.1.0")
        assert code == 2, err
        assert "permission denied" in err and "roles/storage.objectViewer" in err
    finally:
        os.environ.pop("REGISTRY_CACHE_DIR", None)
        proxy.close()


def test_a_missing_bucket_is_named(
    gcs: GCSEmulator, gcs_clone: GcsRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    set_remote("gs://lab-no-such-bucket/dvc", endpoint_url=gcs.url, anonymous=True)
    commit_all(gcs_clone.clone, "A bucket nobody made")
    for args in (("datasets", "pull", f"{DIGITS}:1.1.0"), ("remote", "check", "--write")):
        code, _, err = _cli(capsys, *args)
        assert code == 7, err
        assert "bucket gs://lab-no-such-bucket of DVC remote 'gcs' does not exist" in err
        assert "gcloud storage buckets create" in err and "Traceback" not in err


def test_missing_credentials_fail_fast_with_what_to_do(
    gcs: GCSEmulator,
    gcs_clone: GcsRegistry,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The real endpoint's remote, as a lab configures it: credentials from the environment.
    set_remote(f"gs://{gcs_clone.bucket}/dvc")
    commit_all(gcs_clone.clone, "Real GCS")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(Path(os.environ["HOME"]) / "gcloud"))
    started = time.monotonic()
    code, _, err = _cli(capsys, "datasets", "pull", f"{DIGITS}:1.1.0")
    assert code == 2, err
    assert time.monotonic() - started < 20
    assert "no Google Cloud credentials found" in err
    assert (
        "gcloud auth application-default login" in err and "GOOGLE_APPLICATION_CREDENTIALS" in err
    )


def test_a_broken_key_file_is_named_and_never_echoed(
    gcs_clone: GcsRegistry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_remote(f"gs://{gcs_clone.bucket}/dvc")
    commit_all(gcs_clone.clone, "Real GCS")
    key = tmp_path / "secrets" / "sa-key.json"
    key.parent.mkdir()
    key.write_text(
        json.dumps(
            {
                "type": "service_account",
                "client_email": "trainer@lab.iam.gserviceaccount.com",
                "private_key": f"-----BEGIN PRIVATE KEY-----\n{KEY_MARKER}\n-----END",
                "private_key_id": KEY_MARKER,
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    for args in (("datasets", "pull", f"{DIGITS}:1.1.0"), ("remote", "check")):
        code, out, err = _cli(capsys, *args)
        assert code == 2, err
        assert f"GOOGLE_APPLICATION_CREDENTIALS={key}" in err
        assert KEY_MARKER not in out + err
    # Nothing of the key reached the repository, its config or its history.
    for path in gcs_clone.clone.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            assert KEY_MARKER.encode() not in path.read_bytes(), path
    assert KEY_MARKER not in git(gcs_clone.clone, "log", "-p", "--all")
    assert str(key) not in (gcs_clone.clone / ".dvc" / "config").read_text()


def test_remote_set_refuses_bad_input(
    gcs_clone: GcsRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (gcs_clone.clone / ".dvc" / "config").read_text()
    for args, message in (
        (("gs://Not_A_Bucket/x",), "not a valid bucket name"),
        (("/tmp/folder", "--anonymous"), "apply to gs:// remotes only"),
        (("gs://lab-ok/x", "--endpoint-url", "localhost"), "must look like http"),
        (("gs://lab-ok/x", "--name", "bad name"), "invalid remote name"),
    ):
        code, _, err = _cli(capsys, "remote", "set", *args)
        assert code == 2 and message in err, err
    assert (gcs_clone.clone / ".dvc" / "config").read_text() == before


def test_remote_check_reports_where_credentials_come_from(
    gcs_clone: GcsRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(capsys, "remote", "check", "--write", "--json")
    assert code == 0, err
    status = json.loads(out)
    assert status["url"] == f"gs://{gcs_clone.bucket}/dvc"
    assert status["default"] is True and status["writable"] is True
    assert status["credentials"] == "none (anonymous)"


def test_load_errors_are_registry_errors(gcs: GCSEmulator, gcs_clone: GcsRegistry) -> None:
    set_remote("gs://lab-no-such-bucket/dvc", endpoint_url=gcs.url, anonymous=True)
    with pytest.raises(RemoteError, match="does not exist"):
        registry.pull_dataset(f"{DIGITS}:1.1.0")
    set_remote(f"gs://{gcs_clone.bucket}/dvc")
    os.environ["CLOUDSDK_CONFIG"] = str(Path(os.environ["HOME"]) / "gcloud")
    try:
        with pytest.raises(CredentialsError):
            registry.pull_dataset(f"{DIGITS}:1.1.0")
    finally:
        os.environ.pop("CLOUDSDK_CONFIG", None)


# -- Dataflow builds come back from Cloud Storage ------------------------------------------------


def test_a_build_dataflow_wrote_to_gcs_is_downloaded_whole(
    gcs: GCSEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.cloud import storage

    from registry.build.prepare import remote_build_dir
    from registry.cloud.gcs import delete_folder, download_folder

    beam = {"runner": "DataflowRunner", "dataflow": {"temp_location": "gs://lab-tmp/tmp/"}}
    first, second = remote_build_dir(beam, DIGITS), remote_build_dir(beam, DIGITS)
    assert first is not None and first.startswith(f"gs://lab-tmp/tmp/registry-builds/{DIGITS}/")
    assert first != second  # each build its own folder
    assert remote_build_dir({"runner": "DirectRunner"}, DIGITS) is None

    bucket = _bucket(gcs)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
    client = storage.Client(project="test", credentials=_anonymous())
    files = {
        "dataset_info.json": b"{}",
        "digits-train.tfrecord-00000-of-00002": os.urandom(3000),
        "digits-train.tfrecord-00001-of-00002": os.urandom(3000),
        "nested/features.json": b"[]",
    }
    for rel, data in files.items():
        client.bucket(bucket).blob(f"builds/x/1.0.0/{rel}").upload_from_string(data)
    client.bucket(bucket).blob("builds/x/1.0.0-other/stray").upload_from_string(b"not ours")
    assert download_folder(f"gs://{bucket}/builds/x/1.0.0", tmp_path / "got") == 4
    assert _listing(tmp_path / "got") == files
    assert delete_folder(f"gs://{bucket}/builds/x/1.0.0") == 4
    assert _objects(gcs, bucket) == ["builds/x/1.0.0-other/stray"]
    with pytest.raises(RemoteError, match="holds no files"):
        download_folder(f"gs://{bucket}/builds/x/1.0.0", tmp_path / "again")
    client.bucket(bucket).blob("builds/y/../../escape").upload_from_string(b"x")
    with pytest.raises(RemoteError, match="unsafe name"):
        download_folder(f"gs://{bucket}/builds/y", tmp_path / "unsafe")
    assert not (tmp_path / "escape").exists()
    with pytest.raises(RemoteError):
        download_folder("gs://lab-no-such-bucket/builds/x", tmp_path / "nowhere")


# -- what arrives is what was released -----------------------------------------------------------


def test_an_object_that_is_not_its_name_is_refused(
    gcs: GCSEmulator, gcs_clone: GcsRegistry, tmp_path: Path
) -> None:

    from registry.errors import CorruptArtifactError

    bucket = _bucket(gcs)
    client = gcs.storage_client()
    source, target = client.bucket(gcs_clone.bucket), client.bucket(bucket)
    names = _objects(gcs, gcs_clone.bucket)
    for name in names:
        data = source.blob(name).download_as_bytes()
        if not name.endswith(".dir"):
            data = data[:-1] + bytes([data[-1] ^ 1])  # the bucket holds other bytes under the name
        target.blob(name).upload_from_string(data)
    set_remote(f"gs://{bucket}/dvc", endpoint_url=gcs.url, anonymous=True)
    with pytest.raises(CorruptArtifactError, match=r"is stored with md5 [0-9a-f]{32}, not") as e:
        registry.pull_dataset(f"{DIGITS}:1.1.0")
    assert "was not used" in str(e.value)
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "lab-registry"
    assert not list((cache / "snapshots").glob("*"))  # nothing half-made is visible


@pytest.mark.parametrize(
    ("fault", "hashes", "said"),
    [
        ("damage_downloads", True, r"damaged in transfer"),
        ("cut_downloads", True, r"\(cut off in transfer\)"),
        # Without the hash header (a composite object, a proxy that drops it): the bytes' own
        # MD5 is checked against the object's name.
        ("damage_downloads", False, r"has md5 [0-9a-f]{32}, not [0-9a-f]{32}"),
    ],
)
def test_bytes_damaged_or_cut_short_in_transfer_are_refused(
    gcs: GCSEmulator,
    gcs_clone: GcsRegistry,
    capsys: pytest.CaptureFixture[str],
    fault: str,
    hashes: bool,
    said: str,
) -> None:
    proxy = GCSProxy(gcs, drop_hashes=not hashes, **{fault: True})
    try:
        set_remote(f"gs://{gcs_clone.bucket}/dvc", endpoint_url=proxy.url, anonymous=True)
        code, _, err = _cli(capsys, "datasets", "pull", f"{DIGITS}:1.1.0")
        assert code == 8, err
        assert re.search(said, err) and "Traceback" not in err, err
        setattr(proxy, fault, False)  # the network is fine again: the same pull succeeds
        code, out, err = _cli(capsys, "datasets", "pull", f"{DIGITS}:1.1.0")
        assert code == 0, err
        assert _listing(Path(out.strip())) == _listing(
            gcs_clone.clone / "datasets" / DIGITS / "prepared"
        )
    finally:
        proxy.close()


def _object_requests(proxy: GCSProxy, bucket: str) -> dict[str, list[tuple[str, str, str]]]:
    """The requests that named one of ``bucket``'s objects, by object name."""
    named: dict[str, list[tuple[str, str, str]]] = {}
    for method, path, range_ in proxy.requests:
        where = urlsplit(path)
        prefix = f"/storage/v1/b/{bucket}/o/"
        if prefix in where.path:
            name = unquote(where.path.split(prefix, 1)[1])
            named.setdefault(name, []).append((method, path, range_))
    return named


def test_a_pull_costs_one_request_a_file(gcs: GCSEmulator, gcs_clone: GcsRegistry) -> None:
    # Each object's size and checksums come with its bytes (Content-Range, x-goog-hash): no
    # metadata request comes before the download. Counted at a proxy in front of the server.
    proxy = GCSProxy(gcs)
    calls: list[tuple[int, int]] = []
    try:
        set_remote(f"gs://{gcs_clone.bucket}/dvc", endpoint_url=proxy.url, anonymous=True)
        pulled = registry.pull_dataset(
            f"{DIGITS}:1.1.0", progress=lambda done, total: calls.append((done, total))
        )
    finally:
        proxy.close()
    files = _listing(pulled.path)
    assert files == _listing(gcs_clone.clone / "datasets" / DIGITS / "prepared")
    objects = {hashlib.md5(data).hexdigest() for data in files.values() if data}
    requests = _object_requests(proxy, gcs_clone.bucket)
    # The listing and every file: one GET of its bytes each, nothing else.
    assert len(requests) == len(objects) + 1 == pulled.fetched_files + 1
    assert len(proxy.requests) == len(requests), proxy.requests
    assert all(
        len(sent) == 1 and sent[0][0] == "GET" and "alt=media" in sent[0][1]
        for sent in requests.values()
    ), requests
    # The progress bar's total: estimated until every size has come, then exact.
    total = sum(len(data) for data in {hashlib.md5(d).hexdigest(): d for d in files.values()}
                .values())
    assert calls[-1] == (total, total)
    assert all(done <= bar for done, bar in calls)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_a_large_object_is_read_in_ranges_of_one_generation(
    gcs: GCSEmulator, gcs_clone: GcsRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ranges of 1 KiB instead of 8 MiB, so that the digits' small files take several each.
    from registry.storage import remote as remote_module

    monkeypatch.setattr(remote_module, "_RANGE", 1024)
    proxy = GCSProxy(gcs)
    try:
        set_remote(f"gs://{gcs_clone.bucket}/dvc", endpoint_url=proxy.url, anonymous=True)
        pulled = registry.pull_dataset(f"{DIGITS}:1.1.0")
    finally:
        proxy.close()
    files = _listing(pulled.path)
    assert files == _listing(gcs_clone.clone / "datasets" / DIGITS / "prepared")
    sizes = {hashlib.md5(data).hexdigest(): len(data) for data in files.values()}
    assert max(sizes.values()) > 2048  # some file takes three ranges or more
    requests = _object_requests(proxy, gcs_clone.bucket)
    for name, sent in requests.items():
        md5 = "".join(name.split("/")[-2:])
        if md5 not in sizes:
            continue  # the listing
        assert len(sent) == max(1, -(-sizes[md5] // 1024)), (name, sent)
        first, *rest = sent
        assert first[2] == "bytes=0-1023" and "generation=" not in first[1]
        assert all("generation=" in path for _, path, _ in rest)
        assert [r for _, _, r in rest] == [
            f"bytes={i * 1024}-{min(sizes[md5], (i + 1) * 1024) - 1}"
            for i in range(1, len(sent))
        ]


def test_the_hash_header_is_read_in_both_of_its_forms() -> None:
    import base64

    import google_crc32c
    from multidict import CIMultiDict

    from registry.storage.remote import _goog_hash

    data = b"hello world" * 1000
    digest, crc_bytes = hashlib.md5(data).digest(), google_crc32c.value(data).to_bytes(4, "big")
    md5, crc = base64.b64encode(digest).decode(), base64.b64encode(crc_bytes).decode()
    expected = (digest.hex(), crc_bytes)
    one = CIMultiDict([("X-Goog-Hash", f"crc32c={crc},md5={md5}")])
    two = CIMultiDict([("x-goog-hash", f"crc32c={crc}"), ("x-goog-hash", f"md5={md5}")])
    assert _goog_hash(one) == _goog_hash(two) == expected
    # A composite object (no MD5), a malformed value, transcoded bytes: the bytes' own MD5.
    assert _goog_hash(CIMultiDict([("X-Goog-Hash", f"crc32c={crc}")])) is None
    assert _goog_hash(CIMultiDict([("X-Goog-Hash", f"crc32c={crc},md5=not-base64")])) is None
    gzipped = CIMultiDict([*one.items(), ("X-Goog-Stored-Content-Encoding", "gzip")])
    assert _goog_hash(gzipped) is None


def test_the_empty_object_is_written_without_a_request(
    gcs: GCSEmulator, gcs_clone: GcsRegistry, tmp_path: Path
) -> None:
    # Its bytes are known from its name: no request, even where the bucket lacks it.
    from registry.repo.git import GitRepo
    from registry.storage.remote import RemoteObject, RemoteStore

    empty = hashlib.md5(b"").hexdigest()
    proxy = GCSProxy(gcs)
    try:
        set_remote(f"gs://{gcs_clone.bucket}/dvc", endpoint_url=proxy.url, anonymous=True)
        repo = GitRepo.open(str(gcs_clone.clone), tmp_path / "git")
        store = RemoteStore.open(repo, repo.resolve_commit("HEAD"))
        sizes: list[int] = []
        got = store.fetch(empty, tmp_path / "empty", on_size=sizes.append)
        assert (tmp_path / "empty").read_bytes() == b"" and got == RemoteObject(0, None)
        assert sizes == [0] and proxy.requests == []
        assert not store.has(empty)  # it was never pushed: the fetch did not need it
    finally:
        proxy.close()


def test_the_progress_total_counts_unsized_objects_at_the_mean_so_far() -> None:
    from registry.storage.cache import _Tally, _Transfer

    calls: list[tuple[int, int]] = []
    transfer = _Transfer(
        None, None, {}, {}, 10, lambda done, total: calls.append((done, total)), set(), _Tally()
    )  # no cache or remote: only the counts are used
    transfer.unsized = 4  # and 10 bytes known beforehand (a shared copy)
    transfer.expect(100)
    assert transfer.total == 10 + 100 + 3 * 100
    transfer.expect(None)  # another process cached one: it comes from there
    assert transfer.total == 10 + 100 + 2 * 100
    transfer.shared["shared"] = 10
    transfer.recount("shared", 12)  # the shared copy was bad: the remote's has 12 bytes
    transfer.expect(40)
    transfer.expect(10)
    assert transfer.total == 12 + 150 and transfer.unsized == 0  # exact once all are sized
    transfer.report(162)
    assert calls == [(162, 162)]


def test_an_account_that_may_create_but_not_delete_can_release(
    gcs: GCSEmulator, gcs_clone: GcsRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    proxy = GCSProxy(gcs, refuse="deletes")  # roles/storage.objectCreator
    try:
        set_remote(f"gs://{gcs_clone.bucket}/dvc", endpoint_url=proxy.url, anonymous=True)
        code, out, err = _cli(capsys, "remote", "check", "--write")
        assert code == 0, err
        assert "readable and writable" in out
    finally:
        proxy.close()


def test_storage_errors_are_explained() -> None:
    from google.auth import exceptions as auth

    from registry.cloud.gcs import explain_storage_error

    def explain(error: BaseException) -> BaseException | None:
        return explain_storage_error(
            error, remote="gcs", url="gs://lab-data/dvc", action="reading gs://lab-data/dvc"
        )

    offline = explain(auth.TransportError("connection refused"))
    assert isinstance(offline, RemoteError) and "cannot reach Google" in str(offline)
    refused = explain(auth.RefreshError("invalid_grant: account deleted"))
    assert isinstance(refused, CredentialsError) and "did not accept" in str(refused)
    forbidden = explain(OSError("Forbidden: b/lab-data/o\nno storage.objects.list access"))
    assert isinstance(forbidden, CredentialsError) and "objectViewer" in str(forbidden)
    missing = explain(FileNotFoundError("b/lab-data/o"))
    assert isinstance(missing, RemoteError) and "gs://lab-data of DVC remote 'gcs'" in str(missing)
    wrapped = RuntimeError("2 files failed to upload")
    wrapped.__cause__ = ConnectionRefusedError("refused")
    assert isinstance(explain(wrapped), RemoteError)
    assert explain(ValueError("something else")) is None


# -- what the console shows when the server fails -------------------------------------------------


def _registry_runs(clone: Path, *argvs: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Run ``registry ARGV`` for each of ``argvs`` at once, as subprocesses (the console as a user
    sees it: the storage clients log to the process's real stderr); return them in order."""
    env = {**os.environ, "REGISTRY_CACHE_DIR": str(clone.parent / "cold-cache")}
    started = [
        subprocess.Popen(
            ["registry", *argv],
            cwd=clone,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for argv in argvs
    ]
    done = [(p, *p.communicate()) for p in started]
    return [subprocess.CompletedProcess(p.args, p.returncode, out, err) for p, out, err in done]


def _closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_server_is_one_line_without_the_clients_tracebacks(
    gcs_clone: GcsRegistry,
) -> None:
    # gcsfs retries a refused connection for ~35 s a request (with backoff), and logs a traceback
    # each time it gives up: the commands run side by side, so the test takes as long as the
    # slowest one.
    set_remote(
        f"gs://{gcs_clone.bucket}/dvc",
        endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        anonymous=True,
    )
    commit_all(gcs_clone.clone, "A server that is down")
    *plain, detailed = _registry_runs(
        gcs_clone.clone,
        ("remote", "check"),
        ("remote", "check", "--write"),
        ("datasets", "pull", f"{DIGITS}:1.1.0"),
        ("--traceback", "remote", "check"),
    )
    for run in plain:
        assert run.returncode == 7 and run.stdout == "", run
        [line] = run.stderr.splitlines()  # one line: no log of gcsfs's retries
        assert line.startswith("error: ") and "cannot reach Google Cloud Storage" in line
        assert "Traceback" not in line
    # --traceback shows the detail: the client's own log of its retries, and the traceback.
    assert "out of retries" in detailed.stderr and "ClientConnectorError" in detailed.stderr
    assert "registry.errors.RemoteError: reading" in detailed.stderr


# -- purge and remote gc on a bucket --------------------------------------------------------------


def test_purge_and_remote_gc_on_a_bucket(
    gcs: GCSEmulator, gcs_clone: GcsRegistry, tmp_path: Path
) -> None:

    from registry.cache_admin import gc_remote

    clone, model = gcs_clone.clone, "purged-model"
    (tmp_path / "model.keras").write_bytes(os.urandom(3000))  # objects of this test alone
    registry.add_model(model, tmp_path / "model.keras")
    _fill_card(clone / "models" / model / "README.md")
    commit_all(clone, f"Add {model}")
    registry.release_model(model, version="1.0.0")
    before = set(_objects(gcs, gcs_clone.bucket))
    (tmp_path / "model.keras").write_bytes(os.urandom(3000))
    registry.add_model(model, tmp_path / "model.keras", force=True)
    commit_all(clone, f"{model}: new weights")
    registry.release_model(model, version="1.1.0")
    (new,) = set(_objects(gcs, gcs_clone.bucket)) - before
    result = registry.yank_model(f"{model}:1.0.0", reason="personal data", purge=True)
    assert result.purge is not None and len(result.purge.deleted) == 1
    (old,) = result.purge.deleted
    assert f"dvc/files/md5/{old[:2]}/{old[2:]}" in before
    assert f"dvc/files/md5/{old[:2]}/{old[2:]}" not in _objects(gcs, gcs_clone.bucket)
    with pytest.raises(PurgedVersionError, match="personal data"):
        registry.load_model(f"{model}:1.0.0")
    # A stray object is listed (a dry run: the bucket is shared by this session's tests).
    client = gcs.storage_client()
    stray = "fedcba9876543210fedcba9876543210"
    client.bucket(gcs_clone.bucket).blob(f"dvc/files/md5/{stray[:2]}/{stray[2:]}").upload_from_string(
        b"stray"
    )
    report = gc_remote()
    assert report.objects.get(stray) == 5 and not report.deleted
    assert old not in report.objects  # deleted already
    assert new.replace("dvc/files/md5/", "").replace("/", "") not in report.objects  # live
