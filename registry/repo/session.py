"""One registry opened for one call: the resolved settings, its Git repository, its names.

Shared by the dataset and model APIs: where the registry is (see :mod:`registry.config`), which
dataset and model names exist in its tree, which names a new artifact may take
(:meth:`Session.check_new_name`), and how a reference resolves to a release.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from registry import layout
from registry.config import (
    PARAMS_FILE,
    Settings,
    load_settings,
    parse_params,
    registry_section,
    strict_loading,
)
from registry.errors import (
    ArtifactExistsError,
    InvalidReferenceError,
    NotARegistryError,
    PurgedVersionError,
    WrongKindError,
    YankedVersionError,
)
from registry.grammar import Reference, parse_name, parse_reference
from registry.repo.git import GitRepo
from registry.repo.records import last_reproduced
from registry.repo.signatures import check_signed
from registry.repo.tags import Purge, Release, TagIndex, parse_purge

if TYPE_CHECKING:
    from registry.storage.cache import ContentCache

__all__ = [
    "Kind",
    "Session",
    "YankedVersionWarning",
    "as_reference",
    "check_purged",
    "check_yanked",
    "open_session",
    "purge_of",
    "purge_summary",
]

Kind = Literal["dataset", "model"]
RegistryArg = str | os.PathLike[str] | None

log = logging.getLogger("registry")
# Shared cache folders already warned about in this process (a warning per folder, not per load).
_warned: set[Path] = set()
_warned_lock = threading.Lock()
# Folders inside a dataset's folder that never hold another dataset's builder.
_NOT_DATASET_FOLDERS = ("dummy_data", "prepared")


def _files_ending(root: Path, top: str, suffix: str, skip: Iterable[str] = ()) -> list[str]:
    """The files under ``root/top`` whose path ends with ``suffix``, as ``/``-separated paths
    relative to ``root``; hidden folders, ``skip``'s and links to folders are not entered.

    ``os.scandir`` and string paths: ``os.walk`` with a ``relpath`` a folder, or a recursive
    ``Path.glob``, cost 16-19 ms on 1,000 datasets or models, every ``list`` and ``search``.

    Example:
        >>> _files_ending(Path("."), "models", "/README.md")  # doctest: +SKIP
        ['models/digits-cnn/README.md']
    """
    skipped = set(skip)
    found: list[str] = []
    folders = [top]
    while folders:
        folder = folders.pop()
        try:
            entries = os.scandir(root / folder)
        except OSError:
            continue  # gone, or not a folder
        with entries:
            for entry in entries:
                path = f"{folder}/{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    if entry.name[0] != "." and entry.name not in skipped:
                        folders.append(path)
                elif path.endswith(suffix):
                    found.append(path)
    return found


class YankedVersionWarning(UserWarning):
    """A yanked version was loaded by an exact pin or a stage (PEP 592): it still loads, but
    its owners withdrew it, for the reason the warning gives.

    Example:
        >>> import warnings
        >>> warnings.simplefilter("error", YankedVersionWarning)  # make it an error instead
    """


def purge_of(repo: GitRepo, release: Release) -> Purge | None:
    """What a purge of ``release`` recorded (``None``: its bytes were never purged).

    Read from the yank tag's whole message (:func:`~registry.repo.tags.parse_purge`): one Git
    call, made only for a yanked version, so a live one pays nothing.

    Example:
        >>> purge_of(session.repo, release)  # doctest: +SKIP
        Purge(by='ada@lab.org', at='2026-12-04T10:00:00+00:00', objects=(...), kept=())
    """
    if release.yanked is None:
        return None
    return parse_purge(repo.tag_message(release.yanked.tag))


def purge_summary(repo: GitRepo, release: Release | None) -> str | None:
    """Who purged ``release`` and when, as ``info`` shows it (``None``: not purged).

    Example:
        >>> purge_summary(session.repo, release)  # doctest: +SKIP
        'by ada@lab.org on 2026-12-04'
    """
    purge = purge_of(repo, release) if release is not None else None
    if purge is None:
        return None
    return (f"by {purge.by} " if purge.by else "") + f"on {purge.at[:10]}"


def last_reproduction(repo: GitRepo, release: Release | None) -> dict[str, Any] | None:
    """The last reproduction of ``release`` recorded in its lineage note, as ``info`` shows it
    (``None``: none; the format: :func:`registry.repo.records.last_reproduced`).

    One Git call, on the tagged commit's note (:data:`registry.repo.git.NOTES_REF`).
    """
    if release is None:
        return None
    return last_reproduced(repo.note(release.commit), release.tag)


def check_purged(repo: GitRepo, release: Release, kind: Kind) -> None:
    """Refuse a version whose bytes a purge deleted (``yank --purge``), saying when and why.

    Raises:
        PurgedVersionError: If the version's yank tag records a purge (:func:`purge_of`).
    """
    yank = release.yanked
    purge = purge_of(repo, release)
    if yank is not None and purge is not None:
        raise PurgedVersionError(
            kind, release.name, release.version, yank.reason, purge.by, purge.at
        )


def check_yanked(release: Release, kind: Kind, *, strict: bool = False) -> None:
    """Warn that ``release`` is yanked, or refuse it when loading is strict; pass a live one.

    The one place that decides what loading a yanked version does: a load, a pull and a stage
    reference all come through :meth:`Session.resolve`, which calls this.

    Args:
        release: The resolved release.
        kind: ``"dataset"`` or ``"model"``, for the message.
        strict: Refuse instead of warning (also when ``REGISTRY_STRICT`` is true).

    Raises:
        YankedVersionError: If it is yanked and loading is strict.
        ConfigError: If ``REGISTRY_STRICT`` is not a boolean.

    Example:
        >>> check_yanked(release, "dataset")  # doctest: +SKIP
    """
    yank = release.yanked
    if yank is None:
        return
    if strict or strict_loading():
        raise YankedVersionError(kind, release.name, release.version, yank.reason, yank.by, yank.at)
    who = f" by {yank.by}" if yank.by else ""
    warnings.warn(
        YankedVersionWarning(
            f"YANKED: {release.name} {release.version} was yanked{who} on {yank.at[:10]}: "
            f"{yank.reason}. It still loads, as an exact pin or a stage does; load a later version "
            f"('registry {kind}s info {release.name}'), or set REGISTRY_STRICT=1 to refuse "
            "yanked versions"
        ),
        stacklevel=4,  # the caller of load_dataset, pull_dataset, load_model ...
    )


@dataclass
class Session:
    """A registry and its settings, for the length of one API call.

    Attributes:
        settings: The resolved configuration.
        repo: The registry's Git repository (a work tree, or a mirror of a URL).
    """

    settings: Settings
    repo: GitRepo
    _index: tuple[object, TagIndex] | None = field(default=None, repr=False, compare=False)

    @property
    def root(self) -> Path:
        """The work tree; raises for a mirror (operations that write need a clone)."""
        if self.repo.work_tree is None:
            raise NotARegistryError(
                f"this needs a clone of the registry, and {self.repo.url!r} is a remote URL; "
                "clone it and run the command inside the clone"
            )
        return self.repo.work_tree

    def content_cache(self) -> ContentCache:
        """The user's content cache, reading the configured shared cache first where it is up.

        A configured ``shared_cache_dir`` that is not a folder now (a mount that is down, a
        typo) is left out with a warning, once per process, and loads use the remote.
        """
        from registry.storage.cache import ContentCache

        shared = self.settings.shared_cache_dir
        if shared is None:
            return ContentCache(self.settings.cache_dir)
        if not shared.is_dir():
            with _warned_lock:
                first = shared not in _warned
                _warned.add(shared)
            if first:
                log.warning(
                    "the shared cache %s (shared_cache_dir, REGISTRY_SHARED_CACHE) is not a "
                    "folder or cannot be reached; loading from the DVC remote instead. Mount "
                    "it, or fix or unset the setting",
                    shared,
                )
            return ContentCache(self.settings.cache_dir)
        return ContentCache(self.settings.cache_dir, shared=[shared])

    def index(self) -> TagIndex:
        """Releases and stages from the tags as they are now (cached until they may change).

        The index is lazy: an artifact's tags are listed when it is first asked about (one git
        call), every tag when a command asks about all of them (:class:`TagIndex`).
        """
        state = self.repo.tag_state
        # The repo makes a new state whenever its tags may have changed.
        if self._index is None or self._index[0] is not state:
            self._index = (state, TagIndex.lazy(self.repo.tags, self.repo.tagged_artifacts))
        return self._index[1]

    def known_datasets(self) -> list[str]:
        """Datasets that exist as builder folders (work tree, or HEAD of a mirror)."""
        if self.repo.work_tree is not None:
            found = _files_ending(self.repo.work_tree, layout.DATASETS_DIR, layout.BUILDER_SUFFIX,
                                  skip=_NOT_DATASET_FOLDERS)
            return layout.dataset_names_in(found)
        return layout.dataset_names_in(self.repo.list_files("HEAD", layout.DATASETS_DIR))

    def known_models(self) -> list[str]:
        """Models that have a card (``models/<name>/README.md``) in the tree."""
        if self.repo.work_tree is not None:
            found = _files_ending(self.repo.work_tree, layout.MODELS_DIR, "/README.md")
            return layout.model_names_in(found)
        return layout.model_names_in(self.repo.list_files("HEAD", layout.MODELS_DIR))

    def has(self, name: str, kind: Kind) -> bool:
        """Whether ``name`` is a ``kind`` in the tree: :meth:`known_datasets` /
        :meth:`known_models` asked about one name, without listing every one (a file check in a
        clone)."""
        if self.repo.work_tree is None:
            return name in self.known(kind)
        if kind == "dataset":
            if any(part in _NOT_DATASET_FOLDERS for part in name.split("/")):
                return False
            return (self.repo.work_tree / layout.builder_file(name)).is_file()
        return (self.repo.work_tree / layout.card_file(name)).is_file()

    def in_tree(self, names: Iterable[str], kind: Kind) -> set[str]:
        """The names among ``names`` that are a ``kind`` in the tree: :meth:`has` for each in a
        clone (a file check), one listing of the tree for a mirror.

        Example:
            >>> open_session(".").in_tree(["digits-cnn", "image_classification/digits"], "model")
            ... # doctest: +SKIP
            {'digits-cnn'}
        """
        if self.repo.work_tree is None:
            return set(names) & set(self.known(kind))
        return {name for name in names if self.has(name, kind)}

    def known(self, kind: Kind) -> list[str]:
        """The names of ``kind`` in the tree."""
        return self.known_datasets() if kind == "dataset" else self.known_models()

    def check_new_name(self, name: str, kind: Kind, *, declared: Iterable[str] = ()) -> str:
        """The one rule for naming a new artifact: a valid name that no dataset or model has.

        Datasets and models share one set of names (and GTO's tags), so a name that either kind
        has is taken for both. A new dataset also may not sit inside another dataset's folder or
        around one (a dataset folder never holds another), nor take ``datasets/<name>/`` or
        ``models/<name>/`` where such a folder exists; a new model's card may go into an existing
        ``models/<name>/`` that has none yet.

        Args:
            name: The new artifact's name.
            kind: The kind being created.
            declared: Dataset names known other than by their builder folder (``dvc.yaml``'s build
                stage, ``params.yaml``), from a caller that reads them.

        Returns:
            ``name``, validated.

        Raises:
            InvalidNameError: If ``name`` breaks the name grammar.
            ArtifactExistsError: If the name is taken, or would nest in or around a dataset.
            NotARegistryError: If the registry is not a clone (new artifacts are written there).

        Example:
            >>> open_session(".").check_new_name("products/product_b/reviews", "dataset")
            'products/product_b/reviews'
        """
        name = parse_name(name)
        root = self.root
        datasets = set(self.known_datasets()) | set(declared)
        model_folder = (root / layout.model_dir(name)).is_dir()
        if name in datasets:
            _taken(name, kind, "dataset", layout.dataset_dir(name))
        if name in self.known_models() or (kind == "dataset" and model_folder):
            _taken(name, kind, "model", layout.model_dir(name))
        if kind == "dataset":
            _check_not_nested(name, datasets)
        if (root / layout.dataset_dir(name)).exists():
            raise ArtifactExistsError(
                name,
                name,
                f"{layout.dataset_dir(name)}/ already exists (it holds no builder); move it away "
                "or choose another name",
                kind=kind,
                existing_kind="dataset",
            )
        return name

    def kind_of(self, name: str, index: TagIndex | None = None) -> Kind | None:
        """The one rule for what ``name`` is: a dataset or a model, or ``None`` if neither.

        The tree says it first (a builder folder, a model card); a name gone from the tree is
        what its latest release held (a builder, or a card), one read.

        Args:
            name: The artifact name.
            index: The tag index already read, if any (saves a git call).

        Example:
            >>> open_session(".").kind_of("digits-cnn")  # doctest: +SKIP
            'model'
        """
        if self.has(name, "dataset"):
            return "dataset"
        if self.has(name, "model"):
            return "model"
        latest = (index or self.index()).latest(name)
        if latest is None:
            return None
        if self.repo.read_file(latest.commit, layout.builder_file(name)) is not None:
            return "dataset"
        if self.repo.read_file(latest.commit, layout.card_file(name)) is not None:
            return "model"
        return None

    def check_kind(
        self, name: str, kind: Kind, *, command: str = "info", index: TagIndex | None = None
    ) -> None:
        """Refuse ``name`` where a ``kind`` is expected if it is of the other kind.

        A name that is neither passes (the caller's own lookup says it is unknown).

        Args:
            name: The artifact named.
            kind: What the command works on.
            command: The other kind's subcommand to suggest (``info``, ``pull`` ...).
            index: The tag index already read, if any.

        Raises:
            WrongKindError: If ``name`` is a dataset and ``kind`` is ``model``, or the reverse.

        Example:
            >>> open_session(".").check_kind("cifar", "model")  # doctest: +SKIP
            Traceback (most recent call last):
            WrongKindError: 'cifar' is a dataset, not a model; ...
        """
        actual = self.kind_of(name, index)
        if actual is not None and actual != kind:
            raise WrongKindError(name, actual, kind, command=command)

    def resolve(
        self,
        ref: Reference,
        kind: Kind,
        *,
        command: str = "info",
        strict: bool = False,
        describe: bool = False,
    ) -> Release:
        """Resolve ``ref`` to a release, fetching a mirror's tags only when they may be stale.

        A range or "latest" never resolves to a yanked version; an exact pin or a stage does,
        with a :class:`YankedVersionWarning`, or not at all when loading is strict
        (:func:`check_yanked`).

        Args:
            ref: The parsed reference.
            kind: What the caller works on; a name of the other kind is refused.
            command: The other kind's subcommand that the refusal suggests.
            strict: Refuse a yanked version (also when ``REGISTRY_STRICT`` is true).
            describe: The caller only describes the version from Git (info, lineage), and
                says itself that it is yanked: a yanked version is not warned about, and a
                purged one not refused, since its record outlives its bytes.

        Raises:
            WrongKindError: If ``ref`` names an artifact of the other kind.
            ArtifactNotFoundError: If no artifact has that name.
            VersionNotFoundError: If no release matches.
            UntrustedVersionError: With ``registry.require_signed_tags``, if the version's tag
                is not signed by an allowed signer (a subclass per case:
                :func:`~registry.repo.signatures.check_signed`).
            YankedVersionError: If the version is yanked and loading is strict.
            PurgedVersionError: If the version was purged (:func:`check_purged`) and
                ``describe`` is false.
        """
        index = self.index()
        spec = ref.version
        # A version pinned exactly and known here (yanked or not) is not fetched for again,
        # unless loading is strict: then a yank made elsewhere since must be seen.
        releases = [*index.releases(ref.name), *index.yanked(ref.name)]
        pinned = spec is not None and spec.is_exact and not (strict or strict_loading())
        if not (pinned and spec is not None and any(spec.matches(r.version) for r in releases)):
            self.repo.refresh()
            index = self.index()
        if self.has(ref.name, kind):
            known = [ref.name]  # every name is listed only for an error's suggestions
        else:
            # Only a name not in the tree as this kind can be the other kind: the usual load
            # pays nothing for the check.
            self.check_kind(ref.name, kind, command=command, index=index)
            known = self.known(kind)
        release = index.resolve(ref, known=known, kind=kind)
        if self.settings.require_signed_tags:
            check_signed(self.repo, release)
        if not describe:  # a description says it is yanked or purged itself
            check_purged(self.repo, release, kind)
            check_yanked(release, kind, strict=strict)
        return release


def open_session(registry: RegistryArg = None) -> Session:
    """Open the registry named by ``registry`` or by the configuration.

    Raises:
        NotARegistryError: If nothing says where the registry is.
        RemoteError: If a registry URL cannot be cloned.
        ConfigError: If the configuration, or a registry URL's own ``params.yaml``, is invalid.
    """
    url = str(registry) if registry is not None else None
    settings = load_settings(url=url)
    if settings.url is None:
        raise NotARegistryError(
            "no registry configured: run inside a clone of the registry, or set REGISTRY_URL "
            "to its Git URL (or `url` in the user config file, see 'registry --help')"
        )
    repo = GitRepo.open(settings.url, settings.cache_dir)
    if repo.work_tree is None:
        # A registry read by Git URL: its own params.yaml (default branch) configures the lab's
        # settings (stages, shared cache), not the clone one happens to be working in.
        section = _registry_section(repo)
        if section is not None:
            settings = load_settings(url=url, registry_section=section)
    return Session(settings, repo)


def _registry_section(repo: GitRepo) -> dict[str, Any] | None:
    """The ``registry:`` section of ``params.yaml`` at a mirror's default branch, if any.

    Raises:
        NotARegistryError: If the repository has no commits (an empty repository is no registry).
        ConfigError: If that ``params.yaml`` is broken (naming the line) or its section is not a
            mapping: the lab's settings cannot be known, so guessing them would mislead.
    """
    commit = repo.git("rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False).strip()
    if not commit:
        raise NotARegistryError(
            f"{repo.url} has no commits, so it holds no registry yet: push a registry's main "
            "branch to it first, or point REGISTRY_URL (--registry) at the lab's registry"
        )
    data = repo.read_file(commit, PARAMS_FILE)
    if data is None:
        return None
    where = f"{PARAMS_FILE} at commit {commit[:12]} of {repo.url}"
    return registry_section(parse_params(data, where), where) or None


def _taken(name: str, kind: Kind, by: Kind, folder: str) -> NoReturn:
    """Refuse ``name`` for a new ``kind``: an artifact of kind ``by`` has it."""
    if by == kind:
        reason = f"a {by} of that name exists ({folder}/)"
    else:
        reason = f"a {by} has that name ({folder}/), and a dataset and a model never share a name"
    raise ArtifactExistsError(name, name, reason, kind=kind, existing_kind=by)


def _check_not_nested(name: str, datasets: Iterable[str]) -> None:
    """Refuse a new dataset inside another dataset's folder, or around one."""
    for existing in sorted(datasets):
        if name.startswith(f"{existing}/"):
            raise ArtifactExistsError(
                name,
                existing,
                f"it would be inside dataset {existing!r} ({layout.dataset_dir(existing)}/); a "
                "dataset folder holds no other dataset, so make it a sibling instead",
                kind="dataset",
            )
        if existing.startswith(f"{name}/"):
            raise ArtifactExistsError(
                name,
                existing,
                f"{name!r} is a group holding dataset {existing!r}; a dataset cannot contain "
                "another, so give the new one its own name in the group",
                kind="dataset",
            )


def as_reference(ref: str | Reference) -> Reference:
    """``ref`` parsed, if it is not a :class:`Reference` already.

    Raises:
        InvalidReferenceError: If ``ref`` is malformed, or not text at all (``None``, a number).
    """
    if isinstance(ref, Reference):
        return ref
    if not isinstance(ref, str):
        raise InvalidReferenceError(
            str(ref), f"a reference is text such as 'name:1.0.0', not {type(ref).__name__}"
        )
    return parse_reference(ref)
