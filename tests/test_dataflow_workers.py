"""Dataflow's workers can run what the generated worker package holds, byte for byte.

For ``ad_clicks`` and ``ad_copy``: the worker package that a Dataflow build generates
(``write_worker_package``) is made into its sdist by Beam's own staging code, installed into a
fresh virtual environment holding only Apache Beam (with its ``gcp`` extra, as in Dataflow's
worker image) and what the package declares, and the dataset's Beam pipeline is run there from a
folder outside the repository (``tests/worker_build.py``: every module imported from that
environment), reading the raw data from the GCS emulator. The
result must have the DVC hash of the build this checkout makes from the same bucket.

Slow the first time (uv downloads TensorFlow and Beam into its cache, ``tests/venvs.py``);
seconds once the cache is warm.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from registry.cloud.emulator import GCSEmulator
from tests.conftest import PROJECT_ROOT, registry_tree
from tests.venvs import FreshVenv, fresh_venv

pytestmark = pytest.mark.slow

# dataset -> (its worker package's builder module, its raw export in the repository)
DATASETS = {
    "products/product_a/ad_clicks": "ad_clicks_dataset_builder",
    "text_generation/ad_copy": "ad_copy_dataset_builder",
}
# Beam's settings for both builds: in-process (Beam's worker processes would each import
# TensorFlow again, a minute more on 2 cores, and run the same code from the same environment).
LOCAL_BEAM = {"runner": "DirectRunner", "direct_running_mode": "in_memory"}
WORKER_BEAM = LOCAL_BEAM


@pytest.fixture(scope="session")
def gcs() -> Iterator[GCSEmulator]:
    """One fake-gcs-server on 127.0.0.1 for this module's raw exports."""
    with GCSEmulator() as server:
        server.create_bucket("lab-exports")
        yield server


def build_sdist(setup_file: Path, dest: Path) -> Path:
    """The sdist Beam makes of ``--setup_file`` when it submits a Dataflow job."""
    from apache_beam.runners.portability.stager import Stager

    dest.mkdir()
    return Path(Stager._build_setup_package(str(setup_file), str(dest)))


class WorkerSetup:
    """A dataset's registry tree, its worker package's sdist unpacked, and the fresh venv."""

    def __init__(self, tree: Path, sdist: Path, unpacked: Path, venv: FreshVenv) -> None:
        self.tree, self.sdist, self.unpacked, self.venv = tree, sdist, unpacked, venv


@pytest.fixture(scope="session")
def worker_setup(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], WorkerSetup]:
    """Per dataset, once a session: the package a Dataflow build generates, its sdist, and a
    fresh venv with ``apache-beam[gcp]`` (this Beam's version) and that sdist installed."""
    from registry.cloud.dataflow import write_worker_package

    made: dict[str, WorkerSetup] = {}

    def setup(name: str) -> WorkerSetup:
        if name in made:
            return made[name]
        base = tmp_path_factory.mktemp(name.rsplit("/", 1)[-1])
        registry_tree(base / "tree", keep=name)
        package = write_worker_package(base / "tree", name)
        sdist = build_sdist(package.setup_file, base / "dist")
        with tarfile.open(sdist) as archive:
            archive.extractall(base / "unpacked", filter="data")
        (unpacked,) = (base / "unpacked").iterdir()
        beam = f"apache-beam[gcp]=={metadata.version('apache-beam')}"
        venv = fresh_venv(base / "venv", [beam, str(sdist)])
        print(f"fresh venv for {name}: {venv.seconds:.1f} s")
        made[name] = WorkerSetup(base / "tree", sdist, unpacked, venv)
        return made[name]

    return setup


def upload_raw(gcs: GCSEmulator, name: str) -> str:
    """Put the dataset's dummy export in the emulator's bucket; return its ``gs://`` folder."""
    client = gcs.storage_client()
    prefix = f"exports/{name}"
    for path in sorted((PROJECT_ROOT / "datasets" / name / "dummy_data").iterdir()):
        client.bucket("lab-exports").blob(f"{prefix}/{path.name}").upload_from_filename(path)
    return f"gs://lab-exports/{prefix}"


def _listing(folder: Path) -> dict[str, int]:
    """Each file's path and size, for a readable failure before the hashes are compared."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_a_worker_venv_builds_the_same_bytes_from_gcs(
    name: str,
    gcs: GCSEmulator,
    worker_setup: Callable[[str], WorkerSetup],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from registry.build.prepare import prepare_dataset
    from registry.storage.hashes import dir_hash

    setup = worker_setup(name)
    raw = upload_raw(gcs, name)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
    params: dict[str, Any] = {"raw_path": raw}
    # Beam would spend 24 s looking for credentials before connecting anonymously, as it does
    # here: both builds are told up front (tests/worker_build.py's anonymous_gcs).
    from apache_beam.internal.gcp import auth

    monkeypatch.setattr(auth._Credentials, "_credentials_init", True)
    monkeypatch.setattr(auth._Credentials, "_credentials", None)

    # This checkout's build, as `registry datasets prepare` runs it, from the same bucket.
    started = time.monotonic()
    local = prepare_dataset(
        setup.tree, name, params=params, beam=LOCAL_BEAM, output=tmp_path / "local"
    )
    print(f"local build of {name}: {time.monotonic() - started:.1f} s")

    # The worker's: a folder outside the repository, the fresh venv's Python, nothing else.
    outside = tmp_path / "worker"
    outside.mkdir()
    shutil.copy(PROJECT_ROOT / "tests" / "worker_build.py", outside / "worker_build.py")
    args = {
        "module": DATASETS[name],
        "params": params,
        "data_dir": str(outside / "data"),
        "statistics_dir": str(outside / "statistics"),
        "anonymous_gcs": True,
        "metadata_dir": str(setup.unpacked),
        "beam": WORKER_BEAM,
    }
    # No metadata server here (a Dataflow worker has one): google-auth must not wait for it.
    env = {**os.environ, "NO_GCE_CHECK": "true"}
    started = time.monotonic()
    done = setup.venv.run("worker_build.py", json.dumps(args), cwd=outside, env=env)
    print(f"worker build of {name}: {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, done.stderr[-4000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])

    # Every module came from the fresh venv: not this checkout, not the test environment.
    venv = setup.venv.path.resolve()
    assert Path(found["prefix"]).resolve() == venv
    for module in ("registry", "builder", "beam", "tfds"):
        assert Path(found[module]).resolve().is_relative_to(venv), (module, found[module])
    assert Path(found["builder"]).name == f"{DATASETS[name]}.py"
    for entry in found["sys_path"]:
        where = Path(entry or ".").resolve()
        assert not where.is_relative_to(PROJECT_ROOT), entry
        assert not where.is_relative_to(Path(sys.prefix).resolve()), entry

    built = Path(found["data_dir"])
    assert _listing(built) == _listing(local)
    assert dir_hash(built) == dir_hash(local)
    # The pipeline really read the bucket: the examples are the export's.
    info = json.loads((built / "dataset_info.json").read_text())
    assert sum(int(n) for split in info["splits"] for n in split["shardLengths"]) > 0
