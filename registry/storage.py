"""Released artifacts' bytes, read from the registry's DVC remote into a local content cache.

A release records its artifact's content hash in ``dvc.lock`` (:func:`locked_out_hash`); a
directory artifact's hash names a ``.dir`` object, the JSON list of its files and their md5s.
:class:`RemoteStore` reads objects from the registry's DVC remote through DVC's own remote
machinery, so every remote type, config level and credential DVC knows works here too.
:class:`ContentCache` keeps one verified copy of each object and assembles snapshots from them.

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
- A warm :meth:`ContentCache.snapshot` reads one manifest and stats each file, no more (and does
  not import DVC). A file whose size, mtime or inode changed is re-hashed, and re-fetched if its
  bytes are wrong. ``verify=True`` re-hashes every file.
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

import base64
import dataclasses
import errno
import hashlib
import json
import os
import posixpath
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
from functools import partial
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NamedTuple

from registry.atomic import atomic_write_text, replace_dir
from registry.errors import (
    ConfigError,
    CorruptArtifactError,
    MissingDependencyError,
    NotBuiltError,
    RegistryError,
    RemoteError,
    first_line,
)
from registry.gitrepo import GitRepo

if TYPE_CHECKING:
    from dvc_data.hashfile.db import HashFileDB

__all__ = ["ContentCache", "FetchResult", "RemoteObject", "RemoteStore", "locked_out_hash"]

#: Called with (bytes downloaded so far, bytes to download in all), from worker threads, one
#: call at a time.
ProgressCallback = Callable[[int, int], None]

LOCK_FILE = "dvc.lock"
MANIFEST_FORMAT = 1

_MD5_RE = re.compile(r"^[0-9a-f]{32}(\.dir)?$")
_CHUNK = 1 << 20
# A download reads an object in requests of this many bytes (a smaller object in one request):
# fewer, larger requests than a buffered remote file's blocks, each hashed and written as one
# piece, at the cost of holding one range in memory per parallel download.
_RANGE = 8 << 20
# Temporaries older than this were left by a process that died; newer ones may be in use.
_STALE_TMP_SECONDS = 24 * 3600
_SECOND_NS = 1_000_000_000
# Which DVC remote schemes need which pip extra ("gs://..." -> 'dvc[gs]').
_EXTRA_FOR_SCHEME = {"gs": "gs", "gcs": "gs", "s3": "s3", "azure": "azure", "az": "azure"}


# -- dvc.lock ----------------------------------------------------------------------------------


def _norm_path(path: str) -> str:
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
    wanted = _norm_path(out_path)
    found = next((out for out in outs if _norm_path(str(out.get("path", ""))) == wanted), None)
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
    if not isinstance(md5, str) or not _MD5_RE.match(md5):
        raise ConfigError(
            f"{LOCK_FILE} at commit {short} records an invalid md5 {md5!r} for {out_path!r}; "
            f"regenerate it with 'dvc repro {stage}'"
        )
    return md5


# -- the DVC remote ----------------------------------------------------------------------------


class RemoteObject(NamedTuple):
    """An object on the remote: its size, and on Cloud Storage the MD5 (hex) and CRC32C (4
    bytes) the bucket stored for it (``None`` elsewhere, or for a composite object)."""

    size: int
    checksums: tuple[str, bytes] | None


def _gcs_checksums(info: dict[str, Any]) -> tuple[str, bytes] | None:
    """Cloud Storage's MD5 (hex) and CRC32C (4 bytes) of an object, from its metadata.

    ``None`` for other remotes, and for composite GCS objects (which have no MD5).
    """
    md5_b64, crc_b64 = info.get("md5Hash"), info.get("crc32c")
    if not (isinstance(md5_b64, str) and isinstance(crc_b64, str)):
        return None
    try:
        md5 = base64.b64decode(md5_b64, validate=True)
        crc = base64.b64decode(crc_b64, validate=True)
    except ValueError:
        return None
    if len(md5) != 16 or len(crc) != 4:
        return None
    return md5.hex(), crc


class _Digest:
    """Verifies downloaded bytes against the object's name, its md5.

    Against Cloud Storage, whose metadata holds the MD5 it computed of the uploaded bytes and a
    CRC32C, the bytes are checked with the CRC32C (several times faster than MD5, so a pull keeps
    up with a direct google-cloud-storage download) and the stored MD5 against the name; a
    different object, or bytes damaged in flight, fail either check. Elsewhere, or without
    those checksums, the bytes' own MD5 is computed.
    """

    def __init__(self, stored: tuple[str, bytes] | None) -> None:
        self.stored = stored
        if stored is not None:
            try:
                import google_crc32c
            except ImportError:  # pragma: no cover - comes with google-cloud-storage
                self.stored = None
            else:
                self._crc = google_crc32c.Checksum()
        if self.stored is None:
            self._md5 = hashlib.md5(usedforsecurity=False)

    def update(self, data: bytes) -> None:
        if self.stored is None:
            self._md5.update(data)
        else:
            self._crc.update(data)

    def mismatch(self, expected_md5: str) -> str | None:
        """Why the bytes are not object ``expected_md5``, or ``None`` if they are."""
        if self.stored is None:
            got = self._md5.hexdigest()
            return None if got == expected_md5 else f"has md5 {got}, not {expected_md5}"
        stored_md5, stored_crc = self.stored
        if stored_md5 != expected_md5:
            return f"is stored with md5 {stored_md5}, not {expected_md5}"
        got_crc = self._crc.digest()
        if got_crc != stored_crc:
            return (
                f"arrived with CRC32C {got_crc.hex()}, not the stored {stored_crc.hex()} "
                "(damaged in transfer)"
            )
        return None


class _RelativeRemoteError(ConfigError):
    """A mirror's DVC remote is a path relative to a clone, which a mirror does not have."""


@dataclass(frozen=True)
class _Remote:
    """A resolved DVC remote: its name, URL for messages, and DVC's object database on it."""

    name: str
    url: str
    root: str
    odb: HashFileDB
    options: dict[str, Any]
    default: bool = False

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0] if "://" in self.url else "local"


class RemoteStore:
    """Read access to the registry's DVC remote, through DVC's own remote machinery.

    Remote types, config levels (system, global, the registry's ``.dvc/config`` and, in a clone,
    ``config.local``) and credentials all work as in ``dvc pull``. Opening is free: the config is
    read, and DVC imported, on the first call that needs the remote, so a fully cached load never
    pays for it.

    Example:
        >>> remote = RemoteStore.open(repo, release.commit)  # doctest: +SKIP
        >>> remote.fetch("0c822aacad8674e2e195a0936b4b7b41", Path("f4.txt"))  # doctest: +SKIP
    """

    def __init__(self, repo: GitRepo, commit: str, remote: str | None = None) -> None:
        """Prefer :meth:`open`; arguments as there."""
        self.repo = repo
        self.commit = commit
        self.requested = remote
        self._lock = threading.Lock()
        self._resolved: _Remote | None = None

    @classmethod
    def open(cls, repo: GitRepo, commit: str, remote: str | None = None) -> RemoteStore:
        """Return the DVC remote of ``repo`` as configured for ``commit``.

        In a clone (``repo.work_tree`` set) the clone's current DVC config is used, as
        ``dvc pull`` would. In a bare mirror of a Git URL, ``.dvc/config`` is read at ``commit``
        (with the user's global and system DVC config on top, e.g. for credentials).

        Args:
            repo: The registry.
            commit: The commit whose config applies (for a mirror).
            remote: A DVC remote name; ``None`` for the registry's default (``core.remote``).

        Returns:
            The store. Nothing is read yet: config errors surface on first use.

        Raises:
            Nothing here. On first use: ConfigError if the remote is unknown, missing, or a
            relative local path in a mirror (which has no folder to be relative to);
            MissingDependencyError if its DVC plugin (e.g. ``dvc[gs]``) is not installed.
        """
        return cls(repo, commit, remote)

    def __repr__(self) -> str:
        return f"RemoteStore({self.repo.url!r}, {self.commit[:12]!r}, remote={self.requested!r})"

    # -- resolving -----------------------------------------------------------------------------

    def _where(self) -> str:
        if self.repo.work_tree is not None:
            return f"the registry clone {self.repo.work_tree}"
        return f"the registry {self.repo.url} at commit {self.commit[:12]}"

    def _remote(self) -> _Remote:
        with self._lock:
            if self._resolved is None:
                self._resolved = self._resolve()
            return self._resolved

    def _resolve(self) -> _Remote:
        try:
            return self._resolve_at(self.commit)
        except _RelativeRemoteError:
            # Released while the remote was the embedded default (a folder next to the clone),
            # before the lab moved to a shared remote: use the registry's current remote (its
            # default branch), where 'dvc push -r <new> --all-tags' copied the old releases.
            if self.repo.work_tree is None:
                head = self.repo.resolve_commit("HEAD")
                if head != self.commit:
                    try:
                        return self._resolve_at(head)
                    except _RelativeRemoteError:
                        pass  # relative there too: the error about the release's commit says it
            raise

    def _resolve_at(self, commit: str) -> _Remote:
        try:
            from dvc.config import Config
            from dvc.config import ConfigError as DvcConfigError
        except ImportError as e:  # pragma: no cover - dvc is a hard dependency
            raise MissingDependencyError("dvc", "'dvc[gs]'") from e
        where = self._where()
        raw_repo_level: dict[str, Any] | None = None
        try:
            if self.repo.work_tree is not None:
                dvc_dir = self.repo.work_tree / ".dvc"
                if not dvc_dir.is_dir():
                    raise ConfigError(
                        f"{where} has no .dvc folder, so no DVC remote; run 'dvc init' and "
                        "'dvc remote add -d <name> <url>' there"
                    )
                config = Config(dvc_dir=str(dvc_dir))
            else:
                from dvc.fs import GitFileSystem

                gitfs = GitFileSystem(str(self.repo.path), rev=commit)
                if not gitfs.isfile("/.dvc/config"):
                    raise ConfigError(
                        f"{where} has no .dvc/config, so no DVC remote; check that it is a "
                        "registry (it was made with 'dvc init' and 'dvc remote add -d')"
                    )
                # Global and system levels come from this machine; the repo level from Git.
                config = Config(dvc_dir="/.dvc", fs=gitfs)
                raw_repo_level = Config.load_file("/.dvc/config", fs=gitfs)
            remotes = config.get("remote") or {}
            name = self.requested or (config.get("core") or {}).get("remote")
            if not name:
                raise ConfigError(
                    f"{where} has no default DVC remote; set one with "
                    "'dvc remote add -d <name> <url>', or name one with REGISTRY_REMOTE "
                    f"(configured: {', '.join(sorted(remotes)) or 'none'})"
                )
            if name not in remotes:
                raise ConfigError(
                    f"DVC remote {name!r} is not configured for {where} (configured: "
                    f"{', '.join(sorted(remotes)) or 'none'}); check REGISTRY_REMOTE and "
                    "'dvc remote list'"
                )
            if raw_repo_level is not None:
                self._refuse_relative(raw_repo_level, name, where)
            opened = self._open_odb(config, name)
            default = name == (config.get("core") or {}).get("remote")
            return dataclasses.replace(opened, default=default)
        except DvcConfigError as e:
            raise ConfigError(f"the DVC config of {where} is invalid: {e}") from e

    def _refuse_relative(self, raw: dict[str, Any], name: str, where: str) -> None:
        """Raise if the repo-level URL of ``name`` is a relative local path (mirror only)."""
        url = ((raw.get("remote") or {}).get(name) or {}).get("url")
        if not isinstance(url, str) or re.match(r"^\w+://", url):
            return
        if os.path.isabs(os.path.expanduser(url)):
            return
        raise _RelativeRemoteError(
            f"DVC remote {name!r} of {where} is the relative path {url!r}, which only has a "
            "meaning inside a clone of the registry. Load from a clone instead (set REGISTRY_URL "
            "to its folder), or give the remote an absolute URL on this machine: "
            "'dvc remote add --global <name> <absolute path or gs://...>' and set "
            "REGISTRY_REMOTE=<name>"
        )

    def _open_odb(self, config: Any, name: str) -> _Remote:
        from dvc.fs import get_cloud_fs
        from dvc_data.hashfile.db import get_odb
        from dvc_objects.fs.errors import RemoteMissingDepsError

        url = str(config["remote"][name].get("url", ""))
        try:
            cls, fs_config, fs_path = get_cloud_fs(config, name=name)
            if fs_config.get("worktree") or fs_config.get("version_aware"):
                raise ConfigError(
                    f"DVC remote {name!r} ({url}) is a cloud-versioned or worktree remote, which "
                    "does not store objects by hash; point the registry at a plain remote"
                )
            options = dict(config["remote"][name])
            if url.startswith(("gs://", "gcs://")):
                _check_gcs_credentials(name, url, options)
            fs = cls(**fs_config)
        except (RemoteMissingDepsError, ImportError) as e:
            # A missing plugin surfaces as either, depending on where DVC notices it.
            scheme = url.split("://", 1)[0] if "://" in url else "local"
            extra = _EXTRA_FOR_SCHEME.get(scheme, scheme)
            raise MissingDependencyError(f"dvc-{extra}", f"'dvc[{extra}]'") from e
        # DVC 3 keeps objects hashed with plain md5 under <remote>/files/md5/ (as DataCloud does).
        odb = get_odb(fs, fs.join(fs_path, "files", "md5"), hash_name="md5", **fs_config)
        return _Remote(name=name, url=url, root=fs_path, odb=odb, options=options)

    # -- reading -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The DVC remote's name (reads the config on first use)."""
        return self._remote().name

    @property
    def url(self) -> str:
        """The DVC remote's URL as configured (reads the config on first use)."""
        return self._remote().url

    @property
    def options(self) -> dict[str, Any]:
        """The remote's DVC options (``url``, ``endpointurl``, ...), as configured."""
        return dict(self._remote().options)

    @property
    def is_default(self) -> bool:
        """Whether this is the registry's default remote (``core.remote``)."""
        return self._remote().default

    @property
    def jobs(self) -> int:
        """How many transfers DVC runs at once on this remote (its ``jobs`` setting or default)."""
        return int(self._remote().odb.fs.jobs)

    def object_path(self, md5: str) -> str:
        """Where the object ``md5`` lives on the remote (``.../files/md5/ab/cdef...``)."""
        return str(self._remote().odb.oid_to_path(md5))

    def stat(self, md5: str, *, label: str | None = None) -> RemoteObject:
        """Return the size of object ``md5`` on the remote, and on Cloud Storage its checksums.

        Args:
            md5: The object's hash (``.dir`` suffix included for listings).
            label: What the object is, for error messages (e.g. ``file 'a.json' of ...``).

        Raises:
            RemoteError: If the remote cannot be reached or does not hold the object.
        """
        remote = self._remote()
        path = remote.odb.oid_to_path(md5)
        try:
            info = remote.odb.fs.info(path)
        except FileNotFoundError as e:
            raise self._not_found(md5, label) from e
        except Exception as e:  # every backend raises its own classes
            raise self._unreachable(e) from e
        return RemoteObject(int(info.get("size") or 0), _gcs_checksums(info))

    def size(self, md5: str, *, label: str | None = None) -> int:
        """Return the size in bytes of object ``md5`` on the remote (see :meth:`stat`)."""
        return self.stat(md5, label=label).size

    def fetch(
        self,
        md5: str,
        dest: Path,
        *,
        stat: RemoteObject | None = None,
        on_bytes: Callable[[int], None] | None = None,
        progress: ProgressCallback | None = None,
        label: str | None = None,
    ) -> None:
        """Download object ``md5`` to ``dest``, verified and atomically.

        Bytes stream to a temporary sibling of ``dest`` while they are checked (their md5; on
        Cloud Storage the bucket's stored MD5 must be ``md5`` and the bytes must match its stored
        CRC32C); ``dest`` appears (by ``os.replace``) only once all bytes are there and pass. The
        object is read in ranges of 8 MiB, one request each (one request for a smaller object).

        Args:
            md5: The object's hash (``.dir`` suffix included for listings).
            dest: Where to write it; parent folders are created.
            stat: What :meth:`stat` says of the object, if already asked: saves a request.
            on_bytes: Called with the size of each MiB written (for progress).
            progress: Called with ``(done bytes, object size)`` as each MiB is written.
            label: What the object is, for error messages (e.g. ``file 'a.json' of ...``).

        Raises:
            RemoteError: If the remote cannot be reached or does not hold the object.
            CorruptArtifactError: If the bytes on the remote do not match ``md5``.
        """
        remote = self._remote()
        rpath = remote.odb.oid_to_path(md5)
        if stat is None:
            stat = self.stat(md5, label=label)
        size, stored = stat
        digest = _Digest(stored)
        if stored is not None and stored[0] != _hash_key(md5):
            # The bucket says these are other bytes: not worth downloading.
            raise self._corrupt(md5, rpath, label, digest.mismatch(_hash_key(md5)))
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                done = 0
                for data in self._ranges(rpath, size, md5, label):
                    # Hashing and writing release the GIL, so parallel downloads use every core;
                    # one hash call per range keeps the threads from queueing for the GIL.
                    digest.update(data)
                    view = memoryview(data)
                    for offset in range(0, len(view), _CHUNK):  # progress moves a MiB at a time
                        chunk = view[offset : offset + _CHUNK]
                        out.write(chunk)
                        done += len(chunk)
                        if on_bytes is not None:
                            on_bytes(len(chunk))
                        if progress is not None:
                            progress(done, size)
            problem = digest.mismatch(_hash_key(md5))
            if problem is not None:
                raise self._corrupt(md5, rpath, label, problem)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _corrupt(
        self, md5: str, rpath: str, label: str | None, problem: str | None
    ) -> CorruptArtifactError:
        remote = self._remote()
        what = label or f"object {md5}"
        return CorruptArtifactError(
            f"{what} on DVC remote {remote.name!r} ({remote.url}) {problem}: "
            "the remote copy is corrupt, and was not used. "
            f"Delete {rpath} from the remote and re-push it with 'dvc push -r "
            f"{remote.name}' from a clone that holds the released data, or release a "
            "new version"
        )

    def _ranges(self, rpath: str, size: int, md5: str, label: str | None) -> Iterator[bytes]:
        """The bytes of the object at ``rpath`` (``size`` bytes long), in ranges of ``_RANGE``.

        An object no larger than one range is read whole, with no ``Range`` header; a larger one
        range by range, and never past ``size``. Stops early if the remote has fewer bytes.
        """
        fs = self._remote().odb.fs
        start = 0
        while True:
            whole = start == 0 and size <= _RANGE
            try:
                if whole:
                    chunk = fs.cat_file(rpath)
                else:
                    chunk = fs.cat_file(rpath, start=start, end=min(size, start + _RANGE))
            except FileNotFoundError as e:
                raise self._not_found(md5, label) from e
            except Exception as e:  # every backend raises its own classes
                raise self._unreachable(e) from e
            if not chunk:
                return
            yield chunk
            start += len(chunk)
            if whole or start >= size:
                return

    def explain(self, error: BaseException, action: str) -> RegistryError | None:
        """A clear error for a cloud failure (credentials, permissions, bucket), else ``None``.

        Args:
            error: What DVC or the remote's filesystem raised.
            action: What was being done, followed by the remote's URL in the message, e.g.
                ``"pushing the data of 'digits' to"``.
        """
        remote = self._remote()
        if remote.scheme not in ("gs", "gcs"):
            return None
        from registry.gcloud import explain_storage_error

        return explain_storage_error(
            error, remote=remote.name, url=remote.url, action=f"{action} {remote.url}"
        )

    def check(self, *, write: bool = False) -> None:
        """Check that the remote can be read (and written): credentials, bucket, permissions.

        One listing of the remote's folder; with ``write``, a small probe object is written under
        ``<remote>/.registry-check/`` and deleted again. A release runs this before pushing, so
        that a remote it cannot write fails before anything is uploaded.

        Raises:
            CredentialsError: If credentials are missing, refused, or lack a permission.
            RemoteError: If the bucket (or folder) does not exist or cannot be reached.
            ConfigError: If the remote is not configured.
        """
        remote = self._remote()
        fs = remote.odb.fs
        action = "writing to" if write else "reading"
        try:
            if remote.scheme in ("gs", "gcs"):
                bucket = remote.root.split("/", 1)[0]
                if not fs.exists(bucket):
                    raise FileNotFoundError(f"b/{bucket}/o")
            # A listing: needs the permission to read. A new remote's folder may not exist yet.
            if not fs.exists(remote.root) and not write:
                raise RemoteError(
                    f"DVC remote {remote.name!r} ({remote.url}) does not exist or is empty: "
                    "nothing was ever pushed there; check its URL with 'dvc remote list'"
                )
            if write:
                probe = fs.join(remote.root, ".registry-check", uuid.uuid4().hex)
                if remote.scheme == "local":
                    fs.makedirs(fs.parent(probe), exist_ok=True)
                fs.pipe_file(probe, b"registry write check\n")
                try:
                    fs.rm_file(probe)
                except Exception as e:  # may create but not delete (objectCreator): fine to push
                    import logging

                    logging.getLogger(__name__).warning(
                        "could not delete the write-check object %s (%s); delete it by hand",
                        probe,
                        first_line(e),
                    )
        except RegistryError:
            raise
        except Exception as e:  # every backend raises its own classes
            explained = self.explain(e, action)
            if explained is not None:
                raise explained from e
            raise RemoteError(
                f"cannot use DVC remote {remote.name!r} ({remote.url}) for {action.split()[0]}: "
                f"{type(e).__name__}: {e}; check its URL ('dvc remote list'), that it exists, "
                "and your access to it"
            ) from e

    def _not_found(self, md5: str, label: str | None) -> RegistryError:
        """The error for an object that is not there: the whole remote, or just the object."""
        remote = self._remote()
        if remote.scheme in ("gs", "gcs"):
            bucket = remote.root.split("/", 1)[0]
            try:
                bucket_exists = bool(remote.odb.fs.exists(bucket))
            except Exception as e:
                explained = self.explain(e, "reading")
                if explained is not None:
                    return explained
                bucket_exists = False
            if not bucket_exists:
                explained = self.explain(FileNotFoundError(f"b/{bucket}/o"), "reading")
                assert explained is not None
                return explained
        try:
            root_exists = bool(remote.odb.fs.exists(remote.root))
        except Exception:  # if even this fails, the remote is what is missing
            root_exists = False
        if not root_exists:
            return RemoteError(
                f"DVC remote {remote.name!r} ({remote.url}) does not exist or cannot be reached; "
                "check its URL with 'dvc remote list', your credentials and network, and that "
                "releases were pushed to it ('dvc push')"
            )
        what = label or f"object {md5}"
        return RemoteError(
            f"{what} is missing from DVC remote {remote.name!r} ({remote.url}): the release's "
            "bytes were never pushed there. From a clone holding the released data, run "
            f"'dvc push -r {remote.name}' (or 'registry datasets release', which pushes first), "
            "or check that REGISTRY_REMOTE names the remote releases are pushed to"
        )

    def _unreachable(self, error: Exception) -> RegistryError:
        remote = self._remote()
        explained = self.explain(error, "reading")
        if explained is not None:
            return explained
        return RemoteError(
            f"cannot read from DVC remote {remote.name!r} ({remote.url}): "
            f"{type(error).__name__}: {error}; check the network, the remote's URL "
            "('dvc remote list') and your credentials ('dvc remote modify')"
        )


def _check_gcs_credentials(name: str, url: str, options: dict[str, Any]) -> None:
    """Fail fast, before gcsfs waits on the network, when a ``gs://`` remote has no credentials.

    A remote with ``allow_anonymous_login`` (a public bucket, or an emulator) needs none; one with
    ``credentialpath`` in a DVC config gets that file checked; otherwise Application Default
    Credentials must be found.
    """
    from registry.gcloud import find_credentials

    if str(options.get("allow_anonymous_login", "")).lower() in ("true", "1", "yes"):
        return
    key = options.get("credentialpath")
    if key:
        if not os.path.isfile(os.path.expanduser(str(key))):
            from registry.errors import CredentialsError

            raise CredentialsError(
                f"DVC remote {name!r} ({url}) names the key file {key} (credentialpath), which "
                "does not exist; fix it with 'dvc remote modify --local "
                f"{name} credentialpath <path>', or remove it and use Application Default "
                "Credentials"
            )
        return
    find_credentials(f"DVC remote {name!r} ({url})")


# -- the local cache ---------------------------------------------------------------------------


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


@dataclass(frozen=True)
class _Entry:
    """One file of a snapshot, and its stat when the manifest was written (-1: unknown)."""

    relpath: str
    md5: str
    size: int = -1
    mtime_ns: int = -1
    ino: int = -1


def _hash_key(md5: str) -> str:
    """The hex digest an object's bytes must have (a ``.dir`` hash is the listing's md5)."""
    return md5.removesuffix(".dir")


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


def _hash_file(path: Path | str) -> str:
    """The md5 of a file's bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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
        if _hash_file(path) == _hash_key(md5):
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
                remote.fetch(
                    md5, tmp, stat=stat, on_bytes=on_bytes, progress=progress, label=label
                )
                os.chmod(tmp, 0o444)  # shared by every snapshot through hard links
                _stamp(tmp, md5)
                size = os.stat(tmp).st_size
                dest = self.object_path(md5)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, dest)
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

        A stamped, read-only copy is trusted and hard-linked (unless ``rehash``); any other is
        copied while its md5 is computed, and used only if it matches. Nothing in the shared
        cache is changed, whatever it holds.
        """
        dest = self.object_path(md5)
        for root, candidate, st in self._shared_candidates(md5):
            tmp = self._tmp_dir() / f"shared-{md5}-{uuid.uuid4().hex}"
            try:
                trusted = _is_stamped(st, md5) and not rehash and not st.st_mode & 0o222
                if trusted and _try_link(candidate, tmp):
                    linked = os.stat(tmp)
                    if _is_stamped(linked, md5) and linked.st_size == st.st_size:
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(tmp, dest)
                        return _Got(linked.st_size, root)
                    tmp.unlink()  # it changed between the two stats: check its bytes instead
                if _copy_verified(candidate, tmp, md5):
                    os.chmod(tmp, 0o444)
                    _stamp(tmp, md5)  # the user's own copy: its stamp is the user's to write
                    size = os.stat(tmp).st_size
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, dest)
                    return _Got(size, root)
            except OSError:
                continue  # unreadable or gone (an NFS hiccup): the next source supplies it
            finally:
                tmp.unlink(missing_ok=True)
        return None

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
        if not _MD5_RE.match(md5):
            raise ValueError(f"not an md5 hash: {md5!r}")
        if not self._object_ok(md5, rehash=verify):
            self._obtain(md5, remote, label=label, rehash=verify, progress=progress)
        return self.object_path(md5)

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
        named = self.root / "files" / _hash_key(md5) / filename
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
        it, the others downloaded, in parallel.

        Returns:
            ``tally`` (or a new one), counting what came from the remote and the shared caches.
        """
        tally = tally if tally is not None else _Tally()
        labels: dict[str, str] = {}
        for entry in entries:
            labels.setdefault(entry.md5, f"file {entry.relpath!r} of artifact {dir_md5}")
        # One stat each for stamped objects; the rest are re-hashed, in parallel.
        unsure = [md5 for md5 in labels if verify or not self._stamped(md5)]
        checks = _map_threads(partial(self._object_ok, rehash=verify), unsure)
        missing = [md5 for md5, ok in zip(unsure, checks, strict=True) if not ok]
        if not missing:
            return tally
        # What a shared cache seems to hold (one stat each) is not asked of the remote, so a
        # load that the shared caches can serve never touches the remote.
        budget: dict[str, int] = {}
        for md5 in missing:
            found = next(self._shared_candidates(md5), None)
            if found is not None:
                budget[md5] = found[2].st_size
        remote_only = [md5 for md5 in missing if md5 not in budget]
        workers = jobs or (remote.jobs if remote_only else min(32, 4 * (os.cpu_count() or 1)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="registry-fetch") as pool:
            # Sizes first: the progress total, and a missing object fails before any download.
            stats = _run_all(pool, [partial(remote.stat, m, label=labels[m]) for m in remote_only])
            total = sum(stat.size for stat in stats) + sum(budget.values())
            done = 0
            counter = threading.Lock()

            def report(n: int) -> None:
                nonlocal done
                with counter:
                    done += n
                    if progress is not None:
                        progress(done, total)

            def rebudget(md5: str, size: int) -> None:
                nonlocal total
                with counter:
                    total += size - budget[md5]

            def from_shared(md5: str) -> None:
                got = self._obtain(md5, remote, label=labels[md5], rehash=verify, download=False)
                if got is _NOT_SHARED:
                    # The shared copy was bad or went away: the remote's bytes take its share.
                    stat = remote.stat(md5, label=labels[md5])
                    rebudget(md5, stat.size)
                    got = self._obtain(
                        md5, remote, on_bytes=report, label=labels[md5], shared=False, stat=stat
                    )
                    if got is None:
                        report(stat.size)
                elif got is None:
                    report(budget[md5])  # another process got it first
                else:
                    rebudget(md5, got.size)  # (another shared cache's copy, if the first was bad)
                    report(got.size)
                tally.add(got)

            def fetch_one(md5: str, stat: RemoteObject) -> None:
                got = self._obtain(
                    md5, remote, on_bytes=report, label=labels[md5], shared=False, stat=stat
                )
                if got is None:
                    report(stat.size)  # another process got it first; keep the bar honest
                tally.add(got)

            _run_all(
                pool,
                [partial(from_shared, m) for m in budget]
                + [partial(fetch_one, m, s) for m, s in zip(remote_only, stats, strict=True)],
            )
        return tally

    # -- snapshots -----------------------------------------------------------------------------

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
                intact = not _stale(path, entries)
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
                intact = not _stale_shared(path, entries)
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
            if hashlib.md5(data, usedforsecurity=False).hexdigest() == _hash_key(dir_md5):
                return _parse_listing(data, dir_md5)
        return None

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
            # Looked for again under the lock: whoever held it may have just made or fixed it.
            if path.is_dir():
                return self._repair(dir_md5, path, remote, jobs, progress, verify)
            return self._assemble(dir_md5, path, remote, jobs, progress, verify)

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
        self._sweep_tmp()
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
            suspects = _stale(path, entries)
            if not suspects:
                return FetchResult(path, len(entries), 0, 0)
        checks = _map_threads(lambda e: self._file_ok(path / e.relpath, e.md5), suspects)
        bad = [entry for entry, ok in zip(suspects, checks, strict=True) if not ok]
        tally = self._ensure_objects(bad, remote, dir_md5, jobs, progress, verify)
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

    def _sweep_tmp(self) -> None:
        """Delete what processes that died left in ``tmp/`` long ago."""
        cutoff = time.time() - _STALE_TMP_SECONDS
        try:
            children = list(self._tmp_dir().iterdir())
        except OSError:
            return
        for child in children:
            try:
                if child.lstat().st_mtime >= cutoff:
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
            except OSError:
                continue


# -- helpers -----------------------------------------------------------------------------------


def _dir_key(dir_md5: str) -> str:
    """The snapshot key of a ``.dir`` hash (the md5 without ``.dir``)."""
    if not (isinstance(dir_md5, str) and dir_md5.endswith(".dir") and _MD5_RE.match(dir_md5)):
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
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest() == _hash_key(md5)


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
        return not os.path.islink(path) and _hash_file(path) == md5
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
