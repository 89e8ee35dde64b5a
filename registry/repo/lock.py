"""The content hash that DVC records for an output, at a commit or in the work tree.

The one reader of that fact. DVC records an output's hash in ``dvc.lock`` (the output of a
``dvc.yaml`` stage) or in a ``<path>.dvc`` file beside it (``dvc add``, as ``registry models add``
writes). A directory's hash names a ``.dir`` object (the JSON list of its files and their md5s), a
file's hash is its md5. Reading is strict: a record that is unparsable, written by DVC 2, or holds
an invalid md5 is an error, never a guess. :func:`locked_out_hash` also calls a missing record an
error; :func:`find_out_hash` returns ``None`` for it.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any

from registry.errors import ConfigError, NotBuiltError
from registry.storage.hashes import MD5_RE

if TYPE_CHECKING:
    from registry.repo.git import GitRepo

__all__ = [
    "LOCK_FILE",
    "all_out_hashes",
    "find_out_hash",
    "imported_from",
    "locked_out_hash",
    "locked_stage",
    "norm_path",
]

LOCK_FILE = "dvc.lock"
# Parsed files at a commit (read-only to callers), oldest dropped first.
_PARSED: dict[tuple[str, str, str], Any] = {}
_PARSED_MAX = 32


def norm_path(path: str) -> str:
    """A repository-relative path in one spelling (``./a/b/`` and ``a/b`` are the same)."""
    return posixpath.normpath(path.replace("\\", "/")).strip("/")


def locked_out_hash(repo: GitRepo, commit: str | None, stage: str | None, out_path: str) -> str:
    """Return the content hash that DVC records for ``out_path`` at ``commit``.

    Args:
        repo: The registry.
        commit: The commit to read (a release tag's commit), or ``None`` for the work tree.
        stage: The stage name as ``dvc.lock`` spells it, e.g. ``build@image_classification/digits``;
            or ``None`` for an output of any stage, else of the ``<out_path>.dvc`` file.
        out_path: The output's path relative to the registry root, e.g.
            ``datasets/image_classification/digits/prepared`` (any spelling: ``./a/b/``).

    Returns:
        The output's md5, e.g. ``"1efa88afe031ce8f3761f84b7775d39a.dir"`` for a folder (the hash of
        its ``.dir`` listing) or a plain 32-hex md5 for a single file.

    Raises:
        NotBuiltError: If nothing records the output (no ``dvc.lock``, the stage or output is not
            in it, no ``.dvc`` file), or it was hashed by DVC 2 (which this registry does not read).
        ConfigError: If ``dvc.lock`` or the ``.dvc`` file cannot be parsed or holds an invalid hash.

    Example:
        >>> locked_out_hash(repo, release.commit, "build@image_classification/digits",
        ...                 "datasets/image_classification/digits/prepared")  # doctest: +SKIP
        '1efa88afe031ce8f3761f84b7775d39a.dir'
    """
    md5, missing = _lookup(repo, commit, stage, out_path)
    if md5 is None:
        raise NotBuiltError(missing)
    return md5


def find_out_hash(
    repo: GitRepo, commit: str | None, stage: str | None, out_path: str
) -> str | None:
    """Like :func:`locked_out_hash`, but ``None`` where nothing records the output.

    For callers to whom an unbuilt output is normal (a training run's lineage); a broken record
    still raises.

    Raises:
        NotBuiltError: If the output was hashed by DVC 2.
        ConfigError: If ``dvc.lock`` or the ``.dvc`` file cannot be parsed or holds an invalid hash.

    Example:
        >>> find_out_hash(repo, None, None, "models/digits-cnn/model.keras")  # doctest: +SKIP
        'c4ca4238a0b923820dcc509a6f75849b'
    """
    return _lookup(repo, commit, stage, out_path)[0]


def locked_stage(repo: GitRepo, commit: str | None, stage: str) -> dict[str, Any] | None:
    """What ``dvc.lock`` records for ``stage`` at ``commit``: its ``deps``, ``params`` and
    ``outs`` as DVC wrote them, or ``None`` if it records no such stage (or there is no lock).

    Lineage reads a build's inputs from it: the files the stage depends on, with their hashes,
    and the params it ran with.

    Raises:
        ConfigError: If ``dvc.lock`` cannot be parsed.

    Example:
        >>> locked_stage(repo, release.commit, "build@image_classification/digits")["params"]
        ... # doctest: +SKIP
        {'params.yaml': {'datasets.image_classification/digits': {}}}
    """
    lock = _load(repo, commit, LOCK_FILE, f"dvc repro {stage}", stage=stage)
    stages = lock.get("stages") if isinstance(lock, dict) else None
    entry = stages.get(stage) if isinstance(stages, dict) else None
    return entry if isinstance(entry, dict) else None


def all_out_hashes(repo: GitRepo, commit: str) -> dict[str, str]:
    """Every output hash DVC records at ``commit``: each stage's outputs in ``dvc.lock`` and
    each ``.dvc`` file's, what a branch head keeps alive on the remote (``registry remote gc``).

    Returns:
        Output path -> its md5 (``<md5>.dir`` for a folder); outputs hashed by DVC 2 or without
        a hash are left out.

    Raises:
        ConfigError: If ``dvc.lock`` or a ``.dvc`` file cannot be parsed.

    Example:
        >>> all_out_hashes(repo, repo.resolve_commit("main"))  # doctest: +SKIP
        {'datasets/image_classification/digits/prepared': '1efa88afe031ce8f3761f84b7775d39a.dir'}
    """
    found: dict[str, str] = {}
    records: list[tuple[Any, str]] = []
    lock = _load(repo, commit, LOCK_FILE, "dvc repro")
    stages = lock.get("stages") if isinstance(lock, dict) else None
    records += [(entry, "") for entry in (stages.values() if isinstance(stages, dict) else ())]
    files = repo.git("ls-tree", "-r", "--name-only", "-z", commit).split("\0")
    for path in (p for p in files if p.endswith(".dvc") and not p.startswith(".dvc/")):
        records.append((_load(repo, commit, path, f"dvc add {path[:-4]}"), posixpath.dirname(path)))
    for record, base in records:
        outs = record.get("outs") if isinstance(record, dict) else None
        for out in outs if isinstance(outs, list) else []:
            md5 = out.get("md5") if isinstance(out, dict) else None
            if out and out.get("hash") == "md5" and isinstance(md5, str) and MD5_RE.match(md5):
                found[norm_path(posixpath.join(base, str(out.get("path", ""))))] = md5
    return found


def imported_from(repo: GitRepo, commit: str | None, out_path: str) -> str | None:
    """Where ``dvc import-url`` imported ``out_path`` from (its ``.dvc`` file's dependency), or
    ``None`` (not imported: ``dvc add``-ed, tracked by Git, or absent).

    Raises:
        ConfigError: If the ``.dvc`` file cannot be parsed.

    Example:
        >>> imported_from(repo, None, "datasets/products/product_a/ad_clicks/raw")
        ... # doctest: +SKIP
        'gs://lab-exports/clicks/2024-06'
    """
    wanted = norm_path(out_path)
    record = _load(repo, commit, f"{wanted}.dvc", f"dvc import-url URL {wanted}")
    deps = record.get("deps") if isinstance(record, dict) else None
    first = deps[0] if isinstance(deps, list) and deps and isinstance(deps[0], dict) else {}
    return str(first["path"]) if first.get("path") else None


def _lookup(
    repo: GitRepo, commit: str | None, stage: str | None, out_path: str
) -> tuple[str | None, str]:
    """The output's md5 and ``""``, or ``None`` and why nothing records it."""
    wanted = norm_path(out_path)
    where = _where(commit)
    lock = _load(repo, commit, LOCK_FILE, f"dvc repro {stage or ''}".strip(), stage=stage)
    if stage is not None:
        return _stage_out(lock, stage, wanted, out_path, commit)
    # Any stage's output, else a .dvc file: DVC lets only one of them track a path.
    stages = lock.get("stages") if isinstance(lock, dict) else None
    for name, entry in stages.items() if isinstance(stages, dict) else ():
        found = _matching_out(entry, wanted)
        if found is not None:
            return _checked(found, out_path, f"stage {name!r} {where}", f"dvc repro {name}"), ""
    dvc_file = f"{wanted}.dvc"
    record = _load(repo, commit, dvc_file, f"dvc add {wanted}")
    # A .dvc file's output paths are relative to its folder.
    found = _matching_out(record, wanted, base=posixpath.dirname(wanted))
    if found is not None:
        return _checked(found, out_path, f"{dvc_file} {where}", f"dvc add {wanted}"), ""
    return None, (
        f"{out_path!r} is not tracked by DVC {where}: no stage in {LOCK_FILE} outputs it and "
        f"{dvc_file} does not track it; make it the output of a dvc.yaml stage ('dvc repro') or "
        "track it with 'dvc add' ('registry models add NAME --from FILE' for weights), and commit"
    )


def _where(commit: str | None) -> str:
    """The revision, for messages."""
    return f"at commit {commit[:12]}" if commit is not None else "in the work tree"


def _stage_out(
    lock: Any, stage: str, wanted: str, out_path: str, commit: str | None
) -> tuple[str | None, str]:
    """The md5 of output ``wanted`` of ``stage`` in a parsed ``dvc.lock``, or why there is none."""
    where = _where(commit)
    if lock is None:
        subject = f"commit {commit[:12]}" if commit is not None else "the work tree"
        return None, (
            f"{subject} has no {LOCK_FILE}, so stage {stage!r} was not built there; build it "
            f"with 'dvc repro {stage}', commit {LOCK_FILE} and release it"
        )
    stages = lock.get("stages") if isinstance(lock, dict) else None
    entry = stages.get(stage) if isinstance(stages, dict) else None
    if not isinstance(entry, dict):
        return None, (
            f"stage {stage!r} is not in {LOCK_FILE} {where}: it was not built there, or its "
            f"{LOCK_FILE} entry was not committed; run 'dvc repro {stage}', commit {LOCK_FILE} "
            "and release"
        )
    found = _matching_out(entry, wanted)
    if found is None:
        outs = [out for out in entry.get("outs") or [] if isinstance(out, dict)]
        listed = ", ".join(repr(str(out.get("path"))) for out in outs) or "none"
        return None, (
            f"stage {stage!r} in {LOCK_FILE} {where} has no output {out_path!r} "
            f"(outputs: {listed}); check the stage's 'outs' in dvc.yaml, then 'dvc repro {stage}'"
        )
    return _checked(found, out_path, f"stage {stage!r} {where}", f"dvc repro {stage}"), ""


def _load(
    repo: GitRepo, commit: str | None, path: str, regenerate: str, stage: str | None = None
) -> Any:
    """A YAML file of the revision, parsed; ``None`` if the revision has no such file.

    With ``stage``, possibly only that stage's entry of a ``dvc.lock`` (:func:`_stage_slice`).
    """
    if commit is None:
        if repo.work_tree is None:
            raise ValueError("reading the work tree needs a clone, not a mirror")
        try:
            data: bytes | None = (repo.work_tree / path).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            data = None
    else:
        key = (str(repo.path), commit, path)
        if key in _PARSED:
            return _PARSED[key]
        data = repo.read_file(commit, path)
    if data is None:
        return None
    import yaml

    if stage is not None:
        sliced = _stage_slice(data, stage)
        if sliced is not None:
            return sliced

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is ~10x faster
    try:
        parsed = yaml.load(data, Loader=loader)
    except yaml.YAMLError as e:
        raise ConfigError(
            f"{path} {_where(commit)} cannot be parsed ({e}); regenerate it with "
            f"'{regenerate}' and commit it"
        ) from e
    if commit is not None and len(commit) == 40:
        # A commit's files never change: lineage reads one dvc.lock for several lookups.
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[(str(repo.path), commit, path)] = parsed
    return parsed


def _stage_slice(data: bytes, stage: str) -> dict[str, Any] | None:
    """``{"stages": {stage: entry}}`` parsed from only that stage's lines of a ``dvc.lock`` as
    DVC writes it (two-space indent), or ``None`` to parse the whole file: in a registry of
    hundreds of datasets that is ~100x less YAML for one release's hash."""
    import yaml

    start = data.find(f"\n  {stage}:\n".encode())
    if start < 0 or not data.startswith(b"schema: '2.0'\nstages:\n"):
        return None
    end = start + 1
    while True:
        end = data.find(b"\n", end + 1)
        if end < 0 or data[end + 1 : end + 3] != b"  " or data[end + 3 : end + 4] != b" ":
            break
    chunk = data[start + 1 : end if end >= 0 else len(data)]
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        entry = yaml.load(chunk, Loader=loader)
    except yaml.YAMLError:
        return None  # let the whole file's parse report it, with its line
    return {"stages": entry} if isinstance(entry, dict) and stage in entry else None


def _matching_out(record: Any, wanted: str, base: str = "") -> dict[str, Any] | None:
    """The output of a stage entry or ``.dvc`` file (paths relative to ``base``) that is
    ``wanted``, if any."""
    outs = record.get("outs") if isinstance(record, dict) else None
    for out in outs if isinstance(outs, list) else []:
        path = posixpath.join(base, str(out.get("path", ""))) if isinstance(out, dict) else ""
        if path and norm_path(path) == wanted:
            return out
    return None


def _checked(out: dict[str, Any], out_path: str, recorded_in: str, regenerate: str) -> str:
    """The md5 of one recorded output, if DVC 3 wrote it and it is well formed."""
    md5 = out.get("md5")
    if out.get("hash") != "md5":
        # DVC 3 writes "hash: md5"; without it the md5 is DVC 2's md5-dos2unix, stored elsewhere.
        raise NotBuiltError(
            f"output {out_path!r} of {recorded_in} was hashed by DVC 2, which the registry "
            f"cannot read; rehash it with DVC 3 ('{regenerate}'), then push and release a new "
            "version"
        )
    if not isinstance(md5, str) or not MD5_RE.match(md5):
        raise ConfigError(
            f"{recorded_in} records an invalid md5 {md5!r} for {out_path!r}; regenerate it "
            f"with '{regenerate}'"
        )
    return md5
