"""The model zoo: share, find, load and promote pretrained weights.

A model is a folder ``models/<name>/`` holding a card (``README.md`` with YAML front matter, see
:mod:`registry.cards`) and its weights (a file such as ``model.keras``, or a SavedModel folder),
tracked by DVC: as the output of a pipeline stage, or by a ``.dvc`` file that
``registry models add`` writes. A release is the annotated tag ``<name>@vX.Y.Z`` whose message
records the model's lineage; stages are GTO's ``<name>#<stage>#<n>`` tags.

Example:
    >>> import registry
    >>> model = registry.load_keras_model("digits-cnn@prod")
    >>> path = registry.load_model("digits-parity:1.0.0")   # the cached weights file
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import registry.grammar as grammar
from registry import layout
from registry.atomic import atomic_write_text
from registry.cards import (
    CardError,
    FrontMatterMemo,
    ModelCard,
    parse_card,
    render_card,
    validate_card,
)
from registry.errors import (
    AlreadyDeprecatedError,
    AlreadyInStageError,
    ArtifactExistsError,
    ArtifactNotFoundError,
    ConfigError,
    DvcError,
    InvalidCardError,
    InvalidReferenceError,
    NameClashError,
    NotBuiltError,
    ReasonRequiredError,
    SourceNotFoundError,
    StaleDataError,
    UnreleasedTrainingDataError,
    VersionNotFoundError,
    VersionUnspecifiedError,
    YankedVersionError,
    first_line,
)
from registry.grammar import DeprecateTag, Reference, StageTag, Version
from registry.release import check_permitted
from registry.repo.lock import locked_out_hash
from registry.repo.records import LINEAGE_SCHEMA as LINEAGE_SCHEMA  # for older callers
from registry.repo.records import lineage_line, parse_lineage, read_logged_run
from registry.repo.session import (
    Kind,
    RegistryArg,
    Session,
    as_reference,
    last_reproduction,
    open_session,
    purge_summary,
)
from registry.repo.tags import Release, TagIndex

if TYPE_CHECKING:
    from registry.storage.remote import ProgressCallback

__all__ = [
    "ModelInfo",
    "ModelSummary",
    "add_model",
    "demote_model",
    "deprecate_model",
    "list_models",
    "load_keras_model",
    "load_model",
    "model_info",
    "new_model",
    "promote_model",
    "record_training_run",
    "release_model",
    "resolve_model",
    "search_models",
]

Bump = Literal["major", "minor", "patch"]


# -- authoring ----------------------------------------------------------------------------------

_TEMPLATE_META: dict[str, Any] = {
    "task": None,
    "architecture": None,
    "framework": "keras",
    "base_model": None,
    "datasets": [],
    "metrics": {},
    "owner": None,
    "license": None,
    "weights": "model.keras",
    "intended_use": None,
    "limitations": None,
    "tags": [],
    "language": None,
}

_TEMPLATE_BODY = """
# {name}

TODO: one paragraph on what this model does and how it was made.

## Training data

The exact dataset versions are listed in `datasets` above (`registry datasets info <ref>`).

## Evaluation

TODO: how `metrics` were measured (split, protocol).

## Intended use and limitations

TODO

## How to load

```python
import registry
model = registry.load_keras_model("{name}@prod")   # or "{name}:1.0.0"
```
"""


def new_model(
    name: str,
    *,
    registry: RegistryArg = None,
    task: str | None = None,
    architecture: str | None = None,
    framework: str = "keras",
    owner: str | None = None,
) -> Path:
    """Write the card template of a new model, ``models/<name>/README.md``.

    Args:
        name: The model name, e.g. ``resnet18-product-images``.
        registry: A registry clone; default from the configuration.
        task, architecture, framework, owner: Card fields to fill in now.

    Returns:
        The card's path.

    Raises:
        InvalidNameError: If ``name`` is malformed.
        ArtifactExistsError: If a model or dataset already has that name.
    """
    from registry.build.dvcfiles import declared_datasets

    session = open_session(registry)
    name = session.check_new_name(name, "model", declared=declared_datasets(session.root))
    meta = {
        **_TEMPLATE_META,
        "task": task,
        "architecture": architecture,
        "framework": framework,
        "owner": owner,
    }
    path = session.root / layout.card_file(name)
    atomic_write_text(path, render_card(meta, _TEMPLATE_BODY.format(name=name)))
    return path


def add_model(
    name: str,
    source: str | os.PathLike[str],
    *,
    registry: RegistryArg = None,
    force: bool = False,
) -> Path:
    """Bring weights trained elsewhere into the zoo: copy them in and track them with DVC.

    Writes the card template first if the model has no card, and sets its ``weights`` field.

    Args:
        name: The model name.
        source: A weights file (``.keras``, ``.h5``, ``.pt`` ...) or folder (a SavedModel).
        registry: A registry clone; default from the configuration.
        force: Replace weights the model already has.

    Returns:
        The weights' path in the registry.

    Raises:
        SourceNotFoundError: If ``source`` does not exist (a FileNotFoundError).
        ArtifactExistsError: If the model has weights already (without ``force``), or the name
            is a dataset's.
        ConfigError: If a weights folder holds a symbolic link leading out of it.
    """
    session = open_session(registry)
    root = session.root
    src = Path(source).expanduser()
    if not src.exists():
        raise SourceNotFoundError(str(src), f"cannot add weights to model {name!r}")
    if src.is_dir():
        _refuse_links_outside(src)
    if grammar.parse_name(name) not in session.known_models():
        new_model(name, registry=root)
    card = _read_work_tree_card(root, name)
    meta = dict(card.meta)
    old = meta.get("weights")
    dest = root / layout.model_dir(name) / src.name
    if ((old and (root / layout.model_dir(name) / old).exists()) or dest.exists()) and not force:
        raise ArtifactExistsError(
            name,
            name,
            "it already has weights",
            kind="model",
            next_step="Pass --force to replace them",
            action="add weights to model",
        )
    if old and old != src.name:
        _untrack(root, root / layout.model_dir(name) / old)
    tmp = dest.with_name(f".{dest.name}.adding")
    shutil.rmtree(tmp, ignore_errors=True)
    if src.is_dir():
        shutil.copytree(src, tmp)
    else:
        shutil.copy2(src, tmp)
    if dest.is_dir():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    _dvc_add(root, dest)
    meta["weights"] = src.name
    atomic_write_text(root / layout.card_file(name), render_card(meta, card.body))
    _declare_artifact(root, name, meta)
    return dest


def _refuse_links_outside(folder: Path) -> None:
    """Refuse a weights folder with a symlink leading out of it: the copy would take the link's
    target along into the registry and its DVC remote."""
    for path in sorted(folder.rglob("*")):
        link = layout.link_outside(folder, path)
        if link is not None:
            raise ConfigError(
                f"{link} is a symbolic link to {link.resolve()}, outside {folder}: 'models add' "
                "copies only the folder's own files into the registry (and its DVC remote); "
                "copy the file into the folder instead of linking it"
            )


def _untrack(root: Path, weights: Path) -> None:
    dvc_file = weights.with_name(weights.name + ".dvc")
    if dvc_file.exists():
        dvc_file.unlink()
    if weights.is_dir():
        shutil.rmtree(weights)
    elif weights.exists():
        weights.unlink()


def _dvc_add(root: Path, path: Path) -> None:
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            # Absolute: DVC reads a relative target from the working directory, not from root.
            repo.add(str(path))
    except DvcException as e:
        raise DvcError(
            f"'dvc add {path.relative_to(root)}' failed: {first_line(e).rstrip('.')}. Weights "
            "that a dvc.yaml stage makes come from 'dvc repro', not 'registry models add'; "
            "otherwise fix what DVC says and run the command again"
        ) from e


def _declare_artifact(root: Path, name: str, meta: dict[str, Any]) -> None:
    """Declare the model under ``artifacts:`` in dvc.yaml, for ``gto`` and ``dvc artifacts get``."""
    from registry.build.dvcfiles import set_artifact

    labels = [str(meta[k]) for k in ("task", "framework") if meta.get(k)]
    labels += [str(t) for t in meta.get("tags") or []]
    desc = meta.get("description") or " ".join(
        part
        for part in (
            meta.get("architecture") and f"{meta['architecture']}",
            meta.get("task") and f"for {meta['task']}",
            meta.get("base_model") and f"fine-tuned from {meta['base_model']}",
        )
        if part
    )
    set_artifact(
        root,
        name,
        path=f"{layout.model_dir(name)}/{meta['weights']}",
        type="model",
        desc=str(desc),
        labels=labels,
    )


def _read_work_tree_card(
    root: Path, name: str, memo: FrontMatterMemo | None = None
) -> ModelCard:
    path = root / layout.card_file(name)
    try:
        return parse_card(path.read_text(), where=layout.card_file(name), memo=memo)
    except FileNotFoundError:
        raise ArtifactNotFoundError(name, [], kind="model") from None


# -- resolving and reading cards ----------------------------------------------------------------


def resolve_model(ref: str | Reference, *, registry: RegistryArg = None) -> Release:
    """Resolve a model reference (``name``, ``name:1.2.0``, ``name:1.*``, ``name@prod``).

    Fine-tuning code records ``release.reference`` (``name:X.Y.Z``) as the new card's
    ``base_model``.

    Raises:
        ArtifactNotFoundError, VersionNotFoundError: If nothing matches.
        WrongKindError: If the name is a dataset's (a dataset is not a model).
    """
    return open_session(registry).resolve(as_reference(ref), "model")


def _card_at(
    session: Session, name: str, release: Release | None, memo: FrontMatterMemo | None = None
) -> ModelCard | None:
    """The card of ``name`` at ``release``'s commit (or in the work tree when ``None``, its
    front matter through ``memo`` if given); a released card that does not parse is ``None``
    with a warning naming it, its tag and why."""
    if release is None:
        try:
            return _read_work_tree_card(session.root, name, memo)
        except (ArtifactNotFoundError, CardError):
            return None
    try:
        return released_card(session, release)
    except CardError as e:
        logging.getLogger("registry").warning(
            "%s; its fields are shown blank until a release with a card that parses", e
        )
        return None


@dataclass(frozen=True)
class ModelSummary:
    """One model in ``registry models list`` or ``search``.

    Attributes:
        name: The model name.
        latest: The latest released version, or ``None``.
        versions: Released versions, oldest first.
        stages: Stage -> version.
        deprecated: Whether the model is deprecated.
        card: The front matter of the latest release's card (the work tree's if unreleased).
        yanked: Each yanked version (left out of ``versions``) and why.
    """

    name: str
    latest: str | None
    versions: list[str]
    stages: dict[str, str]
    deprecated: bool
    card: dict[str, Any] = field(default_factory=dict)
    yanked: dict[str, str] = field(default_factory=dict)


def _summaries(session: Session, index: TagIndex) -> list[tuple[ModelSummary, str]]:
    """Every model's summary, with its card's searchable text (every released card read in one
    Git call: :func:`released_cards`)."""
    in_tree = set(session.known_models())
    names = sorted(in_tree | _released_model_names(session, index, skip=in_tree))
    latest = {name: index.latest(name) for name in names}
    memo = _card_memo(session)  # the work tree's unreleased cards as well as released ones
    released = released_cards(session, [r for r in latest.values() if r is not None], memo)
    summaries = []
    for name in names:
        releases = index.releases(name)
        release = latest[name]
        if release is not None:
            card = released.get(release.tag)
        else:
            card = (_card_at(session, name, None, memo) if session.repo.work_tree is not None
                    else None)
        summary = ModelSummary(
            name=name,
            latest=str(release.version) if release else None,
            versions=[str(r.version) for r in releases],
            stages={s: str(r.version) for s, r in sorted(index.stages(name).items())},
            deprecated=index.is_deprecated(name),
            card=dict(card.meta) if card else {},
            yanked=index.yank_reasons(name),
        )
        summaries.append((summary, card.text if card else ""))
    memo.save()
    return summaries


def _released_model_names(session: Session, index: TagIndex, skip: set[str]) -> set[str]:
    """Released names not in ``skip`` that are models: their release commit has a model card.

    Only models' tags are read (those of ``skip`` too): every tagged name but the tree's
    datasets.
    """
    gone = index.tagged_names() - set(session.known_datasets()) - skip
    index.preload(gone | skip)
    latest = [r for n in sorted(gone) if (r := index.latest(n)) is not None]
    cards = session.repo.read_files([(r.commit, layout.card_file(r.name)) for r in latest])
    return {r.name for r, card in zip(latest, cards, strict=True) if card}


def list_models(*, registry: RegistryArg = None) -> list[ModelSummary]:
    """List every model with its versions, stages and card fields.

    Raises:
        NotARegistryError: If no registry is configured.
    """
    session = open_session(registry)
    session.repo.refresh()
    return model_summaries(session)


def model_summaries(session: Session) -> list[ModelSummary]:
    """:func:`list_models` on a session already open: the catalog's, whose Git process has
    every card it reads prefetched already."""
    return [summary for summary, _ in _summaries(session, session.index())]


def search_models(
    *,
    task: str | None = None,
    architecture: str | None = None,
    framework: str | None = None,
    dataset: str | None = None,
    base_model: str | None = None,
    owner: str | None = None,
    language: str | None = None,
    stage: str | None = None,
    text: str | None = None,
    sort: str = "name",
    registry: RegistryArg = None,
) -> list[ModelSummary]:
    """Find models: "who has a BERT on our Japanese text?".

    Cards are read with one long-lived ``git cat-file`` process, at each model's latest release.
    Every filter given must match (case-insensitive):

    Args:
        task, architecture, framework, owner, language: Equal to the card's field.
        dataset: Trained on this dataset: ``name`` (any version), ``name:1.*`` (a range) or
            ``name:1.2.0``.
        base_model: Fine-tuned from this model: ``name`` or ``name:<spec>`` as ``dataset``.
        stage: Has a version in this stage.
        text: Appears in the card (front matter or body), every word of it.
        sort: ``name``, ``latest`` (newest release first) or a metric name (highest first).
        registry: A registry clone or Git URL; default from the configuration.

    Raises:
        InvalidReferenceError: If ``dataset`` or ``base_model`` is malformed.
    """
    dataset_ref = as_reference(dataset) if dataset else None
    base_ref = as_reference(base_model) if base_model else None
    session = open_session(registry)
    session.repo.refresh()
    index = session.index()
    found = []
    equal = {
        "task": task,
        "architecture": architecture,
        "framework": framework,
        "owner": owner,
        "language": language,
    }
    words = text.lower().split() if text else []
    for summary, card_text in _summaries(session, index):
        card = summary.card
        if any(v is not None and str(card.get(k, "")).lower() != v.lower()
               for k, v in equal.items()):
            continue
        if dataset_ref and not any(_matches(dataset_ref, d) for d in card.get("datasets") or []):
            continue
        if base_ref and not (card.get("base_model") and _matches(base_ref, card["base_model"])):
            continue
        if stage and stage not in summary.stages:
            continue
        if any(w not in card_text for w in words):
            continue
        found.append(summary)
    return _sorted(found, sort, index, session)


def _matches(wanted: Reference, recorded: Any) -> bool:
    try:
        ref = grammar.parse_reference(str(recorded))
    except (InvalidReferenceError, ValueError):
        return False
    if ref.name != wanted.name:
        return False
    if wanted.version is None:
        return True
    if ref.version is None or not ref.version.is_exact:
        return False
    assert ref.version.minor is not None and ref.version.patch is not None
    return wanted.version.matches(Version(ref.version.major, ref.version.minor, ref.version.patch))


def _sorted(
    found: list[ModelSummary], sort: str, index: TagIndex, session: Session
) -> list[ModelSummary]:
    if sort == "name":
        return sorted(found, key=lambda s: s.name)
    if sort == "latest":
        latest = {s.name: r.tag for s in found if (r := index.latest(s.name)) is not None}
        dates = session.repo.tag_dates(latest.values())  # one Git call, these tags only

        def created(s: ModelSummary) -> str:
            return dates.get(latest.get(s.name, ""), "")

        return sorted(found, key=created, reverse=True)

    def metric(s: ModelSummary) -> tuple[bool, float, str]:
        value = (s.card.get("metrics") or {}).get(sort)
        return (value is None, -float(value) if value is not None else 0.0, s.name)

    return sorted(found, key=metric)


@dataclass(frozen=True)
class ModelInfo:
    """What ``registry models info`` shows.

    Attributes:
        name, version, tag, commit: The release described (version ``None``: the work tree).
        card: The card's front matter.
        body: The card's Markdown.
        versions, stages, deprecated: As in :class:`ModelSummary`.
        lineage: What the release recorded: dataset versions, base model, commit, params,
            training run, weights hash.
        yanked: Each yanked version (left out of ``versions``) and why.
        purged: Who purged the version described, and when (``None``: its bytes are there).
        reproduced: The last reproduction recorded in the version's lineage note (``date``,
            ``equal``, ``by``, the whole ``record``; ``None``: none recorded).
    """

    name: str
    version: str | None
    tag: str | None
    commit: str | None
    card: dict[str, Any]
    body: str
    versions: list[str]
    stages: dict[str, str]
    deprecated: bool
    lineage: dict[str, Any] | None
    yanked: dict[str, str] = field(default_factory=dict)
    purged: str | None = None
    reproduced: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for ``--json``."""
        return asdict(self)


def model_info(ref: str | Reference, *, registry: RegistryArg = None) -> ModelInfo:
    """Describe a model version: card, versions, stages and lineage (Git only, no bytes).

    Raises:
        ArtifactNotFoundError, VersionNotFoundError: If nothing matches.
        WrongKindError: If the name is a dataset's (a dataset is not a model).
    """
    reference = as_reference(ref)
    session = open_session(registry)
    index = session.index()
    release: Release | None = None
    if (
        reference.version is None
        and reference.stage is None
        and not index.releases(reference.name)
        and reference.name in session.known_models()
        and session.repo.work_tree is not None
    ):
        card = _read_work_tree_card(session.root, reference.name)
    else:
        release = session.resolve(reference, "model", describe=True)
        index = session.index()
        found = _card_at(session, release.name, release)
        card = found if found is not None else ModelCard()
    name = reference.name
    return ModelInfo(
        name=name,
        version=str(release.version) if release else None,
        tag=release.tag if release else None,
        commit=release.commit if release else None,
        card=dict(card.meta),
        body=card.body,
        versions=[str(r.version) for r in index.releases(name)],
        stages={s: str(r.version) for s, r in sorted(index.stages(name).items())},
        deprecated=index.is_deprecated(name),
        lineage=read_lineage(session.repo.tag_message(release.tag)) if release else None,
        yanked=index.yank_reasons(name),
        purged=purge_summary(session.repo, release),
        reproduced=last_reproduction(session.repo, release),
    )


def read_lineage(message: str) -> dict[str, Any] | None:
    """The lineage a release recorded in its tag message, or ``None`` (:func:`parse_lineage`)."""
    return parse_lineage(message)[0]


# -- releasing and stages -----------------------------------------------------------------------


def release_model(
    name: str,
    *,
    version: str | None = None,
    bump: Bump | None = None,
    registry: RegistryArg = None,
    push: bool = True,
    remote: str | None = None,
    allow_unshared_remote: bool = False,
    allow_understated_bump: bool = False,
    reason: str | None = None,
) -> Release:
    """Release a model version: check its card and weights, push the bytes, then tag it.

    Refuses (nothing pushed, nothing tagged) unless the work tree is committed, the card is valid,
    every training dataset is a released dataset version, ``base_model`` (if any) is a released
    model version, the weights are tracked by DVC and up to date, and the version is MAJOR
    above the previous release when the card's input/output ``signature`` changed
    (:mod:`registry.semver`). The tag
    ``<name>@vX.Y.Z`` is created only after the bytes are in the DVC remote; its message records
    the lineage (dataset versions, base model, commit, params, training run, weights hash). See
    :func:`registry.release.release`, which every artifact kind's release goes through.

    Args:
        name: The model name.
        version: The version to release; or
        bump: ``major``, ``minor`` or ``patch`` from the latest release. With neither, the
            first release is 1.0.0 and later ones must say which.
        registry: A registry clone; default from the configuration.
        push: Push the tag to the Git remote (the bytes are always pushed).
        remote: The DVC remote to push the bytes to; default: the one the committed
            ``.dvc/config`` makes the default (the one loads by Git URL read).
        allow_unshared_remote: Allow ``remote`` to be another (a personal or local-only one).
        allow_understated_bump: Release a version that understates a signature change anyway;
            the override and ``reason`` are recorded in the tag's lineage record.
        reason: Why (required with ``allow_understated_bump``).

    Raises:
        CardError: For an invalid card (which field, what is expected).
        UnderstatedBumpError: If the card's signature changed and the version is not MAJOR.
        ReasonRequiredError: If ``allow_understated_bump`` is given without a ``reason``.
        DirtyWorkTreeError: If the work tree has uncommitted changes.
        VersionUnspecifiedError: If the model has releases and neither ``version`` nor ``bump``
            is given, or both are.
        VersionExistsError, VersionNotAboveLatestError, VersionOnCommitError: If the version was
            released, is not above the latest release, or a version was released from HEAD.
        InvalidCardError: If a training dataset or the base model is not a released version.
        NameClashError: If a dataset has the model's name.
        WrongKindError: If the name is a dataset's (a dataset is not a model).
        StaleDataError: If the weights are not up to date.
        NotBuiltError: If the weights do not exist or are not tracked by DVC.
        UnsharedRemoteError: If the DVC remote is a personal override of the committed one
            (``.dvc/config.local``, ``REGISTRY_REMOTE``) and not allowed.
        TagRaceError: If another clone pushed the same tag first.
        RemoteError: If the DVC or Git remote cannot be reached.
    """
    from registry.release import release

    session = open_session(registry)
    name = grammar.parse_name(name)
    if name not in session.known_models():
        session.check_kind(name, "model", command="release")
        raise ArtifactNotFoundError(name, session.known_models(), kind="model")
    if name in session.known_datasets():
        raise NameClashError(name, layout.dataset_dir(name))
    override = " ".join((reason or "").split()) or None
    if allow_understated_bump and override is None:
        raise ReasonRequiredError("model", name, override=True)
    return release(
        session,
        _ModelRelease(session, name, version, bump, override if allow_understated_bump else None),
        push=push,
        remote=remote,
        allow_unshared_remote=allow_unshared_remote,
    )


@dataclass(frozen=True)
class _ModelRelease:
    """A model as :func:`registry.release.release` sees it: its card says what it was made of."""

    session: Session
    name: str
    wanted: str | None
    bump: Bump | None
    override: str | None = None
    # What the signature check found (``bump_check`` in the lineage record), set by ``check``.
    checked: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> Kind:
        """Models, for the commands that messages name."""
        return "model"

    @property
    def what(self) -> str:
        """The bytes, for messages."""
        return f"the weights of {self.name!r}"

    @functools.cached_property
    def card(self) -> ModelCard:
        """The work tree's card (read once: it is committed)."""
        return _read_work_tree_card(self.session.root, self.name)

    @property
    def weights(self) -> str:
        """The weights' path, relative to the registry root."""
        return f"{layout.model_dir(self.name)}/{self.card.meta['weights']}"

    @property
    def targets(self) -> list[str]:
        """The weights, as DVC pushes them."""
        return [self.weights]

    def version(self, index: TagIndex) -> Version:
        """``--version``, else ``--bump`` of the latest, else 1.0.0 for a first release."""
        return _next_version(index, self.name, self.wanted, self.bump)

    def check(self, index: TagIndex, version: Version) -> None:
        """A valid card whose datasets and base model are released; current weights."""
        name, card = self.name, self.card
        where = layout.card_file(name)
        validate_card(card, where=where)
        for field_name, kind, text in card.references():
            ref = as_reference(text)
            released = [str(r.version) for r in index.releases(ref.name)]
            actual = self.session.kind_of(ref.name, index)
            if actual is not None and actual != kind:
                raise InvalidCardError(name, field_name, text, kind, released, where, actual=actual)
            if str(ref.version) not in released:
                yanked = index.yank_reasons(ref.name).get(str(ref.version))
                raise InvalidCardError(name, field_name, text, kind, released, where, yanked=yanked)
        _check_weights_current(self.session.root, name, self.weights)
        previous = index.latest(name)
        if previous is not None:
            from registry.semver import (
                check_bump,
                model_bump_reasons,
                model_bump_suggestions,
                smallest_version,
            )

            before = released_card(self.session, previous)
            reasons = model_bump_reasons(before.meta if before else {}, card.meta)
            self.checked.update(check_bump(
                "model", name, version, previous.version, reasons, self.override,
                self.session.repo.tagger_email(),
            ))
            suggested = model_bump_suggestions(before.meta if before else {}, card.meta)
            major = smallest_version(previous.version, "major")
            if suggested and version < major:
                # Not clear-cut (the weights may serve the same signature): said and recorded.
                logging.getLogger(__name__).warning(
                    "%s %s: since %s, %s, which suggests a MAJOR version (%s); released as %s",
                    name, version, previous.version, "; ".join(suggested), major, version,
                )
                self.checked["suggested"] = {"bump": "major", "changes": suggested}

    def tag_message(self, version: Version) -> str:
        """``Release NAME X.Y.Z`` and the lineage, as one JSON line (:func:`read_lineage`)."""
        root, repo, card = self.session.root, self.session.repo, self.card
        md5 = locked_out_hash(repo, None, None, self.weights)
        base = card.get("base_model")
        run = _training_run(root, self.name, card, md5)
        lineage = {
            "artifact": self.name,
            "kind": "model",
            "version": str(version),
            "commit": repo.resolve_commit("HEAD"),
            "datasets": {r.name: str(r.version) for r in map(as_reference, card.datasets)},
            "base_model": str(base) if base else None,
            "params": _model_params(root, self.name),
            "training_run": run,
            # How the weights were trained (framework version, determinism settings), if the
            # training code wrote it into the card (src/zoo does).
            "training": card.get("training"),
            "compute": _compute_settings(root),
            "weights": {"path": self.weights, "md5": md5},
        }
        logged = read_logged_run(root, run)
        if logged is not None:
            # The tracking server, experiment and run that logged it: the catalog links to the
            # run's page from this alone (no server asked when the site is built).
            lineage["mlflow_run"] = logged
        job = _cloud_job(root, self.name, md5)
        if job is not None:
            # Trained by a cloud job and fetched (registry compute fetch): the knobs it ran with
            # and where, instead of what params.yaml says of local training.
            lineage["params"] = job.get("params") or lineage["params"]
            lineage["compute"] = job.get("compute") or lineage["compute"]
            lineage["job"] = {k: job.get(k) for k in ("uri", "commit", "data", "job")}
        if self.checked:
            lineage["bump_check"] = dict(self.checked)
        return f"Release {self.name} {version}\n\n{lineage_line(lineage)}"


def _training_runs_file(root: Path, name: str) -> Path:
    # Beside the local MLflow store, which Git ignores: run ids are this machine's knowledge.
    return root / "mlflow" / "runs" / f"{name}.json"


def record_training_run(
    name: str, run_id: str, weights: str | os.PathLike[str], *, registry: RegistryArg = None
) -> Path:
    """Remember which tracked training run produced model ``name``'s ``weights``.

    A later release of ``name`` whose weights are exactly these bytes records ``run_id`` as the
    ``training_run`` of its lineage (unless the card names one). The record is kept beside the
    local MLflow store, ``mlflow/runs/<name>.json`` (ignored by Git), rather than in the card: a
    retrain would otherwise change a tracked file every time.

    Args:
        name: The model name.
        run_id: The run's id in the tracking system (the ``uid`` of ``registry.tracking.run``).
        weights: The weights file the run wrote.
        registry: A registry clone; default from the configuration.

    Returns:
        The record file written.

    Raises:
        InvalidNameError: If ``name`` is malformed.
        NotBuiltError: If ``weights`` does not exist (record the run after saving them).
        NotARegistryError: If the registry is not a clone.

    Example:
        >>> with registry.tracking.run("digits-cnn") as run:  # doctest: +SKIP
        ...     model.fit(train, callbacks=[run.keras_callback()])
        ...     model.save("models/digits-cnn/model.keras")
        >>> registry.record_training_run(  # doctest: +SKIP
        ...     "digits-cnn", run.uid, "models/digits-cnn/model.keras")
    """
    import hashlib

    name = grammar.parse_name(name)
    root = open_session(registry).root
    try:
        data = Path(weights).read_bytes()
    except FileNotFoundError:
        raise NotBuiltError(
            f"cannot record training run {run_id!r} of {name!r}: its weights {weights} do not "
            "exist; save the weights first, then record the run"
        ) from None
    digest = hashlib.md5(data, usedforsecurity=False).hexdigest()
    record = {"run": run_id, "weights_md5": digest}
    path = _training_runs_file(root, name)
    atomic_write_text(path, json.dumps(record, sort_keys=True) + "\n")
    return path


JOB_RECORD = "job.json"


def job_record_file(root: Path, name: str) -> Path:
    """Where ``registry compute fetch`` keeps the lineage of the cloud job that trained
    ``name``'s current weights (committed with them, read by the next release)."""
    return root / layout.model_dir(name) / JOB_RECORD


def _cloud_job(root: Path, name: str, weights_md5: str) -> dict[str, Any] | None:
    """The fetched cloud job's lineage if it made exactly these weights, else ``None``."""
    try:
        record = json.loads(job_record_file(root, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or (record.get("weights") or {}).get("md5") != weights_md5:
        return None
    return record


def _weights_stage(repo: Any, rel: str) -> Any:
    """The ``dvc.yaml`` stage whose output is ``rel``, or ``None``."""
    return next((s for s in repo.index.stages for out in s.outs if out.def_path == rel), None)


def check_stage_inputs(
    root: Path, name: str, path: Path, inputs: Mapping[str, tuple[str, str]]
) -> None:
    """Refuse weights made from other data than the ``dvc.yaml`` stage that outputs them would
    record: each of ``inputs`` the stage depends on must have that hash in the work tree (a
    no-op for weights that no stage makes). Changes nothing.

    Args:
        root: The registry clone.
        name: The model.
        path: Where its weights go.
        inputs: What the weights were made from: a dependency path
            (``datasets/<name>/prepared``) -> (the dataset version, its DVC hash).

    Raises:
        UnreleasedTrainingDataError: If a stage's dataset dependency is another build.
        DvcError: If DVC cannot read the pipeline.
    """
    from dvc.exceptions import DvcException
    from dvc.logger import set_loggers_level
    from dvc.repo import Repo

    rel = path.relative_to(root).as_posix()
    try:
        with set_loggers_level(logging.WARNING), Repo(str(root)) as repo:
            stage = _weights_stage(repo, rel)
            for dep in stage.deps if stage is not None else []:
                wanted = inputs.get(dep.def_path)
                if wanted is not None and dep.exists and dep.get_hash().value != wanted[1]:
                    raise UnreleasedTrainingDataError(
                        name,
                        wanted[0],
                        f"is not the build in {dep.def_path} that {stage.addressing} would "
                        "record as its input",
                        "build or pull that version there (its release tag's dvc.lock, 'dvc "
                        "pull'), or track the weights outside dvc.yaml",
                    )
    except DvcException as e:
        raise DvcError(
            f"DVC cannot read the pipeline that makes {rel}: {first_line(e).rstrip('.')}"
        ) from e


def track_weights(root: Path, name: str, path: Path) -> str:
    """Track model ``name``'s weights ``path`` (in its folder) with DVC, as local training
    leaves them: the ``dvc.yaml`` stage that outputs them is committed (``dvc commit``: its
    dependencies and outputs as they are now in the work tree; see
    :func:`check_stage_inputs`), other weights get a ``.dvc`` file (``dvc add``). Returns how:
    ``stage <name>`` or ``dvc add``.

    Raises:
        DvcError: If DVC cannot record them (e.g. a stage's dependency is missing).
    """
    from dvc.exceptions import DvcException
    from dvc.logger import set_loggers_level
    from dvc.repo import Repo

    rel = path.relative_to(root).as_posix()
    try:
        # Importing DVC sets its loggers to print INFO on stdout ("Updating lock file"), which
        # would break a command's --json; what DVC did is in the result.
        with set_loggers_level(logging.WARNING), Repo(str(root)) as repo:
            stage = _weights_stage(repo, rel)
            if stage is None:
                repo.add(str(path))
                return "dvc add"
            repo.commit(stage.addressing, force=True)
            return f"stage {stage.addressing}"
    except DvcException as e:
        raise DvcError(
            f"DVC cannot record the weights {rel} of {name!r}: {first_line(e).rstrip('.')}. "
            "A dvc.yaml stage's dependencies must be in the work tree ('dvc pull' or build "
            "them); fix what DVC says and run the command again"
        ) from e


def _training_run(root: Path, name: str, card: ModelCard, weights_md5: str) -> str | None:
    """The card's ``training_run``, else the recorded run whose weights are these."""
    if card.get("training_run"):
        return str(card.get("training_run"))
    try:
        record = json.loads(_training_runs_file(root, name).read_text())
    except (OSError, ValueError):
        return None
    return str(record["run"]) if record.get("weights_md5") == weights_md5 else None


def _next_version(index: TagIndex, name: str, version: str | None, bump: Bump | None) -> Version:
    """The version asked for, else the latest bumped; 1.0.0 first. GTO's rules come later."""
    latest = index.latest(name)
    if version is not None and bump is not None:
        raise VersionUnspecifiedError("model", name, "--version and --bump were both given")
    if version is not None:
        return grammar.parse_version(version)
    if latest is None:
        return Version(1, 0, 0) if bump is None else Version(0, 0, 0).bump(bump)
    if bump is None:
        reason = f"it has releases (latest {latest.version}) and no version was given"
        raise VersionUnspecifiedError("model", name, reason)
    return latest.version.bump(bump)


def _check_weights_current(root: Path, name: str, weights: str) -> None:
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    if not (root / weights).exists():
        raise NotBuiltError(
            f"cannot release {name!r}: its weights {weights} do not exist; train the model or "
            f"'registry models add {name} --from FILE'"
        )
    try:
        with Repo(str(root)) as repo:
            status = repo.status(targets=[weights])
    except DvcException as e:
        raise NotBuiltError(
            f"cannot release {name!r}: {weights} is not tracked by DVC ({e}); add it with "
            f"'registry models add {name} --from FILE'"
        ) from e
    if status:
        problem = f"the weights {weights} are not up to date ({status})"
        fix = (
            "run the dvc.yaml stage that makes them, or "
            f"'registry models add {name} --from FILE --force'"
        )
        raise StaleDataError("model", name, problem, fix)


def _model_params(root: Path, name: str) -> dict[str, Any]:
    from registry.config import read_params

    value = (read_params(root).get("models") or {}).get(name) or {}
    return dict(value) if isinstance(value, dict) else {}


def _compute_settings(root: Path) -> dict[str, Any]:
    """Where and how the pipeline trains: ``compute.backend`` and ``train.strategy``."""
    from registry.config import read_params

    params = read_params(root)
    compute, train = params.get("compute") or {}, params.get("train") or {}
    return {
        "backend": compute.get("backend") if isinstance(compute, dict) else None,
        "strategy": train.get("strategy") if isinstance(train, dict) else None,
    }


def _stage_session(registry: RegistryArg, stage: str) -> Session:
    session = open_session(registry)
    grammar.parse_stage(stage)
    if stage not in session.settings.stages:
        raise ConfigError(
            f"stage {stage!r} is not allowed; the stages are {', '.join(session.settings.stages)} "
            "(registry.stages in params.yaml)"
        )
    session.repo.refresh()
    return session


def promote_model(
    ref: str | Reference, stage: str, *, registry: RegistryArg = None, push: bool = True
) -> str:
    """Assign ``stage`` to a released model version: the GTO tag ``<name>#<stage>#<n>``.

    Args:
        ref: ``name:X.Y.Z`` (or any reference that resolves to one release).
        stage: One of the configured stages (default ``dev``, ``staging``, ``prod``).

    Returns:
        The tag written.

    Raises:
        ConfigError: If the stage is not allowed.
        VersionNotFoundError: If the version is not released.
        YankedVersionError: If the version is yanked (PEP 592: nothing new points at it).
        WrongKindError: If the name is a dataset's (a dataset is not a model).
        TagRaceError: If another clone tagged the model between the fetch of the tags (done
            first, so a stale clone counts stages right) and the push; nothing was tagged.
        RemoteError: If the Git remote cannot be read or written.
    """
    session = _stage_session(registry, stage)
    reference = as_reference(ref)
    lease = session.repo.lease_tags(reference.name) if push else None
    try:  # a dataset's name is refused; so is a yanked version
        release = session.resolve(reference, "model", strict=True)
    except YankedVersionError as e:
        raise e.refusing("a yanked version is never promoted; promote a later version") from None
    check_permitted(session, release.name, f"promote {release.reference} to {stage!r}", stage)
    index = session.index()
    if index.stages(release.name).get(stage) == release:
        raise AlreadyInStageError(release.name, release.version, stage)
    tag = str(StageTag(release.name, stage, index.next_counter(release.name)))
    message = f"Promote {release.name} {release.version} to {stage}"
    rerun = f"run 'registry models promote {reference} {stage}' again"
    session.repo.publish_tag(tag, message, release.commit, push, lease=lease, rerun=rerun)
    return tag


def demote_model(
    name: str, stage: str, *, registry: RegistryArg = None, push: bool = True
) -> str:
    """Take ``stage`` away from the version of ``name`` that holds it (GTO's ``#<stage>!#<n>``).

    Raises:
        VersionNotFoundError: If no version of ``name`` is in that stage.
        WrongKindError: If the name is a dataset's (a dataset is not a model).
        TagRaceError, RemoteError: As for :func:`promote_model`.
    """
    session = _stage_session(registry, stage)
    name = grammar.parse_name(name)
    lease = session.repo.lease_tags(name) if push else None
    index = session.index()
    session.check_kind(name, "model", index=index)
    release = index.stages(name).get(stage)
    if release is None:
        released = [str(r.version) for r in index.releases(name)]
        raise VersionNotFoundError(name, f"@{stage}", released, kind="model")
    check_permitted(session, name, f"demote {release.reference} from {stage!r}", stage)
    tag = str(StageTag(name, stage, index.next_counter(name), unassign=True))
    message = f"Demote {name} {release.version} from {stage}"
    rerun = f"run 'registry models demote {name} {stage}' again"
    session.repo.publish_tag(tag, message, release.commit, push, lease=lease, rerun=rerun)
    return tag


def deprecate_model(name: str, *, registry: RegistryArg = None, push: bool = True) -> str:
    """Deprecate a model as a whole (GTO's ``<name>@deprecated#<n>``); its versions stay loadable.

    Raises:
        ArtifactNotFoundError: If ``name`` has no release.
        WrongKindError: If the name is a dataset's (a dataset is not a model).
        TagRaceError, RemoteError: As for :func:`promote_model`.
    """
    session = open_session(registry)
    session.repo.refresh()
    name = grammar.parse_name(name)
    lease = session.repo.lease_tags(name) if push else None
    index = session.index()
    session.check_kind(name, "model", index=index)
    latest = index.latest(name)
    if latest is None:
        raise ArtifactNotFoundError(name, index.names(), kind="model")
    if index.is_deprecated(name):
        raise AlreadyDeprecatedError(name)
    check_permitted(session, name, f"deprecate model {name!r}")
    tag = str(DeprecateTag(name, index.next_counter(name)))
    rerun = f"run 'registry models deprecate {name}' again"
    session.repo.publish_tag(
        tag, f"Deprecate {name}", latest.commit, push, lease=lease, rerun=rerun
    )
    return tag


# -- loading ------------------------------------------------------------------------------------


def load_model(
    ref: str | Reference,
    *,
    registry: RegistryArg = None,
    progress: ProgressCallback | None = None,
    jobs: int | None = None,
    strict: bool = False,
) -> Path:
    """Fetch a released model's weights into the local cache and return their path.

    The path keeps the weights' file name (``model.keras``), or is the folder of a SavedModel.
    Bytes are fetched once, verified against the hash recorded in Git, and shared by every
    version and project that has them; the shared cache (``shared_cache_dir``) is looked in
    before the remote.

    Args:
        ref: The model reference (``NAME``, ``NAME:1.2.0``, ``NAME@prod``).
        registry: The registry; default from the configuration.
        progress: Called with ``(done bytes, total bytes)`` while downloading.
        jobs: Parallel downloads for a folder of weights (default: the DVC remote's ``jobs``).
        strict: Refuse a yanked version (also ``REGISTRY_STRICT=1``); otherwise an exact pin
            of one loads with a :class:`~registry.repo.session.YankedVersionWarning`.

    Raises:
        ArtifactNotFoundError, VersionNotFoundError: If nothing matches ``ref``.
        WrongKindError: If the name is a dataset's (a dataset is not a model).
        RemoteError: If the DVC remote cannot be reached or lacks the bytes.
        CorruptArtifactError: If the fetched bytes do not match their hash.
        YankedVersionError: If the version is yanked and ``strict``.
    """
    from registry.storage.remote import RemoteStore

    session = open_session(registry)
    release = session.resolve(as_reference(ref), "model", command="pull", strict=strict)
    weights, md5 = released_weights(session, release)
    cache = session.content_cache()
    remote = RemoteStore.open(session.repo, release.commit, session.settings.remote)
    if md5.endswith(".dir"):
        return cache.snapshot(md5, remote, jobs=jobs, progress=progress).path
    return cache.named_object(md5, Path(weights).name, remote, progress=progress)


# Released cards by their bytes (:func:`released_card`); cleared when full.
_PARSED_CARDS: dict[bytes, ModelCard] = {}
_PARSED_CARDS_MAX = 20_000
# Cards' front matter parsed by earlier commands, in the cache folder (a file a registry).
_CARD_MEMO = "card-front-matter"


def released_card(session: Session, release: Release) -> ModelCard | None:
    """The card of a model release at its tagged commit (``None``: it has none).

    Lineage reads a release's datasets and base model from it when the tag records no lineage.

    Raises:
        CardError: If the card does not parse (naming the card, the tag, line and column).
    """
    data = session.repo.read_file(release.commit, layout.card_file(release.name))
    return _released_card_of(release, data)


def released_cards(
    session: Session, releases: list[Release], memo: FrontMatterMemo | None = None
) -> dict[str, ModelCard | None]:
    """The cards of many model releases, read in one Git call, by release tag.

    A card that does not parse is ``None`` with a warning naming it, its tag and why (as
    :func:`_card_at`); a release without a card is ``None``. Front matter parsed by earlier
    commands comes from the cache folder's memo (``memo``, which the caller then saves; by
    default one read and saved here).

    Example:
        >>> released_cards(session, [release])  # doctest: +SKIP
        {'digits-cnn@v1.0.0': ModelCard(meta={'task': 'image-classification', ...}, body=...)}
    """
    wanted = [(r.commit, layout.card_file(r.name)) for r in releases]
    found: dict[str, ModelCard | None] = {}
    own = memo is None and bool(releases)
    if own:
        memo = _card_memo(session)
    for release, data in zip(releases, session.repo.read_files(wanted), strict=True):
        try:
            found[release.tag] = _released_card_of(release, data, memo)
        except CardError as e:
            logging.getLogger("registry").warning(
                "%s; its fields are shown blank until a release with a card that parses", e
            )
            found[release.tag] = None
    if own and memo is not None:
        memo.save()
    return found


def _card_memo(session: Session) -> FrontMatterMemo:
    """The front matter memo of the session's registry, in the cache folder
    (:class:`cards.FrontMatterMemo`): one file a registry, so that a command loads the cards
    of its own registry only (the whole file is read: 5,000 cards ~10 ms)."""
    key = hashlib.sha256(str(session.repo.path.resolve()).encode()).hexdigest()[:16]
    return FrontMatterMemo(session.settings.cache_dir / _CARD_MEMO / f"{key}.json")


def _released_card_of(
    release: Release, data: bytes | None, memo: FrontMatterMemo | None = None
) -> ModelCard | None:
    """A release's card parsed from its bytes at the release (``None``: it has none)."""
    if data is None:
        return None
    # Parsed once per content (what a Git blob id names): the catalog and lineage read the
    # same cards again, and versions often share one. A card that does not parse is not kept.
    card = _PARSED_CARDS.get(data)
    if card is None:
        where = f"{layout.card_file(release.name)} at {release.tag}"
        card = parse_card(data.decode("utf-8", errors="replace"), where=where, memo=memo)
        if len(_PARSED_CARDS) >= _PARSED_CARDS_MAX:
            _PARSED_CARDS.clear()
        _PARSED_CARDS[data] = card
    return card


def released_weights(session: Session, release: Release) -> tuple[str, str]:
    """A released model's weights: their path in the registry and their DVC hash.

    Raises:
        NotBuiltError: If the release has no card with a ``weights`` field, or nothing records
            the weights' hash.
    """
    card = _card_at(session, release.name, release)
    if card is None or not card.get("weights"):
        raise NotBuiltError(f"{release.tag} has no card with a weights field")
    weights = f"{layout.model_dir(release.name)}/{card.meta['weights']}"
    return weights, locked_out_hash(session.repo, release.commit, None, weights)


def load_keras_model(
    ref: str | Reference, *, registry: RegistryArg = None, **kwargs: Any
) -> Any:
    """Load a released Keras model (``keras.models.load_model`` on :func:`load_model`'s path).

    Args:
        ref: A model reference.
        registry: A registry clone or Git URL; default from the configuration.
        **kwargs: Passed to ``keras.models.load_model`` (``compile``, ``custom_objects``...).
    """
    import keras

    return keras.models.load_model(load_model(ref, registry=registry), **kwargs)

