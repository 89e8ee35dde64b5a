"""The catalog in a real headless Chromium (Debian's, driven by Playwright): from ``file://``
and from ``registry catalog serve``, with no console error, no request leaving the machine, a
search box that filters, links that lead home -> dataset -> model -> back, a lineage graph with
the right nodes, real thumbnails, and a card's script that never runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry.catalog import build
from tests.conftest import PROJECT_ROOT, ReleasedRegistry
from tests.test_catalog_site import DIGITS, zoo  # noqa: F401 - the registry these tests browse

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("REGISTRY_CHROMIUM", "/usr/bin/chromium")
_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium under Playwright; skipped, saying why, where either is missing (a
    failure under CI=true: tests/conftest.py)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: make install-test")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.skip(f"chromium is not installed at {CHROMIUM}: apt-get install chromium "
                    "(make install-test does it as root)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=_ARGS, headless=True)
        yield launched
        launched.close()


class _Watch:
    """A page whose console errors, failed requests, dialogs and requests to anywhere but the
    site are recorded (the last ones aborted)."""

    def __init__(self, browser: Any, allowed: str) -> None:
        self.context = browser.new_context(viewport={"width": 1000, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # A load cut short by the next navigation is aborted; any other failure is an error.
        self.page.on("requestfailed", lambda r: "ERR_ABORTED" not in (r.failure or "")
                     and self.errors.append(f"failed: {r.url} ({r.failure})"))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

        def route(r: Any) -> None:
            if r.request.url.startswith(allowed):
                r.continue_()
            else:
                self.outside.append(r.request.url)
                r.abort()

        self.page.route("**/*", route)

    def check_clean(self) -> None:
        assert self.errors == [] and self.outside == [] and self.dialogs == [], (
            self.errors, self.outside, self.dialogs)


def _browse(watch: _Watch, home: str, shots: Path | None) -> None:
    """Every check of a site at ``home`` (its index.html's URL)."""
    page = watch.page
    page.goto(home)
    items = page.locator("#artifacts li")
    assert items.count() == 4
    page.fill("#q", "fine-tuned")  # no card says it: nothing shown
    assert page.locator("#artifacts li:visible").count() == 0
    page.fill("#q", "digits")
    assert page.locator("#artifacts li:visible").count() == 4  # every model was trained on it
    page.fill("#q", "")
    page.select_option("select[data-facet=kind]", "dataset")
    assert page.locator("#artifacts li:visible").count() == 1
    assert page.inner_text("#shown") == "1 of 4 shown"
    page.select_option("select[data-facet=kind]", "")
    page.select_option("select[data-facet=stage]", "prod")
    assert [t.strip() for t in page.locator("#artifacts li:visible > a").all_inner_texts()] == [
        "cnn"]
    page.select_option("select[data-facet=stage]", "")
    if shots:
        page.screenshot(path=str(shots / "home.png"), full_page=True)

    # Home -> the dataset -> a model trained on it -> back.
    page.click(f"#artifacts a:text-is('{DIGITS}')")
    assert page.url.endswith(f"datasets/{DIGITS}.html")
    page.wait_for_load_state("load")
    thumbs = page.locator(".thumbs img")
    assert thumbs.count() == 12
    sizes = thumbs.evaluate_all("imgs => imgs.map(i => [i.complete, i.naturalWidth])")
    assert all(done and width == 8 for done, width in sizes), sizes
    charts = page.locator("#statistics img").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    assert charts and all(w > 0 for w in charts)
    if shots:
        page.screenshot(path=str(shots / "dataset.png"), full_page=True)
    page.click("#models a:text-is('cnn')")
    assert page.url.endswith("models/cnn.html")
    page.wait_for_load_state("load")  # the URL changes before the page is there (a flake)
    nodes = page.locator("svg.lineage g.node").evaluate_all(
        "gs => gs.map(g => g.dataset.node)")
    assert sorted(nodes) == sorted([f"{DIGITS}:1.0.0", "cnn:1.0.0", "ft:1.0.0"])
    assert page.locator("svg.lineage a").count() == 2  # every node but the page's own
    if shots:
        page.screenshot(path=str(shots / "model.png"), full_page=True)
    page.click("svg.lineage a:has(g[data-node='ft:1.0.0'])")
    assert page.url.endswith("models/ft.html")
    page.go_back()
    page.go_back()
    assert page.url.endswith(f"datasets/{DIGITS}.html")

    # A card's <script>, onerror= and javascript: link run nothing.
    page.goto(home.replace("index.html", "models/evil.html"))
    assert page.locator(".card script, .card img, .card a[href^='javascript']").count() == 0
    assert "<script>alert('card')</script>" in page.inner_text(".card")
    watch.check_clean()


def test_the_catalog_from_file_urls(
    zoo: ReleasedRegistry, browser: Any, tmp_path: Path  # noqa: F811
) -> None:
    site = tmp_path / "site"
    build(site)
    shots = Path(os.environ.get("REGISTRY_SCREENSHOTS", tmp_path / "shots"))
    shots.mkdir(parents=True, exist_ok=True)
    watch = _Watch(browser, "file://")
    _browse(watch, (site / "index.html").as_uri(), shots)
    for name in ("home.png", "dataset.png", "model.png"):
        assert (shots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # At phone width nothing is wider than the screen but the tables' scrolling boxes.
    phone = browser.new_page(viewport={"width": 375, "height": 800})
    phone.goto((site / f"datasets/{DIGITS}.html").as_uri())
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    # By keyboard: the skip link first, then the home link.
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.textContent") == "Skip to content"


def test_the_catalog_from_catalog_serve(
    zoo: ReleasedRegistry, browser: Any  # noqa: F811
) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "registry", "catalog", "serve", "--port", "0"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    try:
        assert server.stdout is not None
        found = re.search(r"http://127\.0\.0\.1:\d+/index\.html", server.stdout.readline())
        assert found
        home = found.group(0)
        _browse(_Watch(browser, home.removesuffix("index.html")), home, None)
    finally:
        server.terminate()
        server.wait(timeout=30)
