"""Where released bytes live: point the registry at a DVC remote, and check it.

The embedded default is a local folder remote. A lab points the registry at a Google Cloud
Storage bucket with one command, commits ``.dvc/config``, and every clone, loader and ``dvc
import`` uses the bucket from then on::

    registry remote set gs://my-lab-registry/dvc
    git commit -m "Store releases on GCS" .dvc/config

Only the URL (and, for an emulator or a private endpoint, the endpoint and anonymous access) goes
into the config. Credentials never do: they come from Application Default Credentials on each
machine (``gcloud auth application-default login``, or ``GOOGLE_APPLICATION_CREDENTIALS`` naming a
key file outside the repository).
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from typing import Any

from registry.cloud.names import check_bucket
from registry.config import parse_bool
from registry.errors import ConfigError, NotARegistryError
from registry.repo.session import open_session

__all__ = ["RemoteStatus", "check_remote", "set_remote"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# DVC remote options that hold secrets or point at them (every remote type's).
_CREDENTIAL_OPTIONS = (
    "credentialpath",
    "credentials",
    "token",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "account_key",
    "connection_string",
    "sas_token",
    "client_secret",
    "password",
    "gdrive_client_secret",
    "gdrive_service_account_json_file_path",
)


@dataclass(frozen=True)
class RemoteStatus:
    """What :func:`check_remote` found.

    Attributes:
        name: The DVC remote's name.
        url: Its URL.
        default: Whether it is the registry's default remote.
        credentials: Where credentials come from, in words (never the credentials themselves).
        writable: Whether writing was checked (and worked).
    """

    name: str
    url: str
    default: bool
    credentials: str
    writable: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _check_url(url: str) -> str:
    if url.startswith(("gs://", "gcs://")):
        rest = url.split("://", 1)[1]
        check_bucket(rest.split("/", 1)[0], f"the remote URL {url!r}")
        return "gs://" + rest.rstrip("/")
    if "://" in url:
        return url  # s3://, azure://, ssh://, ...: DVC checks them
    return url


def set_remote(
    url: str,
    *,
    registry: str | os.PathLike[str] | None = None,
    name: str | None = None,
    endpoint_url: str | None = None,
    anonymous: bool = False,
    local: bool = False,
) -> RemoteStatus:
    """Make ``url`` the registry's default DVC remote (added, or changed if ``name`` exists).

    Args:
        url: ``gs://bucket/prefix``, another DVC remote URL, or a folder.
        registry: The registry clone; default from the configuration.
        name: The remote's name; default ``gcs`` for ``gs://`` URLs, else ``storage``.
        endpoint_url: Another Cloud Storage endpoint (an emulator, or a private endpoint).
        anonymous: Use no credentials (a public bucket, or an emulator).
        local: Write to ``.dvc/config.local`` (this clone only) instead of ``.dvc/config``
            (committed, so every clone and loader uses it).

    Returns:
        The remote as configured (``writable`` is False: nothing was checked; see
        :func:`check_remote`).

    Raises:
        ConfigError: If the URL or name is invalid, or options are given for a non-GCS URL.
        NotARegistryError: If ``registry`` is not a clone (a mirror's config cannot be edited).

    Example:
        >>> set_remote("gs://my-lab-registry/dvc")  # doctest: +SKIP
        RemoteStatus(name='gcs', url='gs://my-lab-registry/dvc', default=True, ...)
    """
    from registry.cloud.credentials import credentials_source

    session = open_session(registry)
    root = session.repo.work_tree
    if root is None:
        raise NotARegistryError(
            f"{session.repo.url} is not a clone: set the remote in a clone of the registry and "
            "commit .dvc/config"
        )
    url = _check_url(url)
    gcs = url.startswith("gs://")
    if (endpoint_url or anonymous) and not gcs:
        raise ConfigError("--endpoint-url and --anonymous apply to gs:// remotes only")
    if endpoint_url and not re.match(r"^https?://[^/\s]+", endpoint_url):
        raise ConfigError(f"endpoint URL {endpoint_url!r} must look like http(s)://host:port")
    name = name or ("gcs" if gcs else "storage")
    if not _NAME_RE.match(name):
        raise ConfigError(f"invalid remote name {name!r}: use letters, digits, '_', '-' and '.'")
    from dvc.config import Config

    level = "local" if local else "repo"
    config = Config(dvc_dir=str(root / ".dvc"))
    with config.edit(level) as conf:
        section = conf["remote"].setdefault(name, {})
        stale = [key for key in section if key in _CREDENTIAL_OPTIONS]
        if stale and not local:
            raise ConfigError(
                f"DVC remote {name!r} in .dvc/config holds credential options "
                f"({', '.join(stale)}); remove them (credentials never belong in a committed "
                "config: use Application Default Credentials) and run this again"
            )
        section["url"] = url
        if gcs:  # other remotes' options (an S3 endpoint, say) are DVC's to keep
            for key, value in (
                ("endpointurl", endpoint_url),
                ("allow_anonymous_login", anonymous),
            ):
                if value:
                    section[key] = value
                else:
                    section.pop(key, None)
        conf["core"]["remote"] = name
    return RemoteStatus(
        name=name,
        url=url,
        default=True,
        credentials="none (anonymous)" if anonymous else credentials_source(),
        writable=False,
    )


def check_remote(
    *,
    registry: str | os.PathLike[str] | None = None,
    remote: str | None = None,
    write: bool = False,
) -> RemoteStatus:
    """Check that the registry's DVC remote can be read (and, with ``write``, written).

    Credentials, the bucket and permissions are checked with a listing, and with ``write`` a
    small probe object written and deleted again: what ``registry datasets release`` checks
    before it uploads.

    Args:
        registry: The registry; default from the configuration.
        remote: A DVC remote name; default: the configured one (``REGISTRY_REMOTE``) or the
            registry's default.
        write: Also check that releases could be pushed.

    Raises:
        CredentialsError: If credentials are missing, unusable, or lack a permission.
        RemoteError: If the bucket or folder does not exist or cannot be reached.
        ConfigError: If the remote is not configured.
    """
    from registry.cloud.credentials import credentials_source
    from registry.storage.remote import RemoteStore

    session = open_session(registry)
    commit = session.repo.resolve_commit("HEAD")
    store = RemoteStore.open(session.repo, commit, remote or session.settings.remote)
    store.check(write=write)
    anonymous = parse_bool(
        store.options.get("allow_anonymous_login", False),
        f"allow_anonymous_login of DVC remote {store.name!r}",
    )
    gcs = store.url.startswith(("gs://", "gcs://"))
    return RemoteStatus(
        name=store.name,
        url=store.url,
        default=store.is_default,
        credentials=(
            "none (anonymous)" if anonymous else credentials_source() if gcs else "as DVC's"
        ),
        writable=write,
    )
