"""Warm load of a cached release, read to the end, vs `tfds.builder_from_directory` on it.

Builds and releases one example dataset scaled past 100k examples in a throwaway clone of this
registry (local DVC remote), pulls it once, then times both ways of reading the train split to
the end, interleaved, best of 3:

- `registry.load_dataset("<name>:<version>", split="train")`: resolve the reference with one Git
  call, read dvc.lock at the tag, check the cache, open the cached TFDS folder.
- `tfds.builder_from_directory(<cached folder>).as_dataset(split="train")`.

    python benchmarks/bench_load.py [--dataset text_generation/ad_copy] [--size 150000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from _common import BIN, Result, env, report, time_call

if TYPE_CHECKING:
    import tensorflow as tf

ROOT = Path(__file__).resolve().parent.parent
SIZE_PARAM = {
    "text_generation/ad_copy": "num_examples",
    "products/product_a/ad_clicks": "num_records",
}


def make_release(work: Path, name: str, size: int) -> str:
    """Clone this registry, scale ``name`` to ``size`` raw records, build and release it."""
    import yaml

    clone = work / "registry"
    run_env = env(HOME=str(work / "home"))

    def run(*args: str) -> None:
        subprocess.run(args, cwd=clone, env=run_env, check=True, capture_output=True)

    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, env=run_env)
    run("git", "remote", "remove", "origin")
    (work / "storage").mkdir()  # a release never creates its remote's folder
    run(str(BIN / "dvc"), "remote", "add", "--force", "--default", "bench", str(work / "storage"))
    sys.path.insert(0, str(ROOT))
    from registry.build.dvcfiles import pipeline_datasets, remove_dataset
    from registry.config import read_params

    for other in pipeline_datasets(clone):
        if other != name:
            remove_dataset(clone, other)
    params = read_params(clone)
    params["datasets"][name][SIZE_PARAM[name]] = size
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run("git", "commit", "-qam", f"Scale {name} to {size}")
    start = time.perf_counter()
    run(str(BIN / "registry"), "datasets", "build", name)
    print(f"built {name} with {size:,} raw records in {time.perf_counter() - start:.0f} s")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "Build")
    run(str(BIN / "registry"), "datasets", "release", name, "--no-push")
    return str(clone)


def time_loads(dataset: str, size: int) -> tuple[str, int, float, float]:
    """Release ``dataset`` at ``size`` in a throwaway clone, pull it, and time both reads
    (interleaved, best of 3); return the reference, the train examples and both times.

    It sets ``HOME`` and ``REGISTRY_CACHE_DIR`` of this process to the throwaway folder.
    """
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ.update(env(HOME=str(work / "home"), REGISTRY_CACHE_DIR=str(work / "cache")))
        clone = make_release(work, dataset, size)
        import tensorflow_datasets as tfds

        import registry

        info = registry.dataset_info(dataset, registry=clone)
        ref = f"{dataset}:{info.version}"
        path = registry.pull_dataset(ref, registry=clone).path
        assert info.build is not None, f"{ref} has no build_info.json"
        examples = info.build["splits"]["train"]["num_examples"]
        column = "headline" if "ad_copy" in dataset else "label"

        def read_all(ds: tf.data.Dataset) -> int:
            return sum(int(batch[column].shape[0]) for batch in ds.batch(1024))

        def ours() -> None:
            assert read_all(registry.load_dataset(ref, split="train", registry=clone)) == examples

        def plain() -> None:
            ds = tfds.builder_from_directory(str(path)).as_dataset(split="train")
            assert read_all(ds) == examples

        ours()  # warm both (TensorFlow's first graph builds)
        plain()
        t_ours, t_plain = float("inf"), float("inf")
        for _ in range(3):
            t_ours = min(t_ours, time_call(ours, repeat=1))
            t_plain = min(t_plain, time_call(plain, repeat=1))
    return ref, examples, t_ours, t_plain


def measure(quick: bool) -> list[Result]:
    """The suite's figure: the warm load of ``text_generation/ad_copy`` at 150,000 raw records
    (``--quick``: 20,000) over ``tfds.builder_from_directory`` on the same folder."""
    size = 20_000 if quick else 150_000
    ref, examples, ours, plain = time_loads("text_generation/ad_copy", size)
    return [Result.times("load.warm", ours, plain, f"{ref}, {examples:,} examples")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="text_generation/ad_copy", choices=sorted(SIZE_PARAM))
    parser.add_argument("--size", type=int, default=150_000, help="raw records to generate")
    args = parser.parse_args()
    ref, examples, t_ours, t_plain = time_loads(args.dataset, args.size)
    report(
        f"warm load of {ref}, train split read to the end ({examples:,} examples)",
        [
            ("registry.load_dataset", f"{t_ours:.3f} s"),
            ("tfds.builder_from_directory", f"{t_plain:.3f} s"),
            ("ratio", f"{t_ours / t_plain:.2f}x (goal: <= 1.2x)"),
        ],
    )


if __name__ == "__main__":
    main()
