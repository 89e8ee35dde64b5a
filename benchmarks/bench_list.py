"""`registry datasets list` vs `gto show` on a registry with thousands of version tags.

Makes a registry repo with N datasets x M versions of annotated tags (default 110 x 20 = 2,200),
then times both commands on it, side by side, best of 3.

    python benchmarks/bench_list.py [--datasets 110] [--versions 20]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

from _common import BIN, Result, env, report, time_command


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
    """The suite's figure: `registry datasets list` at 10,000 version tags (500 datasets x 20;
    ``--quick``: 2,200), beside its anchor, one `git for-each-ref` of every tag."""
    datasets = 110 if quick else 500
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "registry"
        count = make_repo(repo, datasets, 20)
        ours = time_command([str(BIN / "registry"), "datasets", "list"], cwd=repo, HOME=tmp)
        anchor = time_command(["git", "for-each-ref", "refs/tags"], cwd=repo, HOME=tmp)
    return [Result.times("list.tags", ours, anchor,
                         f"{count:,} tags; baseline: git for-each-ref of every tag")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", type=int, default=110)
    parser.add_argument("--versions", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "registry"
        count = make_repo(repo, args.datasets, args.versions)
        ours = time_command([str(BIN / "registry"), "datasets", "list"], cwd=repo, HOME=tmp)
        gto = time_command([str(BIN / "gto"), "show"], cwd=repo, HOME=tmp)
    report(
        f"list on {count:,} version tags ({args.datasets} datasets)",
        [
            ("registry datasets list", f"{ours:.3f} s"),
            ("gto show", f"{gto:.3f} s"),
            ("speed-up", f"{gto / ours:.1f}x (goal: >= 20x)"),
        ],
    )


if __name__ == "__main__":
    main()
