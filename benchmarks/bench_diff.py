"""``registry datasets diff`` of two versions of a 1M-example dataset vs reading both to the end.

Two builds of a small keyed dataset (``id``, ``value``, ``label``, ``text``; ``KEY_FEATURE =
"id"``) are written once with TFDS and the registry's deterministic serializer
(:func:`registry.build.builders.download_and_prepare`): version B changes 1% of A's examples,
drops 0.5% and adds 1%. Then, in this one process (TensorFlow imported once for both):

- ``diff by key``: :func:`registry.build.compare.compare` of the two prepared folders with the
  builder's key (what ``registry datasets diff`` runs on two cached versions);
- ``diff by content``: the same without a key;
- ``read both``: ``tfds.builder_from_directory(...).as_dataset(split)`` of each version,
  iterated to the end as NumPy (``tfds.as_numpy``).

Each is timed ``--repeat`` times, taking turns; the best times and the ratio diff / read are
printed (goal: at most 1.5). The builds are kept in ``--work`` (default: a folder in the
temporary directory) and reused by the next run.

    python benchmarks/bench_diff.py [--examples 1000000] [--repeat 3] [--work DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import Result, report

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LABELS = ("low", "mid", "high")


def _builder_class(version: str, examples: int) -> type:
    """A TFDS builder writing ``examples`` small examples; ``2.0.0`` changes, drops and adds."""
    import numpy as np
    import tensorflow_datasets as tfds

    with tfds.core.registered.skip_registration():
        return _define(tfds, np, version, examples)


def _define(tfds: Any, np: Any, version: str, examples: int) -> type:
    """The builder class (defined while TFDS's registration is skipped: two versions)."""

    class BenchDiff(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version(version)

        def _info(self) -> tfds.core.DatasetInfo:
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict({
                    "id": tfds.features.Text(),
                    "value": tfds.features.Scalar(dtype=np.float32),
                    "label": tfds.features.ClassLabel(names=LABELS),
                    "text": tfds.features.Text(),
                }),
            )

        def _split_generators(self, dl_manager: Any) -> dict[str, Any]:
            return {"train": self._generate_examples()}

        def _generate_examples(self) -> Any:
            changed = version != "1.0.0"
            total = examples + (examples // 100 if changed else 0)
            for i in range(total):
                if changed and i % 200 == 7:
                    continue  # 0.5% dropped
                value = float(i % 1000) / 10
                if changed and i % 100 == 3:
                    value += 1.0  # 1% changed
                yield f"e{i:08d}", {
                    "id": f"e{i:08d}",
                    "value": value,
                    "label": i % 3,
                    "text": f"row {i} of the benchmark",
                }

    return BenchDiff


def build(work: Path, version: str, examples: int) -> Path:
    """Build one version into ``work`` (kept: reused when its folder exists)."""
    from registry.build.builders import download_and_prepare

    out = work / f"{examples}" / version
    prepared = out / "bench_diff" / version
    if (prepared / "dataset_info.json").is_file():
        return prepared
    start = time.perf_counter()
    builder = _builder_class(version, examples)(data_dir=str(out))
    download_and_prepare(builder, None)
    print(f"built {version} ({examples:,} examples) in {time.perf_counter() - start:.1f} s",
          flush=True)
    return prepared


def time_diffs(work: Path, examples: int, repeat: int) -> tuple[dict[str, float], Any]:
    """Build both versions (or reuse them) and time the three ways, taking turns; return the
    best time of each and the diff by key's outcome."""
    import tensorflow_datasets as tfds

    from registry.build.compare import KeySpec, Side, compare

    a = build(work, "1.0.0", examples)
    b = build(work, "2.0.0", examples)
    key = KeySpec(feature="id")
    keyed = (Side("1.0.0", a, key=key, name="bench"), Side("2.0.0", b, key=key, name="bench"))
    plain = (Side("1.0.0", a, name="bench"), Side("2.0.0", b, name="bench"))

    def read_both() -> int:
        n = 0
        for path in (a, b):
            data = tfds.builder_from_directory(str(path)).as_dataset(split="train")
            for _ in tfds.as_numpy(data):
                n += 1
        return n

    times: dict[str, list[float]] = {"diff by key": [], "diff by content": [], "read both": []}
    outcome = None
    for _ in range(repeat):
        for label, run in (
            ("read both", read_both),
            ("diff by key", lambda: compare(*keyed)),
            ("diff by content", lambda: compare(*plain)),
        ):
            start = time.perf_counter()
            result = run()
            times[label].append(time.perf_counter() - start)
            if label == "diff by key":
                outcome = result
    assert outcome is not None and not isinstance(outcome, int)
    return {k: min(v) for k, v in times.items()}, outcome


def measure(quick: bool) -> list[Result]:
    """The suite's figure: the diff by key over reading both versions to the end, of 1M
    examples, once, with the builds ``main`` keeps (``--quick``: 10,000 examples, built into a
    new folder)."""
    if quick:
        with tempfile.TemporaryDirectory(prefix="bench-diff-") as tmp:
            examples = 10_000
            best, _ = time_diffs(Path(tmp), examples, 1)
    else:
        examples = 1_000_000
        best, _ = time_diffs(Path(tempfile.gettempdir()) / "bench-diff", examples, 1)
    return [Result.times("diff.by_key", best["diff by key"], best["read both"],
                         f"{examples:,} examples; baseline: reading both to the end")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench-diff")
    args = parser.parse_args()
    best, outcome = time_diffs(args.work, args.examples, args.repeat)
    split = outcome.splits[0]
    report(
        f"datasets diff of two versions of {args.examples:,} examples (best of {args.repeat})",
        [
            ("read both to the end", f"{best['read both']:.2f} s"),
            ("diff by key", f"{best['diff by key']:.2f} s  "
             f"(ratio {best['diff by key'] / best['read both']:.2f}, goal <= 1.5)"),
            ("diff by content", f"{best['diff by content']:.2f} s  "
             f"(ratio {best['diff by content'] / best['read both']:.2f})"),
            ("found", f"+{split.added:,} -{split.removed:,} ~{split.changed:,} "
             f"={split.unchanged:,}"),
        ],
    )


if __name__ == "__main__":
    main()
