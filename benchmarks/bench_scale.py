"""The read path as the registry grows: list, info, resolve + locate, search at 100 to 20,000 tags.

Builds one registry of 1,000 datasets and 1,000 models (a builder, ``build_info.json`` and a
``dvc.lock`` entry each; a card each), ten release commits, and every tag object of the full
size at once (10 versions of each dataset, 5 of each model, a stage tag per model version and
per dataset: 21,000 tags). Each size then keeps the first N of those tags in ``packed-refs``
(as a clone has them), so one build serves the whole curve; the same questions are asked at
every size. ``group0/dataset_0`` has real bytes in a local DVC remote and is pulled once, so
the resolve row is a warm ``registry datasets pull REF --json``.

Each command runs in a fresh process, best of ``--repeat`` rounds (each round runs every size in
turn, so a passing load touches them alike), with its peak resident memory; beside it, its
anchor: ``python -c pass`` plus the ``git for-each-ref`` of one artifact's tags.

    python benchmarks/bench_scale.py [--sizes 100,1000,2000,10000,20000] [--repeat 5]
        [--plot docs/performance-scale.svg] [--json PATH] [--baseline OLD_TREE]

``python -m benchmarks`` runs :func:`measure`: ``scale.growth`` (aim <= 2x) and ``scale.memory``
(aim <= 200 MiB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import BIN, Result, env, release_commits, report
from bench_search import card

DATASETS, DATASET_VERSIONS, MODELS, MODEL_VERSIONS = 1000, 10, 1000, 5
# (best wall s, peak MiB, least CPU s) of a command.
Figure = tuple[float, float, float]
TIME = "/usr/bin/time"  # GNU time, for each command's peak memory
RESOLVE = "resolve + locate (pull --json, warm)"
ASKED = "group0/dataset_0"  # every question is about the first dataset (in every size)
SEARCH = ["models", "search", "--task", "text-classification", "--language", "ja",
          "--dataset", "group1/dataset_1:1.*", "--sort", "accuracy"]


def dataset(i: int) -> str:
    return f"group{i % 7}/dataset_{i}"


def lock_entry(name: str, md5: str) -> str:
    """A ``dvc.lock`` stage as DVC writes a build's."""
    folder = f"datasets/{name}"
    return (
        f"  build@{name}:\n    cmd: registry datasets prepare {name}\n    deps:\n"
        f"    - path: {folder}/{name.rsplit('/', 1)[-1]}_dataset_builder.py\n"
        "      hash: md5\n      md5: 932eb99cd6c9a9a8a1d3fd0739b5ca12\n      size: 4098\n"
        f"    params:\n      params.yaml:\n        datasets.{name}: {{}}\n    outs:\n"
        f"    - path: {folder}/build_info.json\n      hash: md5\n"
        "      md5: 72e93907c5b725fd87f491be040d83e5\n      size: 2229\n"
        f"    - path: {folder}/prepared\n      hash: md5\n      md5: {md5}\n"
        "      size: 319568\n      nfiles: 4\n"
    )


def release_message(tag: str, v: int, commit: str) -> str:
    """A tag's message as the registry writes it: a release's carries its lineage record."""
    if "@v" not in tag:
        return f"{tag}\n"
    name, version = tag.split("@v")
    record: dict[str, object] = {"artifact": name, "version": version, "commit": commit,
                                 "schema": 2}
    if name.startswith("model-"):
        i = int(name.removeprefix("model-"))
        record.update(kind="model", datasets={"group1/dataset_1": f"1.{i % 3}.0"},
                      base_model=None, params={"epochs": 5}, training_run=None,
                      weights={"path": f"models/{name}/model.keras", "md5": f"{i:032x}"})
    else:
        record.update(kind="dataset", params={}, builder={}, raw=[])
    return f"Release {name} {version}\n\nlineage: {json.dumps(record, sort_keys=True)}\n"


def tag_order() -> list[tuple[str, int]]:
    """Every tag of the full registry and the release commit (0-9) it points at, in the order
    sizes take them: first one release of each artifact, then more versions and stages."""
    first = [(f"{dataset(i)}@v1.0.0", 0) for i in range(DATASETS)]
    first += [(f"model-{i}@v1.0.0", 0) for i in range(MODELS)]
    # Interleaved so that 100 and 1,000 tags hold both kinds.
    tags = [t for pair in zip(first[:DATASETS], first[DATASETS:], strict=True) for t in pair]
    for v in range(1, DATASET_VERSIONS):
        tags += [(f"{dataset(i)}@v1.{v}.0", v) for i in range(DATASETS)]
        if v < MODEL_VERSIONS:
            tags += [(f"model-{i}@v1.{v}.0", v) for i in range(MODELS)]
            tags += [(f"model-{i}#prod#{v}", v) for i in range(MODELS)]
    tags += [(f"{dataset(i)}#prod#1", DATASET_VERSIONS - 1) for i in range(DATASETS)]
    return tags


def make_registry(root: Path, storage: Path, tags: int | None = None) -> list[str]:
    """The full registry at ``root`` (every tag packed, or the first ``tags`` of
    :func:`tag_order`), ``ASKED``'s bytes in ``storage``.

    Returns:
        ``packed-refs`` lines of each tag, in :func:`tag_order` (tag line + peeled line).
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from registry.storage.hashes import dir_hash, dir_listing

    def git(*args: str, **kw: object) -> str:
        return subprocess.run(["git", *args], cwd=root, env=env(), check=True,
                              capture_output=True, text=True, **kw).stdout  # type: ignore

    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env())
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text(f"[core]\n    remote = bench\n['remote \"bench\"']\n"
                                          f"    url = {storage}\n")
    # The asked dataset's bytes: a small prepared folder, its objects in the remote.
    prepared = root.parent / "prepared"
    prepared.mkdir()
    for k in range(4):
        (prepared / f"shard-{k}.bin").write_bytes(os.urandom(4096))
    listing = dir_listing(prepared)
    md5 = dir_hash(prepared, listing)
    objects = [(e["md5"], (prepared / e["relpath"]).read_bytes()) for e in listing]
    objects.append((md5, json.dumps(listing, sort_keys=True).encode()))
    for oid, data in objects:
        path = storage / "files" / "md5" / oid[:2] / oid[2:]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    lock = ["schema: '2.0'\nstages:\n"]
    for i in range(DATASETS):
        folder = root / "datasets" / dataset(i)
        folder.mkdir(parents=True)
        (folder / f"dataset_{i}_dataset_builder.py").write_text("class Builder: ...\n")
        (folder / "build_info.json").write_text(json.dumps({"version": "1.0.0", "splits": {}}))
        lock.append(lock_entry(dataset(i), md5 if i == 0 else f"{i:032x}.dir"))
    (root / "dvc.lock").write_text("".join(lock))
    for i in range(MODELS):
        (root / "models" / f"model-{i}").mkdir(parents=True)
        (root / "models" / f"model-{i}" / "README.md").write_text(card(i, dataset(1)))
    git("add", "-A")
    git("commit", "-qm", "registry")
    head = git("rev-parse", "HEAD").strip()
    # One commit per version, then every tag object, in one fast-import stream.
    lines = release_commits(root, DATASET_VERSIONS)
    order = tag_order()[:tags]
    for name, v in order:
        message = release_message(name, v, head)
        lines += [f"tag {name}", f"from :{v + 1}",
                  f"tagger Bench <bench@lab.test> {1700000000 + v} +0000",
                  f"data {len(message.encode())}", message]
    git("fast-import", "--quiet", input="\n".join(lines) + "\n")
    git("pack-refs", "--all")
    git("gc", "-q")
    peeled: dict[str, list[str]] = {}
    current = ""
    for line in (root / ".git" / "packed-refs").read_text().splitlines():
        if line.startswith("^"):
            peeled[current].append(line)
        elif not line.startswith("#"):
            current = line.split(" ", 1)[1]
            peeled[current] = [line]
    return ["\n".join(peeled[f"refs/tags/{name}"]) for name, _ in order]


def keep_tags(root: Path, tag_lines: list[str], count: int) -> None:
    """Leave the first ``count`` tags in ``packed-refs`` (sorted, as git writes it)."""
    packed = root / ".git" / "packed-refs"
    heads = [line for line in packed.read_text().splitlines()
             if " refs/heads/" in line and not line.startswith("#")]
    kept = sorted(heads + tag_lines[:count], key=lambda block: block.split("\n")[0].split(" ")[1])
    packed.write_text("# pack-refs with: peeled fully-peeled sorted \n" + "\n".join(kept) + "\n")


def run_best(args: list[str], cwd: Path, repeat: int, **extra: str) -> Figure:
    """Best wall time (s) of ``repeat`` fresh runs, the largest peak RSS (MiB) among them, and
    the least CPU time (s, user + system, with the command's own children such as git).

    GNU time reports the peak and CPU (``%M %U %S``): it execs the command from its own small
    process, where the kernel's peak of a child forked straight from this script would count
    this script's own memory from before the exec. CPU time moves far less than wall time
    with the load of a shared machine.
    """
    best, peak, cpu = float("inf"), 0.0, float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run([TIME, "-f", "%M %U %S", *args], cwd=cwd, env=env(**extra),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        best = min(best, time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr[-500:]}")
        kib, user, system = done.stderr.split()[-3:]
        peak = max(peak, int(kib) / 1024)
        cpu = min(cpu, float(user) + float(system))
    return best, peak, cpu


COMMANDS = {
    "datasets list": ["datasets", "list"],
    "datasets info": ["datasets", "info", f"{ASKED}:1.0.0"],
    RESOLVE: ["datasets", "pull", f"{ASKED}:1.0.0", "--json"],
    "models search (4 filters)": SEARCH,
}


def measure(quick: bool) -> list[Result]:
    """The suite's figures: ``scale.growth``, the worst ratio of a row's time at the largest
    size to its time at 2,000 tags (list, info, resolve + locate, search; each a fresh
    process); ``scale.memory``, the largest peak of any of those commands; and resolve +
    locate at 100 tags (``resolve.100``) and at the largest size (``resolve.10k``), each
    beside its anchor (``python -c pass`` and one artifact's ``for-each-ref``).

    Full: 100, 2,000, 10,000 and 20,000 tags, best of 5. ``quick``: 100, 2,000 and 4,000 tags
    of a registry built with only those, best of 2 (~15 s).
    """
    sizes = [100, 2000, 4000] if quick else [100, 2000, 10000, 20000]
    repeat = 2 if quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        results = build_and_measure(Path(tmp), sizes, repeat, tags=max(sizes) if quick else None)
    base, top = results[2000], results[sizes[-1]]
    rows = [row for row in COMMANDS if row in base]
    worst = max(rows, key=lambda row: top[row][0] / base[row][0])
    peak, heaviest = max((top[row][1], row) for row in rows)
    detail = " (quick)" if quick else ""

    def resolve(size: int) -> Result:
        figures = results[size]
        anchor = figures["python -c pass"][0] + figures["git for-each-ref (one artifact)"][0]
        return Result.times(
            "resolve.100" if size == 100 else "resolve.10k", figures[RESOLVE][0], anchor,
            detail=f"{size:,} tags{detail}; baseline: python -c pass + one artifact's "
                   "for-each-ref",
        )

    return [
        Result.times(
            "scale.growth", top[worst][0], base[worst][0],
            detail=f"{worst}, the worst row, at {sizes[-1]:,} vs 2,000 tags{detail}",
        ),
        Result("scale.memory", peak, unit="MiB",
               detail=f"{heaviest}, the largest, at {sizes[-1]:,} tags{detail}"),
        resolve(100),
        resolve(sizes[-1]),
    ]


def build_and_measure(
    work: Path, sizes: list[int], repeat: int, baseline: Path | None = None,
    tags: int | None = None,
) -> dict[int, dict[str, Figure]]:
    """Build the registry in ``work`` (its first ``tags`` tags only, if given), pull the asked
    version once, and measure every row at each size: best of ``repeat`` rounds."""
    root, home, cache = work / "registry", str(work / "home"), str(work / "cache")
    start = time.perf_counter()
    tag_lines = make_registry(root, work / "storage", tags)
    print(f"built {len(tag_lines):,} tags in {time.perf_counter() - start:.0f} s; "
          f"load average {os.getloadavg()[0]:.1f}")
    subprocess.run([str(BIN / "registry"), "datasets", "pull", f"{ASKED}:1.0.0"], cwd=root,
                   env=env(HOME=home, REGISTRY_CACHE_DIR=cache), check=True,
                   capture_output=True)  # cold, once: every size then finds it cached
    results: dict[int, dict[str, Figure]] = {}
    # Rounds over every size, each keeping its best: a load that comes and goes on a
    # shared machine then touches every size alike, not the one measured at that moment.
    for round_ in range(repeat):
        for size in sizes:
            keep_tags(root, tag_lines, size)
            now = measure_rows(root, home, cache, 1, baseline)
            best = results.setdefault(size, now)
            results[size] = {
                row: (min(best[row][0], sec), max(best[row][1], mib), min(best[row][2], cpu))
                for row, (sec, mib, cpu) in now.items()
            }
        print(f"  round {round_ + 1} done (load average {os.getloadavg()[0]:.1f})")
    return results


def measure_rows(
    root: Path, home: str, cache: str, repeat: int, baseline: Path | None = None
) -> dict[str, Figure]:
    """Every row's figures on the registry as it is now (with ``baseline``: each command also
    run with that tree of the registry's code first on ``PYTHONPATH``, in turn)."""
    registry = str(BIN / "registry")
    extra = {"HOME": home, "REGISTRY_CACHE_DIR": cache}
    asked = f"refs/tags/{ASKED}@v*"
    found = {
        "python -c pass": run_best([sys.executable, "-c", "pass"], root, repeat),
        "git for-each-ref (one artifact)": run_best(["git", "for-each-ref", asked], root, repeat),
    }
    for row, args in COMMANDS.items():
        found[row] = run_best([registry, *args], root, repeat, **extra)
        if baseline is not None:
            found[f"{row} [baseline]"] = run_best([registry, *args], root, repeat,
                                                  PYTHONPATH=str(baseline), **extra)
    return found


def plot(results: dict[int, dict[str, Figure]], path: Path) -> None:
    """The curve: each row's seconds against the number of tags (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "bench_scale"  # the same figures, the same file
    import matplotlib.pyplot as plt

    sizes = sorted(results)
    fig, ax = plt.subplots(figsize=(7, 4))
    for row in next(iter(results.values())):
        if row.endswith("[baseline]"):
            continue
        ax.plot(sizes, [results[n][row][0] for n in sizes], marker="o", label=row)
    ax.set_xscale("log")
    ax.set_xlabel("tags in the registry")
    ax.set_ylabel("seconds, best of N, fresh process")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Read path vs tags (1,000 datasets + 1,000 models in the tree)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None} if path.suffix == ".svg" else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000,2000,10000,20000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--plot", type=Path, help="write the curve here (.svg or .png)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--work", type=Path, help="build in this new folder and keep it")
    parser.add_argument("--baseline", type=Path,
                        help="also time each command with this tree of the registry's code")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) if args.work is None else args.work
        work.mkdir(exist_ok=True)
        results = build_and_measure(work, sizes, args.repeat, args.baseline)
    for size, rows in results.items():
        anchor = rows["python -c pass"][0] + rows["git for-each-ref (one artifact)"][0]
        report(
            f"{size:,} tags (best of {args.repeat}; anchor: python -c pass + one artifact's "
            f"for-each-ref = {anchor:.3f} s)",
            [(row, f"{sec:.3f} s  {sec / anchor:4.1f}x anchor  CPU {cpu:.3f} s  "
                   f"peak {mib:.0f} MiB") for row, (sec, mib, cpu) in rows.items()],
        )
    if 2000 in results:
        base = results[2000]
        worst = {row: max(results[n][row][0] / base[row][0] for n in results) for row in base}
        peak = max(fig[1] for rows in results.values() for fig in rows.values())
        report("largest / figure at 2,000 tags (goal: <= 2x; memory < 200 MiB)",
               [(row, f"{ratio:.2f}x") for row, ratio in worst.items()]
               + [("peak memory, any command", f"{peak:.0f} MiB")])
    if args.plot:
        plot(results, args.plot)
    if args.json:
        args.json.write_text(json.dumps(
            {str(n): {row: {"seconds": s, "peak_mib": m, "cpu_seconds": c}
                      for row, (s, m, c) in rows.items()}
             for n, rows in results.items()}, indent=2))


if __name__ == "__main__":
    main()
