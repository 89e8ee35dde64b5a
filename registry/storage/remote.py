"""A registry's DVC remote, read through DVC's own remote machinery.

:class:`RemoteStore` reads objects from the registry's DVC remote as configured at a commit, so
every remote type, config level and credential DVC knows works here too. Each download is
verified: its md5, or on Cloud Storage the MD5 the bucket stored and a CRC32C of the bytes
received (see :class:`_Digest`), both read from the download's own ``x-goog-hash`` header, so
that an object of up to 8 MiB costs one request. The local copy lives in
:mod:`registry.storage.cache`.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import re
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from registry.errors import (
    ConfigError,
    CorruptArtifactError,
    MissingDependencyError,
    RegistryError,
    RelativeRemoteError,
    RemoteError,
    first_line,
)
from registry.storage.hashes import CHUNK, MD5_RE, content_digest

if TYPE_CHECKING:
    from dvc_data.hashfile.db import HashFileDB

    from registry.repo.git import GitRepo

__all__ = ["ProgressCallback", "RemoteObject", "RemoteStore"]

#: Called with (bytes downloaded so far, bytes to download in all), from worker threads, one
#: call at a time.
ProgressCallback = Callable[[int, int], None]

# A download reads an object in requests of this many bytes (a smaller object in one request):
# fewer, larger requests than a buffered remote file's blocks, each hashed and written as one
# piece, at the cost of holding one range in memory per parallel download.
_RANGE = 8 << 20
# Which DVC remote schemes need which pip extra ("gs://..." -> 'dvc[gs]').
# The md5 of no bytes: such an object is written without asking the remote.
_EMPTY_MD5 = hashlib.md5(b"", usedforsecurity=False).hexdigest()
_EXTRA_FOR_SCHEME = {"gs": "gs", "gcs": "gs", "s3": "s3", "azure": "azure", "az": "azure"}


class RemoteObject(NamedTuple):
    """An object on the remote: its size, and on Cloud Storage the MD5 (hex) and CRC32C (4
    bytes) the bucket stored for it (``None`` elsewhere, or for a composite object)."""

    size: int
    checksums: tuple[str, bytes] | None


def _gcs_checksums(info: dict[str, Any]) -> tuple[str, bytes] | None:
    """Cloud Storage's MD5 (hex) and CRC32C (4 bytes) of an object, from its metadata.

    ``None`` for other remotes, and for composite GCS objects (which have no MD5).
    """
    return _decoded_checksums(info.get("md5Hash"), info.get("crc32c"))


def _goog_hash(headers: Any) -> tuple[str, bytes] | None:
    """Cloud Storage's MD5 (hex) and CRC32C (4 bytes) of an object, from a download's
    ``x-goog-hash`` headers (``crc32c=<base64>,md5=<base64>``, in one header or two).

    ``None`` when either is missing (a composite object has no MD5; a proxy may drop the header)
    or when the bytes are served transcoded (the checksums are those of the stored bytes): the
    bytes' own MD5 is checked instead.
    """
    if str(headers.get("X-Goog-Stored-Content-Encoding") or "identity").lower() != "identity":
        return None
    values = headers.getall("X-Goog-Hash", []) if hasattr(headers, "getall") else []
    found: dict[str, str] = {}
    for value in values:
        for part in str(value).split(","):
            key, _, b64 = part.strip().partition("=")
            found[key.lower()] = b64
    return _decoded_checksums(found.get("md5"), found.get("crc32c"))


def _decoded_checksums(md5_b64: object, crc_b64: object) -> tuple[str, bytes] | None:
    """The MD5 (hex) and CRC32C (4 bytes) from their base64 forms, or ``None`` if either is
    missing or malformed."""
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


def _response_size(headers: Any, received: int) -> int:
    """The object's size as a download's response states it: the total of its
    ``Content-Range`` (a range was asked for), else the bytes of the whole body."""
    match = re.fullmatch(r"bytes \d+-\d+/(\d+)", str(headers.get("Content-Range") or "").strip())
    return int(match.group(1)) if match else received


class _Digest:
    """Verifies downloaded bytes against the object's name, its md5.

    Against Cloud Storage, which stores the MD5 it computed of the uploaded bytes and a CRC32C
    (and sends both with every download, in ``x-goog-hash``), the bytes are checked with the
    CRC32C (several times faster than MD5, so a pull keeps up with a direct google-cloud-storage
    download) and the stored MD5 against the name; a different object, or bytes damaged in
    flight, fail either check. Elsewhere, or without those checksums, the bytes' own MD5 is
    computed.
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
            Nothing here. On first use: ConfigError if the remote is unknown or missing, or
            RelativeRemoteError (a ConfigError) if it is a relative local path in a mirror
            (which has no folder to be relative to);
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
        except RelativeRemoteError:
            # Released while the remote was the embedded default (a folder next to the clone),
            # before the lab moved to a shared remote: use the registry's current remote (its
            # default branch), where 'dvc push -r <new> --all-tags' copied the old releases.
            if self.repo.work_tree is None:
                head = self.repo.resolve_commit("HEAD")
                if head != self.commit:
                    try:
                        return self._resolve_at(head)
                    except RelativeRemoteError:
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
        raise RelativeRemoteError(
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

    def local_path(self, md5: str) -> str | None:
        """The file of object ``md5`` when the remote is a folder on this machine, else ``None``.

        A local remote's objects are read with plain file calls (:meth:`copy_local`), not
        through fsspec: for 20,000 small files its per-call work (path normalising, ``info``
        dictionaries, buffered file objects) cost more than the copies themselves.
        """
        remote = self._remote()
        if remote.odb.fs.protocol != "local":
            return None
        return os.path.join(remote.odb.path, md5[:2], md5[2:])

    def copy_local(
        self,
        md5: str,
        out: int,
        size: int,
        *,
        on_bytes: Callable[[int], None] | None = None,
        label: str | None = None,
    ) -> None:
        """Copy object ``md5`` of a local remote (see :meth:`local_path`) into the open file
        ``out`` (a descriptor), checking its md5 on the same pass over the bytes.

        Args:
            md5: The object's hash (``.dir`` suffix included for listings).
            out: Where to write the bytes; the caller makes the file appear once this returns.
            size: Its size as :meth:`stat` gave it: a smaller object is read in one call.
            on_bytes: Called with the size of each MiB written (for progress).
            label: What the object is, for error messages.

        Raises:
            ValueError: If the remote is not a local folder.
            RemoteError: If the object is missing or cannot be read.
            CorruptArtifactError: If its bytes do not match ``md5``.
        """
        src = self.local_path(md5)
        if src is None:
            raise ValueError(f"{self!r} is not a local folder: use fetch()")
        digest = hashlib.md5(usedforsecurity=False)
        try:
            fd = os.open(src, os.O_RDONLY)
        except FileNotFoundError as e:
            raise self._not_found(md5, label) from e
        except OSError as e:
            raise self._unreachable(e) from e
        try:
            # Asking for one byte more than the stated size reads a small object and sees its
            # end in one call (a short read of a regular file is its end); a larger one goes in
            # ranges. Whatever was read, the md5 below decides.
            ask = min(size + 1, _RANGE)
            while True:
                try:
                    data = os.read(fd, ask)
                except OSError as e:
                    raise self._unreachable(e) from e
                if not data:
                    break
                digest.update(data)
                view = memoryview(data)
                for offset in range(0, len(view), CHUNK):  # progress moves a MiB at a time
                    chunk = view[offset : offset + CHUNK]
                    while chunk:  # a write's error (a full disk) is the caller's to report
                        chunk = chunk[os.write(out, chunk) :]
                    if on_bytes is not None:
                        on_bytes(min(CHUNK, len(view) - offset))
                if len(data) < ask:
                    break
                ask = _RANGE
        finally:
            os.close(fd)
        got = digest.hexdigest()
        if got != content_digest(md5):
            raise self._corrupt(md5, src, label, f"has md5 {got}, not {content_digest(md5)}")

    def stat(self, md5: str, *, label: str | None = None) -> RemoteObject:
        """Return the size of object ``md5`` on the remote, and on Cloud Storage its checksums.

        Args:
            md5: The object's hash (``.dir`` suffix included for listings).
            label: What the object is, for error messages (e.g. ``file 'a.json' of ...``).

        Raises:
            RemoteError: If the remote cannot be reached or does not hold the object.
        """
        local = self.local_path(md5)
        if local is not None:  # one stat, not fsspec's info (see local_path)
            try:
                return RemoteObject(os.stat(local).st_size, None)
            except FileNotFoundError as e:
                raise self._not_found(md5, label) from e
            except OSError as e:
                raise self._unreachable(e) from e
        remote = self._remote()
        path = remote.odb.oid_to_path(md5)
        try:
            info = remote.odb.fs.info(path)
        except FileNotFoundError as e:
            raise self._not_found(md5, label) from e
        except Exception as e:  # every backend raises its own classes
            raise self._unreachable(e) from e
        return RemoteObject(int(info.get("size") or 0), _gcs_checksums(info))

    def has(self, md5: str) -> bool:
        """Whether the remote holds object ``md5``.

        Raises:
            RemoteError: If the remote cannot be reached (a missing object is ``False``).
        """
        remote = self._remote()
        try:
            remote.odb.fs.info(remote.odb.oid_to_path(md5))
        except FileNotFoundError:
            return False
        except Exception as e:  # every backend raises its own classes
            raise self._unreachable(e) from e
        return True

    def size(self, md5: str, *, label: str | None = None) -> int:
        """Return the size in bytes of object ``md5`` on the remote (see :meth:`stat`)."""
        return self.stat(md5, label=label).size

    @property
    def sized_by_download(self) -> bool:
        """Whether :meth:`fetch` learns an object's size and checksums from the download itself,
        so that no :meth:`stat` need come first (Cloud Storage: one request an object of up to
        8 MiB). Elsewhere :meth:`fetch` stats the object unless given its ``stat``."""
        return self._remote().scheme in ("gs", "gcs")

    def fetch(
        self,
        md5: str,
        dest: Path,
        *,
        stat: RemoteObject | None = None,
        on_size: Callable[[int], None] | None = None,
        on_bytes: Callable[[int], None] | None = None,
        progress: ProgressCallback | None = None,
        label: str | None = None,
    ) -> RemoteObject:
        """Download object ``md5`` to ``dest``, verified and atomically.

        Bytes stream to a temporary sibling of ``dest`` while they are checked; ``dest`` appears
        (by ``os.replace``) only once all bytes are there and pass. The object is read in ranges
        of 8 MiB, one request each (one request for a smaller object):

        - On Cloud Storage no metadata request comes first: the first response's
          ``Content-Range`` gives the object's size and its ``x-goog-hash`` the MD5 and CRC32C
          the bucket stored. The stored MD5 must be ``md5`` and the bytes must match the stored
          CRC32C; without that header (a composite object, a proxy that drops it) the bytes' own
          MD5 is checked. Later ranges are read from the first response's object generation.
        - Elsewhere the object's size comes from :meth:`stat` (or ``stat``), and the bytes' MD5
          is checked.

        Either way the number of bytes that arrive must be the object's size. The empty object
        (md5 ``d41d8cd9...``) is written without a request: its bytes are known.

        Args:
            md5: The object's hash (``.dir`` suffix included for listings).
            dest: Where to write it; parent folders are created.
            stat: What :meth:`stat` says of the object, if already asked: saves a request
                (on Cloud Storage only a hint of its size: the download's own headers decide).
            on_size: Called once with the object's size, before its first bytes are written.
            on_bytes: Called with the size of each MiB written (for progress).
            progress: Called with ``(done bytes, object size)`` as each MiB is written.
            label: What the object is, for error messages (e.g. ``file 'a.json' of ...``).

        Returns:
            The object's size and, on Cloud Storage, the checksums the bytes were checked with.

        Raises:
            RemoteError: If the remote cannot be reached or does not hold the object.
            CorruptArtifactError: If the bytes on the remote do not match ``md5``, or fewer or
                more bytes arrive than the object has.
        """
        remote = self._remote()
        rpath = remote.odb.oid_to_path(md5)
        found: RemoteObject
        pieces: Iterator[bytes]
        if content_digest(md5) == _EMPTY_MD5:
            found, pieces = RemoteObject(0, None), iter(())
        elif self.sized_by_download:
            found, pieces = self._gcs_read(rpath, md5, label, stat)
        else:
            found = stat if stat is not None else self.stat(md5, label=label)
            pieces = self._ranges(rpath, found.size, md5, label)
        size, stored = found
        digest = _Digest(stored)
        if stored is not None and stored[0] != content_digest(md5):
            # The bucket says these are other bytes: not worth downloading.
            raise self._corrupt(md5, rpath, label, digest.mismatch(content_digest(md5)))
        if on_size is not None:
            on_size(size)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                done = 0
                for data in pieces:
                    # Hashing and writing release the GIL, so parallel downloads use every core;
                    # one hash call per range keeps the threads from queueing for the GIL.
                    digest.update(data)
                    view = memoryview(data)
                    for offset in range(0, len(view), CHUNK):  # progress moves a MiB at a time
                        chunk = view[offset : offset + CHUNK]
                        out.write(chunk)
                        done += len(chunk)
                        if on_bytes is not None:
                            on_bytes(len(chunk))
                        if progress is not None:
                            progress(done, size)
            if done != size:
                cut = f"arrived with {done:,} bytes, not its {size:,} (cut off in transfer)"
                raise self._corrupt(md5, rpath, label, cut)
            problem = digest.mismatch(content_digest(md5))
            if problem is not None:
                raise self._corrupt(md5, rpath, label, problem)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return found

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

    def _gcs_read(
        self, rpath: str, md5: str, label: str | None, hint: RemoteObject | None
    ) -> tuple[RemoteObject, Iterator[bytes]]:
        """Start reading the object at ``rpath`` from Cloud Storage: its size and checksums, as
        the first response's headers state them, and its bytes, in ranges of ``_RANGE``.

        The first request asks for the whole object when ``hint`` says it fits in one range,
        else for its first range (whose ``Content-Range`` names the size): either way, an object
        of up to 8 MiB costs this one request. Later ranges name the first response's
        generation, so every range is of the object whose checksums the first one gave.
        """
        gcs = self._remote().odb.fs.fs  # gcsfs, under DVC's wrapper
        whole = hint is not None and hint.size <= _RANGE
        headers, first = self._gcs_get(gcs, rpath, md5, label, None if whole else 0)
        size = _response_size(headers, len(first))
        generation = headers.get("X-Goog-Generation")

        def pieces() -> Iterator[bytes]:
            yield first
            start = len(first)
            while start < size:
                _, chunk = self._gcs_get(gcs, rpath, md5, label, start, size, generation)
                if not chunk:
                    return  # fewer bytes than the object has: fetch reports it
                yield chunk
                start += len(chunk)

        return RemoteObject(size, _goog_hash(headers)), pieces()

    def _gcs_get(
        self,
        gcs: Any,
        rpath: str,
        md5: str,
        label: str | None,
        start: int | None,
        size: int | None = None,
        generation: str | None = None,
    ) -> tuple[Any, bytes]:
        """One GET of the object at ``rpath``: the range of up to ``_RANGE`` bytes from
        ``start`` (never past ``size``, if known), or with ``start=None`` the whole object.

        Returns:
            The response's headers and body. A range of an object that is empty (HTTP 416)
            is an empty body with no headers: the bytes' MD5 then tells whether that is right.
        """
        request: dict[str, str] = {}
        if start is not None:
            end = start + _RANGE if size is None else min(size, start + _RANGE)
            request["Range"] = f"bytes={start}-{end - 1}"
        try:
            headers, body = gcs.call("GET", gcs.url(rpath, generation=generation), headers=request)
        except FileNotFoundError as e:
            raise self._not_found(md5, label) from e
        except Exception as e:  # gcsfs raises its own classes, and aiohttp's
            if start == 0 and getattr(e, "code", None) == 416:
                return {}, b""
            raise self._unreachable(e) from e
        return headers, bytes(body)

    def list_objects(self) -> dict[str, int]:
        """Every object on the remote, and its size: what ``registry remote gc`` sorts.

        Returns:
            ``{md5: bytes}`` (``<md5>.dir`` for listings); files that are no DVC object (the
            write check's probe, anything put there by hand) are left out.

        Raises:
            RemoteError, CredentialsError: If the remote cannot be read (:meth:`check`).
        """
        self.check()
        remote = self._remote()
        fs, base = remote.odb.fs, remote.odb.path
        objects: dict[str, int] = {}
        try:
            # One listing per two-hex-digit folder, with sizes (a find would stat each object).
            prefixes = fs.ls(base, detail=False) if fs.exists(base) else []
            for prefix in prefixes:
                for info in fs.ls(prefix, detail=True) if fs.isdir(prefix) else []:
                    md5 = "".join(str(info["name"]).rstrip("/").split("/")[-2:])
                    if MD5_RE.match(md5) and info.get("type") != "directory":
                        objects[md5] = int(info.get("size") or 0)
        except Exception as e:  # every backend raises its own classes
            raise self._unreachable(e) from e
        return objects

    def delete(self, md5s: Iterable[str]) -> dict[str, int]:
        """Delete objects from the remote (a purge, ``remote gc --delete``).

        Args:
            md5s: The objects (``<md5>`` or ``<md5>.dir``); one that is not there is skipped.

        Returns:
            Each object deleted, and its size.

        Raises:
            RemoteError, CredentialsError: If the remote cannot be reached or refuses; the
                objects deleted before stay deleted (run the same command again to finish).
        """
        remote = self._remote()
        fs = remote.odb.fs
        deleted: dict[str, int] = {}
        for md5 in md5s:
            path = remote.odb.oid_to_path(md5)
            try:
                size = int(fs.info(path).get("size") or 0)
                fs.rm_file(path)
            except FileNotFoundError:
                continue  # gone already: a rerun, or never pushed
            except Exception as e:  # every backend raises its own classes
                explained = self.explain(e, "deleting from")
                raise explained or RemoteError(
                    f"cannot delete object {md5} from DVC remote {remote.name!r} "
                    f"({remote.url}): {type(e).__name__}: {e} ({len(deleted)} deleted before)"
                ) from e
            deleted[md5] = size
        return deleted

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
        from registry.cloud.gcs import explain_storage_error

        return explain_storage_error(
            error, remote=remote.name, url=remote.url, action=f"{action} {remote.url}"
        )

    def check(self, *, write: bool = False) -> None:
        """Check that the remote can be read (and written): credentials, bucket, permissions.

        One listing of the remote's folder; with ``write``, a small probe object is written under
        ``<remote>/.registry-check/`` and deleted again. A release runs this before pushing, so
        that a remote it cannot write fails before anything is uploaded. The check never creates
        the remote's root: a local remote's folder must exist.

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
            if remote.scheme == "local" and not fs.isdir(remote.root):
                # Never created here: a missing folder is a typo, or a folder only one machine
                # has, and bytes pushed there would be lost to everyone else.
                raise RemoteError(
                    f"DVC remote {remote.name!r} ({remote.url}) is the folder {remote.root}, "
                    "which does not exist; check its URL with 'dvc remote list', or create the "
                    f"folder ('mkdir -p {remote.root}') if releases are meant to go there"
                )
            # A listing: needs the permission to read. A new bucket prefix may not exist yet.
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
    from registry.cloud.credentials import find_credentials
    from registry.config import parse_bool

    anonymous = options.get("allow_anonymous_login", False)
    if parse_bool(anonymous, f"allow_anonymous_login of DVC remote {name!r}"):
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


