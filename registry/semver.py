"""What a version number must say about a change: the one home of the checked semver bump.

TFDS's meaning of versions (see ``DESIGN.md``): PATCH = the same examples (other serialisation
or metadata); MINOR = data added (new examples or features), existing data unchanged; MAJOR =
existing data changed. :func:`required_bump` reads that off a dataset diff
(:class:`registry.build.compare.DatasetDiff`), :func:`required_model_bump` off two model cards;
:func:`smallest_version` is the smallest version above the previous release that says it.
A release (``registry.datasets``, ``registry.models``) refuses a version below that with
:class:`~registry.errors.UnderstatedBumpError`, unless overridden with a reason.

Example:
    >>> smallest_version(Version(1, 2, 0), "minor")
    Version(major=1, minor=3, patch=0)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from registry.errors import UnderstatedBumpError
from registry.grammar import Version, VersionSpec, parse_reference

if TYPE_CHECKING:
    from registry.build.compare import DatasetDiff

__all__ = [
    "BUMPS",
    "Bump",
    "bump_reasons",
    "check_bump",
    "model_bump_reasons",
    "model_bump_suggestions",
    "required_bump",
    "required_model_bump",
    "smallest_version",
]

Bump = Literal["major", "minor", "patch"]
BUMPS: tuple[Bump, ...] = ("patch", "minor", "major")


def bump_reasons(diff: DatasetDiff) -> dict[Bump, list[str]]:
    """What in ``diff`` calls for each bump, one short phrase each (empty lists: nothing).

    MAJOR: an existing example changed or removed (a split removed), a feature removed or
    changed in type, shape, dtype or class names. MINOR: examples, splits or features added.

    Example:
        >>> bump_reasons(diff)["major"]  # doctest: +SKIP
        ['train: 3 examples changed', "feature 'label' changed (classes)"]
    """
    major: list[str] = []
    minor: list[str] = []
    for s in diff.splits:
        if s.after is None:
            major.append(f"split {s.split!r} removed")
        elif s.before is None:
            minor.append(f"split {s.split!r} added")
        else:
            if s.changed:
                major.append(f"{s.split}: {_examples(s.changed)} changed")
            if s.removed:
                major.append(f"{s.split}: {_examples(s.removed)} removed")
            if s.added:
                minor.append(f"{s.split}: {_examples(s.added)} added")
    for f in diff.features:
        if f.change == "added":
            minor.append(f"feature {f.feature!r} added")
        elif f.change == "removed":
            major.append(f"feature {f.feature!r} removed")
        else:
            major.append(f"feature {f.feature!r} changed ({', '.join(f.fields)})")
    return {"major": major, "minor": minor, "patch": []}


def _examples(n: int) -> str:
    return f"{n:,} example" + ("" if n == 1 else "s")


def required_bump(diff: DatasetDiff) -> Bump:
    """The smallest bump that tells the truth about ``diff``: ``major``, ``minor`` or ``patch``.

    Example:
        >>> required_bump(diff)  # doctest: +SKIP
        'minor'
    """
    reasons = bump_reasons(diff)
    return "major" if reasons["major"] else "minor" if reasons["minor"] else "patch"


def model_bump_reasons(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> dict[Bump, list[str]]:
    """What between two model cards' front matter calls for a MAJOR bump.

    Only the clear-cut case refuses: the input/output ``signature`` changed (both cards
    declare one). A change of architecture, framework or a training dataset's major version
    suggests MAJOR but is not refused (the weights may still serve the same signature).
    """
    major = []
    old, new = before.get("signature"), after.get("signature")
    if old is not None and new is not None and old != new:
        major.append("the card's input/output signature changed")
    return {"major": major, "minor": [], "patch": []}


def model_bump_suggestions(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What between two model cards suggests a MAJOR bump without refusing a smaller one: the
    ``architecture`` or ``framework`` changed, or a training dataset moved to another major
    version (the release warns and records it; see :func:`model_bump_reasons` for the refusal).

    Example:
        >>> model_bump_suggestions({"architecture": "cnn", "datasets": ["d:1.2.0"]},
        ...                        {"architecture": "resnet", "datasets": ["d:2.0.0"]})
        ["the card's architecture changed ('cnn' -> 'resnet')", 'training dataset d moved to a new major version (1.2.0 -> 2.0.0)']
    """  # noqa: E501
    found = []
    for field in ("architecture", "framework"):
        old, new = before.get(field), after.get(field)
        if old is not None and new is not None and old != new:
            found.append(f"the card's {field} changed ({old!r} -> {new!r})")
    old_sets, new_sets = _dataset_versions(before), _dataset_versions(after)
    for name in sorted(set(old_sets) & set(new_sets)):
        old_v, new_v = old_sets[name], new_sets[name]
        if old_v.major != new_v.major:
            found.append(
                f"training dataset {name} moved to a new major version ({old_v} -> {new_v})"
            )
    return found


def _dataset_versions(card: Mapping[str, Any]) -> dict[str, VersionSpec]:
    """A card's ``datasets`` as name -> version (unpinned or unreadable ones left out)."""
    found = {}
    for text in card.get("datasets") or []:
        try:
            ref = parse_reference(str(text))
        except ValueError:  # the card's own check reports it
            continue
        if ref.version is not None:
            found[ref.name] = ref.version
    return found


def required_model_bump(before: Mapping[str, Any], after: Mapping[str, Any]) -> Bump:
    """``major`` when the cards' signatures differ, else ``patch`` (see
    :func:`model_bump_reasons`)."""
    return "major" if model_bump_reasons(before, after)["major"] else "patch"


def smallest_version(previous: Version, bump: Bump) -> Version:
    """The smallest version after ``previous`` that says ``bump``.

    Example:
        >>> str(smallest_version(Version(1, 2, 3), "major"))
        '2.0.0'
    """
    return previous.bump(bump)


def check_bump(
    kind: str,
    name: str,
    version: Version,
    previous: Version,
    reasons: Mapping[Bump, list[str]],
    override: str | None,
    by: str,
) -> dict[str, Any]:
    """Refuse a ``version`` that says less than ``reasons`` call for, unless overridden.

    The one refusal of an understated bump, for every artifact kind.

    Args:
        kind: ``dataset`` or ``model``, for the message.
        name: The artifact.
        version: The version to release.
        previous: The previous release it was compared with.
        reasons: What calls for each bump (:func:`bump_reasons`, :func:`model_bump_reasons`).
        override: The reason given with ``--allow-understated-bump`` (``None``: no override).
        by: Who releases (the tagger's email), recorded with an override.

    Returns:
        What the release's lineage record keeps as ``bump_check``: ``against``, ``required``,
        ``smallest``, and ``override`` (``reason``, ``by``, ``changes``) when one was used.

    Raises:
        UnderstatedBumpError: Naming what changed and the smallest acceptable version.

    Example:
        >>> check_bump("model", "m", Version(2, 0, 0), Version(1, 0, 0),
        ...            {"major": ["signature changed"], "minor": [], "patch": []}, None, "")
        {'against': '1.0.0', 'required': 'major', 'smallest': '2.0.0'}
    """
    required: Bump = "major" if reasons.get("major") else "minor" if reasons.get("minor") else (
        "patch"
    )
    smallest = smallest_version(previous, required)
    checked: dict[str, Any] = {
        "against": str(previous),
        "required": required,
        "smallest": str(smallest),
    }
    if version >= smallest:
        return checked
    changes = list(reasons.get(required) or [])
    if override is None:
        raise UnderstatedBumpError(kind, name, version, previous, required, smallest, changes)
    checked["override"] = {"reason": override, "by": by, "changes": changes}
    return checked
