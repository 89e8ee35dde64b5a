"""Beam build of products/product_a/ad_clicks scaled up: 2 worker processes vs 1.

Runs `registry.build.prepare.prepare_dataset` on this registry's ad_clicks builder with
`num_records` raw records (duplicates and malformed rows included), once with
`direct_num_workers=1` and once with 2 (`direct_running_mode=multi_processing`, the default of
params.yaml), each in a fresh process so both pay the same start-up, and prints the raw records
per second of each and their ratio. It also checks that both builds wrote the same bytes, and
prints the CPU time of the runner process (Beam's FnApiRunner: it relays the data to and from
the workers) and of the workers, which a shared machine's load does not change: where the
second worker's time goes (docs/performance.md, issue 17).

    python benchmarks/bench_beam.py [--records 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from _common import Result, env, report, shard_digest

ROOT = Path(__file__).resolve().parent.parent
NAME = "products/product_a/ad_clicks"

_CHILD = """
import json, resource, sys, time
from pathlib import Path
from registry.build.prepare import prepare_dataset
records, workers, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
start, cpu = time.perf_counter(), time.process_time()
prepare_dataset(
    Path(sys.argv[4]), "products/product_a/ad_clicks",
    params={"num_records": records},
    beam={"runner": "DirectRunner", "direct_num_workers": workers,
          "direct_running_mode": "multi_processing"},
    output=out,
)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
workers_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": seconds, "runner_cpu": cpu,
                  "workers_cpu": workers_cpu.ru_utime + workers_cpu.ru_stime}))
"""


@dataclass(frozen=True)
class Build:
    """One build's wall time, and the CPU time of its runner process and of its workers."""

    seconds: float
    runner_cpu: float
    workers_cpu: float


def build(records: int, workers: int, out: Path) -> Build:
    """Build in a fresh process; its wall and CPU times (seconds)."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(records), str(workers), str(out), str(ROOT)],
        env=env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return Build(**json.loads(done.stdout.strip().splitlines()[-1]))


@dataclass(frozen=True)
class Figures:
    """One side-by-side run: the wall time of each build and what they wrote."""

    records: int
    one: Build
    two: Build
    examples: int
    same: bool


def build_both(records: int) -> Figures:
    """Build with 1 worker, then 2, in fresh processes; compare their shards."""
    with tempfile.TemporaryDirectory() as tmp:
        one = build(records, 1, Path(tmp) / "one")
        two = build(records, 2, Path(tmp) / "two")
        same = shard_digest(Path(tmp) / "one") == shard_digest(Path(tmp) / "two")
        examples = sum(
            s["shardLengths"] and sum(int(n) for n in s["shardLengths"])
            for s in json.loads((Path(tmp) / "two" / "dataset_info.json").read_text())["splits"]
        )
    return Figures(records, one, two, examples, same)


QUICK_RECORDS = 20_000


def measure(quick: bool, records: int = 1_000_000) -> list[Result]:
    """The suite's figure: the speed-up of 2 workers over 1 (``--quick``: 20,000 records,
    where each worker's start-up weighs more than at 1M).

    Raises:
        RuntimeError: If the two builds wrote different bytes.
    """
    figures = build_both(QUICK_RECORDS if quick else records)
    if not figures.same:
        raise RuntimeError("the 1-worker and 2-worker builds wrote different shards")
    return [Result.speedup("beam.speedup", figures.two.seconds, figures.one.seconds,
                           f"{figures.records:,} records, 2 workers vs 1")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    f = build_both(args.records)
    shared = (f.two.runner_cpu + f.two.workers_cpu) / 2  # the 2-worker build's least wall time
    report(
        f"Beam build of {NAME}, {args.records:,} raw records -> {f.examples:,} examples",
        [
            ("1 worker", f"{f.one.seconds:.1f} s, {args.records / f.one.seconds:,.0f} records/s"),
            ("2 workers", f"{f.two.seconds:.1f} s, {args.records / f.two.seconds:,.0f} records/s"),
            ("speed-up", f"{f.one.seconds / f.two.seconds:.2f}x (aim: >= 1.85x)"),
            ("CPU, 1 worker", f"runner {f.one.runner_cpu:.1f} s, worker {f.one.workers_cpu:.1f} s"),
            ("CPU, 2 workers", f"runner {f.two.runner_cpu:.1f} s, "
             f"workers {f.two.workers_cpu:.1f} s (both)"),
            ("2-core ceiling", f"{f.one.workers_cpu / shared:.2f}x-"
             f"{(f.one.workers_cpu + f.one.runner_cpu) / shared:.2f}x (the 1-worker build's "
             "CPU, with its runner's overlapped or not, over the 2-worker build's on 2 cores)"),
            ("same bytes", "yes" if f.same else "NO"),
        ],
    )


if __name__ == "__main__":
    main()
