"""The catalog's charts: the same bytes for the same data, whatever was drawn before."""

from __future__ import annotations

import io
from collections.abc import Sequence

from registry.catalog.drawing import bar_chart

# Charts of one bar count drawn one after another on the figure kept for that count: scales far
# apart, negative and zero values, labels longer than a chart shows, and other counts between.
CHARTS = [
    (["0", "1", "2"], [3.0, 5.0, 1.0], "label: examples per class"),
    (["1.0.0 accuracy", "1.0.0 loss", "1.1.0 accuracy"], [0.91, 0.3, 0.95], "metrics per version"),
    (["a"], [1_000_000.0], "one bar"),
    (["x", "y", "z"], [-2.5, 0.0, 7.0], "negative"),
    ([f"class-{i}-with-a-name-longer-than-a-chart-shows" for i in range(20)],
     [float(i * i) for i in range(20)], "twenty classes"),
    (["p", "q", "r"], [0.0, 0.0, 0.0], "all zero"),
    (["b"], [0.5], "one small bar"),
]


def _new_figure_chart(labels: Sequence[str], values: Sequence[float], title: str) -> bytes:
    """The chart drawn on a figure made for it, its bars made with their values (how
    ``bar_chart`` drew before it kept its figures): what a kept figure must draw."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.hashsalt": "registry-catalog", "svg.fonttype": "none",
                                "font.size": 9}):
        height = min(0.7 + 0.22 * max(len(labels), 1), 8.0)
        fig = Figure(figsize=(4.2, height))
        FigureCanvasSVG(fig)
        ax = fig.add_axes((0.3, 0.35 / height, 0.65, 1 - 0.7 / height))
        positions = list(range(len(labels)))
        ax.barh(positions, list(values), color="#3b6ea8")
        ax.set_yticks(positions, [str(label)[:24] for label in labels])
        ax.invert_yaxis()
        ax.set_title(title, fontsize=9, loc="left")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        out = io.BytesIO()
        fig.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    return out.getvalue()


def test_a_chart_is_the_same_bytes_as_on_a_figure_made_for_it() -> None:
    """Each bar count's figure is kept and redrawn (half a chart's time): a chart drawn after
    others, in any order, is byte for byte the chart a figure made for it draws."""
    here = [bar_chart(*chart) for chart in reversed(CHARTS)][::-1]
    assert here == [bar_chart(*chart) for chart in CHARTS]
    assert here == [_new_figure_chart(*chart) for chart in CHARTS]
    assert len(set(here)) == len(CHARTS)
    negative = here[3].decode()
    assert negative.startswith("<?xml") and "negative" in negative and "<script" not in negative
