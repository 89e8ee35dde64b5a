"""Beam on Dataflow: pipeline options from params.yaml, the worker package, and dry runs.

The registries are real (Git + DVC, made by ``make_registry``) with ``beam.runner:
DataflowRunner``. Nothing is submitted and nothing is contacted: the options are checked with
Beam's own parser, and the worker package is built into an sdist by Beam's own staging code.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry.build.beam import beam_flags, pipeline_options
from registry.cloud.dataflow import dataflow_flags, unknown_beam_flags, write_worker_package
from registry.errors import ConfigError
from tests.conftest import cli_raises, git, run_cli

NAME = "image_classification/digits"
MODULE = "digits_dataset_builder"
DATAFLOW = {
    "project": "my-lab-123",
    "region": "europe-west4",
    "temp_location": "gs://my-lab-beam/tmp",
    "staging_location": "gs://my-lab-beam/staging",
    "machine_type": "n2-standard-4",
    "max_num_workers": 20,
    "service_account_email": "dataflow@my-lab-123.iam.gserviceaccount.com",
}
SECRET = "TOPSECRET-KEY-MATERIAL-4242"


def set_beam(repo: Path, dataflow: Mapping[str, Any], runner: str = "DataflowRunner") -> None:
    """Edit the registry's params.yaml: the runner, and beam.dataflow's values."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["beam"]["runner"] = runner
    params["beam"]["dataflow"] = dict(dataflow)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def dataflow_registry(make_registry: Callable[..., Path]) -> Path:
    """A real registry holding the digits dataset, set to build on Dataflow (committed)."""
    repo = make_registry(datasets=[NAME])
    set_beam(repo, DATAFLOW)
    git(repo, "commit", "-q", "-am", "Build on Dataflow")
    return repo


def expected_flags(repo: Path) -> list[str]:
    setup = repo / ".registry/dataflow" / NAME / "setup.py"
    return [
        "--runner=DataflowRunner",
        "--project=my-lab-123",
        "--region=europe-west4",
        "--temp_location=gs://my-lab-beam/tmp",
        "--staging_location=gs://my-lab-beam/staging",
        "--machine_type=n2-standard-4",
        "--max_num_workers=20",
        "--service_account_email=dataflow@my-lab-123.iam.gserviceaccount.com",
        f"--setup_file={setup}",
        "--labels=registry-dataset=image_classification-digits",
    ]


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text, f"not one line: {text!r}"
    return text


# -- the dry run ----------------------------------------------------------------------------------


def test_prepare_dry_run_prints_every_flag_and_runs_nothing(
    dataflow_registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = dataflow_registry
    code, out, err = run_cli(capsys, "datasets", "prepare", NAME, "--dry-run", "-r", str(repo))

    assert code == 0, err
    assert out.splitlines() == expected_flags(repo)
    assert err == ""
    assert (repo / ".registry/dataflow" / NAME / "setup.py").is_file()
    # Nothing was built, and the generated package is ignored by Git: the work tree is clean.
    assert not (repo / "datasets" / NAME / "prepared").exists()
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_build_dry_run_json_gives_each_datasets_options(
    make_registry: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_registry()  # every example dataset
    set_beam(repo, DATAFLOW)
    git(repo, "commit", "-q", "-am", "Build on Dataflow")
    code, out, err = run_cli(capsys, "datasets", "build", "--dry-run", "--json", "-r", str(repo))

    assert code == 0, err
    options = json.loads(out)
    assert sorted(options) == [NAME, "products/product_a/ad_clicks",
                               "products/product_b/search_sessions", "text_generation/ad_copy"]
    assert options[NAME] == expected_flags(repo)
    for name, flags in options.items():
        assert flags[:8] == expected_flags(repo)[:8]
        assert flags[8] == f"--setup_file={repo / '.registry/dataflow' / name / 'setup.py'}"
    assert not list(repo.glob("datasets/**/prepared"))
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""

    # Text: each dataset's flags under a `# NAME` line.
    code, out, err = run_cli(capsys, "datasets", "build", NAME, "--dry-run", "-r", str(repo))
    assert code == 0, err
    assert out.splitlines() == [f"# {NAME}", *expected_flags(repo)]


def test_every_printed_flag_is_one_beam_knows(dataflow_registry: Path) -> None:
    from apache_beam.options.pipeline_options import (
        GoogleCloudOptions,
        PipelineOptions,
        SetupOptions,
        WorkerOptions,
    )

    flags = pipeline_options(dataflow_registry, NAME)
    options = PipelineOptions(flags)
    assert set(options.get_all_options(retain_unknown_options=True)) == set(
        options.get_all_options()
    )
    assert unknown_beam_flags(flags) == []
    cloud = options.view_as(GoogleCloudOptions)
    assert (cloud.project, cloud.region) == ("my-lab-123", "europe-west4")
    assert (cloud.temp_location, cloud.staging_location) == (
        "gs://my-lab-beam/tmp",
        "gs://my-lab-beam/staging",
    )
    assert cloud.service_account_email == "dataflow@my-lab-123.iam.gserviceaccount.com"
    assert cloud.labels == ["registry-dataset=image_classification-digits"]
    workers = options.view_as(WorkerOptions)
    assert (workers.machine_type, workers.max_num_workers) == ("n2-standard-4", 20)
    setup = options.view_as(SetupOptions)
    assert setup.setup_file == str(dataflow_registry / ".registry/dataflow" / NAME / "setup.py")
    assert not setup.save_main_session


def test_empty_staging_location_is_the_temp_location(make_registry: Callable[..., Path]) -> None:
    repo = make_registry(datasets=[NAME])
    set_beam(repo, {**DATAFLOW, "staging_location": None, "service_account_email": ""})
    flags = pipeline_options(repo, NAME)
    assert flags[3:5] == ["--temp_location=gs://my-lab-beam/tmp", "--staging_location=gs://my-lab-beam/tmp"]
    assert not any(f.startswith("--service_account_email") for f in flags)


def test_direct_runner_dry_run_prints_its_flags_and_writes_nothing(
    make_registry: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_registry(datasets=[NAME])
    code, out, err = run_cli(capsys, "datasets", "prepare", NAME, "--dry-run", "-r", str(repo))
    assert code == 0, err
    assert out.splitlines() == [
        "--runner=DirectRunner",
        "--direct_num_workers=2",
        "--direct_running_mode=multi_processing",
    ]
    assert not (repo / ".registry").exists()


def test_json_without_dry_run_is_a_usage_error(
    dataflow_registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(dataflow_registry)
    code, _, err = run_cli(capsys, "datasets", "prepare", NAME, "--json", "-r", repo)
    assert code == 2 and "--json goes with --dry-run" in err


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["project", "region", "temp_location"])
def test_each_required_key_is_named_when_missing(missing: str) -> None:
    with pytest.raises(ConfigError) as caught:
        dataflow_flags({**DATAFLOW, missing: None})
    message = one_line(caught.value)
    assert message == (
        f"DataflowRunner needs {missing}: set beam.dataflow.{missing} in params.yaml"
    )


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("temp_location", "/tmp/beam", "must be a gs:// path"),
        ("temp_location", "s3://lab/tmp", "must be a gs:// path"),
        ("temp_location", "gs://", "must be a gs:// path"),
        ("staging_location", "my-lab-beam/staging", "must be a gs:// path"),
        ("staging_location", "gs://My_Lab/staging", "is not a valid bucket name"),
        ("project", "My Lab", "is not a Google Cloud project id"),
        ("region", "Europe West", "is not a Google Cloud region"),
        ("region", "europe-west4-a", "is not a Google Cloud region"),
        ("max_num_workers", 0, "must be a positive whole number"),
        ("max_num_workers", -3, "must be a positive whole number"),
        ("max_num_workers", "many", "must be a positive whole number"),
        ("max_num_workers", 2.5, "must be a positive whole number"),
        ("max_num_workers", True, "must be a positive whole number"),
        ("machine_type", "n2 standard 4", "is not a Compute Engine machine type"),
        ("service_account_email", "dataflow-worker", "must be a service account email"),
    ],
)
def test_invalid_value_names_its_key_and_value(key: str, value: Any, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        dataflow_flags({**DATAFLOW, key: value})
    message = one_line(caught.value)
    assert f"beam.dataflow.{key}" in message and says in message
    assert repr(value) in message
    assert "params.yaml" in message


def test_misspelt_key_is_refused_not_dropped(
    dataflow_registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Beam would drop an unknown flag with a warning, and the job would run without it.
    set_beam(dataflow_registry, {**DATAFLOW, "max_workers": 3})
    code, out, err = run_cli(
        capsys, "datasets", "prepare", NAME, "--dry-run", "-r", str(dataflow_registry)
    )
    assert code == 2 and out == ""
    assert err.startswith("error: Beam has no pipeline option beam.dataflow.max_workers;")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_other_dataflow_options_pass_through(dataflow_registry: Path) -> None:
    set_beam(dataflow_registry, {**DATAFLOW, "disk_size_gb": 50, "use_public_ips": False})
    flags = pipeline_options(dataflow_registry, NAME)
    assert "--disk_size_gb=50" in flags and "--no_use_public_ips" in flags
    assert unknown_beam_flags(flags) == []
    from apache_beam.options.pipeline_options import PipelineOptions, WorkerOptions

    workers = PipelineOptions(flags).view_as(WorkerOptions)
    assert (workers.disk_size_gb, workers.use_public_ips) == (50, False)


def test_value_beam_cannot_take_is_one_config_error(dataflow_registry: Path) -> None:
    set_beam(dataflow_registry, {**DATAFLOW, "autoscaling_algorithm": "FASTEST"})
    with pytest.raises(ConfigError) as caught:
        pipeline_options(dataflow_registry, NAME)
    message = one_line(caught.value)
    assert message.startswith("Beam refused the pipeline options made from params.yaml: ")
    assert "--autoscaling_algorithm" in message and "'FASTEST'" in message


def test_project_params_yaml_still_builds_locally() -> None:
    params = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    assert beam_flags(params["beam"])[0] == "--runner=DirectRunner"
    assert set(params["beam"]["dataflow"]) >= set(DATAFLOW)


# -- the worker package ---------------------------------------------------------------------------


def build_sdist(setup_file: Path, dest: Path) -> Path:
    """Build the sdist as Beam does when the job is submitted (Beam's own staging code)."""
    from apache_beam.runners.portability.stager import Stager

    dest.mkdir()
    return Path(Stager._build_setup_package(str(setup_file), str(dest)))


def test_sdist_holds_the_registry_and_the_builder(dataflow_registry: Path, tmp_path: Path) -> None:
    package = write_worker_package(dataflow_registry, NAME)
    sdist = build_sdist(package.setup_file, tmp_path / "dist")

    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    import registry

    source = Path(registry.__file__).parent
    expected_registry = {
        f"registry/{p.relative_to(source).as_posix()}"
        for p in source.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert expected_registry <= names
    assert {"registry/__init__.py", "registry/build/reproducible.py", "registry/py.typed"} <= names
    assert {f"{MODULE}.py", "README.md", "CITATIONS.bib", "checksums.tsv", "setup.py"} <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    left_out = ("dummy_data/", "prepared/", "build_info.json", ".gitignore")
    assert not any(n.startswith(left_out) or n.endswith("_test.py") for n in names)
    assert package.modules == (MODULE,)
    assert sdist.name.endswith(f"-{package.version}.tar.gz")


def test_extracted_sdist_imports_the_builder_by_its_module_name(
    dataflow_registry: Path, tmp_path: Path
) -> None:
    package = write_worker_package(dataflow_registry, NAME)
    sdist = build_sdist(package.setup_file, tmp_path / "dist")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    code = (
        "import json, registry, registry.build.reproducible, " + MODULE + "\n"
        "print(json.dumps({'registry': registry.__file__, 'builder': " + MODULE + ".__file__,"
        " 'class': " + MODULE + ".Builder.__name__,"
        " 'version': str(" + MODULE + ".Builder.VERSION)}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(unpacked)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    # Imported from the package, not from this checkout or the installed registry.
    assert Path(found["registry"]).is_relative_to(unpacked)
    assert Path(found["builder"]) == unpacked / f"{MODULE}.py"
    assert found["class"] == "Builder"
    assert found["version"] == json.loads(
        (dataflow_registry / "datasets" / NAME / "build_info.json").read_text()
    )["version"]


def test_workers_get_what_the_builder_imports_at_the_installed_versions(
    dataflow_registry: Path,
) -> None:
    package = write_worker_package(dataflow_registry, NAME)
    tree = ast.parse(package.setup_file.read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and n.keywords)
    setup_args = {k.arg: ast.literal_eval(k.value) for k in call.keywords}

    providers = metadata.packages_distributions()
    tensorflow = providers["tensorflow"][0]
    assert setup_args["install_requires"] == list(package.requirements)
    assert set(package.requirements) == {
        f"importlib_resources=={metadata.version('importlib_resources')}",
        f"numpy=={metadata.version('numpy')}",
        f"protobuf=={metadata.version('protobuf')}",
        # digits reads the handwritten digits that scikit-learn ships.
        f"scikit-learn=={metadata.version('scikit-learn')}",
        f"tensorflow-cpu=={metadata.version(tensorflow)}",
        f"tensorflow-datasets=={metadata.version('tensorflow-datasets')}",
    }
    assert setup_args["py_modules"] == [MODULE]
    assert setup_args["packages"][0] == "registry"
    assert setup_args["python_requires"] == f"~={sys.version_info[0]}.{sys.version_info[1]}.0"


def test_package_is_regenerated_identically(dataflow_registry: Path) -> None:
    def snapshot(folder: Path) -> dict[str, bytes]:
        return {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*")
            if p.is_file()
        }

    first = write_worker_package(dataflow_registry, NAME)
    before = snapshot(first.folder)
    (first.folder / "stale.txt").write_text("left from an older run")
    second = write_worker_package(dataflow_registry, NAME)
    assert second == first
    assert snapshot(second.folder) == before
    # The builder changed: a new version, so workers never reuse an old install.
    builder = dataflow_registry / "datasets" / NAME / f"{MODULE}.py"
    builder.write_text(builder.read_text() + "\n# edited\n")
    assert write_worker_package(dataflow_registry, NAME).version != first.version


def test_a_symlink_leading_outside_the_repository_is_refused(
    dataflow_registry: Path, tmp_path: Path
) -> None:
    repo = dataflow_registry
    folder = repo / "datasets" / NAME
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(SECRET)
    # A data file of the dataset that is a link to a file outside the repository.
    (folder / "README.md").unlink(missing_ok=True)
    (folder / "README.md").symlink_to(secret)
    error = cli_raises(ConfigError, "datasets", "prepare", NAME, "--dry-run", cwd=repo)
    assert one_line(error).startswith(
        f"datasets/{NAME}/README.md is a symbolic link to {secret.resolve()}, outside the "
        f"repository {repo.resolve()}"
    )
    assert not (repo / ".registry/dataflow" / NAME).exists()
    # A link to a file inside the repository is fine: the file is the repository's.
    (folder / "README.md").unlink()
    (folder / "README.md").symlink_to(repo / "params.yaml")
    package = write_worker_package(repo, NAME)
    assert (package.folder / "README.md").read_bytes() == (repo / "params.yaml").read_bytes()

    # A module in a linked folder: the link named is the folder's.
    (folder / "README.md").unlink()
    real = tmp_path / "outside" / "digits"
    folder.rename(real)
    folder.symlink_to(real)
    with pytest.raises(ConfigError, match=f"^datasets/{NAME} is a symbolic link to {real}"):
        write_worker_package(repo, NAME)
    assert not any(SECRET in p.read_text() for p in package.folder.rglob("*.md"))


# -- credentials ----------------------------------------------------------------------------------


def write_key(folder: Path, private_key: str) -> Path:
    key = folder / "key.json"
    key.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "my-lab-123",
                "private_key_id": "0123456789abcdef",
                "private_key": private_key,
                "client_email": "dataflow@my-lab-123.iam.gserviceaccount.com",
                "client_id": "1234567890",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    return key


def test_dry_run_never_prints_or_writes_credentials(
    dataflow_registry: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = write_key(tmp_path, f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))

    for args in (["prepare", NAME, "--dry-run"], ["build", NAME, "--dry-run", "--json"]):
        code, out, err = run_cli(capsys, "datasets", *args, "-r", str(dataflow_registry))
        assert code == 0, err
        assert SECRET not in out + err and "private_key" not in out + err
    for path in (dataflow_registry / ".registry").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_build_without_credentials_stops_before_anything_runs(
    dataflow_registry: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(Path.home() / "gcloud"))
    code, out, err = run_cli(capsys, "datasets", "prepare", NAME, "-r", str(dataflow_registry))

    assert code == 2 and out == ""
    step, err = err.split("\n", 1)  # the build's line, then the error
    assert step.startswith(f"build {NAME} ... failed after ")
    assert err.startswith("error: no Google Cloud credentials found. Dataflow needs Google Cloud")
    assert "gcloud auth application-default login" in err and "'my-lab-123'" in err
    assert not (dataflow_registry / "datasets" / NAME / "prepared").exists()


def test_unusable_key_file_is_named_but_never_shown(
    dataflow_registry: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = write_key(tmp_path, f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    code, out, err = run_cli(capsys, "datasets", "prepare", NAME, "-r", str(dataflow_registry))

    assert code == 2
    step, err = err.split("\n", 1)  # the build's line, then the error
    assert step.startswith(f"build {NAME} ... failed after ")
    assert err.startswith(f"error: GOOGLE_APPLICATION_CREDENTIALS={key} could not be used")
    assert SECRET not in out + err and "PRIVATE KEY" not in out + err


def test_the_gcp_extra_installs_the_dataflow_client_beside_vertex_ai() -> None:
    # `pip install -c constraints.txt -e '.[gcp]'` (make install-test installs it): Beam's
    # Dataflow client and Vertex AI's SDK in one environment, with the pinned DVC, TFDS,
    # TensorFlow and MLflow.
    done = subprocess.run(
        [sys.executable, "-c", "import apache_beam.runners.dataflow.internal.apiclient, "
         "google.cloud.aiplatform, dvc, tensorflow_datasets, mlflow"],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        pytest.skip(
            "apache-beam[gcp] is not installed: pip install -c constraints.txt -e '.[gcp]' "
            f"({done.stderr.strip().splitlines()[-1:]})"
        )
    pins = dict(
        line.split("==", 1)
        for line in (Path(__file__).parents[1] / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    for name in ("apache-beam", "google-cloud-aiplatform", "cachetools", "google-auth-httplib2",
                 "dvc", "tensorflow-datasets", "mlflow", "protobuf"):
        assert metadata.version(name) == pins[name], name
    broken = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True
    )
    assert broken.returncode == 0, broken.stdout


def test_submitting_without_beams_gcp_extra_says_what_to_install(
    dataflow_registry: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A well-formed key (made here, valid nowhere): credentials load offline, the check passes.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(write_key(tmp_path, pem)))
    # Beam without its gcp extra: its Dataflow client cannot be imported.
    import apache_beam.runners.dataflow.internal as internal

    monkeypatch.delattr(internal, "apiclient", raising=False)
    monkeypatch.setitem(sys.modules, "apache_beam.runners.dataflow.internal.apiclient", None)
    code, out, err = run_cli(capsys, "datasets", "prepare", NAME, "-r", str(dataflow_registry))

    assert code == 10 and out == ""
    assert "pip install 'apache-beam[gcp]'" in err
    body = pem.splitlines()[1]
    assert body not in err
    assert not (dataflow_registry / "datasets" / NAME / "prepared").exists()
