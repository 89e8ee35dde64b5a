"""The content hash that a revision's ``dvc.lock`` records for a stage's output.

A release records its artifact's content hash in ``dvc.lock``: a directory artifact's hash names
a ``.dir`` object (the JSON list of its files and their md5s), a file's hash is its md5.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from registry.errors import ConfigError, NotBuiltError
from registry.storage.hashes import MD5_RE

if TYPE_CHECKING:
    from registry.repo.git import GitRepo

__all__ = ["LOCK_FILE", "locked_out_hash", "norm_path"]

LOCK_FILE = "dvc.lock"


def norm_path(path: str) -> str:
    """A repository-relative path in one spelling (``./a/b/`` and ``a/b`` are the same)."""
    return posixpath.normpath(path.replace("\\", "/")).strip("/")


def locked_out_hash(repo: GitRepo, commit: str, stage: str, out_path: str) -> str:
    """Return the content hash that ``dvc.lock`` at ``commit`` records for a stage's output.

    Args:
        repo: The registry.
        commit: The commit to read (a release tag's commit).
        stage: The stage name as ``dvc.lock`` spells it, e.g. ``build@image_classification/digits``.
        out_path: The output's path relative to the registry root, e.g.
            ``datasets/image_classification/digits/prepared``.

    Returns:
        The output's md5, e.g. ``"1efa88afe031ce8f3761f84b7775d39a.dir"`` for a folder (the hash of
        its ``.dir`` listing) or a plain 32-hex md5 for a single file.

    Raises:
        NotBuiltError: If ``commit`` has no ``dvc.lock``, the stage or output is not in it, or the
            output was hashed by DVC 2 (which this registry does not read).
        ConfigError: If ``dvc.lock`` cannot be parsed or holds an invalid hash.

    Example:
        >>> locked_out_hash(repo, release.commit, "build@image_classification/digits",
        ...                 "datasets/image_classification/digits/prepared")  # doctest: +SKIP
        '1efa88afe031ce8f3761f84b7775d39a.dir'
    """
    short = commit[:12]
    data = repo.read_file(commit, LOCK_FILE)
    if data is None:
        raise NotBuiltError(
            f"commit {short} has no {LOCK_FILE}, so stage {stage!r} was not built there; build it "
            f"with 'dvc repro {stage}', commit {LOCK_FILE} and release it"
        )
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is ~10x faster
    try:
        lock = yaml.load(data, Loader=loader)
    except yaml.YAMLError as e:
        raise ConfigError(
            f"{LOCK_FILE} at commit {short} cannot be parsed ({e}); regenerate it with "
            f"'dvc repro {stage}' and commit it"
        ) from e
    stages = lock.get("stages") if isinstance(lock, dict) else None
    entry = stages.get(stage) if isinstance(stages, dict) else None
    if not isinstance(entry, dict):
        raise NotBuiltError(
            f"stage {stage!r} is not in {LOCK_FILE} at commit {short}: it was not built there, or "
            f"its {LOCK_FILE} entry was not committed; run 'dvc repro {stage}', commit "
            f"{LOCK_FILE} and release"
        )
    outs = [out for out in entry.get("outs") or [] if isinstance(out, dict)]
    wanted = norm_path(out_path)
    found = next((out for out in outs if norm_path(str(out.get("path", ""))) == wanted), None)
    if found is None:
        listed = ", ".join(repr(str(out.get("path"))) for out in outs) or "none"
        raise NotBuiltError(
            f"stage {stage!r} in {LOCK_FILE} at commit {short} has no output {out_path!r} "
            f"(outputs: {listed}); check the stage's 'outs' in dvc.yaml, then 'dvc repro {stage}'"
        )
    md5 = found.get("md5")
    if found.get("hash") != "md5":
        # DVC 3 writes "hash: md5"; without it the md5 is DVC 2's md5-dos2unix, stored elsewhere.
        raise NotBuiltError(
            f"output {out_path!r} of stage {stage!r} at commit {short} was hashed by DVC 2, "
            "which the registry cannot read; rebuild it with DVC 3 ('dvc repro "
            f"{stage}'), then push and release a new version"
        )
    if not isinstance(md5, str) or not MD5_RE.match(md5):
        raise ConfigError(
            f"{LOCK_FILE} at commit {short} records an invalid md5 {md5!r} for {out_path!r}; "
            f"regenerate it with 'dvc repro {stage}'"
        )
    return md5


