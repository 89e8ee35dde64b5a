"""`registry cache verify|gc` and `registry remote gc`: the cache and the remote trimmed.

The cache (``Settings.cache_dir``) holds the bytes of every dataset and model version loaded on
this machine (:mod:`registry.storage.cache`). A load re-hashes only small metadata; these
functions re-hash everything a registry's releases hold, and remove what none of them needs.
Both know datasets and models, so they sit above the two APIs. :func:`live_objects` is the
one home of "the objects a live version references", which a purge (``yank --purge``) keeps
and ``registry remote gc`` (:func:`gc_remote`) never lists.

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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from registry import layout
from registry.datasets import released_data_hash
from registry.errors import NotBuiltError, RegistryError
from registry.models import released_weights
from registry.repo.lock import all_out_hashes, locked_stage
from registry.repo.session import Session, as_reference, open_session
from registry.repo.tags import Release, TagIndex, parse_purge
from registry.storage.hashes import MD5_RE

if TYPE_CHECKING:
    from registry.storage.cache import GcReport, VerifyReport
    from registry.storage.remote import ProgressCallback, RemoteStore

__all__ = [
    "RemoteGcReport",
    "gc_cache",
    "gc_remote",
    "live_objects",
    "release_hash",
    "verify_cache",
]


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
        md5 = release_hash(session, index, release)
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
    keep = {release_hash(session, index, r) for r in _releases(session, index, ())}
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


def release_hash(session: Session, index: TagIndex, release: Release) -> str | None:
    """The DVC hash of a release's bytes (a dataset's folder, a model's weights), if any.

    Example:
        >>> release_hash(session, session.index(), release)  # doctest: +SKIP
        '1efa88afe031ce8f3761f84b7775d39a.dir'
    """
    kind = session.kind_of(release.name, index)
    try:
        if kind == "dataset":
            return released_data_hash(session, release)
        if kind == "model":
            return released_weights(session, release)[1]
    except NotBuiltError:
        return None  # e.g. a model released without weights: nothing cached for it
    return None


# -- the remote ----------------------------------------------------------------------------------


def live_objects(
    session: Session, remote: RemoteStore, *, exclude: Release | None = None
) -> dict[str, str]:
    """Every DVC object a live version or a branch head references, and who references it.

    The one home of that rule, for a purge (what it must keep) and ``registry remote gc`` (what
    it must not list). Live: every release of every dataset and model that is not purged (a
    yanked version still loads by an exact pin or a stage, PEP 592, so its bytes stay), which
    covers stage tags too, with a dataset release's build inputs (DVC-tracked raw data: the
    version must still rebuild from its tag), and every output recorded at the head of a
    branch (local and remote-tracking). A folder's ``.dir`` object and every file it lists
    count. A purge deletes only the version's own objects (data or weights), never its inputs.

    Args:
        session: The registry.
        remote: The DVC remote to read folder listings from (cached ones are not read again).
        exclude: A release to leave out (the one a purge is deleting).

    Returns:
        ``{md5: "name:X.Y.Z" or "branch NAME (path)"}``: the first live user found of each.

    Raises:
        RemoteError, CorruptArtifactError: If a live release's folder listing is on the
            remote but cannot be read (so nothing that it may list is ever deleted).

    Example:
        >>> live_objects(session, remote)["1efa88afe031ce8f3761f84b7775d39a.dir"]
        ... # doctest: +SKIP
        'image_classification/digits:1.0.0'
    """
    index = session.index()
    roots: dict[str, str] = {}
    for release in _unpurged(session, index):
        if exclude is not None and release.tag == exclude.tag:
            continue
        md5 = release_hash(session, index, release)
        if md5 is not None:
            roots.setdefault(md5, release.reference)
        for dep in _build_inputs(session, release):
            roots.setdefault(dep, f"{release.reference} (an input of its build)")
    for branch, commit in _branch_heads(session):
        for path, md5 in all_out_hashes(session.repo, commit).items():
            roots.setdefault(md5, f"branch {branch} ({path})")
    live = dict(roots)
    cache = session.content_cache()
    for md5, user in roots.items():
        if not md5.endswith(".dir"):
            continue
        try:
            files = cache.object_listing(md5, remote)
        except RegistryError:
            if user.startswith("branch ") or not remote.has(md5):
                # Never pushed here (a branch's build; a release to the remote used before):
                # its listing is not on this remote, so none of its files came with it.
                continue
            raise
        for file_md5 in files:
            live.setdefault(file_md5, user)
    return live


def _build_inputs(session: Session, release: Release) -> list[str]:
    """The hashes of a dataset release's build inputs (raw data tracked by DVC among them, so
    an old version still rebuilds from its tag); none for a model or an older lock."""
    entry = locked_stage(session.repo, release.commit, layout.build_stage(release.name))
    deps = entry.get("deps") if entry else None
    found = []
    for dep in deps if isinstance(deps, list) else []:
        md5 = dep.get("md5") if isinstance(dep, dict) else None
        if isinstance(md5, str) and MD5_RE.match(md5):
            found.append(md5)
    return found


def _unpurged(session: Session, index: TagIndex) -> list[Release]:
    """Every release, live or yanked, whose yank tag records no purge (one Git call)."""
    releases, yanked = [], []
    for name in index.every_name():
        releases += index.releases(name)
        yanked += index.yanked(name)
    tags = [r.yanked.tag for r in yanked if r.yanked is not None]
    messages = session.repo.tag_messages(tags) if tags else {}
    for release in yanked:
        if release.yanked is not None and parse_purge(messages.get(release.yanked.tag, "")):
            continue
        releases.append(release)
    return releases


def _branch_heads(session: Session) -> list[tuple[str, str]]:
    """``(branch, commit)`` of every local and remote-tracking branch."""
    out = session.repo.git(
        "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads", "refs/remotes"
    )
    heads = [tuple(line.split(" ", 1)) for line in out.splitlines() if " " in line]
    return [(name, commit) for name, commit in heads if not name.endswith("/HEAD")]


@dataclass
class RemoteGcReport:
    """What ``registry remote gc`` found on the DVC remote, and whether it deleted it.

    Attributes:
        remote: The DVC remote's name and URL.
        objects: Each object no tag or branch references, and its size in bytes.
        total_bytes: Their size together.
        deleted: Whether they were deleted (``--delete``) or only listed.
    """

    remote: str
    objects: dict[str, int] = field(default_factory=dict)
    total_bytes: int = 0
    deleted: bool = False


def gc_remote(
    *,
    delete: bool = False,
    remote: str | None = None,
    registry: str | os.PathLike[str] | None = None,
) -> RemoteGcReport:
    """List, or delete, the objects on the DVC remote that no live version or branch uses.

    What is live is :func:`live_objects`' rule (a yanked, unpurged version's bytes stay). The
    remote is listed first and every live listing read before anything is deleted, so a remote
    that is down or missing fails with nothing deleted.

    Args:
        delete: Delete them (default: only list them).
        remote: The DVC remote (default: the registry's default remote).
        registry: A registry clone or Git URL; default from the configuration.

    Returns:
        The unreferenced objects, their total size, and whether they were deleted.

    Raises:
        RemoteError, CredentialsError, ConfigError: If the remote cannot be read (or, with
            ``delete``, written); nothing is deleted then.

    Example:
        >>> gc_remote().total_bytes  # doctest: +SKIP
        1048576
    """
    from registry.storage.remote import RemoteStore

    session = open_session(registry)
    head = session.repo.resolve_commit("HEAD")
    store = RemoteStore.open(session.repo, head, remote or session.settings.remote)
    present = store.list_objects()
    if delete:
        store.check(write=True)
    live = live_objects(session, store)
    garbage = {md5: size for md5, size in sorted(present.items()) if md5 not in live}
    report = RemoteGcReport(f"{store.name} ({store.url})", garbage, sum(garbage.values()))
    if delete and garbage:
        store.delete(garbage)
        report.deleted = True
    return report
