"""Cold pull of a ~1 GB, many-shard dataset release from Google Cloud Storage (the emulator).

Starts fake-gcs-server (``registry.testing.GCSEmulator``, memory backend) on 127.0.0.1 and makes
a throwaway registry: a Git + DVC repository whose ``build@bench/shards`` stage writes
``--shards`` files of random bytes (``--size-mb`` in all) as the dataset's ``prepared/`` folder.
``dvc repro`` builds it, ``registry.remotes.set_remote`` points the registry at the bucket (the
endpoint and anonymous access, as ``registry remote set --endpoint-url --anonymous`` does), the
lock file is committed, the release tagged ``bench/shards@v1.0.0`` and ``dvc push`` uploads it.

Then, interleaved, best of ``--repeat``, each pull into a fresh, empty cache folder:

- sequential: ``registry.pull_dataset("bench/shards:1.0.0", jobs=1)``, the real pull end to end
  (tag resolution, ``dvc.lock`` at the tag, the ``.dir`` listing, sizes, downloads with md5
  verification, per-object locks, snapshot assembly);
- parallel: the same with the default ``jobs``, i.e. what ``registry datasets pull`` runs;
- google-cloud-storage: the same objects (``<remote>/files/md5/ab/cdef...``) downloaded directly
  with an anonymous ``storage.Client`` pointed at the emulator, one ``blob.download_to_filename``
  each, on as many threads as the parallel pull uses (and on one thread, for context).

Goals (issue "Production storage and scale-out on Google Cloud"): parallel >= 1.5x sequential,
and >= 0.8x the throughput of the direct google-cloud-storage download. The emulator runs on the
same machine and competes for its CPUs with the client being measured.

    python benchmarks/bench_gcs_pull.py [--size-mb 1024] [--shards 256] [--repeat 3] [--quick]

``python -m benchmarks`` runs :func:`measure` (loopback only): ``gcs.direct``, issue 17's aim of
>= 1.0x google-cloud-storage's faster way.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

# gcsfs asks the metadata server about hierarchical namespaces unless told not to (60 s a call
# without a network); set before anything imports it.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
os.environ.setdefault("NO_GCE_CHECK", "true")

from _common import Result, env, make_generated_release, report

if TYPE_CHECKING:
    from google.cloud.storage import Bucket

    from registry.storage.remote import RemoteStore

ROOT = Path(__file__).resolve().parent.parent
NAME = "bench/shards"
VERSION = "1.0.0"
BUCKET = "lab-bench"

GEN = """\
import os, sys
out, shards, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out, exist_ok=True)
for i in range(shards):
    with open(os.path.join(out, f"shard-{i:05d}-of-{shards:05d}.bin"), "wb") as f:
        f.write(os.urandom(size))
"""


def make_release(work: Path, gcs_url: str, shards: int, shard_bytes: int) -> Path:
    """A throwaway registry with one released dataset of ``shards`` random files, pushed."""
    sys.path.insert(0, str(ROOT))
    from registry.remotes import set_remote

    repo = work / "registry"

    def on_the_emulator(run: Callable[..., None]) -> None:
        set_remote(f"gs://{BUCKET}/dvc", registry=str(repo), endpoint_url=gcs_url, anonymous=True)

    built, pushed = make_generated_release(
        repo, NAME, VERSION, GEN, f"{shards} {shard_bytes}", on_the_emulator
    )
    print(f"built {shards} shards in {built:.1f} s, pushed them to the emulator in {pushed:.1f} s")
    return repo


class LatencyProxy:
    """A TCP proxy on 127.0.0.1 that holds every request's bytes ``delay`` seconds before passing
    them on to the emulator (responses pass at once): what a network adds to each request."""

    def __init__(self, upstream_port: int, delay: float) -> None:
        self.upstream_port, self.delay = upstream_port, delay
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            for src, dst, delay in ((client, upstream, self.delay), (upstream, client, 0.0)):
                threading.Thread(target=self._pipe, args=(src, dst, delay), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, delay: float) -> None:
        try:
            while data := src.recv(1 << 20):
                if delay:
                    time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()


def main() -> None:
    args = _parse_args()
    shard_bytes = args.size_mb * (1 << 20) // args.shards
    total = shard_bytes * args.shards
    with tempfile.TemporaryDirectory(prefix="bench-gcs-") as tmp:
        results = _run_scenarios(Path(tmp), args, shard_bytes, total)
    ok = True
    for name, (best, jobs) in results.items():
        ok = _report(name, best, jobs, args, total) and ok
    sys.exit(0 if ok else 1)


def _parse_args() -> argparse.Namespace:
    """The command line (``--quick``: ~100 MiB in 64 shards, best of 2)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=1024, help="dataset size in MiB")
    parser.add_argument("--shards", type=int, default=256, help="number of files")
    parser.add_argument("--repeat", type=int, default=3, help="best of how many runs")
    parser.add_argument(
        "--latency-ms", type=float, default=10.0, help="per-request latency of the second scenario"
    )
    parser.add_argument("--quick", action="store_true", help="~100 MiB in 64 shards, best of 2")
    args = parser.parse_args()
    if args.quick:
        args.size_mb, args.shards, args.repeat = 96, 64, 2
    return args


def measure(quick: bool) -> list[Result]:
    """The suite's figure, over loopback: ``gcs.direct``, the default pull (what ``registry
    datasets pull`` runs) against google-cloud-storage's faster way (1 thread or as many as the
    pull). The pull against jobs=1 is in the detail (the suite takes only the aims' figures).

    1 GiB in 256 shards, best of 3 (``quick``: 96 MiB in 64 shards, best of 2, ~15 s); the
    emulator is started and the release made here, in a temporary folder.
    """
    args = argparse.Namespace(
        size_mb=96 if quick else 1024,
        shards=64 if quick else 256,
        repeat=2 if quick else 3,
        latency_ms=0.0,
        quick=quick,
    )
    shard_bytes = args.size_mb * (1 << 20) // args.shards
    total = shard_bytes * args.shards
    with tempfile.TemporaryDirectory(prefix="bench-gcs-") as tmp:
        best, jobs = _run_scenarios(Path(tmp), args, shard_bytes, total, latency=False)["loopback"]
    direct = min(best["gcs-parallel"], best["gcs-sequential"])
    detail = (
        f"registry pull, jobs={jobs} (jobs=1: {best['sequential']:.2f} s), vs "
        f"google-cloud-storage's faster way; {args.shards} shards, {total / 1e6:,.0f} MB, "
        f"fake-gcs-server on this machine, best of {args.repeat}" + (" (quick)" if quick else "")
    )
    return [Result.speedup("gcs.direct", best["parallel"], direct, detail=detail)]


def _run_scenarios(
    work: Path, args: argparse.Namespace, shard_bytes: int, total: int, latency: bool = True
) -> dict[str, tuple[dict[str, float], int]]:
    """Release the dataset to the emulator and measure each scenario: loopback, then (with
    ``latency``) through a proxy that adds ``--latency-ms`` to each request. Returns what
    :func:`_best_times` gives, by scenario."""
    os.environ.update(env(HOME=str(work / "home")))
    for var in ("REGISTRY_URL", "REGISTRY_REMOTE", "REGISTRY_SHARED_CACHE"):
        os.environ.pop(var, None)
    os.environ["REGISTRY_SHARED_CACHE"] = ""  # no lab cache: every byte from the bucket
    from registry.cloud.emulator import GCSEmulator

    with GCSEmulator() as gcs:
        gcs.create_bucket(BUCKET)
        repo = make_release(work, gcs.url, args.shards, shard_bytes)
        proxy = LatencyProxy(gcs.port, args.latency_ms / 1000)
        scenarios = {"loopback": gcs.url}
        if latency:
            scenarios[f"+{args.latency_ms:g} ms a request"] = proxy.url
        try:
            return {
                name: _best_times(work, repo, endpoint, args, total)
                for name, endpoint in scenarios.items()
            }
        finally:
            proxy.close()


def _report(
    name: str, best: dict[str, float], jobs: int, args: argparse.Namespace, total: int
) -> bool:
    """Print one scenario's times and ratios; return whether it meets both goals."""
    mb = total / 1e6
    rate = {side: mb / t for side, t in best.items()}
    raw_best = max(rate["gcs-parallel"], rate["gcs-sequential"])
    par_seq = best["sequential"] / best["parallel"]
    par_raw = rate["parallel"] / raw_best
    labels = {
        "sequential": "registry pull, jobs=1",
        "parallel": f"registry pull, jobs={jobs} (default)",
        "gcs-parallel": f"google-cloud-storage, {jobs} threads",
        "gcs-sequential": "google-cloud-storage, 1 thread",
    }
    report(
        f"cold pull of {NAME}:{VERSION}, {name}: {args.shards} shards, {mb:,.0f} MB, "
        f"fake-gcs-server on this machine ({os.cpu_count()} CPUs), best of {args.repeat}",
        [
            *((label, f"{best[s]:.2f} s  {rate[s]:.1f} MB/s") for s, label in labels.items()),
            (
                "parallel / sequential",
                f"{par_seq:.2f}x (goal: >= 1.5x) {_verdict(par_seq >= 1.5)}",
            ),
            (
                "parallel / google-cloud-storage (its faster way)",
                f"{par_raw:.2f}x (goal: >= 0.8x) {_verdict(par_raw >= 0.8)}",
            ),
        ],
    )
    return par_seq >= 1.5 and par_raw >= 0.8


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


@dataclass(frozen=True)
class _Objects:
    """The released dataset's objects in the bucket, as the pull reads them.

    Attributes:
        store: The registry's DVC remote at the release.
        dir_md5: The hash of the prepared folder's ``.dir`` listing.
        blobs: Every file's object name in the bucket (``<remote>/files/md5/ab/cdef...``).
    """

    store: RemoteStore
    dir_md5: str
    blobs: list[str]


def _released_objects(repo: Path) -> _Objects:
    """Resolve the release in ``repo`` and list its objects, through the registry's own code."""
    from registry.repo.lock import locked_out_hash
    from registry.repo.session import as_reference, open_session
    from registry.storage.cache import _parse_listing
    from registry.storage.remote import RemoteStore

    session = open_session(str(repo))
    release = session.resolve(as_reference(f"{NAME}:{VERSION}"), "dataset")
    dir_md5 = locked_out_hash(
        session.repo, release.commit, f"build@{NAME}", f"datasets/{NAME}/prepared"
    )
    store = RemoteStore.open(session.repo, release.commit)
    listing = _parse_listing(local_dir_object(repo, dir_md5).read_bytes(), dir_md5)
    blobs = [store.object_path(e.md5).split("/", 1)[1] for e in listing]
    return _Objects(store, dir_md5, blobs)


def _gcs_bucket(endpoint: str, connections: int) -> Bucket:
    """The bucket through an anonymous google-cloud-storage client pointed at ``endpoint``."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="bench",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": endpoint},
    )
    # Enough HTTP connections for every thread (requests' pool keeps 10 by default).
    import requests.adapters

    adapter = requests.adapters.HTTPAdapter(
        pool_connections=connections, pool_maxsize=connections
    )
    client._http.mount("http://", adapter)
    return client.bucket(BUCKET)


def _best_times(
    work: Path, repo: Path, endpoint: str, args: argparse.Namespace, total: int
) -> tuple[dict[str, float], int]:
    """Best times of the four sides through ``endpoint``; and the parallel pull's jobs."""
    from registry.remotes import set_remote

    # This clone only (config.local): loads in a clone read its current DVC config.
    set_remote(
        f"gs://{BUCKET}/dvc", registry=str(repo), endpoint_url=endpoint, anonymous=True, local=True
    )
    objects = _released_objects(repo)
    jobs = objects.store.jobs
    bucket = _gcs_bucket(endpoint, jobs)
    # Warm both clients (imports, the gcsfs session, the HTTP pool) on one small object.
    objects.store.size(objects.dir_md5)
    bucket.blob(objects.blobs[0]).reload()
    sides = _sides(work, repo, objects.blobs, bucket, args.shards, total, jobs)
    best = dict.fromkeys(sides, float("inf"))
    for round_ in range(args.repeat):
        for side, fn in sides.items():
            start = time.perf_counter()
            fn()
            took = time.perf_counter() - start
            best[side] = min(best[side], took)
            print(f"  {endpoint} round {round_ + 1}: {side:15s} {took:6.2f} s")
    return best, jobs


def _sides(
    work: Path, repo: Path, blobs: list[str], bucket: Bucket, shards: int, total: int, jobs: int
) -> dict[str, Callable[[], None]]:
    """The four ways to fetch the release, each into a fresh, empty folder it removes after."""
    import registry

    counter = iter(range(1_000_000))

    def fresh(kind: str) -> Path:
        folder = work / f"{kind}-{next(counter)}"
        folder.mkdir()
        return folder

    def pull(n: int) -> None:
        cache = fresh("cache")
        os.environ["REGISTRY_CACHE_DIR"] = str(cache)
        result = registry.pull_dataset(f"{NAME}:{VERSION}", registry=str(repo), jobs=n)
        assert result.fetched_files == shards, result
        assert result.fetched_bytes == total, result
        shutil.rmtree(cache)

    def direct(n: int) -> None:
        out = fresh("direct")

        def one(i: int) -> None:
            bucket.blob(blobs[i]).download_to_filename(str(out / f"{i:05d}"))

        if n == 1:
            for i in range(len(blobs)):
                one(i)
        else:
            with ThreadPoolExecutor(max_workers=n) as pool:
                list(pool.map(one, range(len(blobs))))
        assert sum(f.stat().st_size for f in out.iterdir()) == total
        shutil.rmtree(out)

    return {
        "sequential": lambda: pull(1),
        "parallel": lambda: pull(jobs),
        "gcs-parallel": lambda: direct(jobs),
        "gcs-sequential": lambda: direct(1),
    }


def local_dir_object(repo: Path, dir_md5: str) -> Path:
    """The ``.dir`` listing in the repository's own DVC cache (``dvc repro`` put it there)."""
    md5 = dir_md5
    return repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


if __name__ == "__main__":
    main()
