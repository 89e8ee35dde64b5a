"""Cold `registry datasets pull` from the local DVC remote vs `cp` and `dvc pull` of the same bytes.

Makes two throwaway registries (Git + DVC, each with its own local remote folder), each holding
one released dataset whose ``build@NAME`` stage writes random bytes as its ``prepared/`` folder,
``dvc push``-ed and tagged ``NAME@v1.0.0`` as a release tags it:

- ``bench/shards``: ``--size-mb`` (150) in ``--shards`` (7) TFDS-named shards;
- ``bench/images``: ``--files`` (20,000) small files of ``--file-kb`` (6) KiB in 10 class
  folders, an image-folder dataset.

Then, per dataset, three sides, each a fresh process writing into an empty folder, one untimed
round first (so the remote's files are in the page cache for every side alike), then best of
``--repeat`` interleaved rounds, each starting with the next side (``sync`` before each, and
what they wrote deleted only at the end):

- registry: ``registry datasets pull NAME:1.0.0 --registry REPO --json`` into an empty
  ``REGISTRY_CACHE_DIR`` (no shared cache): resolve, the ``.dir`` listing, every object copied
  and md5-verified, the snapshot assembled;
- cp: ``cp -r`` of the remote's object folder (``files/``: exactly the release's objects, its
  listing included) into an empty folder;
- dvc: ``dvc pull`` of the dataset's output in a fresh clone (made before the clock starts)
  with an empty DVC cache.

Aims (issue 17): the shards' pull <= 1.3x `cp` and <= 1.0x `dvc pull`; the small files' pull
<= 2.0x `cp`.

    python benchmarks/bench_pull.py [--size-mb 150] [--shards 7] [--files 20000] [--file-kb 6]
                                    [--repeat 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from _common import BIN, Result, env, load_note, make_generated_release, report

VERSION = "1.0.0"
SHARDS, IMAGES = "bench/shards", "bench/images"

# The build stage's command: `python gen.py OUT KIND COUNT BYTES` writes COUNT files of BYTES
# random bytes, as TFDS shards (KIND "shards") or as class folders of images (KIND "images").
GEN = """\
import os, sys
out, kind, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for i in range(count):
    if kind == "shards":
        name = f"bench-train.tfrecord-{i:05d}-of-{count:05d}"
    else:
        name = f"train/class_{i % 10}/img_{i:06d}.jpg"
    path = os.path.join(out, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(os.urandom(size))
"""


@dataclass(frozen=True)
class Release:
    """One throwaway registry with one released dataset.

    Attributes:
        repo: The registry's work tree.
        storage: Its local DVC remote folder (every object of the release, nothing else).
        name: The dataset's name.
        files: How many files its folder has.
        size: How many bytes they hold.
    """

    repo: Path
    storage: Path
    name: str
    files: int
    size: int

    @property
    def ref(self) -> str:
        return f"{self.name}:{VERSION}"


def make_release(work: Path, name: str, kind: str, count: int, size: int) -> Release:
    """A registry in ``work`` whose dataset ``name`` is ``count`` files of ``size`` random bytes
    (``kind``: ``shards`` or ``images``), built by ``dvc repro``, pushed, and tagged."""
    repo, storage = work / "registry", work / "storage"
    storage.mkdir(parents=True)

    def local_remote(run: Callable[..., None]) -> None:
        run(str(BIN / "dvc"), "remote", "add", "--default", "bench", str(storage))

    make_generated_release(repo, name, VERSION, GEN, f"{kind} {count} {size}", local_remote)
    return Release(repo, storage, name, count, count * size)


# A side: ``prepare()`` makes what the clock must not count (an empty folder's name, a fresh
# clone) and returns ``(timed, clean)``: the one command, and the removal of what it wrote.
_Side = Callable[[], tuple[Callable[[], None], Callable[[], None]]]


def _sides(release: Release, work: Path) -> dict[str, _Side]:
    """The three sides of one release (see :data:`_Side`)."""
    run_env = env(HOME=str(work / "home"), REGISTRY_SHARED_CACHE="")
    counter = iter(range(1_000_000))

    def fresh(kind: str) -> Path:
        return work / f"{kind}-{next(counter)}"

    def registry() -> tuple[Callable[[], None], Callable[[], None]]:
        cache = fresh("cache")
        args = [str(BIN / "registry"), "datasets", "pull", release.ref,
                "--registry", str(release.repo), "--json"]

        def timed() -> None:
            done = subprocess.run(args, env={**run_env, "REGISTRY_CACHE_DIR": str(cache)},
                                  capture_output=True, text=True, check=True)
            result = json.loads(done.stdout)
            assert result["fetched_files"] == release.files, result
            assert result["fetched_bytes"] == release.size, result

        return timed, partial(shutil.rmtree, cache)

    def cp() -> tuple[Callable[[], None], Callable[[], None]]:
        dest = fresh("cp")

        def timed() -> None:
            subprocess.run(["cp", "-r", str(release.storage / "files"), str(dest)],
                           env=run_env, check=True)

        return timed, partial(shutil.rmtree, dest)

    def dvc() -> tuple[Callable[[], None], Callable[[], None]]:
        clone = fresh("clone")
        subprocess.run(["git", "clone", "-q", str(release.repo), str(clone)], env=run_env,
                       check=True, capture_output=True)
        out = f"datasets/{release.name}/prepared"

        def timed() -> None:
            subprocess.run([str(BIN / "dvc"), "pull", "-q", out], cwd=clone, env=run_env,
                           check=True, capture_output=True)
            assert (clone / out).is_dir()

        return timed, partial(shutil.rmtree, clone)

    return {"registry": registry, "cp": cp, "dvc": dvc}


def time_sides(release: Release, work: Path, repeat: int) -> dict[str, float]:
    """Best wall time of each side: one untimed round, then ``repeat`` interleaved ones."""
    sides = _sides(release, work)
    best = dict.fromkeys(sides, float("inf"))
    names = list(sides)
    cleans = []
    for round_ in range(repeat + 1):
        # Each round starts with the next side, so that what a side leaves the disk to do falls
        # on every side alike; and nothing is deleted until the end (deleting 20,000 files
        # made the next side up to 8x slower on this machine's ext4).
        for side in names[round_ % 3 :] + names[: round_ % 3]:
            timed, clean = sides[side]()
            cleans.append(clean)
            subprocess.run(["sync"], check=True)  # the last side's writes not on this one's clock
            start = time.perf_counter()
            timed()
            took = time.perf_counter() - start
            if round_:
                best[side] = min(best[side], took)
            print(f"  {release.name} round {round_}{'' if round_ else ' (warm-up)'}: "
                  f"{side:8s} {took:6.3f} s", file=sys.stderr)
    for clean in cleans:
        clean()
    return best


@dataclass(frozen=True)
class Sizes:
    """What a run measures: the shards' total MiB and count, the small files' count and KiB,
    and how many timed rounds."""

    size_mb: int = 150
    shards: int = 7
    files: int = 20_000
    file_kb: int = 6
    repeat: int = 5


QUICK = Sizes(size_mb=16, shards=4, files=500, file_kb=6, repeat=2)


def run_all(sizes: Sizes) -> dict[str, tuple[Release, dict[str, float]]]:
    """Make both releases in a temporary folder and time the three sides of each."""
    with tempfile.TemporaryDirectory(prefix="bench-pull-") as tmp:
        work = Path(tmp)
        shard_bytes = sizes.size_mb * (1 << 20) // sizes.shards
        releases = {
            SHARDS: make_release(work / "shards", SHARDS, "shards", sizes.shards, shard_bytes),
            IMAGES: make_release(work / "images", IMAGES, "images", sizes.files,
                                 sizes.file_kb << 10),
        }
        return {name: (r, time_sides(r, work, sizes.repeat)) for name, r in releases.items()}


def results(timings: dict[str, tuple[Release, dict[str, float]]]) -> list[Result]:
    """The suite's rows from :func:`run_all`'s times."""
    shards, t_shards = timings[SHARDS]
    images, t_images = timings[IMAGES]
    mib = shards.size / (1 << 20)
    return [
        Result.times("pull.cold_vs_cp", t_shards["registry"], t_shards["cp"],
                     f"{mib:.0f} MiB in {shards.files} shards"),
        Result.times("pull.cold_vs_dvc", t_shards["registry"], t_shards["dvc"],
                     f"{mib:.0f} MiB in {shards.files} shards"),
        Result.times("pull.small_files", t_images["registry"], t_images["cp"],
                     f"{images.files:,} files of {images.size // images.files >> 10} KiB; "
                     f"dvc pull {t_images['dvc']:.2f} s"),
    ]


def measure(quick: bool) -> list[Result]:
    """The suite's figures: a cold pull of 150 MiB in 7 shards vs `cp` and `dvc pull`, and of
    20,000 files of 6 KiB vs `cp` (``--quick``: 16 MiB in 4 shards, 500 files, best of 2)."""
    return results(run_all(QUICK if quick else Sizes()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Sizes()
    parser.add_argument("--size-mb", type=int, default=default.size_mb, help="the shards' MiB")
    parser.add_argument("--shards", type=int, default=default.shards, help="how many shards")
    parser.add_argument("--files", type=int, default=default.files, help="how many small files")
    parser.add_argument("--file-kb", type=int, default=default.file_kb, help="KiB a small file")
    parser.add_argument("--repeat", type=int, default=default.repeat, help="timed rounds")
    parser.add_argument("--quick", action="store_true", help=f"sizes as {QUICK}")
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes(args.size_mb, args.shards, args.files, args.file_kb,
                                           args.repeat)
    timings = run_all(sizes)
    for release, best in timings.values():
        report(
            f"cold pull of {release.ref} from a local remote: {release.files:,} files, "
            f"{release.size / (1 << 20):.1f} MiB, best of {sizes.repeat} ({load_note()})",
            [
                ("registry datasets pull", f"{best['registry']:.3f} s"),
                ("cp -r of the remote's objects", f"{best['cp']:.3f} s"),
                ("dvc pull in a fresh clone", f"{best['dvc']:.3f} s"),
                ("pull / cp", f"{best['registry'] / best['cp']:.2f}x"),
                ("pull / dvc pull", f"{best['registry'] / best['dvc']:.2f}x"),
            ],
        )
    print()
    for row in results(timings):
        print(f"{row.name}: {row.ratio:.2f}x ({row.detail})")


if __name__ == "__main__":
    main()
