"""Google Cloud naming rules in one place: buckets, project ids, regions, service accounts, labels.

Every ``params.yaml`` key, remote URL or option that names a Google Cloud resource is checked
here, so the DVC remote, Dataflow and Vertex AI agree on what a valid name is. Each check returns
the value, or raises :class:`~registry.errors.ConfigError` whose message names the ``key`` that
holds the value (``"beam.dataflow.project"``), the value, what is wrong with it, and ``where`` it
is set (``"params.yaml"``; empty for a command-line argument).

The rules are Google's documented ones:

- bucket: 3-63 characters of lowercase letters, digits, ``-``, ``_`` and ``.``, starting and
  ending with a letter or digit; a name with dots (a domain name) may have up to 222 characters,
  each dot-separated part at most 63; not an IP address; not starting with ``goog`` nor holding
  ``google``;
- project id: 6-30 lowercase letters, digits and ``-``, starting with a letter, not ending with
  ``-`` (optionally after a ``domain.com:`` prefix, for domain-scoped projects);
- region: ``us-central1``, ``europe-west4``, ... (a zone such as ``europe-west4-a`` is not one);
- service account: an email, such as ``trainer@my-lab.iam.gserviceaccount.com``;
- label value: at most 63 lowercase letters, digits, ``_`` and ``-`` (international letters
  allowed); :func:`label_value` turns any text into one.
"""

from __future__ import annotations

import ipaddress
import re

from registry.errors import ConfigError

__all__ = [
    "check_bucket",
    "check_gs_path",
    "check_label_value",
    "check_project",
    "check_region",
    "check_service_account",
    "label_value",
    "parse_gs_path",
]

_BUCKET_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
_BUCKET_ENDS = re.compile(r"^[a-z0-9](.*[a-z0-9])?$")
_BUCKET_MAX, _DOTTED_BUCKET_MAX, _BUCKET_PART_MAX = 63, 222, 63
_PROJECT_RE = re.compile(r"^(?:[a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_REGION_RE = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_SERVICE_ACCOUNT_RE = re.compile(r"^[a-z0-9._-]+@[a-z0-9.-]+\.[a-z]+$")
_LABEL_MAX = 63
_NOT_LABEL_RE = re.compile(r"[^a-z0-9_-]+")

def _bucket_problem(name: str) -> str | None:
    """What breaks Google's bucket naming rules in ``name``, in words; None if nothing does."""
    parts = name.split(".")
    longest = _DOTTED_BUCKET_MAX if len(parts) > 1 else _BUCKET_MAX
    if not 3 <= len(name) <= longest:
        return (
            f"it has {len(name)} characters, not 3 to {_BUCKET_MAX} (up to "
            f"{_DOTTED_BUCKET_MAX} with dots, each dot-separated part at most {_BUCKET_PART_MAX})"
        )
    wrong = sorted({c for c in name if c not in _BUCKET_ALPHABET})
    if wrong:
        return f"it holds {''.join(wrong)!r}; use lowercase letters, digits, '-', '_' and '.'"
    if not _BUCKET_ENDS.match(name):
        return "it must start and end with a lowercase letter or digit"
    if any(not part for part in parts):
        return "it has two dots in a row"
    if any(len(part) > _BUCKET_PART_MAX for part in parts):
        return f"a dot-separated part is longer than {_BUCKET_PART_MAX} characters"
    try:
        ipaddress.IPv4Address(name)
        return "it is an IP address"
    except ValueError:
        pass
    if name.startswith("goog") or "google" in name:
        return "Google reserves names starting with 'goog' or holding 'google'"
    return None


def _fix(where: str) -> str:
    """The end of a message: where to fix the value, if it is set in a file."""
    return f"; fix it in {where}" if where else ""


def check_bucket(bucket: str, key: str, where: str = "") -> str:
    """Check ``bucket`` against Google Cloud Storage's bucket naming rules.

    Args:
        bucket: The bucket name, without ``gs://``.
        key: What holds it, for the message (e.g. ``"the remote URL 'gs://x/dvc'"``).
        where: The file it is set in (e.g. ``"params.yaml"``), or ``""`` for an argument.

    Returns:
        ``bucket``.

    Raises:
        ConfigError: If it is not a valid bucket name: says which rule it breaks.

    Example:
        >>> check_bucket("my-lab-registry", "the remote URL")
        'my-lab-registry'
    """
    problem = _bucket_problem(bucket)
    if problem is not None:
        raise ConfigError(f"{key}: {bucket!r} is not a valid bucket name: {problem}{_fix(where)}")
    return bucket


def parse_gs_path(value: str, key: str, where: str, example: str) -> tuple[str, str]:
    """Split a ``gs://BUCKET[/FOLDER]`` path into its bucket (checked) and folder.

    Args:
        value: The path.
        key: What holds it, for the message (e.g. ``"beam.dataflow.temp_location"``).
        where: The file it is set in (e.g. ``"params.yaml"``), or ``""`` for an argument.
        example: A path to show in the message, e.g. ``"gs://my-lab-beam/tmp"``.

    Returns:
        ``(bucket, folder)``, the folder without leading or trailing ``/`` (``""`` for none).

    Raises:
        ConfigError: If ``value`` is not a ``gs://`` path, or its bucket name is invalid.

    Example:
        >>> parse_gs_path("gs://my-lab/a/b/", "the folder", "", "gs://my-lab/data")
        ('my-lab', 'a/b')
    """
    bucket, _, folder = value.removeprefix("gs://").partition("/")
    if not value.startswith("gs://") or not bucket:
        raise ConfigError(
            f"{key} must be a gs:// path (gs://BUCKET[/FOLDER], e.g. {example}), not "
            f"{value!r}{_fix(where)}"
        )
    return check_bucket(bucket, f"{key} {value!r}", where), folder.strip("/")


def check_gs_path(value: str, key: str, where: str, example: str) -> str:
    """Check a ``gs://BUCKET[/FOLDER]`` path (see :func:`parse_gs_path`); return it without a
    trailing ``/``.

    Raises:
        ConfigError: If ``value`` is not a ``gs://`` path, or its bucket name is invalid.

    Example:
        >>> check_gs_path("gs://my-lab/out/", "output_uri", "params.yaml", "gs://my-lab/out")
        'gs://my-lab/out'
    """
    parse_gs_path(value, key, where, example)
    return value.rstrip("/")


def check_project(project: str, key: str, where: str = "") -> str:
    """Check a Google Cloud project id (``key`` and ``where`` as for :func:`check_bucket`).

    Raises:
        ConfigError: If ``project`` cannot be a project id.

    Example:
        >>> check_project("my-lab-123", "beam.dataflow.project", "params.yaml")
        'my-lab-123'
    """
    if not _PROJECT_RE.match(project):
        raise ConfigError(
            f"{key} {project!r} is not a Google Cloud project id (6-30 lowercase letters, digits "
            f"and '-', starting with a letter and not ending with '-'){_fix(where)}"
        )
    return project


def check_region(region: str, key: str, where: str = "") -> str:
    """Check a Google Cloud region name, not a zone (``key`` and ``where`` as for
    :func:`check_bucket`).

    Raises:
        ConfigError: If ``region`` cannot be a region.

    Example:
        >>> check_region("europe-west4", "compute.vertex.region", "params.yaml")
        'europe-west4'
    """
    if not _REGION_RE.match(region):
        raise ConfigError(
            f"{key} {region!r} is not a Google Cloud region such as us-central1 or europe-west4 "
            f"(a region, not a zone such as europe-west4-a){_fix(where)}"
        )
    return region


def check_service_account(
    account: str, key: str, where: str = "", *, example: str = "trainer@my-lab"
) -> str:
    """Check a service account's email.

    Args:
        account: The email.
        key: What holds it, for the message (e.g. ``"compute.vertex.service_account"``).
        where: The file it is set in (e.g. ``"params.yaml"``), or ``""`` for an argument.
        example: The start of the example in the message: ``<example>.iam.gserviceaccount.com``.

    Raises:
        ConfigError: If ``account`` is not an email.

    Example:
        >>> check_service_account("trainer@my-lab.iam.gserviceaccount.com", "service_account")
        'trainer@my-lab.iam.gserviceaccount.com'
    """
    if not _SERVICE_ACCOUNT_RE.match(account):
        raise ConfigError(
            f"{key} must be a service account email such as {example}.iam.gserviceaccount.com, "
            f"not {account!r}{_fix(where)}"
        )
    return account


def check_label_value(value: str, key: str, where: str = "") -> str:
    """Check a Google Cloud label value (what Vertex AI and Dataflow jobs are labelled with).

    Raises:
        ConfigError: If ``value`` is longer than 63 characters or holds anything but lowercase
            letters, digits, ``_`` and ``-``.

    Example:
        >>> check_label_value("lr-sweep-3", "the job id")
        'lr-sweep-3'
    """
    if len(value) > _LABEL_MAX:
        raise ConfigError(
            f"{key} {value!r} has {len(value)} characters, but a Google Cloud label value has at "
            f"most {_LABEL_MAX}{_fix(where)}"
        )
    wrong = sorted({c for c in value if not (c in "-_" or c.isdigit() or _lower_letter(c))})
    if wrong:
        raise ConfigError(
            f"{key} {value!r} is not a Google Cloud label value (lowercase letters, digits, '_' "
            f"and '-'): it holds {''.join(wrong)!r}{_fix(where)}"
        )
    return value


def _lower_letter(char: str) -> bool:
    """A letter with no upper case of its own (international letters count, as Google says)."""
    return char.isalpha() and char == char.lower()


def label_value(text: str) -> str:
    """``text`` as a valid label value: lowercase, each run of other characters one ``-``, at
    most 63 characters (``image_classification/digits`` -> ``image_classification-digits``).

    Example:
        >>> label_value("Products/Product_A/Ad Clicks")
        'products-product_a-ad-clicks'
    """
    return _NOT_LABEL_RE.sub("-", text.lower()).strip("-_")[:_LABEL_MAX]
