"""The catalog's pictures, drawn at build time with kept libraries: charts with matplotlib (SVG
files), the lineage graph laid out by grandalf (Sugiyama layering, as ``dvc dag`` uses it) and
written as inline SVG whose nodes link to their pages.

Both give the same bytes for the same input (no dates, fixed ids), so an unchanged catalog
rebuilds to unchanged files.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from html import escape
from typing import Any

__all__ = ["bar_chart", "lineage_svg"]

# Node box size in the lineage graph (px): wide enough for a typical name at 12 px.
_NODE_W, _NODE_H, _CHAR_W = 190.0, 40.0, 7.0
_COLOURS = {"dataset": "#e8f1fb", "model": "#eef7ec", "self": "#fff4d6"}


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str) -> bytes:
    """A small horizontal bar chart as SVG bytes (the same bytes for the same data).

    A figure with as many bars is made once per thread and redrawn with these values, labels
    and title (:class:`_BarFigure`): making the figure, axes and ticks anew was half of a
    chart's time. The bytes do not depend on what was drawn before (a test checks it).

    Example:
        >>> bar_chart(["a", "b"], [3, 5], "classes").startswith(b"<?xml")
        True
    """
    import matplotlib

    # A fixed salt for SVG ids (no random ones), text as text, the figures' font size.
    with matplotlib.rc_context({"svg.hashsalt": "registry-catalog", "svg.fonttype": "none",
                                "font.size": 9}):
        figures = _figures.__dict__.setdefault("by_count", {})
        figure = figures.get(len(labels))
        if figure is None:
            figure = figures[len(labels)] = _BarFigure(len(labels))
        return figure.draw(labels, values, title)


# Each thread's bar figures, by number of bars (a figure is not safe to share between threads).
_figures = threading.local()


class _BarFigure:
    """A horizontal bar chart's figure with ``count`` bars, redrawn for each chart."""

    def __init__(self, count: int) -> None:
        from matplotlib.backends.backend_svg import FigureCanvasSVG
        from matplotlib.figure import Figure

        # A Figure of its own (no pyplot state) with fixed margins: tight_layout would measure
        # every label first, which is most of a chart's time.
        height = min(0.7 + 0.22 * max(count, 1), 8.0)
        self.figure = Figure(figsize=(4.2, height))
        FigureCanvasSVG(self.figure)
        self.axes = self.figure.add_axes((0.3, 0.35 / height, 0.65, 1 - 0.7 / height))
        positions = list(range(count))
        self.bars = self.axes.barh(positions, [0.0] * count, color="#3b6ea8")
        self.axes.set_yticks(positions, [""] * count)
        self.axes.invert_yaxis()
        # The title's height and the axis labels' places fixed: with nothing above the axes
        # and no axis label, what matplotlib would place them by (every tick label's box,
        # measured each draw: a quarter of a chart's time) changes nothing of the chart.
        self.title = self.axes.set_title("", fontsize=9, loc="left", y=1.0)
        self.axes.xaxis.set_label_coords(0.5, 0.0)
        self.axes.yaxis.set_label_coords(0.0, 0.5)
        for side in ("top", "right"):
            self.axes.spines[side].set_visible(False)

    def draw(self, labels: Sequence[str], values: Sequence[float], title: str) -> bytes:
        """The chart of these bars as SVG bytes."""
        for bar, value in zip(self.bars, values, strict=True):
            bar.set_width(float(value))
        self.axes.set_yticklabels([str(label)[:24] for label in labels])
        self.title.set_text(title)
        # The value axis as a new figure's autoscaling would set it for these bars.
        self.axes.relim()
        self.axes.autoscale_view()
        out = io.BytesIO()
        self.figure.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
        return out.getvalue()


def lineage_svg(
    nodes: dict[str, dict[str, Any]], edges: Sequence[tuple[str, str]], root: str
) -> str:
    """A lineage graph as inline SVG markup: ``edges`` point from what a model was made of to
    the model; each node links to its page.

    Args:
        nodes: Node id -> ``{"kind": "dataset"|"model", "label": str, "href": str|None}``
            and optionally ``"note"``, the node's second line (default: its kind).
        edges: ``(source, target)`` node ids.
        root: The node the page is about (highlighted).

    Example:
        >>> nodes = {"d": {"kind": "dataset", "label": "d", "href": "d.html"},
        ...          "m": {"kind": "model", "label": "m", "href": None}}
        >>> svg = lineage_svg(nodes, [("d", "m")], "m")
        >>> svg.count("<a ") == 1 and "<svg" in svg
        True
    """
    from grandalf.graphs import Edge, Graph, Vertex
    from grandalf.layouts import SugiyamaLayout

    class _View:
        def __init__(self, w: float, h: float) -> None:
            self.w, self.h, self.xy = w, h, (0.0, 0.0)

    width_of = {n: max(_NODE_W, _CHAR_W * len(d["label"]) + 20) for n, d in nodes.items()}
    vertices = {n: Vertex(n) for n in sorted(nodes)}
    for n, v in vertices.items():
        v.view = _View(width_of[n], _NODE_H)
    links = [Edge(vertices[a], vertices[b]) for a, b in edges if a in vertices and b in vertices]
    graph = Graph(list(vertices.values()), links)
    placed: dict[str, tuple[float, float]] = {}
    offset = 0.0
    for component in graph.C:
        layout = SugiyamaLayout(component)
        layout.yspace = 36  # room between layers for the arrows
        layout.init_all()
        layout.draw()
        xs = [v.view.xy[0] for v in component.sV]
        left = min(x - v.view.w / 2 for x, v in zip(xs, component.sV, strict=True))
        right = max(x + v.view.w / 2 for x, v in zip(xs, component.sV, strict=True))
        for v in component.sV:
            placed[v.data] = (v.view.xy[0] - left + offset, v.view.xy[1])
        offset += right - left + 40
    top = min(y for _, y in placed.values()) - _NODE_H / 2
    placed = {n: (x + 10, y - top + 10) for n, (x, y) in placed.items()}
    width = max(x + width_of[n] / 2 for n, (x, _) in placed.items()) + 10
    height = max(y for _, y in placed.values()) + _NODE_H / 2 + 10
    parts = [
        f'<svg class="lineage" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-label="lineage graph" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#667"/></marker></defs>',
    ]
    for a, b in edges:
        if a in placed and b in placed:
            (x1, y1), (x2, y2) = placed[a], placed[b]
            parts.append(
                f'<line x1="{x1:.1f}" y1="{y1 + _NODE_H / 2:.1f}" x2="{x2:.1f}" '
                f'y2="{y2 - _NODE_H / 2:.1f}" stroke="#667" marker-end="url(#arrow)"/>'
            )
    for n in sorted(placed):
        x, y = placed[n]
        node = nodes[n]
        fill = _COLOURS["self"] if n == root else _COLOURS.get(node["kind"], "#fff")
        w = width_of[n]
        box = (
            f'<g class="node {escape(node["kind"])}" data-node="{escape(n)}">'
            f'<rect x="{x - w / 2:.1f}" y="{y - _NODE_H / 2:.1f}" width="{w:.0f}" '
            f'height="{_NODE_H:.0f}" rx="6" fill="{fill}" stroke="#567"/>'
            f'<text x="{x:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="12">'
            f'{escape(node["label"])}</text>'
            f'<text x="{x:.1f}" y="{y + 12:.1f}" text-anchor="middle" font-size="10" '
            f'fill="#556">{escape(node.get("note") or node["kind"])}</text></g>'
        )
        href = node.get("href")
        parts.append(f'<a href="{escape(href)}">{box}</a>' if href else box)
    parts.append("</svg>")
    return "\n".join(parts)
