"""Random access against sequential reading, and ArrayRecord against TFRecord for sequential reads.

Builds one synthetic release twice with `registry.build.prepare.prepare_dataset` (a generator
builder written in a scratch registry: `--examples` examples of an id and 32 float32s, ~200
bytes serialized), once with `file_format: array_record` and once as TFRecord (the default),
then in the same process:

- sequential: every example of each build through `load_prepared(output="numpy")` (tf.data, as
  `load_dataset` hands it out; an ArrayRecord build through the registry's tf.data reader,
  `registry.storage.array_records`), one by one and in batches of 1,000 (`batch_size`), and
  the ArrayRecord build through its data source (`output="data_source"`), by an index loop
  (`source[i]`, over the first `--loop-examples`) and in batches of 1,000 indices
  (`__getitems__`, what a Grain or PyTorch batch sampler asks for);
- random: `--picks` examples at random indices of the ArrayRecord build (one `source[i]` each),
  against reading the whole release sequentially to reach them (what a TFRecord build needs),
  and `--plain-picks` of them through TFDS's own data source (one index as a list of indices,
  which ArrayRecord reads in time that grows with the file; the registry reads a range).

Prints each time (best of `--repeat`) and the ratios side by side. The builds are checked to
hold the same examples.

    python benchmarks/bench_random_access.py [--examples 1000000] [--picks 10000] [--repeat 3]
        [--loop-examples 100000] [--plain-picks 1000]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import report, time_call

ROOT = Path(__file__).resolve().parent.parent
NAME = "bench/random_access"
BEAM = {"runner": "DirectRunner", "direct_num_workers": 1, "direct_running_mode": "in_memory"}

_BUILDER = '''
from typing import Any, ClassVar

import numpy as np
import tensorflow_datasets as tfds


class Builder(tfds.core.GeneratorBasedBuilder):
    """Synthetic examples for the random-access benchmark."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Synthetic."}
    DEFAULT_PARAMS: ClassVar[dict[str, Any]] = {"num_examples": 1000}

    def __init__(self, *, params: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.params = {**self.DEFAULT_PARAMS, **(params or {})}
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {"id": np.int64, "vector": tfds.features.Tensor(shape=(32,), dtype=np.float32)}
            ),
        )

    def _split_generators(self, dl_manager: Any) -> Any:
        return {"train": self._generate_examples(int(self.params["num_examples"]))}

    def _generate_examples(self, n: int) -> Any:
        vector = np.arange(32, dtype=np.float32)
        for i in range(n):
            yield i, {"id": i, "vector": vector + i}
'''


def scratch_registry(base: Path) -> Path:
    """A registry folder holding only the synthetic dataset's builder."""
    folder = base / "datasets" / NAME
    folder.mkdir(parents=True)
    (folder / "random_access_dataset_builder.py").write_text(_BUILDER)
    return base


def build(root: Path, examples: int, file_format: str | None) -> tuple[Path, float]:
    """Build the synthetic dataset in ``file_format`` (``None``: TFRecord); its folder and the
    build's wall time."""
    from registry.build.prepare import prepare_dataset

    params: dict[str, object] = {"num_examples": examples}
    if file_format:
        params["file_format"] = file_format
    start = time.perf_counter()
    print(f"building {examples:,} examples as {file_format or 'tfrecord'}", file=sys.stderr)
    out = prepare_dataset(
        root,
        NAME,
        params=params,
        beam=BEAM,
        output=root / f"prepared-{file_format or 'tfrecord'}",
    )
    seconds = time.perf_counter() - start
    print(f"built in {seconds:.1f} s", file=sys.stderr, flush=True)
    return out, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--picks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--plain-picks", type=int, default=1_000, help="random picks through TFDS's own source"
    )
    parser.add_argument(
        "--loop-examples", type=int, default=100_000, help="examples the index loop reads"
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Statistics are the build's business, not the reads': keep the builds short.
    os.environ["REGISTRY_BUILD_STATISTICS"] = "0"
    sys.path.insert(0, str(ROOT))
    from registry.datasets import load_prepared

    with tempfile.TemporaryDirectory(prefix="bench-random-access-") as tmp:
        root = scratch_registry(Path(tmp))
        arec_dir, arec_build = build(root, args.examples, "array_record")
        tfrec_dir, tfrec_build = build(root, args.examples, None)
        source = load_prepared(arec_dir, "train", output="data_source")
        n = len(source)
        assert n == args.examples, (n, args.examples)

        def tfrecord_sequential() -> int:
            return sum(1 for _ in load_prepared(tfrec_dir, "train", output="numpy"))

        def tfrecord_batches() -> int:
            batches = load_prepared(tfrec_dir, "train", output="numpy", batch_size=1000)
            return sum(len(b["id"]) for b in batches)

        def arec_tf_sequential() -> int:
            return sum(1 for _ in load_prepared(arec_dir, "train", output="numpy"))

        def arec_tf_batches() -> int:
            batches = load_prepared(arec_dir, "train", output="numpy", batch_size=1000)
            return sum(len(b["id"]) for b in batches)

        looped = min(n, args.loop_examples)

        def arec_index_loop() -> int:
            return sum(1 for i in range(looped) if source[i] is not None)

        def arec_batches() -> int:
            return sum(
                len(source.__getitems__(range(i, min(i + 1000, n)))) for i in range(0, n, 1000)
            )

        picks = random.Random(0).sample(range(n), min(args.picks, n))

        def arec_random() -> int:
            return sum(1 for i in picks if source[i] is not None)

        import tensorflow_datasets as tfds

        # TFDS's own source, without the registry's single reads
        # (see registry.storage.array_records.with_single_reads).
        plain = tfds.builder_from_directory(str(arec_dir)).as_data_source(split="train")
        plain_picks = picks[: args.plain_picks]

        def plain_random() -> int:
            return sum(1 for i in plain_picks if plain[i] is not None)

        # Same examples in both builds, in the same (TFDS's shuffled) order.
        head = load_prepared(tfrec_dir, "train[:100]", output="numpy")
        assert [int(e["id"]) for e in head] == [int(source[i]["id"]) for i in range(100)]
        arec_head = load_prepared(arec_dir, "train[:100]", output="numpy")
        assert [int(e["id"]) for e in arec_head] == [int(e["id"]) for e in head]

        def timed(label: str, fn: Callable[[], int]) -> float:
            seconds = time_call(fn, args.repeat)
            print(f"{label}: {seconds:.2f} s", file=sys.stderr, flush=True)
            return seconds

        tf_seq = timed("TFRecord sequential", tfrecord_sequential)
        tf_batch = timed("TFRecord batches", tfrecord_batches)
        ar_seq = timed("ArrayRecord sequential (tf.data)", arec_tf_sequential)
        ar_tf_batch = timed("ArrayRecord batches (tf.data)", arec_tf_batches)
        ar_loop = timed("ArrayRecord index loop", arec_index_loop)
        ar_batch = timed("ArrayRecord batches", arec_batches)
        ar_random = timed("ArrayRecord random", arec_random)
        plain_random_s = timed("TFDS's own data source, random", plain_random)

    sizes = f"{n:,} examples, {len(picks):,} random picks"
    report(
        f"Sequential reads, ArrayRecord vs TFRecord ({sizes})",
        [
            ("build, TFRecord", f"{tfrec_build:.1f} s"),
            ("build, ArrayRecord", f"{arec_build:.1f} s  ({arec_build / tfrec_build:.2f}x)"),
            ("TFRecord, tf.data as NumPy", f"{tf_seq:.2f} s  ({n / tf_seq:,.0f} examples/s)"),
            (
                "TFRecord, tf.data batches of 1,000",
                f"{tf_batch:.2f} s  ({n / tf_batch:,.0f} examples/s)",
            ),
            (
                "ArrayRecord, tf.data as NumPy",
                f"{ar_seq:.2f} s  ({n / ar_seq:,.0f} examples/s; {ar_seq / tf_seq:.2f}x "
                "TFRecord's)",
            ),
            (
                "ArrayRecord, tf.data batches of 1,000",
                f"{ar_tf_batch:.2f} s  ({n / ar_tf_batch:,.0f} examples/s; "
                f"{ar_tf_batch / tf_batch:.2f}x TFRecord's)",
            ),
            (
                f"ArrayRecord, index loop (first {looped:,})",
                f"{ar_loop:.2f} s  ({looped / ar_loop:,.0f} examples/s; time a whole read would "
                f"take: {ar_loop * n / looped / tf_seq:.2f}x TFRecord's)",
            ),
            (
                "ArrayRecord, batches of 1,000",
                f"{ar_batch:.2f} s  ({n / ar_batch:,.0f} examples/s; "
                f"{ar_batch / tf_batch:.2f}x TFRecord's batches)",
            ),
        ],
    )
    report(
        f"Random access vs sequential reading ({sizes})",
        [
            (
                f"{len(picks):,} random examples, ArrayRecord",
                f"{ar_random:.2f} s  ({len(picks) / ar_random:,.0f} examples/s)",
            ),
            (
                f"{len(plain_picks):,} of them through TFDS's own data source",
                f"{plain_random_s:.2f} s  ({len(plain_picks) / plain_random_s:,.0f} examples/s; "
                f"the registry's single reads: "
                f"{(plain_random_s / len(plain_picks)) / (ar_random / len(picks)):.1f}x faster)",
            ),
            ("the whole release read sequentially, TFRecord", f"{tf_seq:.2f} s"),
            ("random picks / sequential read, time", f"{ar_random / tf_seq:.3f}"),
            (
                "per example, random ArrayRecord / sequential TFRecord",
                f"{(ar_random / len(picks)) / (tf_seq / n):.2f}",
            ),
        ],
    )


if __name__ == "__main__":
    main()
