"""DVC 3 content hashes: how an md5 is spelt, and what digest an object's bytes must have."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

__all__ = ["CHUNK", "MD5_RE", "content_digest", "dir_hash", "dir_listing", "hash_file"]

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


def dir_listing(path: Path | str) -> list[dict[str, Any]]:
    """A folder's DVC 3 listing: ``{"md5", "relpath"}`` a file, sorted by path (what the
    folder's ``.dir`` object holds, as ``dvc add`` and ``dvc repro`` write it).

    Example:
        >>> dir_listing("datasets/image_classification/digits/prepared")  # doctest: +SKIP
        [{'md5': '...', 'relpath': 'dataset_info.json'}, ...]
    """
    root = Path(path)
    entries = [
        {"md5": hash_file(file), "relpath": file.relative_to(root).as_posix()}
        for file in root.rglob("*")
        if file.is_file()
    ]
    return sorted(entries, key=lambda e: e["relpath"])


def dir_hash(path: Path | str, listing: list[dict[str, Any]] | None = None) -> str:
    """The DVC 3 hash of a folder, ``<md5>.dir``: the md5 of its listing as DVC serialises it.

    Args:
        path: The folder.
        listing: Its :func:`dir_listing`, if already made.

    Example:
        >>> dir_hash("datasets/image_classification/digits/prepared")  # doctest: +SKIP
        '6c8e00a1bdf39a4d0d8acd1726526d74.dir'
    """
    entries = dir_listing(path) if listing is None else listing
    data = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(data, usedforsecurity=False).hexdigest() + ".dir"
