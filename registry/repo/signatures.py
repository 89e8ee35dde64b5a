"""Signed tags: whether a version's tag is signed, unaltered, by an allowed signer.

A registry that sets ``registry.require_signed_tags: true`` in ``params.yaml`` loads only
versions whose tag ``git verify-tag`` accepts. Signing needs nothing from the registry: a
release or promotion signs its tag when the user's Git signs tags (``user.signingkey``, or
``tag.gpgSign``), with GPG or with SSH (``gpg.format ssh``).

Who is an allowed signer:

- SSH signatures: the keys listed in the registry's committed ``.allowed_signers`` file
  (``ssh-keygen``'s allowed-signers format, one ``EMAIL ssh-ed25519 AAAA...`` line per key), read
  from the default branch (``HEAD``); without that file, the loader's own
  ``gpg.ssh.allowedSignersFile``.
- GPG signatures: the keys in the loader's GPG keyring (a lab distributes its public keys).

This module is the rule's one home; :meth:`registry.repo.session.Session.resolve` calls it, so
every command that resolves a reference to one version (load, pull, info of a version, promote)
checks it, and costs nothing more when the setting is off.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from registry import layout
from registry.errors import (
    BadSignatureError,
    SignerNotAllowedError,
    UnsignedTagError,
)
from registry.repo.git import GitRepo
from registry.repo.tags import Release

__all__ = ["check_signed"]

# What git verify-tag (with gpg or ssh-keygen under it) says when the signer is unknown.
_NOT_ALLOWED = (
    "no principal matched",
    "no_pubkey",
    "allowedsignersfile needs to be configured",
    "can't check signature: no public key",
)
_UNSIGNED = ("no signature found", "cannot verify a non-tag object")


def check_signed(repo: GitRepo, release: Release) -> None:
    """Refuse ``release`` unless its tag is signed, unaltered, by an allowed signer.

    Args:
        repo: The registry's repository (a clone or a mirror).
        release: The version to check.

    Raises:
        UnsignedTagError: If the tag has no signature (or is a lightweight tag).
        SignerNotAllowedError: If the signer's key is not an allowed one.
        BadSignatureError: If the signature does not verify: the tag was altered.

    Example:
        >>> check_signed(session.repo, session.resolve(ref, "model"))  # doctest: +SKIP
    """
    allowed = repo.read_file("HEAD", layout.ALLOWED_SIGNERS_FILE)
    if allowed is None:
        ok, said = repo.verify_tag(release.tag, None)
    else:
        fd, path = tempfile.mkstemp(prefix="registry-allowed-signers-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(allowed)
            ok, said = repo.verify_tag(release.tag, Path(path))
        finally:
            os.unlink(path)
    if ok:
        return
    # ssh-keygen's verdict is plain text; gpg's (with --raw) is its status lines.
    lines = [line for line in said.splitlines() if not line.startswith("[GNUPG:]")]
    status = [line.removeprefix("[GNUPG:] ") for line in said.splitlines() if line not in lines]
    detail = (lines or status or [""])[-1].removeprefix("error: ").strip()
    lowered = said.lower()
    if any(marker in lowered for marker in _UNSIGNED):
        raise UnsignedTagError(release.tag)
    if any(marker in lowered for marker in _NOT_ALLOWED):
        raise SignerNotAllowedError(release.tag, detail)
    raise BadSignatureError(release.tag, detail)
