"""What a person sees from a long command: one line a step, the libraries' chatter in a log file.

A step (building a dataset, training or evaluating a model: the stages of ``dvc.yaml``) prints
one line, for example::

    build image_classification/digits ... 1.0.0, 1,797 examples, 3.1 s

while everything the libraries say goes to a log file: Python logging (Beam, TFDS, absl, MLflow),
Python warnings, and whatever is written to the process's stdout and stderr at the file
descriptor level, which is where TensorFlow's C++ log, Keras' progress lines and the output of
child processes (Beam's worker processes, the MLflow logger) go. The log file is
``$REGISTRY_LOG_FILE`` if set (``make run`` sets one for the whole run), else
``.registry/logs/<step>-<name>.log`` in the registry clone; ``.registry/`` ignores itself in Git.
Warnings of the registry's own and of the lab's code (loggers ``registry``, ``src``,
``__main__``) still show.

``registry -v`` or ``REGISTRY_VERBOSE=1`` shows the chatter live instead; the log file then holds
the Python log records. ``-v`` sets ``REGISTRY_VERBOSE`` for the child processes too (the stages
that ``registry datasets build`` runs through DVC).

Example, a lab's own stage command::

    from registry import console

    with console.step("score", "digits-cnn") as line:
        accuracy = score()
        line.done(f"accuracy {accuracy:.3f}")
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from registry import layout
from registry.config import find_registry_root

__all__ = [
    "LOG_FILE_ENV",
    "VERBOSE_ENV",
    "Step",
    "chatter_to_log",
    "configure_logging",
    "log_file",
    "set_verbose",
    "step",
    "verbose",
]

VERBOSE_ENV = "REGISTRY_VERBOSE"
LOG_FILE_ENV = "REGISTRY_LOG_FILE"
LOGS_DIR = "logs"
# Loggers (and warning categories' modules) that are ours: the registry and the lab's code.
_OURS = ("registry", "src", "__main__")
# Libraries whose INFO logs are chatter on the console outside a step.
_NOISY = ("absl", "apache_beam", "tensorflow", "dvc")
# Storage clients that log each failed request (gcsfs: a traceback a retried request, aiohttp and
# asyncio: unclosed sessions) before raising the error the registry explains in one line: silent
# on the console unless -v or --traceback asks for the detail.
_CLIENTS = ("gcsfs", "aiohttp", "fsspec", "asyncio")
_SILENT = logging.CRITICAL + 1
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def verbose() -> bool:
    """Whether library chatter shows live: ``REGISTRY_VERBOSE`` (``1``, ``true``, ``yes``, ``on``).

    Raises:
        ConfigError: If ``REGISTRY_VERBOSE`` is set to something that is not a boolean.

    Example:
        >>> os.environ["REGISTRY_VERBOSE"] = "1"; verbose()  # doctest: +SKIP
        True
    """
    from registry.config import parse_bool

    return parse_bool(os.environ.get(VERBOSE_ENV, ""), f"the environment variable {VERBOSE_ENV}")


def set_verbose(flag: bool) -> None:
    """Show library chatter live in this process and in the child processes it starts.

    Args:
        flag: True for ``-v``; False leaves ``REGISTRY_VERBOSE`` as the environment has it.
    """
    if flag:
        os.environ[VERBOSE_ENV] = "1"


def configure_logging(*, traceback: bool = False) -> None:
    """Set up logging for a command: warnings on stderr, libraries' INFO only when verbose.

    The storage clients' own error logs (gcsfs logs a traceback for every request it gave up on,
    before the registry reports the error in one line) are shown only when verbose or with
    ``traceback``. Called once by the ``registry`` command; a :func:`step` sends the libraries'
    logs to its log file on top of this.

    Args:
        traceback: ``--traceback`` (or ``REGISTRY_TRACEBACK``): show the clients' error logs.

    Raises:
        ConfigError: If ``REGISTRY_VERBOSE`` is set to something that is not a boolean.

    Example:
        >>> configure_logging(traceback=False)  # doctest: +SKIP
    """
    loud = verbose()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if loud else "2")
    logging.basicConfig(level=logging.INFO if loud else logging.WARNING, format="%(message)s")
    if not loud:
        for noisy in _NOISY:
            logging.getLogger(noisy).setLevel(logging.ERROR)
    for client in _CLIENTS:
        logging.getLogger(client).setLevel(logging.NOTSET if loud or traceback else _SILENT)
    # The registry's own warnings (a yanked version loaded) are one line each, not Python's
    # "file:line: Category: message" and the source line.
    warnings.showwarning = _log_warning


def log_file(kind: str, name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Where a step's chatter goes: ``$REGISTRY_LOG_FILE``, else ``.registry/logs/`` in the clone.

    Args:
        kind: The step, e.g. ``build``.
        name: What it works on, e.g. ``image_classification/digits``.
        root: A folder in the registry clone (default, or if it is no folder here: the working
            directory); outside a clone, the logs go to ``.registry/logs/`` in that folder.

    Returns:
        The log file's path (its folder exists).

    Example:
        >>> log_file("build", "image_classification/digits")  # doctest: +SKIP
        PosixPath('/home/me/registry/.registry/logs/build-image_classification-digits.log')
    """
    explicit = os.environ.get(LOG_FILE_ENV)
    if explicit:
        path = Path(explicit)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
    # A Git URL (a registry read remotely) has no folder here: log beside the working directory.
    start = Path(root) if root is not None and Path(root).is_dir() else Path.cwd()
    clone = find_registry_root(start) or start
    return layout.scratch_dir(clone, LOGS_DIR) / f"{kind}-{_slug(name)}.log"


def _slug(name: str) -> str:
    """A file name for an artifact name: ``a/b`` -> ``a-b``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"


class Step:
    """The line of one running step; :func:`step` makes it.

    Attributes:
        log: The log file that holds the step's chatter.
    """

    def __init__(self, kind: str, name: str, log: Path, out: TextIO) -> None:
        self.log = log
        self._head = f"{kind} {name} ..."
        self._out = out
        self._result = ""
        self._open = False  # the head is on screen, waiting for its result

    def done(self, result: str) -> None:
        """Say what the step made (``1,797 examples``); the time taken is added after it."""
        self._result = result

    def _start(self, loud: bool) -> None:
        # Live chatter would run on after an open line: the result comes on a line of its own.
        self._write(f"{self._head}\n" if loud else self._head)
        self._open = not loud

    def _break(self) -> None:
        """End the open line, so that a warning starts on a line of its own."""
        if self._open:
            self._write("\n")
            self._open = False

    def _finish(self, seconds: float, failed: bool) -> None:
        if failed:
            tail = f"failed after {seconds:.1f} s (log: {_shown(self.log)})"
        else:
            tail = ", ".join(t for t in (self._result, f"{seconds:.1f} s") if t)
        self._write(f" {tail}\n" if self._open else f"{self._head} {tail}\n")
        self._open = False

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()


@contextlib.contextmanager
def step(
    kind: str, name: str, *, root: str | os.PathLike[str] | None = None
) -> Iterator[Step]:
    """Run a step with one line on the console and the libraries' chatter in its log file.

    Prints ``KIND NAME ...`` on stderr at once and completes the line when the block ends: with what
    :meth:`Step.done` was told and the time taken, or, if the block raises, ``failed`` and the
    log file (the exception goes on, for the caller to report in one line).

    Args:
        kind: The step, e.g. ``build``, ``train``.
        name: What it works on.
        root: A folder in the registry clone, for the log file (see :func:`log_file`).

    Yields:
        The :class:`Step`; call ``done(result)`` on it.

    Example:
        >>> with step("build", "image_classification/digits") as line:  # doctest: +SKIP
        ...     line.done("1,797 examples")
        build image_classification/digits ... 1,797 examples, 3.1 s
    """
    log = log_file(kind, name, root)
    loud = verbose()
    # A step's own log holds its last run; a run's shared log ($REGISTRY_LOG_FILE) is appended to.
    with open(log, "a" if os.environ.get(LOG_FILE_ENV) else "w", encoding="utf-8") as f:
        f.write(f"== {kind} {name} ({time.strftime('%Y-%m-%d %H:%M:%S')})\n")
    with _console(log, loud) as err:
        # Status, as progress bars are: on stderr, so that stdout stays for data (and `make run`
        # can send DVC's own lines to the log without losing the steps').
        line = Step(kind, name, log, err)
        with _step_logging(log, line, err, loud):
            line._start(loud)
            started = time.monotonic()
            try:
                yield line
            except BaseException:
                line._finish(time.monotonic() - started, failed=True)
                raise
            line._finish(time.monotonic() - started, failed=False)


@contextlib.contextmanager
def chatter_to_log(
    kind: str, name: str, *, root: str | os.PathLike[str] | None = None
) -> Iterator[None]:
    """Send what libraries write meanwhile to the log file of ``kind name`` (:func:`log_file`),
    as a :func:`step` does, but with no line on the console: for a command that reads data
    as a detail of its work (the catalog's example previews).

    At the file descriptor level too: TensorFlow's C++ log on import ("oneDNN custom
    operations are on ...") is written there, and ``TF_CPP_MIN_LOG_LEVEL`` no longer silences
    it (TensorFlow 2.21); ``TF_ENABLE_ONEDNN_OPTS=0`` would, but it changes TensorFlow's
    numerics, so it is never set for a whole command. Verbose (``-v``): shown live instead.

    Example:
        >>> with chatter_to_log("catalog", "previews"):  # doctest: +SKIP
        ...     import tensorflow
    """
    if verbose():
        yield
        return
    with _console(log_file(kind, name, root), loud=False):
        yield


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@contextlib.contextmanager
def _console(log: Path, loud: bool) -> Iterator[TextIO]:
    """Send stdout and stderr to ``log`` (to stderr if ``loud``); yield the console's stderr.

    At the file descriptor level when stdout and stderr are the process's own (fds 1 and 2), so
    that C++ libraries and child processes follow; otherwise (a caller replaced ``sys.stdout``,
    as a test does) only Python's streams are swapped. While a step runs its stdout is chatter
    too (TFDS's and Keras' lines): loud, it joins stderr, which ``make run`` does not send to the
    log.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved_streams = (sys.stdout, sys.stderr)
    saved_fds: list[int] = []
    with open(log, "a", encoding="utf-8", buffering=1) as chatter:
        target = sys.stderr if loud else chatter
        if _own_fds():
            saved_fds = [os.dup(1), os.dup(2)]
            err = _reopen(saved_fds[1])
            os.dup2(target.fileno(), 1)
            os.dup2(target.fileno(), 2)
        else:
            err = sys.stderr
        sys.stdout = sys.stderr = target
        try:
            yield err
        finally:
            sys.stdout.flush()
            sys.stdout, sys.stderr = saved_streams
            if saved_fds:
                err.close()
                for fd, saved in enumerate(saved_fds, start=1):
                    os.dup2(saved, fd)
                    os.close(saved)


def _reopen(fd: int) -> TextIO:
    """A line-buffered text stream on a copy of ``fd``."""
    return open(os.dup(fd), "w", encoding="utf-8", buffering=1)


def _own_fds() -> bool:
    """Whether ``sys.stdout`` and ``sys.stderr`` write to file descriptors 1 and 2."""
    try:
        return sys.stdout.fileno() == 1 and sys.stderr.fileno() == 2
    except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
        return False


class _OursFilter(logging.Filter):
    """Let through the records of our own loggers only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.split(".", 1)[0] in _OURS


class _LineBreak(logging.Filter):
    """End the step's open line before a record is shown on the console."""

    def __init__(self, line: Step) -> None:
        super().__init__()
        self._line = line

    def filter(self, record: logging.LogRecord) -> bool:
        self._line._break()
        return True


@contextlib.contextmanager
def _step_logging(log: Path, line: Step, err: TextIO, loud: bool) -> Iterator[None]:
    """Python logging and warnings for a step: all to ``log``; ours (or all, if loud) shown."""
    root = logging.getLogger()
    libraries = (*_NOISY, *_CLIENTS)
    saved = (root.level, list(root.handlers), {n: logging.getLogger(n).level for n in libraries})
    to_file = logging.FileHandler(log, encoding="utf-8")
    to_file.setFormatter(logging.Formatter(_FORMAT))
    shown = logging.StreamHandler(err)
    shown.setLevel(logging.INFO if loud else logging.WARNING)
    if not loud:
        shown.addFilter(_OursFilter())
    shown.addFilter(_LineBreak(line))
    shown.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.handlers = [to_file, shown]
    root.setLevel(logging.INFO)
    for noisy in libraries:  # all to the log file; the console's filter shows ours only
        logging.getLogger(noisy).setLevel(logging.NOTSET)
    saved_showwarning = warnings.showwarning
    warnings.showwarning = _log_warning
    try:
        yield
    finally:
        warnings.showwarning = saved_showwarning
        root.handlers = saved[1]
        root.setLevel(saved[0])
        for noisy, level in saved[2].items():
            logging.getLogger(noisy).setLevel(level)
        to_file.close()


def _log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Log a Python warning: ours as our own logger's (shown), others as ``py.warnings``."""
    module = category.__module__
    if module.split(".", 1)[0] in _OURS:
        logging.getLogger(module).warning("%s", message)
    else:
        text = warnings.formatwarning(message, category, filename, lineno, line).rstrip()
        logging.getLogger("py.warnings").warning("%s", text)
