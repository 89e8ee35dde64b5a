"""`registry catalog build` over 1,000 models x 5 versions and 300 datasets x 10 versions.

Makes a registry repo (cards, builders, READMEs, build_info.json with statistics; every tag made
with one `git fast-import`: 1,000 x (5 + 1 stage) + 300 x 10 = 9,000 tags by default), then
times a cold build into an empty folder and a build with nothing changed (best of 3), each as
the `registry` command (wall and CPU seconds). No data bytes exist: nothing is fetched.

    python benchmarks/bench_catalog.py [--models 1000] [--versions 5] [--datasets 300]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from _common import BIN, Result, env, release_commits, report
from bench_search import card


def dataset_files(i: int) -> dict[str, str]:
    name = f"group_{i % 10}/data_{i}"
    classes = {str(c): 100 + (i * c) % 37 for c in range(5)}
    info = {
        "name": name, "version": "1.9.0",
        "features": {"x": {"type": "Tensor", "dtype": "float32", "shape": []},
                     "label": {"type": "ClassLabel", "dtype": "int64", "shape": [],
                               "names": list(classes), "num_classes": len(classes)}},
        "splits": {"train": {"num_examples": 1000 + i, "num_bytes": 50_000 + i, "num_shards": 1}},
        "statistics": {"schema": 1, "splits": {"train": {"num_examples": 1000 + i, "features": {
            "label": {"kind": "categorical", "count": 1000 + i, "missing": 0,
                      "classes": classes},
            "x": {"kind": "numeric", "count": 1000 + i, "missing": 0, "mean": 0.5,
                  "min": 0.0, "max": 1.0}}}}},
    }
    folder = f"datasets/{name}"
    leaf = name.rsplit("/", 1)[1]
    return {
        f"{folder}/{leaf}_dataset_builder.py": (
            "import tensorflow_datasets as tfds\n\n\n"
            "class Builder(tfds.core.GeneratorBasedBuilder):\n"
            "    VERSION = tfds.core.Version('1.9.0')\n"
            "    RELEASE_NOTES = {'1.9.0': 'More rows.'}\n"
        ),
        f"{folder}/README.md": (f"# {name}\n\nRows of product {i % 7} for task {i % 4}.\n\n"
                                f"- **Owner**: team-{i % 12}.\n"),
        f"{folder}/TAGS.txt": "content.data-type.tabular # Tabular.\n",
        f"{folder}/build_info.json": json.dumps(info, indent=1),
    }


def make_repo(root: Path, models: int, versions: int, datasets: int) -> int:
    run = {"cwd": root, "check": True, "env": env(), "capture_output": True}
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env())
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text("")
    for i in range(models):
        folder = root / "models" / f"model-{i}"
        folder.mkdir(parents=True)
        (folder / "README.md").write_text(card(i))
    for i in range(datasets):
        for rel, text in dataset_files(i).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
    subprocess.run(["git", "add", "-A"], **run)  # type: ignore[call-overload]
    subprocess.run(["git", "commit", "-qm", "registry"], **run)  # type: ignore[call-overload]
    lines = release_commits(root, max(versions, 10 if datasets else 0))
    names = []
    for i in range(models):
        names += [(f"model-{i}@v1.{v}.0", v + 1) for v in range(versions)]
        names.append((f"model-{i}#prod#1", versions))
    for i in range(datasets):
        names += [(f"group_{i % 10}/data_{i}@v1.{v}.0", v + 1) for v in range(10)]
    for name, mark in names:
        message = f"Release {name}\n\nNotes of {name}.\n"
        lines += [f"tag {name}", f"from :{mark}", "tagger Bench <bench@lab.test> 1700000000 +0000",
                  f"data {len(message.encode())}", message]
    stream = "\n".join(lines) + "\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=stream.encode(), check=True)
    return len(names)


def timed(args: list[str], cwd: Path, home: str) -> tuple[float, float]:
    """Wall and CPU seconds (the command's user + system; its chart-drawing pool's processes
    are not counted) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env(HOME=home), check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


# One process draws a dataset's class chart and a model's metrics chart 100 times each; CPU
# seconds (the process's own: a chart's cost whatever else the machine runs) per chart.
_CHART_CPU = """
import json, time
from registry.catalog.drawing import bar_chart
charts = [([str(c) for c in range(5)], [float(100 + i * c % 37) for c in range(5)],
           "label: examples per class") for i in range(100)]
charts += [([f"1.{v}.0 {k}" for v in range(5) for k in ("accuracy", "loss")],
            [0.8 + i / 1000 + v / 100 if k == "accuracy" else 0.3 for v in range(5)
             for k in ("accuracy", "loss")], "metrics per version") for i in range(100)]
bar_chart(*charts[0])
start = time.process_time()
for chart in charts:
    bar_chart(*chart)
print(json.dumps((time.process_time() - start) / len(charts)))
"""


def chart_cpu_ms() -> float:
    """Milliseconds of CPU one catalog chart takes (the mean of 200, after a first one)."""
    done = subprocess.run([str(BIN / "python"), "-c", _CHART_CPU], env=env(), check=True,
                          capture_output=True, text=True)
    return float(json.loads(done.stdout)) * 1000


def build_times(
    models: int, versions: int, datasets: int
) -> tuple[int, tuple[float, float], tuple[float, float], Path, tempfile.TemporaryDirectory[str]]:
    """A benchmark registry's tag count, its cold and best unchanged build (wall, CPU), and the
    site's folder (in the returned temporary folder, removed by its cleanup)."""
    tmp = tempfile.TemporaryDirectory()
    repo = Path(tmp.name) / "registry"
    tags = make_repo(repo, models, versions, datasets)
    site = Path(tmp.name) / "site"
    command = [str(BIN / "registry"), "catalog", "build", str(site)]
    cold = timed(command, repo, tmp.name)
    warm = min((timed(command, repo, tmp.name) for _ in range(3)), key=lambda t: t[0])
    return tags, cold, warm, site, tmp


def measure(quick: bool) -> list[Result]:
    """The suite's figures: a cold and an unchanged ``registry catalog build`` of 1,000 models x
    5 versions and 300 datasets x 10 (``--quick``: 100 x 5 and 30 x 10)."""
    scale = 10 if quick else 1
    tags, cold, warm, _, tmp = build_times(1000 // scale, 5, 300 // scale)
    tmp.cleanup()
    size = f"{tags:,} tags" + (" (quick: a tenth of the aim's size)" if quick else "")
    return [Result("catalog.cold", cold[0], detail=size),
            Result("catalog.unchanged", warm[0], detail=size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--datasets", type=int, default=300)
    args = parser.parse_args()
    tags, cold, warm, site, tmp = build_times(args.models, args.versions, args.datasets)
    with tmp:
        files = sum(1 for p in site.rglob("*") if p.is_file())
        browser = in_chromium(site / "index.html")
    report(
        f"catalog build: {args.models:,} models x {args.versions} versions, "
        f"{args.datasets:,} datasets x 10 versions, {tags:,} tags, {files:,} files",
        [
            ("cold (empty folder)", f"{cold[0]:.2f} s wall, {cold[1]:.2f} s CPU (goal: < 15 s)"),
            ("nothing changed", f"{warm[0]:.2f} s wall, {warm[1]:.2f} s CPU (goal: < 2 s)"),
            ("one chart (CPU; a cold build draws one per dataset feature and model)",
             f"{chart_cpu_ms():.1f} ms"),
            *browser,
        ],
    )


def in_chromium(home: Path) -> list[tuple[str, str]]:
    """The home page in Debian's chromium from file://: until the search works (the load event,
    after the deferred scripts), and one keystroke's filtering (median of 10)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return [("chromium", "not measured: playwright is not installed")]
    if not Path("/usr/bin/chromium").is_file():
        return [("chromium", "not measured: /usr/bin/chromium is not installed")]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page()
        page.goto(home.as_uri())
        ready = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
        keystrokes = []
        for word in ["m", "mo", "model-1", "bert", "t", "te", "team-3", "x", "", "1"]:
            keystrokes.append(page.evaluate("""word => {
                const box = document.getElementById('q');
                const start = performance.now();
                box.value = word;
                box.dispatchEvent(new Event('input'));
                document.body.offsetHeight;  // the layout the filter changed
                return performance.now() - start;
            }""", word))
        browser.close()
    keystrokes.sort()
    return [
        ("home page ready in chromium (file://)", f"{ready / 1000:.2f} s (goal: < 1 s)"),
        ("one search keystroke (median of 10)",
         f"{keystrokes[len(keystrokes) // 2]:.1f} ms (goal: < 50 ms)"),
    ]


if __name__ == "__main__":
    main()
