"""`registry datasets list` and one version's `info` on a registry with thousands of tags.

Makes a registry repo with N datasets x M versions of annotated tags (default 110 x 20 = 2,200;
issue 17's aim is at 500 x 21 = 10,500, packed as in a clone), then times, side by side, best of
``--repeat``: `registry datasets list`, `registry datasets info NAME:1.4.0`, their anchor
(`python -c pass` + one artifact's `git for-each-ref`) and `gto show` (skip with --no-gto: at
10,500 tags it takes minutes).

    python benchmarks/bench_list.py [--datasets 110] [--versions 20] [--pack] [--no-gto]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import BIN, Result, against, env, load_note, report, time_command


def make_repo(root: Path, datasets: int, versions: int) -> int:
    """A registry-shaped Git repo with ``datasets * versions`` annotated release tags."""
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env())
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text("")
    for d in range(datasets):
        folder = root / "datasets" / f"group{d % 7}" / f"dataset_{d}"
        folder.mkdir(parents=True)
        (folder / f"dataset_{d}_dataset_builder.py").write_text("class Builder: ...\n")
    (root / "README.md").write_text("bench\n")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env())
    subprocess.run(["git", "commit", "-qm", "init"], cwd=root, check=True, env=env())
    # One fast-import stream writes every tag object at once (a git call per tag takes minutes).
    lines = []
    for d in range(datasets):
        for v in range(versions):
            name = f"group{d % 7}/dataset_{d}@v1.{v}.0"
            message = f"Release {name}\n"
            lines += [
                f"tag {name}",
                "from HEAD",
                "tagger Bench <bench@lab.test> 1700000000 +0000",
                f"data {len(message.encode())}",
                message,
            ]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    stream = "\n".join(lines).replace("from HEAD", f"from {head}") + "\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=stream.encode(), check=True)
    return datasets * versions


def measure(quick: bool) -> list[Result]:
    """The suite's figures: `registry datasets list` and one version's `info` at 10,500
    version tags (500 datasets x 21, packed as in a clone; ``--quick``: 2,310), beside their
    anchor, one `git for-each-ref` of every tag."""
    datasets = 110 if quick else 500
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "registry"
        count = make_repo(repo, datasets, 21)
        subprocess.run(["git", "pack-refs", "--all"], cwd=repo, check=True, env=env())
        registry = str(BIN / "registry")
        ours = time_command([registry, "datasets", "list"], cwd=repo, HOME=tmp)
        info = time_command([registry, "datasets", "info", "group3/dataset_3:1.4.0"], cwd=repo,
                            HOME=tmp)
        anchor = time_command(["git", "for-each-ref", "refs/tags"], cwd=repo, HOME=tmp)
    note = f"{count:,} tags; baseline: git for-each-ref of every tag"
    return [Result.times("list.tags", ours, anchor, note),
            Result.times("info.version", info, anchor, note)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", type=int, default=110)
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pack", action="store_true", help="pack the tags, as a clone has them")
    parser.add_argument("--no-gto", action="store_true", help="skip `gto show`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "registry"
        count = make_repo(repo, args.datasets, args.versions)
        if args.pack:
            subprocess.run(["git", "pack-refs", "--all"], cwd=repo, check=True, env=env())
        asked = f"group{3 % 7}/dataset_3"
        registry, n = str(BIN / "registry"), args.repeat
        python = time_command([sys.executable, "-c", "pass"], repeat=n)
        one = time_command(["git", "for-each-ref", f"refs/tags/{asked}@v*"], cwd=repo, repeat=n)
        ours = time_command([registry, "datasets", "list"], cwd=repo, repeat=n, HOME=tmp)
        info = time_command([registry, "datasets", "info", f"{asked}:1.{min(4, args.versions - 1)}"
                             ".0"], cwd=repo, repeat=n, HOME=tmp)
        gto = None if args.no_gto else time_command([str(BIN / "gto"), "show"], cwd=repo,
                                                    HOME=tmp)
    anchor = python + one
    rows = [
        ("anchor: python -c pass + one artifact's for-each-ref",
         f"{anchor:.3f} s ({python:.3f} + {one:.3f})"),
        ("registry datasets list", against(ours, anchor, "<= 0.15 s at 10,000+ tags")),
        ("registry datasets info NAME:VERSION", against(info, anchor, "<= 0.15 s")),
    ]
    if gto is not None:
        rows += [("gto show", f"{gto:.3f} s"), ("gto show / list", f"{gto / ours:.1f}x "
                                                "(goal: >= 20x)")]
    report(f"list on {count:,} version tags ({args.datasets} datasets, "
           f"{'packed' if args.pack else 'loose'}; best of {n}; {load_note()})", rows)


if __name__ == "__main__":
    main()
