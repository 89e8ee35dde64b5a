"""The one grammar for artifact names, versions, references and Git tags.

Names are folder paths under ``datasets/`` or ``models/``; versions are ``MAJOR.MINOR.PATCH`` with
TFDS meaning; references are what users type; tags follow GTO's format so that ``gto show`` and
``dvc artifacts get`` read the registry as it is. Every regex lives here, every value is a frozen
dataclass, and ``parse_x(format(x)) == x`` for each (a hypothesis test holds us to it).

Example:
    >>> parse_reference("products/product_a/ad_clicks:1.*")
    Reference(name='products/product_a/ad_clicks', version=VersionSpec(major=1, minor=None, patch=None), stage=None)
    >>> str(parse_tag("image_classification/digits@v1.0.0"))
    'image_classification/digits@v1.0.0'
"""  # noqa: E501

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from registry.errors import (
    InvalidNameError,
    InvalidReferenceError,
    InvalidVersionError,
)

__all__ = [
    "DeprecateTag",
    "DeregisterTag",
    "Reference",
    "RegisterTag",
    "StageTag",
    "Tag",
    "Version",
    "VersionSpec",
    "format_tag",
    "parse_name",
    "parse_reference",
    "parse_stage",
    "parse_tag",
    "parse_version",
    "parse_version_spec",
    "tag_artifact",
]

_SEGMENT = r"[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?"
NAME_PATTERN = rf"{_SEGMENT}(?:/{_SEGMENT})*"
STAGE_PATTERN = r"[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?"
_NUMBER = r"(?:0|[1-9][0-9]*)"
VERSION_PATTERN = rf"(?P<major>{_NUMBER})\.(?P<minor>{_NUMBER})\.(?P<patch>{_NUMBER})"

NAME_RE = re.compile(rf"^{NAME_PATTERN}$")
STAGE_RE = re.compile(rf"^{STAGE_PATTERN}$")
VERSION_RE = re.compile(rf"^{VERSION_PATTERN}$")
VERSION_SPEC_RE = re.compile(
    rf"^(?P<major>{_NUMBER})(?:\.(?P<minor>{_NUMBER})(?:\.(?P<patch>{_NUMBER}))?)?$"
)
# One regex for every GTO tag form this registry writes or reads.
TAG_RE = re.compile(
    rf"^(?P<name>{NAME_PATTERN})"
    rf"(?:@v(?P<version>{_NUMBER}\.{_NUMBER}\.{_NUMBER})(?P<deregister>!)?"
    rf"|#(?P<stage>{STAGE_PATTERN})(?P<unassign>!)?#(?P<counter>{_NUMBER})"
    rf"|@deprecated#(?P<deprecated>{_NUMBER}))$"
)
MAX_NAME_LENGTH = 200


class Version(NamedTuple):
    """A released version, ``MAJOR.MINOR.PATCH``; orders by semver precedence.

    A tuple, so that hashing and ordering run in C: a listing of 10,000 tags indexes and sorts
    their versions ~50,000 times (a dataclass's generated methods cost ~10 ms of it).
    """

    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def bump(self, part: str) -> Version:
        """Return the next version after bumping ``part`` (``major``, ``minor`` or ``patch``)."""
        if part == "major":
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            return Version(self.major, self.minor + 1, 0)
        if part == "patch":
            return Version(self.major, self.minor, self.patch + 1)
        raise ValueError(f"unknown version part {part!r}: use major, minor or patch")


@dataclass(frozen=True)
class VersionSpec:
    """A version or a version pattern: ``1.2.0`` (exact), ``1.2.*``, ``1.*``."""

    major: int
    minor: int | None = None
    patch: int | None = None

    def __post_init__(self) -> None:
        if self.minor is None and self.patch is not None:
            raise ValueError("a version pattern cannot fix the patch without the minor")

    @property
    def is_exact(self) -> bool:
        """Whether the spec names exactly one version."""
        return self.patch is not None

    def matches(self, version: Version) -> bool:
        """Whether ``version`` satisfies this spec."""
        return (
            version.major == self.major
            and (self.minor is None or version.minor == self.minor)
            and (self.patch is None or version.patch == self.patch)
        )

    def __str__(self) -> str:
        if self.minor is None:
            return f"{self.major}.*"
        if self.patch is None:
            return f"{self.major}.{self.minor}.*"
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class Reference:
    """What a user asks for: a name with an optional version spec or stage.

    At most one of ``version`` and ``stage`` is set; neither means "the latest release".
    """

    name: str
    version: VersionSpec | None = None
    stage: str | None = None

    def __post_init__(self) -> None:
        if self.version is not None and self.stage is not None:
            raise ValueError("a reference names a version or a stage, not both")

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.stage is not None:
            return f"{self.name}@{self.stage}"
        return self.name


@dataclass(frozen=True)
class RegisterTag:
    """``name@vX.Y.Z``: registers (releases) a version."""

    name: str
    version: Version

    def __str__(self) -> str:
        return f"{self.name}@v{self.version}"


@dataclass(frozen=True)
class DeregisterTag:
    """``name@vX.Y.Z!``: withdraws a released version."""

    name: str
    version: Version

    def __str__(self) -> str:
        return f"{self.name}@v{self.version}!"


@dataclass(frozen=True)
class StageTag:
    """``name#stage#N`` assigns a stage; ``name#stage!#N`` (``unassign``) takes it away."""

    name: str
    stage: str
    counter: int
    unassign: bool = False

    def __str__(self) -> str:
        return f"{self.name}#{self.stage}{'!' if self.unassign else ''}#{self.counter}"


@dataclass(frozen=True)
class DeprecateTag:
    """``name@deprecated#N``: deprecates the whole artifact."""

    name: str
    counter: int

    def __str__(self) -> str:
        return f"{self.name}@deprecated#{self.counter}"


Tag = RegisterTag | DeregisterTag | StageTag | DeprecateTag


def parse_name(text: str) -> str:
    """Check that ``text`` is a valid artifact name and return it.

    Args:
        text: A name such as ``products/product_a/ad_clicks``.

    Returns:
        The name, unchanged.

    Raises:
        InvalidNameError: If the name is empty, too long, not lowercase path segments, or could
            escape its folder (``..``, a leading ``/``, a backslash).
    """
    if not text:
        raise InvalidNameError(text, "a name cannot be empty")
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidNameError(text, f"a name has at most {MAX_NAME_LENGTH} characters")
    if NAME_RE.match(text):
        return text
    if text.startswith("/") or "\\" in text or any(p in ("..", ".") for p in text.split("/")):
        raise InvalidNameError(text, "a name is a relative path inside the registry")
    if "//" in text or text.endswith("/"):
        raise InvalidNameError(text, "a name has no empty path segments")
    if text != text.lower():
        raise InvalidNameError(text, "a name is lowercase")
    bad = sorted({c for c in text if not (c.isascii() and (c.isalnum() or c in "/_-"))})
    if bad:
        raise InvalidNameError(text, f"a name cannot contain {''.join(bad)!r}")
    raise InvalidNameError(text, "each path segment starts and ends with a letter or a digit")


def parse_version(text: str) -> Version:
    """Parse ``MAJOR.MINOR.PATCH`` (a leading ``v`` is accepted, as in tags).

    Raises:
        InvalidVersionError: If ``text`` is not of that form.
    """
    match = VERSION_RE.match(text[1:] if text.startswith("v") else text)
    if not match:
        raise InvalidVersionError(text)
    return Version(int(match["major"]), int(match["minor"]), int(match["patch"]))


def parse_version_spec(text: str) -> VersionSpec:
    """Parse an exact version or a pattern: ``1.2.0``, ``1.2.*``, ``1.*``, ``1``, ``1.2``.

    Raises:
        InvalidVersionError: If ``text`` is neither.
    """
    core = text[1:] if text.startswith("v") else text
    for suffix in (".*", ".x"):
        if core.endswith(suffix):
            core = core[: -len(suffix)]
            break
    match = VERSION_SPEC_RE.match(core)
    if not match or (core != text.lstrip("v") and match["patch"] is not None):
        raise InvalidVersionError(text)
    minor, patch = match["minor"], match["patch"]
    return VersionSpec(
        int(match["major"]),
        int(minor) if minor is not None else None,
        int(patch) if patch is not None else None,
    )


def parse_stage(text: str) -> str:
    """Check that ``text`` is a valid stage name (``dev``, ``staging``, ``prod``...).

    Raises:
        InvalidReferenceError: If it is not lowercase letters, digits, '_' and '-'.
    """
    if not STAGE_RE.match(text):
        raise InvalidReferenceError(
            text, "a stage is lowercase letters, digits, '_' and '-', such as 'prod'"
        )
    return text


def parse_reference(text: str) -> Reference:
    """Parse what a user types: ``name``, ``name:1.2.0``, ``name:1.*`` or ``name@stage``.

    Raises:
        InvalidReferenceError: If the reference as a whole is malformed.
        InvalidNameError: If its name part is.
        InvalidVersionError: If its version part is.
    """
    text = text.strip()
    if not text:
        raise InvalidReferenceError(text, "a reference cannot be empty")
    if text.count(":") + text.count("@") > 1:
        raise InvalidReferenceError(text, "use either ':<version>' or '@<stage>', once")
    if ":" in text:
        name, _, version = text.partition(":")
        if not version:
            raise InvalidReferenceError(text, "nothing follows ':'")
        return Reference(parse_name(name), version=parse_version_spec(version))
    if "@" in text:
        name, _, stage = text.partition("@")
        if not stage:
            raise InvalidReferenceError(text, "nothing follows '@'")
        if stage.startswith("v") and VERSION_RE.match(stage[1:]):
            return Reference(parse_name(name), version=parse_version_spec(stage[1:]))
        return Reference(parse_name(name), stage=parse_stage(stage))
    return Reference(parse_name(text))


def parse_tag(text: str) -> Tag | None:
    """Parse a Git tag name written in GTO's format; return ``None`` for any other tag.

    Unlike the user-facing parsers this never raises: a registry repo may hold tags of its own.
    """
    match = TAG_RE.match(text)
    if not match:
        return None
    name = match["name"]
    if match["version"] is not None:
        # TAG_RE matched MAJOR.MINOR.PATCH already: no second regex (a listing parses 20,000).
        major, minor, patch = match["version"].split(".")
        version = Version(int(major), int(minor), int(patch))
        return DeregisterTag(name, version) if match["deregister"] else RegisterTag(name, version)
    if match["stage"] is not None:
        return StageTag(name, match["stage"], int(match["counter"]), bool(match["unassign"]))
    return DeprecateTag(name, int(match["deprecated"]))


def tag_artifact(text: str) -> str:
    """The artifact a GTO tag name belongs to: what comes before its first ``@`` or ``#``
    (names hold neither). Cheap: no parse, for filtering many tags.

    Example:
        >>> tag_artifact("digits-cnn#prod#3")
        'digits-cnn'
    """
    return text.partition("@")[0].partition("#")[0]


def format_tag(tag: Tag) -> str:
    """Return the Git tag name of ``tag`` (the inverse of :func:`parse_tag`)."""
    return str(tag)
