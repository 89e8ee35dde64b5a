"""What build statistics cost: the Beam build of products/product_a/ad_clicks with and without.

Copies this registry's ad_clicks builder into a scratch registry and runs
`registry.build.prepare.prepare_dataset` on it with `num_records` raw records, 2 worker processes
(`multi_processing`, the default of params.yaml), once with statistics
(`REGISTRY_BUILD_STATISTICS=1`, the default) and once without (`=0`), each in a fresh process so
both pay the same start-up, alternating when repeated; prints the best time of each and their
ratio (goal: <= 1.10). It also checks that both builds wrote the same shards, and that only the
first recorded statistics in build_info.json.

    python benchmarks/bench_stats.py [--records 1000000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import env, report, shard_digest

ROOT = Path(__file__).resolve().parent.parent
NAME = "products/product_a/ad_clicks"

_CHILD = """
import json, sys, time
from pathlib import Path
from registry.build.prepare import prepare_dataset
records, root = int(sys.argv[1]), Path(sys.argv[2])
start = time.perf_counter()
prepare_dataset(
    root, "products/product_a/ad_clicks",
    params={"num_records": records},
    beam={"runner": "DirectRunner", "direct_num_workers": 2,
          "direct_running_mode": "multi_processing"},
)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def build(records: int, root: Path, statistics: bool) -> float:
    """Build in a fresh process and return the wall time of the build (seconds)."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(records), str(root)],
        env=env(REGISTRY_BUILD_STATISTICS="1" if statistics else "0"),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"the build failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def scratch_registry(base: Path) -> Path:
    """A registry folder holding a copy of the ad_clicks dataset folder (no built data)."""
    source = ROOT / "datasets" / NAME
    shutil.copytree(
        source, base / "datasets" / NAME, ignore=shutil.ignore_patterns("prepared", "*.json")
    )
    return base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    on, off = float("inf"), float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        with_stats = scratch_registry(Path(tmp) / "on")
        without = scratch_registry(Path(tmp) / "off")
        for _ in range(args.repeat):
            off = min(off, build(args.records, without, statistics=False))
            on = min(on, build(args.records, with_stats, statistics=True))
        prepared = Path("datasets") / NAME / "prepared"
        same = shard_digest(with_stats / prepared) == shard_digest(without / prepared)
        info_on = json.loads((with_stats / "datasets" / NAME / "build_info.json").read_text())
        info_off = json.loads((without / "datasets" / NAME / "build_info.json").read_text())
    examples = sum(s["num_examples"] for s in info_on["splits"].values())
    recorded = "statistics" in info_on and "statistics" not in info_off
    features = len(info_on.get("statistics", {}).get("splits", {}).get("train", {}).get(
        "features", {}
    ))
    report(
        f"Build statistics of {NAME}, {args.records:,} raw records -> {examples:,} examples, "
        "2 workers",
        [
            ("without statistics", f"{off:.1f} s"),
            ("with statistics", f"{on:.1f} s ({features} features, 2 splits)"),
            ("ratio", f"{on / off:.3f} (goal: <= 1.10)"),
            ("same shards", "yes" if same else "NO"),
            ("recorded only when on", "yes" if recorded else "NO"),
        ],
    )


if __name__ == "__main__":
    main()
