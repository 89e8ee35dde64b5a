"""The search index: one entry per dataset and model, and the one rule that matches them.

The site's search box (``catalog.js``, over the prebuilt ``search-index.js``) and
``registry datasets search`` read the same entries (:func:`index_entries`) and apply the same
rule (:func:`matches`): every word of the text appears in the entry's ``text``; each facet given
is equal to the entry's (case-insensitive; a list facet such as ``language`` or ``features``
holds it); the size is within the bounds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from registry.errors import ConfigError
from registry.repo.session import RegistryArg

__all__ = [
    "FACETS",
    "DatasetMatch",
    "format_size",
    "index_entries",
    "matches",
    "page_path",
    "parse_size",
    "search_datasets",
]

#: The fields the home page filters on (a select box each), in the order it shows them.
FACETS = ("kind", "task", "architecture", "framework", "language", "owner", "stage")
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def index_entries(catalog: dict[str, Any]) -> list[dict[str, Any]]:
    """One search entry per artifact of ``catalog`` (:func:`registry.catalog.collect.collect`).

    Each entry holds what the home page lists (name, description, task, architecture,
    framework, language, owner, tags, datasets used, stages, size) and ``text``: the
    lowercased words the text search looks in (those fields, feature names and the card).

    Example:
        >>> index_entries({"datasets": [], "models": []})
        []
    """
    entries = []
    for artifact in [*catalog["datasets"], *catalog["models"]]:
        dataset = artifact["kind"] == "dataset"
        entry = {
            "kind": artifact["kind"],
            "name": artifact["name"],
            "page": page_path(artifact["kind"], artifact["name"]),
            "description": artifact["description"],
            "task": artifact["task"],
            "architecture": artifact.get("architecture", ""),
            "framework": artifact.get("framework", ""),
            "language": list(artifact.get("language") or []),
            "owner": artifact["owner"],
            "tags": list(artifact["tags"]),
            "datasets": list(artifact.get("datasets") or []),
            "stage": sorted(artifact["stages"]),
            "latest": artifact["latest"],
            "features": sorted(artifact.get("features") or {}) if dataset else [],
            "size_bytes": artifact.get("size_bytes"),
            "examples": artifact.get("examples"),
            # This clone's unreleased build (its label), as its page marks it.
            "workspace": (artifact.get("workspace") or {}).get("label"),
        }
        words = [
            artifact["name"], artifact["description"], artifact["task"], artifact["owner"],
            entry["architecture"], entry["framework"], *entry["language"], *entry["tags"],
            *entry["datasets"], *entry["features"], artifact["card"],
        ]
        entry["text"] = " ".join(" ".join(str(w).lower().split()) for w in words if w)
        entries.append(entry)
    return entries


def page_path(kind: str, name: str) -> str:
    """Where an artifact's page is in the site, relative to its root.

    Example:
        >>> page_path("dataset", "image_classification/digits")
        'datasets/image_classification/digits.html'
    """
    return f"{kind}s/{name}.html"


def matches(
    entry: dict[str, Any],
    *,
    text: str | None = None,
    facets: dict[str, str | None] | None = None,
    features: tuple[str, ...] = (),
    min_size: int | None = None,
    max_size: int | None = None,
) -> bool:
    """Whether a search entry matches: the rule the site's search box follows too.

    Args:
        entry: One of :func:`index_entries`.
        text: Every word of it must appear in the entry's ``text``.
        facets: Field -> wanted value (``None``: any); equal, or held by a list field.
        features: Feature names the dataset must have, every one.
        min_size, max_size: Bounds on the dataset's size in bytes (all splits).

    Example:
        >>> e = {"text": "digits images", "task": "image-classification", "features": ["image"],
        ...      "size_bytes": 100}
        >>> matches(e, text="digit", facets={"task": "Image-Classification"}, min_size=50)
        True
    """
    words = (text or "").lower().split()
    if any(w not in entry["text"] for w in words):
        return False
    for field, wanted in (facets or {}).items():
        if wanted is None:
            continue
        have = entry.get(field)
        values = have if isinstance(have, list) else [have]
        if wanted.lower() not in [str(v).lower() for v in values if v is not None]:
            return False
    wanted_features = {f.lower() for f in features}
    if not wanted_features <= {f.lower() for f in entry.get("features") or []}:
        return False
    size = entry.get("size_bytes")
    if min_size is not None and (size is None or size < min_size):
        return False
    return max_size is None or (size is not None and size <= max_size)


def parse_size(text: str) -> int:
    """A size in bytes from ``512``, ``10MB``, ``1.5GiB`` (SI and binary units).

    Raises:
        ConfigError: If it is not a size.

    Example:
        >>> parse_size("1.5kB"), parse_size("2MiB")
        (1500, 2097152)
    """
    found = _SIZE.match(text)
    unit = found.group(2).lower() if found else ""
    if not found or unit not in _UNITS:
        raise ConfigError(
            f"invalid size {text!r}: give bytes or a number with a unit, e.g. 500kB, 10MB, 2GiB"
        )
    return int(float(found.group(1)) * _UNITS[unit])


def format_size(n: int | None) -> str:
    """A size for people (SI units, as :func:`parse_size` reads them); ``-`` for none.

    Example:
        >>> format_size(233066), format_size(512), format_size(None)
        ('233.1 kB', '512 B', '-')
    """
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


@dataclass(frozen=True)
class DatasetMatch:
    """One dataset found by :func:`search_datasets`.

    Attributes:
        name, description, task, owner, latest: As its catalog page shows them.
        features: Its feature names.
        examples, size_bytes: Its latest release's example count and size (all splits).
        stages: Stage names that point at one of its versions.
    """

    name: str
    description: str
    task: str
    owner: str
    latest: str | None
    features: list[str]
    examples: int | None
    size_bytes: int | None
    stages: list[str]


def search_datasets(
    text: str | None = None,
    *,
    task: str | None = None,
    owner: str | None = None,
    language: str | None = None,
    features: tuple[str, ...] | list[str] = (),
    min_size: int | str | None = None,
    max_size: int | str | None = None,
    registry: RegistryArg = None,
) -> list[DatasetMatch]:
    """Find datasets: the catalog's search from the command line or Python.

    Reads Git only (cards and ``build_info.json`` at each latest release), through the same
    index and rule as the site's search box (:func:`index_entries`, :func:`matches`).

    Args:
        text: Words that must all appear (name, description, card, tags, feature names).
        task, owner, language: Equal to the dataset's (case-insensitive).
        features: Feature names it must have, every one.
        min_size, max_size: Bounds on its size (bytes, or ``"10MB"``, ``"2GiB"``).
        registry: A registry clone or Git URL; default from the configuration.

    Returns:
        The matching datasets, sorted by name.

    Raises:
        ConfigError: If a size is not a size.
        NotARegistryError: If no registry is configured.

    Example:
        >>> [d.name for d in search_datasets("digits", features=["image"])]  # doctest: +SKIP
        ['image_classification/digits']
    """
    from registry.catalog.collect import collect
    from registry.repo.session import open_session

    low = parse_size(min_size) if isinstance(min_size, str) else min_size
    high = parse_size(max_size) if isinstance(max_size, str) else max_size
    session = open_session(registry)
    session.repo.refresh()
    catalog = collect(session, models=False)
    facets = {"kind": "dataset", "task": task, "owner": owner, "language": language}
    found = []
    for entry in index_entries(catalog):
        if matches(entry, text=text, facets=facets, features=tuple(features),
                   min_size=low, max_size=high):
            found.append(DatasetMatch(
                name=entry["name"], description=entry["description"], task=entry["task"],
                owner=entry["owner"], latest=entry["latest"], features=entry["features"],
                examples=entry["examples"], size_bytes=entry["size_bytes"],
                stages=entry["stage"],
            ))
    return sorted(found, key=lambda d: d.name)
