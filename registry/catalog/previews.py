"""Example previews of a dataset's latest version, only when it is in the local cache.

A thumbnail grid (PNG files written at build time) for image features, a table of rows for
tabular and text data, as the TFDS catalog and the Hugging Face dataset viewer show. Nothing is
fetched: a version not cached has no preview (its page says how to get one).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any, Protocol

from registry.console import chatter_to_log
from registry.datasets import load_prepared, locate_dataset, released_data_hash
from registry.errors import RegistryError
from registry.repo.session import Session

__all__ = ["Writes", "preview_html"]

#: How many examples a preview shows.
EXAMPLES = 12
_ROWS = 6
_CELL = 80  # characters of a text cell


class Writes(Protocol):
    """How previews write files (:class:`registry.catalog.site._Writer`)."""

    def __call__(self, rel: str, data: bytes | str) -> None: ...

    def derived(self, rel: str, inputs: Any, draw: Callable[[], bytes]) -> bytes: ...


def preview_html(session: Session, d: dict[str, Any], page: str, write: Writes) -> str:
    """The example preview section of dataset ``d``'s page, its thumbnails written with
    ``write``: of its latest version when that is in the local cache, else of this clone's
    own unreleased build (``datasets/NAME/prepared``, as ``make run`` leaves it); ``""`` when
    neither is there (or it has no split).

    The examples are read (TensorFlow) only when the data or the page changed since the
    last build into the same folder: the section is kept as ``preview.part`` beside them.
    """
    if not d["splits"]:
        return ""
    found = _cached_release(session, d) or _workspace_build(session, d)
    if found is None:
        return ""
    folder, data_hash, what = found
    rel = f"assets/datasets/{d['name']}/preview.part"
    inputs = ["preview", data_hash, what, d["features"], d.get("configs"), page, EXAMPLES]
    return write.derived(
        rel, inputs,
        lambda: _draw(folder, what, d, page, write, session.repo.work_tree).encode("utf-8")
    ).decode("utf-8")


def _cached_release(session: Session, d: dict[str, Any]) -> tuple[Path, str, str] | None:
    """The latest release's folder in the local cache (its default config's), its hash and
    what the preview says it is; ``None`` if not cached."""
    latest = session.index().latest(d["name"])
    if latest is None:
        return None
    try:
        data_hash = released_data_hash(session, latest)
        found = session.content_cache().cached(data_hash)
    except (RegistryError, ValueError):
        return None
    if found is None:
        return None
    folder = found.path / d["configs"][0] if d.get("configs") else found.path
    return folder, data_hash, f"version {latest.version} (from this machine's cache)"


def _workspace_build(session: Session, d: dict[str, Any]) -> tuple[Path, str, str] | None:
    """This clone's unreleased build (:func:`registry.datasets.locate_dataset`'s workspace
    source: its folder and ``dvc.lock`` hash); ``None`` if there is none."""
    built = d.get("workspace")
    root = session.repo.work_tree
    if not built or root is None:
        return None
    try:
        found = locate_dataset(d["name"], source="workspace", registry=root)
    except RegistryError:
        return None
    return found.path, found.md5, f"version {found.version}, {built['label']}"


def _draw(
    folder: Path, what: str, d: dict[str, Any], page: str, write: Writes, root: Path | None
) -> str:
    """Read the first examples of the build at ``folder``; write thumbnails; return the
    section's HTML (``""`` if they cannot be read)."""
    split = "train" if "train" in d["splits"] else next(iter(d["splits"]))
    try:
        # TensorFlow reads them: what it says on import goes to a log, not the command's stderr.
        with chatter_to_log("catalog", "previews", root=root):
            examples = list(_take(load_prepared(folder, split, output="numpy"), EXAMPLES))
    except Exception:  # a preview is enrichment: any failure leaves it out
        return ""
    images = [n for n, f in sorted(d["features"].items()) if f.get("type") == "Image"]
    prefix = "../" * page.count("/")
    html = [f'<p class="muted">{len(examples)} examples of split <code>{escape(split)}</code>, '
            f"{escape(what)}.</p>"]
    if images:
        feature = images[0]
        cells = []
        for i, example in enumerate(examples):
            rel = f"assets/datasets/{d['name']}/preview-{i}.png"
            write(rel, _png(example[feature]))
            label = _caption(example, d["features"], skip=feature)
            cells.append(f'<figure><img src="{prefix}{escape(rel)}" alt="example {i}: '
                         f'{escape(label)}"><figcaption>{escape(label)}</figcaption></figure>')
        html.append(f'<div class="thumbs">{"".join(cells)}</div>')
    else:
        names = [n for n in sorted(d["features"]) if n not in images]
        head = "".join(f"<th scope=\"col\">{escape(n)}</th>" for n in names)
        rows = "".join(
            "<tr>" + "".join(f"<td>{escape(_text(e.get(n)))}</td>" for n in names) + "</tr>"
            for e in examples[:_ROWS]
        )
        html.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
                    f"<tbody>{rows}</tbody></table></div>")
    return "\n".join(html)


def _take(data: Any, n: int) -> Any:
    for i, example in enumerate(data):
        if i >= n:
            return
        yield example


def _png(array: Any) -> bytes:
    """An image feature as PNG bytes (the same bytes for the same pixels)."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(array)
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(out, format="PNG", optimize=False)
    return out.getvalue()


def _caption(example: dict[str, Any], features: dict[str, Any], skip: str) -> str:
    """The example's other scalar features, with class names where the feature has them."""
    parts = []
    for name, f in sorted(features.items()):
        if name == skip or name not in example:
            continue
        value = example[name]
        names = f.get("names")
        if names and (isinstance(value, int) or getattr(value, "ndim", None) == 0):
            with contextlib.suppress(ValueError, TypeError, IndexError):
                value = names[int(value)]
        parts.append(f"{name} {_text(value)}")
    return ", ".join(parts)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = str(value)
    return text if len(text) <= _CELL else text[: _CELL - 1] + "…"
