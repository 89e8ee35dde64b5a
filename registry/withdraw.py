"""Withdrawing a version: yank it (GTO's ``NAME@vX.Y.Z!``), see what was made from it, purge it.

:func:`yank_dataset` and :func:`yank_model` write the yank tag through
:func:`registry.release.yank` (the one rule of when a yank is refused and how its tag is
written), then read the downstream lineage (:func:`registry.lineage.downstream`, the one home
of "what was made from this version") for the model versions to retrain or demote.

With ``purge=True`` the version's bytes go too, for data that must (personal data, a legal
request): its DVC objects (a dataset's ``.dir`` object and every file it lists; a model's
weights) are deleted from the DVC remote the release used, from the user's content cache, from
the clone's ``.dvc/cache``, and from the shared cache where this user may write it; objects a
live version or a branch head still uses are kept (:func:`registry.cache_admin.live_objects`)
and reported. The purge is recorded in the yank tag (hashes, who, when; the reason is the
yank's), and a later load of the version raises :class:`~registry.errors.PurgedVersionError`.

Order: the remote is checked first (a remote that is down: nothing tagged, nothing deleted),
then the tag is written, so the version stops resolving, then the objects are deleted. A delete
that fails halfway leaves the tag, and running the same purge again deletes the rest.

Example:
    >>> import registry
    >>> result = registry.yank_dataset("image_classification/digits:1.0.0", reason="bad labels")
    ... # doctest: +SKIP
    >>> [(a.name, a.version, a.stages) for a in result.affected]  # doctest: +SKIP
    [('digits-cnn', '1.0.0', ['prod'])]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.cache_admin import live_objects, release_hash
from registry.errors import PurgeRefusedError, RegistryError
from registry.grammar import parse_version
from registry.lineage import Lineage, downstream
from registry.release import Yanked, yank
from registry.repo.session import Kind, RegistryArg, Session, open_session
from registry.repo.tags import Purge, Release

if TYPE_CHECKING:
    from registry.storage.remote import RemoteStore

__all__ = ["AffectedModel", "PurgeResult", "YankResult", "yank_dataset", "yank_model"]


@dataclass(frozen=True)
class AffectedModel:
    """A model version trained on a yanked version, directly or through its base model.

    Attributes:
        name: The model.
        version: Its version.
        stages: The stages it holds now.
        via: What it names that leads to the yanked version (``name:X.Y.Z``, a training
            dataset or a base model).
    """

    name: str
    version: str
    stages: list[str]
    via: str


@dataclass
class PurgeResult:
    """What a purge deleted, what it kept and why.

    Attributes:
        remote: The DVC remote's name and URL.
        deleted: Each object deleted from the remote (or, in a dry run, to delete), its size.
        kept: Each object of the version kept, and the live version or branch that uses it.
        freed_bytes: The bytes freed on the remote and in the caches.
        caches: One line per cache: what was deleted there, or why nothing could be.
        dry_run: Nothing was tagged or deleted.
        resumed: This run finished a purge whose tag an earlier run wrote.
    """

    remote: str
    deleted: dict[str, int] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)
    freed_bytes: int = 0
    caches: list[str] = field(default_factory=list)
    dry_run: bool = False
    resumed: bool = False


@dataclass(frozen=True)
class YankResult:
    """What a yank did, and what it leaves to do.

    Attributes:
        tag: The deregistration tag written (``name@vX.Y.Z!``).
        name: The artifact.
        version: The yanked version.
        reason: Why.
        affected: Every model version trained on it (directly or through a base model), with
            the stages it holds: what to retrain or demote.
        purge: What a purge deleted and kept (``None``: a yank without purge).
        graph: The downstream lineage graph the affected models come from.
    """

    tag: str
    name: str
    version: str
    reason: str
    affected: list[AffectedModel] = field(default_factory=list)
    purge: PurgeResult | None = None
    graph: Lineage | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` (the graph left out; ``purge`` only for a purge).

        Example:
            >>> result.to_dict()["affected"][0]["stages"]  # doctest: +SKIP
            ['prod']
        """
        data = {k: v for k, v in asdict(self).items() if k not in ("graph", "purge")}
        if self.purge is not None:
            data["purge"] = asdict(self.purge)
        return data


def yank_dataset(
    ref: str,
    *,
    reason: str,
    registry: RegistryArg = None,
    push: bool = True,
    purge: bool = False,
    dry_run: bool = False,
) -> YankResult:
    """Yank a released dataset version (PEP 592): GTO's deregistration tag ``NAME@vX.Y.Z!``.

    ``NAME`` and ``NAME:1.*`` never resolve to it again; an exact pin still loads with a
    warning (refused under ``strict=True`` or ``REGISTRY_STRICT=1``). Returns every model
    version trained on it, directly or through a base model, with its stages.

    A yank is final (GTO cannot re-register a version): to undo one, release the same data
    as a new PATCH version. The API does not ask for confirmation; ``registry datasets yank``
    does (``--yes``).

    Args:
        ref: ``NAME:X.Y.Z``.
        reason: Why (required): everyone who pins the version is told.
        registry: A registry clone or Git URL; default from the configuration.
        push: Push the tag to the Git remote.
        purge: Also delete the version's objects from the DVC remote and the caches, except
            those a live version or branch uses (see the module docstring).
        dry_run: Check, and say what a purge would delete; tag and delete nothing.

    Returns:
        The tag, the affected model versions, the lineage graph, and what a purge did.

    Raises:
        ReasonRequiredError: If ``reason`` is blank.
        InvalidReferenceError: If ``ref`` does not pin one version.
        ArtifactNotFoundError, VersionNotFoundError: If the version was never released.
        AlreadyYankedError: If it is yanked already.
        PurgeAfterYankError: If ``purge`` is asked of a version yanked already without one.
        PurgeRefusedError: If every object of the version is used by a live version or a
            branch head (nothing would be deleted; nothing is tagged).
        NotPermittedError: If the Git identity is not one of the dataset's owners.
        WrongKindError: If the name is a model's.
        RemoteError, CredentialsError: If the DVC remote cannot be written (a purge: before
            anything is tagged; or, after the tag, part way: run the same purge again).

    Example:
        >>> yank_dataset("products/product_a/ad_clicks:1.2.0", reason="swapped labels")
        ... # doctest: +SKIP
        YankResult(tag='products/product_a/ad_clicks@v1.2.0!', ...)
    """
    return _withdraw("dataset", ref, reason, registry, push=push, purge=purge, dry_run=dry_run)


def yank_model(
    ref: str,
    *,
    reason: str,
    registry: RegistryArg = None,
    push: bool = True,
    purge: bool = False,
    dry_run: bool = False,
) -> YankResult:
    """Yank a released model version (PEP 592): GTO's deregistration tag ``NAME@vX.Y.Z!``.

    ``NAME`` and ``NAME:1.*`` never resolve to it again; an exact pin or a stage that holds it
    still loads with a warning (refused under ``strict=True`` or ``REGISTRY_STRICT=1``). A
    yank is final: release the same weights as a new PATCH version to undo it. With
    ``purge``, its weights object(s) are deleted as :func:`yank_dataset` deletes data.

    Args:
        ref: ``NAME:X.Y.Z``.
        reason: Why (required).
        registry: A registry clone or Git URL; default from the configuration.
        push: Push the tag to the Git remote.
        purge: Also delete its weights from the DVC remote and the caches (not those shared).
        dry_run: Check, and say what a purge would delete; tag and delete nothing.

    Returns:
        The tag and the model versions fine-tuned from it (transitively), with their stages.

    Raises:
        ReasonRequiredError, InvalidReferenceError, VersionNotFoundError, AlreadyYankedError,
        PurgeAfterYankError, NotPermittedError, WrongKindError, RemoteError: As for
        :func:`yank_dataset`.

    Example:
        >>> yank_model("digits-cnn:1.0.0", reason="trained on swapped labels")  # doctest: +SKIP
    """
    return _withdraw("model", ref, reason, registry, push=push, purge=purge, dry_run=dry_run)


def _withdraw(
    kind: Kind, ref: str, reason: str, registry: RegistryArg, *, push: bool, purge: bool,
    dry_run: bool,
) -> YankResult:
    """Yank (and purge), then read what was made from the version."""
    session = open_session(registry)
    purger = _Purger(session) if purge else None
    plan = purger.plan if purger is not None else None
    yanked = yank(session, kind, ref, reason, push=push, plan=plan, dry_run=dry_run)
    release = yanked.release
    assert release.yanked is not None
    graph = downstream(session, kind, release)
    done = purger.execute(yanked, dry_run=dry_run) if purger is not None else None
    return YankResult(
        release.yanked.tag, release.name, str(release.version), release.yanked.reason,
        _affected(graph), done, graph,
    )


def _affected(graph: Lineage) -> list[AffectedModel]:
    """The model versions of a down graph, each with the first thing it names on the way."""
    found = []
    for node_id, node in graph.nodes.items():
        if node_id == graph.root or node.kind != "model" or node.version is None:
            continue
        via = next(e.target for e in graph.edges if e.source == node_id)
        found.append(AffectedModel(node.name, node.version, list(node.stages), via))
    return sorted(found, key=lambda a: (a.name, parse_version(a.version)))


class _Purger:
    """Plans a purge before the yank tag is written (``yank(plan=...)``), deletes after."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.remote: RemoteStore | None = None
        self.kept: dict[str, str] = {}

    def plan(self, release: Release, recorded: Purge | None) -> Purge:
        """Check the remote can be written, then split the version's objects into those to
        delete and those a live version or branch keeps (a rerun: those the tag recorded)."""
        from registry.storage.remote import RemoteStore

        session = self.session
        remote = RemoteStore.open(session.repo, release.commit, session.settings.remote)
        try:
            remote.check(write=True)
        except RegistryError as e:
            raise type(e)(f"{e}. Nothing was deleted or tagged: purge again once fixed") from e
        self.remote = remote
        if recorded is None:
            objects = self._objects_of(release, remote)
        else:
            objects = set(recorded.objects) | set(recorded.kept)
        live = live_objects(session, remote, exclude=release)
        self.kept = {md5: live[md5] for md5 in sorted(objects) if md5 in live}
        doomed = tuple(sorted(objects - set(self.kept)))
        if recorded is None and objects and not doomed:
            # A purge record on bytes that stay loadable elsewhere would mislead.
            kind = session.kind_of(release.name, session.index()) or "dataset"
            raise PurgeRefusedError(kind, release.name, release.version, self.kept)
        if recorded is not None:
            return Purge(recorded.by, recorded.at, doomed, tuple(sorted(self.kept)))
        when = datetime.now(UTC).isoformat(timespec="seconds")
        return Purge(session.repo.tagger_email(), when, doomed, tuple(sorted(self.kept)))

    def _objects_of(self, release: Release, remote: RemoteStore) -> set[str]:
        """The version's objects: its hash, and for a folder every file its listing names."""
        md5 = release_hash(self.session, self.session.index(), release)
        if md5 is None:
            return set()
        objects = {md5}
        if md5.endswith(".dir"):
            objects.update(self.session.content_cache().object_listing(md5, remote))
        return objects

    def execute(self, yanked: Yanked, *, dry_run: bool) -> PurgeResult:
        """Delete the planned objects from the remote, then from every cache within reach."""
        purge, remote = yanked.purge, self.remote
        assert purge is not None and remote is not None
        result = PurgeResult(f"{remote.name} ({remote.url})", kept=self.kept, dry_run=dry_run,
                             resumed=not yanked.tagged and not dry_run)
        if dry_run:
            result.deleted = {m: _size(remote, m) for m in purge.objects}
        else:
            try:
                result.deleted = remote.delete(purge.objects)
            except RegistryError as e:
                release = yanked.release
                raise type(e)(
                    f"{e}. {release.yanked.tag if release.yanked else 'The yank tag'} records "
                    "the purge already, so the version no longer loads: run the same "
                    f"'registry ... yank {release.reference} --purge' again to finish it"
                ) from e
        result.freed_bytes = sum(result.deleted.values())
        self._caches(purge.objects, result)
        return result

    def _caches(self, objects: tuple[str, ...], result: PurgeResult) -> None:
        """Delete ``objects`` from the content cache, shared caches and the clone's DVC cache."""
        from registry.storage.cache import remove_cached_objects

        cache = self.session.content_cache()
        report = cache.purge(objects, dry_run=result.dry_run)
        result.freed_bytes += report.freed_bytes
        result.caches.append(f"content cache {cache.root} (and writable shared caches): "
                             f"{report.freed_bytes} bytes")
        for root in report.read_only:
            result.caches.append(
                f"shared cache {root} is read-only to you and still holds some of them: ask "
                "its owner to run the same purge there"
            )
        work_tree = self.session.repo.work_tree
        if work_tree is not None:
            dvc_cache = _dvc_cache_dir(work_tree)
            freed, read_only = remove_cached_objects(dvc_cache, objects, dry_run=result.dry_run)
            result.freed_bytes += freed
            state = " (some files are read-only to you)" if read_only else ""
            result.caches.append(f"DVC cache {dvc_cache}: {freed} bytes{state}")


def _dvc_cache_dir(work_tree: Path) -> Path:
    """The clone's DVC cache: ``cache.dir`` of its DVC config (made absolute by DVC), else
    ``.dvc/cache``."""
    from dvc.config import Config

    configured = (Config(dvc_dir=str(work_tree / ".dvc")).get("cache") or {}).get("dir")
    return Path(configured) if configured else work_tree / ".dvc" / "cache"


def _size(remote: RemoteStore, md5: str) -> int:
    """An object's size on the remote, 0 if it is not there."""
    try:
        return remote.size(md5)
    except RegistryError:
        return 0
