"""A card's Markdown as HTML that runs nothing, whatever the card says.

markdown-it-py (the parser ``rich`` already brings) renders CommonMark and tables with raw HTML
turned off, so ``<script>`` or an ``onerror=`` attribute is shown as text, and with links and
images limited to safe schemes: ``http``, ``https``, ``mailto`` and links within the site
(relative or ``#anchor``). A ``javascript:``, ``data:`` or ``file:`` link is dropped to its text.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

__all__ = ["SAFE_SCHEMES", "is_safe_link", "render_markdown"]

#: The URL schemes a card's link or image may use.
SAFE_SCHEMES = ("http", "https", "mailto")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
# Characters a browser drops from a URL before reading its scheme ("java\tscript:").
_IGNORED = re.compile(r"[\x00-\x20\x7f]+")


def is_safe_link(url: str) -> bool:
    """Whether a card's link may stay a link: a safe scheme, or no scheme (within the site).

    Example:
        >>> is_safe_link("https://lab.example/x"), is_safe_link("../cnn.html")
        (True, True)
        >>> is_safe_link("javascript:alert(1)"), is_safe_link(" JaVa\\tScRiPt:x")
        (False, False)
    """
    cleaned = _IGNORED.sub("", url)
    scheme = _SCHEME.match(cleaned)
    if scheme is None:
        return not cleaned.startswith("//")  # protocol-relative: another host, scheme unknown
    return scheme.group(1).lower() in SAFE_SCHEMES


@cache
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    md.validateLink = is_safe_link  # type: ignore[method-assign]
    return md


def render_markdown(text: str) -> str:
    """Render ``text`` (a card) to HTML: raw HTML escaped, unsafe links left as text.

    Example:
        >>> render_markdown('<script>x()</script> [a](javascript:x())')
        '<p>&lt;script&gt;x()&lt;/script&gt; [a](javascript:x())</p>\\n'
    """
    return _parser().render(text)
