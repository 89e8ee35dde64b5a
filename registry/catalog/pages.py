"""The catalog's HTML pages, from the collected data (:mod:`registry.catalog.collect`).

Every value from the registry is escaped (:func:`html.escape`); a card is rendered by
:func:`registry.catalog.markdown.render_markdown`. Pages carry a Content-Security-Policy that
allows only the site's own files, hold no inline script or style, and link to one another
relatively, so the site works from ``file://``, a bucket or any server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from registry.catalog.markdown import render_markdown
from registry.catalog.search import FACETS, format_size, page_path

__all__ = ["CSP", "dataset_page", "home_page", "model_page", "search_index_js"]

#: Only the site's own files: no inline script or style, no other host, no plugin, no form.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'"
)


def _prefix(page: str) -> str:
    """The relative path from ``page`` back to the site's root (``""`` or ``../..``/)."""
    return "../" * page.count("/")


def _layout(page: str, title: str, body: str) -> str:
    root = _prefix(page)
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)} · Lab Registry</title>\n"
        f'<link rel="stylesheet" href="{root}catalog.css">\n'
        f'<script src="{root}search-index.js" defer></script>\n'
        f'<script src="{root}catalog.js" defer></script>\n'
        "</head>\n<body>\n"
        f'<a class="skip" href="#main">Skip to content</a>\n'
        f'<header><nav><a href="{root}index.html">Lab Registry catalog</a></nav></header>\n'
        f'<main id="main">\n{body}\n</main>\n</body>\n</html>\n'
    )


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """A table whose cells are HTML already (escape values before)."""
    head = "".join(f"<th scope=\"col\">{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>\n" for row in rows)
    klass = f' class="{cls}"' if cls else ""
    return (f'<div class="scroll"><table{klass}><thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{body}</tbody></table></div>")


def _link(from_page: str, kind: str, ref: str) -> str:
    """A link to the page of ``ref`` (``name`` or ``name:version``)."""
    name = ref.split(":", 1)[0]
    return f'<a href="{_prefix(from_page)}{escape(page_path(kind, name))}">{escape(ref)}</a>'


def _code(text: str) -> str:
    """A command or line of code with a copy button (catalog.js copies the ``<code>``)."""
    return (f'<div class="code"><pre><code>{escape(text)}</code></pre>'
            '<button type="button" class="copy" aria-label="Copy">Copy</button></div>')


def _versions(artifact: dict[str, Any], with_metrics: bool = False) -> str:
    rows = []
    for v in artifact["versions"]:
        mark = (f'<span class="yanked">yanked: {escape(v["yanked"])}</span>'
                if v["yanked"] else "")
        row = [f'<span id="v{escape(v["version"])}">{escape(v["version"])}</span> {mark}',
               escape(v["date"][:10]), escape(v["by"] or "-"), escape(v.get("notes") or "")]
        if with_metrics:
            row.append(_run(v))
        rows.append(row)
    built = artifact.get("workspace")
    if built:
        # This clone's own build, not a release: beside the releases, as `datasets list` shows it.
        what = (f'{built["examples"]:,} examples built here' if "examples" in built
                else "weights built here")
        rows.insert(0, [f'{escape(built.get("version") or "-")} '
                        f'<span class="badge unreleased">{escape(built["label"])}</span>',
                        "-", "-", escape(what)] + (["-"] if with_metrics else []))
    header = ["Version", "Released", "By", "Notes"] + (["Training run"] if with_metrics else [])
    return _table(header, rows) if rows else "<p>Not released yet.</p>"


def _run(version: dict[str, Any]) -> str:
    """A version's training run: a link to its page on the tracking server that logged it,
    where the release recorded one (an http(s) URL without credentials:
    :func:`registry.tracking.recorded_run_link`), else its id."""
    run, url = version.get("training_run"), version.get("training_run_url")
    if not run:
        return "-"
    if url and str(url).startswith(("https://", "http://")):
        return (f'<a class="external" href="{escape(str(url))}" rel="noopener noreferrer">'
                f"{escape(str(run))}</a>")
    return escape(str(run))


def _stage_history(artifact: dict[str, Any]) -> str:
    rows = [
        [escape(e["stage"]), escape(e["action"]), escape(e["version"] or "?"),
         escape(e["by"] or "-"), escape(e["date"][:19].replace("T", " "))]
        for e in artifact["stage_history"]
    ]
    if not rows:
        return "<p>No stage was ever assigned.</p>"
    return _table(["Stage", "What", "Version", "By", "When"], rows)


def _head(artifact: dict[str, Any]) -> str:
    built = artifact.get("workspace")
    badges = [] if built and not artifact["latest"] else [
        f'<span class="badge">latest {escape(artifact["latest"] or "unreleased")}</span>']
    if built:
        badges.append(f'<span class="badge unreleased">{escape(built["label"])}</span>')
    badges += [f'<span class="badge stage">{escape(s)}: {escape(v)}</span>'
               for s, v in artifact["stages"].items()]
    if artifact["deprecated"]:
        badges.append('<span class="badge yanked">deprecated</span>')
    return (f'<h1>{escape(artifact["name"])}</h1>\n<p class="kind">{artifact["kind"]}</p>\n'
            f'<p class="description">{escape(artifact["description"])}</p>\n'
            f'<p>{" ".join(badges)}</p>')


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>\n{body}\n</section>'


def dataset_page(d: dict[str, Any], charts: dict[str, str], preview: str, repo_url: str) -> str:
    """A dataset's page.

    Args:
        d: The dataset's entry of the catalog.
        charts: Feature -> the path of its statistics chart, relative to the page.
        preview: The example preview's HTML (``""``: none in the local cache).
        repo_url: The registry's Git URL for the ``dvc get``/``dvc import`` lines.
    """
    page = page_path("dataset", d["name"])
    features = [
        [f"<code>{escape(name)}</code>", escape(str(f.get("type", ""))),
         escape(str(f.get("dtype", ""))), escape(str(f.get("shape", ""))),
         escape(", ".join(map(str, f.get("names") or []))[:200])]
        for name, f in sorted(d["features"].items())
    ]
    splits = [[escape(s), f'{v["examples"]:,}', format_size(v["bytes"])]
              for s, v in d["splits"].items()]
    stats = _statistics(d, charts)
    latest = d["latest"]
    ref = f'{d["name"]}:{latest}' if latest else d["name"]
    tag = f'{d["name"]}@v{latest}' if latest else "main"
    leaf = d["name"].rsplit("/", 1)[-1]
    load = "".join([
        _code(f'import registry\nds = registry.load_dataset("{ref}", split="train")'),
        _code(f"registry datasets pull {ref}"),
        _code(f"dvc get {repo_url} datasets/{d['name']}/prepared --rev {tag} -o {leaf}"),
        _code(f"dvc import {repo_url} datasets/{d['name']}/prepared --rev {tag} -o {leaf}"),
    ])
    models = "".join(f"<li>{_link(page, 'model', m)}</li>" for m in d["models"])
    body = "\n".join([
        _head(d),
        _section("card", "Card", f'<div class="card">{render_markdown(d["card"])}</div>'),
        _section("versions", "Versions", _versions(d)),
        _section("features", "Features", _table(["Name", "Type", "Dtype", "Shape", "Classes"],
                                                features) if features else "<p>Not built.</p>"),
        _section("splits", "Splits and sizes",
                 _table(["Split", "Examples", "Size"], splits) if splits else "<p>Not built.</p>"),
        _section("statistics", "Statistics", stats),
        _section("examples", "Examples", preview or
                 "<p>No preview: the latest version is not in this machine's cache "
                 f"(<code>registry datasets pull {escape(ref)}</code>, then rebuild).</p>"),
        _section("load", "How to load", load),
        _section("models", "Models trained on it",
                 f"<ul>{models}</ul>" if models else "<p>None yet.</p>"),
        _section("citation", "Citation",
                 f'<pre>{escape(d["citation"])}</pre>' if d["citation"].strip() else "<p>-</p>"),
    ])
    return _layout(page, d["name"], body)


def _statistics(d: dict[str, Any], charts: dict[str, str]) -> str:
    stats = (d["statistics"] or {}).get("splits") or {}
    if not stats:
        return "<p>No statistics recorded for this build.</p>"
    rows = []
    for split, entry in sorted(stats.items()):
        for name, f in sorted((entry.get("features") or {}).items()):
            summary = {k: v for k, v in f.items()
                       if k not in ("kind", "count", "missing", "classes", "shapes")
                       and not isinstance(v, dict | list)}
            rows.append([escape(split), f"<code>{escape(name)}</code>", escape(str(f.get("kind"))),
                         escape(str(f.get("count"))), escape(str(f.get("missing"))),
                         escape(", ".join(f"{k} {v}" for k, v in summary.items()))])
    images = "".join(
        f'<figure><img src="{escape(src)}" alt="{escape(name)} distribution" loading="lazy">'
        f"<figcaption>{escape(name)}</figcaption></figure>"
        for name, src in sorted(charts.items())
    )
    return (_table(["Split", "Feature", "Kind", "Count", "Missing", "Summary"], rows)
            + (f'<div class="charts">{images}</div>' if images else ""))


def model_page(m: dict[str, Any], lineage: str, metrics_chart: str | None, repo_url: str) -> str:
    """A model's page.

    Args:
        m: The model's entry of the catalog.
        lineage: Its lineage graph (inline SVG).
        metrics_chart: The path of its metrics chart, relative to the page (``None``: none).
        repo_url: The registry's Git URL for the ``dvc get`` line.
    """
    page = page_path("model", m["name"])
    fields = [
        ("Task", escape(m["task"])), ("Architecture", escape(m["architecture"])),
        ("Framework", escape(m["framework"])), ("Owner", escape(m["owner"])),
        ("Licence", escape(m["license"])), ("Language", escape(", ".join(m["language"]))),
        ("Datasets", ", ".join(_link(page, "dataset", r) for r in m["datasets"]) or "-"),
        ("Base model", _link(page, "model", m["base_model"]) if m["base_model"] else "-"),
        ("Fine-tuned into", ", ".join(_link(page, "model", c) for c in m["children"]) or "-"),
        ("Tags", escape(", ".join(m["tags"]))),
    ]
    facts = "<dl class=\"facts\">" + "".join(
        f"<dt>{k}</dt><dd>{v or '-'}</dd>" for k, v in fields) + "</dl>"
    names = sorted({k for v in m["versions"] for k in v.get("metrics", {})})
    metric_rows = [[escape(v["version"])] + [escape(str(v["metrics"].get(k, "-"))) for k in names]
                   for v in m["versions"] if v.get("metrics")]
    if not m["versions"] and m.get("card_metrics"):
        # Not released yet: what the work tree's card says.
        names = sorted(m["card_metrics"])
        label = m["workspace"]["label"] if m.get("workspace") else "work tree"
        metric_rows = [[escape(label)] + [escape(str(m["card_metrics"][k])) for k in names]]
    metrics = _table(["Version", *map(escape, names)], metric_rows) if metric_rows else (
        "<p>No metrics recorded.</p>")
    if metrics_chart:
        metrics += (f'<figure><img src="{escape(metrics_chart)}" alt="metrics per version">'
                    "</figure>")
    ref = f'{m["name"]}:{m["latest"]}' if m["latest"] else m["name"]
    tag = f'{m["name"]}@v{m["latest"]}' if m["latest"] else "main"
    weights = m.get("weights") or "model.keras"
    load = "".join([
        _code(f'import registry\npath = registry.load_model("{ref}")  # local weights file'),
        _code(f'model = registry.load_keras_model("{ref}")'),
        _code(f"dvc get {repo_url} models/{m['name']}/{weights} --rev {tag}"),
    ])
    body = "\n".join([
        _head(m), facts,
        _section("card", "Card", f'<div class="card">{render_markdown(m["card"])}</div>'),
        _section("versions", "Versions", _versions(m, with_metrics=True)),
        _section("stages", "Stage history", _stage_history(m)),
        _section("metrics", "Metrics", metrics),
        _section("lineage", "Lineage", f'<div class="graph">{lineage}</div>'),
        _section("load", "How to load", load),
    ])
    return _layout(page, m["name"], body)


def _list_badges(entry: dict[str, Any]) -> str:
    """An artifact's version badges in the home page's list: its latest release, and this
    clone's unreleased build (or "unreleased" when it has neither)."""
    badges = [f'<span class="badge">{escape(entry["latest"])}</span>'] if entry["latest"] else []
    if entry.get("workspace"):
        badges.append(f'<span class="badge unreleased">{escape(entry["workspace"])}</span>')
    return " ".join(badges or ['<span class="badge">unreleased</span>'])


def home_page(catalog: dict[str, Any], entries: list[dict[str, Any]]) -> str:
    """The home page: counts, search box and filters, every artifact, recent releases."""
    counts = catalog["counts"]
    options = []
    for facet in FACETS:
        values = sorted({str(v) for e in entries
                         for v in (e[facet] if isinstance(e[facet], list) else [e[facet]]) if v})
        if not values:
            continue
        opts = "".join(f'<option value="{escape(v)}">{escape(v)}</option>' for v in values)
        options.append(
            f'<label>{escape(facet)} <select data-facet="{facet}"><option value="">any</option>'
            f"{opts}</select></label>"
        )
    items = []
    for i, e in enumerate(entries):
        facts = [e["task"], e["architecture"], e["framework"], ", ".join(e["language"]),
                 e["owner"] and f"owner {e['owner']}",
                 e["datasets"] and "trained on " + ", ".join(e["datasets"]),
                 e["stage"] and "stages " + ", ".join(e["stage"]),
                 e["kind"] == "dataset" and e["examples"] and f"{e['examples']:,} examples",
                 ", ".join(e["tags"][:6])]
        items.append(
            f'<li data-entry="{i}"><a href="{escape(e["page"])}">{escape(e["name"])}</a> '
            f'<span class="badge">{e["kind"]}</span> '
            + _list_badges(e)
            + f'<p>{escape(e["description"])}</p>'
            f'<p class="facts">{escape(" · ".join(str(f) for f in facts if f))}</p></li>'
        )
    recent = "".join(
        f'<li>{_link("index.html", r["kind"], r["name"])} {escape(r["version"])} '
        f'<span class="muted">{escape(r["date"][:10])} by {escape(r["by"] or "-")}</span></li>'
        for r in catalog["recent"]
    )
    body = "\n".join([
        "<h1>Datasets and models</h1>",
        f'<p class="counts">{counts["datasets"]} datasets · {counts["models"]} models · '
        f'{counts["releases"]} releases</p>',
        '<div class="search" role="search"><label for="q">Search</label> '
        '<input id="q" type="search" placeholder="name, task, owner, feature, words of a card" '
        f'autocomplete="off">{"".join(options)}</div>',
        '<p id="shown" aria-live="polite"></p>',
        f'<ul id="artifacts" class="artifacts">{"".join(items)}</ul>',
        _section("recent", "Recently released", f"<ul>{recent}</ul>" if recent else "<p>-</p>"),
    ])
    return _layout("index.html", "Catalog", body)


def search_index_js(entries: list[dict[str, Any]], facets: Sequence[str] = FACETS) -> str:
    """The prebuilt search index as a script (a ``<script src>`` works from ``file://``, where
    reading a JSON file would not)."""
    data = json.dumps({"facets": list(facets), "entries": entries}, sort_keys=True,
                      separators=(",", ":"))
    # "</" cannot end the script early in a file, but keep it inert for any inlining.
    safe = data.replace("</", "<\\/")
    return f"window.CATALOG_INDEX = {safe};\n"
