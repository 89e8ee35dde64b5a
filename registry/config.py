"""Configuration, read in one place and in one documented order.

Later sources win: built-in defaults < the registry's own config (the ``registry:`` section of its
``params.yaml``) < the user config file < the registry clone enclosing the working directory (for
``url`` only) < environment variables < arguments.

| setting          | environment               | user config key      | default                   |
|------------------|---------------------------|----------------------|---------------------------|
| url              | ``REGISTRY_URL``          | ``url``              | the registry around cwd   |
| cache_dir        | ``REGISTRY_CACHE_DIR``    | ``cache_dir``        | ``$XDG_CACHE_HOME/...``   |
| remote           | ``REGISTRY_REMOTE``       | ``remote``           | the registry's DVC remote |
| shared_cache_dir | ``REGISTRY_SHARED_CACHE`` | ``shared_cache_dir`` | none                      |
| stages           | (registry config)         |                      | ``dev, staging, prod``    |
| owners           | (registry config)         |                      | none: anyone may tag      |
| stage_approvers  | (registry config)         |                      | none: the owners decide   |
| require_signed_tags | (registry config)      |                      | ``false``                 |
| Git network timeout | ``REGISTRY_GIT_TIMEOUT`` |                    | 300 s                     |

``cache_dir``'s default is ``$XDG_CACHE_HOME/lab-registry`` (``~/.cache/lab-registry``).

The registry config (``registry:`` in ``params.yaml``) may set ``stages`` and
``shared_cache_dir``, so that a lab configures them once for everyone working in its clones;
a registry loaded by Git URL contributes its own section (from its default branch) instead of
the clone around the working directory's.

``owners`` maps an artifact name, or a glob of names (``image_classification/*``), to the Git
identities (emails) that may release, promote, demote and deprecate it; ``stage_approvers`` maps
a stage to the identities that may promote to it and demote from it (instead of the owners).
``require_signed_tags: true`` makes loads refuse versions whose tag is not signed by a key of
``.allowed_signers`` (or the loader's GPG keyring). These are the lab's rules, so only
``params.yaml`` sets them.

``shared_cache_dir`` is a read-only cache that loads look in before the DVC remote (a lab's NFS
or local folder, filled by ``REGISTRY_CACHE_DIR=<it> registry datasets pull ...``, or a shared
DVC cache); loads write only to ``cache_dir``. It must be an absolute path (``~`` is expanded),
except in ``params.yaml``, where a relative path is relative to the registry's folder. An empty
value means none, and an empty ``REGISTRY_SHARED_CACHE=`` turns off one set by ``params.yaml``
or the user config. A configured folder that does not exist (an NFS mount that is down) is
skipped with a warning, and loads use the remote.

The user config file is TOML at ``$REGISTRY_CONFIG`` or
``$XDG_CONFIG_HOME/lab-registry/config.toml`` (``~/.config/...``), for example::

    url = "git@github.com:my-lab/registry.git"
    cache_dir = "/scratch/me/registry-cache"
    shared_cache_dir = "/nfs/lab-cache"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from registry.errors import ConfigError, yaml_problem

__all__ = [
    "DEFAULT_STAGES",
    "PARAMS_FILE",
    "Settings",
    "find_registry_root",
    "installed_from",
    "load_settings",
    "parse_params",
    "read_params",
    "registry_section",
    "user_config_path",
    "who_may",
]

DEFAULT_STAGES = ("dev", "staging", "prod")


@dataclass(frozen=True)
class Settings:
    """The resolved configuration.

    Attributes:
        url: Where the registry is: a Git URL or a local path (a clone or a bare repo).
            ``None`` when nothing is configured and the cwd is not inside a registry.
        cache_dir: Root of the local content-addressed cache.
        remote: Name of the DVC remote to use, or ``None`` for the registry's default.
        stages: Stages that models may be promoted to.
        shared_cache_dir: A read-only cache (a lab's shared folder, or a DVC cache) that loads
            look in before the remote, or ``None``. An absolute path.
        owners: ``(name or glob, emails)`` pairs from ``registry.owners`` (empty: anyone).
        stage_approvers: ``(stage, emails)`` pairs from ``registry.stage_approvers``.
        require_signed_tags: Loads refuse a version whose tag has no allowed signature.
    """

    url: str | None = None
    cache_dir: Path = field(default_factory=lambda: _default_cache_dir())
    remote: str | None = None
    stages: tuple[str, ...] = DEFAULT_STAGES
    shared_cache_dir: Path | None = None
    owners: tuple[tuple[str, tuple[str, ...]], ...] = ()
    stage_approvers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    require_signed_tags: bool = False


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lab-registry"


def user_config_path() -> Path:
    """Return the path of the user config file (which may not exist)."""
    if os.environ.get("REGISTRY_CONFIG"):
        return Path(os.environ["REGISTRY_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "lab-registry" / "config.toml"


def _read_user_config() -> dict[str, Any]:
    path = user_config_path()
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, OSError) as e:
        raise ConfigError(f"cannot read the user config file {path}: {e}; fix or remove it") from e


def find_registry_root(start: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the work tree of the registry that encloses ``start`` (default: the cwd).

    A registry is a directory holding ``.dvc/`` and ``datasets/``; the search walks up.
    """
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".dvc").is_dir() and (folder / "datasets").is_dir():
            return folder
    return None


# -- params.yaml: its one reader ------------------------------------------------------------------

PARAMS_FILE = "params.yaml"


def parse_params(text: str | bytes, where: str) -> dict[str, Any]:
    """Parse the text of a registry's ``params.yaml`` (read from a work tree or from Git).

    The one reader of ``params.yaml``: every module that needs a knob from it goes through here
    (or :func:`read_params`), so a broken file is reported the same way, with its line, wherever
    it is read.

    Args:
        text: The file's contents.
        where: How to name the file in an error: its path, or e.g. ``params.yaml at abc1234 of
            <url>`` for a revision read from Git.

    Returns:
        The parsed mapping; ``{}`` for an empty file.

    Raises:
        ConfigError: If the text is not valid YAML (the message gives the line and column) or its
            top level is not a mapping.

    Example:
        >>> parse_params("beam:\\n  runner: DirectRunner\\n", "params.yaml")
        {'beam': {'runner': 'DirectRunner'}}
    """
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"cannot parse {where}: {yaml_problem(e)}; fix the YAML there") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where} must hold a mapping (key: value lines) at the top level, not a "
            f"{type(data).__name__}; fix the file"
        )
    return data


def read_params(root: str | os.PathLike[str] = ".") -> dict[str, Any]:
    """Read ``params.yaml`` of the registry work tree at ``root``: every knob of its pipeline.

    What a lab's own stage code reads its knobs with (``models.<name>``, ``train``, ...), and
    what the registry reads ``datasets.<name>``, ``beam``, ``compute`` and ``registry`` with:
    the one reader (see :func:`parse_params`).

    Args:
        root: The registry work tree (default: the current directory, where DVC runs stages).

    Returns:
        The parsed mapping; ``{}`` if there is no ``params.yaml``.

    Raises:
        ConfigError: If the file cannot be read, is not valid YAML (naming the line and column)
            or does not hold a mapping at the top level.

    Example:
        >>> registry.read_params(".")["models"]["digits-cnn"]["epochs"]  # doctest: +SKIP
        3
    """
    path = Path(root) / PARAMS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}; fix or restore the file") from e
    return parse_params(text, str(path))


def registry_section(params: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The ``registry:`` section of parsed ``params``: the lab's own settings (``{}`` if none).

    Raises:
        ConfigError: If the section is there but is not a mapping.
    """
    section = params.get("registry") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"'registry' in {where} must be a mapping, not {section!r}")
    return section


def required_section(
    section: Any, path: str, required: Sequence[str], needed_by: str
) -> dict[str, Any]:
    """A section of ``params.yaml`` that something needs keys of, such as a Beam runner's
    ``beam.dataflow``: its non-empty values, once every required key is there.

    Args:
        section: The section as read (``None``: absent).
        path: Its dotted path in ``params.yaml``, e.g. ``"beam.flink"``.
        required: The keys that must have a value.
        needed_by: What needs them, for the message, e.g. ``"FlinkRunner"``.

    Returns:
        The section's keys whose value is neither ``null`` nor empty, in its order.

    Raises:
        ConfigError: If the section is not a mapping, or naming every required key it lacks.

    Example:
        >>> required_section({"flink_master": "localhost:8081", "parallelism": None},
        ...                  "beam.flink", ["flink_master"], "FlinkRunner")
        {'flink_master': 'localhost:8081'}
    """
    section = {} if section is None else section
    if not isinstance(section, Mapping):
        raise ConfigError(f"{path} in params.yaml must be a mapping")
    missing = [key for key in required if section.get(key) in (None, "")]
    if missing:
        raise ConfigError(
            f"{needed_by} needs {', '.join(missing)}: set "
            + ", ".join(f"{path}.{key}" for key in missing)
            + " in params.yaml"
        )
    return {str(k): v for k, v in section.items() if v not in (None, "")}


DISTRIBUTION = "lab-registry"


def installed_from() -> str | None:
    """The Git URL this ``registry`` package was installed from (``pip install git+URL``), read
    from the installation's PEP 610 record (``direct_url.json``); ``None`` for any other install
    (from an index, a local folder, an editable clone).

    So a registry installed from its own repository loads from there with no configuration: the
    URL is the lowest of the settings' sources (the user file, the enclosing clone,
    ``REGISTRY_URL`` and arguments all beat it).

    Example:
        >>> installed_from()  # after pip install git+https://github.com/my-lab/registry.git
        ... # doctest: +SKIP
        'https://github.com/my-lab/registry.git'
    """
    import json

    # The installation's record sits beside the imported package (an editable install's
    # package is its clone's folder, with no record beside it).
    site = Path(__file__).resolve().parent.parent
    records = sorted(site.glob(f"{DISTRIBUTION.replace('-', '_')}-*.dist-info/direct_url.json"))
    try:
        record = json.loads(records[-1].read_text(encoding="utf-8")) if records else None
    except (ValueError, OSError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("vcs_info"), dict):
        return None
    if record["vcs_info"].get("vcs") != "git" or not isinstance(record.get("url"), str):
        return None
    return str(record["url"])


def _registry_config(root: Path | None) -> dict[str, Any]:
    """The ``registry:`` section of the work tree's params.yaml, if any."""
    if root is None:
        return {}
    return registry_section(read_params(root), str(root / PARAMS_FILE))


def load_settings(
    *, registry_section: Mapping[str, Any] | None = None, **overrides: Any
) -> Settings:
    """Resolve the settings from every source, in order; ``overrides`` are the arguments.

    Args:
        registry_section: The ``registry:`` section of the registry's ``params.yaml`` when the
            registry is not the clone around the working directory (a Git URL, read from its
            default branch): it replaces the enclosing clone's. A relative ``shared_cache_dir``
            there has no folder to be relative to and is left out.
        **overrides: Any :class:`Settings` field; ``None`` values are ignored.

    Returns:
        The resolved :class:`Settings`.

    Raises:
        ConfigError: If a source cannot be read or holds an invalid value.
    """
    unknown = set(overrides) - set(Settings.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown settings: {sorted(unknown)}")
    settings = Settings()
    root = find_registry_root()
    reg = _registry_config(root)
    reg_base: Path | None = root
    if registry_section is not None:
        reg = dict(registry_section)
        shared = reg.get("shared_cache_dir")
        if isinstance(shared, str) and not Path(shared.strip() or "/").expanduser().is_absolute():
            reg.pop("shared_cache_dir")
        reg_base = None
    if "stages" in reg:
        stages = reg["stages"]
        if not (isinstance(stages, list) and stages and all(isinstance(s, str) for s in stages)):
            raise ConfigError(f"registry.stages in params.yaml must be a list of names: {stages!r}")
        settings = replace(settings, stages=tuple(stages))
    settings = _trust_settings(settings, reg)
    user = _read_user_config()
    env = {
        "url": os.environ.get("REGISTRY_URL"),
        "cache_dir": os.environ.get("REGISTRY_CACHE_DIR"),
        "remote": os.environ.get("REGISTRY_REMOTE"),
    }
    # A clone you are working in beats the user file's URL; the environment and arguments beat it.
    enclosing = {"url": str(root)} if root is not None else {}
    chosen: dict[str, Any] = {}
    for source in (user, enclosing, env, overrides):
        chosen.update({k: source[k] for k in ("url", "cache_dir", "remote") if source.get(k)})
    if "url" not in chosen:  # the lowest source: where this package was installed from
        chosen.update({"url": url} if (url := installed_from()) else {})
    settings = replace(settings, **chosen)
    shared = _shared_cache_dir(
        [
            (reg, "registry.shared_cache_dir in params.yaml", reg_base),
            (user, f"shared_cache_dir in {user_config_path()}", None),
            (
                {"shared_cache_dir": os.environ.get("REGISTRY_SHARED_CACHE")},
                "REGISTRY_SHARED_CACHE",
                None,
            ),
            (overrides, "the shared_cache_dir argument", None),
        ]
    )
    cache_dir = _check_cache_dir(
        Path(settings.cache_dir).expanduser(),
        [
            (overrides, "the cache_dir argument"),
            (env, "REGISTRY_CACHE_DIR"),
            (user, f"cache_dir in {user_config_path()}"),
        ],
    )
    return replace(settings, cache_dir=cache_dir, shared_cache_dir=shared)


def who_may(settings: Settings, name: str, stage: str | None = None) -> tuple[list[str], str]:
    """Who may tag ``name`` (with ``stage``: promote it to, or demote it from, that stage).

    The rule: a stage listed in ``registry.stage_approvers`` is its approvers' to give and take;
    anything else (a release, a deprecation, a stage without approvers) is the owners': the
    identities of the ``registry.owners`` key equal to ``name``, else of every glob key that
    matches it (``fnmatch``: ``vision/*``). No key for it, or no setting: anyone may.

    Args:
        settings: The resolved settings.
        name: The artifact.
        stage: The stage changed, for a promotion or demotion.

    Returns:
        The emails allowed (empty: anyone) and the setting that says so, for messages.

    Example:
        >>> who_may(Settings(owners=(("vision/*", ("ana@lab.org",)),)), "vision/cnn")
        (['ana@lab.org'], "registry.owners['vision/*']")
    """
    from fnmatch import fnmatchcase

    if stage is not None:
        for key, emails in settings.stage_approvers:
            if key == stage:
                return list(emails), f"registry.stage_approvers.{stage}"
    exact = [(k, e) for k, e in settings.owners if k == name]
    matching = exact or [(k, e) for k, e in settings.owners if fnmatchcase(name, k)]
    allowed = list(dict.fromkeys(email for _, emails in matching for email in emails))
    keys = ", ".join(repr(key) for key, _ in matching)
    return allowed, f"registry.owners[{keys}]"


def _trust_settings(settings: Settings, reg: Mapping[str, Any]) -> Settings:
    """``settings`` with the lab's owners, stage approvers and signing rule from ``reg``."""
    owners = _identity_map(reg.get("owners"), "registry.owners")
    approvers = _identity_map(reg.get("stage_approvers"), "registry.stage_approvers")
    unknown = [stage for stage, _ in approvers if stage not in settings.stages]
    if unknown:
        raise ConfigError(
            f"registry.stage_approvers in params.yaml names {', '.join(unknown)}, which "
            f"{'is' if len(unknown) == 1 else 'are'} not a stage; the stages are "
            f"{', '.join(settings.stages)} (registry.stages)"
        )
    signed = parse_bool(
        reg.get("require_signed_tags", False), "registry.require_signed_tags in params.yaml"
    )
    return replace(
        settings, owners=owners, stage_approvers=approvers, require_signed_tags=signed
    )


def _identity_map(value: Any, where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """A mapping of keys to lists of Git identities (emails), checked; emails in lower case."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{where} in params.yaml must map names to lists of Git emails, not {value!r}"
        )
    pairs = []
    for key, emails in value.items():
        if isinstance(emails, str):
            emails = [emails]
        if not (
            isinstance(emails, list)
            and emails
            and all(isinstance(e, str) and "@" in e for e in emails)
        ):
            raise ConfigError(
                f"{where}.{key} in params.yaml must be a list of Git emails (as in "
                f"'git config user.email'), not {emails!r}"
            )
        pairs.append((str(key), tuple(e.strip().lower() for e in emails)))
    return tuple(pairs)


def _check_cache_dir(path: Path, sources: list[tuple[Mapping[str, Any], str]]) -> Path:
    """``path``, unless it (or a folder above it) is a file: then say which setting chose it.

    ``sources`` are (values, how to name the setting), highest priority first.
    """
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or existing.is_dir():
        return path
    where = next(
        (name for values, name in sources if values.get("cache_dir")),
        "the default cache folder (from XDG_CACHE_HOME)",
    )
    what = "is a file" if existing == path else f"is inside {existing}, which is a file"
    raise ConfigError(
        f"{where} is {str(path)!r}, which {what}, not a folder; point it at a folder (it is "
        "created if missing), or unset it to use the default cache"
    )


def _shared_cache_dir(sources: list[tuple[dict[str, Any], str, Path | None]]) -> Path | None:
    """The shared cache folder from the last source that sets it (an empty value: none).

    Each source is (its values, how to name it in an error, the folder a relative path is
    relative to, or ``None`` where relative paths are refused).
    """
    chosen: Path | None = None
    for values, where, base in sources:
        value = values.get("shared_cache_dir")
        if value is None:
            continue
        if not isinstance(value, (str, os.PathLike)):
            raise ConfigError(f"{where} must be a folder path, not {value!r}")
        text = os.fspath(value).strip()
        if not text:
            chosen = None  # set but empty: no shared cache, whatever came before
            continue
        path = Path(text).expanduser()
        if not path.is_absolute():
            if base is None:
                raise ConfigError(
                    f"{where} must be an absolute path, not {text!r}; write it in full, "
                    f"e.g. '/nfs/lab-cache'"
                )
            path = base / path
        chosen = path
    return chosen


GIT_TIMEOUT_ENV = "REGISTRY_GIT_TIMEOUT"
GIT_TIMEOUT_S = 300.0


def git_timeout() -> float:
    """Seconds a Git command that talks to a remote (fetch, ls-remote, push, clone) may take.

    ``$REGISTRY_GIT_TIMEOUT`` (default 300): a remote that accepts the connection and never
    answers must not hang a release or a load forever.

    Raises:
        ConfigError: If the variable is not a positive number of seconds.

    Example:
        >>> git_timeout()  # with REGISTRY_GIT_TIMEOUT unset
        300.0
    """
    text = os.environ.get(GIT_TIMEOUT_ENV, "").strip()
    if not text:
        return GIT_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise ConfigError(
            f"{GIT_TIMEOUT_ENV}={text!r} is not a positive number of seconds; unset it for the "
            f"default ({GIT_TIMEOUT_S:g})"
        )
    return seconds


STRICT_ENV = "REGISTRY_STRICT"


def strict_loading() -> bool:
    """Whether loads refuse yanked versions: ``$REGISTRY_STRICT`` (a boolean, default off).

    Raises:
        ConfigError: If the variable is set to something that is not a boolean.

    Example:
        >>> strict_loading()  # with REGISTRY_STRICT unset
        False
    """
    return parse_bool(os.environ.get(STRICT_ENV, ""), STRICT_ENV)


MLFLOW_WEIGHTS_ENV = "REGISTRY_MLFLOW_WEIGHTS"


def mlflow_weights() -> bool:
    """Whether a training run uploads its weights to MLflow's artifact store as well as naming
    their DVC path: ``$REGISTRY_MLFLOW_WEIGHTS`` (a boolean, default off; a lab whose tracking
    server keeps artifacts on ``gs://`` turns it on). Read by ``tracking.TrackedRun.log_weights``.

    Raises:
        ConfigError: If the variable is set to something that is not a boolean.

    Example:
        >>> mlflow_weights()  # with REGISTRY_MLFLOW_WEIGHTS unset
        False
    """
    return parse_bool(os.environ.get(MLFLOW_WEIGHTS_ENV, ""), MLFLOW_WEIGHTS_ENV)


BUILD_STATISTICS_ENV = "REGISTRY_BUILD_STATISTICS"


def build_statistics() -> bool:
    """Whether builds compute per-feature statistics: ``$REGISTRY_BUILD_STATISTICS`` (a
    boolean, default on). Only ``benchmarks/bench_stats.py`` turns it off, to time a build
    without them; a build without statistics writes no ``statistics`` in ``build_info.json``.

    Raises:
        ConfigError: If the variable is set to something that is not a boolean.

    Example:
        >>> build_statistics()  # with REGISTRY_BUILD_STATISTICS unset
        True
    """
    text = os.environ.get(BUILD_STATISTICS_ENV, "").strip()
    return True if not text else parse_bool(text, BUILD_STATISTICS_ENV)


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


def parse_bool(value: str | bool, where: str) -> bool:
    """Read a boolean option or environment variable written as text.

    Accepts what DVC's config accepts for its boolean options (``true`` / ``false``, in any
    case), the spellings environment variables often use (``1`` / ``0``, ``yes`` / ``no``,
    ``on`` / ``off``), an empty string (a variable set to nothing: false), and a bool as is
    (DVC's parsed config holds those). Surrounding spaces are ignored.

    Args:
        value: The text (or a bool already parsed).
        where: Where it is set, for the error, e.g. ``"allow_anonymous_login of DVC remote
            'gcs'"``.

    Returns:
        The boolean.

    Raises:
        ConfigError: If ``value`` is anything else: names it, ``where`` it is set and what
            is accepted.

    Example:
        >>> parse_bool("True", "allow_anonymous_login of DVC remote 'gcs'")
        True
    """
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(
        f"{where} is {value!r}, which is not a boolean: use true or false (or 1/0, yes/no, "
        "on/off)"
    )
