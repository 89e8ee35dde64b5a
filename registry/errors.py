"""Every error the registry raises on purpose.

Each class derives from :class:`RegistryError` and from the built-in exception it resembles, so
callers can catch either (``except LookupError`` still catches an unknown dataset). Each message
says what failed, the offending value, and what to do next, naming the command for the kind of
artifact at hand (``registry datasets ...`` or ``registry models ...``); the CLI prints it as one
line and maps the class to an exit code (:attr:`RegistryError.exit_code`). No module defines an
error class anywhere else (``tests/test_errors.py`` checks it, and that the CLI test suite raises
each one). Warnings, such as ``registry.tracking.MlflowUnavailableWarning``, live beside the code
that emits them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

__all__ = [
    "AlreadyDeprecatedError",
    "AlreadyInStageError",
    "AlreadyYankedError",
    "ArtifactExistsError",
    "ArtifactNotFoundError",
    "BadQueryError",
    "BadSignatureError",
    "BuildError",
    "CardError",
    "CatalogOutputError",
    "ConfigError",
    "ConfirmationRequiredError",
    "CorruptArtifactError",
    "CredentialsError",
    "DatasetMismatchError",
    "DirtyWorkTreeError",
    "DvcError",
    "GitError",
    "IncompleteJobOutputError",
    "InvalidCardError",
    "InvalidNameError",
    "InvalidReferenceError",
    "InvalidVersionError",
    "MalformedLineageError",
    "MissingDependencyError",
    "MissingReleaseNotesError",
    "NameClashError",
    "NotARegistryError",
    "NotBuiltError",
    "NotPermittedError",
    "PurgeAfterYankError",
    "PurgeRefusedError",
    "PurgedVersionError",
    "RawInputError",
    "RawInputMissingError",
    "ReasonRequiredError",
    "RegistryError",
    "RelativeRemoteError",
    "ReleaseError",
    "RemoteError",
    "ScanLimitError",
    "SignerNotAllowedError",
    "SourceNotFoundError",
    "StaleDataError",
    "TableNotFoundError",
    "TagRaceError",
    "UnderstatedBumpError",
    "UnpackagedImageError",
    "UnreleasedTrainingDataError",
    "UnsharedRemoteError",
    "UnsignedTagError",
    "UntrustedVersionError",
    "VersionExistsError",
    "VersionNotAboveLatestError",
    "VersionNotFoundError",
    "VersionOnCommitError",
    "VersionUnspecifiedError",
    "WarehousePermissionError",
    "WarehouseUnreachableError",
    "WrongKindError",
    "YankedVersionError",
    "first_line",
    "kind_mismatch",
]


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its class name if it has none), for a
    one-line error message that quotes what a library said."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def yaml_problem(error: BaseException, start_line: int = 1) -> str:
    """Where and what a YAML parse error is, on one line: ``line L, column C: PROBLEM``.

    Args:
        error: What PyYAML raised.
        start_line: The file's line number of the parsed text's first line (a card's front
            matter starts on line 2, after its ``---``).

    Example:
        >>> import yaml
        >>> try:
        ...     yaml.safe_load("a: b: c")
        ... except yaml.YAMLError as e:
        ...     print(yaml_problem(e))
        line 1, column 5: mapping values are not allowed here
    """
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or first_line(error)
    context = getattr(error, "context", None)
    detail = f"{problem} ({context})" if context else problem
    at = f"line {mark.line + start_line}, column {mark.column + 1}: " if mark is not None else ""
    return f"{at}{detail}"


class RegistryError(Exception):
    """Base class of the registry's own errors.

    Attributes:
        exit_code: The process exit status the CLI uses for this kind of error.
    """

    exit_code = 1


class InvalidNameError(RegistryError, ValueError):
    """An artifact name does not follow the name grammar."""

    exit_code = 2

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        super().__init__(
            f"invalid name {name!r}: {reason}. Valid names are lowercase path segments of letters, "
            "digits, '_' and '-', e.g. 'products/product_a/ad_clicks', "
            "'image_classification/digits', 'resnet18-product-images'."
        )


class InvalidVersionError(RegistryError, ValueError):
    """A version or version pattern is not semver."""

    exit_code = 2

    def __init__(self, version: str, reason: str = "not a semantic version") -> None:
        self.version = version
        super().__init__(
            f"invalid version {version!r}: {reason}. Use MAJOR.MINOR.PATCH such as '1.2.0', "
            "or a pattern such as '1.*' or '1.2.*'."
        )


class InvalidReferenceError(RegistryError, ValueError):
    """A reference (``name``, ``name:1.2.0``, ``name:1.*``, ``name@prod``) is malformed."""

    exit_code = 2

    def __init__(self, reference: str, reason: str) -> None:
        self.reference = reference
        super().__init__(
            f"invalid reference {reference!r}: {reason}. Examples: 'products/product_a/ad_clicks', "
            "'products/product_a/ad_clicks:1.0.0', 'image_classification/digits:1.*', "
            "'resnet18-product-images@prod'."
        )


class ConfigError(RegistryError, ValueError):
    """A configuration value (params.yaml, config file, environment) is missing or invalid."""

    exit_code = 2


class RelativeRemoteError(ConfigError):
    """A registry read by Git URL (a mirror) names a DVC remote by a path relative to a clone,
    which a mirror does not have; the message says how to load it anyway."""


class CardError(RegistryError, ValueError):
    """A model card is missing, unreadable, or has an invalid field (which one, and what is
    expected)."""

    exit_code = 2


def _close_matches(word: str, candidates: Iterable[str]) -> list[str]:
    """Return up to three candidates that look like ``word`` (by whole name or by last part)."""
    candidates = list(candidates)
    found = difflib.get_close_matches(word, candidates, n=3, cutoff=0.6)
    leaf = word.rsplit("/", 1)[-1]
    by_leaf = {c.rsplit("/", 1)[-1]: c for c in candidates}
    for match in difflib.get_close_matches(leaf, list(by_leaf), n=3, cutoff=0.6):
        if by_leaf[match] not in found:
            found.append(by_leaf[match])
    return found[:3]


class CatalogOutputError(RegistryError, NotADirectoryError):
    """The catalog's folder is a file, or cannot be made or written."""

    exit_code = 2

    def __init__(self, path: object, reason: str) -> None:
        self.path = path
        super().__init__(
            f"cannot write the catalog to {path}: {reason}; give a folder you can write, "
            "e.g. 'registry catalog build site/'"
        )


class ArtifactNotFoundError(RegistryError, LookupError):
    """No dataset or model of that name exists in the registry.

    Args:
        name: The name asked for.
        known: The names that exist (close ones are suggested).
        kind: ``"dataset"`` or ``"model"``: what was looked for, and so which
            ``registry <kind>s list`` the message names.
    """

    exit_code = 3

    def __init__(self, name: str, known: Iterable[str] = (), *, kind: str) -> None:
        self.name = name
        self.kind = kind
        self.suggestions = _close_matches(name, known)
        hint = (
            f" Did you mean {', '.join(repr(s) for s in self.suggestions)}?"
            if self.suggestions
            else f" Run 'registry {kind}s list' to see what exists."
        )
        super().__init__(f"unknown {kind} {name!r}.{hint}")


class ArtifactExistsError(RegistryError, FileExistsError):
    """A new artifact's name is taken: by a dataset or a model, or it would nest in or around
    an existing dataset (one dataset folder never holds another); or a model has weights already.

    Args:
        name: The name asked for.
        conflict: The existing artifact it clashes with.
        reason: What clashes, for the message.
        kind: ``"dataset"`` or ``"model"``: what is being made.
        existing_kind: What ``conflict`` is (default: ``kind``); the message names its
            ``registry <kind>s list``.
        next_step: What to do instead, when it is not picking another name.
        action: What was refused, when it is not ``create <kind>`` (e.g. ``add weights to
            model``).

    Attributes:
        name, conflict, kind, existing_kind: As given.
    """

    exit_code = 11

    def __init__(
        self,
        name: str,
        conflict: str,
        reason: str,
        *,
        kind: str,
        existing_kind: str | None = None,
        next_step: str | None = None,
        action: str | None = None,
    ) -> None:
        self.name = name
        self.conflict = conflict
        self.kind = kind
        self.existing_kind = existing_kind or kind
        hint = next_step or (
            f"Pick another name (run 'registry {self.existing_kind}s list' to see the "
            f"{self.existing_kind}s), or edit the existing one"
        )
        super().__init__(f"cannot {action or 'create ' + kind} {name!r}: {reason}. {hint}.")


class VersionNotFoundError(RegistryError, LookupError):
    """The artifact exists but no released version (or stage) matches the reference.

    Args:
        name: The artifact.
        wanted: The version, pattern or ``@stage`` asked for.
        available: The released versions, oldest first.
        kind: ``"dataset"`` or ``"model"``: which ``registry <kind>s release`` the message names.
    """

    exit_code = 3

    def __init__(self, name: str, wanted: str, available: Sequence[str], *, kind: str) -> None:
        self.name = name
        self.wanted = wanted
        self.kind = kind
        self.available = list(available)
        listing = ", ".join(self.available) if self.available else "none yet"
        if not self.available:
            next_step = f"release one with 'registry {kind}s release {name}'"
        elif wanted.startswith("@") and kind == "model":
            stage = wanted[1:].split(" ", 1)[0]
            next_step = (
                f"pick one of them, e.g. '{name}:{self.available[-1]}', or give one the stage "
                f"with 'registry models promote {name}:{self.available[-1]} {stage}'"
            )
        else:
            next_step = f"pick one of them, e.g. '{name}:{self.available[-1]}'"
        super().__init__(
            f"{name!r} has no released version matching {wanted!r} (released: {listing}); "
            f"{next_step}."
        )


class NotARegistryError(RegistryError, FileNotFoundError):
    """Neither the working directory nor the configuration points at a registry."""

    exit_code = 2


class SourceNotFoundError(RegistryError, FileNotFoundError):
    """A file or folder given as input (e.g. ``registry models add --from PATH``) does not exist.

    Attributes:
        path: The path as given.
    """

    exit_code = 2

    def __init__(self, path: str, action: str) -> None:
        self.path = path
        super().__init__(
            f"{action}: {path!r} does not exist; check the path (relative paths are from the "
            "current folder)"
        )


class BuilderSourceError(RegistryError, ValueError):
    """``registry datasets add NAME --from SPEC`` cannot bring in the builder: ``SPEC`` is not a
    path nor ``package.module:Class``, the module does not import, the class is missing or is no
    TFDS builder, or the file or folder holds no single builder class.

    Attributes:
        source: ``--from``'s value.
    """

    exit_code = 2

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        super().__init__(
            f"cannot add a builder from {source!r}: {problem} (--from takes a builder file or "
            "TFDS dataset folder, optionally PATH:CLASS, or an importable package.module:Class)"
        )


class RawInputError(RegistryError, ValueError):
    """A dataset's raw input (``registry datasets raw``, ``raw_path``) cannot be one: it is not
    inside the dataset folder, or it is an output of the build.

    Args:
        name: The dataset.
        path: The raw input as given.
        problem: What is wrong with it.

    Attributes:
        name, path: As given.
    """

    exit_code = 2

    def __init__(self, name: str, path: str, problem: str) -> None:
        self.name = name
        self.path = path
        super().__init__(
            f"raw input {path!r} of dataset {name!r} {problem}; put the raw data in the dataset "
            f"folder and run 'registry datasets raw {name} PATH', or import an export with "
            f"'registry datasets raw {name} URL' (gs://..., s3://..., https://..., or a folder "
            "outside the repository)"
        )


class RawInputMissingError(RegistryError, FileNotFoundError):
    """A rebuild of a released version needs a raw input (or, to reproduce a model, a dataset
    or base model) whose bytes are neither cached here nor in the DVC remote any more: the
    version cannot be rebuilt from its tag (exit 17).

    Args:
        what: The version being rebuilt (``name X.Y.Z``).
        path: The input's path in the registry.
        md5: Its recorded hash.
        remote: The DVC remote looked in.

    Attributes:
        path, md5: As given.
    """

    exit_code = 17

    def __init__(self, what: str, path: str, md5: str, remote: str) -> None:
        self.path = path
        self.md5 = md5
        super().__init__(
            f"cannot rebuild {what}: its input {path} (md5 {md5}) is not in DVC remote "
            f"{remote} any more, nor cached here; push it again from a clone that has it "
            f"('dvc push {path}' at the release's commit), or rebuild a later version"
        )


class NotBuiltError(RegistryError, FileNotFoundError):
    """A dataset's built data is missing or out of date with its builder and params."""

    exit_code = 4


class BuildError(RegistryError, RuntimeError):
    """Building a dataset failed (the builder or its Beam pipeline raised)."""

    exit_code = 5


class ReleaseError(RegistryError, RuntimeError):
    """A release was refused (nothing was tagged or pushed)."""

    exit_code = 6


def _release_again(kind: str, name: str) -> str:
    """The command that retries a refused release of ``name``."""
    return f"'registry {kind}s release {name}'"


def _pick_new_version(kind: str, name: str) -> str:
    """How a new version of ``name`` is chosen: a dataset's builder says it, a model's CLI."""
    if kind == "dataset":
        return (
            f"bump VERSION in the builder of {name!r} (with a RELEASE_NOTES entry), commit, and "
            f"run {_release_again(kind, name)}"
        )
    return (
        f"run 'registry models release {name} --bump major|minor|patch' "
        f"(or --version X.Y.Z)"
    )


class DirtyWorkTreeError(ReleaseError):
    """The work tree has uncommitted changes, so the release would not match any commit.

    Attributes:
        name: The artifact.
        paths: The changed paths.
    """

    def __init__(self, kind: str, name: str, paths: Sequence[str]) -> None:
        self.name = name
        self.paths = list(paths)
        listing = ", ".join(self.paths[:5]) + (" ..." if len(self.paths) > 5 else "")
        super().__init__(
            f"cannot release {name!r}: the work tree has uncommitted changes ({listing}); "
            f"commit them (including dvc.lock) first, then run {_release_again(kind, name)}"
        )


class VersionExistsError(ReleaseError):
    """The version was released before (perhaps withdrawn since): versions are never reused.

    Attributes:
        name: The artifact.
        version: The version asked for.
        tag: Its existing tag.
    """

    def __init__(self, kind: str, name: str, version: object, tag: str) -> None:
        self.name = name
        self.version = str(version)
        self.tag = tag
        super().__init__(
            f"cannot release {name!r}: version {version} was released already (tag {tag}); "
            f"versions are never re-released or moved: {_pick_new_version(kind, name)}"
        )


class VersionNotAboveLatestError(ReleaseError):
    """A new version must be greater than the latest release.

    Attributes:
        name: The artifact.
        version: The version asked for.
        latest: The latest released version.
    """

    def __init__(self, kind: str, name: str, version: object, latest: object) -> None:
        self.name = name
        self.version = str(version)
        self.latest = str(latest)
        super().__init__(
            f"cannot release {name!r}: version {version} is not greater than the latest "
            f"release {latest}; {_pick_new_version(kind, name)}"
        )


class VersionOnCommitError(ReleaseError):
    """A version of the artifact was released from this very commit (GTO, ``gto show`` and stage
    tags tell versions apart by commit, so a commit carries at most one).

    Attributes:
        name: The artifact.
        version: The version released from this commit.
        commit: The commit.
    """

    def __init__(self, kind: str, name: str, version: object, commit: str) -> None:
        self.name = name
        self.version = str(version)
        self.commit = commit
        super().__init__(
            f"cannot release {name!r}: version {version} was released from this very commit "
            f"({commit[:12]}), and a commit holds one version; commit the change that makes "
            f"the new version first, then run {_release_again(kind, name)}"
        )


class VersionUnspecifiedError(ReleaseError):
    """Which version to release is not said, or said twice: a dataset's builder has no
    ``VERSION``; a model with releases was given neither ``--version`` nor ``--bump``, or both.

    Attributes:
        name: The artifact.
    """

    def __init__(self, kind: str, name: str, reason: str) -> None:
        self.name = name
        if kind == "dataset":
            fix = (
                "set VERSION = tfds.core.Version('X.Y.Z') in its class Builder, commit, and run "
                f"{_release_again(kind, name)}"
            )
        else:
            fix = (
                f"say which: 'registry models release {name} --bump major|minor|patch' or "
                f"'registry models release {name} --version X.Y.Z'"
            )
        super().__init__(f"cannot release {name!r}: {reason}; {fix}")


class MissingReleaseNotesError(ReleaseError):
    """A dataset's builder has no ``RELEASE_NOTES`` entry for the version being released, and
    none were given with ``--notes``.

    Attributes:
        name: The dataset.
        version: The version without notes.
    """

    def __init__(self, name: str, version: object, builder: str) -> None:
        self.name = name
        self.version = str(version)
        super().__init__(
            f"cannot release {name!r}: RELEASE_NOTES in {builder} has no entry for {version}; "
            f"add one that says what changed, commit, and run "
            f"{_release_again('dataset', name)}, or give them (a builder brought in as it is): "
            f"'registry datasets release {name} --notes TEXT'"
        )


class StaleDataError(ReleaseError):
    """The bytes to release are not what the committed code and params make: built data or
    weights out of date, built at another ``VERSION``, or their state could not be checked.

    Attributes:
        name: The artifact.
    """

    def __init__(self, kind: str, name: str, problem: str, fix: str) -> None:
        self.name = name
        super().__init__(
            f"cannot release {name!r}: {problem}; {fix}, commit, and run "
            f"{_release_again(kind, name)}"
        )


class InvalidCardError(ReleaseError, ValueError):
    """A model card names a training dataset or base model that is not a released version (or
    names one of the other kind: a model among its datasets, a dataset as its base model).

    Attributes:
        name: The model.
        field: The card field (``datasets``, ``base_model``).
        value: The reference the card gives.
    """

    def __init__(
        self,
        name: str,
        field: str,
        value: str,
        kind: str,
        released: Sequence[str],
        card: str,
        *,
        actual: str | None = None,
        yanked: str | None = None,
    ) -> None:
        self.name = name
        self.field = field
        self.value = value
        listing = ", ".join(released) or "none"
        target = value.split(":", 1)[0]
        if yanked is not None:
            # PEP 592: a yanked version still loads by pin, but nothing new is built on it.
            super().__init__(
                f"cannot release {name!r}: its card's {field} {value!r} is yanked ({yanked}); "
                f"train on a released {kind} version instead (released: {listing}), fix {card}, "
                f"then run {_release_again('model', name)}"
            )
            return
        if actual is not None:
            # The reference names an artifact of the other kind (a model among the datasets).
            super().__init__(
                f"cannot release {name!r}: its card's {field} {value!r} is wrong: "
                f"{kind_mismatch(target, actual, kind)}; fix {card} to name a released {kind} "
                f"version (see 'registry {kind}s list'), then run "
                f"{_release_again('model', name)}"
            )
            return
        super().__init__(
            f"cannot release {name!r}: its card's {field} {value!r} is not a released {kind} "
            f"version (released: {listing}); fix {card}, or release it first with "
            f"'registry {kind}s release {target}', then run "
            f"{_release_again('model', name)}"
        )


class NameClashError(ReleaseError):
    """A model is released under a name that a dataset has (they never share one).

    Attributes:
        name: The name.
    """

    def __init__(self, name: str, dataset_dir: str) -> None:
        self.name = name
        super().__init__(
            f"cannot release {name!r} as a model: a dataset has that name ({dataset_dir}), and "
            "a dataset and a model never share one; move the model to another folder under "
            "models/, commit, and run 'registry models release NEW_NAME'"
        )


class AlreadyInStageError(ReleaseError):
    """The version asked to be promoted holds that stage already (nothing to tag).

    Attributes:
        name: The model.
        version: Its version.
        stage: The stage.
    """

    def __init__(self, name: str, version: object, stage: str) -> None:
        self.name = name
        self.version = str(version)
        self.stage = stage
        super().__init__(
            f"{name} {version} is in {stage!r} already, so nothing was tagged; to put another "
            f"version there run 'registry models promote {name}:X.Y.Z {stage}'"
        )


class AlreadyDeprecatedError(ReleaseError):
    """The model is deprecated already (nothing to tag).

    Attributes:
        name: The model.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"{name!r} is deprecated already, so nothing was tagged; its versions stay loadable "
            f"(see 'registry models info {name}')"
        )


class UnderstatedBumpError(ReleaseError):
    """A release whose version understates how its data changed since the previous release
    (TFDS's meaning: an existing example changed or removed, or a feature removed or changed →
    MAJOR; only additions → MINOR), or a model whose card's signature changed (exit 19).

    Attributes:
        name: The artifact.
        version: The version asked for.
        previous: The previous release it was compared with.
        required: The bump the change calls for (``major``, ``minor``).
        smallest: The smallest acceptable version.
        reasons: What changed, one phrase each.
    """

    exit_code = 19

    def __init__(
        self,
        kind: str,
        name: str,
        version: object,
        previous: object,
        required: str,
        smallest: object,
        reasons: Sequence[str],
    ) -> None:
        self.name = name
        self.version = str(version)
        self.previous = str(previous)
        self.required = required
        self.smallest = str(smallest)
        self.reasons = list(reasons)
        listed = "; ".join(self.reasons[:4]) + (
            f"; and {len(self.reasons) - 4} more" if len(self.reasons) > 4 else ""
        )
        if kind == "dataset":
            fix = (
                f"set VERSION to {smallest} (or above) in its builder, with a RELEASE_NOTES "
                f"entry, rebuild, commit, and release again ('registry datasets diff {name}' "
                "shows the change)"
            )
        else:
            fix = f"release it as {smallest} ('registry {kind}s release {name} --bump {required}')"
        super().__init__(
            f"cannot release {name!r} as {version}: since {previous}, {listed}, which needs a "
            f"{required.upper()} bump, so the smallest acceptable version is {smallest}; {fix}; "
            "or pass --allow-understated-bump --reason TEXT to record an override in the tag"
        )


class DatasetMismatchError(RegistryError, ValueError):
    """A diff of two different datasets: a diff compares two builds of one dataset (exit 18).

    Attributes:
        before, after: The two datasets' names.
    """

    exit_code = 18

    def __init__(self, before: str, after: str) -> None:
        self.before = before
        self.after = after
        super().__init__(
            f"cannot diff {before!r} with {after!r}: they are two different datasets, and a "
            f"diff compares two versions or builds of one; e.g. 'registry datasets diff "
            f"{before}:1.0.0 {before}:1.1.0', or one version with the workspace build: "
            f"'registry datasets diff {before}:1.0.0'"
        )


class AlreadyYankedError(ReleaseError):
    """The version is yanked already (nothing to tag: GTO cannot deregister twice).

    Attributes:
        name: The artifact.
        version: Its version.
        reason: Why it was yanked.
    """

    def __init__(
        self, kind: str, name: str, version: object, reason: str, *, then: str | None = None
    ) -> None:
        self.name = name
        self.version = str(version)
        self.reason = reason
        then = then or f"so nothing was tagged; see 'registry {kind}s info {name}:{version}'"
        super().__init__(f"{name} {version} is yanked already ({reason}), {then}")


class ReasonRequiredError(RegistryError, ValueError):
    """A yank without a reason: the reason is what everyone who pins the version is told; or
    an understated bump allowed (``--allow-understated-bump``) without saying why."""

    exit_code = 2

    def __init__(self, kind: str, ref: str, *, override: bool = False) -> None:
        self.ref = ref
        if override:
            super().__init__(
                f"releasing {ref} with --allow-understated-bump needs a reason, which its tag "
                f"records for everyone to see: run 'registry {kind}s release {ref} "
                "--allow-understated-bump --reason \"why the version may understate it\"'"
            )
            return
        super().__init__(
            f"yanking {ref} needs a reason, which everyone who loads it is shown: run "
            f"'registry {kind}s yank {ref} --reason \"what is wrong with it\"'"
        )


class ConfirmationRequiredError(RegistryError, PermissionError):
    """A final action (a yank) was asked for without ``--yes`` and with no terminal to confirm
    it on."""

    exit_code = 2

    def __init__(self, action: str, command: str) -> None:
        self.action = action
        super().__init__(
            f"{action} cannot be undone and there is no terminal to confirm it on, so nothing "
            f"was done; run '{command} --yes' to confirm"
        )


class UnsharedRemoteError(ReleaseError):
    """A release would push to a remote other than the one the registry's committed
    ``.dvc/config`` names (a ``.dvc/config.local`` or global override, ``REGISTRY_REMOTE`` or
    ``--remote``), so its tag could name bytes that loaders by Git URL cannot reach.

    Attributes:
        name: The artifact.
        remote: The DVC remote the push would use.
        shared: The committed default remote (``None`` if the committed config names none).
    """

    def __init__(
        self,
        kind: str,
        name: str,
        remote: str,
        url: str,
        shared: str | None,
        shared_url: str | None,
        source: str,
    ) -> None:
        self.name = name
        self.remote = remote
        self.shared = shared
        committed = (
            f"the registry's committed .dvc/config names {shared!r} ({shared_url})"
            if shared is not None
            else "the registry's committed .dvc/config names no default remote"
        )
        super().__init__(
            f"cannot release {name!r}: {source} points the push at DVC remote {remote!r} "
            f"({url}), but {committed}, the one that loads by Git URL read, so the tag would "
            f"name bytes others cannot load. Undo the override and run "
            f"{_release_again(kind, name)}, or, if everyone who loads it reads {remote!r}, run "
            f"'registry {kind}s release {name} --remote {remote} --allow-unshared-remote'"
        )


class TagRaceError(ReleaseError):
    """Another clone tagged first: the Git remote got the same tag, or another tag of the same
    artifact, from elsewhere between this clone's fetch of the tags and its push (the local tag
    is taken back, and nothing changed on the remote).

    Attributes:
        tag: The tag.
        remote: The Git remote.
        artifact: The artifact whose tip moved, or ``None`` if the tag itself was there.
    """

    def __init__(
        self,
        tag: str,
        remote: str,
        *,
        artifact: str | None = None,
        rerun: str = "release again with a new version",
    ) -> None:
        self.tag = tag
        self.remote = remote
        self.artifact = artifact
        if artifact is None:
            got = f"got tag {tag!r} from another clone"
        else:
            got = f"got another tag of {artifact!r} from another clone while this one made {tag!r}"
        super().__init__(
            f"another clone tagged first: Git remote {remote!r} {got}, so nothing was tagged "
            f"here (bytes a release pushed already are harmless); run 'git fetch --tags {remote}', "
            f"then {rerun}"
        )


class NotPermittedError(ReleaseError):
    """The Git identity doing the tagging is not among those ``params.yaml`` allows for it
    (``registry.owners``, ``registry.stage_approvers``): a refusal, exit code 6.

    Attributes:
        identity: The email Git would record as the tagger (``""``: none set).
        action: What was refused, e.g. ``"promote m 1.0.0 to prod"``.
        allowed: The emails that may.
        setting: The setting that says so.
    """

    def __init__(self, identity: str, action: str, allowed: Sequence[str], setting: str) -> None:
        self.identity = identity
        self.action = action
        self.allowed = list(allowed)
        self.setting = setting
        who = repr(identity) if identity else "a Git identity without an email"
        super().__init__(
            f"{who} may not {action}: only {', '.join(self.allowed)} may ({setting} in "
            "params.yaml), so nothing was tagged; ask one of them to run it, or change "
            f"{setting} in a reviewed commit (check 'git config user.email')"
        )


class UntrustedVersionError(RegistryError, PermissionError):
    """A version's tag is not signed as ``registry.require_signed_tags`` requires (exit 13).

    Attributes:
        tag: The version's tag.
        detail: What ``git verify-tag`` said (its last line), or ``""``.
    """

    exit_code = 13
    problem = "is not trusted"

    def __init__(self, tag: str, detail: str = "") -> None:
        self.tag = tag
        self.detail = detail
        said = f" (git verify-tag: {detail})" if detail else ""
        super().__init__(
            f"tag {tag!r} {self.problem}{said}, and this registry loads only versions signed by "
            f"an allowed signer (registry.require_signed_tags in params.yaml); {self.fix}"
        )

    @property
    def fix(self) -> str:
        """What to do about it, for the message."""
        return "load another version, or ask the artifact's owners to release a signed one"


class UnsignedTagError(UntrustedVersionError):
    """The version's tag carries no signature (or is a lightweight tag)."""

    problem = "is not signed"


class BadSignatureError(UntrustedVersionError):
    """The version's tag carries a signature that does not match it: it was altered."""

    problem = "has a signature that does not verify (the tag was altered after signing)"

    @property
    def fix(self) -> str:
        """What to do about it, for the message."""
        return "do not use this version; tell the artifact's owners, who can release it again"


class SignerNotAllowedError(UntrustedVersionError):
    """The version's tag is signed, but by a key that is not an allowed signer."""

    problem = "is signed by a key that is not an allowed signer"

    @property
    def fix(self) -> str:
        """What to do about it, for the message."""
        return (
            "if the signer is trusted, add their key to .allowed_signers (SSH: 'EMAIL "
            "ssh-ed25519 KEY' lines) on the default branch, or import it to your GPG keyring"
        )


class YankedVersionError(RegistryError, LookupError):
    """A strict load (``strict=True``, ``REGISTRY_STRICT=1``) of a yanked version, or its
    promotion to a stage (exit 15).

    Attributes:
        kind: ``dataset`` or ``model``.
        name: The artifact.
        version: The yanked version.
        reason: Why it was yanked.
        by: Who yanked it (an email, or ``""``).
        at: When (ISO 8601).
    """

    exit_code = 15

    def __init__(
        self,
        kind: str,
        name: str,
        version: object,
        reason: str,
        by: str,
        at: str,
        *,
        refused: str | None = None,
    ) -> None:
        self.kind, self.name, self.version = kind, name, str(version)
        self.reason, self.by, self.at = reason, by, at
        who = f" by {by}" if by else ""
        refused = refused or (
            "strict loading (strict=True or REGISTRY_STRICT=1) refuses yanked versions; load a "
            "later version"
        )
        super().__init__(
            f"{name} {version} is yanked ({reason}; yanked{who} on {at[:10]}), and {refused} "
            f"(see 'registry {kind}s info {name}')"
        )

    def refusing(self, refused: str) -> YankedVersionError:
        """The same refusal for another action (``refused`` says which, and what to do)."""
        return YankedVersionError(
            self.kind, self.name, self.version, self.reason, self.by, self.at, refused=refused
        )


class PurgedVersionError(RegistryError, LookupError):
    """A load of a version whose bytes were purged (``yank --purge``): they are gone (exit 16).

    Attributes:
        name: The artifact.
        version: The purged version.
        reason: Why it was yanked and purged.
    """

    exit_code = 16

    def __init__(
        self, kind: str, name: str, version: object, reason: str, by: str, at: str
    ) -> None:
        self.name = name
        self.version = str(version)
        self.reason = reason
        who = f" by {by}" if by else ""
        super().__init__(
            f"{name} {version} was purged{who} on {at[:10]} ({reason}): its data was deleted "
            f"from the DVC remote and the caches, so it cannot be loaded; load a later version "
            f"(see 'registry {kind}s info {name}')"
        )


class PurgeAfterYankError(AlreadyYankedError):
    """A purge asked of a version yanked already without one: GTO allows one deregistration
    tag a version, and the purge is recorded in it, so a purge is asked with the yank."""

    def __init__(self, kind: str, name: str, version: object, reason: str) -> None:
        super().__init__(
            kind, name, version, reason,
            then=f"without --purge; its one yank tag {name}@v{version}! (GTO allows one a "
            "version) cannot record a purge made later, so nothing was deleted or tagged: a "
            f"purge is asked with the yank itself ('registry {kind}s yank NAME:X.Y.Z --purge "
            "...')",
        )


class PurgeRefusedError(ReleaseError):
    """A purge that would delete nothing: every object of the version is still used by a live
    version or a branch head, so its bytes would stay loadable under another name.

    Attributes:
        name: The artifact.
        version: Its version.
        users: Object -> the live version or branch that uses it.
    """

    def __init__(self, kind: str, name: str, version: object, users: dict[str, str]) -> None:
        self.name = name
        self.version = str(version)
        self.users = users
        who = sorted(set(users.values()))
        listed = ", ".join(who[:3]) + (f" and {len(who) - 3} more" if len(who) > 3 else "")
        super().__init__(
            f"nothing of {name} {version} can be purged: each of its {len(users)} objects is "
            f"still used by {listed}; nothing was deleted or tagged. Purge those versions too "
            "(the last purge deletes the shared objects), or commit and push the change that "
            f"removes the data from the branch, then run 'registry {kind}s yank "
            f"{name}:{version} --purge' again"
        )


class RemoteError(RegistryError, ConnectionError):
    """A DVC or Git remote could not be reached, or refused the operation."""

    exit_code = 7


class CorruptArtifactError(RegistryError, OSError):
    """Bytes fetched from the remote do not match the hash recorded in Git."""

    exit_code = 8


class DiskFullError(RegistryError, OSError):
    """The disk (or quota, or file size limit) under the registry cache has no room for what
    is being fetched; what was already cached is left intact."""

    exit_code = 14


class GitError(RegistryError, RuntimeError):
    """A Git command failed."""

    exit_code = 9


class DvcError(RegistryError, RuntimeError):
    """A DVC command on the registry's clone failed (its message quotes DVC's reason, e.g. the
    path is already an output of a ``dvc.yaml`` stage)."""

    exit_code = 12


class MissingDependencyError(RegistryError, ImportError):
    """An optional dependency needed for this operation is not installed."""

    exit_code = 10

    def __init__(self, module: str, extra: str) -> None:
        self.module = module
        super().__init__(
            f"{module!r} is not installed, and this operation needs it; "
            f"install it with: pip install {extra}"
        )


class UnpackagedImageError(RegistryError, LookupError):
    """A Vertex AI job would run a container image that ``registry compute package`` did not
    produce for the clone's code, so it may not hold this repository's code (and cannot train).

    Args:
        image: The image the job names.
        model: The model the job trains.
        reason: Why it is not a packaged one (no ``image_repository``, or the code changed).
    """

    exit_code = 26

    def __init__(self, image: str, model: str, reason: str) -> None:
        self.image = image
        self.model = model
        super().__init__(
            f"the job would run {image}, which `registry compute package` did not produce for "
            f"this code ({reason}): it may not hold this repository's code, and the job could not "
            f"train; run 'registry compute package {model}', build the image with the `gcloud "
            "builds submit` line it prints, and submit again"
        )


class CredentialsError(RegistryError, PermissionError):
    """No Google Cloud credentials were found, or Google refused the ones found.

    The message says how to provide them; it never contains the credentials themselves.
    """

    exit_code = 2


class MalformedLineageError(RegistryError, ValueError):
    """A model release's tag carries no readable lineage record, and the caller asked to be
    told (``registry lineage --strict``); without ``--strict`` lineage reads what it can and
    says what is missing instead.

    Args:
        tag: The release tag.
        problem: What is wrong with its record.

    Attributes:
        tag, problem: As given.
    """

    exit_code = 2

    def __init__(self, tag: str, problem: str) -> None:
        self.tag = tag
        self.problem = problem
        super().__init__(
            f"the lineage of release tag {tag!r} cannot be read: {problem}; its card at the "
            "tagged commit still names its datasets and base model ('registry lineage' without "
            "--strict shows them), and a new release records the lineage in full"
        )


class IncompleteJobOutputError(RegistryError, FileNotFoundError):
    """A cloud training job's output folder is not a finished job's: nothing there, no
    completion marker (the job is still running, or failed), or a file the marker lists (the
    weights, the lineage) missing or not the bytes the job wrote. Nothing is changed in the clone.

    Attributes:
        uri: The job's output folder.
        problem: What is missing or wrong.
    """

    exit_code = 24

    def __init__(self, uri: str, problem: str, fix: str) -> None:
        self.uri = uri
        self.problem = problem
        super().__init__(f"cannot fetch the job output {uri}: {problem}; {fix}")


class UnreleasedTrainingDataError(RegistryError, LookupError):
    """A model trained elsewhere (a Vertex AI job) names a training dataset version that this
    registry has not released, or whose released bytes are not the ones it trained on, or (for
    weights a ``dvc.yaml`` stage makes) that is not the build in the work tree the stage would
    record as its input; fetching it would give weights that cannot be released, or a
    ``dvc.lock`` that names other data. Nothing is changed in the clone.

    Attributes:
        model: The model.
        dataset: The dataset reference the job recorded (``name:X.Y.Z``).
    """

    exit_code = 25

    def __init__(self, model: str, dataset: str, problem: str, fix: str | None = None) -> None:
        self.model = model
        self.dataset = dataset
        fix = fix or (
            f"release that version ('registry datasets release {dataset.split(':', 1)[0]}') or "
            "train again on a released version"
        )
        super().__init__(
            f"cannot fetch {model!r}: it was trained on {dataset}, which {problem}; {fix}, then "
            "fetch again"
        )


class WrongKindError(RegistryError, LookupError):
    """A dataset was named where a model is expected, or the reverse (``registry models promote``
    of a dataset, ``registry datasets pull`` of a model).

    Args:
        name: The artifact named.
        actual: What it is (``"dataset"`` or ``"model"``).
        wanted: What the command works on.
        command: The subcommand to suggest for ``actual``'s kind (default ``info``).

    Attributes:
        name, actual, wanted: As given.
    """

    exit_code = 3

    def __init__(self, name: str, actual: str, wanted: str, *, command: str = "info") -> None:
        self.name = name
        self.actual = actual
        self.wanted = wanted
        super().__init__(
            f"{kind_mismatch(name, actual, wanted)}; 'registry {wanted}s' commands work on "
            f"{wanted}s only, so use 'registry {actual}s {command} {name}' (or 'registry "
            f"{wanted}s list' to see the {wanted}s)"
        )


def kind_mismatch(name: str, actual: str, wanted: str) -> str:
    """The one wording of a dataset taken for a model or the reverse, for every message that
    says it: ``'digits-cnn' is a model, not a dataset``."""
    return f"{name!r} is a {actual}, not a {wanted}"


# -- the warehouse (a dataset's extract stage) --------------------------------------------------


class TableNotFoundError(RegistryError, LookupError):
    """A table, dataset or project that a dataset's query names does not exist in the warehouse.

    Args:
        message: BigQuery's message (it names the table).
        where: The query, e.g. ``datasets/products/product_b/search_sessions/query.sql``.
        project: The project the query ran in.
    """

    exit_code = 20

    def __init__(self, message: str, where: str, project: str) -> None:
        self.where = where
        super().__init__(
            f"{where}: {message} (the query ran in project {project!r}; a table written "
            "dataset.table is looked up there: write project.dataset.table for another "
            "project's, or set warehouse.project in params.yaml)"
        )


class BadQueryError(RegistryError, ValueError):
    """BigQuery refused a dataset's SQL: its message, with the line of the query file."""

    exit_code = 21


class WarehousePermissionError(RegistryError, PermissionError):
    """BigQuery refused to run a query or read a table for these credentials (403): the message
    names the roles to ask for."""

    exit_code = 22


class ScanLimitError(RegistryError, PermissionError):
    """A query would scan more than ``registry.max_query_gb`` allows, and was not confirmed.

    Args:
        name: The dataset.
        estimate: The dry run's estimate, in bytes.
        limit_gb: The limit, in GB (10**9 bytes).
    """

    exit_code = 23

    def __init__(self, name: str, estimate: int, limit_gb: float) -> None:
        self.estimate = estimate
        self.limit_gb = limit_gb
        super().__init__(
            f"the query of {name!r} would scan {estimate / 1e9:,.2f} GB, over the limit of "
            f"{limit_gb:g} GB (registry.max_query_gb in params.yaml); nothing ran. Check it "
            f"with 'registry datasets extract {name} --dry-run', then run it with --yes (or "
            "raise the limit)"
        )


class WarehouseUnreachableError(RegistryError, ConnectionError):
    """The warehouse (BigQuery, or the local emulator) could not be reached or could not run
    the query now."""

    exit_code = 7
