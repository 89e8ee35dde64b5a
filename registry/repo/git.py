"""The registry's Git repository: tags, file reads at any revision, tag writes.

A registry is opened from a local path (a clone, read in place) or from a Git URL, which is
mirrored once into the cache (``<cache>/repos/<hash>.git``) and fetched only when a lookup needs
fresh tags. Every tag comes from one ``git show-ref`` call (names and commits, no tag object
read), one artifact's tags from one ``git for-each-ref``; files at a revision come through one
long-lived ``git cat-file --batch`` process, one at a time or many at once (:meth:`read_files`,
which walks their trees itself, each read once), never one process per file. Plain ``git``
subprocesses throughout: no GitPython import (~75 ms) on a lookup's path.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from registry.config import GIT_TIMEOUT_ENV, git_timeout
from registry.errors import GitError, NotARegistryError, RemoteError, TagRaceError
from registry.grammar import tag_artifact

__all__ = ["NOTES_REF", "GitRepo", "TagLease", "TagRef", "is_local_path", "tip_ref"]

_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASK_YESNO": "false"}
# Up to this many tags are read one by one from the cat-file process, more in one listing.
_FEW_TAGS = 50
# Up to this many artifacts' tags are listed by pattern, more by filtering every tag's listing.
_FEW_ARTIFACTS = 16
#: The Git notes the registry keeps on released commits: what reproducing a version found
#: (:mod:`registry.repo.records`). Pushed with every tag, fetched with the tags.
NOTES_REF = "refs/notes/registry"


def _fetched_notes(remote: str) -> str:
    """Where the notes fetched from ``remote`` land before they are merged into ours (under
    ``refs/notes/``, where ``git notes merge`` looks)."""
    return f"refs/notes/fetched/{remote}/registry"


@dataclass(frozen=True)
class TagRef:
    """One Git tag, as :meth:`GitRepo.tags` lists it.

    A listing of one artifact's tags reads every field. A listing of every tag reads names
    and commits only (``created``, ``message`` and ``tagger`` are ``""``), except for
    deregistration tags (``name@vX.Y.Z!``), whose details a yank's reason needs: reading the
    date and message of 20,000 tag objects is what made a listing cost 0.2-0.3 s.

    Attributes:
        name: The tag name, e.g. ``image_classification/digits@v1.0.0``.
        commit: The commit the tag points at (peeled through an annotated tag).
        created: The tag's (or, for a lightweight tag, the commit's) ISO 8601 date.
        message: The first line of an annotated tag's message.
        tagger: The tagger's email (``""`` for a lightweight tag).
        object: The tag object's id (a lightweight tag's: its commit's), to read it by.
    """

    name: str
    commit: str
    created: str
    message: str = ""
    tagger: str = ""
    object: str = ""


@dataclass(frozen=True)
class TagLease:
    """What a clone saw of an artifact's tags on the Git remote, to be checked at the push.

    Every registry command that tags an artifact (release, promote, demote, deprecate) also
    moves the artifact's tip ref (:func:`tip_ref`) on the remote to its new tag, in one atomic
    push that expects the tip where it was when the tags were fetched (``--force-with-lease``).
    So two clones that decided from the same tags cannot both land: the second push changes
    nothing and is told that another clone tagged first.

    Attributes:
        artifact: The artifact name.
        remote: The Git remote pushed to.
        ref: The tip ref on that remote.
        expected: The object the tip pointed at when the tags were fetched ("": no tip yet).
    """

    artifact: str
    remote: str
    ref: str
    expected: str


def tip_ref(artifact: str) -> str:
    """The ref that points at the newest tag a registry command made for ``artifact``.

    ``/`` is written ``%2F``, so that ``a`` and ``a/b`` get sibling refs, not a file and a folder.

    Example:
        >>> tip_ref("image_classification/digits")
        'refs/registry/tips/image_classification%2Fdigits'
    """
    return "refs/registry/tips/" + artifact.replace("/", "%2F")


def is_local_path(url: str) -> bool:
    """Whether ``url`` names a folder on this machine (not ``ssh``, ``https``, ``file://`` ...)."""
    if "://" in url:
        return False
    # scp-like syntax (user@host:path) has a colon before any slash.
    head = url.split("/", 1)[0]
    return ":" not in head or os.path.isabs(url)


# The git commands that talk to a remote: they run under config.git_timeout().
_NETWORK = frozenset({"clone", "fetch", "ls-remote", "push"})


def _run_git(args: list[str], cwd: Path | None = None, check: bool = True) -> str:
    """Run one git command and return its stdout; raise GitError with git's message on failure."""
    try:
        done = _run(["git", *args], cwd, network=args[0] in _NETWORK)
    except FileNotFoundError as e:
        raise GitError("git is not installed or not on PATH; install git first") from e
    if check and done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        # git's reason is its first 'fatal:'/'error:' line; advice ("Please make sure ...") follows.
        reasons = [line for line in lines if line.startswith(("fatal:", "error:"))]
        message = (reasons or lines or ["no output"])[0 if reasons else -1]
        raise GitError(f"git {args[0]} failed: {message}")
    return done.stdout


def _run(argv: list[str], cwd: Path | None, network: bool) -> subprocess.CompletedProcess[str]:
    """Run git; one that talks to a remote is killed, with its helpers (ssh, git-remote-*), when
    the remote has not finished within :func:`config.git_timeout`."""
    timeout = git_timeout() if network else None
    with subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **_GIT_ENV}, start_new_session=network,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException as e:  # the timeout, or Ctrl-C (a network git has its own session)
            with contextlib.suppress(ProcessLookupError):
                if network:
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.kill()
            proc.communicate()
            if not isinstance(e, subprocess.TimeoutExpired):
                raise
            raise GitError(
                f"git {argv[1]} got no answer from the remote within {timeout:g} s: check the "
                f"network and the remote's URL ({GIT_TIMEOUT_ENV} sets the limit)"
            ) from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _object_header(header: bytes) -> tuple[str, int] | None:
    """The type and size in a ``cat-file --batch`` header (``None``: missing or ambiguous)."""
    fields = header.split()
    if len(fields) != 3 or not fields[2].isdigit():
        return None  # "<name> missing", "<name> ambiguous"
    return fields[1].decode(), int(fields[2])


class _Object(NamedTuple):
    """One object a ``cat-file --batch`` request names (all empty: none there)."""

    oid: str
    kind: str
    data: bytes | None


def _tree_entries(data: bytes, oid_bytes: int) -> dict[bytes, tuple[bytes, str]]:
    """A tree object's entries: name -> (mode, object id in hex). An entry is ``<mode> <name>``,
    a NUL, then the id's raw bytes (20 for SHA-1, 32 for SHA-256)."""
    entries: dict[bytes, tuple[bytes, str]] = {}
    at = 0
    while at < len(data):
        space = data.index(b" ", at)
        nul = data.index(b"\0", space)
        entries[data[space + 1 : nul]] = (data[at:space], data[nul + 1 : nul + 1 + oid_bytes].hex())
        at = nul + 1 + oid_bytes
    return entries


def _read_paths(
    read_many: Callable[[Sequence[str]], list[_Object]], wanted: Sequence[tuple[str, str]]
) -> list[bytes | None]:
    """The blobs at many ``(rev, path)``, walking the trees here, each tree read once.

    ``git cat-file --batch`` given ``rev:path`` inflates every tree on the path anew for each
    request: 1,000 cards under one ``models/`` folder of 1,000 entries cost 40 MB of inflating,
    0.07 s, for 0.2 MB of cards. Read here by id, level by level (a level's requests written
    at once, each tree once), the same cards cost ~0.01 s of Git (``read_many``: the objects of
    many requests, in order: :meth:`_ObjectReader.read_many`). An answer is what ``rev:path``
    gives: a missing path, revision or folder is ``None``; a symlink is its target's text, as
    Git stores it; a path through a symlink or a submodule is ``None`` (Git does not follow
    them).
    """
    revs = sorted({rev for rev, _ in wanted})
    # The root tree of each revision (`rev^{tree}` peels tags and commits), then its entries.
    trees: dict[str, dict[bytes, tuple[bytes, str]]] = {}
    root_of: dict[str, str | None] = {}
    for rev, (oid, kind, data) in zip(revs, read_many([f"{rev}^{{tree}}" for rev in revs]),
                                      strict=True):
        root_of[rev] = oid if kind == "tree" and data is not None else None
        if data is not None and kind == "tree" and oid not in trees:
            trees[oid] = _tree_entries(data, len(oid) // 2)
    # Each request's position: the tree it stands in and the path's parts left to walk.
    walks: list[tuple[str | None, list[bytes]]] = [
        (root_of[rev], [part.encode() for part in rel.split("/")]) for rev, rel in wanted
    ]
    blobs: list[str | None] = [None] * len(wanted)
    while True:
        # Step every walk one level down the trees already read; ask for the trees it reaches.
        needed: set[str] = set()
        moving = False
        for i, (tree, parts) in enumerate(walks):
            if tree is None or not parts:
                continue
            entry = trees[tree].get(parts[0])
            if entry is None or not parts[0] or parts[0] in (b".", b".."):
                walks[i] = (None, [])
                continue
            mode, oid = entry
            if len(parts) == 1:
                # A file or a symlink's text; a folder or a submodule is no file.
                blobs[i] = oid if mode.startswith((b"100", b"120")) else None
                walks[i] = (None, [])
            elif mode == b"40000":
                walks[i] = (oid, parts[1:])
                moving = True
                if oid not in trees:
                    needed.add(oid)
            else:
                walks[i] = (None, [])
        if not moving:
            break
        ids = sorted(needed)
        for oid, (_, kind, data) in zip(ids, read_many(ids), strict=True):
            trees[oid] = _tree_entries(data, len(oid) // 2) if kind == "tree" and data else {}
    ids = sorted({oid for oid in blobs if oid is not None})
    read = {oid: data for oid, (_, kind, data) in zip(ids, read_many(ids), strict=True)
            if kind == "blob"}
    return [read.get(oid) if oid is not None else None for oid in blobs]


def _message_of(kind: str, data: bytes) -> str:
    """A tag object's message: what follows its header lines (``""``: not a tag object, the
    commit of a lightweight tag)."""
    if kind != "tag":
        return ""
    _, _, message = data.decode("utf-8", errors="replace").partition("\n\n")
    return message


class _ObjectReader:
    """One long-lived ``git cat-file --batch`` process, for objects read one at a time.

    A process per read would cost ~3 ms each; a round trip here costs ~0.5 ms. Safe to share
    between threads (one request at a time); the process ends with the reader.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            try:
                self._proc = subprocess.Popen(
                    ["git", "cat-file", "--batch"], cwd=self._path, stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                    env={**os.environ, **_GIT_ENV},
                )
            except FileNotFoundError as e:
                raise GitError("git is not installed or not on PATH; install git first") from e
            weakref.finalize(self, _stop, self._proc)
        return self._proc

    def read_many(self, specs: Sequence[str]) -> list[_Object]:
        """The objects ``specs`` name, in order (``_Object("", "", None)``: absent), every
        request written at once.

        A thread writes the requests while this one reads the answers: written first, a long
        list would fill the pipe to git while git waits for its answers to be read.
        """
        if not specs:
            return []
        # A request is one line: one holding a newline is asked as an empty line (absent).
        lines = b"".join((s.encode() if "\n" not in s else b"") + b"\n" for s in specs)
        found: list[_Object] = []
        with self._lock:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            stdin, stdout = proc.stdin, proc.stdout

            def write() -> None:
                with contextlib.suppress(BrokenPipeError, ValueError):
                    stdin.write(lines)
                    stdin.flush()

            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            try:
                for _ in specs:
                    line = stdout.readline()
                    if not line.endswith(b"\n"):
                        raise GitError("git cat-file stopped while reading objects")
                    header = _object_header(line)
                    if header is None:
                        found.append(_Object("", "", None))
                        continue
                    kind, size = header
                    data = stdout.read(size + 1)[:size]  # the bytes, then a newline
                    found.append(_Object(line.split(b" ", 1)[0].decode(), kind, data))
            except GitError:
                _stop(proc)
                self._proc = None
                raise
            finally:
                writer.join()
        return found

    def read(self, spec: str) -> tuple[str, bytes] | None:
        """The type and bytes of the object ``spec`` names (``rev:path``, a ref), or ``None``."""
        if "\n" in spec:
            return None  # a request is one line
        with self._lock:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            try:
                proc.stdin.write(spec.encode() + b"\n")
                proc.stdin.flush()
                header = _object_header(proc.stdout.readline())
                if header is None:
                    return None
                kind, size = header
                data = proc.stdout.read(size + 1)[:size]  # the bytes, then a newline
            except (BrokenPipeError, ValueError) as e:
                self._proc = None
                raise GitError(f"git cat-file stopped while reading {spec!r}") from e
            return kind, data


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a ``cat-file`` process: it exits at the end of its input."""
    with contextlib.suppress(OSError, ValueError):
        if proc.stdin is not None:
            proc.stdin.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


class GitRepo:
    """A registry's Git repository, read and written through git.

    Attributes:
        path: The work tree (or, for a mirror, the bare repository).
        url: Where it came from, as the user gave it.
        work_tree: The work tree, or ``None`` for a bare mirror.
    """

    def __init__(self, path: Path, url: str, work_tree: Path | None) -> None:
        self.path = path
        self.url = url
        self.work_tree = work_tree

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, cache_dir: Path) -> GitRepo:
        """Open the registry at ``url``: a local clone in place, anything else as a mirror.

        Args:
            url: A local path or a Git URL.
            cache_dir: The registry cache, where mirrors live.

        Raises:
            NotARegistryError: If a local path is not a Git repository.
            RemoteError: If a URL cannot be cloned.
        """
        if is_local_path(url):
            path = Path(url).expanduser().resolve()
            if not path.exists():
                raise NotARegistryError(
                    f"registry path {url!r} does not exist; set REGISTRY_URL to a registry clone "
                    "or Git URL"
                )
            try:
                top = _run_git(["rev-parse", "--show-toplevel"], cwd=path).strip()
            except GitError:
                top = ""
            if top:
                return cls(Path(top), url, Path(top))
            if _run_git(["rev-parse", "--is-bare-repository"], cwd=path, check=False).strip() == (
                "true"
            ):
                # The bare repository itself, read in place: always current, nothing to fetch
                # (it has no "origin" of its own to refresh from).
                repo = cls(path, url, None)
                repo._fresh = True
                return repo
            raise NotARegistryError(f"{url!r} is not a Git repository, so not a registry")
        return cls._open_mirror(url, cache_dir)

    @classmethod
    def _open_mirror(cls, url: str, cache_dir: Path) -> GitRepo:
        from filelock import FileLock

        repos = cache_dir / "repos"
        repos.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256(url.encode()).hexdigest()[:20]
        mirror = repos / f"{key}.git"
        with FileLock(str(repos / f"{key}.lock")):
            if not (mirror / "HEAD").exists():
                tmp = repos / f"{key}.tmp-{os.getpid()}"
                try:
                    _run_git(["clone", "--quiet", "--mirror", url, str(tmp)])
                except GitError as e:
                    raise RemoteError(
                        f"cannot clone the registry from {url!r} ({e}); check REGISTRY_URL and "
                        "your access to it"
                    ) from e
                os.replace(tmp, mirror)
                repo = cls(mirror, url, None)
                repo._fresh = True
                return repo
        return cls(mirror, url, None)

    _fresh = False

    def refresh(self) -> None:
        """Fetch new tags and branches into a mirror (a no-op for a local clone or once done).

        A mirror whose HEAD names no commit (cloned while the remote's HEAD pointed at a branch
        that did not exist) takes the remote's HEAD again, so it recovers once the remote is
        fixed.
        """
        if self.work_tree is not None or self._fresh:
            return
        from filelock import FileLock

        with FileLock(str(self.path.with_suffix(".lock"))):
            try:
                _run_git(["fetch", "--quiet", "--prune", "origin"], cwd=self.path)
            except GitError as e:
                raise RemoteError(
                    f"cannot fetch the registry from {self.url!r} ({e}); check the network or "
                    "REGISTRY_URL"
                ) from e
            self._repair_head()
        self._fresh = True
        self._forget_tags()

    def _repair_head(self) -> None:
        """Point a mirror's HEAD where the remote's points, if it names no commit here (fetch
        updates branches, never a mirror's HEAD)."""
        if self.git("rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False).strip():
            return
        for line in self.git("ls-remote", "--symref", "origin", "HEAD", check=False).splitlines():
            ref, _, name = line.removeprefix("ref: ").partition("\t")
            if line.startswith("ref: ") and name == "HEAD" and ref.startswith("refs/heads/"):
                self.git("symbolic-ref", "HEAD", ref)
                return

    def fetch_tags(self) -> None:
        """Fetch the tags of the Git remote tags are pushed to (a no-op without one).

        A release runs this before it picks and checks a version, so that a clone that has not
        fetched since another clone released never releases a version out of order.

        Raises:
            RemoteError: If the remote cannot be fetched from.
        """
        remote = self.push_remote() if self.work_tree is not None else None
        if remote is None:
            return
        try:
            # The notes too: a glob, so that a remote without any is no error.
            self.git("fetch", "--quiet", "--tags", remote, self._notes_refspec(remote))
        except GitError as e:
            raise RemoteError(
                f"cannot fetch the tags of Git remote {remote!r} ({e}): a release must see "
                "every version released so far; check the network and 'git remote -v', then "
                "release again"
            ) from e
        self._merge_notes(remote)
        self._forget_tags()

    @staticmethod
    def _notes_refspec(remote: str) -> str:
        return f"+{NOTES_REF}*:{_fetched_notes(remote)}*"

    def _merge_notes(self, remote: str) -> None:
        """Merge the notes fetched from ``remote`` into ours, line by line (both sides' records
        kept, each once: ``cat_sort_uniq``)."""
        fetched = _fetched_notes(remote)
        if self.git("rev-parse", "--verify", "--quiet", fetched, check=False).strip():
            self.git("notes", f"--ref={NOTES_REF}", "merge", "--quiet", "-s", "cat_sort_uniq",
                     fetched)

    def lease_tags(self, artifact: str) -> TagLease | None:
        """Read ``artifact``'s tip on the push remote, then fetch the tags (``None``: no remote).

        The tip is read first: a tag pushed after that moves the tip, so the push of a tag
        decided from these tags fails instead of landing out of order (see :class:`TagLease`).

        Raises:
            RemoteError: If the remote cannot be read.
        """
        remote = self.push_remote()
        if remote is None:
            return None
        ref = tip_ref(artifact)
        if self.work_tree is None:
            # A mirror fetches every ref at once (+refs/*:refs/*): its own copy is the snapshot.
            self.refresh()
            expected = self.git("rev-parse", "--verify", "--quiet", ref, check=False).strip()
            return TagLease(artifact, remote, ref, expected)
        try:
            seen = self.git("ls-remote", remote, ref)
        except GitError as e:
            raise RemoteError(
                f"cannot fetch the tags of Git remote {remote!r} ({e}): tagging must see every "
                "tag made so far; check the network and 'git remote -v', then run it again"
            ) from e
        self.fetch_tags()
        return TagLease(artifact, remote, ref, seen.split("\t", 1)[0].strip())

    # -- reading ------------------------------------------------------------------------------

    def git(self, *args: str, check: bool = True) -> str:
        """Run ``git <args>`` in this repository and return its stdout."""
        return _run_git(list(args), cwd=self.path, check=check)

    # What for-each-ref reports of a tag: name, object, what it points at and that object's
    # type, date, tagger, subject.
    _TAG_FORMAT = (
        "--format=%(refname:strip=2)%00%(objectname)%00%(*objectname)%00%(*objecttype)%00"
        "%(creatordate:iso-strict)%00%(taggeremail)%00%(contents:subject)"
    )

    def _list_tags(self, *patterns: str) -> list[TagRef]:
        """The tags matching ``patterns`` (``refs/tags/...``), in one ``for-each-ref``."""
        tags = []
        for line in self.git("for-each-ref", self._TAG_FORMAT, *patterns).splitlines():
            name, obj, peeled, peeled_type, created, tagger, subject = line.split("\0", 6)
            if peeled_type == "tag":  # a tag of a tag (rare): peeled to its commit, as show-ref
                peeled = self.git("rev-parse", f"refs/tags/{name}^{{}}").strip()
            tagger = tagger.strip().removeprefix("<").removesuffix(">").lower()
            tags.append(TagRef(name, peeled or obj, created, subject, tagger, obj))
        return tags

    @cached_property
    def _tags(self) -> list[TagRef]:
        return self._list_every_tag()

    def _list_every_tag(self) -> list[TagRef]:
        """Every tag's name and commit from ``git show-ref --tags -d``; a yank tag's details
        from one ``for-each-ref`` of those tags alone.

        ``show-ref -d`` takes an annotated tag's commit from the ``^{}`` line that
        ``packed-refs`` stores (every clone packs its tags), so no tag object is read; a
        ``for-each-ref`` that asks for the commit, date or message reads all of them
        (10,500 tags: 0.01 s against 0.15 s). Its order (by ref name) is ``for-each-ref``'s.
        """
        out = self.git("show-ref", "--tags", "--dereference", check=False)
        objects: dict[str, str] = {}
        commits: dict[str, str] = {}
        for line in out.splitlines():
            oid, _, ref = line.partition(" ")
            name = ref.removeprefix("refs/tags/")
            if name.endswith("^{}"):
                commits[name[:-3]] = oid  # the peeled commit follows the tag object's line
            else:
                objects[name] = commits[name] = oid
        # Only a deregistration tag's details are read (its reason, who, when): see TagRef.
        yanks = [n for n in commits if n.endswith("!") and "@" in n]
        # (No pattern would list every tag: none are asked for when there is no yank.)
        listed = self._list_tags(*(f"refs/tags/{n}" for n in yanks)) if yanks else []
        details = {t.name: t for t in listed}
        return [
            details.get(n) or TagRef(n, commit, "", object=objects[n])
            for n, commit in commits.items()
        ]

    @cached_property
    def _tags_by_artifact(self) -> dict[str, list[TagRef]]:
        """Every tag, by the artifact it names (one pass over 20,000 tags, shared by
        :meth:`tagged_artifacts` and :meth:`tags`)."""
        grouped: dict[str, list[TagRef]] = {}
        for tag in self._tags:
            grouped.setdefault(tag_artifact(tag.name), []).append(tag)
        return grouped

    def tagged_artifacts(self) -> set[str]:
        """The name of every artifact a tag names (what comes before its ``@`` or ``#``),
        from every tag's listing.

        Example:
            >>> sorted(repo.tagged_artifacts())  # doctest: +SKIP
            ['digits-cnn', 'image_classification/digits']
        """
        return set(self._tags_by_artifact)

    def _forget_tags(self) -> None:
        """Tags may have changed (fetched, made, pushed): list them again when next asked."""
        self.__dict__.pop("_tags", None)
        self.__dict__.pop("_tags_by_artifact", None)
        self.tag_state = object()

    # Changes (a new object) whenever the tags may have changed: what a tag index built from
    # them is checked against (:meth:`registry.repo.session.Session.index`).
    tag_state: object = object()

    def tags(self, names: Iterable[str] | None = None) -> list[TagRef]:
        """Every tag, or only the GTO tags of the artifacts ``names``, in one git call.

        Every tag is listed once and cached until the tags may have changed. A few artifacts'
        tags are listed on their own (``refs/tags/NAME@*``, ``refs/tags/NAME#*``): on a
        registry of 15,000 tags that reads a handful of tag objects instead of every one,
        which is what a command about one version needs (:class:`~registry.repo.tags.TagIndex`
        asks so, lazily).

        Example:
            >>> [t.name for t in repo.tags(["digits-cnn"])]  # doctest: +SKIP
            ['digits-cnn#prod#1', 'digits-cnn@v1.0.0']
        """
        if names is None:
            return self._tags
        wanted = set(names)
        if "_tags" in self.__dict__ or len(wanted) > _FEW_ARTIFACTS:
            # Listed already, or many artifacts: those artifacts' tags from every tag's listing
            # (one show-ref); for-each-ref would match every tag against two patterns each.
            grouped = self._tags_by_artifact
            return [t for name in sorted(wanted) for t in grouped.get(name, ())]
        if not wanted:
            return []
        patterns = [f"refs/tags/{n}{sep}*" for n in sorted(wanted) for sep in ("@", "#")]
        return [t for t in self._list_tags(*patterns) if tag_artifact(t.name) in wanted]

    def tag_details(self) -> list[TagRef]:
        """Every tag with its date, tagger and subject, in one ``for-each-ref`` that reads every
        tag object (what a page about every version shows: the catalog); :meth:`tags` lists
        names and commits only, which is all the read path needs.

        Example:
            >>> {t.name: t.tagger for t in repo.tag_details()}  # doctest: +SKIP
            {'digits-cnn@v1.0.0': 'ana@lab.example', ...}
        """
        return self._list_tags("refs/tags")

    @cached_property
    def _objects(self) -> _ObjectReader:
        return _ObjectReader(self.path)

    # Files read ahead by :meth:`prefetch`: "<commit>:<path>" -> bytes, or None (no such file).
    _prefetched: dict[str, bytes | None]

    def prefetch(self, wanted: Iterable[tuple[str, str]]) -> None:
        """Read many files at commits at once (:meth:`read_files`), so that the
        :meth:`read_file` calls that follow for them are answered from memory.

        Every request written at once: reading 6,000 cards this way takes a fraction of a
        second, where one round trip each through the long-lived process takes seconds.
        Only full commit hashes are kept (what a commit holds never changes).

        Args:
            wanted: ``(commit, path)`` pairs.

        Example:
            >>> repo.prefetch([(release.commit, "models/cnn/README.md")])  # doctest: +SKIP
        """
        if "_prefetched" not in self.__dict__:
            self._prefetched = {}
        known = self._prefetched
        pairs = sorted({(rev, path) for rev, path in wanted
                        if len(rev) == 40 and f"{rev}:{path}" not in known})
        for (rev, path), data in zip(pairs, self.read_files(pairs), strict=True):
            self._prefetched[f"{rev}:{path}"] = data

    def read_file(self, rev: str, path: str) -> bytes | None:
        """Return the bytes of ``path`` at ``rev``, or ``None`` if it does not exist there.

        From :meth:`prefetch`'s batch if it read it, else through the repository's long-lived
        ``git cat-file --batch`` process: one round trip.
        """
        prefetched = self.__dict__.get("_prefetched")
        if prefetched is not None and f"{rev}:{path}" in prefetched:
            return prefetched[f"{rev}:{path}"]
        found = self._objects.read(f"{rev}:{path}")
        return found[1] if found is not None and found[0] == "blob" else None

    def read_files(self, wanted: Sequence[tuple[str, str]]) -> list[bytes | None]:
        """The bytes of many ``(rev, path)`` at once, in order (``None``: absent there).

        The trees are walked here, each read once by its id, a level at a time, with one
        ``git cat-file --batch`` handed every request of a level (:func:`_read_paths`): reading
        1,000 model cards one round trip at a time cost 0.47 s of waiting, ``rev:path`` all at
        once 0.07-0.10 s, the walk ~0.01 s.

        Example:
            >>> repo.read_files([("v1", "models/a/README.md"), ("v2", "nothing")])
            ... # doctest: +SKIP
            [b'---\ntask: ...', None]
        """
        return _read_paths(self._objects.read_many, wanted)

    def tag_dates(self, names: Iterable[str]) -> dict[str, str]:
        """When each of the tags ``names`` was made (ISO 8601), in one ``for-each-ref`` that
        reads those tags' objects only; a name that is no tag is left out.

        Example:
            >>> repo.tag_dates(["digits-cnn@v1.0.0"])  # doctest: +SKIP
            {'digits-cnn@v1.0.0': '2026-12-04T10:00:00+00:00'}
        """
        wanted = set(names)
        if not wanted:
            return {}
        listed = self._list_tags(*(f"refs/tags/{n}" for n in sorted(wanted)))
        return {t.name: t.created for t in listed if t.name in wanted}

    def tag_message(self, name: str) -> str:
        """The whole message of annotated tag ``name`` (empty for a lightweight tag)."""
        return self.git("for-each-ref", "--format=%(contents)", f"refs/tags/{name}")

    def tag_messages(self, names: Iterable[str] | None = None) -> dict[str, str]:
        """The whole messages of tags ``names`` (``None``: every tag), in one git call.

        Lineage reads many release tags' messages at once (every model release, for
        ``lineage --down``): one ``for-each-ref`` instead of one process per tag.

        Args:
            names: The tags to read; a name that is no tag is left out of the result.

        Returns:
            Tag name -> its message (empty for a lightweight tag).

        Example:
            >>> repo.tag_messages(["digits-cnn@v1.0.0"])  # doctest: +SKIP
            {'digits-cnn@v1.0.0': 'Release digits-cnn 1.0.0\\n\\nlineage: {...}\\n'}
        """
        wanted = None if names is None else set(names)
        if wanted is not None and len(wanted) <= _FEW_TAGS:
            # A few: through the long-lived cat-file process (for-each-ref scans every ref).
            return {n: m for n in sorted(wanted) if (m := self._tag_object_message(n)) is not None}
        if wanted is not None:
            # Many, not all: their objects by id (from the listing) through one cat-file, which
            # reads those tags only (5,000 of 20,000: 0.01 s against for-each-ref's 0.07 s).
            listed = sorted((t.name, t.object) for t in self.tags() if t.name in wanted)
            read = self._objects.read_many([oid for _, oid in listed])
            return {
                name: _message_of(kind, data) for (name, _), (_, kind, data) in zip(
                    listed, read, strict=True) if data is not None
            }
        patterns = ["refs/tags"]
        # A message cannot hold a NUL byte, so NUL separates the fields and the records.
        out = self.git("for-each-ref", "--format=%(refname:strip=2)%00%(contents)%00", *patterns)
        fields = out.split("\0")
        found = {fields[i].lstrip("\n"): fields[i + 1] for i in range(0, len(fields) - 1, 2)}
        return found if wanted is None else {k: v for k, v in found.items() if k in wanted}

    def _tag_object_message(self, name: str) -> str | None:
        """The message of annotated tag ``name`` read from its object (``None``: no such tag;
        ``""``: a lightweight tag)."""
        found = self._objects.read(f"refs/tags/{name}")
        return None if found is None else _message_of(*found)

    def list_files(self, rev: str, prefix: str) -> list[str]:
        """Return the paths of every file under ``prefix`` at ``rev``, with one git call."""
        out = self.git("ls-tree", "-r", "--name-only", "-z", rev, "--", prefix, check=False)
        return [p for p in out.split("\0") if p]

    def resolve_commit(self, rev: str = "HEAD") -> str:
        """Return the full commit hash of ``rev``."""
        return self.git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()

    def tagger_email(self) -> str:
        """The email Git records as the tagger of a tag made here (``""`` if none is set).

        ``git var GIT_COMMITTER_IDENT``: ``user.email`` of this repository's config, or the
        ``GIT_COMMITTER_EMAIL`` that overrides it, exactly as ``git tag`` would use.
        """
        ident = self.git("var", "GIT_COMMITTER_IDENT", check=False)
        start, end = ident.find("<"), ident.find(">")
        return ident[start + 1 : end].strip().lower() if 0 <= start < end else ""

    def is_dirty(self) -> bool:
        """Whether a work tree has uncommitted changes to tracked files or untracked files."""
        if self.work_tree is None:
            return False
        return bool(self.git("status", "--porcelain", "--untracked-files=normal").strip())

    def dirty_paths(self) -> list[str]:
        """Paths of uncommitted changes in the work tree (empty for a mirror)."""
        if self.work_tree is None:
            return []
        out = self.git("status", "--porcelain", "--untracked-files=normal", "-z")
        return [entry[3:] for entry in out.split("\0") if entry]

    # -- writing ------------------------------------------------------------------------------

    def create_tag(self, name: str, message: str, rev: str = "HEAD") -> None:
        """Create the annotated tag ``name`` at ``rev``; never moves an existing tag.

        The tag is signed (``git tag --sign``: GPG, or SSH with ``gpg.format ssh``) when the
        user's Git is set up to sign (:meth:`signs_tags`).
        """
        sign = ["--sign"] if self.signs_tags() else []
        self.git("tag", "--annotate", *sign, "--message", message, name, rev)
        self._forget_tags()

    def signs_tags(self) -> bool:
        """Whether tags made here are signed: ``tag.gpgSign`` if it is set, else whether
        ``user.signingkey`` is (one ``git config`` call)."""
        out = self.git(
            "config", "--get-regexp", r"^(user\.signingkey|tag\.gpgsign)$", check=False
        )
        found = {key: value for key, _, value in (line.partition(" ") for line in out.splitlines())}
        if "tag.gpgsign" in found:
            return found["tag.gpgsign"].strip().lower() in ("true", "yes", "on", "1")
        return bool(found.get("user.signingkey", "").strip())

    def verify_tag(self, name: str, allowed_signers: Path | None) -> tuple[bool, str]:
        """Run ``git verify-tag --raw name``: whether it passed, and what it said.

        Args:
            name: The tag.
            allowed_signers: An SSH allowed-signers file to verify SSH signatures with
                (``gpg.ssh.allowedSignersFile``), or ``None`` for the user's Git config.
        """
        config = ["-c", f"gpg.ssh.allowedSignersFile={allowed_signers}"] if allowed_signers else []
        done = subprocess.run(
            ["git", *config, "verify-tag", "--raw", f"refs/tags/{name}"],
            cwd=self.path,
            capture_output=True,
            text=True,
            env={**os.environ, **_GIT_ENV},
            check=False,
        )
        return done.returncode == 0, (done.stderr + done.stdout).strip()

    def publish_tag(
        self,
        name: str,
        message: str,
        rev: str = "HEAD",
        push: bool = True,
        *,
        lease: TagLease | None = None,
        rerun: str = "release again with a new version",
    ) -> None:
        """Create the annotated tag ``name`` and push it where a Git remote is configured.

        If the push fails the local tag is deleted again, so that the tag exists either
        everywhere or nowhere and running the same operation again completes it.

        Args:
            name: The tag.
            message: Its message.
            rev: What it points at.
            push: Push it (to ``lease.remote``, else :meth:`push_remote`).
            lease: What :meth:`lease_tags` saw: the push then also moves the artifact's tip,
                atomically, and only if nobody moved it since.
            rerun: What the user runs again if another clone tagged first, for the message.

        Raises:
            TagRaceError: If the remote got the same tag, or another tag of the artifact, from
                elsewhere first (the local tag is gone again).
            RemoteError: If the push fails otherwise (the local tag is gone again).
        """
        self.create_tag(name, message, rev)
        remote = (lease.remote if lease else self.push_remote()) if push else None
        if remote is None:
            return
        try:
            self.push_tag(name, remote, lease=lease, rerun=rerun)
        except (RemoteError, TagRaceError):
            self.delete_tag(name)
            raise
        # Reproduction records made since the last push go with the tag; the tag is out, so a
        # refusal only leaves them here for the next one.
        try:
            self.push_notes(remote)
        except RemoteError as e:
            import logging

            logging.getLogger(__name__).warning("%s", e)

    def delete_tag(self, name: str) -> None:
        """Delete a local tag (used only to undo a tag whose push failed)."""
        self.git("tag", "--delete", name)
        self._forget_tags()

    def push_remote(self) -> str | None:
        """The Git remote tags are pushed to (``origin``, else the only one), or ``None``."""
        remotes = self.git("remote").split()
        if "origin" in remotes:
            return "origin"
        return remotes[0] if len(remotes) == 1 else None

    def push_tag(
        self,
        name: str,
        remote: str,
        *,
        lease: TagLease | None = None,
        rerun: str = "release again with a new version",
    ) -> None:
        """Push one tag to ``remote`` (with ``lease``: and move the artifact's tip, atomically).

        Raises:
            TagRaceError: If the remote has the tag already, or the artifact's tip moved since
                ``lease`` was taken: another clone tagged first.
            RemoteError: If the push is refused otherwise, or the remote is unreachable.
        """
        args = ["push", "--quiet", remote, f"refs/tags/{name}"]
        if lease is not None:
            # One transaction on the remote: the tag and the tip land together or not at all.
            args[1:1] = ["--atomic", f"--force-with-lease={lease.ref}:{lease.expected}"]
            args.append(f"refs/tags/{name}:{lease.ref}")
        try:
            self.git(*args)
        except GitError as e:
            # Tags are fetched before a version is picked, so a remote that has this tag now
            # (or a moved tip) got it from a command that ran at the same time.
            url = self.git("remote", "get-url", "--push", remote, check=False).strip() or remote
            if self.git("ls-remote", "--tags", url, f"refs/tags/{name}", check=False).strip():
                raise TagRaceError(name, remote, rerun=rerun) from e
            if lease is not None and self._tip_moved(url, lease):
                raise TagRaceError(name, remote, artifact=lease.artifact, rerun=rerun) from e
            raise RemoteError(f"pushing tag {name!r} to Git remote {remote!r} failed: {e}") from e

    def _tip_moved(self, url: str, lease: TagLease) -> bool:
        """Whether the remote at ``url`` is readable and its tip is not where ``lease`` saw it."""
        try:
            tip = self.git("ls-remote", url, lease.ref).split("\t", 1)[0].strip()
        except GitError:
            return False  # unreachable: the push failed for that, not for a race
        return tip != lease.expected

    # -- notes and worktrees ------------------------------------------------------------------

    def note(self, commit: str) -> str:
        """The registry's note on ``commit`` (``""``: none)."""
        return self.git("notes", f"--ref={NOTES_REF}", "show", commit, check=False)

    def append_note(self, commit: str, line: str) -> None:
        """Append ``line`` to the registry's note on ``commit``; older lines are kept.

        The note is fetched from the push remote first (and merged), so that the push that
        follows (:meth:`push_notes`) adds to what others recorded instead of being refused.
        """
        remote = self.push_remote()
        if remote is not None:
            with contextlib.suppress(GitError):  # offline: recorded here, pushed later
                self.git("fetch", "--quiet", remote, self._notes_refspec(remote))
                self._merge_notes(remote)
        text = self.note(commit)
        lines = [x for x in text.splitlines() if x.strip()] + [line.strip()]
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".note", delete=False) as f:
            f.write("\n".join(lines) + "\n")
        try:
            self.git("notes", f"--ref={NOTES_REF}", "add", "--force", "--file", f.name, commit)
        finally:
            os.unlink(f.name)

    def push_notes(self, remote: str | None = None) -> None:
        """Push the registry's notes to ``remote`` (default: :meth:`push_remote`), if any.

        Raises:
            RemoteError: If the push is refused or the remote is unreachable.
        """
        remote = remote or self.push_remote()
        if remote is None or not self.git(
            "rev-parse", "--verify", "--quiet", NOTES_REF, check=False
        ).strip():
            return
        try:
            self.git("push", "--quiet", remote, f"{NOTES_REF}:{NOTES_REF}")
        except GitError as e:
            raise RemoteError(
                f"pushing the registry's notes ({NOTES_REF}) to Git remote {remote!r} failed: "
                f"{e}; they are kept here and go with the next release"
            ) from e

    def add_worktree(self, path: Path, commit: str) -> None:
        """Check ``commit`` out, detached, into the new folder ``path`` (``git worktree add``)."""
        self.git("worktree", "add", "--quiet", "--detach", str(path), commit)

    def export_paths(self, commit: str, paths: Sequence[str], dest: Path) -> list[str]:
        """Write the files under ``paths`` at ``commit`` into the new folder ``dest``.

        A checkout of only what a caller needs (``git archive``, extracted with tarfile's
        ``data`` filter: nothing lands outside ``dest``), registering no worktree in this
        repository. Paths absent at ``commit`` are skipped.

        Returns:
            The paths written (those present at ``commit``).

        Example:
            >>> repo.export_paths("v1", ["datasets/a", "params.yaml"], tmp)  # doctest: +SKIP
            ['datasets/a', 'params.yaml']
        """
        import tarfile

        listed = self.git("ls-tree", "--name-only", "-z", commit, "--", *paths)
        present = [p for p in listed.split("\0") if p]
        dest.mkdir(parents=True)
        if not present:
            return []
        archive = dest.parent / f".{dest.name}.tar"
        try:
            self.git("archive", "--format=tar", f"--output={archive}", commit, "--", *present)
            with tarfile.open(archive) as tar:
                tar.extractall(dest, filter="data")
        finally:
            archive.unlink(missing_ok=True)
        return present

    def remove_worktree(self, path: Path) -> None:
        """Remove a worktree made by :meth:`add_worktree`, with its files."""
        self.git("worktree", "remove", "--force", str(path), check=False)
        self.git("worktree", "prune", check=False)
