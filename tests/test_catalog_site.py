"""The static catalog (registry catalog build|serve) and `registry datasets search`, on a real
registry: digits released through DVC and Beam, models released, promoted and yanked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import registry
from registry.cards import parse_card, render_card
from registry.catalog import build, search_datasets
from registry.errors import CatalogOutputError, ConfigError, NotARegistryError
from tests.conftest import PROJECT_ROOT, ReleasedRegistry, cli_ok, cli_raises, commit_all, git

pytestmark = pytest.mark.slow
DIGITS = "image_classification/digits"
EVIL = (
    "# evil\n\nA card that tries to run code.\n\n<script>alert('card')</script>\n\n"
    '<img src=x onerror="alert(1)">\n\n[click me](javascript:alert(1)) '
    "[spaced](java\tscript:alert(2)) [fine](https://lab.example/docs)\n"
)


def _model(clone: Path, tmp_path: Path, name: str, body: str | None = None, **fields: object
           ) -> None:
    """A model with a filled card and DVC-tracked weights, committed."""
    weights = tmp_path / "trained-elsewhere" / f"{name}.keras"
    weights.parent.mkdir(exist_ok=True)
    weights.write_bytes(name.encode() * 100 + os.urandom(16))
    registry.add_model(name, weights, force=True)
    path = clone / "models" / name / "README.md"
    card = parse_card(path.read_text())
    meta = {**card.meta, "task": "image-classification", "architecture": "small-cnn",
            "framework": "keras", "datasets": [f"{DIGITS}:1.0.0"],
            "metrics": {"accuracy": 0.9, "loss": 0.3}, "owner": "vision",
            "license": "apache-2.0", **fields}
    path.write_text(render_card(meta, card.body if body is None else body))
    commit_all(clone, f"Add {name}")


@pytest.fixture
def zoo(released_registry: ReleasedRegistry, chdir, tmp_path: Path) -> ReleasedRegistry:
    """digits 1.0.0 (pulled into the cache); cnn trained on it, in prod; ft fine-tuned from
    cnn; evil, whose card holds script, and whose 0.1.0 is yanked."""
    chdir(released_registry.clone)
    registry.pull_dataset(f"{DIGITS}:1.0.0")
    _model(released_registry.clone, tmp_path, "cnn")
    registry.release_model("cnn")
    registry.promote_model("cnn:1.0.0", "prod")
    _model(released_registry.clone, tmp_path, "ft", base_model="cnn:1.0.0",
           metrics={"accuracy": 0.95})
    registry.release_model("ft")
    _model(released_registry.clone, tmp_path, "evil", body=EVIL)
    registry.release_model("evil", version="0.1.0")
    _model(released_registry.clone, tmp_path, "evil", body=EVIL)
    registry.release_model("evil", bump="minor")
    registry.yank_model("evil:0.1.0", reason="trained on the wrong split")
    return released_registry


def _pages(site: Path) -> dict[str, str]:
    return {p.relative_to(site).as_posix(): p.read_text() for p in site.rglob("*.html")}


def test_every_page_is_filled_from_git_and_links_within_the_site(
    zoo: ReleasedRegistry, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    report = build(site)
    assert (report.datasets, report.models) == (1, 3)
    pages = _pages(site)
    assert set(pages) == {"index.html", f"datasets/{DIGITS}.html", "models/cnn.html",
                          "models/ft.html", "models/evil.html"}
    for name, html in pages.items():
        # Only the site's own files: the CSP, no inline script or style, nothing remote.
        assert "Content-Security-Policy" in html and "default-src 'self'" in html, name
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), name
        assert " style=" not in html and "<style" not in html, name
        assert not re.search(r'(src="|<link[^>]*href=")(https?:)?//', html), name
        # Every relative link and image leads to a file of the site.
        for target in re.findall(r'(?:src|href)="([^"#:]+)"', html):
            assert (site / name).parent.joinpath(target).resolve().is_file(), (name, target)

    dataset = pages[f"datasets/{DIGITS}.html"]
    for expected in ("researcher@lab.test", "<code>image</code>", "<code>label</code>",
                     "ClassLabel", ">train<", 'registry.load_dataset(&quot;', "dvc get ",
                     "dvc import ", 'class="copy"', "models/cnn.html", "models/ft.html"):
        assert expected in dataset, expected
    thumbs = sorted(site.glob(f"assets/datasets/{DIGITS}/preview-*.png"))
    assert len(thumbs) == 12 and all(t.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for t in thumbs)
    assert (site / f"assets/datasets/{DIGITS}/label.svg").read_bytes().startswith(b"<?xml")

    cnn = pages["models/cnn.html"]
    assert re.search(r"<td>prod</td><td>promoted</td><td>1\.0\.0</td>"
                     r"<td>researcher@lab\.test</td>", cnn)
    assert "<th scope=\"col\">accuracy</th>" in cnn and "<td>0.9</td>" in cnn
    # The lineage graph: digits -> cnn -> ft, each other node a link to its page.
    nodes = set(re.findall(r'data-node="([^"]+)"', cnn))
    assert nodes == {f"{DIGITS}:1.0.0", "cnn:1.0.0", "ft:1.0.0"}
    assert '<a href="../datasets/image_classification/digits.html"><g' in cnn
    assert '<a href="../models/ft.html"><g' in cnn
    evil = pages["models/evil.html"]
    assert "yanked: trained on the wrong split" in evil

    data = json.loads((site / "catalog.json").read_text())
    assert data["schema"] == 1 and data["counts"] == {"datasets": 1, "models": 3, "releases": 4}
    (digits,) = data["datasets"]
    assert digits["models"] == ["cnn", "ft", "evil"] or sorted(digits["models"]) == [
        "cnn", "evil", "ft"]
    assert digits["splits"]["train"]["examples"] > 0 and "image" in digits["features"]
    assert digits["versions"][0]["by"] == "researcher@lab.test"
    models = {m["name"]: m for m in data["models"]}
    assert models["cnn"]["children"] == ["ft"] and models["ft"]["base_model"] == "cnn:1.0.0"
    assert models["cnn"]["stage_history"][0]["stage"] == "prod"
    assert [v["yanked"] for v in models["evil"]["versions"]] == [
        None, "trained on the wrong split"]
    index = (site / "search-index.js").read_text()
    assert index.startswith("window.CATALOG_INDEX = ")
    entries = json.loads(index.removeprefix("window.CATALOG_INDEX = ").rstrip().rstrip(";"))
    assert {e["name"] for e in entries["entries"]} == {DIGITS, "cnn", "ft", "evil"}


def test_a_clone_after_make_run_shows_its_unreleased_builds(
    released_registry: ReleasedRegistry, chdir, tmp_path: Path
) -> None:
    """A clone with no release tags (as after ``make run``: built and trained, nothing
    released) shows its own builds: marked unreleased, with the work tree's build_info, cards,
    metrics, previews from ``prepared/`` and the lineage digits -> cnn -> ft from the cards."""
    clone = released_registry.clone
    chdir(clone)
    for tag in git(clone, "tag", "--list").split():
        git(clone, "tag", "-d", tag)
    _model(clone, tmp_path, "cnn")
    _model(clone, tmp_path, "ft", base_model="cnn:1.0.0", metrics={"accuracy": 0.95})
    site = tmp_path / "site"
    report = build(site)
    assert (report.datasets, report.models) == (1, 2)
    data = json.loads((site / "catalog.json").read_text())
    assert data["counts"]["releases"] == 0 and data["recent"] == []
    (digits,) = data["datasets"]
    label = "unreleased (this clone's build)"
    assert digits["latest"] is None and digits["workspace"]["label"] == label
    assert digits["workspace"]["version"] == "1.0.0" and digits["workspace"]["examples"] > 0
    assert digits["splits"]["train"]["examples"] > 0 and sorted(digits["models"]) == ["cnn", "ft"]
    models = {m["name"]: m for m in data["models"]}
    assert models["cnn"]["workspace"] == {"label": label,
                                          "metrics": {"accuracy": 0.9, "loss": 0.3}}
    assert models["cnn"]["children"] == ["ft"]

    page = (site / f"datasets/{DIGITS}.html").read_text()
    assert "unreleased (this clone&#x27;s build)" in page and "1.0.0 <span" in page
    assert "version 1.0.0, unreleased (this clone&#x27;s build)." in page  # the preview's source
    thumbs = sorted(site.glob(f"assets/datasets/{DIGITS}/preview-*.png"))
    assert len(thumbs) == 12 and all(t.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for t in thumbs)
    home = (site / "index.html").read_text()
    assert home.count('<span class="badge unreleased">') == 3

    ft = (site / "models/ft.html").read_text()
    assert "<td>unreleased (this clone&#x27;s build)</td><td>0.95</td>" in ft
    assert set(re.findall(r'data-node="([^"]+)"', ft)) == {f"{DIGITS}:1.0.0", "cnn:1.0.0", "ft"}
    assert '<a href="../models/cnn.html"><g' in ft
    assert '<a href="../datasets/image_classification/digits.html"><g' in ft
    assert "model · unreleased" in ft
    cnn = (site / "models/cnn.html").read_text()
    assert set(re.findall(r'data-node="([^"]+)"', cnn)) == {f"{DIGITS}:1.0.0", "cnn", "ft"}
    assert '<a href="../models/ft.html"><g' in cnn
    assert (site / "assets/models/cnn/metrics.svg").is_file()

    # The command, as a person runs it: the previews' TensorFlow says nothing on its stderr
    # ("oneDNN custom operations are on ...", which TF_CPP_MIN_LOG_LEVEL no longer silences).
    done = subprocess.run(
        [sys.executable, "-m", "registry", "catalog", "build", str(tmp_path / "again")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "1 datasets, 2 models:" in done.stdout
    assert len(list((tmp_path / "again").glob(f"assets/datasets/{DIGITS}/preview-*.png"))) == 12
    assert "oneDNN" in (clone / ".registry/logs/catalog-previews.log").read_text()


def test_a_card_that_holds_script_runs_nothing(zoo: ReleasedRegistry, tmp_path: Path) -> None:
    build(tmp_path / "site")
    html = (tmp_path / "site" / "models" / "evil.html").read_text()
    card = html.split('<div class="card">', 1)[1].split("</div>", 1)[0]
    assert "&lt;script&gt;alert('card')&lt;/script&gt;" in card
    assert "<script" not in card and "<img" not in card
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in card
    assert "javascript:" not in re.sub(r"\[[^\]]*\]\([^)]*\)", "", card)  # left as text only
    assert re.findall(r'href="([^"]*)"', card) == ["https://lab.example/docs"]


def test_a_second_build_writes_nothing_and_a_release_rewrites_only_its_pages(
    zoo: ReleasedRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    build(site)
    # Charts drawn by the pool of processes (a batch a chart) are the bytes drawn in-process.
    pooled = tmp_path / "pooled"
    with monkeypatch.context() as patch:
        patch.setattr("registry.catalog.site._PARALLEL_CHARTS", 1)
        patch.setattr("registry.catalog.site._CORES", 2)
        build(pooled)
    svgs = sorted(p.relative_to(site) for p in site.rglob("*.svg"))
    assert len(svgs) == 4 and svgs == sorted(p.relative_to(pooled) for p in pooled.rglob("*.svg"))
    assert all((site / p).read_bytes() == (pooled / p).read_bytes() for p in svgs)
    before = {p: p.stat().st_mtime_ns for p in site.rglob("*") if p.is_file()}
    again = build(site)
    assert again.written == [] and again.unchanged > 0
    assert {p: p.stat().st_mtime_ns for p in site.rglob("*") if p.is_file()} == before

    _model(zoo.clone, tmp_path, "cnn", metrics={"accuracy": 0.97, "loss": 0.2})
    registry.release_model("cnn", bump="minor")
    after = build(site)
    assert after.written == ["assets/models/cnn/inputs.json", "assets/models/cnn/metrics.svg",
                             "catalog.json", "index.html", "models/cnn.html", "search-index.js"]
    # A page of an artifact the registry no longer has goes; the site's other files stay.
    (site / "models/gone.html").write_text("old")
    (site / "assets/models/team/gone").mkdir(parents=True)
    (site / "assets/models/team/gone/metrics.svg").write_text("old")
    (site / "notes.txt").write_text("the lab's own")
    last = build(site)
    assert last.written == [] and last.removed == [
        "assets/models/team/gone/metrics.svg", "models/gone.html"]
    assert not (site / "assets/models/team").exists() and (site / "notes.txt").is_file()


def test_datasets_search_uses_the_sites_index(zoo: ReleasedRegistry) -> None:
    assert [d.name for d in search_datasets("digits")] == [DIGITS]
    assert [d.name for d in search_datasets(features=["image", "label"])] == [DIGITS]
    assert search_datasets(features=["image", "headline"]) == []
    assert [d.name for d in search_datasets(task="IMAGE-classification")] == [DIGITS]
    assert search_datasets(task="text-generation") == []
    assert search_datasets("cnn") == []  # a model is not a dataset
    size = search_datasets()[0].size_bytes
    assert size and search_datasets(min_size=size + 1) == []
    assert [d.name for d in search_datasets(max_size=f"{size}B")] == [DIGITS]
    out = cli_ok("datasets", "search", "--feature", "image", "--max-size", "1GB")
    assert DIGITS in out and "EXAMPLES" in out
    found = json.loads(cli_ok("datasets", "search", "handwritten", "--json"))
    assert [d["name"] for d in found] == [DIGITS]
    error = cli_raises(ConfigError, "datasets", "search", "--min-size", "ten megabytes")
    assert "invalid size 'ten megabytes'" in str(error)


def test_build_errors_are_one_line_with_their_exit_code(
    zoo: ReleasedRegistry, tmp_path: Path
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    error = cli_raises(CatalogOutputError, "catalog", "build", str(afile))
    assert error.exit_code == 2 and "it is a file, not a folder" in str(error)
    error = cli_raises(CatalogOutputError, "catalog", "build", str(afile / "site"))
    assert error.exit_code == 2
    missing = cli_raises(NotARegistryError, "catalog", "build", str(tmp_path / "site"),
                         "--registry", str(tmp_path / "no-such-registry"))
    assert missing.exit_code == 2 and "does not exist" in str(missing)
    done = subprocess.run(
        [sys.executable, "-m", "registry", "catalog", "build", str(afile)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr


def test_serve_builds_and_serves_on_localhost(zoo: ReleasedRegistry) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "registry", "catalog", "serve", "--port", "0"],
        stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/index\.html", line)
        assert url, line
        with urllib.request.urlopen(url.group(0), timeout=30) as page:
            assert b"Datasets and models" in page.read()
        base = url.group(0).removesuffix("index.html")
        with urllib.request.urlopen(f"{base}models/cnn.html", timeout=30) as page:
            assert b'data-node="ft:1.0.0"' in page.read()
    finally:
        server.terminate()
        server.wait(timeout=30)
    git(zoo.clone, "status")  # the registry is untouched by serving


def test_prefetched_files_read_as_read_file_reads_them(zoo: ReleasedRegistry) -> None:
    from registry.repo.git import GitRepo

    head = git(zoo.clone, "rev-parse", "HEAD").strip()
    paths = ["models/cnn/README.md", "models/no-such/README.md", "models/cnn", "dvc.yaml"]
    plain = GitRepo.open(str(zoo.clone), zoo.clone / "cache")
    expected = {p: plain.read_file(head, p) for p in paths}
    assert expected["models/cnn/README.md"] and expected["models/no-such/README.md"] is None
    ahead = GitRepo.open(str(zoo.clone), zoo.clone / "cache")
    ahead.prefetch([(head, p) for p in paths])
    assert len(ahead._prefetched) == len(paths)
    assert {p: ahead.read_file(head, p) for p in paths} == expected


class _CountingServer:
    """An HTTP server on 127.0.0.1 that answers every request 200 and counts them: where the
    environment's tracking URI points while the catalog is built (it must ask nothing)."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.paths: list[str] = []
        paths = self.paths

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                paths.append(self.path)
                self.send_response(200)
                self.end_headers()

            do_POST = do_GET

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_model_page_links_its_training_run_on_the_server_that_logged_it(
    released_registry: ReleasedRegistry, chdir, tmp_path: Path, mlflow_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Training logged to an HTTP tracking server: the release records the server, experiment
    and run, and the model page links the run's page in the MLflow UI; the build asks no
    server, whatever $MLFLOW_TRACKING_URI says then. (Credentials: tests/test_tracking.py.)"""
    from mlflow.tracking import MlflowClient

    from registry import tracking

    clone = released_registry.clone
    chdir(clone)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    with tracking.run("linked", params={"epochs": 1}, datasets=[f"{DIGITS}:1.0.0"]) as tracked:
        tracked.log_final({"accuracy": 0.9})
    run_id = tracked.wait()
    assert run_id and run_id != tracked.uid
    experiment_id = MlflowClient(mlflow_server).get_run(run_id).info.experiment_id
    _model(clone, tmp_path, "linked")
    weights = parse_card((clone / "models/linked/README.md").read_text()).meta["weights"]
    registry.record_training_run("linked", tracked.uid, clone / "models/linked" / weights)
    _model(clone, tmp_path, "unlogged", training_run="0123456789abcdef")  # a card's own run id
    registry.release_model("linked")
    registry.release_model("unlogged")
    record = registry.model_info("linked").lineage
    assert record["training_run"] == tracked.uid
    assert record["mlflow_run"] == {"tracking_uri": mlflow_server, "experiment_id": experiment_id,
                                    "run_id": run_id}

    counting = _CountingServer()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", counting.url)
        site = tmp_path / "site"
        build(site)
    finally:
        counting.close()
    assert counting.paths == []  # built offline: no server asked
    page = (site / "models/linked.html").read_text()
    url = f"{mlflow_server}/#/experiments/{experiment_id}/runs/{run_id}"
    assert f'<a class="external" href="{url}" rel="noopener noreferrer">{tracked.uid}</a>' in page
    unlogged = (site / "models/unlogged.html").read_text()
    assert "<td>0123456789abcdef</td>" in unlogged and "#/runs/" not in unlogged
    assert json.loads((site / "catalog.json").read_text())["models"][0]["versions"][0][
        "training_run_url"] == url
