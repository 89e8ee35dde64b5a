"""`registry cache verify` and `registry cache gc`: the local cache checked and trimmed.

The cache (``Settings.cache_dir``) holds the bytes of every dataset and model version loaded on
this machine (:mod:`registry.storage.cache`). A load re-hashes only small metadata; these
functions re-hash everything a registry's releases hold, and remove what none of them needs.
Both know datasets and models, so they sit above the two APIs.

Example:
    >>> from registry.cache_admin import gc_cache, verify_cache
    >>> verify_cache().ok  # doctest: +SKIP
    True
    >>> gc_cache(dry_run=True).freed_bytes  # doctest: +SKIP
    734003200
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from registry.datasets import released_data_hash
from registry.errors import NotBuiltError
from registry.models import released_weights
from registry.repo.session import Session, as_reference, open_session
from registry.repo.tags import Release, TagIndex

if TYPE_CHECKING:
    from registry.storage.cache import GcReport, VerifyReport
    from registry.storage.remote import ProgressCallback

__all__ = ["gc_cache", "verify_cache"]


def verify_cache(
    refs: Sequence[str] = (),
    *,
    all_objects: bool = False,
    registry: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
) -> VerifyReport:
    """Re-hash the cached files of a registry's versions, and repair the corrupt ones.

    Only what is cached is checked; a corrupt file is replaced from the shared cache or the
    DVC remote.

    Args:
        refs: Dataset or model references (``NAME``, ``NAME:1.2.0``, ``NAME@prod``); default:
            every released version of the registry.
        all_objects: Also re-hash every object in the cache, whichever registry it came from
            (a corrupt one that none of these versions needs is deleted).
        registry: A registry clone or Git URL; default from the configuration.
        progress: Called with ``(done, total)`` items as they are checked.

    Returns:
        Counts of files checked, repaired and removed, and a line per version that stays bad
        (``report.ok`` is ``False`` then).

    Raises:
        InvalidReferenceError, ArtifactNotFoundError, VersionNotFoundError: For a bad ``refs``.

    Example:
        >>> report = verify_cache(["image_classification/digits:1.0.0"])  # doctest: +SKIP
        >>> report.checked, report.repaired, report.unrepairable  # doctest: +SKIP
        (101, 1, [])
    """
    from registry.storage.cache import CacheTarget
    from registry.storage.remote import RemoteStore

    session = open_session(registry)
    index = session.index()
    targets = []
    for release in _releases(session, index, refs):
        md5 = _release_hash(session, index, release)
        if md5 is not None:
            remote = RemoteStore.open(session.repo, release.commit, session.settings.remote)
            targets.append(CacheTarget(md5, remote, release.reference))
    cache = session.content_cache()
    return cache.verify(targets, all_objects=all_objects, progress=progress)


def gc_cache(
    *, dry_run: bool = False, registry: str | os.PathLike[str] | None = None
) -> GcReport:
    """Remove from the cache what no current tag of the registry needs, and killed processes'
    leftovers.

    The cache is shared by every registry loaded on this machine: entries that only another
    registry's versions use are removed too (they are fetched again when next loaded). Entries
    another process holds a lock on are kept.

    Args:
        dry_run: Only report what would be removed and the bytes it would free.
        registry: A registry clone or Git URL; default from the configuration.

    Returns:
        Counts of snapshots, objects and leftovers removed, and the bytes freed.

    Example:
        >>> gc_cache(dry_run=True)  # doctest: +SKIP
        GcReport(snapshots=2, objects=180, leftovers=1, freed_bytes=734003200, held=0, ...)
    """
    session = open_session(registry)
    index = session.index()
    keep = {_release_hash(session, index, r) for r in _releases(session, index, ())}
    return session.content_cache().gc({md5 for md5 in keep if md5}, dry_run=dry_run)


def _releases(session: Session, index: TagIndex, refs: Sequence[str]) -> list[Release]:
    """The releases ``refs`` name, or every release of every artifact."""
    if not refs:
        return [release for name in index.names() for release in index.releases(name)]
    found = []
    for ref in refs:
        reference = as_reference(ref)
        kind = session.kind_of(reference.name, index) or "dataset"
        found.append(session.resolve(reference, kind, command="pull"))
    return found


def _release_hash(session: Session, index: TagIndex, release: Release) -> str | None:
    """The DVC hash of a release's bytes (a dataset's folder, a model's weights), if any."""
    kind = session.kind_of(release.name, index)
    try:
        if kind == "dataset":
            return released_data_hash(session, release)
        if kind == "model":
            return released_weights(session, release)[1]
    except NotBuiltError:
        return None  # e.g. a model released without weights: nothing cached for it
    return None
