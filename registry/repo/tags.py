"""Releases and stages, read from Git tags, and references resolved against them.

One :class:`TagIndex` is built from one tag listing; every lookup after that is in memory, so
listing and resolving stay instant with thousands of tags.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

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
)
from registry.repo.git import TagRef

__all__ = ["Release", "TagIndex"]


@dataclass(frozen=True)
class Release:
    """A released version of an artifact.

    Attributes:
        name: The artifact name.
        version: Its version.
        tag: The Git tag that registered it (``name@vX.Y.Z``).
        commit: The commit the tag points at.
        created: When the tag was made (ISO 8601).
    """

    name: str
    version: Version
    tag: str
    commit: str
    created: str

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
    """Every artifact's releases, stages and deprecation, from one list of tags."""

    def __init__(self, tags: Iterable[TagRef]) -> None:
        registered: dict[str, dict[Version, Release]] = defaultdict(dict)
        withdrawn: dict[str, set[Version]] = defaultdict(set)
        stage_events: dict[str, list[tuple[int, StageTag, str]]] = defaultdict(list)
        self._deprecated: set[str] = set()
        self._counters: dict[str, int] = defaultdict(int)
        for ref in tags:
            tag = parse_tag(ref.name)
            if isinstance(tag, RegisterTag):
                registered[tag.name][tag.version] = Release(
                    tag.name, tag.version, ref.name, ref.commit, ref.created
                )
            elif isinstance(tag, DeregisterTag):
                withdrawn[tag.name].add(tag.version)
            elif isinstance(tag, StageTag):
                stage_events[tag.name].append((tag.counter, tag, ref.commit))
                self._counters[tag.name] = max(self._counters[tag.name], tag.counter)
            elif isinstance(tag, DeprecateTag):
                self._deprecated.add(tag.name)
                self._counters[tag.name] = max(self._counters[tag.name], tag.counter)
        self._ever = {name: set(found) | withdrawn[name] for name, found in registered.items()}
        self._releases = {
            name: sorted(
                (r for v, r in versions.items() if v not in withdrawn[name]),
                key=lambda r: r.version,
            )
            for name, versions in registered.items()
        }
        self._stages: dict[str, dict[str, Release]] = {}
        for name, events in stage_events.items():
            by_commit = {r.commit: r for r in self._releases.get(name, [])}
            current: dict[str, Release] = {}
            for _, tag, commit in sorted(events, key=lambda e: e[0]):
                release = by_commit.get(commit)
                if tag.unassign:
                    if release is not None and current.get(tag.stage) == release:
                        del current[tag.stage]
                elif release is not None:
                    current[tag.stage] = release
            self._stages[name] = current

    def names(self) -> list[str]:
        """Names of every artifact with at least one release, sorted."""
        return sorted(name for name, releases in self._releases.items() if releases)

    def releases(self, name: str) -> list[Release]:
        """The releases of ``name``, oldest version first (withdrawn ones left out)."""
        return list(self._releases.get(name, []))

    def ever_released(self, name: str, version: Version) -> bool:
        """Whether ``version`` of ``name`` was ever released, even if withdrawn since."""
        return version in self._ever.get(name, set())

    def latest(self, name: str) -> Release | None:
        """The highest released version of ``name``, or ``None``."""
        releases = self._releases.get(name)
        return releases[-1] if releases else None

    def stages(self, name: str) -> dict[str, Release]:
        """The stages of ``name`` and the release each one points at."""
        return dict(self._stages.get(name, {}))

    def next_counter(self, name: str) -> int:
        """The counter for ``name``'s next stage or deprecation tag (GTO counts per artifact)."""
        return self._counters.get(name, 0) + 1

    def is_deprecated(self, name: str) -> bool:
        """Whether ``name`` carries a deprecation tag."""
        return name in self._deprecated

    def resolve(self, ref: Reference, known: Iterable[str] = (), *, kind: str) -> Release:
        """Return the release that ``ref`` names: pinned, the latest matching, or a stage's.

        Args:
            ref: The parsed reference.
            known: Names of artifacts that exist without releases (for the error's suggestions).
            kind: ``dataset`` or ``model``: the messages name that kind's commands.

        Raises:
            ArtifactNotFoundError: If ``ref.name`` is neither released nor known.
            VersionNotFoundError: If no release matches the version or stage.
        """
        releases = self._releases.get(ref.name)
        known = set(known)
        if releases is None and ref.name not in known:
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
        if not matching:
            raise VersionNotFoundError(
                ref.name, str(ref.version or "any version"), available, kind=kind
            )
        return matching[-1]
