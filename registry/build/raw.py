"""A dataset's raw input: tracked or imported into its folder, and made its build's dependency.

Raw data lives in the dataset folder, so that ``build@NAME`` depends on it and ``dvc.lock``
records its hash: a folder or file already there is tracked with ``dvc add``; an export elsewhere
(``gs://...``, ``s3://...``, ``https://...``, or a folder outside the repository) is imported
with ``dvc import-url``, which also records where it came from (``dvc update`` fetches it again).
Either way ``raw_path`` and the stage's dependency are set by
:func:`registry.build.dvcfiles.set_raw_input`.
"""

from __future__ import annotations

import re
from pathlib import Path

from registry import layout
from registry.build.dvcfiles import check_raw_path, set_raw_input
from registry.errors import DvcError, RawInputError, SourceNotFoundError, first_line

__all__ = ["is_url", "track_raw_input"]

# ``scheme://``: what DVC imports from a remote filesystem (gs, s3, azure, http(s), hdfs, ...).
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def is_url(source: str) -> bool:
    """Whether ``source`` names a remote export (``scheme://...``) rather than a local path."""
    return bool(_URL_RE.match(source))


def track_raw_input(root: Path, name: str, source: str, to: str | None = None) -> str:
    """Track or import ``source`` as dataset ``name``'s raw input; return its ``raw_path``.

    Args:
        root: The registry work tree.
        name: A dataset of the ``build`` stage (checked by the caller).
        source: A path inside the dataset folder (tracked in place with ``dvc add``), a folder or
            file outside the repository, or a URL (both imported with ``dvc import-url``).
        to: Where an import goes, relative to the dataset folder (default ``raw``).

    Returns:
        The raw input's path relative to the dataset folder, e.g. ``raw``.

    Raises:
        SourceNotFoundError: If a local ``source`` does not exist.
        RawInputError: If a local ``source`` is in the repository but not in the dataset
            folder, or ``to`` leads out of it.
        DvcError: If ``dvc add`` or ``dvc import-url`` fails (DVC's reason is quoted).

    Example:
        >>> track_raw_input(root, "products/product_a/ad_clicks", "gs://lab/exports/clicks")
        ... # doctest: +SKIP
        'raw'
    """
    folder = (root / layout.dataset_dir(name)).resolve()
    if is_url(source):
        return _import(root, name, source, to)
    path = Path(source).expanduser().resolve()
    if not path.exists():
        raise SourceNotFoundError(source, f"cannot track the raw input of {name!r}")
    if not path.is_relative_to(root.resolve()):
        return _import(root, name, str(path), to)  # an export elsewhere on this machine
    if not path.is_relative_to(folder):
        raise RawInputError(name, source, f"is in the repository but not in {folder}")
    raw_path = check_raw_path(name, path.relative_to(folder).as_posix())
    rel = f"{layout.dataset_dir(name)}/{raw_path}"
    hint = f"if Git tracks it, untrack it first ('git rm -r --cached {rel}'), then"
    _dvc(root, f"dvc add {rel}", hint, "add", str(path))
    set_raw_input(root, name, raw_path)
    return raw_path


def _import(root: Path, name: str, url: str, to: str | None) -> str:
    """``dvc import-url URL`` into the dataset folder, then make it the raw input."""
    raw_path = check_raw_path(name, to or "raw")
    out = root / layout.dataset_dir(name) / raw_path
    command = f"dvc import-url {url} {layout.dataset_dir(name)}/{raw_path}"
    _dvc(root, command, "fix what DVC says and", "imp_url", url, str(out))
    set_raw_input(root, name, raw_path)
    return raw_path


def _dvc(root: Path, command: str, hint: str, method: str, *args: str) -> None:
    """Run one DVC API call on the registry, its failure a :class:`DvcError` naming ``command``."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            getattr(repo, method)(*args)
    except DvcException as e:
        raise DvcError(
            f"'{command}' failed: {first_line(e).rstrip('.')}; {hint} run 'registry datasets "
            "raw' again"
        ) from e
