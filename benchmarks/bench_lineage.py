"""`registry lineage` up and down vs `gto show`, on a registry with 15,000+ tags.

Makes a registry repo with M models x V versions (default 1,000 x 10) whose release tags carry
lineage records (each model trained on one dataset version; base-model chains up to depth 5) and
D datasets x V versions (default 300 x 10), whose release tags carry theirs too, with a dvc.lock
that records every build, then times, each in a fresh process (best of 3): lineage up of the
last model of a chain, lineage down of a dataset version, and `gto show` on the same repository.

    python benchmarks/bench_lineage.py [--models 1000] [--datasets 300] [--versions 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import yaml
from _common import BIN, Result, env, report, time_command

CHAIN = 5  # models 5k .. 5k+4 form one base-model chain


def _dataset(d: int) -> str:
    return f"group{d % 7}/dataset_{d}"


def _write_tree(root: Path, models: int, datasets: int) -> None:
    """Builder folders, model cards and a dvc.lock recording every dataset's build."""
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text("")
    stages = {}
    for d in range(datasets):
        folder = f"datasets/{_dataset(d)}"
        (root / folder).mkdir(parents=True)
        builder = f"{folder}/dataset_{d}_dataset_builder.py"
        (root / builder).write_text("class Builder: ...\n")
        stages[f"build@{_dataset(d)}"] = {
            "cmd": f"registry datasets prepare {_dataset(d)}",
            "deps": [{"path": builder, "hash": "md5", "md5": f"{d:032x}", "size": 20}],
            "params": {"params.yaml": {f"datasets.{_dataset(d)}": {"seed": 0}}},
            "outs": [{"path": f"{folder}/prepared", "hash": "md5", "md5": f"{d:032x}.dir",
                      "size": 1, "nfiles": 1}],
        }
    for m in range(models):
        (root / "models" / f"model_{m}").mkdir(parents=True)
        (root / "models" / f"model_{m}" / "README.md").write_text("---\ntask: bench\n---\n")
    # As DVC writes it (block YAML, two-space indent).
    lock = yaml.safe_dump({"schema": "2.0", "stages": stages}, sort_keys=False)
    (root / "dvc.lock").write_text(lock)


def _model_message(m: int, v: int, datasets: int, commit: str) -> str:
    base = f"model_{m - 1}:1.{v}.0" if m % CHAIN else None
    record = {
        "schema": 2, "artifact": f"model_{m}", "kind": "model", "version": f"1.{v}.0",
        "commit": commit, "datasets": {_dataset(m % datasets): f"1.{v}.0"}, "base_model": base,
        "params": {"epochs": 3}, "training_run": f"run{m}x{v}", "training": None,
        "compute": {"backend": "local", "strategy": "auto"},
        "weights": {"path": f"models/model_{m}/model.keras", "md5": f"{m * 100 + v:032x}"},
    }
    return f"Release model_{m} 1.{v}.0\n\nlineage: {json.dumps(record, sort_keys=True)}\n"


def _dataset_message(d: int, v: int, commit: str) -> str:
    """A dataset release's message as ``registry datasets release`` writes it: its record."""
    folder = f"datasets/{_dataset(d)}"
    record = {
        "schema": 2, "artifact": _dataset(d), "kind": "dataset", "version": f"1.{v}.0",
        "commit": commit, "params": {"seed": 0},
        "builder": {f"{folder}/dataset_{d}_dataset_builder.py": f"{d:032x}"},
        "data": {"path": f"{folder}/prepared", "md5": f"{d:032x}.dir"}, "raw": "generated",
    }
    return f"Release {_dataset(d)} 1.{v}.0\n\nlineage: {json.dumps(record, sort_keys=True)}\n"


def make_repo(root: Path, models: int, datasets: int, versions: int) -> int:
    """The registry repo; returns how many tags it has."""
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env())
    _write_tree(root, models, datasets)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env())
    subprocess.run(["git", "commit", "-qm", "init"], cwd=root, check=True, env=env())
    # Version 1.v.0 of every artifact is released from commit v (GTO: one version a commit).
    commits = []
    for v in range(versions):
        if v:
            subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", f"v{v}"], cwd=root,
                           check=True, env=env())
        commits.append(subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip())
    # One fast-import stream writes every tag object at once (a git call per tag takes minutes).
    tags = [(f"{_dataset(d)}@v1.{v}.0", commits[v], _dataset_message(d, v, commits[v]))
            for d in range(datasets) for v in range(versions)]
    tags += [(f"model_{m}@v1.{v}.0", commits[v], _model_message(m, v, datasets, commits[v]))
             for m in range(models) for v in range(versions)]
    # Every model's latest version in staging and prod (GTO stage tags).
    tags += [(f"model_{m}#{stage}#{n}", commits[-1], f"Promote model_{m} to {stage}\n")
             for m in range(models) for n, stage in enumerate(("staging", "prod"), 1)]
    lines = []
    for name, commit, message in tags:
        lines += [f"tag {name}", f"from {commit}",
                  "tagger Bench <bench@lab.test> 1700000000 +0000",
                  f"data {len(message.encode())}", message]
    stream = "\n".join(lines) + "\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=stream.encode(), check=True)
    # A clone's tags are packed (packed-refs), not one file each.
    subprocess.run(["git", "pack-refs", "--all"], cwd=root, check=True)
    return len(tags)


def _time_gto(repo: Path, home: str, timeout: int) -> float | None:
    """One run of ``gto show`` (minutes at this size), or ``None`` past ``timeout`` seconds."""
    start = time.perf_counter()
    try:
        subprocess.run([str(BIN / "gto"), "show"], cwd=repo, env=env(HOME=home), check=True,
                       capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return time.perf_counter() - start


def time_lineage(repo: Path, home: str, versions: int) -> tuple[str, float, float]:
    """The chain end's name, and the best times of lineage up of it and down of a dataset."""
    last = versions - 1
    registry = str(BIN / "registry")
    chain_end = f"model_{CHAIN - 1}:1.{last}.0"  # 4 base models above it
    up = time_command([registry, "lineage", chain_end, "--json"], cwd=repo, HOME=home)
    down = time_command(
        [registry, "lineage", f"{_dataset(0)}:1.{last}.0", "--down", "--json"],
        cwd=repo, HOME=home,
    )
    return chain_end, up, down


def measure(quick: bool) -> list[Result]:
    """The suite's figures: lineage up and down in a fresh process on 15,000 tags (``--quick``:
    200 models, 60 datasets, 3,000 tags); no baseline (gto show takes minutes)."""
    models, datasets = (200, 60) if quick else (1000, 300)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "registry"
        count = make_repo(repo, models, datasets, 10)
        _, up, down = time_lineage(repo, tmp, 10)
    detail = f"{count:,} tags"
    return [Result("lineage.up", up, detail=detail), Result("lineage.down", down, detail=detail)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--datasets", type=int, default=300)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--gto-timeout", type=int, default=60, help="give up on gto after this")
    args = parser.parse_args()
    last = args.versions - 1
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "registry"
        count = make_repo(repo, args.models, args.datasets, args.versions)
        chain_end, up, down = time_lineage(repo, tmp, args.versions)
        gto = _time_gto(repo, tmp, args.gto_timeout)
    report(
        f"lineage on {count:,} tags ({args.models} models, {args.datasets} datasets, "
        f"{args.versions} versions each)",
        [
            (f"registry lineage {chain_end} (up, depth {CHAIN - 1} chain)", f"{up:.3f} s"),
            (f"registry lineage {_dataset(0)}:1.{last}.0 --down", f"{down:.3f} s"),
            ("gto show", f"{gto:.3f} s" if gto is not None else f"> {args.gto_timeout} s"),
            ("goal", "< 0.3 s each, fresh process"),
        ],
    )


if __name__ == "__main__":
    main()
