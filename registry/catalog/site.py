"""``registry catalog build`` and ``serve``: the static site written from the collected data.

A build writes a file only when its bytes differ from what is there (an unchanged catalog
rebuilds to no write at all, mtimes kept; after one release, only that artifact's files, the
home page, ``catalog.json`` and the search index change). Each write is atomic.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.atomic import atomic_write_bytes
from registry.catalog import drawing, pages
from registry.catalog.collect import collect
from registry.catalog.previews import preview_html
from registry.catalog.search import index_entries, page_path
from registry.errors import CatalogOutputError, ConfigError
from registry.repo.session import RegistryArg, Session, open_session

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

__all__ = ["BuildReport", "build", "serve"]

_STATIC = ("catalog.css", "catalog.js")
# In each asset folder: what its drawn files were drawn from (:meth:`_Writer.derived`).
_INPUTS = "inputs.json"
# Charts are drawn by a pool of processes in batches of this many (fewer: in the process).
_PARALLEL_CHARTS = 64
_CORES = min(os.cpu_count() or 1, 8)


def _draw_bars(jobs: list[tuple[list[str], list[float], str]]) -> list[bytes]:
    """Bar charts (a pool's task: a module-level function)."""
    return [drawing.bar_chart(*job) for job in jobs]


@dataclass
class BuildReport:
    """What a catalog build did.

    Attributes:
        out_dir: The site's folder.
        written: Files (relative to ``out_dir``) whose bytes changed, sorted.
        unchanged: How many files already held the bytes they would be given (a drawn file
            whose inputs are unchanged counts once, its thumbnails not at all).
        datasets, models: How many pages of each kind the site has.
        removed: Pages and assets of artifacts no longer in the registry, deleted, sorted.
    """

    out_dir: Path
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    datasets: int = 0
    models: int = 0


class _Writer:
    """Writes files under the site's folder only when their bytes change.

    A drawn file (a chart, a thumbnail) is drawn again only when what it is drawn from changed:
    each artifact's asset folder keeps an ``inputs.json``, file -> the hash of its inputs.
    """

    def __init__(self, root: Path, report: BuildReport) -> None:
        self.root, self.report = root, report
        self.old: dict[str, dict[str, str]] = {}
        self.new: dict[str, dict[str, str]] = {}
        # Charts not yet handed to the pool: (file, labels, values, title).
        self.charts: list[tuple[str, list[str], list[float], str]] = []
        # Charts handed to the pool: their files, and the future of their bytes.
        self._batches: list[tuple[list[str], Future[list[bytes]]]] = []
        self._pool: ProcessPoolExecutor | None = None

    def _is_current(self, rel: str, inputs: Any, record: str | None = None) -> bool:
        """Record ``inputs`` as what ``rel`` is drawn from (in the ``inputs.json`` of
        ``record``'s folder, under its name; default ``rel``'s); whether it was drawn from
        them last time (and is there)."""
        folder, _, name = (record or rel).rpartition("/")
        key = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
        self.new.setdefault(folder, {})[name] = key
        if folder not in self.old:
            try:
                self.old[folder] = json.loads((self.root / folder / _INPUTS).read_text())
            except (OSError, ValueError):
                self.old[folder] = {}
        return self.old[folder].get(name) == key and (self.root / rel).is_file()

    def derived(self, rel: str, inputs: Any, draw: Callable[[], bytes]) -> bytes:
        """Write ``draw()`` at ``rel`` unless ``inputs`` are those it was drawn from last time
        (and the file is there); return the file's bytes."""
        if self._is_current(rel, inputs):
            self.report.unchanged += 1
            return (self.root / rel).read_bytes()
        data = draw()
        self(rel, data)
        return data

    def page(self, rel: str, record: str, inputs: Any, render: Callable[[], str]) -> None:
        """Write page ``rel`` as ``render()`` makes it, unless it was made from these
        ``inputs`` last time (and is there): rendering 1,000 pages and laying out their graphs
        is most of a build with nothing changed. The inputs' hash is kept as ``record`` (a
        name in the artifact's asset folder)."""
        if self._is_current(rel, inputs, record):
            self.report.unchanged += 1
            return
        self(rel, render())

    def chart(self, rel: str, labels: list[str], values: list[float], title: str) -> None:
        """Draw a bar chart at ``rel`` (:func:`drawing.bar_chart`) unless it is drawn from
        these values already. Charts are drawn in batches: by a pool of processes, one per
        core, from the first full batch on (while the pages are made), else in
        :meth:`finish`."""
        if self._is_current(rel, ["bar", labels, values, title]):
            self.report.unchanged += 1
            return
        self.charts.append((rel, labels, values, title))
        if len(self.charts) >= _PARALLEL_CHARTS and _CORES > 1:
            self._submit()

    def _submit(self) -> None:
        """Hand the charts asked for so far to the pool (started on first need)."""
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("forkserver")  # no fork of git's threads
            self._pool = ProcessPoolExecutor(_CORES, mp_context=context)
        jobs = [(labels, values, title) for _, labels, values, title in self.charts]
        self._batches.append(([rel for rel, *_ in self.charts],
                              self._pool.submit(_draw_bars, jobs)))
        self.charts = []

    def close(self) -> None:
        """Stop the chart pool, if one was started (its unfinished charts are dropped)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def finish(self) -> None:
        """Draw the charts still asked for (matplotlib takes ~15 ms a chart), write every
        chart, then each asset folder's record of what its files were drawn from."""
        if self.charts and self._pool is not None:
            self._submit()
        else:
            jobs = [(labels, values, title) for _, labels, values, title in self.charts]
            for (rel, *_), data in zip(self.charts, _draw_bars(jobs), strict=True):
                self(rel, data)
            self.charts = []
        for rels, future in self._batches:
            for rel, data in zip(rels, future.result(), strict=True):
                self(rel, data)
        self._batches = []
        self.close()
        if self.report.written:
            # The files were written without an fsync each (thousands: seconds); one sync
            # before the records that say they are current, so a crash before it leaves old
            # records, and the files are made again.
            os.sync()
        for folder, keys in sorted(self.new.items()):
            self(f"{folder}/{_INPUTS}", json.dumps(keys, indent=1, sort_keys=True) + "\n")

    def __call__(self, rel: str, data: bytes | str) -> None:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        path = self.root / rel
        try:
            if path.stat().st_size == len(raw) and path.read_bytes() == raw:
                self.report.unchanged += 1
                return
        except FileNotFoundError:
            pass
        is_record = rel.endswith(f"/{_INPUTS}")
        atomic_write_bytes(path, raw, durable=is_record)
        self.report.written.append(rel)


def build(out_dir: str | os.PathLike[str], *, registry: RegistryArg = None) -> BuildReport:
    """Write the registry's catalog, a static site, into ``out_dir``.

    The site opens from ``file://``, any web server or a bucket, with no network at view time:
    ``index.html`` (every dataset and model, searchable and filterable), one page per dataset
    (``datasets/<name>.html``) and per model (``models/<name>.html``), ``catalog.json``
    (everything the pages show), ``search-index.js``, ``catalog.css``, ``catalog.js`` and the
    charts and example thumbnails (``assets/``). Reads Git only; example previews come from
    versions already in the local cache.

    Args:
        out_dir: The site's folder (made if missing; files of an earlier build are kept and
            rewritten only where they change).
        registry: A registry clone or Git URL; default from the configuration.

    Returns:
        What was written.

    Raises:
        CatalogOutputError: If ``out_dir`` is a file, or cannot be written.
        NotARegistryError: If no registry is configured.
        RemoteError: If a registry URL cannot be fetched.

    Example:
        >>> report = build("site")  # doctest: +SKIP
        >>> report.written[:2]  # doctest: +SKIP
        ['assets/datasets/image_classification/digits/label.svg', 'catalog.css']
    """
    out = Path(out_dir)
    _check_out_dir(out)
    session = open_session(registry)
    session.repo.refresh()
    catalog = collect(session)
    report = BuildReport(out, datasets=len(catalog["datasets"]), models=len(catalog["models"]))
    write = _Writer(out, report)
    try:
        _write_site(session, catalog, write)
    except OSError as e:
        raise CatalogOutputError(out, e.strerror or str(e)) from e
    finally:
        write.close()
    report.written.sort()
    report.removed = _remove_stale(out, catalog)
    return report


def _remove_stale(out: Path, catalog: dict[str, Any]) -> list[str]:
    """Delete the pages (``datasets/``, ``models/``) and asset folders (``assets/``) of
    artifacts the catalog no longer has; nothing else in ``out`` is touched."""
    removed = []
    for kind in ("dataset", "model"):
        names = {a["name"] for a in catalog[f"{kind}s"]}
        pages_dir, assets_dir = out / f"{kind}s", out / "assets" / f"{kind}s"
        stale = [p for p in pages_dir.rglob("*.html")
                 if p.relative_to(pages_dir).as_posix().removesuffix(".html") not in names]
        # os.walk, not rglob: a folder's files are looked at only when the folder is stale.
        for here, _, files in os.walk(assets_dir):
            rel = Path(here).relative_to(assets_dir).as_posix()
            if files and rel not in names:
                stale += [Path(here) / f for f in files]
        for path in stale:
            path.unlink()
            removed.append(path.relative_to(out).as_posix())
        for root in (pages_dir, assets_dir) if stale else ():
            # Empty folders left behind, deepest first.
            for folder in sorted((d for d in root.rglob("*") if d.is_dir()), reverse=True):
                if not any(folder.iterdir()):
                    folder.rmdir()
    return sorted(removed)


def _check_out_dir(out: Path) -> None:
    """Refuse an ``out_dir`` that is a file, or that cannot be made."""
    if out.exists() and not out.is_dir():
        raise CatalogOutputError(out, "it is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CatalogOutputError(out, e.strerror or str(e)) from e
    if not os.access(out, os.W_OK | os.X_OK):
        raise CatalogOutputError(out, "it is not writable")


def _repo_url(session: Session) -> str:
    """The registry's URL for ``dvc get``/``dvc import`` lines: a clone's ``origin``, else its
    path; a registry opened by URL, that URL."""
    if session.repo.work_tree is None:
        return session.repo.url
    origin = session.repo.git("config", "--get", "remote.origin.url", check=False).strip()
    return origin or str(session.repo.work_tree)


def _write_site(session: Session, catalog: dict[str, Any], write: _Writer) -> None:
    """Every file of the site, each through ``write``."""
    repo_url = _repo_url(session)
    for name in _STATIC:
        write(name, resources.files("registry.catalog").joinpath("static", name).read_bytes())
    # A page is made again when its data or the code that makes pages changed.
    code = _code_digest()
    entries = index_entries(catalog)
    for d in catalog["datasets"]:
        page = page_path("dataset", d["name"])
        charts = _dataset_charts(d, page, write)
        preview = preview_html(session, d, page, write)
        write.page(page, _asset("dataset", d["name"], "page.html"),
                   [code, d, charts, preview, repo_url],
                   functools.partial(pages.dataset_page, d, charts, preview, repo_url))
    known = {kind: {a["name"] for a in catalog[f"{kind}s"]} for kind in ("dataset", "model")}
    for m in catalog["models"]:
        page = page_path("model", m["name"])
        chart = _metrics_chart(m, page, write)
        # Which of its graph's nodes have a page (a link) is part of what it is made from.
        linked = sorted(n for n, node in m["lineage"]["nodes"].items()
                        if node["name"] in known[node["kind"]])
        write.page(page, _asset("model", m["name"], "page.html"),
                   [code, m, chart, repo_url, linked],
                   functools.partial(_model_page, m, known, chart, repo_url))
    write("search-index.js", pages.search_index_js(entries))
    write("index.html", pages.home_page(catalog, entries))
    # Compact: json's C encoder writes it (with indent, the pure-Python one takes ~1 s).
    write("catalog.json", json.dumps(catalog, sort_keys=True, separators=(",", ":")) + "\n")
    write.finish()


def _model_page(
    m: dict[str, Any], known: dict[str, set[str]], chart: str | None, repo_url: str
) -> str:
    """A model's page with its lineage graph laid out (only when the page is made again)."""
    lineage = _lineage(m, known, page_path("model", m["name"]))
    return pages.model_page(m, lineage, chart, repo_url)


def _code_digest() -> str:
    """A hash of the code that writes pages (this package's modules and static files)."""
    digest = hashlib.sha256()
    package = resources.files("registry.catalog")
    for entry in sorted(package.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".py"):
            digest.update(entry.name.encode() + b"\0" + entry.read_bytes())
    return digest.hexdigest()


def _asset(kind: str, name: str, file: str) -> str:
    return f"assets/{kind}s/{name}/{file}"


def _dataset_charts(d: dict[str, Any], page: str, write: _Writer) -> dict[str, str]:
    """A bar chart per categorical feature (class counts, all splits summed): feature -> its
    path relative to the page."""
    splits = ((d["statistics"] or {}).get("splits") or {}).values()
    totals: dict[str, dict[str, int]] = {}
    for split in splits:
        for feature, f in (split.get("features") or {}).items():
            if isinstance(f.get("classes"), dict):
                counts = totals.setdefault(feature, {})
                for label, n in f["classes"].items():
                    counts[label] = counts.get(label, 0) + int(n)
    charts = {}
    for feature, counts in sorted(totals.items()):
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
        rel = _asset("dataset", d["name"], f"{feature}.svg")
        write.chart(rel, [k for k, _ in top], [float(v) for _, v in top],
                    f"{feature}: examples per class")
        charts[feature] = "../" * page.count("/") + rel
    return charts


def _metrics_chart(m: dict[str, Any], page: str, write: _Writer) -> str | None:
    """A bar chart of each numeric metric of each live version (oldest first, the last five);
    its path relative to the page."""
    bars = [
        (f"{v['version']} {k}", float(x))
        for v in reversed(m["versions"]) if not v["yanked"]
        for k, x in sorted((v.get("metrics") or {}).items())
        if isinstance(x, int | float) and not isinstance(x, bool)
    ]
    if not bars and m.get("workspace"):
        # Not released: this clone's build, its card's metrics.
        bars = [(k, float(x)) for k, x in sorted(m["workspace"]["metrics"].items())
                if isinstance(x, int | float) and not isinstance(x, bool)]
    if not bars:
        return None
    bars = bars[-30:]
    rel = _asset("model", m["name"], "metrics.svg")
    write.chart(rel, [b for b, _ in bars], [x for _, x in bars], "metrics per version")
    return "../" * page.count("/") + rel


def _lineage(m: dict[str, Any], known: dict[str, set[str]], page: str) -> str:
    """The model's lineage graph (``m["lineage"]``, from :mod:`registry.lineage`): what it was
    made of all the way up, and the models made from it all the way down; each node a link to
    its artifact's page when the catalog has one."""
    prefix = "../" * page.count("/")
    graph = m["lineage"]
    nodes = {}
    for node_id, node in graph["nodes"].items():
        has_page = node["name"] in known[node["kind"]] and node_id != graph["root"]
        note = node["kind"] + ("" if node["released"] else " · unreleased")
        if node["yanked"]:
            note += " · yanked"
        nodes[node_id] = {"kind": node["kind"], "label": node_id, "note": note,
                          "href": prefix + page_path(node["kind"], node["name"])
                          if has_page else None}
    return drawing.lineage_svg(nodes, [(a, b) for a, b, _ in graph["edges"]], graph["root"])


def serve(
    *, port: int = 8000, open_browser: bool = False, registry: RegistryArg = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Build the catalog into a temporary folder and serve it on 127.0.0.1 until interrupted.

    Args:
        port: The port (``0``: any free one).
        open_browser: Open the home page in the default browser.
        registry: A registry clone or Git URL; default from the configuration.
        ready: Called with the home page's URL once the server listens (the CLI prints it).

    Raises:
        ConfigError: If the port cannot be bound.
    """
    import http.server
    import tempfile
    import webbrowser

    with tempfile.TemporaryDirectory(prefix="registry-catalog-") as tmp:
        build(tmp, registry=registry)
        handler = functools.partial(_quiet_handler(), directory=tmp)
        try:
            server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as e:
            raise ConfigError(
                f"cannot serve the catalog on 127.0.0.1:{port}: {e.strerror or e}; "
                "pick another port with --port (0: any free one)"
            ) from e
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        if ready is not None:
            ready(url)
        if open_browser:
            webbrowser.open(url)
        with server, contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


def _quiet_handler() -> type:
    import http.server

    class Handler(http.server.SimpleHTTPRequestHandler):
        """Serves the site's folder; no request log on stderr."""

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
