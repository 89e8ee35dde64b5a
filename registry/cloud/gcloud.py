"""Google Cloud: credentials, and clear errors for a registry on Google Cloud Storage.

Credentials are always Google's Application Default Credentials (``gcloud auth
application-default login``, ``GOOGLE_APPLICATION_CREDENTIALS`` naming a service-account key
file kept outside the repository, or a Google Cloud machine's own service account). The
registry never writes them anywhere: not into the repository, the DVC config, ``params.yaml``,
MLflow or a log line. Messages name the place credentials came from, never their contents.

Failures are found fast: away from Google Cloud, google-auth's metadata-server probe (which can
wait many seconds where packets are dropped) is skipped, and a remote's bucket is checked with one
request before a release pushes anything. Every storage error is turned into a message that says
what to fix (:func:`explain_storage_error`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from registry.errors import (
    CredentialsError,
    MissingDependencyError,
    RegistryError,
    RemoteError,
    first_line,
)

__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "credentials_help",
    "credentials_source",
    "explain_storage_error",
    "find_credentials",
    "metadata_probe_off",
    "on_google_cloud",
]

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
KEY_FILE_VAR = "GOOGLE_APPLICATION_CREDENTIALS"


def on_google_cloud() -> bool:
    """Whether a metadata server can answer: a Google Cloud VM (as google-auth checks) or a
    serverless runtime."""
    serverless = ("K_SERVICE", "CLOUD_RUN_JOB", "GAE_ENV", "FUNCTION_TARGET")
    if any(os.environ.get(v) for v in serverless):
        return True
    try:
        return Path("/sys/class/dmi/id/product_name").read_text().startswith("Google")
    except OSError:
        return False


@contextmanager
def metadata_probe_off() -> Iterator[None]:
    """Skip google-auth's metadata-server probe away from Google Cloud.

    Off Google Cloud the probe can only fail, and where packets to 169.254.169.254 are dropped it
    waits 3 tries x 3 s plus back-off before saying so. A user who set NO_GCE_CHECK or
    GCE_METADATA_HOST (an emulator) decides for themselves.
    """
    if on_google_cloud() or any(
        os.environ.get(v) is not None
        for v in ("NO_GCE_CHECK", "GCE_METADATA_HOST", "GCE_METADATA_ROOT")
    ):
        yield
        return
    os.environ["NO_GCE_CHECK"] = "true"
    # google-auth reads NO_GCE_CHECK when its metadata module is first imported; if something
    # (gcsfs, DVC's gs remote) imported it already, its flag is set directly.
    metadata = sys.modules.get("google.auth.compute_engine._metadata")
    saved = getattr(metadata, "_NO_GCE_CHECK", None)
    if metadata is not None:
        setattr(metadata, "_NO_GCE_CHECK", True)  # noqa: B010 - a private flag, set on purpose
    try:
        yield
    finally:
        os.environ.pop("NO_GCE_CHECK", None)
        if metadata is not None:
            setattr(metadata, "_NO_GCE_CHECK", saved)  # noqa: B010


def credentials_help(purpose: str) -> str:
    """How to provide credentials, for an error message about ``purpose``."""
    return (
        f"{purpose} needs Google Cloud credentials: run `gcloud auth application-default "
        f"login`, or set {KEY_FILE_VAR} to a service-account key file kept outside the "
        "repository; never put credentials in params.yaml or the DVC config"
    )


def credentials_source() -> str:
    """Where Application Default Credentials would come from, in words (never their contents)."""
    key_file = os.environ.get(KEY_FILE_VAR)
    if key_file:
        return f"the key file named by {KEY_FILE_VAR} ({key_file})"
    config = os.environ.get("CLOUDSDK_CONFIG") or os.path.join(
        os.path.expanduser("~"), ".config", "gcloud"
    )
    adc = Path(config) / "application_default_credentials.json"
    if adc.is_file():
        return f"gcloud's application default credentials ({adc})"
    if on_google_cloud():
        return "this Google Cloud machine's service account"
    return "no credentials"


def find_credentials(purpose: str = "Google Cloud") -> Any:
    """Find Google's Application Default Credentials, quickly, without waiting on the network.

    Args:
        purpose: What needs them, for the error message (e.g. ``"Vertex AI for project
            'my-lab'"``).

    Returns:
        A ``google.auth.credentials.Credentials`` (never printed or stored by the registry).

    Raises:
        CredentialsError: If none are configured, or the key file named by
            ``GOOGLE_APPLICATION_CREDENTIALS`` is missing or malformed: says which, and how to
            provide credentials.
        MissingDependencyError: If google-auth is not installed.

    Example:
        >>> find_credentials("DVC remote 'gcs'")  # doctest: +SKIP
        <google.oauth2.service_account.Credentials object at 0x...>
    """
    try:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
    except ImportError as e:  # pragma: no cover - google-auth comes with the stack
        raise MissingDependencyError("google.auth", "'lab-registry'") from e
    # google-auth logs a warning for each place it looked in vain; the error below says it all.
    auth_log = logging.getLogger("google.auth._default")
    level = auth_log.level
    auth_log.setLevel(logging.ERROR)
    with metadata_probe_off():
        try:
            credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        except (DefaultCredentialsError, ValueError) as e:
            key_file = os.environ.get(KEY_FILE_VAR)
            if key_file:
                raise CredentialsError(
                    f"{KEY_FILE_VAR}={key_file} could not be used ({first_line(e)}). "
                    + credentials_help(purpose)
                ) from e
            raise CredentialsError(
                "no Google Cloud credentials found. " + credentials_help(purpose)
            ) from e
        finally:
            auth_log.setLevel(level)
    return credentials


# -- storage errors --------------------------------------------------------------------------------


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and its causes, outermost first (cycles cut)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _bucket(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


def explain_storage_error(
    error: BaseException, *, remote: str, url: str, action: str
) -> RegistryError | None:
    """A clear error for a failure talking to the Google Cloud Storage remote ``url``.

    Args:
        error: What DVC, gcsfs or google-auth raised (its causes are looked at too).
        remote: The DVC remote's name.
        url: The remote's URL (``gs://bucket/prefix``).
        action: What was being done, e.g. ``"pushing the data of 'digits'"``.

    Returns:
        A :class:`CredentialsError` (refused or unusable credentials, permission denied), a
        :class:`RemoteError` (missing bucket, server unreachable), or ``None`` when ``error`` is
        none of these (the caller reports it as it is).
    """
    bucket = _bucket(url)
    who = f"DVC remote {remote!r} ({url})" if remote else url
    owner = f" of DVC remote {remote!r}" if remote else ""
    for cause in _chain(error):
        name = type(cause).__name__
        module = type(cause).__module__
        text = str(cause)
        if name == "TransportError" and module.startswith("google.auth"):
            return RemoteError(
                f"{action} failed: cannot reach Google to use the credentials from "
                f"{credentials_source()} ({first_line(cause)}). Check the network and try again"
            )
        if module.startswith("google.auth") or name in ("RefreshError", "DefaultCredentialsError"):
            return CredentialsError(
                f"{action} failed: Google did not accept the credentials from "
                f"{credentials_source()} ({first_line(cause)}). "
                + credentials_help(who)
            )
        code = getattr(cause, "code", None)
        if text.startswith("Forbidden") or code == 403:
            return CredentialsError(
                f"{action} failed: permission denied on {url} for the credentials from "
                f"{credentials_source()} ({first_line(cause)}). Ask the bucket's owner for "
                f"roles/storage.objectViewer on gs://{bucket} to load, and "
                "roles/storage.objectCreator (or objectUser) to release, or use other credentials"
            )
        if code == 401:
            return CredentialsError(
                f"{action} failed: Google Cloud Storage refused the credentials from "
                f"{credentials_source()} as invalid or expired. "
                + credentials_help(who)
            )
        if isinstance(cause, FileNotFoundError) and text.strip("'\"") in (
            f"b/{bucket}/o",
            f"b/{bucket}",
            bucket,
        ):
            return RemoteError(
                f"{action} failed: the bucket gs://{bucket}{owner} does not exist. Create it "
                f"(`gcloud storage buckets create gs://{bucket}`) or point the remote at an "
                "existing one (`registry remote set gs://<bucket>/<prefix>`)"
            )
        if name in ("ClientConnectorError", "ServerDisconnectedError", "ClientOSError") or (
            isinstance(cause, ConnectionError | TimeoutError)
        ):
            return RemoteError(
                f"{action} failed: cannot reach Google Cloud Storage for {who}: "
                f"{first_line(cause)}. Check the network (or the emulator named by "
                "the remote's endpointurl) and try again; nothing half-done is visible to others"
            )
    return None


# -- folders on Cloud Storage ----------------------------------------------------------------------


def _storage_client() -> Any:
    """A google-cloud-storage client: anonymous against an emulator (``STORAGE_EMULATOR_HOST``),
    else with Application Default Credentials (checked fast, see :func:`find_credentials`)."""
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project="emulator", credentials=AnonymousCredentials())
    credentials = find_credentials("Reading and writing Cloud Storage")
    return storage.Client(credentials=credentials, project=getattr(credentials, "project_id", None))


def split_gs_url(url: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ``("bucket", "a/b")``.

    Raises:
        ValueError: If ``url`` is not a ``gs://`` URL with a bucket.
    """
    if not url.startswith("gs://") or not url[5:].split("/", 1)[0]:
        raise ValueError(f"not a gs://bucket/path URL: {url!r}")
    bucket, _, path = url[5:].partition("/")
    return bucket, path.strip("/")


def download_folder(url: str, dest: Path, *, jobs: int = 16) -> int:
    """Download every object under the folder ``url`` (``gs://bucket/prefix``) into ``dest``.

    Objects keep their paths relative to the folder; each is checked against its MD5/CRC32C by
    google-cloud-storage. Used to bring a dataset that Dataflow's workers built on Cloud Storage
    back into the registry clone.

    Args:
        url: The folder.
        dest: A local folder (created).
        jobs: Parallel downloads.

    Returns:
        How many files were downloaded.

    Raises:
        RemoteError: If the folder holds no objects, or cannot be read (with the reason).
        CredentialsError: If credentials are missing or refused.
    """
    from concurrent.futures import ThreadPoolExecutor

    bucket_name, prefix = split_gs_url(url)
    client = _storage_client()
    base = f"{prefix}/" if prefix else ""
    try:
        blobs = [b for b in client.list_blobs(bucket_name, prefix=base) if not b.name.endswith("/")]
    except Exception as e:  # google.api_core raises its own classes
        explained = explain_storage_error(e, remote="", url=url, action=f"listing {url}")
        raise (explained or RemoteError(f"listing {url} failed: {first_line(e)}")) from e
    if not blobs:
        raise RemoteError(f"{url} holds no files: the build wrote nothing there")

    for blob in blobs:
        rel = blob.name[len(base) :]
        if rel.startswith("/") or ".." in rel.split("/"):
            raise RemoteError(f"{url} holds an object with an unsafe name {blob.name!r}")

    def fetch(blob: Any) -> None:
        target = dest / blob.name[len(base) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(target))

    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            list(pool.map(fetch, blobs))
    except Exception as e:  # google.api_core and google.resumable_media raise their own classes
        explained = explain_storage_error(e, remote="", url=url, action=f"downloading {url}")
        raise (explained or RemoteError(f"downloading {url} failed: {first_line(e)}")) from e
    return len(blobs)


def delete_folder(url: str) -> int:
    """Delete every object under the folder ``url``; return how many. Errors are the caller's."""
    bucket_name, prefix = split_gs_url(url)
    client = _storage_client()
    blobs = list(client.list_blobs(bucket_name, prefix=f"{prefix}/" if prefix else ""))
    for blob in blobs:
        blob.delete()
    return len(blobs)
