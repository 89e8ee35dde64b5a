"""`registry models search` over a zoo of 1,000 model cards and 5,000+ tags, beside its anchor.

Makes a registry repo with N models (a card each, with varied tasks, architectures, datasets
and metrics), V releases per model and one stage tag per model (default 1,000 x 4 + 1,000 =
5,000 tags; packed by `git gc`, as in a clone), then times, best of ``--repeat``: a filtered
search, a free-text search, the anchor (`python -c pass` + `git for-each-ref` of every tag +
reading every card's blob at its latest release once, in one `git cat-file --batch`), and
`gto show` (skip with --no-gto).

    python benchmarks/bench_search.py [--models 1000] [--versions 4] [--no-gto]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import BIN, Result, against, env, load_note, release_commits, report, time_command

TASKS = ["image-classification", "text-classification", "ctr-prediction", "text-generation"]
ARCHS = ["resnet18", "bert-base", "small-cnn", "wide-and-deep", "t5-small"]


def card(i: int, trained_on: str = "image_classification/digits") -> str:
    """Model ``i``'s card: task, architecture, owner and language cycle, trained on a version
    of dataset ``trained_on``."""
    task, arch = TASKS[i % len(TASKS)], ARCHS[i % len(ARCHS)]
    return (
        "---\n"
        f"task: {task}\narchitecture: {arch}\nframework: keras\nbase_model: null\n"
        f"datasets:\n- {trained_on}:1.{i % 3}.0\n"
        f"metrics:\n  accuracy: {0.5 + (i % 50) / 100}\n"
        f"owner: team-{i % 12}\nlicense: apache-2.0\nweights: model.keras\n"
        f"language: {'ja' if i % 7 == 0 else 'en'}\n"
        "---\n\n"
        f"# model-{i}\n\nA {arch} for {task}, trained on product data.\n"
    )


def make_repo(root: Path, models: int, versions: int) -> int:
    run = {"cwd": root, "check": True, "env": env(), "capture_output": True}
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env())
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text("")
    (root / "datasets").mkdir()
    for i in range(models):
        folder = root / "models" / f"model-{i}"
        folder.mkdir(parents=True)
        (folder / "README.md").write_text(card(i))
    subprocess.run(["git", "add", "-A"], **run)  # type: ignore[call-overload]
    subprocess.run(["git", "commit", "-qm", "zoo"], **run)  # type: ignore[call-overload]
    # One commit per version (GTO allows one version of an artifact per commit), then every
    # model's tags, all in one fast-import stream.
    lines = release_commits(root, versions)
    for i in range(models):
        names = [(f"model-{i}@v1.{v}.0", v + 1) for v in range(versions)]
        names.append((f"model-{i}#prod#1", versions))
        for name, mark in names:
            message = f"{name}\n"
            lines += [f"tag {name}", f"from :{mark}",
                      "tagger Bench <bench@lab.test> 1700000000 +0000",
                      f"data {len(message.encode())}", message]
    stream = "\n".join(lines) + "\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=stream.encode(), check=True)
    return models * (versions + 1)


def measure(quick: bool) -> list[Result]:
    """The suite's figure: the 4-filter search over 1,000 cards and 5,000 tags (``--quick``:
    200 cards, 1,000 tags), beside its anchor, one `git for-each-ref` of every tag."""
    models = 200 if quick else 1000
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "registry"
        tags = make_repo(repo, models, 4)
        filtered = time_command(
            [str(BIN / "registry"), "models", "search", "--task", "text-classification",
             "--language", "ja", "--dataset", "image_classification/digits:1.*",
             "--sort", "accuracy"],
            cwd=repo, HOME=tmp,
        )
        anchor = time_command(["git", "for-each-ref", "refs/tags"], cwd=repo, HOME=tmp)
    return [Result.times("search.filters", filtered, anchor,
                         f"{models:,} cards, {tags:,} tags; baseline: git for-each-ref")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-gto", action="store_true", help="skip `gto show`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "registry"
        tags = make_repo(repo, args.models, args.versions)
        # Packed, as a clone is (the card commits' loose objects cost each reader a file).
        subprocess.run(["git", "gc", "-q"], cwd=repo, check=True, env=env())
        registry, n = str(BIN / "registry"), args.repeat
        filtered = time_command(
            [registry, "models", "search", "--task", "text-classification", "--language", "ja",
             "--dataset", "image_classification/digits:1.*", "--sort", "accuracy"],
            cwd=repo, repeat=n, HOME=tmp,
        )
        text = time_command([registry, "models", "search", "bert", "product"], cwd=repo,
                            repeat=n, HOME=tmp)
        latest = f"model-0@v1.{args.versions - 1}.0^{{commit}}"
        cards = "".join(f"{latest}:models/model-{i}/README.md\n" for i in range(args.models))
        python = time_command([sys.executable, "-c", "pass"], repeat=n)
        listing = time_command(["git", "for-each-ref", "refs/tags"], cwd=repo, repeat=n)
        blobs = time_command(["git", "cat-file", "--batch"], cwd=repo, repeat=n,
                             stdin=cards.encode())
        gto = None if args.no_gto else time_command([str(BIN / "gto"), "show"], cwd=repo,
                                                    HOME=tmp)
    anchor = python + listing + blobs
    rows = [
        ("anchor: python -c pass + for-each-ref + the cards' blobs",
         f"{anchor:.3f} s ({python:.3f} + {listing:.3f} + {blobs:.3f})"),
        ("registry models search (4 filters, sorted)", against(filtered, anchor, "<= 0.2 s")),
        ("registry models search bert product", against(text, anchor, "<= 0.2 s")),
    ]
    if gto is not None:
        rows += [("gto show (lists, no search)", f"{gto:.3f} s"),
                 ("gto show / search", f"{gto / filtered:.1f}x")]
    report(f"search over {args.models:,} model cards and {tags:,} tags (best of {n}; "
           f"{load_note()})", rows)


if __name__ == "__main__":
    main()
