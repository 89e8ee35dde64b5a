"""A dataset's raw input: tracked or imported into its folder, and made its build's dependency.

Raw data lives in the dataset folder, so that ``build@NAME`` depends on it and ``dvc.lock``
records its hash: a folder or file already there is tracked with ``dvc add``; an export elsewhere
(``gs://...``, ``s3://...``, ``https://...``, or a folder outside the repository) is imported
with ``dvc import-url``, which also records where it came from (``dvc update`` fetches it again;
importing again, from the same URL or a newer export, replaces it). Either way ``raw_path`` and
the stage's dependency are set by :func:`registry.build.dvcfiles.set_raw_input`.

A ``gs://`` import reaches a Cloud Storage emulator or a private endpoint through
``STORAGE_EMULATOR_HOST`` (gcsfs reads it, as every Google client does); what DVC needs for it
per call is in :func:`_import_options`, and no credential is ever written to a file.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
            file outside the repository, or a URL (both imported with ``dvc import-url``; an
            import over a previous one replaces it, which is left as it was if this one fails).
        to: Where an import goes, relative to the dataset folder (default ``raw``).

    Returns:
        The raw input's path relative to the dataset folder, e.g. ``raw``.

    Raises:
        SourceNotFoundError: If a local ``source`` does not exist.
        RawInputError: If a local ``source`` is in the repository but not in the dataset
            folder, ``to`` leads out of it, or nothing is at the URL.
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
    """``dvc import-url URL`` into the dataset folder (again: replacing the last import), then
    make it the raw input."""
    from dvc.dependency.base import DependencyDoesNotExistError

    raw_path = check_raw_path(name, to or "raw")
    out = root / layout.dataset_dir(name) / raw_path
    command = f"dvc import-url {url} {layout.dataset_dir(name)}/{raw_path}"
    try:
        with _replacing(out) as again:
            _dvc(root, command, "fix what DVC says and", "imp_url", url, str(out), force=again,
                 fs_config=_import_options(url))
    except DvcError as e:
        if not isinstance(e.__cause__, DependencyDoesNotExistError):  # DVC's own error
            raise
        raise RawInputError(name, url, "does not exist (nothing at that URL: check the "
                            "bucket and the path)") from e
    set_raw_input(root, name, raw_path)
    return raw_path


@contextmanager
def _replacing(out: Path) -> Iterator[bool]:
    """Move a previous import at ``out`` aside while importing again (yield whether there was
    one); put it back on failure.

    (DVC would import into the existing folder, not over it; its ``.dvc`` file is rewritten only
    when the new import succeeded.)
    """
    if not (out.with_name(f"{out.name}.dvc").is_file() and out.exists()):
        yield False
        return
    previous = out.with_name(f".{out.name}.previous")
    _remove(previous)
    out.rename(previous)
    try:
        yield True
    except BaseException:
        _remove(out)
        previous.rename(out)
        raise
    _remove(previous)


def _remove(path: Path) -> None:
    """Delete a file or folder, if there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _import_options(url: str) -> dict[str, Any] | None:
    """DVC's filesystem options for importing ``url`` (``--fs-config``), kept in its ``.dvc`` file.

    ``STORAGE_EMULATOR_HOST`` sends gcsfs to an emulator, which takes no credentials: the import
    is anonymous, as google-cloud-storage is there, so that no token of the user's goes to it and
    no sign-in is tried. Otherwise gcsfs finds credentials as usual and nothing is written.
    """
    if url.startswith("gs://") and os.environ.get("STORAGE_EMULATOR_HOST"):
        return {"allow_anonymous_login": True}
    return None


def _dvc(root: Path, command: str, hint: str, method: str, *args: str, **kwargs: Any) -> None:
    """Run one DVC API call on the registry, its failure a :class:`DvcError` naming ``command``."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    from registry.cloud.credentials import metadata_probe_off

    try:
        with metadata_probe_off(), Repo(str(root)) as repo:
            getattr(repo, method)(*args, **kwargs)
    except DvcException as e:
        raise DvcError(
            f"'{command}' failed: {first_line(e).rstrip('.')}; {hint} run 'registry datasets "
            "raw' again"
        ) from e
