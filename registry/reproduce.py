"""Rebuilding an old dataset version, and reproducing a model version, from its tag.

``registry datasets rebuild REF`` and ``registry models reproduce REF``. Each checks the version's
tagged commit out into a temporary folder (a dataset: only its folder and the pipeline files,
``git archive``; a model: the whole tree, a ``git worktree``), puts its inputs there at their
recorded hashes (a dataset's raw inputs; a model's training datasets and base model), runs that
commit's builder or training code with that commit's params, and compares what comes out with
what was released: the DVC hash of the prepared folder, or of the weights. Builds are
byte-reproducible (:mod:`registry.build.reproducible`) and CPU training is bit-identical on one
machine (``src/zoo/determinism.py`` in this lab's code), so equality of the hash is the
test. The released bytes are never touched.

``record=True`` appends the outcome to the version's lineage as a Git note
(:data:`registry.repo.git.NOTES_REF`, the format: :mod:`registry.repo.records`), pushed to the
Git remote at once where there is one, and with every tag pushed after.

Above the public API (it reads both kinds' releases), like :mod:`registry.lineage`.

Example:
    >>> result = rebuild_dataset("products/product_a/ad_clicks:1.0.0")  # doctest: +SKIP
    >>> result.equal, result.released
    (True, '5b1f...dir')
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry import layout
from registry.errors import BuildError, ConfigError, RawInputMissingError, RemoteError, first_line
from registry.repo.records import parse_lineage, reproduction_line
from registry.repo.session import (
    Kind,
    RegistryArg,
    Session,
    YankedVersionWarning,
    as_reference,
    check_purged,
    open_session,
)
from registry.repo.tags import Release
from registry.storage.hashes import dir_hash, dir_listing, hash_file

if TYPE_CHECKING:
    from registry.build.compare import DatasetDiff

__all__ = [
    "FileDifference",
    "ModelReproduction",
    "Rebuild",
    "diff_rebuild",
    "rebuild_dataset",
    "reproduce_model",
]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileDifference:
    """One file that differs between a released folder and its rebuild.

    Attributes:
        path: The file, relative to the prepared folder.
        change: ``changed`` (other bytes), ``added`` (only in the rebuild) or ``removed``
            (only in the release).
        released_md5, rebuilt_md5: Its hash on each side (``None`` where it is absent).
        rebuilt_size: Its size in the rebuild (``None`` if removed).
    """

    path: str
    change: str
    released_md5: str | None
    rebuilt_md5: str | None
    rebuilt_size: int | None


@dataclass(frozen=True)
class Rebuild:
    """What :func:`rebuild_dataset` found.

    Attributes:
        name, version, tag, commit: The release rebuilt.
        equal: Whether the rebuild's DVC hash is the released one (``None``: not compared,
            ``verify=False``).
        released: The released DVC hash of the prepared folder (``<md5>.dir``).
        rebuilt: The rebuild's hash.
        output: Where the rebuilt folder is (``None``: it was a temporary folder, removed).
        differences: Per file, what differs (empty when equal; see :func:`diff_rebuild`).
        unchecked: What could not be checked, and why (e.g. a tag without a lineage record).
        yanked: Why the version was yanked (``None``: it is not).
        recorded: Whether the outcome was recorded as a Git note.
        diff: When it differs, what differs in the data: the release against the rebuild by
            ``registry datasets diff``'s comparison (schema, splits, which examples,
            statistics); ``None`` when equal, not compared, or not comparable.
    """

    name: str
    version: str
    tag: str
    commit: str
    equal: bool | None
    released: str
    rebuilt: str
    output: Path | None
    differences: list[FileDifference] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    yanked: str | None = None
    recorded: bool = False
    diff: DatasetDiff | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for ``--json``."""
        data = asdict(self)
        data["output"] = str(self.output) if self.output else None
        data["diff"] = self.diff.to_dict() if self.diff is not None else None
        return data


@dataclass(frozen=True)
class ModelReproduction:
    """What :func:`reproduce_model` found.

    Attributes:
        name, version, tag, commit: The release reproduced.
        equal: Whether the retrained weights' hash is the released one (``None``: not compared).
        released, rebuilt: The weights' md5, released and retrained.
        metrics_before, metrics_after: The training metrics file (``models/NAME/training.json``)
            at the tagged commit, and after retraining.
        differences: What differs, one line each (weights, each metric that moved).
        unchecked: What could not be checked, and why.
        yanked: Why the version was yanked (``None``: it is not).
        recorded: Whether the outcome was recorded as a Git note.
    """

    name: str
    version: str
    tag: str
    commit: str
    equal: bool | None
    released: str
    rebuilt: str
    metrics_before: dict[str, Any] | None
    metrics_after: dict[str, Any] | None
    differences: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    yanked: str | None = None
    recorded: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for ``--json``."""
        return asdict(self)


# -- datasets -----------------------------------------------------------------------------------


def rebuild_dataset(
    ref: str,
    *,
    verify: bool = True,
    output: str | os.PathLike[str] | None = None,
    record: bool = False,
    registry: RegistryArg = None,
) -> Rebuild:
    """Rebuild a released dataset version from its tag and compare it with the release.

    Steps: resolve ``ref`` (a purged version is refused: its bytes are gone; a yanked one is
    rebuilt with a warning: that is how one proves what was released); check the tagged commit's
    dataset folder and pipeline files out into a temporary folder; put its raw inputs there at
    the hashes ``dvc.lock`` records at that commit (from the cache or the DVC remote); build it
    with that commit's builder and params (``registry`` itself is the running one); hash the
    result (DVC 3) and compare it with the released hash; with ``record``, append the outcome
    to the version's lineage note.

    Args:
        ref: A dataset reference (``name:1.0.0``, ``name@prod``, ...).
        verify: Compare with the released hash (``False``: only rebuild).
        output: Where the rebuilt folder goes (a new or empty folder); default: a temporary
            folder, removed afterwards.
        record: Append the outcome to the version's lineage (a Git note, pushed).
        registry: A registry clone or Git URL; default from the configuration.

    Returns:
        The :class:`Rebuild`.

    Raises:
        ArtifactNotFoundError, VersionNotFoundError, WrongKindError: If ``ref`` names no
            dataset release.
        PurgedVersionError: If the version was purged.
        NotBuiltError: If ``dvc.lock`` at the tagged commit records no build of it.
        RawInputMissingError: If a raw input is neither cached nor in the DVC remote.
        BuildError: If the build at the tagged commit fails (the checkout is removed; the log
            names what failed).
        ConfigError: If ``output`` exists and is not empty.

    Example:
        >>> rebuild_dataset("image_classification/digits:1.0.0").equal  # doctest: +SKIP
        True
    """
    from registry.datasets import build_inputs, released_data_hash

    session = open_session(registry)
    release = _resolve(session, ref, "dataset")
    name = release.name
    what = f"{name} {release.version}"
    target = _check_output(output)
    released = released_data_hash(session, release)
    inputs = build_inputs(session, release.commit, name)
    unchecked = _lineage_gaps(session, release)
    with _checkout(session, release, name) as tree:
        if inputs is not None:
            unchecked += _check_builder_files(tree, inputs.builder)
            _materialise_raw(session, release, tree, inputs.raw, what)
            if inputs.missing:
                unchecked.append(inputs.missing)
        params = inputs.params if inputs is not None else None
        with _output_folder(target) as out:
            _build(tree, name, params, out, what)
            listing = dir_listing(out)
            rebuilt = dir_hash(out, listing)
            equal = rebuilt == released if verify else None
            differences = [] if equal in (True, None) else diff_rebuild(
                session, release, released, out, listing
            )
            if differences == [] and equal is False:
                unchecked.append("the released listing could not be read to compare files")
            diff = None if equal in (True, None) else _data_diff(session, release, out, unchecked)
    result = Rebuild(
        name, str(release.version), release.tag, release.commit, equal, released, rebuilt,
        target, differences, unchecked, release.yanked.reason if release.yanked else None,
        diff=diff,
    )
    if record:
        _record(session, release, {
            "kind": "dataset", "equal": equal, "released": released, "rebuilt": rebuilt,
            "differences": [f"{d.change} {d.path}" for d in differences][:50],
            "examples": _example_counts(diff),
            "unchecked": unchecked,
        })
        result = _replace(result, recorded=True)
    return result


def _data_diff(
    session: Session, release: Release, rebuilt: Path, unchecked: list[str]
) -> DatasetDiff | None:
    """The release against its rebuild, by ``registry datasets diff``'s comparison (the released
    bytes fetched through the cache, as a load fetches them); ``None`` (and a line in
    ``unchecked``) where the release cannot be read.

    A builder with configs is compared config by config (each a TFDS folder of its own): the
    diff of the first config that differs, with a note for each other one that does."""
    from registry.build.compare import Side, compare
    from registry.datasets import config_sides, released_side
    from registry.errors import RegistryError

    try:
        released = released_side(session, release)
        diffs = []
        for config, before in config_sides(released).items():
            label = f"rebuild of {release.name} {release.version}"
            after = Side(label if config is None else f"{label} config {config}",
                         rebuilt if config is None else rebuilt / config, None, released.key,
                         release.name)
            diffs.append((config, compare(before, after, show=5)))
    except RegistryError as e:
        unchecked.append(f"the released data could not be compared example by example: "
                         f"{first_line(e)}")
        return None
    differing = [(c, d) for c, d in diffs if not d.identical] or diffs[:1]
    first = differing[0][1]
    for config, diff in differing[1:]:
        counts = _example_counts(diff) or {}
        first.notes.append(
            f"config {config} differs too: " + ", ".join(f"{n} {k}" for k, n in counts.items())
            + f" (registry datasets diff --config {config})"
        )
    return first


def _example_counts(diff: DatasetDiff | None) -> dict[str, int] | None:
    """What a reproduction note keeps of a differing rebuild's data diff: example counts."""
    if diff is None:
        return None
    return {
        "added": sum(s.added for s in diff.splits),
        "removed": sum(s.removed for s in diff.splits),
        "changed": sum(s.changed for s in diff.splits),
        "schema_changes": len(diff.features),
    }


def diff_rebuild(
    session: Session,
    release: Release,
    released: str,
    rebuilt: Path,
    listing: list[dict[str, Any]] | None = None,
) -> list[FileDifference]:
    """What differs between a released dataset folder and a rebuild of it, file by file.

    The released ``.dir`` listing (from the cache or the DVC remote, not the data) is compared
    with the rebuild's; what differs in the data itself (schema, counts, which examples) is
    :attr:`Rebuild.diff`, by ``registry datasets diff``'s comparison.

    Args:
        session: The registry.
        release: The release.
        released: Its DVC hash (``<md5>.dir``).
        rebuilt: The rebuilt prepared folder.
        listing: The rebuild's :func:`~registry.storage.hashes.dir_listing`, if made.

    Returns:
        The differing files, sorted by path (empty if the listing cannot be read).
    """
    from registry.storage.remote import RemoteStore

    mine = {e["relpath"]: e["md5"] for e in (listing or dir_listing(rebuilt))}
    remote = RemoteStore.open(session.repo, release.commit, session.settings.remote)
    try:
        label = f"{release.tag}'s listing"
        obj = session.content_cache().ensure_object(released, remote, label=label)
        theirs = {e["relpath"]: e["md5"] for e in json.loads(obj.read_bytes())}
    except (RemoteError, OSError, ValueError) as e:
        _log.warning("cannot read the released listing of %s: %s", release.tag, first_line(e))
        return []
    found = []
    for path in sorted(set(mine) | set(theirs)):
        a, b = theirs.get(path), mine.get(path)
        if a == b:
            continue
        change = "added" if a is None else "removed" if b is None else "changed"
        size = (rebuilt / path).stat().st_size if b is not None else None
        found.append(FileDifference(path, change, a, b, size))
    return found


def _check_output(output: str | os.PathLike[str] | None) -> Path | None:
    """``--output``: a new folder, or an empty one (never someone's files, replaced)."""
    if output is None:
        return None
    path = Path(output).expanduser().resolve()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ConfigError(
            f"--output {output} exists and is not an empty folder; give a new folder for the "
            "rebuilt data"
        )
    return path


@contextlib.contextmanager
def _output_folder(target: Path | None) -> Iterator[Path]:
    """The folder the build writes: ``target``, or a temporary one removed afterwards."""
    if target is not None:
        if target.is_dir():
            target.rmdir()  # empty: the build puts its folder in its place
        yield target
        return
    scratch = Path(tempfile.mkdtemp(prefix="registry-rebuild-"))
    try:
        yield scratch / "prepared"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _build(tree: Path, name: str, params: dict[str, Any] | None, out: Path, what: str) -> None:
    """Run the checkout's builder of ``name`` into ``out`` (in this process, this ``registry``)."""
    from registry.build.prepare import prepare_dataset

    try:
        prepare_dataset(tree, name, params=params, output=out)
    except BuildError as e:
        raise BuildError(
            f"rebuilding {what} at its tagged commit failed: {e} (the temporary checkout was "
            "removed; 'git worktree add DIR TAG' and 'registry datasets prepare NAME' there "
            "reproduce it)"
        ) from e


def _check_builder_files(tree: Path, builder: dict[str, Any]) -> list[str]:
    """The builder files at the tagged commit whose md5 is not what ``dvc.lock`` recorded."""
    gaps = []
    for path, md5 in sorted(builder.items()):
        file = tree / path
        actual = hash_file(file) if file.is_file() else None
        if md5 and actual != md5:
            gaps.append(
                f"{path} at the tagged commit is not what dvc.lock recorded for the build "
                f"(md5 {actual or 'missing'}, recorded {md5}): the release was not built from "
                "its committed builder"
            )
    return gaps


def _materialise_raw(
    session: Session, release: Release, tree: Path, raw: list[dict[str, Any]], what: str
) -> None:
    """Put each raw input into the checkout at its recorded hash, from the cache or the remote."""
    for entry in raw:
        path, md5 = str(entry.get("path") or ""), entry.get("md5")
        if not path or not isinstance(md5, str):
            continue
        _place(session, release, md5, tree / path, path, what)


def _place(
    session: Session, release: Release, md5: str, dest: Path, label: str, what: str
) -> None:
    """Copy object ``md5`` (a file, or a ``.dir`` folder) to ``dest``, fetching it if needed.

    Raises:
        RawInputMissingError: If it is neither cached nor in the remote.
    """
    from registry.storage.remote import RemoteStore

    cache = session.content_cache()
    remote = RemoteStore.open(session.repo, release.commit, session.settings.remote)
    cached = cache.cached(md5) if md5.endswith(".dir") else None
    if cached is None and not (
        not md5.endswith(".dir") and cache.object_path(md5).is_file()
    ) and not remote.has(md5):
        raise RawInputMissingError(what, label, md5, f"{remote.name!r} ({remote.url})")
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    elif dest.is_dir():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if md5.endswith(".dir"):
        source = cached.path if cached is not None else cache.snapshot(md5, remote).path
        shutil.copytree(source, dest)
    else:
        shutil.copyfile(cache.ensure_object(md5, remote, label=label), dest)


# -- models -------------------------------------------------------------------------------------


def reproduce_model(
    ref: str,
    *,
    verify: bool = True,
    record: bool = False,
    registry: RegistryArg = None,
) -> ModelReproduction:
    """Retrain a released model version from its tag and compare the weights with the release.

    Steps: resolve ``ref`` (purged: refused; yanked: a warning); check the tagged commit out
    into a temporary worktree; put its training datasets there (``datasets/NAME/prepared``, the
    released versions its lineage names) and its base model's released weights
    (``models/BASE/...``); run the ``train@NAME`` stage's command that ``dvc.lock`` records at
    that commit, in the worktree; compare the weights' md5 with the released one, and the
    training metrics (``models/NAME/training.json``) with the committed ones.

    Args:
        ref: A model reference.
        verify: Compare with the released weights (``False``: only retrain).
        record: Append the outcome to the version's lineage (a Git note, pushed).
        registry: A registry clone or Git URL; default from the configuration.

    Returns:
        The :class:`ModelReproduction`.

    Raises:
        ArtifactNotFoundError, VersionNotFoundError, WrongKindError: If ``ref`` names no
            model release.
        PurgedVersionError: If the version was purged.
        NotBuiltError: If the release records no weights, or no training stage at its commit
            (weights trained elsewhere and added with ``registry models add`` cannot be
            retrained here).
        RawInputMissingError: If a training dataset or the base model's weights are gone.
        BuildError: If training at the tagged commit fails.

    Example:
        >>> reproduce_model("digits-cnn:1.0.0").equal  # doctest: +SKIP
        True
    """
    from registry.datasets import released_data_hash
    from registry.errors import NotBuiltError
    from registry.models import released_weights
    from registry.repo.lock import locked_stage

    session = open_session(registry)
    release = _resolve(session, ref, "model")
    name, what = release.name, f"{release.name} {release.version}"
    weights, released = released_weights(session, release)
    stage = locked_stage(session.repo, release.commit, f"train@{name}")
    if stage is None or not stage.get("cmd"):
        raise NotBuiltError(
            f"cannot reproduce {what}: dvc.lock at {release.tag} records no train@{name} stage, "
            "so its weights were not trained by this registry's pipeline (added with 'registry "
            "models add'?)"
        )
    record_, problem = parse_lineage(session.repo.tag_message(release.tag))
    unchecked = [f"{release.tag}: {problem}"] if problem else []
    lineage = record_ or {}
    datasets = dict(lineage.get("datasets") or {})
    if not datasets:
        card = _card_datasets(session, release)
        datasets = card
    base = lineage.get("base_model")
    metrics_file = f"{layout.model_dir(name)}/training.json"
    before = _json_at(session, release.commit, metrics_file)
    with _worktree(session, release) as tree:
        for dataset, version in sorted(datasets.items()):
            dataset_release = _resolve(session, f"{dataset}:{version}", "dataset")
            prepared = layout.prepared_dir(dataset)
            _place(session, dataset_release, released_data_hash(session, dataset_release),
                   tree / prepared, prepared, what)
        if base:
            base_release = _resolve(session, str(base), "model")
            base_weights, base_md5 = released_weights(session, base_release)
            _place(session, base_release, base_md5, tree / base_weights, base_weights, what)
        _train(tree, str(stage["cmd"]), what)
        out = tree / weights
        rebuilt = hash_file(out) if out.is_file() else ""
        after = _json_file(tree / metrics_file)
    equal = rebuilt == released if verify else None
    differences = []
    if equal is False:
        differences.append(f"weights {weights}: md5 {rebuilt or 'missing'}, released {released}")
        differences += _metric_changes(before, after)
    result = ModelReproduction(
        name, str(release.version), release.tag, release.commit, equal, released, rebuilt,
        before, after, differences, unchecked,
        release.yanked.reason if release.yanked else None,
    )
    if record:
        _record(session, release, {
            "kind": "model", "equal": equal, "released": released, "rebuilt": rebuilt,
            "differences": differences, "unchecked": unchecked,
        })
        result = _replace(result, recorded=True)
    return result


def _card_datasets(session: Session, release: Release) -> dict[str, str]:
    """The training datasets a release's card names (a tag without a lineage record)."""
    from registry.models import released_card

    card = released_card(session, release)
    found = {}
    for text in (card.datasets if card is not None else []):
        reference = as_reference(text)
        if reference.version is not None:
            found[reference.name] = str(reference.version)
    return found


def _train(tree: Path, cmd: str, what: str) -> None:
    """Run the training stage's command in the worktree; its output goes to the log."""
    # The running `registry`, not a copy in the checked-out tree (this repository has one).
    shutil.rmtree(tree / "registry", ignore_errors=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("REGISTRY_URL", None)
    done = subprocess.run(
        cmd, shell=True, cwd=tree, env=env, capture_output=True, text=True, check=False
    )
    _log.info("%s\n%s", done.stdout, done.stderr)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BuildError(
            f"retraining {what} at its tagged commit failed ({cmd!r} exited "
            f"{done.returncode}: {last[0]}); the temporary worktree was removed"
        )


def _json_at(session: Session, commit: str, path: str) -> dict[str, Any] | None:
    data = session.repo.read_file(commit, path)
    try:
        value = json.loads(data) if data is not None else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _json_file(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _metric_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """``test.accuracy: 0.95 -> 0.93``, for each metric that moved (nested keys joined)."""

    def flat(d: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in (d or {}).items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    a, b = flat(before), flat(after)
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k)} -> {b.get(k)}" for k in keys if a.get(k) != b.get(k)]


# -- shared -------------------------------------------------------------------------------------


def _resolve(session: Session, ref: str, kind: Kind) -> Release:
    """The release ``ref`` names: purged refused, yanked warned about (never refused: a rebuild
    proves what was released)."""
    release = session.resolve(as_reference(ref), kind, command="info", describe=True)
    check_purged(session.repo, release, kind)
    if release.yanked is not None:
        warnings.warn(
            YankedVersionWarning(
                f"YANKED: {release.name} {release.version} was yanked "
                f"({release.yanked.reason}); rebuilding it anyway, to check what was released"
            ),
            stacklevel=3,
        )
    return release


def _lineage_gaps(session: Session, release: Release) -> list[str]:
    """What cannot be checked for a release whose tag has no lineage record."""
    _, problem = parse_lineage(session.repo.tag_message(release.tag))
    if problem is None:
        return []
    return [
        f"{release.tag}: {problem}; rebuilt from the commit's dvc.lock alone (its builder "
        "files, params and raw inputs are not cross-checked with a release record)"
    ]


# What a dataset's build reads at its commit besides its folder (params, the pipeline's record).
_PIPELINE_FILES = ("params.yaml", "dvc.yaml", "dvc.lock")


@contextlib.contextmanager
def _checkout(session: Session, release: Release, name: str) -> Iterator[Path]:
    """The tagged commit's files a dataset build reads, in a temporary folder removed afterwards.

    Only the dataset's folder (builder, card, dummy data, raw ``.dvc`` files) and the pipeline
    files: the build is that commit's code and params, with no checkout of the rest of the
    registry and no worktree registered in it.
    """
    parent = Path(tempfile.mkdtemp(prefix="registry-rebuild-tree-"))
    tree = parent / "tree"
    try:
        session.repo.export_paths(
            release.commit, [layout.dataset_dir(name), *_PIPELINE_FILES], tree
        )
        yield tree
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@contextlib.contextmanager
def _worktree(session: Session, release: Release) -> Iterator[Path]:
    """The tagged commit checked out into a temporary worktree, removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="registry-worktree-"))
    tree = parent / "tree"
    session.repo.add_worktree(tree, release.commit)
    try:
        yield tree
    finally:
        session.repo.remove_worktree(tree)
        shutil.rmtree(parent, ignore_errors=True)


def environment() -> dict[str, str]:
    """The versions a reproduction ran with: Python and the libraries that make the bytes."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0]}
    for key, package in (
        ("tensorflow", "tensorflow"),
        ("tfds", "tensorflow-datasets"),
        ("beam", "apache-beam"),
        ("dvc", "dvc"),
        ("registry", "lab-registry"),
    ):
        try:
            found[key] = version(package)
        except PackageNotFoundError:
            found[key] = "not installed"
    return found


def _record(session: Session, release: Release, outcome: dict[str, Any]) -> None:
    """Append the outcome to the release's note, and push the notes where tags go."""
    repo = session.repo
    line = reproduction_line({
        "date": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "tag": release.tag,
        "by": repo.tagger_email(),
        "environment": environment(),
        **outcome,
    })
    repo.append_note(release.commit, line)
    try:
        repo.push_notes()
    except RemoteError as e:
        _log.warning("%s", e)


def _replace(result: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(result, **changes)
