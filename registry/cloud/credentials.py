"""Google Cloud credentials: finding Application Default Credentials, fast, and saying how to set
them up.

Credentials are always Google's Application Default Credentials (``gcloud auth
application-default login``, ``GOOGLE_APPLICATION_CREDENTIALS`` naming a service-account key
file kept outside the repository, or a Google Cloud machine's own service account). The
registry never writes them anywhere: not into the repository, the DVC config, ``params.yaml``,
MLflow or a log line. Messages name the place credentials came from, never their contents.

Failures are found fast: away from Google Cloud, google-auth's metadata-server probe (which can
wait many seconds where packets are dropped) is skipped (:func:`metadata_probe_off`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from registry.errors import CredentialsError, MissingDependencyError, first_line

__all__ = [
    "CLOUD_PLATFORM_SCOPE",
    "KEY_FILE_VAR",
    "credentials_help",
    "credentials_source",
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
