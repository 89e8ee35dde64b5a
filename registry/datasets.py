"""The dataset registry's public API: list, describe, load, pull, build, release, author.

Every function takes an optional ``registry`` (a local clone or a Git URL); without it the
registry comes from the configuration (``REGISTRY_URL``, the clone around the working
directory, the user config file; see :mod:`registry.config`).

Example:
    >>> import registry
    >>> ds = registry.load_dataset("products/product_a/ad_clicks:1.0.0", split="train[:10%]")
    >>> df = registry.load_dataset("image_classification/digits", split="test", output="pandas")
"""

from __future__ import annotations

import ast
import functools
import json
import os
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from registry import layout
from registry.errors import (
    ArtifactNotFoundError,
    ConfigError,
    CorruptArtifactError,
    CredentialsError,
    DvcError,
    MissingReleaseNotesError,
    NotBuiltError,
    ReasonRequiredError,
    RegistryError,
    RemoteError,
    StaleDataError,
    VersionNotFoundError,
    VersionUnspecifiedError,
    first_line,
)
from registry.grammar import (
    Reference,
    Version,
    parse_name,
    parse_version,
)
from registry.repo.lock import imported_from, locked_out_hash, locked_stage, norm_path
from registry.repo.records import bump_override, lineage_line, parse_lineage
from registry.repo.session import (
    Kind,
    Session,
    as_reference,
    last_reproduction,
    open_session,
    purge_summary,
)
from registry.repo.tags import Release, TagIndex
from registry.storage.array_records import (
    corrupt_read_text,
    enable_tf_data,
    is_corrupt_read,
    with_single_reads,
)

if TYPE_CHECKING:
    from registry.build.compare import Side
    from registry.build.extract import Extracted, ExtractPlan
    from registry.semver import Bump
    from registry.storage.cache import FetchResult
    from registry.storage.remote import ProgressCallback

__all__ = [
    "BuildInputs",
    "DatasetInfo",
    "DatasetSummary",
    "DatasetVersion",
    "ExtractOutcome",
    "Source",
    "add_raw_input",
    "build_dataset",
    "build_inputs",
    "config_side",
    "configs_of",
    "dataset_info",
    "extract_dataset",
    "extract_plan",
    "list_datasets",
    "load_dataset",
    "locate_dataset",
    "new_dataset",
    "pipeline_options",
    "prepare_dataset",
    "pull_dataset",
    "release_dataset",
    "released_side",
    "workspace_side",
]

Output = Literal["tf", "numpy", "pandas", "data_source"]
_OUTPUTS = ("tf", "numpy", "pandas", "data_source")


# -- describing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSummary:
    """One line of ``registry datasets list``.

    Attributes:
        name: The dataset name.
        versions: Released versions, oldest first.
        latest: The latest released version, or ``None``.
        stages: Stage name -> version.
        deprecated: Whether the dataset is deprecated.
        in_tree: Whether its builder exists in the registry's tree (else: releases only).
        built: In a clone, what is built locally: ``{"version", "examples"}`` from its
            ``build_info.json`` when ``prepared/`` exists (with configs: the default's
            examples, and ``configs``: config -> examples); else ``None``.
        yanked: Each yanked version (left out of ``versions``) and why.
        configs: The builder's configs, the default first (``BUILDER_CONFIGS``, as the work
            tree's ``build_info.json`` records them, else the latest release's); empty for a
            builder without configs.
    """

    name: str
    versions: list[str]
    latest: str | None
    stages: dict[str, str]
    deprecated: bool
    in_tree: bool
    built: dict[str, Any] | None = None
    yanked: dict[str, str] = field(default_factory=dict)
    configs: list[str] = field(default_factory=list)


def list_datasets(*, registry: str | os.PathLike[str] | None = None) -> list[DatasetSummary]:
    """List every dataset: those in the registry's tree and those with releases.

    Reads all tags with one Git call.

    Args:
        registry: A registry clone or Git URL; default from the configuration.

    Returns:
        One :class:`DatasetSummary` per dataset, sorted by name.

    Raises:
        NotARegistryError: If no registry is configured.
        RemoteError: If a remote registry cannot be fetched.
    """
    session = open_session(registry)
    session.repo.refresh()
    return dataset_summaries(session)


def dataset_summaries(session: Session) -> list[DatasetSummary]:
    """:func:`list_datasets` on a session already open: the catalog's, whose Git process has
    the files it reads prefetched already."""
    index = session.index()
    in_tree = set(session.known_datasets())
    # Only datasets' tags are read: every tagged name but the tree's models (a listing of
    # 10,000 dataset and 10,000 model tags parses half of them).
    tagged = index.tagged_names() - in_tree
    others = tagged - session.in_tree(tagged, "model")
    index.preload(in_tree | others)
    # Models share the tag namespace: a released name whose folder is gone from the tree is a
    # dataset if its latest release had a builder (read for all such names in one Git call).
    gone = [r for n in sorted(others) if (r := index.latest(n))]
    builders = session.repo.read_files([(r.commit, layout.builder_file(r.name)) for r in gone])
    names = sorted(in_tree | {r.name for r, b in zip(gone, builders, strict=True) if b})
    configs = _listed_configs(session, index, names)
    summaries = []
    for name in names:
        releases = index.releases(name)
        summaries.append(
            DatasetSummary(
                name=name,
                versions=[str(r.version) for r in releases],
                latest=str(releases[-1].version) if releases else None,
                stages={s: str(r.version) for s, r in sorted(index.stages(name).items())},
                deprecated=index.is_deprecated(name),
                in_tree=name in in_tree,
                built=_local_build(session.repo.work_tree, name),
                yanked=index.yank_reasons(name),
                configs=configs[name],
            )
        )
    return summaries


def _listed_configs(
    session: Session, index: TagIndex, names: Sequence[str]
) -> dict[str, list[str]]:
    """Each dataset's configs for ``list``: from the work tree's ``build_info.json`` when there
    is one, else from its latest release's (those read in one Git call)."""
    root = session.repo.work_tree
    found: dict[str, bytes | None] = {}
    released: list[Release] = []
    for name in names:
        if root is not None and (root / layout.build_info_file(name)).is_file():
            found[name] = (root / layout.build_info_file(name)).read_bytes()
        elif (latest := index.latest(name)) is not None:
            released.append(latest)
        else:
            found[name] = None
    wanted = [(r.commit, layout.build_info_file(r.name)) for r in released]
    found.update(zip([r.name for r in released], session.repo.read_files(wanted), strict=True))
    return {name: list(configs_of(_json_object(found[name]))) for name in names}


def _local_build(root: Path | None, name: str) -> dict[str, Any] | None:
    """The version and example count built in a work tree, from its ``build_info.json`` (for a
    builder with configs: the default's count, and ``configs``: each config's)."""
    if root is None or not (root / layout.prepared_dir(name)).is_dir():
        return None
    try:
        info = json.loads((root / layout.build_info_file(name)).read_text())
        examples = sum(int(s["num_examples"]) for s in info["splits"].values())
        built: dict[str, Any] = {"version": str(info["version"]), "examples": examples}
        configs = configs_of(info)
        if configs:
            built["configs"] = {
                config: sum(int(s["num_examples"]) for s in entry["splits"].values())
                for config, entry in configs.items()
            }
        return built
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class DatasetInfo:
    """What ``registry datasets info`` shows.

    Attributes:
        name: The dataset name.
        version: The version described (``None`` for an unreleased work tree).
        tag: Its Git tag, if released.
        commit: The commit described.
        card: The dataset card (README.md).
        citation: CITATIONS.bib.
        build: The build summary (splits with sizes, features), if built.
        versions: Every released version.
        stages: Stage -> version.
        release_notes: Version -> notes, from the builder's RELEASE_NOTES.
        yanked: Each yanked version (left out of ``versions``) and why.
        purged: Who purged the version described, and when (``None``: its bytes are there).
        reproduced: The last reproduction recorded in the version's lineage note (``date``,
            ``equal``, ``by``, the whole ``record``; ``None``: none recorded).
        statistics: Per split, per feature statistics of the build (``build_info.json``'s
            ``statistics``; see :mod:`registry.build.stats`); ``None`` for a version built
            before builds recorded them, or not built.
        understated_bump: The override its tag records, when it was released with a version
            that understates the change (``--allow-understated-bump``), else ``None``.
        configs: Each config of a builder with ``BUILDER_CONFIGS`` (in their order) and its
            build summary (``splits``, ``features``, ``description``, ``statistics``); empty
            for a builder without configs.
        default_config: The config a load without ``config`` reads (TFDS's default: the first),
            or ``None``.
        config: The config that ``build`` and ``statistics`` describe (the one asked for, else
            the default), or ``None``.
        file_format: The build's shard format: ``"array_record"`` (random access:
            ``load_dataset(..., output="data_source")``) or ``"tfrecord"``; ``None``: not built.
        supported_versions: Older versions the builder can still build (its
            ``SUPPORTED_VERSIONS``, recorded by the build); empty if none.
    """

    name: str
    version: str | None
    tag: str | None
    commit: str | None
    card: str
    citation: str
    build: dict[str, Any] | None
    versions: list[str]
    stages: dict[str, str]
    release_notes: dict[str, str] = field(default_factory=dict)
    yanked: dict[str, str] = field(default_factory=dict)
    purged: str | None = None
    reproduced: dict[str, Any] | None = None
    statistics: dict[str, Any] | None = None
    understated_bump: str | None = None
    configs: dict[str, Any] = field(default_factory=dict)
    default_config: str | None = None
    config: str | None = None
    file_format: str | None = None
    supported_versions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for ``--json``."""
        return asdict(self)


def dataset_info(
    ref: str | Reference,
    *,
    config: str | None = None,
    registry: str | os.PathLike[str] | None = None,
) -> DatasetInfo:
    """Describe a dataset version: card, features, splits and sizes, versions, release notes,
    and its builder configs.

    Reads only Git (no data is fetched). A name with no release, in a clone, describes the
    work tree.

    Args:
        ref: ``name``, ``name:1.2.0``, ``name:1.*`` or ``name@stage``.
        config: For a builder with configs, the one whose splits, features and statistics
            ``build`` describes (default: the default config).
        registry: A registry clone or Git URL; default from the configuration.

    Raises:
        InvalidReferenceError: If ``ref`` is malformed.
        ArtifactNotFoundError: If no such dataset exists (with close names).
        WrongKindError: If the name is a model's (a model is not a dataset).
        VersionNotFoundError: If no release matches (with those that exist).
        ConfigError: If ``config`` is not one of the version's configs (naming them).
    """
    reference = as_reference(ref)
    session = open_session(registry)
    index = session.index()
    unreleased_in_tree = (
        reference.version is None
        and reference.stage is None
        and session.repo.work_tree is not None
        and not index.releases(reference.name)
        and reference.name in session.known_datasets()
    )
    if unreleased_in_tree:
        release = None
        read = _work_tree_reader(session.root)
    else:
        release = session.resolve(reference, "dataset", describe=True)
        index = session.index()
        commit = release.commit

        def read(path: str) -> str | None:
            data = session.repo.read_file(commit, path)
            return None if data is None else data.decode("utf-8", errors="replace")

    name = reference.name
    build_text = read(layout.build_info_file(name))
    build = json.loads(build_text) if build_text else None
    what = release.reference if release else f"{name} (workspace build)"
    default = config_of(build, what, None)
    chosen = config_of(build, what, config)
    configs = configs_of(build)
    if build is not None and chosen is not None:
        # The config asked for, described as a build without configs is.
        own = {k: v for k, v in configs[chosen].items() if k != "name"}
        build = {**build, **own, "config": chosen}
    builder_source = read(layout.builder_file(name)) or ""
    release_notes = builder_metadata(builder_source)[1]
    message = session.repo.tag_message(release.tag) if release else ""
    if release and str(release.version) not in release_notes:
        # Given with --notes (a builder brought in as it is), or inherited: the tag says them.
        notes = tag_notes(message)
        if notes:
            release_notes = {**release_notes, str(release.version): notes}
    return DatasetInfo(
        name=name,
        version=str(release.version) if release else None,
        tag=release.tag if release else None,
        commit=release.commit if release else None,
        card=read(f"{layout.dataset_dir(name)}/README.md") or "",
        citation=read(f"{layout.dataset_dir(name)}/CITATIONS.bib") or "",
        build=build,
        versions=[str(r.version) for r in index.releases(name)],
        stages={s: str(r.version) for s, r in sorted(index.stages(name).items())},
        release_notes=release_notes,
        yanked=index.yank_reasons(name),
        purged=purge_summary(session.repo, release),
        reproduced=last_reproduction(session.repo, release),
        statistics=(build or {}).get("statistics"),
        understated_bump=bump_override(parse_lineage(message)[0]) if release else None,
        configs=configs,
        default_config=default,
        config=chosen,
        file_format=None if build is None else build.get("file_format", "tfrecord"),
        supported_versions=list((build or {}).get("supported_versions") or []),
    )


def tag_notes(message: str) -> str:
    """The release notes a release tag's message holds: between its ``Release NAME X.Y.Z``
    line and its lineage record.

    Example:
        >>> tag_notes('Release a/b 1.0.0\\n\\nAs it is.\\n\\nlineage: {}')
        'As it is.'
    """
    from registry.repo.records import LINEAGE_MARK

    lines = message.splitlines()[1:]
    return "\n".join(line for line in lines if not line.startswith(LINEAGE_MARK)).strip()


def _work_tree_reader(root: Path) -> Callable[[str], str | None]:
    def read(path: str) -> str | None:
        try:
            return (root / path).read_text()
        except FileNotFoundError:
            return None

    return read


def builder_metadata(source: str) -> tuple[Version | None, dict[str, str]]:
    """Read ``VERSION`` and ``RELEASE_NOTES`` from a builder's source, without importing it.

    Importing a builder imports TensorFlow (seconds); describing a version must stay instant, and
    loading a released version never runs builder code. Only literals written in ``class
    Builder`` (or the class that ``Builder = Other`` names) are seen: an inherited or computed
    one is read from the class at release time (:func:`builder_literals`,
    :func:`registry.build.builders.class_metadata`).

    Example:
        >>> builder_metadata("class Builder:\\n    VERSION = tfds.core.Version('1.2.0')\\n")
        (Version(major=1, minor=2, patch=0), {})
    """
    literals = builder_literals(source)
    return literals.get("VERSION"), literals.get("RELEASE_NOTES", {})


def builder_literals(source: str) -> dict[str, Any]:
    """``VERSION`` (a :class:`Version`), ``RELEASE_NOTES`` (version -> notes) and
    ``SUPPORTED_VERSIONS`` (texts) of the builder's source, each present only when the class
    body says it as a literal.

    Example:
        >>> builder_literals("class Data:\\n    RELEASE_NOTES = {'1.0.0': 'First.'}\\n"
        ...                  "Builder = Data\\n")
        {'RELEASE_NOTES': {'1.0.0': 'First.'}}
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    # `Builder = Other` at the top of the module (a builder added under its own name).
    target_name = "Builder"
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Name)
                and any(isinstance(t, ast.Name) and t.id == "Builder" for t in node.targets)):
            target_name = node.value.id
    found: dict[str, Any] = {}
    builder = classes.get(target_name)
    for stmt in builder.body if builder is not None else []:
        targets: list[ast.expr] = []
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        for target in targets:
            if not isinstance(target, ast.Name):
                continue
            if target.id == "VERSION":
                version = _version_literal(value)
                if version is not None:
                    found["VERSION"] = version
            elif target.id == "RELEASE_NOTES":
                literal = _literal(value)
                if isinstance(literal, dict):
                    found["RELEASE_NOTES"] = {str(k): str(v) for k, v in literal.items()}
            elif target.id == "SUPPORTED_VERSIONS" and isinstance(value, ast.List | ast.Tuple):
                versions = [_version_literal(v) for v in value.elts]
                if all(v is not None for v in versions):
                    found["SUPPORTED_VERSIONS"] = [str(v) for v in versions]
    return found


def _version_literal(value: ast.expr) -> Version | None:
    """``tfds.core.Version('1.2.0')`` or ``'1.2.0'``, as a version; ``None``: not a literal."""
    arg = value.args[0] if isinstance(value, ast.Call) and value.args else value
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        try:
            return parse_version(arg.value)
        except RegistryError:
            return None
    return None


def _literal(value: ast.expr) -> Any:
    """The Python literal ``value`` says, or ``None``."""
    try:
        return ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return None


# -- fetching and loading -----------------------------------------------------------------------


def pull_dataset(
    ref: str | Reference,
    *,
    registry: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    jobs: int | None = None,
    verify: bool = False,
    strict: bool = False,
) -> FetchResult:
    """Fetch a released dataset version into the local cache (if not there already).

    Args:
        ref: ``name``, ``name:1.2.0``, ``name:1.*`` or ``name@stage``.
        registry: A registry clone or Git URL; default from the configuration.
        progress: Called with ``(done_bytes, total_bytes)`` while fetching.
        jobs: Parallel downloads (default: as DVC).
        verify: Re-hash every cached file, not only those whose size or time changed.
        strict: Refuse a yanked version (also ``REGISTRY_STRICT=1``); otherwise an exact pin
            of one warns (:class:`~registry.repo.session.YankedVersionWarning`).

    Returns:
        The cached folder (a TFDS prepared folder) and what was transferred: downloaded from the
        remote, or taken from the shared cache (``shared_cache_dir``), which is looked in first.
        The folder is in the shared cache when all of it was found there.

    Raises:
        VersionNotFoundError, ArtifactNotFoundError: If the reference matches nothing.
        WrongKindError: If the name is a model's (a model is not a dataset).
        RemoteError: If the DVC remote is unreachable or lacks the bytes.
        CorruptArtifactError: If fetched bytes do not match the hash recorded in Git.
        YankedVersionError: If the version is yanked and ``strict``.
    """
    reference = as_reference(ref)
    session = open_session(registry)
    release = session.resolve(reference, "dataset", command="pull", strict=strict)
    return _fetch(session, release, progress=progress, jobs=jobs, verify=verify)


def _fetch(
    session: Session,
    release: Release,
    *,
    progress: ProgressCallback | None = None,
    jobs: int | None = None,
    verify: bool = False,
) -> FetchResult:
    from registry.storage.remote import RemoteStore

    dir_hash = released_data_hash(session, release)
    cache = session.content_cache()
    cached = cache.cached(dir_hash, verify=verify)
    if cached is not None:
        return cached
    remote = RemoteStore.open(session.repo, release.commit, session.settings.remote)
    return cache.snapshot(dir_hash, remote, jobs=jobs, progress=progress, verify=verify)


def released_data_hash(session: Session, release: Release) -> str:
    """The DVC hash (``<md5>.dir``) of a released dataset version's prepared folder.

    Raises:
        NotBuiltError: If ``dvc.lock`` at the release's commit does not record it.
    """
    name = release.name
    return locked_out_hash(
        session.repo, release.commit, layout.build_stage(name), layout.prepared_dir(name)
    )


def released_side(session: Session, release: Release) -> Side:
    """A released version as one side of a diff: its bytes fetched through the cache (as a load
    fetches them), its ``build_info.json`` and its builder's declared key at its commit.

    Raises:
        RemoteError: If its bytes are missing from the DVC remote or it cannot be reached.
        NotBuiltError: If ``dvc.lock`` at its commit records no build.
        BuildError: If its builder's ``example_key`` cannot be imported.
    """
    from registry.build.compare import Side, declared_key

    name = release.name
    path = _fetch(session, release).path
    info = session.repo.read_file(release.commit, layout.build_info_file(name))
    source = session.repo.read_file(release.commit, layout.builder_file(name))
    key = None
    if source is not None:
        key = declared_key(source.decode("utf-8", "replace"),
                           posixpath.basename(layout.builder_file(name)))
    return Side(
        f"{name} {release.version}", path, _json_object(info), key, name
    )


def workspace_side(session: Session, name: str) -> Side:
    """This clone's build of dataset ``name`` as one side of a diff (``datasets/NAME/prepared``,
    the work tree's ``build_info.json`` and builder).

    Raises:
        NotBuiltError: If it is not built here.
    """
    from registry.build.compare import Side, declared_key

    root = session.root
    built = _local_build(root, name)
    if built is None:
        raise NotBuiltError(
            f"{name!r} is not built in this clone, so there is no workspace build to compare; "
            f"run 'registry datasets build {name}', or name two versions"
        )
    builder = root / layout.builder_file(name)
    key = declared_key(builder.read_text(), builder.name) if builder.is_file() else None
    info = root / layout.build_info_file(name)
    return Side(
        f"workspace build ({built['version']})",
        root / layout.prepared_dir(name),
        _json_object(info.read_bytes() if info.is_file() else None),
        key,
        name,
    )


def _json_object(data: bytes | None) -> dict[str, Any] | None:
    """A JSON object's bytes as a dict (``None`` if absent or not one)."""
    if data is None:
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class BuildInputs:
    """What a dataset's build ran with, as ``dvc.lock`` records it at a revision.

    Attributes:
        params: Its knobs (``datasets.<name>`` in ``params.yaml``).
        builder: The builder's files (module, card, citations) and their md5s.
        raw: Its raw inputs: ``{"path", "md5", "source"}`` each (``source``: the URL of a
            ``dvc import-url``, a ``warehouse: ...`` line for a warehouse snapshot, whose entry
            also has ``extract``: the query's files, parameters and warehouse; else ``None``);
            empty when the builder generates its data.
        missing: Why a ``raw_path`` the params name has no recorded hash, else ``None``.
    """

    params: dict[str, Any]
    builder: dict[str, Any]
    raw: list[dict[str, Any]]
    missing: str | None = None

    @property
    def generated(self) -> bool:
        """Whether the builder generates its data or reads it from a package (no ``raw_path``)."""
        return not self.raw and not self.params.get("raw_path")


def build_inputs(session: Session, commit: str | None, name: str) -> BuildInputs | None:
    """The params, builder files and raw inputs of dataset ``name``'s build at ``commit``.

    The one place that tells a build's raw inputs from its builder's files: a dependency is raw
    if it is the ``raw_path`` the params name, or lies outside the dataset folder.

    Args:
        session: The registry.
        commit: A release's commit, or ``None`` for the work tree.
        name: The dataset.

    Returns:
        The inputs, or ``None`` if ``dvc.lock`` records no build of ``name`` there.

    Raises:
        ConfigError: If ``dvc.lock`` (or a raw input's ``.dvc`` file) cannot be parsed.
    """
    stage = layout.build_stage(name)
    entry = locked_stage(session.repo, commit, stage)
    if entry is None:
        return None
    params = ((entry.get("params") or {}).get("params.yaml") or {}).get(f"datasets.{name}")
    params = dict(params) if isinstance(params, dict) else {}
    folder, raw_path = layout.dataset_dir(name), params.get("raw_path")
    raw_dep = norm_path(posixpath.join(folder, str(raw_path))) if raw_path else None
    builder: dict[str, Any] = {}
    raw: dict[str, dict[str, Any]] = {}
    extracted = _extracted_from(session, commit, name)
    for dep in entry.get("deps") or []:
        path, md5 = norm_path(str(dep.get("path", ""))), dep.get("md5")
        if path == raw_dep or path.rsplit("/", 1)[0] != folder:
            if extracted is not None and path == layout.snapshot_dir(name):
                raw[path] = {"path": path, "md5": md5, "source": extracted.pop("source"),
                             "extract": extracted}
                continue
            source = imported_from(session.repo, commit, path)
            raw[path] = {"path": path, "md5": md5, "source": source}
        else:
            builder[path] = md5  # a generated dataset's stage lists its module twice
    missing = None
    if raw_dep and raw_dep not in raw:
        missing = (
            f"raw_path {raw_path!r} is not a dependency of {stage} in dvc.lock, so its hash is "
            f"not recorded ('registry datasets raw {name} PATH' makes it one)"
        )
    return BuildInputs(params, builder, list(raw.values()), missing)


def _extracted_from(session: Session, commit: str | None, name: str) -> dict[str, Any] | None:
    """How dataset ``name``'s warehouse snapshot was made, as ``dvc.lock`` records its
    ``extract@NAME`` stage at ``commit``: the query's files with their md5s, its parameters and
    the warehouse settings, and a ``source`` line; ``None`` if there is no such stage."""
    entry = locked_stage(session.repo, commit, layout.extract_stage(name))
    if entry is None:
        return None
    files = {norm_path(str(d.get("path", ""))): d.get("md5") for d in entry.get("deps") or []}
    params = (entry.get("params") or {}).get("params.yaml") or {}
    section = params.get(f"datasets.{name}.warehouse") or {}
    warehouse = params.get("warehouse") or {}
    what = (f"query {section['query']}" if section.get("query") else
            f"table {section.get('table')}")
    where = (f"BigQuery project {warehouse['project']}" if warehouse.get("project") else
             f"the local BigQuery emulator with {section.get('sample')}")
    return {
        "source": f"the warehouse: {what} in {where} ({layout.extract_stage(name)})",
        "stage": layout.extract_stage(name),
        "files": files,
        "params": section.get("params") or {},
        "warehouse": {k: v for k, v in warehouse.items() if v},
    }


Source = Literal["release", "workspace"]


@dataclass(frozen=True)
class DatasetVersion:
    """Exactly which data a load reads: what training records as its lineage.

    Attributes:
        name: The dataset name.
        version: Its version (the release's, or the workspace build's ``build_info.json``).
        md5: The DVC hash of the prepared folder (``<md5>.dir``).
        source: ``release`` (a tagged version from the cache) or ``workspace`` (this clone's
            own build, as a ``dvc.yaml`` stage that depends on it reads it).
        tag: The release tag, for a release.
        path: The TFDS prepared folder to read (a config's own folder for a builder with
            configs).
        config: The builder config read (``None``: the builder has no configs).
    """

    name: str
    version: str
    md5: str
    source: Source
    tag: str | None
    path: Path
    config: str | None = None

    @property
    def reference(self) -> str:
        """``name:X.Y.Z``, as a model card records its training data."""
        return f"{self.name}:{self.version}"


def locate_dataset(
    ref: str | Reference,
    *,
    config: str | None = None,
    source: Source = "release",
    registry: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
) -> DatasetVersion:
    """Find (and for a release, fetch) the data that ``ref`` names, and say exactly what it is.

    Args:
        ref: A dataset reference. With ``source="workspace"`` a plain name, or ``name:X.Y.Z``
            that must equal the workspace build's version.
        config: For a builder with ``BUILDER_CONFIGS``, the config to read (default: the
            first, TFDS's default); the path is that config's folder.
        source: ``release`` for a released version through the cache; ``workspace`` for the
            clone's own build in ``datasets/<name>/prepared`` (what a pipeline stage that
            depends on that folder reads).
        registry: A registry clone or Git URL; default from the configuration.
        progress: Called with ``(done_bytes, total_bytes)`` while fetching a release.

    Raises:
        NotBuiltError: If the workspace has no build of it, or no dvc.lock entry.
        VersionNotFoundError: If the workspace build is another version than asked for.
        ConfigError: For an unknown ``source``, an unknown ``config`` (naming the known ones),
            or a ``config`` for a builder without configs.
    """
    reference = as_reference(ref)
    session = open_session(registry)
    if source == "release":
        release = session.resolve(reference, "dataset", command="pull")
        chosen = config_of(_released_build_info(session, release), release.reference, config)
        fetched = _fetch(session, release, progress=progress)
        name = release.name
        return DatasetVersion(
            name,
            str(release.version),
            released_data_hash(session, release),
            "release",
            release.tag,
            fetched.path if chosen is None else fetched.path / chosen,
            chosen,
        )
    if source != "workspace":
        raise ConfigError(f"source must be 'release' or 'workspace', not {source!r}")
    root = session.root
    name = _check_dataset(session, reference.name)
    built = _local_build(root, name)
    if built is None:
        raise NotBuiltError(
            f"{name!r} is not built in this clone; run 'registry datasets build {name}'"
        )
    version = str(built["version"])
    if reference.stage is not None or (
        reference.version is not None and not reference.version.matches(parse_version(version))
    ):
        raise VersionNotFoundError(
            name, f"{str(reference)[len(name):]} (workspace)", [version], kind="dataset"
        )
    info = root / layout.build_info_file(name)
    chosen = config_of(_json_object(info.read_bytes()), f"{name} (workspace build)", config)
    md5 = locked_out_hash(session.repo, None, layout.build_stage(name), layout.prepared_dir(name))
    path = root / layout.prepared_dir(name)
    return DatasetVersion(
        name, version, md5, "workspace", None, path if chosen is None else path / chosen, chosen
    )


def _released_build_info(session: Session, release: Release) -> dict[str, Any] | None:
    """A release's ``build_info.json`` at its commit (one Git read)."""
    data = session.repo.read_file(release.commit, layout.build_info_file(release.name))
    return _json_object(data)


def configs_of(build: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Each config of a build by its ``build_info.json`` (``configs``), in ``BUILDER_CONFIGS``'
    order, with its summary; empty for a builder without configs.

    Example:
        >>> list(configs_of({"config": "a", "configs": [{"name": "a"}, {"name": "b"}]}))
        ['a', 'b']
    """
    entries = (build or {}).get("configs") or []
    return {
        str(entry["name"]): entry
        for entry in entries if isinstance(entry, dict) and entry.get("name")
    }


def config_of(build: dict[str, Any] | None, what: str, config: str | None) -> str | None:
    """The builder config a load of a build reads, by its ``build_info.json``.

    The one rule for picking a config: a builder with ``BUILDER_CONFIGS`` reads ``config``, or
    without one its default (the first, as TFDS's default, recorded as ``config``); a builder
    without configs reads its prepared folder itself (``None``).

    Args:
        build: The build's ``build_info.json``.
        what: The build, for messages (``name:1.0.0``).
        config: The config asked for, or ``None``.

    Raises:
        ConfigError: If ``config`` is not one of the build's (naming those it has), or the
            builder has no configs.

    Example:
        >>> sizes = [{"name": "small"}, {"name": "large"}]
        >>> config_of({"config": "small", "configs": sizes}, "a/b", None)
        'small'
    """
    configs = list(configs_of(build))
    if build is None and config is not None:
        raise ConfigError(
            f"{what} records no build (no build_info.json), so its configs are not known; "
            "build it first ('registry datasets build NAME')"
        )
    if not configs:
        if config is not None:
            raise ConfigError(
                f"{what} has no builder configs, so config {config!r} names nothing; "
                "load it without a config"
            )
        return None
    if config is None:
        return str((build or {}).get("config") or configs[0])
    if config not in configs:
        raise ConfigError(
            f"{what} has no config {config!r}; its configs: {', '.join(configs)} "
            f"(the default: {(build or {}).get('config') or configs[0]})"
        )
    return config


def load_dataset(
    ref: str | Reference,
    split: str | Sequence[str] | None = None,
    *,
    config: str | None = None,
    output: Output = "tf",
    source: Source = "release",
    registry: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    strict: bool = False,
    **as_dataset_kwargs: Any,
) -> Any:
    """Load a released dataset version, as ``tfds.load`` loads a public one.

    The bytes are fetched once into the local content-addressed cache and verified; later loads
    of the same version read the cache. Each load re-hashes the version's small metadata files
    (``dataset_info.json``, ``features.json``, label files) and repairs a corrupt one first, so
    bit rot there never loads wrong class names; shards are checked by their stats only (TFDS
    checks each TFRecord's CRC32C as it reads it, ArrayRecord checks each chunk's hash).

    A corrupt shard (its bytes changed with size and time kept) surfaces when it is read:

    - ``output="pandas"`` reads everything here: the version is re-verified, repaired, and read
      again once; what cannot be repaired raises :class:`CorruptArtifactError`.
    - ``output="numpy"``: iterating raises :class:`CorruptArtifactError` after the version was
      re-verified and repaired (iterate a new load), or saying it could not be.
    - ``output="tf"``: reading happens inside ``tf.data``, where no registry code runs, so a
      ``tf.errors.DataLossError`` (``corrupted record``; for ArrayRecord shards an
      ``UnknownError`` saying ``corrupted ArrayRecord shard``) reaches the loop. It means a cached
      shard is damaged: run ``registry datasets pull REF --verify`` (or ``registry cache
      verify``), which re-hashes and repairs it, and load again.

    Args:
        ref: ``name`` (latest release), ``name:1.2.0``, ``name:1.*`` (latest matching) or
            ``name@stage``.
        split: A TFDS split expression (``"train"``, ``"train[:10%]"``, ``"train+test"``, a list
            of them), or ``None`` for a dict of every split.
        config: For a builder with ``BUILDER_CONFIGS``, the config to load (``"small"``);
            default: the first of them (TFDS's default, which ``registry datasets info``
            names). Every config of a version is released together, at one ``VERSION``.
        output: ``"tf"`` for ``tf.data.Dataset``, ``"numpy"`` for an iterable of NumPy
            examples, ``"pandas"`` for a ``pandas.DataFrame``, ``"data_source"`` for TFDS's
            random-access data source (``len(source)``, ``source[i]``: a dict of NumPy
            values), which PyTorch's ``DataLoader`` and Grain index directly; it needs a build
            with ``file_format: array_record`` in ``params.yaml`` (what new datasets get),
            which loads as every other output too.
        source: ``"release"`` (default) or ``"workspace"``: this clone's own build, which is
            what a ``dvc.yaml`` training stage reads (see :func:`locate_dataset`).
        registry: A registry clone or Git URL; default from the configuration.
        progress: Called with ``(done_bytes, total_bytes)`` while fetching.
        strict: Refuse a yanked version (also ``REGISTRY_STRICT=1``); otherwise an exact pin
            of one loads with a :class:`~registry.repo.session.YankedVersionWarning`.
        **as_dataset_kwargs: Passed to ``tfds.core.DatasetBuilder.as_dataset``
            (``as_supervised``, ``shuffle_files``, ``batch_size``, ...), or for
            ``"data_source"`` to ``as_data_source`` (``decoders``, ``deserialize_method``).

    Returns:
        What ``output`` asks for; a dict keyed by split when ``split`` is ``None``.

    Raises:
        InvalidReferenceError, ArtifactNotFoundError, VersionNotFoundError: For bad references.
        RemoteError: If the bytes cannot be fetched.
        CorruptArtifactError: If cached files are corrupt and cannot be repaired (or, for
            ``numpy``, were repaired while iterating: load again).
        ConfigError: If ``output`` is not one of the four, is ``"data_source"`` of a TFRecord
            build (no random access), or ``config`` is not one of the version's configs
            (naming them).
        YankedVersionError: If the version is yanked and ``strict``.

    Example:
        >>> ds = load_dataset("products/product_a/ad_clicks:1.*", split="train[:10%]")
        >>> small = load_dataset("demo/sizes:1.0.0", "train", config="small")  # doctest: +SKIP
        >>> source = load_dataset("image_classification/digits", "train", output="data_source")
        >>> len(source), source[0]["label"]  # doctest: +SKIP
        (1455, 4)
    """
    if output not in _OUTPUTS:
        raise ConfigError(
            f"output must be {', '.join(repr(o) for o in _OUTPUTS[:-1])} or "
            f"{_OUTPUTS[-1]!r}, not {output!r}"
        )
    if source != "release":
        path = locate_dataset(ref, config=config, source=source, registry=registry).path
        return load_prepared(path, split, output=output, **as_dataset_kwargs)
    session = open_session(registry)
    release = session.resolve(as_reference(ref), "dataset", command="pull", strict=strict)
    chosen = config_of(_released_build_info(session, release), release.reference, config)
    path = _fetch(session, release, progress=progress).path
    if chosen is not None:
        path = path / chosen
    try:
        data = load_prepared(path, split, output=output, **as_dataset_kwargs)
    except Exception as e:
        if not is_corrupt_read(e):
            raise
        # A shard failed its CRC while being read here (pandas): repair, then read once more.
        repaired = _repair_after_read_error(session, release, e)
        if isinstance(repaired, CorruptArtifactError):
            raise repaired from e
        if chosen is not None:
            repaired = repaired / chosen
        return load_prepared(repaired, split, output=output, **as_dataset_kwargs)
    if output == "numpy":
        return _checked_numpy(data, lambda error: _repair_after_read_error(session, release, error))
    return data


def _repair_after_read_error(
    session: Session, release: Release, error: BaseException
) -> Path | CorruptArtifactError:
    """Re-verify a release whose cached shard failed to read: its repaired folder, or the error
    to raise (nothing was repaired, or repairing failed)."""
    ref = release.reference
    what = f"reading {ref} from the cache failed ({corrupt_read_text(error)})"
    try:
        checked = _fetch(session, release, verify=True)
    except RegistryError as e:
        return CorruptArtifactError(
            f"{what} and repairing it failed: {first_line(e)}; once that is fixed, run "
            f"'registry datasets pull {ref} --verify' (or 'registry cache verify')"
        )
    if checked.fetched_files + checked.shared_files == 0:
        return CorruptArtifactError(
            f"{what}, yet every cached file matches the release's hashes: the released data "
            "itself is damaged; tell its owner, who can rebuild it and release a new version"
        )
    return checked.path


class _CheckedIterable:
    """NumPy examples that turn a corrupt shard met while iterating into one clear error."""

    def __init__(
        self, inner: Any, repair: Callable[[BaseException], Path | CorruptArtifactError]
    ) -> None:
        self._inner = inner
        self._repair = repair

    def __iter__(self) -> Any:
        try:
            yield from self._inner
        except Exception as e:
            if not is_corrupt_read(e):
                raise
            outcome = self._repair(e)
            if isinstance(outcome, CorruptArtifactError):
                raise outcome from e
            raise CorruptArtifactError(
                f"a corrupt cached shard stopped this iteration ({corrupt_read_text(e)}); it was "
                "repaired from the remote: load the dataset again"
            ) from e

    def __len__(self) -> int:
        return len(self._inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _checked_numpy(
    data: Any, repair: Callable[[BaseException], Path | CorruptArtifactError]
) -> Any:
    """``data`` with each lazy NumPy iterable in it wrapped (arrays, read eagerly, as they are)."""
    import numpy as np

    if isinstance(data, dict):
        return {k: _checked_numpy(v, repair) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return type(data)(_checked_numpy(v, repair) for v in data)
    if isinstance(data, np.ndarray | np.generic) or not hasattr(data, "__iter__"):
        return data
    return _CheckedIterable(data, repair)


def load_prepared(
    path: str | os.PathLike[str],
    split: str | Sequence[str] | None = None,
    *,
    output: Output = "tf",
    **as_dataset_kwargs: Any,
) -> Any:
    """Load a TFDS prepared folder (from the cache or a local build) as ``load_dataset`` does."""
    import tensorflow_datasets as tfds

    builder = tfds.builder_from_directory(str(path))
    _check_file_format(builder.info, output)
    try:
        if output == "data_source":
            source = builder.as_data_source(split=split, **as_dataset_kwargs)
            if isinstance(source, dict):
                return {k: with_single_reads(v) for k, v in source.items()}
            if isinstance(source, list):
                return [with_single_reads(v) for v in source]
            return with_single_reads(source)
        data = builder.as_dataset(split=split, **as_dataset_kwargs)
    except (ValueError, KeyError, AssertionError) as e:
        splits = ", ".join(sorted(builder.info.splits))
        raise ConfigError(f"cannot read split {split!r}: {e} (splits: {splits})") from e
    if output == "tf":
        return data
    if output == "numpy":
        return tfds.as_numpy(data)
    if isinstance(data, dict):
        return {k: tfds.as_dataframe(v, builder.info) for k, v in data.items()}
    if isinstance(data, list):
        return [tfds.as_dataframe(v, builder.info) for v in data]
    return tfds.as_dataframe(data, builder.info)


def _check_file_format(info: Any, output: str) -> None:
    """Refuse ``output="data_source"`` of a build whose shards give no random access (TFRecord),
    saying what to change; let ``tf.data`` read ArrayRecord shards (TFDS reads those only by
    index: :func:`registry.storage.array_records.enable_tf_data`)."""
    shards = info.file_format.value if info.file_format is not None else "tfrecord"
    if output == "data_source" and shards != "array_record":
        raise ConfigError(
            f"output='data_source' needs random access, but this build's shards are {shards}: "
            "set `file_format: array_record` in the dataset's entry of params.yaml "
            "(datasets.NAME), rebuild ('registry datasets build NAME') and release it"
        )
    if output != "data_source" and shards == "array_record":
        enable_tf_data()


# -- producing ----------------------------------------------------------------------------------


def _check_dataset(session: Session, name: str, command: str = "info") -> str:
    """``name``, a dataset in the tree; a model's name is refused as one."""
    name = parse_name(name)
    known = session.known_datasets()
    if name not in known:
        session.check_kind(name, "dataset", command=command)
        raise ArtifactNotFoundError(name, known, kind="dataset")
    return name


def prepare_dataset(name: str, *, registry: str | os.PathLike[str] | None = None) -> Path:
    """Run dataset ``name``'s builder into its prepared folder (what its DVC stage runs).

    Prefer :func:`build_dataset`, which runs this through DVC so the result is tracked.

    Raises:
        ArtifactNotFoundError: If there is no such dataset folder.
        ConfigError: If the Beam settings in params.yaml are invalid.
        BuildError: If the builder or its pipeline fails.
    """
    from registry.build.prepare import prepare_dataset as prepare

    session = open_session(registry)
    name = _check_dataset(session, name)
    return prepare(session.root, name)


@dataclass(frozen=True)
class ExtractOutcome:
    """What :func:`extract_dataset` did.

    Attributes:
        name: The dataset.
        ran: Whether the query ran (``False``: the recorded snapshot was up to date, or was
            fetched from the DVC remote).
        extracted: What the query wrote (``None`` when it did not run).
        note: What happened, in words.
    """

    name: str
    ran: bool
    extracted: Extracted | None
    note: str


def extract_plan(name: str, *, registry: str | os.PathLike[str] | None = None) -> ExtractPlan:
    """Dataset ``name``'s query with its parameters filled in, where it runs, and BigQuery's
    dry-run estimate of the bytes it scans (``registry datasets extract NAME --dry-run``).

    Raises:
        ArtifactNotFoundError: If there is no such dataset.
        ConfigError: If it reads no warehouse, or its section or a parameter is wrong.
        TableNotFoundError, BadQueryError, WarehousePermissionError, WarehouseUnreachableError,
            CredentialsError: As BigQuery answers.
    """
    from registry.build.extract import plan_extract

    session = open_session(registry)
    return plan_extract(session.root, _check_dataset(session, name, "extract"))


def extract_dataset(
    name: str,
    *,
    refresh: bool = False,
    yes: bool = False,
    registry: str | os.PathLike[str] | None = None,
) -> ExtractOutcome:
    """Snapshot dataset ``name``'s warehouse query into ``datasets/NAME/snapshot`` and record
    it in ``dvc.lock`` (the ``extract@NAME`` stage).

    The query runs when its stage is out of date (``query.sql``, its parameters or the
    warehouse changed, or it never ran) or with ``refresh`` (the tables changed: the point of a
    refresh). Otherwise the recorded snapshot stays, fetched from the DVC remote if it is not
    in the work tree. Run by ``dvc repro`` as the stage's command, it always queries, and DVC
    records the result.

    Args:
        name: A dataset with a ``warehouse`` section in ``params.yaml``.
        refresh: Query again even if the recorded snapshot is up to date.
        yes: Run a query whose dry run is over ``registry.max_query_gb``.
        registry: A registry clone; default from the configuration.

    Returns:
        What happened.

    Raises:
        ScanLimitError: If the query is over the limit and ``yes`` is false (nothing ran).
        ArtifactNotFoundError, ConfigError, TableNotFoundError, BadQueryError,
            WarehousePermissionError, WarehouseUnreachableError, CredentialsError: As
            :func:`extract_plan`.
        DvcError: If recording the snapshot in dvc.lock fails.

    Example:
        >>> extract_dataset("products/product_b/search_sessions", refresh=True).extracted.info
        ... # doctest: +SKIP
        SnapshotInfo(rows=1203, files=('part-00000-of-00001.parquet',), bytes=48211)
    """
    from registry.build.dvcfiles import pipeline_extracts
    from registry.build.extract import extract, in_extract_stage

    session = open_session(registry)
    name = _check_dataset(session, name, "extract")
    root = session.root
    if in_extract_stage(name):
        return ExtractOutcome(name, True, extract(root, name, yes=yes), "queried")
    stage = layout.extract_stage(name)
    if name not in pipeline_extracts(root):
        raise ConfigError(
            f"dvc.yaml has no stage {stage}: add {name} to the foreach of its extract stage "
            "(query: query.sql, sample: warehouse_sample.json), so that the snapshot is "
            "tracked and build@NAME depends on it"
        )
    if not refresh:
        state = _stage_state(root, stage)
        if state == "up to date":
            return ExtractOutcome(name, False, None, "the recorded snapshot is up to date")
        if state == "not here" and _fetch_outputs(root, stage):
            return ExtractOutcome(name, False, None, "the recorded snapshot was fetched from "
                                  "the DVC remote")
    extracted = extract(root, name, yes=yes)
    _dvc_commit(root, stage)
    return ExtractOutcome(name, True, extracted, "queried")


def _stage_state(root: Path, stage: str) -> str:
    """``up to date``, ``not here`` (recorded, but its outputs are missing) or ``changed``."""
    from dvc.repo import Repo

    from registry.cloud.credentials import metadata_probe_off

    with metadata_probe_off(), Repo(str(root)) as repo:
        status = repo.status(targets=[stage])
    changes = status.get(stage) or []
    if not changes:
        return "up to date"
    outs_only = all(
        isinstance(change, dict) and set(change) == {"changed outs"}
        and set(change["changed outs"].values()) <= {"deleted", "not in cache"}
        for change in changes
    )
    return "not here" if outs_only else "changed"


def _fetch_outputs(root: Path, stage: str) -> bool:
    """``dvc pull STAGE``: whether the recorded outputs could be put back."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    from registry.cloud.credentials import metadata_probe_off

    try:
        with metadata_probe_off(), Repo(str(root)) as repo:
            repo.pull(targets=[stage])
    except DvcException:
        return False
    return True


def _dvc_commit(root: Path, stage: str) -> None:
    """``dvc commit -f STAGE``: record the stage's current outputs (and inputs) in dvc.lock."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            repo.commit(stage, force=True)
    except DvcException as e:
        raise DvcError(
            f"'dvc commit -f {stage}' failed: {first_line(e)}; the snapshot was written, run "
            "that command once fixed"
        ) from e


def pipeline_options(
    names: str | Sequence[str] = (), *, registry: str | os.PathLike[str] | None = None
) -> dict[str, list[str]]:
    """The Beam pipeline options each dataset would be built with; builds nothing.

    What ``registry datasets prepare NAME --dry-run`` and ``registry datasets build --dry-run``
    print. On Dataflow, each dataset's worker package is generated (see
    :mod:`registry.cloud.dataflow`); nothing is submitted or contacted and no credentials are read.

    Args:
        names: A dataset, or datasets; empty for every dataset in the pipeline (``dvc.yaml``).
        registry: A registry clone; default from the configuration.

    Returns:
        Dataset name -> its flags (see :func:`registry.build.beam.pipeline_options`).

    Raises:
        ArtifactNotFoundError: For an unknown dataset.
        ConfigError: If the Beam settings in params.yaml are invalid (naming the key), or a
            dataset has no stage in dvc.yaml.

    Example:
        >>> pipeline_options("image_classification/digits")  # doctest: +SKIP
        {'image_classification/digits': ['--runner=DirectRunner', '--direct_num_workers=2',
         '--direct_running_mode=multi_processing']}
    """
    from registry.build.beam import pipeline_options as options
    from registry.config import read_params

    session = open_session(registry)
    root = session.root
    if isinstance(names, str):
        wanted = [_check_dataset(session, names)]
    else:
        wanted = _pipeline_names(session, names)
    beam = read_params(root).get("beam") or {}
    return {name: options(root, name, beam) for name in wanted}


def _pipeline_names(session: Session, names: Sequence[str]) -> list[str]:
    """The datasets ``names`` (checked to have a build stage), or every one of the pipeline."""
    from registry.build.dvcfiles import pipeline_datasets

    wanted = [_check_dataset(session, n) for n in names]
    in_pipeline = pipeline_datasets(session.root)
    for name in wanted:
        if name not in in_pipeline:
            raise ConfigError(
                f"{name!r} has no stage in dvc.yaml; add it with "
                f"registry.build.dvcfiles.add_dataset or recreate it with 'registry datasets new'"
            )
    return wanted or in_pipeline


def build_dataset(
    names: Sequence[str] = (),
    *,
    registry: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> list[str]:
    """Build datasets through their ``dvc.yaml`` stages (``dvc repro build@<name>``).

    Stages whose builder, card and params are unchanged are skipped, as DVC does.

    Args:
        names: Datasets to build; empty for every dataset in the pipeline.
        registry: A registry clone; default from the configuration.
        force: Rebuild even if up to date.

    Returns:
        The names of the datasets whose stages ran.

    Raises:
        ArtifactNotFoundError: For an unknown dataset.
        BuildError: If a build fails (with DVC's message).
    """
    from registry.errors import BuildError

    session = open_session(registry)
    root = session.root
    targets = [layout.build_stage(n) for n in _pipeline_names(session, names)]
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            stages = repo.reproduce(targets=targets, force=force)
    except DvcException as e:
        cause = e.__cause__ or e
        raise BuildError(
            f"dvc repro failed: {cause}; see the builder output above, fix it and run "
            "'registry datasets build' again"
        ) from e
    built = []
    for stage in stages:
        stage_name = getattr(stage, "name", "") or ""
        if stage_name.startswith(f"{layout.BUILD_STAGE}@"):
            built.append(stage_name.split("@", 1)[1])
    return built


def release_dataset(
    name: str,
    *,
    registry: str | os.PathLike[str] | None = None,
    push: bool = True,
    remote: str | None = None,
    allow_unshared_remote: bool = False,
    allow_understated_bump: bool = False,
    reason: str | None = None,
    notes: str | None = None,
) -> Release:
    """Release the built version of dataset ``name``: push its bytes, then tag it.

    Refuses (nothing pushed, nothing tagged) unless: the work tree is committed, the built data
    is up to date with its builder and params (``dvc status`` of its stage is clean) and was
    built at the builder's ``VERSION``, ``VERSION`` is greater than every release so far,
    ``RELEASE_NOTES`` has an entry for it (or ``notes`` are given), and ``VERSION`` does not
    understate how the data
    changed since the previous release (the highest one not yanked), by the diff of the two
    builds (:mod:`registry.semver`: an example changed or removed, or a feature removed or
    changed → MAJOR; only additions → MINOR; the same examples → PATCH). Then pushes the bytes
    to the DVC remote, creates the annotated tag ``<name>@v<VERSION>``, and pushes the tag
    where a Git remote is configured. The tag is made only after the bytes are in the DVC
    remote; if pushing the tag fails, the local tag is removed again so that a second run
    completes the release (see
    :func:`registry.release.release`, which every artifact kind's release goes through).

    Args:
        name: The dataset name.
        registry: A registry clone; default from the configuration.
        push: Push the tag to the Git remote (the bytes are always pushed).
        remote: The DVC remote to push the bytes to; default: the one the committed
            ``.dvc/config`` makes the default (the one loads by Git URL read).
        allow_unshared_remote: Allow ``remote`` to be another (a personal or local-only one).
        allow_understated_bump: Release a version that understates the change anyway; the
            override, ``reason`` and who made it are recorded in the tag's lineage record.
        reason: Why (required with ``allow_understated_bump``).
        notes: The release notes, for a builder whose ``RELEASE_NOTES`` has no entry for its
            ``VERSION`` (one brought in as it is: ``registry datasets add --from``); recorded in
            the tag message, and they win over the builder's entry.

    Returns:
        The new release.

    Raises:
        DirtyWorkTreeError: If the work tree has uncommitted changes.
        UnderstatedBumpError: If ``VERSION`` is below the smallest version that says the change
            (naming what changed and that version), and no override is given.
        ReasonRequiredError: If ``allow_understated_bump`` is given without a ``reason``.
        VersionUnspecifiedError: If the builder has no ``VERSION``.
        VersionExistsError, VersionNotAboveLatestError, VersionOnCommitError: If ``VERSION`` was
            released, is not above the latest release, or a version was released from HEAD.
        MissingReleaseNotesError: If ``RELEASE_NOTES`` has no entry for ``VERSION`` and no
            ``notes`` are given.
        StaleDataError: If the built data is not what the builder and params make now.
        NotBuiltError: If the dataset was never built.
        UnsharedRemoteError: If the DVC remote is a personal override of the committed one
            (``.dvc/config.local``, ``REGISTRY_REMOTE``) and not allowed.
        TagRaceError: If another clone pushed the same tag first.
        WrongKindError: If the name is a model's (a model is not a dataset).
        RemoteError: If the DVC or Git remote cannot be reached.
    """
    from registry.release import release

    session = open_session(registry)
    name = _check_dataset(session, name, "release")
    override = " ".join((reason or "").split()) or None
    if allow_understated_bump and override is None:
        raise ReasonRequiredError("dataset", name, override=True)
    given = (notes or "").strip() or None
    return release(
        session,
        _DatasetRelease(session, name, override if allow_understated_bump else None, given),
        push=push,
        remote=remote,
        allow_unshared_remote=allow_unshared_remote,
    )


@dataclass(frozen=True)
class _DatasetRelease:
    """A dataset as :func:`registry.release.release` sees it: its builder says the version."""

    session: Session
    name: str
    override: str | None = None
    # Release notes given with the release (--notes), for a builder without an entry.
    notes: str | None = None
    # What the bump check found (``bump_check`` in the lineage record), set by ``check``.
    checked: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> Kind:
        """Datasets, for the commands that messages name."""
        return "dataset"

    @property
    def what(self) -> str:
        """The bytes, for messages."""
        return f"the data of {self.name!r}"

    @property
    def targets(self) -> list[str]:
        """The build stage, whose output DVC pushes, and its raw inputs (DVC-tracked files,
        imports, a warehouse snapshot), so that the version rebuilds from its tag (``registry
        datasets rebuild``) without the source."""
        inputs = build_inputs(self.session, None, self.name)
        # By their .dvc files: a raw path given as such is taken for the stage's dependency,
        # and DVC pushes nothing of it; a warehouse snapshot by its extract stage, whose output
        # it is. Raw files kept in Git (no .dvc file) travel with the tag.
        root = self.session.root
        raw = []
        for entry in inputs.raw if inputs is not None else []:
            if entry.get("extract"):
                raw.append(entry["extract"]["stage"])
            elif (root / f"{entry['path']}.dvc").is_file():
                raw.append(f"{entry['path']}.dvc")
        return [layout.build_stage(self.name), *raw]

    @functools.cached_property
    def _builder(self) -> tuple[Version | None, dict[str, str]]:
        """The builder's ``VERSION`` and ``RELEASE_NOTES`` (read once: it is committed): the
        literals of its source, else (inherited or computed) from the class itself, imported
        here, in the work tree at release time."""
        root = self.session.root
        literals = builder_literals((root / layout.builder_file(self.name)).read_text())
        version, notes = literals.get("VERSION"), literals.get("RELEASE_NOTES")
        if version is None or notes is None:
            from registry.build.builders import class_metadata

            metadata = class_metadata(root, self.name)
            version = version or metadata.version
            notes = notes if notes is not None else metadata.release_notes
        return version, dict(notes or {})

    def version(self, index: TagIndex) -> Version:
        """The builder's ``VERSION``."""
        version = self._builder[0]
        if version is None:
            raise VersionUnspecifiedError(
                "dataset",
                self.name,
                f"the class Builder of {layout.builder_file(self.name)} has no VERSION, neither "
                "its own nor inherited",
            )
        return version

    def _notes(self, version: Version) -> str | None:
        """The release notes of ``version``: ``--notes``, else the builder's entry."""
        return self.notes if self.notes is not None else self._builder[1].get(str(version))

    def check(self, index: TagIndex, version: Version) -> None:
        """Release notes for ``version``; data built from the committed builder, at it; a
        version that does not understate the change since the previous release."""
        if self._notes(version) is None:
            raise MissingReleaseNotesError(self.name, version, layout.builder_file(self.name))
        _check_built(self.session.root, self.name, version)
        self.checked.update(_check_bump(self.session, index, self.name, version, self.override))

    def tag_message(self, version: Version) -> str:
        """``Release NAME X.Y.Z``, the first line of its release notes (all of notes given with
        ``--notes``, which the builder does not hold), and the lineage record
        (:mod:`registry.repo.records`): builder commit, params, builder files, data, raw inputs."""
        note = (self._notes(version) or "").strip()
        subject = note if self.notes is not None else (note.splitlines()[0] if note else "")
        repo, name = self.session.repo, self.name
        inputs = build_inputs(self.session, None, name)  # checked current by ``check``
        record: dict[str, Any] = {
            "artifact": name,
            "kind": "dataset",
            "version": str(version),
            "commit": repo.resolve_commit("HEAD"),
            "params": inputs.params if inputs else {},
            "builder": inputs.builder if inputs else {},
            "data": {
                "path": layout.prepared_dir(name),
                "md5": locked_out_hash(repo, None, layout.build_stage(name),
                                       layout.prepared_dir(name)),
            },
            # "generated": the builder makes its data or reads it from a package.
            "raw": "generated" if inputs is None or inputs.generated else inputs.raw,
        }
        info_file = self.session.root / layout.build_info_file(name)
        configs = configs_of(_json_object(info_file.read_bytes() if info_file.is_file() else None))
        if configs:
            # One tag for every config: which ones it holds (each in prepared/<config>).
            record["data"]["configs"] = list(configs)
        if inputs is not None and inputs.missing:
            record["raw_missing"] = inputs.missing
        if self.checked:
            record["bump_check"] = dict(self.checked)
        head = f"Release {name} {version}\n\n{subject}".strip()
        return f"{head}\n\n{lineage_line(record)}"


def _check_bump(
    session: Session, index: TagIndex, name: str, version: Version, override: str | None
) -> dict[str, Any]:
    """Refuse a ``version`` that understates the change since the previous release (the
    highest not yanked), by the diff of the workspace build with it.

    When the previous release's bytes cannot be fetched (the DVC remote moved since, or they
    are gone), the release is not blocked by an old version: it warns, and the record says the
    check was skipped and why.

    Returns:
        What the lineage record keeps (``bump_check``): the previous version, the bump the
        data needs, the smallest acceptable version, and an override with its reason and who
        made it (or ``skipped``); empty for a first release.

    Raises:
        UnderstatedBumpError: If ``version`` understates the change and there is no override.
        CredentialsError, CorruptArtifactError: If the previous release cannot be read.
    """
    import logging

    from registry.build.compare import compare
    from registry.semver import bump_reasons, check_bump

    previous = index.latest(name)
    if previous is None:
        return {}
    try:
        before = released_side(session, previous)
    except RemoteError as e:
        logging.getLogger(__name__).warning(
            "%s %s was not checked against %s: its data cannot be fetched (%s)", name, version,
            previous.version, first_line(e),
        )
        return {"against": str(previous.version), "skipped": first_line(e)}
    except (CredentialsError, CorruptArtifactError) as e:
        # The refusal of a release says that nothing happened, whatever stopped it.
        raise type(e)(
            f"{e}. The release compares the new build with the previous release "
            f"{previous.version}, fetched through the cache; nothing was pushed or tagged: "
            "release again once fixed"
        ) from e
    after = workspace_side(session, name)
    if not configs_of(before.build_info) and not configs_of(after.build_info):
        reasons = bump_reasons(compare(before, after, name=name))
    else:
        reasons = _configs_bump_reasons(before, after, name)
    return check_bump(
        "dataset", name, version, previous.version, reasons, override,
        session.repo.tagger_email(),
    )


def _configs_bump_reasons(before: Side, after: Side, name: str) -> dict[Bump, list[str]]:
    """What calls for each bump between two builds of a builder with configs: each config's
    diff (its reasons prefixed ``config NAME:``), a config removed (MAJOR) or added (MINOR).
    A side without configs stands for the other side's default config."""
    from registry.build.compare import compare
    from registry.semver import bump_reasons

    old, new = config_sides(before), config_sides(after)
    if None in old:
        old = {next(iter(new)): old[None]}
    if None in new:
        new = {next(iter(old)): new[None]}
    reasons: dict[Bump, list[str]] = {"major": [], "minor": [], "patch": []}
    reasons["major"] += [f"config {c!r} removed" for c in old if c not in new]
    reasons["minor"] += [f"config {c!r} added" for c in new if c not in old]
    for config in (c for c in new if c in old):
        found = bump_reasons(compare(old[config], new[config], name=name))
        for bump, items in found.items():
            reasons[bump] += [f"config {config}: {item}" for item in items]
    return reasons


def config_side(side: Side, config: str | None) -> Side:
    """One config of a build as a side of a diff: ``config``, or the default (a build without
    configs: itself).

    Raises:
        ConfigError: If ``config`` is not one of the build's (naming those it has), or the
            build has none.

    Example:
        >>> config_side(released, "large").path.name  # doctest: +SKIP
        'large'
    """
    chosen = config_of(side.build_info, side.label, config)
    return side if chosen is None else config_sides(side)[chosen]


def config_sides(side: Side) -> dict[str | None, Side]:
    """One side per config of a build (its folder and summary), the default first; a build
    without configs: itself, under ``None``."""
    import dataclasses

    configs = configs_of(side.build_info)
    if not configs:
        return {None: side}
    default = config_of(side.build_info, side.label, None)
    order = [default, *(c for c in configs if c != default)]
    return {
        config: dataclasses.replace(
            side,
            label=f"{side.label} config {config}",
            path=side.path / str(config),
            build_info={**(side.build_info or {}),
                        **{k: v for k, v in configs[str(config)].items() if k != "name"}},
        )
        for config in order
    }


def _check_built(root: Path, name: str, version: Version) -> None:
    """Refuse unless the prepared data exists, is up to date, and was built at ``version``."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    stage = layout.build_stage(name)
    build = f"run 'registry datasets build {name}'"
    if not (root / layout.prepared_dir(name)).is_dir():
        raise NotBuiltError(
            f"cannot release {name!r}: it is not built; {build} and commit dvc.lock"
        )
    try:
        with Repo(str(root)) as repo:
            status = repo.status(targets=[stage])
    except DvcException as e:
        problem = f"'dvc status' cannot tell whether the built data is up to date ({e})"
        raise StaleDataError("dataset", name, problem, f"fix that and {build}") from e
    if status:
        changes = "; ".join(
            ", ".join(str(c) for c in (entry if isinstance(entry, list) else [entry]))
            for entry in status.get(stage, [])
        )
        problem = (
            "the built data is not up to date with its builder and params "
            f"({changes or 'changed'})"
        )
        raise StaleDataError("dataset", name, problem, build)
    info_path = root / layout.build_info_file(name)
    built_version = None
    if info_path.is_file():
        built_version = json.loads(info_path.read_text()).get("version")
    if built_version != str(version):
        problem = f"the built data is version {built_version}, but the builder says {version}"
        raise StaleDataError(
            "dataset", name, problem, f"run 'registry datasets build {name} --force'"
        )


def new_dataset(
    name: str,
    *,
    registry: str | os.PathLike[str] | None = None,
    description: str | None = None,
    owner: str | None = None,
    query: bool = False,
) -> Path:
    """Write a ready-to-build dataset folder for ``name`` and add it to the pipeline.

    Args:
        name: The new dataset's name, e.g. ``products/product_a/ad_clicks``.
        registry: A registry clone; default from the configuration.
        description: One line saying what the dataset holds; a TODO if omitted.
        owner: The team or person to ask about it; a TODO if omitted.
        query: A warehouse dataset: ``query.sql`` and a sample of its table, an ``extract@NAME``
            stage whose snapshot the builder reads (see
            :func:`registry.build.scaffold.write_dataset_folder`).

    Returns:
        The new folder.

    Raises:
        InvalidNameError: If ``name`` is not a valid dataset name.
        RegistryError: If the name is taken (by a dataset or a model) or nested in a dataset.

    Example:
        >>> new_dataset("products/demo/orders", query=True)  # doctest: +SKIP
        PosixPath('/home/ana/registry/datasets/products/demo/orders')
    """
    from registry.build.dvcfiles import declared_datasets
    from registry.build.scaffold import write_dataset_folder

    session = open_session(registry)
    name = session.check_new_name(name, "dataset", declared=declared_datasets(session.root))
    return write_dataset_folder(
        session.root, name, description=description, owner=owner, query=query
    )


def add_dataset(
    name: str,
    source: str,
    *,
    registry: str | os.PathLike[str] | None = None,
) -> Path:
    """Bring in an existing TFDS builder as it is, as dataset ``name``.

    ``source`` is a builder file or TFDS dataset folder (copied; ``PATH:CLASS`` names the class
    when it is not ``Builder`` or the only one), or an importable class ``package.module:Class``
    (wrapped: ``class Builder(Class)`` in ``datasets/NAME/<leaf>_dataset_builder.py``). The
    dataset joins ``dvc.yaml``'s build stage with no params in ``params.yaml``, and gets a card
    stub and ``CITATIONS.bib`` if it has none (see :mod:`registry.build.adopt`). Its
    ``VERSION`` and ``RELEASE_NOTES`` may be inherited; without notes for its version, release
    it with ``release_dataset(name, notes=...)``. Commit the folder, ``dvc.yaml`` and
    ``params.yaml`` afterwards.

    Args:
        name: The new dataset's name, e.g. ``image_classification/dummy_mnist``.
        source: ``PATH``, ``PATH:CLASS`` or ``package.module:Class``.
        registry: A registry clone; default from the configuration.

    Returns:
        The new folder.

    Raises:
        InvalidNameError: If ``name`` is not a valid dataset name.
        ArtifactExistsError: If the name is taken (by a dataset or a model).
        SourceNotFoundError: If ``source`` reads as a path that does not exist.
        BuilderSourceError: If ``source`` is malformed, does not import, or names no TFDS
            builder class.

    Example:
        >>> add_dataset("image_classification/dummy_mnist",
        ...             "tensorflow_datasets.testing.test_utils:DummyMnist")  # doctest: +SKIP
        PosixPath('/home/ana/registry/datasets/image_classification/dummy_mnist')
    """
    from registry.build.adopt import adopt_builder, parse_source
    from registry.build.dvcfiles import declared_datasets

    parsed = parse_source(source)
    session = open_session(registry)
    name = session.check_new_name(name, "dataset", declared=declared_datasets(session.root))
    return adopt_builder(session.root, name, parsed)


def add_raw_input(
    name: str,
    source: str,
    *,
    to: str | None = None,
    registry: str | os.PathLike[str] | None = None,
) -> str:
    """Make ``source`` dataset ``name``'s raw input: tracked by DVC, a dependency of its build.

    A folder or file inside the dataset folder is tracked in place (``dvc add``); an export
    elsewhere (``gs://...``, ``s3://...``, ``https://...``, or a folder outside the repository)
    is imported into the folder (``dvc import-url``, which remembers where from: ``dvc update``
    fetches it again; importing again, e.g. a newer export, replaces it). A ``gs://`` export is
    read with your Google Cloud credentials, or anonymously from the emulator that
    ``STORAGE_EMULATOR_HOST`` names. Then ``raw_path`` in ``params.yaml`` names it and
    ``build@NAME`` depends on it, so changing the raw files makes the build out of date, and the
    release records their hash. Commit the ``.dvc`` file, ``dvc.yaml`` and ``params.yaml``
    afterwards.

    Args:
        name: The dataset.
        source: A path (relative to the current folder) or a URL.
        to: Where an import goes, relative to the dataset folder (default ``raw``).
        registry: A registry clone; default from the configuration.

    Returns:
        The new ``raw_path``, relative to the dataset folder.

    Raises:
        ArtifactNotFoundError: If there is no such dataset (WrongKindError: it is a model).
        SourceNotFoundError: If a local ``source`` does not exist.
        RawInputError: If a local ``source`` is in the repository but not in the dataset
            folder, ``to`` leads out of it, or nothing is at the URL.
        DvcError: If DVC refuses (its reason quoted: e.g. the folder is tracked by Git).

    Example:
        >>> add_raw_input("products/product_a/ad_clicks", "gs://lab/exports/clicks")
        ... # doctest: +SKIP
        'raw'
    """
    from registry.build.raw import track_raw_input

    session = open_session(registry)
    name = _check_dataset(session, name, "raw")
    return track_raw_input(session.root, name, source, to)
