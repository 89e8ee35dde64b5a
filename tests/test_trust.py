"""Who may do what (registry.owners, registry.stage_approvers) and signed tags
(registry.require_signed_tags): every refusal through the CLI, with its class and message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import registry
from registry.config import Settings, who_may
from registry.errors import ConfigError, NotPermittedError
from tests.conftest import ReleasedRegistry, cli_raises, commit_all, git
from tests.test_release import MODEL, _model

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
