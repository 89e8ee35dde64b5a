"""Run every benchmark, hold each figure to its aim, print one table and write it as JSON.

    python -m benchmarks [--quick] [--json PATH] [--only NAME ...]

Every ``benchmarks/bench_*.py`` that defines ``measure(quick: bool) -> list[Result]`` is run, one
after another, each in a fresh process of its own (a benchmark may change the environment,
import TensorFlow or fill memory; ``--only bench_beam`` picks some). Each :class:`Result` is
compared with its aim in ``aims.py``; a figure that misses it names the section of
docs/performance.md that shows where the time goes and what the limit is. ``--quick`` runs each
benchmark at small sizes on repositories it builds itself (under 3 minutes on 2 cores): a
check that everything runs and a rough reading, not the documented figures.

Exit status: 0 when every figure meets its aim or its miss is explained in docs/performance.md;
1 when a figure misses its aim and no section explains it; 3 when a benchmark failed to run (its
error is one line of the table and of the JSON); 2 on a bad command line.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import Result
from aims import AIMS, BY_NAME, PERFORMANCE_DOC, Aim

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

EXIT_OK, EXIT_UNEXPLAINED, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3

# Runs one benchmark's measure(quick) in a child process: argv = its folder, module, quick,
# the results file, this folder (for _common).
_CHILD = """
import dataclasses, json, sys
sys.path[:0] = [sys.argv[1], sys.argv[5]]
module = __import__(sys.argv[2])
results = module.measure(sys.argv[3] == "quick")
with open(sys.argv[4], "w") as out:
    json.dump([dataclasses.asdict(r) for r in results], out)
"""


class BenchmarkFailedError(RuntimeError):
    """A benchmark's ``measure`` exited with an error; the message is its last line."""


def discover() -> list[str]:
    """The benchmark modules in this folder, by name (``bench_beam``...)."""
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


# The suite's entry point in a benchmark: ``def measure(quick: bool, ...) -> list[Result]``.
_MEASURE = re.compile(r"^def measure\(\s*quick\s*:\s*bool\b", re.MULTILINE)


def has_measure(name: str, folder: Path = HERE) -> bool:
    """Whether benchmark ``name`` defines the suite's ``measure(quick: bool)`` (read from its
    source: nothing runs; a ``measure`` of another signature is not the suite's)."""
    return _MEASURE.search((folder / f"{name}.py").read_text()) is not None


def measure_in_child(name: str, quick: bool, folder: Path = HERE) -> list[Result]:
    """Run ``name.measure(quick)`` in a fresh Python process and return its results.

    Its output goes to this process's stderr as it comes (progress lines, builds). ``folder``
    holds the module (and ``_common``: this folder is on the child's path too).

    Raises:
        BenchmarkFailedError: If it exits non-zero; the message is the last line it wrote.
    """
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        out = Path(tmp) / "results.json"
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(folder), name, "quick" if quick else "full",
             str(out), str(HERE)],
            stdout=sys.stderr, stderr=subprocess.PIPE, text=True,
        )
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
            raise BenchmarkFailedError(last)
        return [Result(**fields) for fields in json.loads(out.read_text())]


def anchor(heading: str) -> str:
    """The link anchor GitHub gives a Markdown heading.

    Example:
        >>> anchor("Issue 17: Beam build, 2 workers vs 1")
        'issue-17-beam-build-2-workers-vs-1'
    """
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def headings(doc: str) -> set[str]:
    """The text of every Markdown heading in ``doc``."""
    return {m.group(1).strip() for m in re.finditer(r"^#{1,6} +(.+)$", doc, re.MULTILINE)}


def explanation(aim: Aim, doc_headings: set[str]) -> str | None:
    """``docs/performance.md#anchor`` of the section that explains a miss, if it exists."""
    if aim.section is None or aim.section not in doc_headings:
        return None
    return f"{PERFORMANCE_DOC}#{anchor(aim.section)}"


def row(result: Result, doc_headings: set[str]) -> dict[str, Any]:
    """One JSON object of the table: the result, its aim, whether it meets it, and for a miss
    the section of docs/performance.md that explains it (``None`` where none does)."""
    aim = BY_NAME.get(result.name)
    out: dict[str, Any] = {
        "name": result.name,
        "figure": aim.figure if aim else result.name,
        "value": result.value,
        "baseline": result.baseline,
        "ratio": result.ratio,
        "unit": result.unit,
        "aim": aim.text if aim else None,
        "pass": None,
        "detail": result.detail,
    }
    if aim is not None:
        number = result.ratio if aim.on == "ratio" else result.value
        out["pass"] = number is not None and aim.met(number)
        if not out["pass"]:
            out["explained"] = explanation(aim, doc_headings)
    return out


def failed_row(benchmark: str, error: str) -> dict[str, Any]:
    """The row of a benchmark that raised: no figures, its error in one line."""
    return {"name": benchmark, "figure": f"{benchmark}.py", "value": None, "baseline": None,
            "ratio": None, "unit": None, "aim": None, "pass": False, "detail": "",
            "error": error}


def missing_rows(measured: set[str]) -> list[dict[str, Any]]:
    """A row for each aim no benchmark measured (its benchmark is missing, or has no
    ``measure`` yet): shown so that a gap is never silent."""
    return [
        {"name": aim.name, "figure": aim.figure, "value": None, "baseline": None, "ratio": None,
         "unit": None, "aim": aim.text, "pass": None, "detail": "not measured by any benchmark"}
        for aim in AIMS if aim.name not in measured
    ]


def status(rows: Sequence[dict[str, Any]]) -> int:
    """The exit status for a finished table (see the module's docstring)."""
    if any("error" in r for r in rows):
        return EXIT_FAILED
    if any(r["pass"] is False and not r.get("explained") for r in rows):
        return EXIT_UNEXPLAINED
    return EXIT_OK


def _number(value: float | None, unit: str | None) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    return f"{value:,.1f} {unit}"


def _verdict(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"FAILED: {r['error']}"
    if r["pass"] is None:
        return "no aim" if r["aim"] is None else "not measured"
    if r["pass"]:
        return "pass"
    return f"MISS, see {r['explained']}" if r.get("explained") else "MISS, unexplained"


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as one aligned text table."""
    head = ("figure", "value", "baseline", "ratio", "aim", "result")
    lines = [head] + [
        (
            f"{r['figure']}" + (f" [{r['detail']}]" if r["detail"] else ""),
            _number(r["value"], r["unit"]),
            _number(r["baseline"], r["unit"]),
            "-" if r["ratio"] is None else f"{r['ratio']:.3f}x",
            r["aim"] or "-",
            _verdict(r),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=True)) + "  "
        + line[-1]
        for line in lines
    ).rstrip()


def run(
    benchmarks: Sequence[str],
    quick: bool,
    measure: Callable[[str, bool], list[Result]] = measure_in_child,
    say: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run each benchmark's ``measure`` and return the table's rows, in the aims' order.

    A benchmark that fails becomes one failed row; the others still run.
    """
    doc_headings = headings((ROOT / PERFORMANCE_DOC).read_text())
    results: list[Result] = []
    failures: list[dict[str, Any]] = []
    for name in benchmarks:
        say(f"{name}: running{' (quick)' if quick else ''}...")
        start = time.perf_counter()
        try:
            results += measure(name, quick)
        except Exception as e:  # one benchmark's failure is a row; the rest still run
            first = (str(e).strip().splitlines() or [""])[0][:200]
            # A child's failure is already its own error's line: "RuntimeError: ...".
            error = first if isinstance(e, BenchmarkFailedError) else f"{type(e).__name__}: {first}"
            failures.append(failed_row(name, error))
        say(f"{name}: {time.perf_counter() - start:.1f} s")
    return order([row(r, doc_headings) for r in results]) + failures


def order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in the order of ``AIMS``; rows without an aim last."""
    rank = {aim.name: i for i, aim in enumerate(AIMS)}
    return sorted(rows, key=lambda r: rank.get(r["name"], len(rank)))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks``: run, print the table, write the JSON, return the status."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(__doc__ or "").split("\n\n", 1)[0],
        epilog="Exit status: 0 every figure meets its aim or its miss is explained in "
        "docs/performance.md; 1 a figure misses its aim unexplained; 3 a benchmark failed; "
        "2 a bad command line.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, built from scratch (under 3 minutes on 2 cores)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the table as a JSON list of rows to PATH")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=discover(),
                        help="run only these benchmarks (e.g. bench_beam bench_tracking)")
    args = parser.parse_args(argv)
    if args.json is not None and not args.json.parent.is_dir():
        parser.error(f"--json {args.json}: the folder {args.json.parent} does not exist")
    say = lambda line: print(line, file=sys.stderr)  # noqa: E731
    benchmarks = [name for name in args.only or discover() if has_measure(name)]
    for name in sorted(set(args.only or discover()) - set(benchmarks)):
        say(f"{name}: no measure() yet, not run (its figures have no aim in the suite)")
    start = time.perf_counter()
    rows = run(benchmarks, args.quick, say=say)
    if not args.only:
        rows += missing_rows({r["name"] for r in rows})
    print(table(rows))
    print(f"\n{len(benchmarks)} benchmarks in {time.perf_counter() - start:.0f} s"
          f"{' (quick: small sizes)' if args.quick else ''}")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return status(rows)
