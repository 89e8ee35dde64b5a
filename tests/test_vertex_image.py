"""The Vertex AI training image: `registry compute package` and the image `compute submit` runs.

Docker is not available here, so the build context is tested the way the Dockerfile uses it: its
``RUN ... pip install`` lines (read from the written Dockerfile) are run in a fresh virtual
environment whose TensorFlow stands in for the prebuilt image's (``tests/venvs.py``), in a copy of
the context as the image's working folder, and then the image's ``ENTRYPOINT`` runs there.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry.cli import main
from registry.cloud.vertex import TRAIN_COMMAND
from registry.errors import ConfigError, UnpackagedImageError
from tests.conftest import PROJECT_ROOT, cli_raises
from tests.venvs import UV_CACHE, FreshVenv, clean_env, fresh_venv

BASE = "us-docker.pkg.dev/vertex-ai/training/tf-gpu.2-21.py311:latest"
REPOSITORY = "us-central1-docker.pkg.dev/my-lab/training"
SECRET = "NOT-A-REAL-KEY-7e1d"
MODEL = "digits-cnn"


def vertex_section(**change: Any) -> dict[str, Any]:
    section = {
        "project": "my-lab",
        "region": "us-central1",
        "staging_bucket": "gs://my-lab-vertex/staging",
        "machine_type": "g2-standard-8",
        "accelerator_type": "NVIDIA_L4",
        "image_uri": BASE,
        "image_repository": REPOSITORY,
        "output_uri": "gs://my-lab-vertex/training",
    }
    section.update(change)
    return {k: v for k, v in section.items() if v is not None}


def set_vertex(repo: Path, backend: str = "vertex", **change: Any) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["compute"] = {"backend": backend, "vertex": vertex_section(**change)}
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def _copy_code(repo: Path) -> None:
    """The registry's own package, as a lab's clone of the repository holds it."""
    shutil.copytree(
        PROJECT_ROOT / "registry", repo / "registry",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )


@pytest.fixture
def image_registry(make_registry: Callable[..., Path]) -> Path:
    """A registry clone with the zoo's code (``src/``, ``models/``), the registry package and a
    Vertex section that packages images; a key file lies in it, untracked, as one might."""
    repo = make_registry(datasets=["image_classification/digits"], models=True)
    _copy_code(repo)
    set_vertex(repo)
    (repo / "key.json").write_text(json.dumps({"private_key": SECRET}))
    return repo


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main([*args])
        raise SystemExit(0)
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def package(capsys: pytest.CaptureFixture[str], repo: Path, out: Path) -> dict[str, str]:
    code, stdout, err = run_cli(
        capsys, "compute", "package", MODEL, "-r", str(repo), "--out", str(out)
    )
    assert code == 0, err
    lines = dict(line.split(": ", 1) for line in stdout.splitlines())
    assert set(lines) == {"context", "image", "build it"}
    return lines


def test_package_writes_a_context_of_the_code_and_prints_the_build_line(
    image_registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(image_registry / "key.json"))
    out = tmp_path / "context"
    lines = package(capsys, image_registry, out)

    image = lines["image"]
    assert image.startswith(f"{REPOSITORY}/lab-registry-train:")
    assert len(image.rsplit(":", 1)[1]) == 12
    assert lines["build it"] == f"gcloud builds submit --tag {image} {out}"
    assert Path(lines["context"]) == out

    dockerfile = (out / "Dockerfile").read_text().splitlines()
    assert f"FROM {BASE}" in dockerfile
    assert f"ENTRYPOINT {json.dumps(list(TRAIN_COMMAND))}" in dockerfile
    assert [ln for ln in dockerfile if ln.startswith("RUN ")] == [
        "RUN python -m pip install --no-cache-dir -c constraints.txt -r requirements.txt",
        "RUN python -m pip install --no-cache-dir --no-deps .",
    ]
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"registry/__init__.py", "registry/cloud/vertex.py", "src/zoo/train.py",
            "pyproject.toml", "README.md", "constraints.txt", "requirements.txt",
            "params.yaml", "Dockerfile"} <= files
    # Code only: no Git, DVC, data, models, caches or credentials.
    tops = {f.split("/", 1)[0] for f in files}
    assert tops <= {"registry", "src", "pyproject.toml", "README.md", "constraints.txt",
                    "requirements.txt", "params.yaml", "Dockerfile", ".dockerignore"}
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    # The base image's TensorFlow is not reinstalled; the rest of pyproject's is.
    requirements = (out / "requirements.txt").read_text()
    assert "tensorflow-datasets" in requirements and "dvc[gs]" in requirements
    assert not any(
        line.startswith(("tensorflow-cpu", "tensorflow>", "tensorflow=", "tensorflow;"))
        for line in requirements.splitlines()
    )
    assert set(yaml.safe_load((out / "params.yaml").read_text())) == {"train"}

    # The same code, the same image; changed code, a new one.
    assert package(capsys, image_registry, tmp_path / "again")["image"] == image
    train = image_registry / "src" / "zoo" / "train.py"
    train.write_text(train.read_text() + "\n# changed\n")
    assert package(capsys, image_registry, out)["image"] != image


def test_submit_runs_the_packaged_image_and_warns_of_any_other(
    image_registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(image_registry)
    dry_run = ("compute", "submit", MODEL, "--dry-run", "--job-id", "a", "-r", repo)

    def container(out: str) -> dict[str, Any]:
        spec = json.loads(out)
        return spec["custom_job"]["job_spec"]["worker_pool_specs"][0]["container_spec"]

    # Not packaged yet: the job names the image package would make, with a warning.
    code, out, err = run_cli(capsys, *dry_run)
    assert code == 0
    expected = container(out)["image_uri"]
    assert expected.startswith(f"{REPOSITORY}/lab-registry-train:")
    assert err.startswith(f"warning: the job would run {expected}, which `registry compute "
                          "package` did not produce for this code (the code changed since")
    assert len(err.strip().splitlines()) == 1

    image = package(capsys, image_registry, tmp_path / "context")["image"]
    code, out, err = run_cli(capsys, *dry_run)
    assert (code, err) == (0, "")
    assert container(out)["image_uri"] == image == expected
    assert container(out)["command"] == list(TRAIN_COMMAND)

    # Without image_repository the job runs the prebuilt image: it lacks the code.
    set_vertex(image_registry, image_repository=None)
    code, out, err = run_cli(capsys, *dry_run)
    assert code == 0 and container(out)["image_uri"] == BASE
    assert err.startswith(f"warning: the job would run {BASE}, which")
    assert "compute.vertex.image_repository is not set" in err


def test_submitting_an_unpackaged_image_is_refused(
    image_registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Credentials are checked first (offline, fast): a well-formed key that is valid nowhere.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    key = image_registry.parent / "sa.json"
    key.write_text(json.dumps({
        "type": "service_account", "project_id": "my-lab", "private_key_id": "0123",
        "private_key": pem, "client_email": "trainer@my-lab.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token",
    }))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    error = cli_raises(UnpackagedImageError, "compute", "submit", MODEL, cwd=image_registry)
    message = str(error)
    assert "\n" not in message and error.exit_code == 26
    assert message.startswith(f"the job would run {REPOSITORY}/lab-registry-train:")
    assert f"run 'registry compute package {MODEL}'" in message
    assert pem.splitlines()[1] not in message


def test_package_needs_a_base_image_it_can_install_into_and_a_repository(
    image_registry: Path, tmp_path: Path
) -> None:
    set_vertex(image_registry, image_repository=None)
    error = cli_raises(ConfigError, "compute", "package", MODEL, cwd=image_registry)
    assert str(error).startswith(
        "registry compute package needs compute.vertex.image_repository in params.yaml"
    )
    set_vertex(image_registry, image_repository=f"{REPOSITORY}/train:v1")
    error = cli_raises(ConfigError, "compute", "package", MODEL, cwd=image_registry)
    assert "is a repository, without a tag" in str(error)
    # A prebuilt image whose Python cannot install the repository (requires-python >=3.11).
    old = "us-docker.pkg.dev/vertex-ai/training/tf-gpu.2-17.py310:latest"
    set_vertex(image_registry, image_uri=old)
    error = cli_raises(ConfigError, "compute", "package", MODEL, cwd=image_registry)
    assert str(error).startswith(
        f"compute.vertex.image_uri {old} runs Python 3.10, but this repository needs Python >=3.11"
    )
    # A file of the code that links outside the repository is not shipped in the image.
    set_vertex(image_registry)
    outside = tmp_path / "secret.py"
    outside.write_text(f"KEY = {SECRET!r}\n")
    (image_registry / "src" / "zoo" / "secret.py").symlink_to(outside)
    error = cli_raises(ConfigError, "compute", "package", MODEL, cwd=image_registry)
    assert str(error).startswith(f"src/zoo/secret.py is a symbolic link to {outside}")


# -- the context, installed as the Dockerfile installs it -----------------------------------------


def _dockerfile_steps(context: Path) -> tuple[list[list[str]], list[str], str]:
    """The Dockerfile's pip install arguments (one list a RUN line), ENTRYPOINT and WORKDIR."""
    installs, entry, workdir = [], [], ""
    pip = ["python", "-m", "pip", "install", "--no-cache-dir"]
    for line in (context / "Dockerfile").read_text().splitlines():
        if line.startswith("RUN "):
            words = shlex.split(line[4:])
            assert words[: len(pip)] == pip, line
            installs.append(words[len(pip):])
        elif line.startswith("ENTRYPOINT "):
            entry = json.loads(line.split(" ", 1)[1])
        elif line.startswith("WORKDIR "):
            workdir = line.split(" ", 1)[1]
    return installs, entry, workdir


@pytest.mark.slow
def test_the_context_installs_and_its_entry_command_runs(
    image_registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    context = Path(package(capsys, image_registry, tmp_path / "context")["context"])
    installs, entry, workdir = _dockerfile_steps(context)
    assert installs and entry == list(TRAIN_COMMAND) and workdir == "/registry"

    # The base image's TensorFlow: this environment's version, as the only thing installed.
    tensorflow = f"tensorflow-cpu=={metadata.version('tensorflow-cpu')}"
    venv: FreshVenv = fresh_venv(tmp_path / "venv", [tensorflow])
    uv = Path(sys.executable).parent / "uv"
    env = clean_env()
    env["UV_CACHE_DIR"] = str(UV_CACHE)
    for args in installs:
        done = subprocess.run(
            [str(uv), "pip", "install", "--quiet", "--python", str(venv.python), *args],
            cwd=context, env=env, capture_output=True, text=True, timeout=900,
        )
        assert done.returncode == 0, done.stderr[-3000:]

    # The image's entry command, from its working folder (the context).
    command = [str(venv.python), *entry[1:]]
    done = subprocess.run([*command, "--help"], cwd=context, env=clean_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "digits-cnn" in done.stdout
    probe = (
        "import json, registry, src.zoo.train, tensorflow, tensorflow_datasets, dvc, mlflow\n"
        "print(json.dumps({'registry': registry.__file__, 'train': src.zoo.train.__file__,"
        " 'tensorflow': tensorflow.__file__}))\n"
    )
    done = subprocess.run([str(venv.python), "-c", probe], cwd=context, env=clean_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = {k: Path(v).resolve() for k, v in json.loads(done.stdout.splitlines()[-1]).items()}
    assert found["tensorflow"].is_relative_to(venv.path.resolve())
    for module in ("registry", "train"):
        assert found[module].is_relative_to(context.resolve()) or found[module].is_relative_to(
            venv.path.resolve()
        ), found
        assert not found[module].is_relative_to(PROJECT_ROOT)
