"""Who may do what (registry.owners, registry.stage_approvers) and signed tags
(registry.require_signed_tags): every refusal through the CLI, with its class and message."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import registry
from registry.config import Settings, who_may
from registry.errors import (
    BadSignatureError,
    ConfigError,
    NotPermittedError,
    SignerNotAllowedError,
    UnsignedTagError,
)
from tests.conftest import ReleasedRegistry, cli_raises, commit_all, git
from tests.test_release import MODEL, NAME, _model

pytestmark = pytest.mark.slow
BOSS, LEAD = "boss@lab.test", "lead@lab.test"


@pytest.fixture
def clone(released_registry: ReleasedRegistry, chdir: Callable[[Path], None]) -> Path:
    """The released registry's clone, as the working directory."""
    chdir(released_registry.clone)
    return released_registry.clone


def _settings(clone: Path, **section: Any) -> None:
    """Set keys of ``registry:`` in params.yaml and commit."""
    path = clone / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["registry"].update(section)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    commit_all(clone, f"Set {', '.join(section)}")


def _as(monkeypatch: pytest.MonkeyPatch, email: str) -> None:
    """Tag as ``email`` (what Git records as the tagger)."""
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", email)


def _tags(repo: Path) -> set[str]:
    return set(git(repo, "tag").split())


def test_owners_are_exact_names_else_every_matching_glob() -> None:
    settings = Settings(
        owners=(("vision/*", ("ana@lab.test",)), ("*", ("ops@lab.test",)), ("m", (BOSS,))),
        stage_approvers=(("prod", (LEAD,)),),
    )
    assert who_may(settings, "m") == ([BOSS], "registry.owners['m']")
    assert who_may(settings, "vision/cnn")[0] == ["ana@lab.test", "ops@lab.test"]
    assert who_may(settings, "m", "prod") == ([LEAD], "registry.stage_approvers.prod")
    assert who_may(settings, "m", "staging")[0] == [BOSS]
    assert who_may(Settings(), "m") == ([], "registry.owners[]")


def test_owners_release_and_deprecate(
    clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings(clone, owners={MODEL: [BOSS.upper()]})
    _model(clone, tmp_path)
    before = _tags(clone)
    error = cli_raises(NotPermittedError, "models", "release", MODEL, cwd=clone)
    assert str(error).startswith(
        "'researcher@lab.test' may not release model 'm': only boss@lab.test may "
        "(registry.owners['m'] in params.yaml), so nothing was tagged"
    )
    assert _tags(clone) == before
    _as(monkeypatch, BOSS)
    assert registry.release_model(MODEL, registry=clone).reference == "m:1.0.0"
    _as(monkeypatch, "researcher@lab.test")
    error = cli_raises(NotPermittedError, "models", "deprecate", MODEL, cwd=clone)
    assert "'researcher@lab.test' may not deprecate model 'm': only boss@lab.test" in str(error)


def test_stage_approvers_promote_and_demote(
    clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings(clone, owners={"*": [BOSS]}, stage_approvers={"prod": [LEAD]})
    _model(clone, tmp_path)
    _as(monkeypatch, BOSS)
    registry.release_model(MODEL, registry=clone)
    assert registry.promote_model(f"{MODEL}:1.0.0", "staging", registry=clone) == "m#staging#1"
    error = cli_raises(NotPermittedError, "models", "promote", f"{MODEL}:1.0.0", "prod",
                       cwd=clone)
    assert str(error).startswith(
        "'boss@lab.test' may not promote m:1.0.0 to 'prod': only lead@lab.test may "
        "(registry.stage_approvers.prod in params.yaml)"
    )
    _as(monkeypatch, LEAD)  # an approver need not be an owner
    assert registry.promote_model(f"{MODEL}:1.0.0", "prod", registry=clone) == "m#prod#2"
    error = cli_raises(NotPermittedError, "models", "demote", MODEL, "staging", cwd=clone)
    assert "'lead@lab.test' may not demote m:1.0.0 from 'staging': only boss@lab.test may " \
        "(registry.owners['*'] in params.yaml)" in str(error)
    _as(monkeypatch, BOSS)
    error = cli_raises(NotPermittedError, "models", "demote", MODEL, "prod", cwd=clone)
    assert "may not demote m:1.0.0 from 'prod': only lead@lab.test may" in str(error)
    assert "m#prod!#3" not in _tags(clone)


def test_bad_owner_settings_are_refused(clone: Path) -> None:
    _settings(clone, stage_approvers={"production": [LEAD]})
    error = cli_raises(ConfigError, "models", "list", cwd=clone)
    assert "registry.stage_approvers in params.yaml names production, which is not a stage; " \
        "the stages are dev, staging, prod" in str(error)
    _settings(clone, stage_approvers={}, owners={MODEL: ["not an email"]})
    error = cli_raises(ConfigError, "models", "list", cwd=clone)
    assert "registry.owners.m in params.yaml must be a list of Git emails" in str(error)


# -- signed tags (SSH keys: ssh-keygen needs no agent and no keyring) ----------------------------


def _need(tool: str) -> None:
    """Skip without ``tool`` (under CI=true conftest makes that a failure: never silent)."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed: the signed-tag tests need it")


def _ssh_key(tmp_path: Path, name: str) -> tuple[Path, str]:
    """A throwaway ed25519 key without a passphrase: its private key file and public key line."""
    _need("ssh-keygen")
    key = tmp_path / "keys" / name
    key.parent.mkdir(exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
                   check=True)
    return key, key.with_suffix(".pub").read_text().strip()


def _sign_with(key: Path) -> None:
    """Set up this test's (global) Git to sign tags with the SSH ``key``."""
    for setting in (("gpg.format", "ssh"), ("user.signingkey", str(key))):
        subprocess.run(["git", "config", "--global", *setting], check=True)


@pytest.fixture
def signing(clone: Path, tmp_path: Path) -> Path:
    """The clone requires signed tags and allows one SSH key (researcher@lab.test's), which this
    test's Git signs with; returns the other key, which is not allowed."""
    key, public = _ssh_key(tmp_path, "allowed")
    other, _ = _ssh_key(tmp_path, "other")
    (clone / ".allowed_signers").write_text(f"researcher@lab.test {public}\n")
    _settings(clone, require_signed_tags=True)
    _sign_with(key)
    return other


def test_signed_versions_load_and_unsigned_ones_are_refused(
    clone: Path, tmp_path: Path, signing: Path
) -> None:
    _model(clone, tmp_path)
    release = registry.release_model(MODEL, registry=clone)
    assert "-----BEGIN SSH SIGNATURE-----" in git(clone, "cat-file", "tag", release.tag)
    stage = registry.promote_model(f"{MODEL}:1.0.0", "prod", registry=clone)
    assert "-----BEGIN SSH SIGNATURE-----" in git(clone, "cat-file", "tag", stage)
    assert registry.load_model(f"{MODEL}@prod").read_bytes() == b"weights" * 100
    assert registry.model_info(f"{MODEL}:1.0.0").card.get("license") == "apache-2.0"

    # The fixture released the dataset before signing was set up.
    error = cli_raises(UnsignedTagError, "datasets", "info", f"{NAME}:1.0.0", cwd=clone)
    assert str(error).startswith(
        f"tag '{NAME}@v1.0.0' is not signed, and this registry loads only versions signed by an "
        "allowed signer (registry.require_signed_tags in params.yaml); load another version"
    )
    cli_raises(UnsignedTagError, "datasets", "pull", NAME, cwd=clone)


def test_a_signer_not_allowed_and_an_altered_tag_are_refused(
    clone: Path, tmp_path: Path, signing: Path
) -> None:
    _model(clone, tmp_path)
    _sign_with(signing)  # a key that .allowed_signers does not list
    registry.release_model(MODEL, registry=clone)
    error = cli_raises(SignerNotAllowedError, "models", "pull", f"{MODEL}:1.0.0", cwd=clone)
    assert str(error).startswith(
        "tag 'm@v1.0.0' is signed by a key that is not an allowed signer (git verify-tag: "
        "No principal matched.)"
    )
    assert "add their key to .allowed_signers" in str(error)

    # An allowed signature on an altered tag: a tag object whose message was changed.
    _sign_with(tmp_path / "keys" / "allowed")
    _model(clone, tmp_path, b"retrained")
    tag = registry.release_model(MODEL, bump="patch", registry=clone).tag
    altered = git(clone, "cat-file", "tag", tag).replace("Release", "Re-release", 1)
    forged = subprocess.run(["git", "mktag"], input=altered, cwd=clone, check=True,
                            capture_output=True, text=True).stdout.strip()
    git(clone, "tag", "--force", tag, forged)
    error = cli_raises(BadSignatureError, "models", "info", f"{MODEL}:1.0.1", cwd=clone)
    assert str(error).startswith(
        "tag 'm@v1.0.1' has a signature that does not verify (the tag was altered after signing)"
    )
    assert "do not use this version" in str(error)


@pytest.fixture
def gnupg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A throwaway GPG home with one signing key (researcher@lab.test), which this test's Git
    signs tags with; yields its fingerprint, and stops the gpg-agent it started."""
    _need("gpg")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(home))
    subprocess.run(["gpg", "--batch", "--quiet", "--passphrase", "", "--quick-gen-key",
                    "Test Researcher <researcher@lab.test>", "ed25519", "sign", "never"],
                   check=True, capture_output=True)
    listing = subprocess.run(["gpg", "--list-secret-keys", "--with-colons"], check=True,
                             capture_output=True, text=True).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines()
                       if line.startswith("fpr:"))
    subprocess.run(["git", "config", "--global", "user.signingkey", fingerprint], check=True)
    yield fingerprint
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**os.environ, "GNUPGHOME": str(home)},
                   check=False)


def test_gpg_signed_tags_are_verified_with_the_keyring(
    clone: Path, tmp_path: Path, gnupg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings(clone, require_signed_tags=True)
    _model(clone, tmp_path)
    release = registry.release_model(MODEL, registry=clone)
    assert "-----BEGIN PGP SIGNATURE-----" in git(clone, "cat-file", "tag", release.tag)
    assert registry.load_model(f"{MODEL}:1.0.0").read_bytes() == b"weights" * 100

    # A loader whose keyring lacks the signer's key does not trust the version.
    empty = tmp_path / "empty-gnupg"
    empty.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(empty))
    error = cli_raises(SignerNotAllowedError, "models", "info", f"{MODEL}:1.0.0", cwd=clone)
    assert f"NO_PUBKEY {gnupg[-16:]}" in str(error)
