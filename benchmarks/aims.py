"""The aims every benchmark figure is held to: issue 17's table, and the goals of the issues
that added the lineage, diff and catalog figures. The one place these numbers live.

A benchmark's ``measure(quick)`` returns :class:`_common.Result` rows named by an aim's
``name``; ``python -m benchmarks`` compares each with its aim here. An aim that a row misses is
``explained`` by its ``section`` of docs/performance.md: where the time goes and what the limit
is (the runner checks that the section exists).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PERFORMANCE_DOC = "docs/performance.md"


@dataclass(frozen=True)
class Aim:
    """What one figure must reach.

    Attributes:
        name: The key a benchmark's :class:`_common.Result` carries (``beam.speedup``).
        figure: What is measured, as a table row says it.
        on: Which of the result's numbers is held to ``limit``: its ``ratio`` (a speed-up, an
            overhead, a multiple of a baseline) or its ``value`` (seconds, MiB).
        op: ``"<="`` or ``">="``.
        limit: The number of the issue's table.
        unit: How ``limit`` is printed: ``"x"`` for a ratio, ``"s"``, ``"MiB"``.
        section: The heading in docs/performance.md that shows where the time goes and the
            limit, for when the figure misses; ``None`` until one is written.
        source: The issue the aim comes from.

    Example:
        >>> Aim("x", "a figure", "ratio", "<=", 1.02, "x").met(1.01)
        True
    """

    name: str
    figure: str
    on: Literal["ratio", "value"]
    op: Literal["<=", ">="]
    limit: float
    unit: str
    section: str | None = None
    source: str = "issue 17"

    def met(self, number: float) -> bool:
        """Whether ``number`` (the result's ``ratio`` or ``value``) reaches the aim."""
        return number <= self.limit if self.op == "<=" else number >= self.limit

    @property
    def text(self) -> str:
        """The aim as the table prints it: ``>= 1.85x``, ``<= 0.2 s``."""
        unit = self.unit if self.unit == "x" else f" {self.unit}"
        return f"{self.op} {self.limit:g}{unit}"


_ISSUE17 = "Issue 17: where the time goes"
_READ_PATH = "The read path at scale: search, list, info, resolve (issue 17)"
_CATALOG = "The static catalog (issue 16, third increment)"

AIMS: tuple[Aim, ...] = (
    # -- issue 17's table ------------------------------------------------------------------
    Aim("search.filters", "`registry models search`, 4 filters, 1,000 cards / 5,000 tags",
        "value", "<=", 0.2, "s", _READ_PATH),
    Aim("list.tags", "`registry datasets list` at 10,000+ version tags", "value", "<=", 0.15, "s",
        _READ_PATH),
    Aim("info.version", "`registry datasets info` of one version", "value", "<=", 0.15, "s",
        _READ_PATH),
    Aim("beam.speedup", "Beam build of ad_clicks, 2 workers vs 1 (speed-up)",
        "ratio", ">=", 1.85, "x", f"{_ISSUE17}: Beam build, 2 workers vs 1"),
    Aim("tracking.overhead", "training with MLflow logging on vs off",
        "ratio", "<=", 1.02, "x", f"{_ISSUE17}: MLflow logging on vs off"),
    Aim("pull.cold_vs_cp", "cold `registry datasets pull` from the local remote vs `cp`",
        "ratio", "<=", 1.3, "x", f"{_ISSUE17}: cold pull from a local remote"),
    Aim("pull.cold_vs_dvc", "cold `registry datasets pull` vs `dvc pull` of the same output",
        "ratio", "<=", 1.0, "x"),
    Aim("resolve.100", "resolve + locate one cached version, fresh process, 100 tags",
        "value", "<=", 0.10, "s", _READ_PATH),
    Aim("resolve.10k", "resolve + locate one cached version, fresh process, 10,000+ tags",
        "value", "<=", 0.15, "s", _READ_PATH),
    Aim("gcs.direct", "GCS pull vs google-cloud-storage's best, loopback (speed-up)",
        "ratio", ">=", 1.0, "x", f"{_ISSUE17}: GCS pull"),
    Aim("load.warm", "warm load vs `tfds.builder_from_directory`", "ratio", "<=", 1.02, "x"),
    # -- issue 17's "also" ------------------------------------------------------------------
    Aim("scale.growth", "list, info, resolve, search, load at 20,000 tags vs at 2,000 (worst)",
        "ratio", "<=", 2.0, "x", _READ_PATH),
    Aim("scale.memory", "peak memory at 20,000+ tags", "value", "<=", 200.0, "MiB", _READ_PATH),
    Aim("pull.small_files", "pull of 20,000 small files vs `cp` of the same objects",
        "ratio", "<=", 2.0, "x", f"{_ISSUE17}: cold pull from a local remote"),
    # -- the figures of earlier issues that the suite runs too ------------------------------
    Aim("lineage.up", "`registry lineage` up, 15,000 tags, fresh process", "value", "<=", 0.3, "s",
        "Lineage on 15,000 tags", "lineage's issue"),
    Aim("lineage.down", "`registry lineage --down`, 15,000 tags, fresh process",
        "value", "<=", 0.3, "s", "Lineage on 15,000 tags", "lineage's issue"),
    Aim("diff.by_key", "`datasets diff` by key vs reading both versions to the end",
        "ratio", "<=", 1.5, "x", "`datasets diff` of two versions of 1M examples", "diff's issue"),
    Aim("catalog.cold", "`registry catalog build` into an empty folder", "value", "<=", 15.0, "s",
        _CATALOG, "catalog's issue"),
    Aim("catalog.unchanged", "`registry catalog build` with nothing changed",
        "value", "<=", 2.0, "s", _CATALOG, "catalog's issue"),
    Aim("startup.import", '`python -c "import registry"`', "value", "<=", 0.5, "s",
        None, "first round"),
    Aim("startup.help", "`registry --help`", "value", "<=", 0.5, "s", None, "first round"),
)

BY_NAME: dict[str, Aim] = {aim.name: aim for aim in AIMS}
