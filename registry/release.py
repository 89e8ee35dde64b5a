"""Releasing any artifact kind: one path for datasets, models and whatever comes next.

:func:`release` owns what every release does, in GTO's order (``gto``'s
``GitRegistry.register`` is the model): the work tree must be committed; a version is never
released twice, must be greater than the latest, and a commit carries at most one version of an
artifact. Then the bytes go to the DVC remote, and only then is the annotated tag
``<name>@vX.Y.Z`` made and pushed (a tag whose push fails is taken back, so running the release
again completes it). Each refusal is its own :class:`~registry.errors.ReleaseError` subclass.

An artifact kind supplies only what differs, as a :class:`Releasable`: which version, what to
check before, which DVC targets hold the bytes, and the tag message. ``registry.datasets`` and
``registry.models`` each hold one (``release_dataset`` and ``release_model`` call :func:`release`
with it).

Example:
    >>> import registry
    >>> registry.release_dataset("image_classification/digits")  # doctest: +SKIP
    Release(name='image_classification/digits', version=Version(major=1, minor=0, patch=0), ...)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from registry.config import who_may
from registry.errors import (
    AlreadyYankedError,
    ArtifactNotFoundError,
    ConfigError,
    CredentialsError,
    DirtyWorkTreeError,
    InvalidReferenceError,
    NotPermittedError,
    PurgeAfterYankError,
    ReasonRequiredError,
    RemoteError,
    UnsharedRemoteError,
    VersionExistsError,
    VersionNotAboveLatestError,
    VersionNotFoundError,
    VersionOnCommitError,
)
from registry.grammar import DeregisterTag, RegisterTag, Version, parse_reference, parse_version
from registry.repo.git import GitRepo
from registry.repo.tags import Purge, Release, TagIndex, Yank, parse_purge, yank_message

if TYPE_CHECKING:
    from registry.repo.session import Kind, Session

__all__ = [
    "PurgePlan",
    "Releasable",
    "Yanked",
    "check_committed",
    "check_new_version",
    "check_permitted",
    "check_reason",
    "push_outputs",
    "release",
    "shared_remote",
    "yank",
]


class Releasable(Protocol):
    """What to release: the part of a release that differs between artifact kinds."""

    @property
    def kind(self) -> Kind:
        """``"dataset"`` or ``"model"``: which commands the messages name."""

    @property
    def name(self) -> str:
        """The artifact's name."""

    @property
    def what(self) -> str:
        """Its bytes, for messages: ``"the data of 'x'"``, ``"the weights of 'x'"``."""

    @property
    def targets(self) -> Sequence[str]:
        """The DVC targets (stages or output paths) that hold its bytes."""

    def version(self, index: TagIndex) -> Version:
        """The version to release, given the releases so far."""

    def check(self, index: TagIndex, version: Version) -> None:
        """Refuse, with a :class:`~registry.errors.ReleaseError` subclass, what this kind must."""

    def tag_message(self, version: Version) -> str:
        """The annotated tag's message (a subject line, then anything it records)."""


def release(
    session: Session,
    artifact: Releasable,
    *,
    push: bool = True,
    remote: str | None = None,
    allow_unshared_remote: bool = False,
) -> Release:
    """Release ``artifact``: check GTO's rules and the kind's own, push the bytes, then tag.

    Steps, in order (nothing is pushed or tagged unless every check passes):

    1. The Git identity is one of the artifact's owners, if it has any (:func:`check_permitted`),
       the work tree is committed (:func:`check_committed`), and the DVC remote is the one the
       committed ``.dvc/config`` names, unless allowed otherwise (:func:`shared_remote`).
    2. Tags are fetched from the Git remote (with ``push``), after reading the artifact's tip
       there (:meth:`~registry.repo.git.GitRepo.lease_tags`), and ``artifact.version`` picks the
       version.
    3. The version is new, above the latest, and the first on this commit
       (:func:`check_new_version`).
    4. ``artifact.check`` refuses what its kind must (stale data, an invalid card ...).
    5. The bytes of ``artifact.targets`` are pushed to the DVC remote (:func:`push_outputs`).
    6. The annotated tag ``<name>@vX.Y.Z`` is made at HEAD and pushed where a Git remote is
       configured, in one atomic push with the artifact's tip, which must still be where step 2
       saw it; if that push fails the tag is deleted again, so a rerun completes it. A remote
       that got the tag, or any other tag of the artifact, from a command running at the same
       time is a :class:`~registry.errors.TagRaceError`: so a clone that checked its version
       against tags that were stale by the time it pushed (1.0.5 decided while another clone
       pushed 1.1.0) never lands.

    Why a lease on a tip ref, not a check after the push: a check after the push would have to
    delete a pushed tag that others may have fetched already, and two clones could each see the
    other's tag and both roll back. ``git push --atomic --force-with-lease`` makes the remote
    itself compare and swap, so the loser changes nothing. It holds among registry commands;
    a tag pushed with plain ``git push`` does not move the tip and is not serialised.

    Args:
        session: The registry (a clone).
        artifact: What to release.
        push: Push the tag to the Git remote (the bytes are always pushed).
        remote: The DVC remote to push the bytes to (default: the committed default remote).
        allow_unshared_remote: Allow ``remote`` to be one that the committed ``.dvc/config``
            does not make the default (a personal or local-only remote).

    Returns:
        The new release.

    Raises:
        ReleaseError: A subclass per refusal (see :mod:`registry.errors`).
        NotBuiltError: If the bytes do not exist or are not tracked by DVC.
        CredentialsError, RemoteError: If the DVC or Git remote cannot be written.

    Example:
        >>> # what release_dataset does, with its dataset's Releasable:
        >>> release(session, _DatasetRelease(session, "image_classification/digits"))
        ... # doctest: +SKIP
        Release(name='image_classification/digits', version=Version(major=1, minor=0, patch=0), ...)
    """
    repo, name = session.repo, artifact.name
    check_permitted(session, name, f"release {artifact.kind} {name!r}")
    check_committed(repo, artifact.kind, name)
    target = shared_remote(
        session.root, artifact.kind, name, remote, session.settings.remote, allow_unshared_remote
    )
    # A stale clone must not pick a version below one released elsewhere, and two clones that
    # decided from the same tags must not both land: the lease makes the second push fail.
    lease = repo.lease_tags(name) if push else None
    repo.refresh()
    index = session.index()
    version = artifact.version(index)
    check_new_version(repo, index, artifact.kind, name, version)
    artifact.check(index, version)
    message = artifact.tag_message(version)
    push_outputs(session.root, list(artifact.targets), target, artifact.what)
    tag = str(RegisterTag(name, version))
    repo.publish_tag(tag, message, "HEAD", push, lease=lease)
    return next(r for r in TagIndex(repo.tags()).releases(name) if r.tag == tag)


def check_permitted(
    session: Session, name: str, action: str, stage: str | None = None
) -> None:
    """Refuse to tag ``name`` unless the tagger's Git identity may (``config.who_may``).

    A convention that this client enforces, not a security boundary: anyone who can push to the
    Git remote can push a tag with plain ``git``. Signed tags (``registry.require_signed_tags``)
    are what makes who tagged a version checkable by everyone who loads it.

    Args:
        session: The registry; its settings hold ``registry.owners`` and
            ``registry.stage_approvers``.
        name: The artifact tagged.
        action: What is refused, for the message (``"promote m 1.0.0 to prod"``).
        stage: The stage a promotion or demotion changes.

    Raises:
        NotPermittedError: Naming the identity, who may, and the setting.

    Example:
        >>> check_permitted(session, "m", "release model 'm'")  # doctest: +SKIP
    """
    allowed, setting = who_may(session.settings, name, stage)
    if not allowed:
        return
    identity = session.repo.tagger_email()
    if identity not in allowed:
        raise NotPermittedError(identity, action, allowed, setting)


def check_committed(repo: GitRepo, kind: Kind, name: str) -> None:
    """Refuse to release ``name`` from a work tree with uncommitted changes.

    Raises:
        DirtyWorkTreeError: Listing up to five of the changed paths.
    """
    dirty = [p for p in repo.dirty_paths() if not p.startswith(".dvc/tmp")]
    if dirty:
        raise DirtyWorkTreeError(kind, name, dirty)


def shared_remote(
    root: Path,
    kind: Kind,
    name: str,
    remote: str | None,
    setting: str | None,
    allow_unshared: bool,
) -> str | None:
    """The DVC remote a release of ``name`` pushes to: the one the committed ``.dvc/config`` names.

    Loaders by Git URL read the default remote of the committed ``.dvc/config``; a release that
    pushed elsewhere would tag bytes they cannot load. So the remote the push would use (``remote``,
    else ``setting`` (``REGISTRY_REMOTE``), else DVC's default with ``.dvc/config.local`` and the
    global config on top) must be that one, by name and URL, unless ``remote`` names it and
    ``allow_unshared`` is set. Credentials and other options may still come from any level.

    Args:
        root: The registry's work tree.
        kind: ``"dataset"`` or ``"model"``, for the message.
        name: The artifact, for the message.
        remote: The remote asked for (``--remote``), or ``None``.
        setting: ``REGISTRY_REMOTE`` (a setting for loads), or ``None``.
        allow_unshared: ``--allow-unshared-remote``.

    Returns:
        The remote's name (``None`` if none is configured: the push then says so).

    Raises:
        UnsharedRemoteError: If the push would go to another remote, or another URL.
        ConfigError: If the DVC config is invalid.

    Example:
        >>> shared_remote(Path("."), "dataset", "digits", None, None, False)  # doctest: +SKIP
        'storage'
    """
    from dvc.config import Config
    from dvc.config import ConfigError as DvcConfigError

    try:
        config = Config(dvc_dir=str(root / ".dvc"))
        committed, local = config.load_one("repo"), config.load_one("local")
    except DvcConfigError as e:
        raise ConfigError(f"the DVC config of {root} is invalid: {e}") from e
    remotes = config.get("remote") or {}
    chosen = remote or setting or (config.get("core") or {}).get("remote")
    shared = committed["core"].get("remote")
    if chosen is None or chosen not in remotes:
        return chosen  # the push names what is missing
    url = str(remotes[chosen].get("url", ""))
    shared_url = str(committed["remote"].get(shared, {}).get("url", "")) if shared else None
    if (chosen, url) == (shared, shared_url) or (allow_unshared and remote is not None):
        return chosen
    if remote is not None:
        source = f"--remote {remote}"
    elif setting is not None:
        source = f"REGISTRY_REMOTE={setting} (a setting for loads)"
    elif local["core"].get("remote") or local["remote"].get(chosen, {}).get("url"):
        source = ".dvc/config.local"
    else:
        source = "your global or system DVC config"
    raise UnsharedRemoteError(kind, name, chosen, url, shared, shared_url, source)


def check_new_version(
    repo: GitRepo, index: TagIndex, kind: Kind, name: str, version: Version
) -> None:
    """Refuse a version of ``name`` that GTO's rules forbid.

    Raises:
        VersionExistsError: If ``version`` was ever released (withdrawn ones count too).
        VersionNotAboveLatestError: If it is not greater than the latest release.
        VersionOnCommitError: If a version of ``name`` was released from HEAD's commit: GTO
            (and so ``gto show`` and DVC Studio) cannot tell two versions on one commit apart,
            and neither can a stage tag, which points at a commit.
    """
    if index.ever_released(name, version):
        raise VersionExistsError(kind, name, version, str(RegisterTag(name, version)))
    latest = index.latest(name)
    if latest is not None and not version > latest.version:
        raise VersionNotAboveLatestError(kind, name, version, latest.version)
    head = repo.resolve_commit("HEAD")
    for earlier in index.releases(name):
        if earlier.commit == head:
            raise VersionOnCommitError(kind, name, earlier.version, head)


def push_outputs(root: Path, targets: list[str], remote: str | None, what: str) -> None:
    """Push the DVC outputs of ``targets`` (stages or output paths) to the DVC remote.

    The remote is checked first (credentials, bucket, write permission), so that a remote the
    release cannot write fails before anything is uploaded. Objects are content-addressed: a push
    that stops halfway leaves only whole objects that no tag refers to yet, and pushing again
    uploads the rest. An output DVC would keep back (``push: false``, e.g. an import from a
    version-aware source) is pushed too: every byte a release needs is in its remote.

    Args:
        root: The registry's work tree.
        targets: What ``dvc push`` gets.
        remote: The DVC remote's name (``None``: the default one).
        what: The bytes, for messages.

    Raises:
        CredentialsError: If credentials are missing or lack the permission to write.
        RemoteError: If the remote is unreachable or refuses; the release made no tag.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    from registry.storage.remote import RemoteStore

    store = RemoteStore.open(GitRepo(root, str(root), root), "HEAD", remote)
    try:
        store.check(write=True)
    except (CredentialsError, RemoteError) as e:
        raise type(e)(
            f"{e}. Nothing was pushed, and nothing was tagged: release again once fixed"
        ) from e
    with _dvc_errors() as failures:
        try:
            with Repo(str(root)) as repo:
                repo.push(targets=targets, remote=remote)
                _push_kept_back(repo, targets, remote)
        except Exception as e:  # DVC, gcsfs and a gone local remote raise their own classes
            # DVC reports each failed file in its log and raises one summary: look at both.
            for cause in [e, *failures]:
                explained = store.explain(cause, f"pushing {what} to")
                if explained is not None:
                    raise type(explained)(
                        f"{explained} ({e}; nothing was tagged, release again once fixed)"
                    ) from e
            if not isinstance(e, DvcException | OSError):
                raise
            first = f" (first: {failures[0]})" if failures else ""
            raise RemoteError(
                f"pushing {what} to the DVC remote failed: {e}{first}; check "
                "'dvc remote list' and that the remote is reachable, then release again "
                "(nothing was tagged)"
            ) from e


def _push_kept_back(repo: Any, targets: list[str], remote: str | None) -> None:
    """Push the objects of the targets' outputs that ``dvc push`` keeps back (``push: false``).

    DVC writes ``push: false`` for ``dvc import-url`` from a version-aware source (a versioned
    bucket), and then never pushes the import. A release's bytes must all be in its remote (a
    raw input too: ``registry datasets rebuild`` reads it from there once the source moved on),
    so they are transferred here, through DVC's own cloud API.

    Raises:
        RemoteError: If some object could not be pushed (DVC names it in its log).
    """
    # A target is a stage, a .dvc file or an output's path, as `dvc push` takes it.
    kept_back = [
        out
        for target in targets
        for info in repo.stage.collect_granular(target)
        for out in info.stage.outs
        if out.use_cache and not out.can_push and out.hash_info
    ]
    for out in kept_back:
        for objects in out.get_used_objs().values():
            result = repo.cloud.push(objects, remote=remote)
            if result.failed:
                raise RemoteError(
                    f"pushing {out} (push: false in its .dvc file) to the DVC remote failed for "
                    f"{len(result.failed)} object(s); check 'dvc remote list' and that the "
                    "remote is reachable, then release again (nothing was tagged)"
                )


@contextlib.contextmanager
def _dvc_errors() -> Iterator[list[BaseException]]:
    """Collect the exceptions DVC logs (one per failed file): the release explains them in one
    message instead of a traceback each. Warnings still reach the user, as one line each."""
    import logging

    failures: list[BaseException] = []
    warn = logging.getLogger("registry.push")

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                failures.append(record.exc_info[1])
            elif record.levelno >= logging.WARNING:
                warn.log(record.levelno, "%s", record.getMessage())

    handler = Collect(level=logging.WARNING)
    logs = [logging.getLogger(name) for name in ("dvc", "dvc_data", "dvc_objects")]
    saved = [log.propagate for log in logs]
    for log in logs:
        log.addHandler(handler)
        log.propagate = False
    try:
        yield failures
    finally:
        for log, propagate in zip(logs, saved, strict=True):
            log.removeHandler(handler)
            log.propagate = propagate


# -- yanking ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Yanked:
    """A version that :func:`yank` withdrew (or a purge it resumes).

    Attributes:
        release: The release, with :attr:`~registry.repo.tags.Release.yanked` saying why.
        purge: What its yank tag records as purged (``None``: a yank without purge).
        tagged: Whether this call wrote the tag (``False`` for a dry run, and for a purge
            resumed after a failed delete: the tag was written by the first run).
    """

    release: Release
    purge: Purge | None = None
    tagged: bool = True


# What a purge would delete, decided after the checks and before the tag (``yank(plan=...)``).
PurgePlan = Callable[[Release, Purge | None], Purge]


def check_reason(kind: Kind, ref: str, reason: str | None) -> str:
    """The one rule for a yank's reason: some text, which everyone who pins the version sees.

    Returns:
        The reason on one line.

    Raises:
        ReasonRequiredError: If it is missing or blank.
    """
    text = " ".join((reason or "").split())
    if not text:
        raise ReasonRequiredError(kind, ref)
    return text


def yank(
    session: Session,
    kind: Kind,
    ref: str,
    reason: str | None,
    *,
    push: bool = True,
    plan: PurgePlan | None = None,
    dry_run: bool = False,
) -> Yanked:
    """Yank one released version: write GTO's deregistration tag ``name@vX.Y.Z!`` at its commit.

    Steps, in order: the reason is given (:func:`check_reason`); ``ref`` pins one version
    exactly; the name is of ``kind``; the Git identity is an owner (:func:`check_permitted`);
    tags are fetched under the artifact's tip lease; the version was released and is not
    yanked already; with ``plan`` (a purge), the purge is planned, which checks the DVC remote,
    and recorded in the tag; then the tag, annotated with the reason, who and when, is made and
    pushed in one atomic push with the tip (as a release's). GTO has no re-registration of a
    deregistered version, so a yank is final: recover by releasing the same data as a new
    PATCH version.

    A purge is tagged first and deleted after (by the caller): the version stops resolving
    before any byte goes, and a delete that fails halfway is finished by running the same
    purge again, which finds the tag's purge record and returns it (``tagged=False``) instead
    of refusing.

    Args:
        session: The registry (a clone).
        kind: ``"dataset"`` or ``"model"``.
        ref: ``NAME:X.Y.Z``.
        reason: Why; shown to everyone who pins the version.
        push: Push the tag to the Git remote.
        plan: For a purge: given the release and the purge recorded already (a rerun), returns
            what to record as purged; it raises to refuse (nothing is tagged then).
        dry_run: Check and plan, but tag nothing.

    Returns:
        The yanked release, and the purge its tag records.

    Raises:
        ReasonRequiredError: If ``reason`` is blank.
        InvalidReferenceError: If ``ref`` does not pin one version.
        WrongKindError: If the name is of the other kind.
        NotPermittedError: If the Git identity is not one of the owners.
        ArtifactNotFoundError, VersionNotFoundError: If the version was never released.
        AlreadyYankedError: If it is yanked already (and this is no rerun of its purge).
        PurgeAfterYankError: If a purge is asked of a version yanked already without one.
        TagRaceError, RemoteError: If the tag cannot be pushed (nothing is tagged).

    Example:
        >>> yank(session, "dataset", "products/product_a/ad_clicks:1.2.0", "labels swapped")
        ... # doctest: +SKIP
        Yanked(release=Release(name='products/product_a/ad_clicks', ...), purge=None, ...)
    """
    text = check_reason(kind, ref, reason)
    reference = parse_reference(ref)
    if reference.version is None or not reference.version.is_exact:
        raise InvalidReferenceError(
            ref, f"a yank names one version exactly, such as '{reference.name}:1.2.0'"
        )
    name, version = reference.name, parse_version(str(reference.version))
    session.check_kind(name, kind, command="yank")
    check_permitted(session, name, f"yank {kind} {name} {version}")
    repo = session.repo
    lease = repo.lease_tags(name) if push and not dry_run else None
    repo.refresh()
    found = _released(session, kind, name, version)
    if found.yanked is not None:
        recorded = parse_purge(repo.tag_message(found.yanked.tag))
        if plan is None:
            raise AlreadyYankedError(kind, name, version, found.yanked.reason)
        if recorded is None:
            raise PurgeAfterYankError(kind, name, version, found.yanked.reason)
        return Yanked(found, plan(found, recorded), tagged=False)  # finish an earlier purge
    by, when = repo.tagger_email(), datetime.now(UTC).isoformat(timespec="seconds")
    purge = plan(found, None) if plan is not None else None
    tag = str(DeregisterTag(name, version))
    withdrawn = replace(found, yanked=Yank(text, by, when, tag))
    if dry_run:
        return Yanked(withdrawn, purge, tagged=False)
    message = yank_message(name, version, text, by, when, purge)
    rerun = f"run 'registry {kind}s yank {ref}' again"
    repo.publish_tag(tag, message, found.commit, push, lease=lease, rerun=rerun)
    return Yanked(withdrawn, purge)


def _released(session: Session, kind: Kind, name: str, version: Version) -> Release:
    """The release of exactly ``version`` of ``name``, yanked or not.

    Raises:
        ArtifactNotFoundError, VersionNotFoundError: If it was never released.
    """
    index = session.index()
    found = index.find(name, version)
    if found is None:
        if not index.releases(name) and not index.yanked(name):
            raise ArtifactNotFoundError(name, index.names(), kind=kind)
        available = [str(r.version) for r in index.releases(name)]
        raise VersionNotFoundError(name, str(version), available, kind=kind)
    return found
