"""Configuration: one documented order of sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.config import DEFAULT_STAGES, find_registry_root, load_settings, user_config_path
from registry.errors import ConfigError


def _registry(folder: Path) -> Path:
    (folder / ".dvc").mkdir(parents=True)
    (folder / "datasets").mkdir()
    return folder


def test_defaults_outside_a_registry(tmp_path: Path, chdir, isolated_env: Path) -> None:
    chdir(tmp_path)
    settings = load_settings()
    assert settings.url is None
    assert settings.cache_dir == isolated_env / ".cache" / "lab-registry"
    assert settings.stages == DEFAULT_STAGES


def test_enclosing_clone_is_found_from_a_subfolder(tmp_path: Path, chdir) -> None:
    root = _registry(tmp_path / "reg")
    (root / "datasets" / "x").mkdir()
    chdir(root / "datasets" / "x")
    assert find_registry_root() == root
    assert load_settings().url == str(root)


def test_order_user_file_then_clone_then_env_then_arguments(
    tmp_path: Path, chdir, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = user_config_path()
    config.parent.mkdir(parents=True)
    config.write_text('url = "https://git.lab/user-file.git"\ncache_dir = "~/lab-cache"\n')
    chdir(tmp_path)
    assert load_settings().url == "https://git.lab/user-file.git"
    assert load_settings().cache_dir == Path.home() / "lab-cache"

    root = _registry(tmp_path / "reg")
    chdir(root)
    assert load_settings().url == str(root)

    monkeypatch.setenv("REGISTRY_URL", "https://git.lab/env.git")
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(tmp_path / "env-cache"))
    assert load_settings().url == "https://git.lab/env.git"
    assert load_settings().cache_dir == tmp_path / "env-cache"

    assert load_settings(url="/arg").url == "/arg"


def test_stages_come_from_the_registry_params(tmp_path: Path, chdir) -> None:
    root = _registry(tmp_path / "reg")
    (root / "params.yaml").write_text("registry:\n  stages: [dev, canary, prod]\n")
    chdir(root)
    assert load_settings().stages == ("dev", "canary", "prod")
    (root / "params.yaml").write_text("registry:\n  stages: prod\n")
    with pytest.raises(ConfigError, match="must be a list"):
        load_settings()


def test_broken_user_config_is_a_clear_error(tmp_path: Path, chdir) -> None:
    config = user_config_path()
    config.parent.mkdir(parents=True)
    config.write_text("url = [unclosed\n")
    chdir(tmp_path)
    with pytest.raises(ConfigError, match="user config file"):
        load_settings()


def test_unknown_setting_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        load_settings(colour="blue")
