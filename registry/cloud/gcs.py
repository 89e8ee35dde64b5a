"""Google Cloud Storage: clear errors for a registry on a bucket, and ``gs://`` folders.

Every storage error that DVC, gcsfs or google-auth raises is turned into a message that says what
to fix (:func:`explain_storage_error`); a remote's bucket is checked with one request before a
release pushes anything. :func:`download_folder` and :func:`delete_folder` move a build that
Dataflow's workers wrote to Cloud Storage back into the registry clone; :func:`upload_file` and
:func:`list_folder` are how a Vertex AI training job writes its output and
``registry compute fetch`` finds it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from registry.cloud.credentials import credentials_help, credentials_source, find_credentials
from registry.cloud.names import parse_gs_path
from registry.errors import CredentialsError, RegistryError, RemoteError, first_line

__all__ = [
    "delete_folder",
    "download_folder",
    "explain_storage_error",
    "list_folder",
    "upload_file",
]


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


def _storage_failure(error: Exception, url: str, action: str) -> RegistryError:
    """What a failed Cloud Storage call on ``url`` becomes: the explained error, else a
    RemoteError quoting the library."""
    explained = explain_storage_error(error, remote="", url=url, action=f"{action} {url}")
    return explained or RemoteError(f"{action} {url} failed: {first_line(error)}")


def list_folder(url: str) -> list[str]:
    """The names of the objects under the folder ``url``, relative to it (empty: none).

    Raises:
        RemoteError: If the folder cannot be listed (missing bucket, unreachable server).
        CredentialsError: If credentials are missing or refused.
        ConfigError: If ``url`` is not a ``gs://`` folder with a valid bucket name.
    """
    bucket_name, prefix = parse_gs_path(url, "the folder", "", "gs://my-lab-vertex/training")
    client = _storage_client()
    base = f"{prefix}/" if prefix else ""
    try:
        names = [b.name for b in client.list_blobs(bucket_name, prefix=base)]
    except Exception as e:  # google.api_core raises its own classes
        raise _storage_failure(e, url, "listing") from e
    return sorted(n[len(base) :] for n in names if not n.endswith("/"))


def upload_file(path: Path, url: str) -> None:
    """Upload the local file ``path`` to the object ``url`` (``gs://bucket/name``), checked by
    its CRC32C; an existing object is replaced.

    Raises:
        RemoteError: If the upload fails (with the reason).
        CredentialsError: If credentials are missing or refused.
        ConfigError: If ``url`` is not a ``gs://`` object with a valid bucket name.
    """
    bucket_name, name = parse_gs_path(url, "the object", "", "gs://my-lab-vertex/out/file")
    client = _storage_client()
    try:
        blob = client.bucket(bucket_name).blob(name)
        blob.upload_from_filename(str(path), checksum="crc32c")
    except Exception as e:  # google.api_core and google.resumable_media raise their own classes
        raise _storage_failure(e, url, "uploading to") from e


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
        ConfigError: If ``url`` is not a ``gs://`` folder with a valid bucket name.
    """
    from concurrent.futures import ThreadPoolExecutor

    bucket_name, prefix = parse_gs_path(url, "the folder", "", "gs://my-lab-beam/tmp/build")
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
    bucket_name, prefix = parse_gs_path(url, "the folder", "", "gs://my-lab-beam/tmp/build")
    client = _storage_client()
    blobs = list(client.list_blobs(bucket_name, prefix=f"{prefix}/" if prefix else ""))
    for blob in blobs:
        blob.delete()
    return len(blobs)
