"""Configuration: one documented order of sources."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from registry.cloud.credentials import on_google_cloud
from registry.config import (
    DEFAULT_STAGES,
    find_registry_root,
    load_settings,
    parse_bool,
    parse_params,
    read_params,
    registry_section,
    required_section,
    user_config_path,
)
from registry.errors import ConfigError, CredentialsError, NotARegistryError
from registry.repo.session import open_session
from tests.conftest import NOT_APPLICABLE, cli_raises, commit_all, git


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


def test_shared_cache_order_params_then_user_file_then_env_then_arguments(
    tmp_path: Path, chdir, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _registry(tmp_path / "reg")
    chdir(root)
    assert load_settings().shared_cache_dir is None
    # Set once for the lab in the registry's params.yaml; a relative path is the registry's.
    (root / "params.yaml").write_text("registry:\n  shared_cache_dir: /nfs/lab-cache\n")
    assert load_settings().shared_cache_dir == Path("/nfs/lab-cache")
    (root / "params.yaml").write_text("registry:\n  shared_cache_dir: ../lab-cache\n")
    assert load_settings().shared_cache_dir == root / "../lab-cache"

    config = user_config_path()
    config.parent.mkdir(parents=True)
    config.write_text('shared_cache_dir = "~/scratch/lab-cache"\n')
    assert load_settings().shared_cache_dir == Path.home() / "scratch" / "lab-cache"

    monkeypatch.setenv("REGISTRY_SHARED_CACHE", "/mnt/env-cache")
    assert load_settings().shared_cache_dir == Path("/mnt/env-cache")
    assert load_settings(shared_cache_dir="/arg").shared_cache_dir == Path("/arg")
    assert load_settings(shared_cache_dir=None).shared_cache_dir == Path("/mnt/env-cache")
    # Set but empty: no shared cache, whatever the sources below say.
    assert load_settings(shared_cache_dir="").shared_cache_dir is None
    monkeypatch.setenv("REGISTRY_SHARED_CACHE", "")
    assert load_settings().shared_cache_dir is None


def test_a_relative_or_malformed_shared_cache_is_a_clear_error(
    tmp_path: Path, chdir, monkeypatch: pytest.MonkeyPatch
) -> None:
    chdir(tmp_path)
    monkeypatch.setenv("REGISTRY_SHARED_CACHE", "lab-cache")
    with pytest.raises(ConfigError, match=r"REGISTRY_SHARED_CACHE must be an absolute path.*"):
        load_settings()
    monkeypatch.delenv("REGISTRY_SHARED_CACHE")
    config = user_config_path()
    config.parent.mkdir(parents=True)
    config.write_text("shared_cache_dir = 3\n")
    with pytest.raises(ConfigError, match=r"shared_cache_dir in .*config\.toml must be a folder"):
        load_settings()


# -- boolean options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True), ("TRUE", True), (" True ", True), ("1", True), ("yes", True),
        ("on", True), (True, True),
        ("false", False), ("False", False), ("0", False), ("no", False), ("off", False),
        ("", False), (False, False),
    ],
)
def test_parse_bool_accepts_what_dvc_and_environments_write(
    text: str | bool, expected: bool
) -> None:
    assert parse_bool(text, "X") is expected


@pytest.mark.parametrize("junk", ["ture", "2", "y e s", "enabled", 1, None])
def test_parse_bool_refuses_junk_naming_where_it_is_set(junk: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_bool(junk, "allow_anonymous_login of DVC remote 'gcs'")  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"allow_anonymous_login of DVC remote 'gcs' is {junk!r}, which is not a boolean: use "
        "true or false (or 1/0, yes/no, on/off)"
    )


@pytest.mark.skipif(
    on_google_cloud(), reason=NOT_APPLICABLE + "a Google Cloud machine has credentials"
)
def test_allow_anonymous_login_from_a_real_dvc_config(
    make_registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`dvc remote modify ... allow_anonymous_login` as DVC writes it: the raw text and DVC's
    parsed value read the same, and opening the remote needs credentials only when it is false."""
    from dvc.config import Config

    from registry.repo.session import open_session
    from registry.storage.remote import RemoteStore

    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    repo = make_registry(datasets=[])
    dvc = ["dvc", "remote"]
    subprocess.run([*dvc, "add", "gcs", "gs://lab-public/dvc"], cwd=repo, check=True)
    for written, anonymous in (("TRUE", True), ("false", False), ("True", True)):
        subprocess.run(
            [*dvc, "modify", "gcs", "allow_anonymous_login", written], cwd=repo, check=True
        )
        raw = Config.load_file(str(repo / ".dvc" / "config"))["remote"]["gcs"]
        assert raw["allow_anonymous_login"] == written
        assert parse_bool(raw["allow_anonymous_login"], "X") is anonymous
        session = open_session(repo)
        store = RemoteStore.open(session.repo, session.repo.resolve_commit("HEAD"), "gcs")
        if anonymous:
            assert store.options["allow_anonymous_login"] is True  # DVC parsed it
        else:
            with pytest.raises(CredentialsError, match="no Google Cloud credentials found"):
                store.options  # noqa: B018 - opening the remote checks credentials
    # DVC accepts no more than parse_bool does: it refuses anything but true or false.
    refused = subprocess.run(
        [*dvc, "modify", "gcs", "allow_anonymous_login", "maybe"],
        cwd=repo, capture_output=True, text=True,
    )
    assert refused.returncode != 0 and "expected true or false" in refused.stderr
# -- params.yaml: one reader, which names the line ------------------------------------------------

BROKEN_PARAMS = "registry:\n  stages: [dev, prod]\nbeam:\n  runner: DirectRunner\n   bad: indent\n"


def test_params_are_parsed_and_a_broken_file_names_its_line(tmp_path: Path) -> None:
    assert parse_params("", "params.yaml") == {}
    parsed = parse_params(b"beam:\n  runner: DirectRunner\n", "p")
    assert parsed == {"beam": {"runner": "DirectRunner"}}
    assert read_params(tmp_path) == {}  # no params.yaml: no knobs

    (tmp_path / "params.yaml").write_text(BROKEN_PARAMS)
    with pytest.raises(ConfigError) as caught:
        read_params(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"cannot parse {tmp_path / 'params.yaml'}: line 5, column ")
    assert "fix the YAML there" in message

    with pytest.raises(ConfigError, match=r"^where: must hold a mapping .* not a list; fix"):
        parse_params("- a\n- b\n", "where:")
    with pytest.raises(ConfigError, match="'registry' in p must be a mapping, not 'prod'"):
        registry_section(parse_params("registry: prod\n", "p"), "p")


def test_a_broken_params_yaml_names_its_line_through_the_cli(tmp_path: Path) -> None:
    root = _registry(tmp_path / "reg")
    (root / "params.yaml").write_text(BROKEN_PARAMS)

    error = cli_raises(ConfigError, "datasets", "list", cwd=root)

    assert str(error) == (
        f"cannot parse {root / 'params.yaml'}: line 5, column 7: mapping values are not allowed "
        "here; fix the YAML there"
    )


def test_a_broken_params_yaml_at_a_registry_url_is_reported_not_skipped(tmp_path: Path) -> None:
    # A registry read by Git URL configures the session from params.yaml at its default branch:
    # a broken file there must say so (with the line), not silently fall back to defaults.
    work = _registry(tmp_path / "work")
    (work / "params.yaml").write_text(BROKEN_PARAMS)
    git(work, "init", "-q", "-b", "main")
    commit = commit_all(work, "a broken params.yaml")
    bare = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))

    with pytest.raises(ConfigError) as caught:
        open_session(str(bare))
    assert str(caught.value).startswith(
        f"cannot parse params.yaml at commit {commit[:12]} of {bare}: line 5, column 7: "
    )

    error = cli_raises(ConfigError, "datasets", "list", "--registry", str(bare), cwd=tmp_path)
    assert "params.yaml at commit" in str(error) and "line 5, column 7" in str(error)


def test_an_empty_repository_is_no_registry(tmp_path: Path) -> None:
    bare = tmp_path / "empty.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))

    error = cli_raises(NotARegistryError, "datasets", "list", "--registry", str(bare), cwd=tmp_path)

    assert str(error).startswith(f"{bare} has no commits, so it holds no registry yet: push")


def test_a_required_section_names_every_missing_key_and_keeps_only_values() -> None:
    section = {"flink_master": "localhost:8081", "parallelism": None, "empty": ""}
    assert required_section(section, "beam.flink", ["flink_master"], "FlinkRunner") == {
        "flink_master": "localhost:8081"
    }
    with pytest.raises(ConfigError) as caught:
        required_section({"region": ""}, "beam.dataflow", ["project", "region"], "DataflowRunner")
    assert str(caught.value) == (
        "DataflowRunner needs project, region: set beam.dataflow.project, beam.dataflow.region "
        "in params.yaml"
    )
    with pytest.raises(ConfigError, match=r"^beam\.flink in params\.yaml must be a mapping$"):
        required_section(["localhost"], "beam.flink", ["flink_master"], "FlinkRunner")


def test_a_cache_dir_that_is_a_file_names_the_variable(tmp_path: Path, monkeypatch) -> None:
    root = _registry(tmp_path / "reg")
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "a registry")
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("")
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(a_file))

    error = cli_raises(ConfigError, "datasets", "list", cwd=root)

    assert str(error).startswith(
        f"REGISTRY_CACHE_DIR is {str(a_file)!r}, which is a file, not a folder; point it at"
    )
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(a_file / "sub"))
    with pytest.raises(ConfigError, match=f"which is inside {a_file}, which is a file"):
        load_settings()
    monkeypatch.delenv("REGISTRY_CACHE_DIR")
    with pytest.raises(ConfigError, match=r"^the cache_dir argument is"):
        load_settings(cache_dir=str(a_file))
