"""Released artifacts' bytes, read from the registry's DVC remote into a local content cache.

A release records its artifact's content hash in ``dvc.lock`` (:mod:`registry.repo.lock`); a
directory artifact's hash names a ``.dir`` object, the JSON list of its files and their md5s.
:class:`ContentCache` keeps one verified copy of each object, fetched from the registry's DVC
remote (:class:`~registry.storage.remote.RemoteStore`), and assembles snapshots from them.

Cache layout, under the cache root (``Settings.cache_dir``)::

    objects/md5/ab/cdef...      one read-only file per content hash (DVC's layout), shared by every
                                version, artifact and project that uses this cache
    snapshots/<md5>/...         an artifact's folder tree (<md5>: its .dir hash without ".dir"),
                                files hard-linked to their objects (copied where links fail)
    manifests/<md5>.json        each snapshot file's md5, size, mtime_ns and inode when it was made
    locks/                      one lock file per object hash and per snapshot (``filelock``)
    tmp/                        downloads and snapshots being assembled (renamed into place when
                                done)

Guarantees:

- Nothing partial is ever visible: an object is downloaded to ``tmp/``, verified (its md5; on
  Cloud Storage, the MD5 the bucket stored for it and a CRC32C of the bytes received, see
  :class:`_Digest`), then ``os.replace``-d into ``objects/``; a snapshot is assembled in
  ``tmp/`` and renamed into ``snapshots/`` as the very last step (after its manifest is written).
- Concurrent loaders (threads or processes) download each object once: a per-hash lock is taken
  and the object looked for again before downloading it; a per-snapshot lock serialises assembly.
  From a local folder remote, objects are copied under the snapshot's lock alone (one lock file
  per object cost as much as copying a small file, see :meth:`ContentCache._copy_in`): two
  processes assembling different snapshots may then each copy an object they share, and the
  second's verified copy replaces the first's by one rename.
- A warm :meth:`ContentCache.snapshot` reads one manifest, stats each file and re-hashes the
  small metadata files (:func:`is_metadata`: a flipped byte there would load wrong class names,
  while TFDS checks each shard record's CRC32C itself), no more (and does not import DVC). A file
  whose size, mtime or inode changed, or a metadata file whose bytes are wrong, is re-hashed and
  re-fetched. ``verify=True`` re-hashes every file.
- Every temporary in ``tmp/`` is named after the object or snapshot whose lock its writer holds,
  so :meth:`ContentCache.sweep` (before each download, and in :meth:`ContentCache.gc`) deletes
  a killed process's leftovers (e.g. a download's ``.part``) as soon as that lock is free.
- A verified object's mtime carries a stamp derived from its hash in the sub-second digits (see
  :func:`_stamp`). Writing to the file resets its mtime and so breaks the stamp, which lets a new
  snapshot reuse an object that another snapshot already holds with one ``stat``, not a re-hash,
  and still notice one that was written to through another snapshot's hard link.

Shared caches (``Settings.shared_cache_dir``, e.g. a lab's NFS folder) are read, never written:

- A snapshot the user's cache lacks is served from a shared cache's ``snapshots/<md5>/`` as it is
  (no copy) when its manifest is there and every file still has its size and either its recorded
  stat or a valid stamp (``verify=True``: its listing and every file are re-hashed instead).
- Otherwise each object missing from the user's cache is looked for in the shared caches, in
  order, before the remote: at ``objects/md5/ab/cdef...`` (a registry cache) and at
  ``files/md5/ab/cdef...`` (a DVC cache, ``dvc cache dir``). A stamped, read-only one is
  hard-linked into the user's ``objects/``; any other is copied and md5-verified on the way (and
  stamped there). A shared object with the wrong bytes is skipped (the remote supplies it) and
  left as it is.
- No lock, temporary file, stamp, manifest or repair is ever made in a shared cache.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial, wraps
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from registry.atomic import atomic_write_text, replace_dir
from registry.errors import (
    CorruptArtifactError,
    DiskFullError,
    RegistryError,
    RemoteError,
    first_line,
)
from registry.storage.hashes import CHUNK, MD5_RE, content_digest, hash_file
from registry.storage.remote import ProgressCallback, RemoteObject, RemoteStore

__all__ = [
    "CacheTarget",
    "ContentCache",
    "FetchResult",
    "GcReport",
    "PurgeReport",
    "VerifyReport",
    "is_metadata",
    "remove_cached_objects",
]

MANIFEST_FORMAT = 1

# Temporaries that no lock tells apart (none of the registry's own names) are swept only when
# older than this: a process that died left them; newer ones may be in use.
_STALE_TMP_SECONDS = 24 * 3600
_SECOND_NS = 1_000_000_000

# A TFDS data shard: <name>-<split>.<format>-NNNNN-of-NNNNN. Every other file of a prepared folder
# is metadata (dataset_info.json, features.json, *.labels.txt, image.image.json, ...).
_SHARD_RE = re.compile(r"\.(tfrecord|array_record|riegeli|parquet)-\d{5}-of-\d{5}$")
# Metadata is re-hashed on every load; a file above this size is left to the stat check (and
# ``verify``) like a shard, so that the warm load stays a few stats and a few tiny reads.
METADATA_MAX_BYTES = 1 << 20

# A temporary in tmp/ and the lock its writer holds: objects (and their downloads' .part files)
# under the object's lock, snapshot folders under the snapshot's.
_TMP_OBJECT_RE = re.compile(r"^\.?(?:object|shared)-([0-9a-f]{32}(?:\.dir)?)-")
_TMP_SNAPSHOT_RE = re.compile(r"^snapshot-([0-9a-f]{32})-")


def is_metadata(relpath: str, size: int = -1) -> bool:
    """Whether a snapshot file is small metadata, re-hashed on every load (not a data shard).

    Metadata decides how every example is read (class names, feature specs, split sizes), and a
    flipped byte in it loads silently wrong data, while TFDS checks each shard record's CRC32C
    as it reads it. So every file that is not a shard by its TFDS name, and holds at most
    :data:`METADATA_MAX_BYTES` (``size``; -1 when unknown), is re-hashed whenever it is served.

    Example:
        >>> is_metadata("mnist/3.0.1/label.labels.txt", 120)
        True
        >>> is_metadata("mnist-train.tfrecord-00000-of-00001", 120)
        False
    """
    return size <= METADATA_MAX_BYTES and not _SHARD_RE.search(relpath)


@dataclass(frozen=True)
class FetchResult:
    """What :meth:`ContentCache.snapshot` produced.

    Attributes:
        path: The artifact's folder in the cache (read-only files; do not write to them). It is
            in a shared cache when the whole snapshot was found there.
        files: How many files the artifact has.
        fetched_files: How many of them this call downloaded from the remote (0 when all were
            cached).
        fetched_bytes: How many bytes this call downloaded from the remote.
        shared_files: How many files this call took from a shared cache (every file when
            ``path`` is a shared cache's snapshot).
        shared_bytes: How many bytes those files hold.
        shared_cache: The shared cache they came from (the first, if several did).
    """

    path: Path
    files: int
    fetched_files: int
    fetched_bytes: int
    shared_files: int = 0
    shared_bytes: int = 0
    shared_cache: Path | None = None


@dataclass(frozen=True)
class CacheTarget:
    """An artifact for :meth:`ContentCache.verify`: its hash, its remote, what to call it.

    Attributes:
        md5: Its DVC hash (``<md5>.dir`` for a folder).
        remote: The DVC remote that repairs it.
        label: What it is, for messages (e.g. ``image_classification/digits:1.0.0``).
    """

    md5: str
    remote: RemoteStore
    label: str


@dataclass
class VerifyReport:
    """What :meth:`ContentCache.verify` found.

    Attributes:
        checked: Files and objects re-hashed.
        repaired: Corrupt ones replaced by good copies (from a shared cache or the remote).
        removed: Corrupt objects that no artifact asked about needs, deleted (``all_objects``).
        unrepairable: What stays corrupt or missing, one line each, with why.
    """

    checked: int = 0
    repaired: int = 0
    removed: int = 0
    unrepairable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing stays bad."""
        return not self.unrepairable


@dataclass
class GcReport:
    """What :meth:`ContentCache.gc` removed (or, with ``dry_run``, would remove).

    Attributes:
        snapshots: Artifact folders (``snapshots/``) no kept artifact is.
        objects: Objects (``objects/``) no kept artifact holds, and named copies (``files/``).
        leftovers: Temporaries of killed processes (``tmp/``).
        freed_bytes: Disk space freed (a hard-linked file counts once, when its last link goes).
        held: Entries kept because another process holds their lock.
        dry_run: Whether nothing was removed.
    """

    snapshots: int = 0
    objects: int = 0
    leftovers: int = 0
    freed_bytes: int = 0
    held: int = 0
    dry_run: bool = False


@dataclass
class PurgeReport:
    """What :meth:`ContentCache.purge` freed.

    Attributes:
        freed_bytes: Bytes deleted from this cache and the writable shared caches.
        read_only: Shared caches that hold some of the objects but that this user cannot write.
    """

    freed_bytes: int = 0
    read_only: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Got:
    """An object put into the user's cache: its size, and the shared cache it came from (``None``:
    downloaded from the remote)."""

    size: int
    shared: Path | None = None


# Returned by ContentCache._obtain(download=False) when no shared cache holds a good copy.
_NOT_SHARED = _Got(-1)


@dataclass
class _Tally:
    """What one call took from the remote and from shared caches."""

    fetched_files: int = 0
    fetched_bytes: int = 0
    shared_files: int = 0
    shared_bytes: int = 0
    shared_cache: Path | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, got: _Got | None) -> None:
        """Count one object (``None``: it was in the user's cache already)."""
        if got is None or got is _NOT_SHARED:
            return
        with self._lock:
            if got.shared is None:
                self.fetched_files += 1
                self.fetched_bytes += got.size
            else:
                self.shared_files += 1
                self.shared_bytes += got.size
                self.shared_cache = self.shared_cache or got.shared

    def result(self, path: Path, files: int) -> FetchResult:
        """The :class:`FetchResult` of a snapshot at ``path`` with ``files`` files."""
        return FetchResult(
            path,
            files,
            self.fetched_files,
            self.fetched_bytes,
            self.shared_files,
            self.shared_bytes,
            self.shared_cache,
        )


class _Transfer:
    """The objects one :meth:`ContentCache._ensure_objects` call brings in, one per worker
    thread, and the progress they make together (the counts under one lock).

    Attributes:
        done: Bytes brought in so far (the first number ``progress`` gets).
        total: Bytes expected in all (the second): an object counts at the size the remote
            stated, or at the size a shared cache showed until it has arrived, or (downloaded
            without a stat) at the mean size of those sized so far until its own size arrives.
    """

    def __init__(
        self,
        cache: ContentCache,
        remote: RemoteStore,
        labels: dict[str, str],
        shared: dict[str, int],
        total: int,
        progress: ProgressCallback | None,
        rehash: set[str],
        tally: _Tally,
    ) -> None:
        self.cache = cache
        self.remote = remote
        self.labels = labels  # md5 -> what it is, for error messages
        self.shared = shared  # md5 -> its size in the shared cache that seems to hold it
        self.progress = progress
        self.rehash = rehash  # objects whose shared copies are re-hashed even when stamped
        self.tally = tally
        # A folder under the snapshot lock the caller holds, for copies from a local remote
        # that take no object lock (see ContentCache._copy_in); None: every object is locked.
        self.scratch: Path | None = None
        self.done = 0
        self.total = total
        self.known = total  # bytes expected of the objects whose size was known beforehand
        self.unsized = 0  # objects downloaded without a stat whose size is not known yet
        self.sized = self.sized_count = 0  # the bytes and count of those whose size arrived
        self._lock = threading.Lock()

    def report(self, n: int) -> None:
        """Count ``n`` more bytes in, and tell ``progress`` (one call at a time)."""
        with self._lock:
            self.done += n
            if self.progress is not None:
                self.progress(self.done, self.total)

    def recount(self, md5: str, size: int) -> None:
        """Expect ``size`` bytes for ``md5``, not the size its shared copy showed."""
        with self._lock:
            self.known += size - self.shared[md5]  # (kept by expect's totals too)
            self.total += size - self.shared[md5]

    def from_shared(self, md5: str) -> None:
        """Bring in ``md5`` from a shared cache, or from the remote if no shared copy is good."""
        label = self.labels[md5]
        rehash = md5 in self.rehash
        got = self.cache._obtain(md5, self.remote, label=label, rehash=rehash, download=False)
        if got is _NOT_SHARED:
            # The shared copy was bad or went away: the remote's bytes take its share.
            stat = self.remote.stat(md5, label=label)
            self.recount(md5, stat.size)
            self.from_remote(md5, stat)
            return
        if got is None:
            self.report(self.shared[md5])  # another process got it first
        else:
            self.recount(md5, got.size)  # (another shared cache's copy, if the first was bad)
            self.report(got.size)
        self.tally.add(got)

    def from_remote(self, md5: str, stat: RemoteObject | None) -> None:
        """Download ``md5`` (``stat``: what the remote says of it; ``None`` where the download
        itself says its size, see :meth:`expect`)."""
        if self.scratch is not None and stat is not None:
            got: _Got | None = self.cache._copy_in(
                md5, self.remote, self.scratch, stat, self.report, self.labels[md5]
            )
        else:
            got = self.cache._obtain(
                md5,
                self.remote,
                on_bytes=self.report,
                on_size=self.expect if stat is None else None,
                label=self.labels[md5],
                shared=False,
                stat=stat,
            )
        if got is None and stat is not None:
            self.report(stat.size)  # another process got it first; keep the bar honest
        elif got is None:
            self.expect(None)  # another process got it first: nothing comes from here
        self.tally.add(got)

    def expect(self, size: int | None) -> None:
        """Count ``size`` bytes for one of the objects downloaded without a stat, whose size
        its download told (see ``RemoteStore.sized_by_download``); ``None``: none will come.

        Until every size is known, ``total`` counts each object still unsized at the mean size
        of those sized so far: the bar's total is then right for equal shards from the first
        one on, and exact once the last size arrives (``done`` never passes it: an object's
        bytes arrive after its size).
        """
        with self._lock:
            self.unsized -= 1
            if size is not None:
                self.sized += size
                self.sized_count += 1
            mean = self.sized // self.sized_count if self.sized_count else 0
            self.total = self.known + self.sized + self.unsized * mean


@dataclass(frozen=True)
class _Entry:
    """One file of a snapshot, and its stat when the manifest was written (-1: unknown)."""

    relpath: str
    md5: str
    size: int = -1
    mtime_ns: int = -1
    ino: int = -1


def _stamp_ns(md5: str) -> int:
    """The sub-second part of a verified object's mtime: whole microseconds, from its hash."""
    return (int(md5[:8], 16) % 1_000_000) * 1000


def _is_stamped(st: os.stat_result, md5: str) -> bool:
    return st.st_mtime_ns % _SECOND_NS == _stamp_ns(md5)


def _stamp(path: Path, md5: str) -> None:
    """Mark ``path`` as verified: keep its mtime's seconds, set the rest from its hash.

    Any later write sets the mtime to the clock and so (but for a one in a million chance) breaks
    the stamp. Microseconds, not nanoseconds, so that filesystems with microsecond times keep it;
    where the filesystem cannot (1 s or 2 s times), objects are simply re-hashed when reused.
    """
    try:
        st = os.stat(path)
        if _is_stamped(st, md5):
            return  # nothing to write (its inode may be a shared cache's: leave it untouched)
        mtime = st.st_mtime_ns - st.st_mtime_ns % _SECOND_NS + _stamp_ns(md5)
        os.utime(path, ns=(st.st_atime_ns, mtime))
    except OSError:
        pass  # e.g. someone else's file in a shared cache: it is only re-hashed more often


def _check_relpath(relpath: Any, dir_md5: str) -> str:
    """Refuse a listing path that could escape the snapshot folder."""
    parts = PurePosixPath(relpath).parts if isinstance(relpath, str) else ()
    if (
        not parts
        or PurePosixPath(relpath).is_absolute()
        or any(p in ("", ".", "..") for p in parts)
        or "\\" in relpath
    ):
        raise CorruptArtifactError(
            f"the file list of artifact {dir_md5} holds an unsafe path {relpath!r}; the "
            "release is broken: rebuild and release a new version"
        )
    return str(relpath)


def _parse_listing(data: bytes, dir_md5: str) -> list[_Entry]:
    """The files of a DVC ``.dir`` listing, sorted by path."""
    try:
        items = json.loads(data)
    except ValueError as e:
        raise CorruptArtifactError(
            f"the file list of artifact {dir_md5} is not JSON ({e}); delete it from the cache "
            "and try again"
        ) from e
    entries = []
    for item in items if isinstance(items, list) else [items]:
        md5 = item.get("md5") if isinstance(item, dict) else None
        if not isinstance(md5, str) or not re.match(r"^[0-9a-f]{32}$", md5):
            raise CorruptArtifactError(
                f"the file list of artifact {dir_md5} has an unexpected entry {item!r}; it was "
                "written by a DVC this registry does not know"
            )
        # (md5 is a str only if item is a dict.)
        entries.append(_Entry(_check_relpath(item.get("relpath"), dir_md5), md5))
    return sorted(entries, key=lambda e: e.relpath)


# A write that fails for want of room: a full disk, a quota, a file size limit (ulimit -f).
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_F = TypeVar("_F", bound=Callable[..., Any])


def _needs_room(method: _F) -> _F:
    """Report a write that found no room under the cache as :class:`DiskFullError`.

    What was cached before stays intact: objects and snapshots appear only by an atomic rename
    of a whole file or folder, so a failed write leaves at most a temporary that the next sweep
    removes.
    """

    @wraps(method)
    def checked(self: ContentCache, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except OSError as e:
            if e.errno not in _NO_ROOM or isinstance(e, RegistryError):
                raise
            raise DiskFullError(
                f"no room left for the registry cache in {self.root} ({e.strerror}): free space "
                "there ('registry cache gc' removes what no tag uses) or set REGISTRY_CACHE_DIR "
                "to a disk with room, then run it again"
            ) from e

    return checked  # type: ignore[return-value]


class ContentCache:
    """A local content-addressed cache of DVC objects and the artifact folders made from them.

    Safe to share between threads, processes and projects; see the module docstring for the
    layout and guarantees.

    Args:
        root: The cache folder (``Settings.cache_dir``); created on first write.
        shared: Read-only caches to look in, in order, before the remote: registry caches
            (``objects/``, ``snapshots/``, ``manifests/``) or DVC caches (``files/md5/``).
            Nothing is ever written to them; one that is ``root`` itself is left out.

    Example:
        >>> cache = ContentCache(load_settings().cache_dir)  # doctest: +SKIP
        >>> result = cache.snapshot(dir_md5, RemoteStore.open(repo, commit))  # doctest: +SKIP
        >>> result.path  # doctest: +SKIP
        PosixPath('/home/me/.cache/lab-registry/snapshots/1efa88afe031ce8f3761f84b7775d39a')
        >>> lab = ContentCache(Path("~/.cache/lab-registry").expanduser(),
        ...                    shared=[Path("/nfs/lab-cache")])  # doctest: +SKIP
    """

    def __init__(self, root: Path, shared: Iterable[Path] = ()) -> None:
        self.root = Path(root)
        own = os.path.realpath(self.root)
        roots: list[Path] = []
        for folder in map(Path, shared):
            # The cache that fills a shared folder is that folder: it is the user's own there.
            if os.path.realpath(folder) != own and folder not in roots:
                roots.append(folder)
        self.shared: tuple[Path, ...] = tuple(roots)

    # -- paths ---------------------------------------------------------------------------------

    def object_path(self, md5: str) -> Path:
        """Where object ``md5`` is (or would be) cached: ``objects/md5/ab/cdef...``."""
        return self.root / "objects" / "md5" / md5[:2] / md5[2:]

    def snapshot_path(self, dir_md5: str) -> Path:
        """Where the folder of artifact ``dir_md5`` is (or would be): ``snapshots/<md5>``."""
        return self.root / "snapshots" / _dir_key(dir_md5)

    def _manifest_path(self, key: str) -> Path:
        return self.root / "manifests" / f"{key}.json"

    def _tmp_dir(self) -> Path:
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp

    @contextmanager
    def _locked(self, *parts: str) -> Iterator[None]:
        """Hold the inter-process lock ``locks/<parts>.lock``."""
        from filelock import FileLock

        *folders, name = parts
        path = self.root.joinpath("locks", *folders, f"{name}.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path)):
            yield

    # -- objects -------------------------------------------------------------------------------

    def _stamped(self, md5: str) -> bool:
        """Whether object ``md5`` is cached and unchanged since verified (one ``stat``)."""
        try:
            return _is_stamped(os.stat(self.object_path(md5)), md5)
        except OSError:
            return False

    def _object_ok(self, md5: str, rehash: bool = False) -> bool:
        """Whether a good copy of ``md5`` is cached; a bad one is deleted (so it is re-fetched).

        A stamped object is trusted without reading it, unless ``rehash``.
        """
        path = self.object_path(md5)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        if _is_stamped(st, md5) and not rehash:
            return True
        # Changed since it was verified (or never stamped, on a coarse-time filesystem): re-hash.
        if hash_file(path) == content_digest(md5):
            _stamp(path, md5)
            return True
        path.unlink(missing_ok=True)
        return False

    def _obtain(
        self,
        md5: str,
        remote: RemoteStore,
        *,
        on_bytes: Callable[[int], None] | None = None,
        progress: ProgressCallback | None = None,
        label: str | None = None,
        rehash: bool = False,
        shared: bool = True,
        download: bool = True,
        stat: RemoteObject | None = None,
        on_size: Callable[[int], None] | None = None,
    ) -> _Got | None:
        """Put ``md5`` into ``objects/`` unless it is there: from a shared cache that holds a
        good copy, else downloaded from the remote.

        Args:
            md5: The object's hash.
            remote: Where to download it from.
            on_bytes: Called with each downloaded chunk's size (not for shared copies).
            progress: Called with ``(done bytes, object size)`` while downloading.
            label: What the object is, for error messages.
            rehash: Re-hash a stamped shared copy too before trusting it.
            shared: Look in the shared caches.
            download: Download it if no shared cache has it; if ``False``, return
                ``_NOT_SHARED`` instead.
            stat: What :meth:`RemoteStore.stat` says of it, if known (saves a request).
            on_size: Called with its size before its bytes, when it is downloaded.

        Returns:
            Its size and source, or ``None`` if it was cached already (possibly put there
            meanwhile by another thread or process).
        """
        with self._locked("md5", md5[:2], md5[2:]):
            # Looked for again under the lock: whoever held it may have just fetched it.
            if self._object_ok(md5):
                return None
            if shared:
                got = self._from_shared(md5, rehash)
                if got is not None:
                    return got
            if not download:
                return _NOT_SHARED
            tmp = self._tmp_dir() / f"object-{md5}-{uuid.uuid4().hex}"
            try:
                if remote.local_path(md5) is not None:
                    size = _copy_local(md5, remote, tmp, stat, on_bytes, progress, label)
                else:
                    remote.fetch(
                        md5,
                        tmp,
                        stat=stat,
                        on_size=on_size,
                        on_bytes=on_bytes,
                        progress=progress,
                        label=label,
                    )
                    os.chmod(tmp, 0o444)  # shared by every snapshot through hard links
                    _stamp(tmp, md5)
                    size = os.stat(tmp).st_size
                _rename_into(tmp, self.object_path(md5))
            finally:
                tmp.unlink(missing_ok=True)
            return _Got(size)

    def _shared_candidates(self, md5: str) -> Iterator[tuple[Path, Path, os.stat_result]]:
        """Each shared cache's file for object ``md5``: (cache, file, its stat), in order."""
        for root in self.shared:
            for layout in ("objects", "files"):  # the registry's layout, then DVC's
                candidate = root / layout / "md5" / md5[:2] / md5[2:]
                try:
                    st = os.stat(candidate)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    yield root, candidate, st

    def _from_shared(self, md5: str, rehash: bool) -> _Got | None:
        """Link or copy a good shared copy of ``md5`` into ``objects/`` (the object's lock held).

        A stamped, read-only copy is hard-linked, trusted as it is (or with ``rehash``, once
        the link's bytes hash right); any other is copied while its md5 is computed, and used only
        if it matches. Nothing in the shared cache is changed, whatever it holds.
        """
        dest = self.object_path(md5)
        for root, candidate, st in self._shared_candidates(md5):
            tmp = self._tmp_dir() / f"shared-{md5}-{uuid.uuid4().hex}"
            try:
                linkable = _is_stamped(st, md5) and not st.st_mode & 0o222
                if linkable and _try_link(candidate, tmp):
                    linked = os.stat(tmp)
                    if (
                        _is_stamped(linked, md5)
                        and linked.st_size == st.st_size
                        and (not rehash or hash_file(tmp) == content_digest(md5))
                    ):
                        _rename_into(tmp, dest)
                        return _Got(linked.st_size, root)
                    tmp.unlink()  # changed since the stat, or its bytes are wrong: copy-check
                if _copy_verified(candidate, tmp, md5):
                    os.chmod(tmp, 0o444)
                    _stamp(tmp, md5)  # the user's own copy: its stamp is the user's to write
                    size = os.stat(tmp).st_size
                    _rename_into(tmp, dest)
                    return _Got(size, root)
            except OSError:
                continue  # unreadable or gone (an NFS hiccup): the next source supplies it
            finally:
                tmp.unlink(missing_ok=True)
        return None

    @_needs_room
    def ensure_object(
        self,
        md5: str,
        remote: RemoteStore,
        *,
        label: str | None = None,
        verify: bool = False,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """Return the cached, verified object ``md5``, taking it from a shared cache or
        downloading it first if needed.

        For single-file artifacts (a plain md5 in ``dvc.lock``) and ``.dir`` listings. The file is
        shared with every snapshot that holds the same bytes: read it, never write to it.

        Args:
            md5: The object's hash.
            remote: Where to fetch it from.
            label: What the object is, for error messages.
            verify: Re-hash a cached copy instead of trusting its verification stamp.
            progress: Called with ``(done bytes, total bytes)`` while downloading (not called
                when the object is cached or taken from a shared cache).

        Returns:
            The object's path in the cache.

        Raises:
            RemoteError: If the remote cannot be reached or does not hold the object.
            CorruptArtifactError: If the remote's bytes do not match ``md5``.
        """
        if not MD5_RE.match(md5):
            raise ValueError(f"not an md5 hash: {md5!r}")
        if not self._object_ok(md5, rehash=verify):
            self.sweep()
            self._obtain(md5, remote, label=label, rehash=verify, progress=progress)
        return self.object_path(md5)

    @_needs_room
    def named_object(
        self,
        md5: str,
        filename: str,
        remote: RemoteStore,
        *,
        progress: ProgressCallback | None = None,
    ) -> Path:
        """The cached object ``md5`` under its own file name, for readers that need one.

        Keras, for one, picks the format from the extension (``model.keras``): the object is
        hard-linked at ``files/<md5>/<filename>``, fetched and verified first if needed
        (``progress`` as in :meth:`ensure_object`).

        Raises:
            RemoteError, CorruptArtifactError: As :meth:`ensure_object`.
        """
        if "/" in filename or filename in ("", ".", ".."):
            raise ValueError(f"not a file name: {filename!r}")
        obj = self.ensure_object(md5, remote, label=filename, progress=progress)
        named = self.root / "files" / content_digest(md5) / filename
        if named.exists() and _same_inode(os.stat(obj), named):
            return named
        named.parent.mkdir(parents=True, exist_ok=True)
        tmp = named.with_name(f".{filename}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        _link_or_copy(obj, tmp)
        os.replace(tmp, named)  # a stale or corrupted name is replaced in one step
        return named

    def _listing(self, dir_md5: str, remote: RemoteStore, verify: bool = False) -> list[_Entry]:
        label = f"the file list of artifact {dir_md5}"
        path = self.ensure_object(dir_md5, remote, label=label, verify=verify)
        return _parse_listing(path.read_bytes(), dir_md5)

    def _ensure_objects(
        self,
        entries: Sequence[_Entry],
        remote: RemoteStore,
        dir_md5: str,
        jobs: int | None,
        progress: ProgressCallback | None,
        verify: bool = False,
        tally: _Tally | None = None,
    ) -> _Tally:
        """Make sure every entry's object is cached: taken from a shared cache where one holds
        it, the others downloaded, in parallel. The caller holds the lock of snapshot
        ``dir_md5`` (copies from a local remote are made under it, see :meth:`_copy_in`).

        Returns:
            ``tally`` (or a new one), counting what came from the remote and the shared caches.
        """
        tally = tally if tally is not None else _Tally()
        labels: dict[str, str] = {}
        for entry in entries:
            labels.setdefault(entry.md5, f"file {entry.relpath!r} of artifact {dir_md5}")
        # Metadata is re-hashed wherever it comes from: a stamp does not see a flipped byte.
        rehash = {e.md5 for e in entries if verify or is_metadata(e.relpath, e.size)}
        missing = self._missing_objects(list(labels), rehash)
        if not missing:
            return tally
        self.sweep()  # what killed downloads left, before this one adds its own
        # What a shared cache seems to hold (one stat each) is not asked of the remote, so a
        # load that the shared caches can serve never touches the remote.
        shared = self._shared_sizes(missing)
        remote_only = [md5 for md5 in missing if md5 not in shared]
        local = bool(remote_only) and remote.local_path(remote_only[0]) is not None
        workers = jobs or _default_jobs(remote, local, remote_only)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="registry-fetch") as pool:
            stats: list[RemoteObject | None] = [None] * len(remote_only)
            # Sizes first: the progress total, and a missing object fails before any download
            # (on a local remote one stat each, cheaper than a thread's hand-off). Not on Cloud
            # Storage, where each download's own response says the object's size and
            # checksums: a metadata request before it would only double the requests.
            # (Nothing asks about the remote when the shared caches hold everything.)
            if remote_only and not remote.sized_by_download:
                sizes = [partial(remote.stat, m, label=labels[m]) for m in remote_only]
                stats = [size() for size in sizes] if local else _run_all(pool, sizes)
            total = sum(stat.size for stat in stats if stat is not None) + sum(shared.values())
            transfer = _Transfer(self, remote, labels, shared, total, progress, rehash, tally)
            transfer.unsized = stats.count(None)
            from_remote = zip(remote_only, stats, strict=True)
            with contextlib.ExitStack() as scratch:
                if local:
                    transfer.scratch = Path(scratch.enter_context(tempfile.TemporaryDirectory(
                        prefix=f"snapshot-{_dir_key(dir_md5)}-", dir=self._tmp_dir()
                    )))
                _run_queued(
                    pool,
                    workers,
                    [partial(transfer.from_shared, m) for m in shared]
                    + [partial(transfer.from_remote, m, s) for m, s in from_remote],
                )
        return tally

    def _copy_in(
        self,
        md5: str,
        remote: RemoteStore,
        scratch: Path,
        stat: RemoteObject,
        on_bytes: Callable[[int], None],
        label: str,
    ) -> _Got:
        """Copy ``md5`` from a local remote into ``objects/``, verified, by way of ``scratch``
        (a ``tmp/snapshot-<key>-*`` folder whose snapshot lock the caller holds).

        No object lock is taken: its lock file is an inode created per object, which costs as
        much as copying a small file (``open`` with ``O_CREAT`` is most of a small file's
        time, for ``cp`` too; see docs/performance.md). What the lock
        gives is kept: the temporary is the snapshot lock's, so no sweep deletes it while it is
        written, and the object appears by one atomic rename of a verified, stamped file. What
        is given up is that two processes assembling different snapshots that share an object
        may each copy it (the second rename replaces the first copy with the same bytes); from
        a network remote the lock still makes every object come down once.
        """
        tmp = scratch / md5
        size = _copy_local(md5, remote, tmp, stat, on_bytes, None, label)
        _rename_into(tmp, self.object_path(md5))
        return _Got(size)

    def _missing_objects(self, md5s: Sequence[str], rehash: set[str]) -> list[str]:
        """The objects of ``md5s`` that are not cached (a bad copy is deleted on the way); those
        in ``rehash`` are re-hashed even when stamped."""
        # One stat each: a missing object is missing (a cold pull stops here), a stamped one is
        # there unless it must be re-hashed; those left are re-hashed, in parallel.
        missing, unsure = [], []
        for md5 in md5s:
            try:
                st = os.stat(self.object_path(md5))
            except FileNotFoundError:
                missing.append(md5)
                continue
            if md5 in rehash or not _is_stamped(st, md5):
                unsure.append(md5)
        checks = _map_threads(lambda md5: self._object_ok(md5, rehash=md5 in rehash), unsure)
        return missing + [md5 for md5, ok in zip(unsure, checks, strict=True) if not ok]

    def _shared_sizes(self, md5s: Sequence[str]) -> dict[str, int]:
        """The size of each object of ``md5s`` that a shared cache seems to hold (one stat)."""
        sizes: dict[str, int] = {}
        for md5 in md5s:
            found = next(self._shared_candidates(md5), None)
            if found is not None:
                sizes[md5] = found[2].st_size
        return sizes

    # -- snapshots -----------------------------------------------------------------------------

    @_needs_room
    def cached(self, dir_md5: str, *, verify: bool = False) -> FetchResult | None:
        """Return the artifact ``dir_md5`` if its snapshot is cached and intact, else ``None``.

        The user's own snapshot, when there is one, decides (:meth:`snapshot` repairs it);
        without one, an intact snapshot in a shared cache is returned as it is. Never
        downloads, locks or repairs anything, and never imports DVC: one manifest read and one
        ``stat`` per file, or a re-hash of every file.

        Args:
            dir_md5: The artifact's hash from ``dvc.lock``, ending in ``.dir``.
            verify: Re-hash every file instead of comparing stats with the manifest.

        Returns:
            The folder (``fetched_files == 0``; ``shared_files == files`` for a shared cache's
            folder), or ``None`` if it is missing, or a file changed (stat) or is wrong
            (``verify``).

        Raises:
            ValueError: If ``dir_md5`` is not a ``.dir`` hash.
        """
        path = self.snapshot_path(dir_md5)
        entries = self._read_manifest(_dir_key(dir_md5))
        if entries is not None:
            if verify:
                intact = all(_map_threads(lambda e: _holds(path / e.relpath, e.md5), entries))
            else:
                intact = not _stale(path, entries) and _metadata_intact(path, entries)
            # Checked last: a manifest is written just before its folder appears.
            if intact and path.is_dir():
                return FetchResult(path, len(entries), 0, 0)
        if path.is_dir():
            return None  # the user's own, damaged: snapshot() repairs it
        return self._shared_snapshot(dir_md5, verify)

    def _shared_snapshot(self, dir_md5: str, verify: bool) -> FetchResult | None:
        """The first intact snapshot of ``dir_md5`` in a shared cache, used where it is.

        Intact: its manifest is there and each file has its recorded size and either its
        recorded mtime and inode or a valid stamp (which survives ``rsync -a`` and ``cp -a``).
        With ``verify``, the manifest must match the artifact's own listing (the ``.dir``
        object, from that shared cache), every file is re-hashed and no other file may be there.
        """
        key = _dir_key(dir_md5)
        for root in self.shared:
            path = root / "snapshots" / key
            entries = _load_manifest(root / "manifests" / f"{key}.json")
            if entries is None:
                continue
            if verify:
                listing = self._shared_listing(dir_md5)
                intact = (
                    listing is not None
                    and [(e.relpath, e.md5) for e in listing]
                    == sorted((e.relpath, e.md5) for e in entries)
                    and all(_map_threads(partial(_holds_in, path), entries))
                    and not _strays(path, entries)
                )
            else:
                intact = not _stale_shared(path, entries) and _metadata_intact(path, entries)
            if intact and path.is_dir():
                size = sum(max(e.size, 0) for e in entries)
                return FetchResult(path, len(entries), 0, 0, len(entries), size, root)
        return None

    def _shared_listing(self, dir_md5: str) -> list[_Entry] | None:
        """The files of artifact ``dir_md5`` from a verified ``.dir`` object in a shared cache."""
        for _, candidate, _ in self._shared_candidates(dir_md5):
            try:
                data = candidate.read_bytes()
            except OSError:
                continue
            if hashlib.md5(data, usedforsecurity=False).hexdigest() == content_digest(dir_md5):
                return _parse_listing(data, dir_md5)
        return None

    @_needs_room
    def snapshot(
        self,
        dir_md5: str,
        remote: RemoteStore,
        *,
        jobs: int | None = None,
        progress: ProgressCallback | None = None,
        verify: bool = False,
    ) -> FetchResult:
        """Return the artifact ``dir_md5`` as a local folder, fetching what is not cached.

        A cached snapshot costs one manifest read and one ``stat`` per file; a file whose stat
        changed is re-hashed and, if wrong, replaced by a good copy. Otherwise, missing objects
        are downloaded in parallel (each once, even across processes) and the folder assembled
        in ``tmp/`` and renamed into place, so a reader never sees a partial one.

        Without a snapshot of its own, the user's cache uses a shared cache's intact snapshot as
        it is (see :meth:`cached`); objects it must assemble or repair come from the shared
        caches where they hold them, and from the remote otherwise.

        Args:
            dir_md5: The artifact's hash from ``dvc.lock``, ending in ``.dir``.
            remote: The DVC remote to fetch from (untouched when everything is cached or in a
                shared cache).
            jobs: Parallel downloads; default: the remote's DVC ``jobs`` (4 x CPUs by default).
            progress: Called with (done bytes, total bytes) as objects arrive (downloaded, or
                taken from a shared cache), from worker threads (one call at a time); not called
                when nothing is missing.
            verify: Re-hash every file instead of trusting unchanged stats.

        Returns:
            The folder and what was downloaded or taken from a shared cache.

        Raises:
            ValueError: If ``dir_md5`` is not a ``.dir`` hash or ``jobs`` is not positive.
            RemoteError: If the remote cannot be reached or lacks a file (nothing was released).
            CorruptArtifactError: If the remote's bytes for a file do not match the release.
            ConfigError: If the registry's DVC remote config cannot be used.
        """
        key = _dir_key(dir_md5)
        if jobs is not None and jobs < 1:
            raise ValueError(f"jobs must be at least 1, not {jobs}")
        path = self.snapshot_path(dir_md5)
        if not verify:
            # The warm path: no lock, no DVC, only the manifest and one stat per file.
            warm = self.cached(dir_md5)
            if warm is not None:
                return warm
        elif not path.is_dir():
            shared = self._shared_snapshot(dir_md5, verify=True)
            if shared is not None:
                return shared
        with self._locked("snapshots", key):
            self._drop_abandoned_staging(key)
            # Looked for again under the lock: whoever held it may have just made or fixed it.
            if path.is_dir():
                return self._repair(dir_md5, path, remote, jobs, progress, verify)
            return self._assemble(dir_md5, path, remote, jobs, progress, verify)

    def _drop_abandoned_staging(self, key: str) -> None:
        """Delete half-made snapshots of ``key`` in ``tmp/``, and half-written manifests of it
        (``atomic_write_text``'s ``.<key>.json.*.tmp``), with the snapshot's lock held.

        Their writers are gone (a live one would hold this lock). :meth:`sweep` cannot tell
        while this process holds the lock, so a fetch that assembles the snapshot after a
        killed one clears its leftovers here.
        """
        for stale in (self.root / "tmp").glob(f"snapshot-{key}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        manifest = self._manifest_path(key)
        for stale in manifest.parent.glob(f".{manifest.name}.*.tmp"):
            stale.unlink(missing_ok=True)

    def _assemble(
        self,
        dir_md5: str,
        path: Path,
        remote: RemoteStore,
        jobs: int | None,
        progress: ProgressCallback | None,
        verify: bool,
    ) -> FetchResult:
        """Build the snapshot in ``tmp/`` from (fetched) objects, then rename it into place."""
        listing = self._listing(dir_md5, remote, verify)
        tally = self._ensure_objects(listing, remote, dir_md5, jobs, progress, verify)
        key = _dir_key(dir_md5)
        staging = Path(tempfile.mkdtemp(prefix=f"snapshot-{key}-", dir=self._tmp_dir()))
        try:
            # mkdtemp makes 0700 folders; a snapshot is as readable as any folder the user makes
            # (so a cache filled for the lab with umask 022 is readable by all of it).
            os.chmod(staging, 0o777 & ~_umask())
            made: set[Path] = set()
            for entry in listing:
                dest = staging / entry.relpath
                if dest.parent not in made:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    made.add(dest.parent)
                self._place(entry, dest, remote, dir_md5, tally)
            manifest = [self._stat_entry(staging, entry) for entry in listing]
            # The manifest goes first and the folder last: the folder's arrival is the commit.
            self._write_manifest(key, manifest)
            path.parent.mkdir(parents=True, exist_ok=True)
            replace_dir(staging, path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return tally.result(path, len(listing))

    def _place(
        self, entry: _Entry, dest: Path, remote: RemoteStore, dir_md5: str, tally: _Tally
    ) -> None:
        """Hard-link (or copy) the object of ``entry`` to ``dest``; count what that took.

        The object can vanish between fetching and linking (another process found it corrupt and
        deleted it); it is then obtained again.
        """
        for _ in range(3):
            obj = self.object_path(entry.md5)
            try:
                _link_or_copy(obj, dest)
                return
            except FileNotFoundError:
                label = f"file {entry.relpath!r} of artifact {dir_md5}"
                tally.add(self._obtain(entry.md5, remote, label=label))
        raise RemoteError(  # pragma: no cover - only under a pathological race
            f"file {entry.relpath!r} of artifact {dir_md5} kept disappearing from the cache "
            f"{self.root}; check that nothing else deletes files there"
        )

    def _repair(
        self,
        dir_md5: str,
        path: Path,
        remote: RemoteStore,
        jobs: int | None,
        progress: ProgressCallback | None,
        verify: bool,
    ) -> FetchResult:
        """Re-check the files of an existing snapshot whose stats changed (or all of them)."""
        key = _dir_key(dir_md5)
        entries = self._read_manifest(key)
        if entries is None or verify:
            # Check every file against the release's own listing (re-hashed when verifying), not
            # a manifest that may be missing (e.g. deleted by hand) or wrong.
            entries = self._listing(dir_md5, remote, verify)
            suspects = list(entries)
        else:
            # Files whose stat changed, and the metadata, re-hashed on every load.
            suspects = _stale(path, entries)
            seen = {e.relpath for e in suspects}
            suspects += [
                e for e in entries if e.relpath not in seen and is_metadata(e.relpath, e.size)
            ]
            if not suspects:
                return FetchResult(path, len(entries), 0, 0)
        checks = _map_threads(lambda e: self._file_ok(path / e.relpath, e.md5), suspects)
        bad = [entry for entry, ok in zip(suspects, checks, strict=True) if not ok]
        try:
            tally = self._ensure_objects(bad, remote, dir_md5, jobs, progress, verify)
        except RegistryError as e:
            raise _unrepairable(dir_md5, path, bad, e) from e
        for entry in bad:
            # Link under a temporary name, then rename over the bad file: readers never see a gap.
            target = path / entry.relpath
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            try:
                self._place(entry, tmp, remote, dir_md5, tally)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        if verify:
            self._remove_strays(path, entries)
        self._write_manifest(key, [self._stat_entry(path, entry) for entry in entries])
        return tally.result(path, len(entries))

    def _file_ok(self, file: Path, md5: str) -> bool:
        """Whether a snapshot file holds ``md5``; if not, and it shares its object's inode, the
        object is corrupt too and is deleted (every snapshot linked to it then gets a new one)."""
        try:
            st = os.lstat(file)
        except FileNotFoundError:
            return False
        if _holds(file, md5):
            obj = self.object_path(md5)
            if _same_inode(st, obj) and not _is_stamped(st, md5):
                _stamp(obj, md5)  # it was touched, not changed: it is verified again
            return True
        obj = self.object_path(md5)
        if _same_inode(st, obj):
            with self._locked("md5", md5[:2], md5[2:]):
                if _same_inode(st, obj):
                    obj.unlink(missing_ok=True)
        return False

    def _remove_strays(self, path: Path, entries: Sequence[_Entry]) -> None:
        """Delete files in a snapshot that the artifact does not have (``verify=True`` only)."""
        for stray in _strays(path, entries):
            os.unlink(stray)

    def _stat_entry(self, base: Path, entry: _Entry) -> _Entry:
        st = os.stat(base / entry.relpath)
        return _Entry(entry.relpath, entry.md5, st.st_size, st.st_mtime_ns, st.st_ino)

    # -- manifests and housekeeping ------------------------------------------------------------

    def _read_manifest(self, key: str) -> list[_Entry] | None:
        """The manifest of snapshot ``key``, or ``None`` if missing or unreadable."""
        return _load_manifest(self._manifest_path(key))

    def _write_manifest(self, key: str, entries: Sequence[_Entry]) -> None:
        rows = [[e.relpath, e.md5, e.size, e.mtime_ns, e.ino] for e in entries]
        text = json.dumps({"format": MANIFEST_FORMAT, "files": rows}, separators=(",", ":"))
        atomic_write_text(self._manifest_path(key), text)

    def sweep(self, *, dry_run: bool = False) -> list[tuple[Path, int]]:
        """Delete what killed processes left in ``tmp/``: partial downloads, half-made snapshots.

        Each temporary the cache makes is named after the object or snapshot it is for, and its
        writer holds that object's or snapshot's lock for as long as it exists. So one whose lock
        can be taken now belongs to no live process, and is deleted at once; one whose lock is
        held is kept. Anything else in ``tmp/`` is deleted once a day old. Runs before each
        download, and in :meth:`gc`; never blocks on a lock.

        Args:
            dry_run: Only say what would be deleted.

        Returns:
            Each path deleted (or that would be), with the bytes it held.

        Example:
            >>> ContentCache(root).sweep()  # doctest: +SKIP
            [(PosixPath('.../tmp/.object-0c82...-5f1e....x1y2.part'), 1048576)]
        """
        try:
            children = list((self.root / "tmp").iterdir())
        except OSError:
            return []
        cutoff = time.time() - _STALE_TMP_SECONDS
        removed = []
        for child in children:
            lock = _tmp_lock(child.name)
            try:
                if lock is None:
                    if child.lstat().st_mtime < cutoff:
                        removed.append((child, _remove(child, dry_run)))
                    continue
                with self._try_locked(*lock) as held:
                    if held and os.path.lexists(child):
                        removed.append((child, _remove(child, dry_run)))
            except OSError:
                continue
        return removed

    # -- verify and gc ------------------------------------------------------------------------

    @_needs_room
    def verify(
        self,
        targets: Sequence[CacheTarget],
        *,
        all_objects: bool = False,
        progress: ProgressCallback | None = None,
    ) -> VerifyReport:
        """Re-hash the cached files of ``targets`` and repair the corrupt ones.

        Only what is cached is checked (nothing is downloaded that was not there, but a corrupt
        file is replaced from a shared cache or the target's remote). With ``all_objects`` every
        object in ``objects/`` is re-hashed first, and a corrupt one deleted (those of
        ``targets`` are then fetched again; others count as ``removed``).

        Args:
            targets: The artifacts to check (e.g. the versions of a registry's tags).
            all_objects: Also re-hash every object in the cache.
            progress: Called with ``(done, total)`` items (objects, then targets).

        Returns:
            The counts, and a line for each target that stays bad.

        Example:
            >>> report = cache.verify([CacheTarget(md5, remote, "digits:1.0.0")])  # doctest: +SKIP
            >>> report.checked, report.repaired, report.unrepairable  # doctest: +SKIP
            (101, 1, [])
        """
        report = VerifyReport()
        objects = self._all_objects() if all_objects else []
        total = len(objects) + len(targets)
        checks = _map_threads(partial(self._object_ok, rehash=True), objects)
        report.checked += len(objects)
        deleted = {md5 for md5, ok in zip(objects, checks, strict=True) if not ok}
        if progress is not None and objects:
            progress(len(objects), total)
        for done, target in enumerate(targets, len(objects) + 1):
            try:
                self._verify_target(target, deleted, report)
            except RegistryError as e:
                report.unrepairable.append(f"{target.label}: {first_line(e)}")
            if progress is not None:
                progress(done, total)
        report.removed = sum(1 for md5 in deleted if not self.object_path(md5).exists())
        return report

    def _verify_target(self, target: CacheTarget, deleted: set[str], report: VerifyReport) -> None:
        """Re-hash and repair one cached artifact (nothing if it is not cached)."""
        md5 = target.md5
        if md5.endswith(".dir"):
            if not self.snapshot_path(md5).is_dir():
                return
            result = self.snapshot(md5, target.remote, verify=True)
            report.checked += result.files + 1  # and its listing
            report.repaired += result.fetched_files + result.shared_files
            return
        named = self.root / "files" / content_digest(md5)
        if md5 not in deleted and not self.object_path(md5).exists() and not named.is_dir():
            return
        report.checked += md5 not in deleted
        if md5 in deleted or not self._object_ok(md5, rehash=True):
            self._obtain(md5, target.remote, label=target.label)
            report.repaired += 1
        obj = self.object_path(md5)
        for link in named.iterdir() if named.is_dir() else ():
            if not _same_inode(os.stat(link), obj):  # a link to the corrupt object, now gone
                tmp = link.with_name(f".{link.name}.{uuid.uuid4().hex}.tmp")
                _link_or_copy(obj, tmp)
                os.replace(tmp, link)

    def _all_objects(self) -> list[str]:
        """The hash of every object in ``objects/``."""
        base = self.root / "objects" / "md5"
        found = []
        for prefix in sorted(base.iterdir()) if base.is_dir() else ():
            for obj in sorted(prefix.iterdir()):
                md5 = prefix.name + obj.name
                if MD5_RE.match(md5) and obj.is_file():
                    found.append(md5)
        return found

    def gc(self, keep: Iterable[str], *, dry_run: bool = False) -> GcReport:
        """Remove what no artifact of ``keep`` needs, and what killed processes left.

        Snapshots not in ``keep``, objects no kept artifact holds (a kept snapshot's files,
        listings and single-file artifacts are kept), their named copies under ``files/``, and
        the sweep of ``tmp/`` (:meth:`sweep`). An entry whose lock another process holds is
        kept; a snapshot goes manifest first and folder last, so a loader never gets half of
        one. Locks and shared caches are left alone.

        Args:
            keep: The DVC hashes to keep (``<md5>.dir`` for folders).
            dry_run: Only count what would be removed and freed.

        Returns:
            The counts and the bytes freed.

        Example:
            >>> cache.gc({"1efa88afe031ce8f3761f84b7775d39a.dir"}, dry_run=True)  # doctest: +SKIP
            GcReport(snapshots=1, objects=96, leftovers=0, freed_bytes=1048576, held=0, ...)
        """
        keep = set(keep)
        keep_keys = {content_digest(m) for m in keep if m.endswith(".dir")}
        wanted, kept_inodes = self._kept(keep, keep_keys)
        report = GcReport(dry_run=dry_run)
        freed = _Freed()
        for folder in _children(self.root / "snapshots"):
            if folder.name in keep_keys:
                continue
            with self._try_locked("snapshots", folder.name) as free:
                if not free:
                    report.held += 1
                    continue
                report.snapshots += 1
                freed.add(_files_under(folder))
                if not dry_run:
                    self._manifest_path(folder.name).unlink(missing_ok=True)
                    _remove_dir_atomically(folder, self._tmp_dir())
        for md5 in self._all_objects():
            obj = self.object_path(md5)
            if md5 in wanted or _inode(obj) in kept_inodes:
                continue
            with self._try_locked("md5", md5[:2], md5[2:]) as free:
                if not free:
                    report.held += 1
                    continue
                report.objects += 1
                freed.add([obj])
                if not dry_run:
                    obj.unlink(missing_ok=True)
        digests = {content_digest(m) for m in wanted}
        for named in _children(self.root / "files"):
            if named.name not in digests:
                freed.add(_files_under(named))
                if not dry_run:
                    shutil.rmtree(named, ignore_errors=True)
        swept = self.sweep(dry_run=dry_run)
        report.leftovers = len(swept)
        report.freed_bytes = freed.total + sum(size for _, size in swept)
        return report

    def _kept(self, keep: set[str], keep_keys: set[str]) -> tuple[set[str], set[tuple[int, int]]]:
        """The objects the kept artifacts hold, and the inodes of their snapshots' files."""
        wanted = set(keep)
        inodes: set[tuple[int, int]] = set()
        for key in keep_keys:
            entries = self._read_manifest(key)
            listing = self.object_path(f"{key}.dir")
            if entries is None and listing.is_file():
                entries = _parse_listing(listing.read_bytes(), f"{key}.dir")
            wanted.update(e.md5 for e in entries or ())
            # Whatever the listing says, a file a kept snapshot links to stays.
            inodes.update(_inode(f) for f in _files_under(self.root / "snapshots" / key))
        return wanted, inodes

    def object_listing(self, dir_md5: str, remote: RemoteStore) -> list[str]:
        """The md5 of every file a ``.dir`` object lists, fetched from ``remote`` if not cached.

        Raises:
            RemoteError, CorruptArtifactError: As :meth:`ensure_object`.
        """
        return [entry.md5 for entry in self._listing(dir_md5, remote)]

    def purge(self, md5s: Iterable[str], *, dry_run: bool = False) -> PurgeReport:
        """Delete objects (and the snapshots of ``.dir`` ones) from this cache and from the
        shared caches that this user may write; a purge (``yank --purge``) calls it.

        Args:
            md5s: The DVC hashes to delete (``<md5>.dir`` for folders).
            dry_run: Only count what would be deleted.

        Returns:
            The bytes freed, and the shared caches that hold some of them but are read-only.
        """
        wanted = sorted(set(md5s))
        report = PurgeReport()
        freed = _Freed()
        for md5 in wanted:
            # Under the locks a load writes them under: a load of the version that is fetching
            # now finishes first, so what it writes is deleted too, never left behind.
            # A snapshot's lock before its objects', as a load takes them (no deadlock).
            locks: list[tuple[str, ...]] = [("md5", md5[:2], md5[2:])]
            paths = [self.object_path(md5), self.root / "files" / content_digest(md5)]
            if md5.endswith(".dir"):
                locks.insert(0, ("snapshots", _dir_key(md5)))
                paths += [self.snapshot_path(md5), self._manifest_path(_dir_key(md5))]
            with contextlib.ExitStack() as held:
                for lock in locks if not dry_run else []:
                    held.enter_context(self._locked(*lock))
                for path in paths:
                    freed.add(_files_under(path) if path.is_dir() else [path])
                    if not dry_run and path.exists():
                        _remove(path)
        report.freed_bytes = freed.total
        for root in self.shared:
            removed, read_only = remove_cached_objects(root, wanted, dry_run=dry_run)
            report.freed_bytes += removed
            if read_only:
                report.read_only.append(str(root))
        return report

    @contextmanager
    def _try_locked(self, *parts: str) -> Iterator[bool]:
        """Take the lock ``locks/<parts>.lock`` if no one holds it; yield whether it was taken."""
        from filelock import FileLock, Timeout

        *folders, name = parts
        path = self.root.joinpath("locks", *folders, f"{name}.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()


# -- helpers -----------------------------------------------------------------------------------


def remove_cached_objects(
    root: Path, md5s: Iterable[str], *, dry_run: bool = False
) -> tuple[int, bool]:
    """Delete objects from a cache folder of either layout: a registry cache (``objects/md5/``,
    ``snapshots/``, ``manifests/``) or a DVC cache (``files/md5/``, as a clone's ``.dvc/cache``).

    Returns:
        The bytes freed, and whether some of them could not be deleted (no write permission:
        a shared cache that is read-only to this user).
    """
    freed, read_only = _Freed(), False
    for md5 in md5s:
        paths = [root / "objects" / "md5" / md5[:2] / md5[2:],
                 root / "files" / "md5" / md5[:2] / md5[2:]]
        if md5.endswith(".dir"):
            key = md5[:-4]
            paths += [root / "snapshots" / key, root / "manifests" / f"{key}.json"]
        for path in paths:
            if not path.exists():
                continue
            if not os.access(path.parent, os.W_OK):
                read_only = True
                continue
            found = _files_under(path) if path.is_dir() else [path]
            freed.add(found)
            if not dry_run:
                try:
                    _remove(path)
                except PermissionError:
                    read_only = True
    return freed.total, read_only


def _dir_key(dir_md5: str) -> str:
    """The snapshot key of a ``.dir`` hash (the md5 without ``.dir``)."""
    if not (isinstance(dir_md5, str) and dir_md5.endswith(".dir") and MD5_RE.match(dir_md5)):
        raise ValueError(
            f"not a DVC directory hash: {dir_md5!r}; expected 32 hex digits and '.dir', as in "
            "dvc.lock (for a single file, use ContentCache.ensure_object)"
        )
    return dir_md5[:-4]


def _load_manifest(path: Path) -> list[_Entry] | None:
    """The snapshot manifest at ``path``, or ``None`` if missing or unreadable."""
    try:
        with open(path, "rb") as f:
            data = json.load(f)
        if data.get("format") != MANIFEST_FORMAT:
            return None
        return [_Entry(*row) for row in data["files"]]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _stale_shared(path: Path, entries: Sequence[_Entry]) -> bool:
    """Whether a shared snapshot has a file that is gone, or changed: another size, or neither
    its recorded mtime and inode nor a valid stamp (copies keep stamps, not inodes)."""
    base = str(path)
    for entry in entries:
        try:
            st = os.stat(f"{base}/{entry.relpath}")
        except OSError:
            return True
        if st.st_size != entry.size or not stat.S_ISREG(st.st_mode):
            return True
        if (st.st_mtime_ns, st.st_ino) != (entry.mtime_ns, entry.ino) and not _is_stamped(
            st, entry.md5
        ):
            return True
    return False


def _children(folder: Path) -> list[Path]:
    """The entries of ``folder`` (none if it is missing)."""
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _files_under(folder: Path) -> list[Path]:
    """Every file under ``folder``."""
    return [Path(d, name) for d, _, names in os.walk(folder) for name in names]


def _inode(path: Path) -> tuple[int, int]:
    """``(device, inode)`` of ``path``, or ``(-1, -1)`` if it is gone."""
    try:
        st = os.lstat(path)
    except OSError:
        return (-1, -1)
    return (st.st_dev, st.st_ino)


class _Freed:
    """The bytes that deleting files frees: each inode once, when all its links go.

    Files are measured as they are added, before they are deleted.
    """

    def __init__(self) -> None:
        self._sizes: dict[tuple[int, int], tuple[int, int]] = {}
        self._counts: dict[tuple[int, int], int] = {}

    def add(self, paths: Iterable[Path]) -> None:
        """Count ``paths``, about to be deleted."""
        for path in paths:
            try:
                st = os.lstat(path)
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            self._sizes[key] = (st.st_size, st.st_nlink)
            self._counts[key] = self._counts.get(key, 0) + 1

    @property
    def total(self) -> int:
        """Bytes freed by deleting everything added."""
        return sum(s for key, (s, links) in self._sizes.items() if self._counts[key] >= links)


def _remove_dir_atomically(folder: Path, tmp: Path) -> None:
    """Rename ``folder`` into ``tmp/`` (one step for readers), then delete it there."""
    gone = tmp / f"gc-{folder.name}-{uuid.uuid4().hex}"
    try:
        os.replace(folder, gone)
    except OSError:
        return
    shutil.rmtree(gone, ignore_errors=True)


def _tmp_lock(name: str) -> tuple[str, ...] | None:
    """The lock a live writer of the temporary ``tmp/<name>`` holds, or ``None`` if unknown."""
    match = _TMP_OBJECT_RE.match(name)
    if match:
        md5 = match.group(1)
        return ("md5", md5[:2], md5[2:])
    match = _TMP_SNAPSHOT_RE.match(name)
    if match:
        return ("snapshots", match.group(1))
    return None


def _remove(path: Path, dry_run: bool = False) -> int:
    """Delete a file or folder tree (unless ``dry_run``); return the bytes it held."""
    if path.is_dir() and not path.is_symlink():
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
        if not dry_run:
            shutil.rmtree(path, ignore_errors=True)
        return size
    size = path.lstat().st_size
    if not dry_run:
        path.unlink(missing_ok=True)
    return size


def _metadata_intact(path: Path, entries: Sequence[_Entry]) -> bool:
    """Whether every metadata file of a snapshot still has its bytes (see :func:`is_metadata`)."""
    return all(_holds_in(path, e) for e in entries if is_metadata(e.relpath, e.size))


def _unrepairable(
    dir_md5: str, path: Path, bad: Sequence[_Entry], error: RegistryError
) -> CorruptArtifactError:
    """The error for corrupt cached files that no shared cache or remote could replace."""
    names = ", ".join(repr(e.relpath) for e in bad[:3]) + (" ..." if len(bad) > 3 else "")
    return CorruptArtifactError(
        f"the cached copy of artifact {dir_md5} in {path} has {len(bad)} corrupt file(s) "
        f"({names}) that could not be repaired: {first_line(error)}. Once the DVC remote can be "
        "reached, run 'registry cache verify' to repair them"
    )


def _strays(path: Path, entries: Sequence[_Entry]) -> list[str]:
    """Files under ``path`` that are not in ``entries``."""
    wanted = {entry.relpath for entry in entries}
    found = []
    for folder, _, files in os.walk(path):
        for name in files:
            full = os.path.join(folder, name)
            if Path(full).relative_to(path).as_posix() not in wanted:
                found.append(full)
    return found


def _try_link(src: Path, dest: Path) -> bool:
    """Hard-link ``src`` at ``dest``; ``False`` where that is refused (another device, another
    owner's file under ``fs.protected_hardlinks``, no hard links)."""
    try:
        os.link(src, dest)
    except OSError:
        return False
    return True


def _copy_verified(src: Path, dest: Path, md5: str) -> bool:
    """Copy ``src`` to the new file ``dest`` while hashing it; whether its md5 is ``md5``.

    ``dest`` is left for the caller to delete when the bytes are wrong.
    """
    digest = hashlib.md5(usedforsecurity=False)
    with open(src, "rb") as f, open(dest, "xb") as out:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest() == content_digest(md5)


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (thread-safe)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _stale(path: Path, entries: Sequence[_Entry]) -> list[_Entry]:
    """Entries whose file is gone or whose size, mtime or inode differ from the manifest."""
    base = str(path)
    stale = []
    for entry in entries:
        try:
            st = os.stat(f"{base}/{entry.relpath}")
        except OSError:
            stale.append(entry)
            continue
        if (st.st_size, st.st_mtime_ns, st.st_ino) != (entry.size, entry.mtime_ns, entry.ino):
            stale.append(entry)
    return stale


def _holds(path: Path, md5: str) -> bool:
    """Whether ``path`` is a regular file whose bytes have md5 ``md5``."""
    try:
        return not os.path.islink(path) and hash_file(path) == md5
    except OSError:
        return False


def _holds_in(base: Path, entry: _Entry) -> bool:
    """Whether the file of ``entry`` under ``base`` has its bytes."""
    return _holds(base / entry.relpath, entry.md5)


def _same_inode(st: os.stat_result, other: Path) -> bool:
    try:
        o = os.stat(other)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (o.st_dev, o.st_ino)


def _link_or_copy(src: Path, dest: Path) -> None:
    """Hard-link ``src`` at ``dest``; copy it (read-only) where the filesystem refuses links."""
    try:
        os.link(src, dest)
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
            raise
        shutil.copyfile(src, dest)
        os.chmod(dest, 0o444)


def _run_all(pool: ThreadPoolExecutor, tasks: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run ``tasks`` on ``pool``; return their results in order, or raise the first error after
    cancelling what has not started."""
    futures: list[Future[Any]] = [pool.submit(task) for task in tasks]
    try:
        for future in as_completed(futures):
            future.result()
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return [future.result() for future in futures]


def _map_threads(func: Callable[[Any], bool], items: Sequence[Any]) -> list[bool]:
    """``map`` over threads (hashing releases the GIL), in order."""
    if len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(len(items), os.cpu_count() or 1)) as pool:
        return list(pool.map(func, items))


def _default_jobs(remote: RemoteStore, local: bool, remote_only: Sequence[str]) -> int:
    """How many threads bring objects in when the caller does not say: DVC's ``jobs`` for a
    network remote (requests wait on the network); for a local folder, one per CPU, since
    its copies wait on nothing but the CPUs and the disk (more threads only queue for the
    GIL); for shared caches only, as many as a network remote's default."""
    if local:
        return os.cpu_count() or 1
    return remote.jobs if remote_only else min(32, 4 * (os.cpu_count() or 1))


def _run_queued(pool: ThreadPoolExecutor, workers: int, tasks: Sequence[Callable[[], Any]]) -> None:
    """Run ``tasks`` on ``workers`` threads of ``pool``, each taking the next task when it is
    done with one; raise the first error, once every thread has stopped (none starts a new task
    after it).

    One future a thread, not one a task: with 20,000 small files a future and a hand-off of
    the GIL per file cost as much as copying the file.
    """
    queue = iter(tasks)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        while not errors:
            with lock:
                task = next(queue, None)
            if task is None:
                return
            try:
                task()
            except BaseException as e:
                errors.append(e)
                raise

    futures = [pool.submit(work) for _ in range(max(1, min(workers, len(tasks))))]
    try:
        for future in futures:
            future.exception()  # waits; what a task raised is in errors
    except BaseException as e:  # e.g. Ctrl-C while waiting: the threads take no new task
        errors.append(e)
        raise
    if errors:
        raise errors[0]


def _rename_into(tmp: Path, dest: Path) -> None:
    """Rename the finished ``tmp`` to ``dest`` in one step; ``dest``'s folder is made only when
    the rename finds it missing (the first object there), not with a ``mkdir`` for each."""
    try:
        os.replace(tmp, dest)
    except FileNotFoundError:  # the object's folder is new (tmp is there: made)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)


def _copy_local(
    md5: str,
    remote: RemoteStore,
    tmp: Path,
    stat: RemoteObject | None,
    on_bytes: Callable[[int], None] | None,
    progress: ProgressCallback | None,
    label: str | None,
) -> int:
    """Copy object ``md5`` of a local remote to the new file ``tmp``: verified on the way,
    read-only and stamped (as :meth:`ContentCache._obtain` leaves a download); return its size.

    The mode and stamp are set on the open file (no path looked up again, no stat): with
    20,000 small files each system call saved is a second saved.
    """
    size = (stat or remote.stat(md5, label=label)).size
    done = 0

    def count(n: int) -> None:
        nonlocal done
        done += n
        if on_bytes is not None:
            on_bytes(n)
        if progress is not None:
            progress(done, size)

    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    try:
        remote.copy_local(md5, fd, size, on_bytes=count, label=label)
        if _umask_cached() & 0o444:  # a umask that takes read bits: as os.chmod(0o444) would
            os.fchmod(fd, 0o444)
        now = time.time_ns()
        os.utime(fd, ns=(now, now - now % _SECOND_NS + _stamp_ns(md5)))  # see _stamp
    finally:
        os.close(fd)
    return done


@functools.cache
def _umask_cached() -> int:
    """The process's umask, read once (objects are made read-only whatever it is)."""
    return _umask()
