"""The one way the registry writes files and folders that others may read: atomically.

A reader sees either the old content or the new, never a partial file: bytes go to a temporary
sibling that is flushed and then renamed over the target with ``os.replace``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "replace_dir"]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically, creating parent folders.

    Args:
        path: The file to write.
        data: Its new bytes.
        durable: Flush the bytes to the disk (``fsync``) before the rename, so that they also
            survive the machine's crash. A file rewritten many times a second whose last
            version is written durably may skip it for the writes between: readers still
            never see a partial file, only a crash of the machine could lose the latest
            rewrites (a training run's pending record per epoch: an ``fsync`` was ~1-9 ms).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o777  # keep the mode of the file being replaced
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask  # what open() would have given a new file
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)  # mkstemp makes 0600 files, which would hide cards from others
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, *, durable: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (``durable``: see
    :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


def replace_dir(staging: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Move the finished folder ``staging`` to ``target``, replacing what was there.

    The old folder is renamed aside first and removed last, so ``target`` is missing only for
    the instant between two renames and never holds a mix of old and new files.
    """
    import shutil

    staging, target = Path(staging), Path(target)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
