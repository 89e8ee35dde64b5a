"""Releases and stages, read from Git tags, and references resolved against them.

One :class:`TagIndex` is built from one tag listing; every lookup after that is in memory, so
listing and resolving stay instant with thousands of tags.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from registry.errors import ArtifactNotFoundError, VersionNotFoundError
from registry.grammar import (
    DeprecateTag,
    DeregisterTag,
    Reference,
    RegisterTag,
    StageTag,
    Version,
    VersionSpec,
    parse_tag,
    tag_artifact,
)
from registry.repo.git import TagRef

__all__ = ["Purge", "Release", "TagIndex", "Yank", "parse_purge", "yank_message"]

# The subject line of a yank tag's message: the reason is read back from it, so that one
# ``for-each-ref`` call gives every yanked version's reason.
_YANK_SUBJECT = "Yank {name} {version}: "


@dataclass(frozen=True)
class Yank:
    """Why, by whom and when a version was yanked (GTO's deregistration tag ``name@vX.Y.Z!``).

    Attributes:
        reason: The reason given (for a tag made by GTO or by hand: its subject line).
        by: The tagger's email (``""`` if unknown).
        at: When the tag was made (ISO 8601).
        tag: The deregistration tag.
    """

    reason: str
    by: str
    at: str
    tag: str


@dataclass(frozen=True)
class Purge:
    """What a purge deleted, recorded in the yank tag's message (``yank --purge``).

    Attributes:
        by: Who purged (the tagger's email).
        at: When (ISO 8601).
        objects: The DVC objects deleted (``<md5>`` or ``<md5>.dir``), sorted.
        kept: The version's objects that were kept because a live version or a branch uses
            them, sorted.
    """

    by: str
    at: str
    objects: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()


def yank_message(
    name: str, version: Version, reason: str, by: str, at: str, purge: Purge | None = None
) -> str:
    """The message of the tag that yanks ``version`` of ``name``: the reason on the subject line
    (which :class:`TagIndex` reads back), then who and when, then what a purge deleted (read
    back by :func:`parse_purge`; a message without those lines is a yank without purge).

    Example:
        >>> print(yank_message("d", Version(1, 0, 0), "bad labels", "a@lab.org", "2026-01-01"))
        Yank d 1.0.0: bad labels
        <BLANKLINE>
        yanked-by: a@lab.org
        yanked-at: 2026-01-01
    """
    subject = _YANK_SUBJECT.format(name=name, version=version) + " ".join(reason.split())
    message = f"{subject}\n\nyanked-by: {by}\nyanked-at: {at}"
    if purge is not None:
        message += (
            f"\npurged-by: {purge.by}\npurged-at: {purge.at}"
            f"\npurged-objects: {' '.join(purge.objects)}\nkept-objects: {' '.join(purge.kept)}"
        )
    return message


def parse_purge(message: str) -> Purge | None:
    """The purge a yank tag's message records, or ``None`` (a yank without purge, or a tag made
    before purges were recorded).

    Example:
        >>> parse_purge("Yank d 1.0.0: x\n\npurged-by: a@lab.org\npurged-at: 2026-01-01\n"
        ...             "purged-objects: 0123 4567\nkept-objects: ")
        Purge(by='a@lab.org', at='2026-01-01', objects=('0123', '4567'), kept=())
    """
    fields: dict[str, str] = {}
    for line in message.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.startswith(("purged-", "kept-")):
            fields[key] = value.strip()
    if "purged-at" not in fields:
        return None
    return Purge(
        fields.get("purged-by", ""),
        fields["purged-at"],
        tuple(fields.get("purged-objects", "").split()),
        tuple(fields.get("kept-objects", "").split()),
    )


@dataclass(frozen=True)
class Release:
    """A released version of an artifact.

    Attributes:
        name: The artifact name.
        version: Its version.
        tag: The Git tag that registered it (``name@vX.Y.Z``).
        commit: The commit the tag points at.
        yanked: Why, by whom and when it was yanked; ``None`` for a live version.

    When the tag was made is not kept: a listing of every tag reads no tag object
    (:class:`~registry.repo.git.TagRef`); :meth:`registry.repo.git.GitRepo.tag_dates` reads it
    for the releases that need it.
    """

    name: str
    version: Version
    tag: str
    commit: str
    yanked: Yank | None = None

    @property
    def reference(self) -> str:
        """``name:X.Y.Z``: how a card records it (``datasets``, ``base_model``) and a user pins it.

        Example:
            >>> release.reference  # doctest: +SKIP
            'image_classification/digits:1.0.0'
        """
        v = self.version
        return str(Reference(self.name, VersionSpec(v.major, v.minor, v.patch)))


class TagIndex:
    """Every artifact's releases, stages and deprecation, from one list of tags.

    Yanked versions (PEP 592) are kept apart: :meth:`releases` and :meth:`latest` leave them
    out, so a range or "latest" never resolves to one, while an exact pin or a stage still does
    (:meth:`resolve`), with :attr:`Release.yanked` saying why.

    Built from every tag (``TagIndex(tags)``), or lazily (:meth:`lazy`): then each artifact's
    tags are listed when it is first asked about, so a command about one version reads that
    artifact's tags only, not the 15,000 of a large registry; :meth:`names` lists them all.
    """

    # Past this many artifacts asked about one by one, listing every tag at once is cheaper.
    _LAZY_LIMIT = 64

    def __init__(self, tags: Iterable[TagRef]) -> None:
        self._loader: Callable[[list[str] | None], Iterable[TagRef]] | None = None
        self._artifacts: Callable[[], Iterable[str]] | None = None
        self._loaded: set[str] = set()
        self._reset()
        self._add(tags)

    def _reset(self) -> None:
        """Forget every tag read."""
        self._ever: dict[str, set[Version]] = {}
        self._releases: dict[str, list[Release]] = {}
        self._yanked: dict[str, list[Release]] = {}
        self._stages: dict[str, dict[str, Release]] = {}
        self._deprecated: set[str] = set()
        self._counters: dict[str, int] = defaultdict(int)

    @classmethod
    def lazy(
        cls,
        load: Callable[[list[str] | None], Iterable[TagRef]],
        artifacts: Callable[[], Iterable[str]] | None = None,
    ) -> TagIndex:
        """An index that lists an artifact's tags when first asked about it.

        Args:
            load: Called with artifact names, returns every GTO tag of those artifacts; called
                with ``None``, returns every tag (:meth:`registry.repo.git.GitRepo.tags`).
            artifacts: Every name a tag names, if the loader knows them already
                (:meth:`registry.repo.git.GitRepo.tagged_artifacts`); else from ``load(None)``.

        Example:
            >>> index = TagIndex.lazy(repo.tags)  # doctest: +SKIP
            >>> index.latest("digits-cnn")  # one git call, for digits-cnn's tags only
            ... # doctest: +SKIP
        """
        index = cls(())
        index._loader, index._artifacts = load, artifacts
        return index

    def _need(self, *names: str) -> None:
        """Make sure the tags of ``names`` are read (a lazy index lists them now)."""
        if self._loader is None:
            return
        missing = [n for n in names if n not in self._loaded]
        if not missing:
            return
        if len(self._loaded) + len(missing) > self._LAZY_LIMIT:
            self._need_all()
            return
        self._add(self._loader(missing))
        self._loaded.update(missing)

    def _need_all(self) -> None:
        """Read every tag (a lazy index becomes a full one)."""
        if self._loader is None:
            return
        load, self._loader = self._loader, None
        self._reset()
        self._add(load(None))

    def preload(self, names: Iterable[str]) -> None:
        """Read the tags of ``names`` in one listing, before asking about them one by one.

        However many they are: a command about one kind of artifact reads that kind's tags
        only (:meth:`tagged_names` says which names there are), not every tag.
        """
        if self._loader is None:
            return
        missing = sorted({n for n in names if n not in self._loaded})
        if missing:
            self._add(self._loader(missing))
            self._loaded.update(missing)

    def tagged_names(self) -> set[str]:
        """The name of every artifact that a tag names (what comes before its ``@`` or ``#``),
        from the tags' names alone: no tag is parsed or indexed.

        A superset of :meth:`every_name` (a foreign tag's name, an artifact with stage tags
        only), for a command that narrows it down to one kind and then :meth:`preload`\ s
        those.

        Example:
            >>> sorted(index.tagged_names())  # doctest: +SKIP
            ['digits-cnn', 'image_classification/digits', 'v1.0.0']
        """
        if self._loader is None:
            return set(self._ever) | set(self._stages) | self._deprecated
        if self._artifacts is not None:
            return set(self._artifacts())
        return {tag_artifact(t.name) for t in self._loader(None)}

    def _add(self, tags: Iterable[TagRef]) -> None:
        """Index ``tags``: every tag of each artifact they name (an artifact is added whole)."""
        registered: dict[str, dict[Version, Release]] = defaultdict(dict)
        withdrawn: dict[str, dict[Version, Yank]] = defaultdict(dict)
        stage_events: dict[str, list[tuple[int, StageTag, str]]] = defaultdict(list)
        for ref in tags:
            tag = parse_tag(ref.name)
            if isinstance(tag, RegisterTag):
                registered[tag.name][tag.version] = Release(
                    tag.name, tag.version, ref.name, ref.commit
                )
            elif isinstance(tag, DeregisterTag):
                prefix = _YANK_SUBJECT.format(name=tag.name, version=tag.version)
                reason = ref.message.removeprefix(prefix).strip() or "no reason given"
                withdrawn[tag.name][tag.version] = Yank(reason, ref.tagger, ref.created, ref.name)
            elif isinstance(tag, StageTag):
                stage_events[tag.name].append((tag.counter, tag, ref.commit))
                self._counters[tag.name] = max(self._counters[tag.name], tag.counter)
            elif isinstance(tag, DeprecateTag):
                self._deprecated.add(tag.name)
                self._counters[tag.name] = max(self._counters[tag.name], tag.counter)
        for name, found in registered.items():
            self._ever[name] = set(found) | set(withdrawn[name])
            ordered = sorted(found.values(), key=lambda r: r.version)
            yanks = withdrawn.get(name, {})
            self._releases[name] = [r for r in ordered if r.version not in yanks]
            self._yanked[name] = [
                replace(r, yanked=yanks[r.version]) for r in ordered if r.version in yanks
            ]
        for name, events in stage_events.items():
            self._stages[name] = self._current_stages(name, events)

    def _current_stages(
        self, name: str, events: list[tuple[int, StageTag, str]]
    ) -> dict[str, Release]:
        """Each stage of ``name`` and the release it points at, from its stage tags in order."""
        every = [*self._releases.get(name, []), *self._yanked.get(name, [])]
        by_commit = {r.commit: r for r in every}
        current: dict[str, Release] = {}
        for _, tag, commit in sorted(events, key=lambda e: e[0]):
            release = by_commit.get(commit)
            if tag.unassign:
                if release is not None and current.get(tag.stage) == release:
                    del current[tag.stage]
            elif release is not None:
                current[tag.stage] = release
        return current

    def names(self) -> list[str]:
        """Names of every artifact with at least one release, sorted."""
        self._need_all()
        return sorted(name for name, releases in self._releases.items() if releases)

    def every_name(self) -> list[str]:
        """Names of every artifact ever released, even if each of its versions is yanked."""
        self._need_all()
        return sorted(self._releases)

    def releases(self, name: str) -> list[Release]:
        """The releases of ``name``, oldest version first (yanked ones left out)."""
        self._need(name)
        return list(self._releases.get(name, []))

    def yanked(self, name: str) -> list[Release]:
        """The yanked releases of ``name``, oldest version first, each with its :class:`Yank`."""
        self._need(name)
        return list(self._yanked.get(name, []))

    def yank_reasons(self, name: str) -> dict[str, str]:
        """Each yanked version of ``name`` (``"1.2.0"``) and why: what listings show.

        Example:
            >>> index.yank_reasons("products/product_a/ad_clicks")  # doctest: +SKIP
            {'1.2.0': 'labels of 3% of the clicks are swapped'}
        """
        return {str(r.version): r.yanked.reason for r in self.yanked(name) if r.yanked}

    def find(self, name: str, version: Version) -> Release | None:
        """The release of exactly ``version`` of ``name``, yanked or not, or ``None``."""
        self._need(name)
        for release in [*self._releases.get(name, []), *self._yanked.get(name, [])]:
            if release.version == version:
                return release
        return None

    def ever_released(self, name: str, version: Version) -> bool:
        """Whether ``version`` of ``name`` was ever released, even if withdrawn since."""
        self._need(name)
        return version in self._ever.get(name, set())

    def latest(self, name: str) -> Release | None:
        """The highest released version of ``name``, or ``None``."""
        self._need(name)
        releases = self._releases.get(name)
        return releases[-1] if releases else None

    def stages(self, name: str) -> dict[str, Release]:
        """The stages of ``name`` and the release each one points at."""
        self._need(name)
        return dict(self._stages.get(name, {}))

    def next_counter(self, name: str) -> int:
        """The counter for ``name``'s next stage or deprecation tag (GTO counts per artifact)."""
        self._need(name)
        return self._counters.get(name, 0) + 1

    def is_deprecated(self, name: str) -> bool:
        """Whether ``name`` carries a deprecation tag."""
        self._need(name)
        return name in self._deprecated

    def resolve(self, ref: Reference, known: Iterable[str] = (), *, kind: str) -> Release:
        """Return the release that ``ref`` names: pinned, the latest matching, or a stage's.

        PEP 592: "latest" and a range (``1.*``) never resolve to a yanked version; an exact pin
        and a stage do, and the release's ``yanked`` says so (the caller warns or refuses).

        Args:
            ref: The parsed reference.
            known: Names of artifacts that exist without releases (for the error's suggestions).
            kind: ``dataset`` or ``model``: the messages name that kind's commands.

        Raises:
            ArtifactNotFoundError: If ``ref.name`` is neither released nor known.
            VersionNotFoundError: If no release matches the version or stage.
        """
        self._need(ref.name)
        releases = self._releases.get(ref.name)
        known = set(known)
        if releases is None and ref.name not in known:
            self._need_all()  # the suggestions come from every artifact
            raise ArtifactNotFoundError(ref.name, known | set(self._releases), kind=kind)
        releases = releases or []
        available = [str(r.version) for r in releases]
        if ref.stage is not None:
            release = self._stages.get(ref.name, {}).get(ref.stage)
            if release is None:
                stages = sorted(self._stages.get(ref.name, {}))
                raise VersionNotFoundError(
                    ref.name,
                    f"@{ref.stage} (stages: {', '.join(stages) or 'none'})",
                    available,
                    kind=kind,
                )
            return release
        matching = [r for r in releases if ref.version is None or ref.version.matches(r.version)]
        yanked = [
            r
            for r in self._yanked.get(ref.name, [])
            if ref.version is None or ref.version.matches(r.version)
        ]
        if ref.version is not None and ref.version.is_exact and yanked and not matching:
            return yanked[-1]
        if not matching:
            wanted = str(ref.version or "any version")
            if yanked:
                pins = ", ".join(f"{ref.name}:{r.version}" for r in yanked)
                wanted += f" that is not yanked (yanked: {pins}; pin one exactly to load it)"
            raise VersionNotFoundError(ref.name, wanted, available, kind=kind)
        return matching[-1]
