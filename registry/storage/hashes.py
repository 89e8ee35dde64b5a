"""DVC 3 content hashes: how an md5 is spelt, and what digest an object's bytes must have."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

__all__ = ["CHUNK", "MD5_RE", "content_digest", "hash_file"]

#: A DVC 3 md5: 32 hex digits, with ``.dir`` for a folder's listing.
MD5_RE = re.compile(r"^[0-9a-f]{32}(\.dir)?$")
#: Files are read and hashed this many bytes at a time.
CHUNK = 1 << 20


def content_digest(md5: str) -> str:
    """The hex digest an object's bytes must have (a ``.dir`` hash is the listing's md5)."""
    return md5.removesuffix(".dir")


def hash_file(path: Path | str) -> str:
    """The md5 of a file's bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
