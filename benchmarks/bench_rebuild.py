"""``registry datasets rebuild --verify`` of an old ad_clicks version vs a plain build of it.

Makes a throwaway registry (Git + DVC, a local remote) with ``products/product_a/ad_clicks`` at
``--records`` records, builds and releases 1.0.0, then commits a change (a later version's
params) so that 1.0.0 is old. Then, in one process, side by side and in turns: a plain build of
1.0.0's builder and params into a temporary folder (``registry.build.prepare.prepare_dataset``,
what ``registry datasets prepare`` runs), and ``rebuild_dataset("...:1.0.0")`` (a checkout of
the tag's dataset folder, raw inputs, the same build, hashing, comparison). Prints the best
time of each, the ratio (goal at most 1.2) and the machine's load while it ran.

    python benchmarks/bench_rebuild.py [--records 20000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import env, report

ROOT = Path(__file__).resolve().parent.parent
NAME = "products/product_a/ad_clicks"


def _run(cwd: Path, *args: str) -> None:
    subprocess.run(args, cwd=cwd, env=env(), check=True, capture_output=True)


def make_registry(base: Path, records: int) -> Path:
    """A registry with ad_clicks 1.0.0 released at ``records`` records, then HEAD moved on."""
    import yaml

    repo = base / "registry"
    for rel in subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.split("\n"):
        top = rel.split("/", 1)[0]
        if not rel or top in ("registry", "tests", "benchmarks", "docs", "src", "models", ".ci"):
            continue
        if top == "datasets" and not rel.startswith(f"datasets/{NAME}/"):
            continue
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, repo / rel)
    sys.path.insert(0, str(ROOT))
    from registry.build.dvcfiles import pipeline_datasets, remove_dataset
    from tests.conftest import drop_model_stages

    for other in pipeline_datasets(repo):
        if other != NAME:
            remove_dataset(repo, other)
    drop_model_stages(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["datasets"][NAME]["num_records"] = records
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (base / "storage").mkdir()
    _run(repo, "git", "init", "-q", "-b", "main")
    _run(repo, "dvc", "remote", "add", "--force", "--default", "storage", str(base / "storage"))
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-q", "-m", "registry")
    _run(repo, "registry", "datasets", "build", NAME)
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-q", "--allow-empty", "-m", "build")
    _run(repo, "registry", "datasets", "release", NAME)
    (repo / "NEXT.md").write_text("work after 1.0.0\n")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-q", "-m", "later work")
    return repo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    os.environ.update(env())
    base = Path(tempfile.mkdtemp(prefix="bench-rebuild-"))
    try:
        repo = make_registry(base, args.records)
        from registry.build.prepare import prepare_dataset
        from registry.reproduce import rebuild_dataset

        os.chdir(repo)
        plain, rebuild = float("inf"), float("inf")
        loads = []
        equal = None
        for _ in range(args.repeat):
            out = base / "plain"
            start = time.perf_counter()
            prepare_dataset(repo, NAME, output=out)
            plain = min(plain, time.perf_counter() - start)
            shutil.rmtree(out)
            start = time.perf_counter()
            result = rebuild_dataset(f"{NAME}:1.0.0", registry=repo)
            rebuild = min(rebuild, time.perf_counter() - start)
            equal = result.equal
            loads.append(os.getloadavg()[0])
        report(
            f"rebuild --verify of {NAME} 1.0.0 ({args.records:,} records)",
            [
                ("plain build (prepare_dataset)", f"{plain:.1f} s"),
                ("rebuild --verify", f"{rebuild:.1f} s  (equal: {equal})"),
                ("ratio", f"{rebuild / plain:.2f}x  (goal <= 1.2)"),
                ("machine load", f"1-min average {min(loads):.1f}-{max(loads):.1f} on "
                                 f"{os.cpu_count()} cores (others' work makes times noisy)"),
            ],
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
