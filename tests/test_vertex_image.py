"""The Vertex AI training image: `registry compute package` and the image `compute submit` runs.

Docker is not available here, so the build context is tested the way the Dockerfile uses it: its
``RUN ... pip install`` lines (read from the written Dockerfile) are run in a fresh virtual
environment whose TensorFlow stands in for the prebuilt image's (``tests/venvs.py``), in a copy of
the context as the image's working folder. There the image's ``ENTRYPOINT`` with the job spec's
arguments and environment (``compute submit --dry-run``), the Dockerfile's ``ENV`` and the
variables Vertex AI sets trains ``digits-cnn`` on a registry released to the GCS emulator, without
credentials; ``compute fetch`` and ``models release`` then take its output.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

import registry
from registry.cloud.emulator import GCSEmulator
from registry.cloud.vertex import TRAIN_COMMAND
from registry.errors import ConfigError, UnpackagedImageError
from tests.conftest import (
    PROJECT_ROOT,
    GCSRegistry,
    cli_ok,
    cli_raises,
    commit_all,
    gcs_registry,
    git,
    hermetic_env,
    run_cli,
)
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
    git(repo, "add", "registry", "params.yaml")
    git(repo, "commit", "-qm", "The registry's code, and where its training images go")
    (repo / "key.json").write_text(json.dumps({"private_key": SECRET}))
    return repo


def package(
    capsys: pytest.CaptureFixture[str], repo: Path, out: Path, warning: str = ""
) -> dict[str, str]:
    code, stdout, err = run_cli(
        capsys, "compute", "package", MODEL, "-r", str(repo), "--out", str(out)
    )
    assert code == 0, err
    assert err.startswith(warning) if warning else err == "", err
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
    # The commit holding the code, which a job's lineage names (the image has no .git).
    assert f"ENV REGISTRY_COMMIT={git(image_registry, 'rev-parse', 'HEAD').strip()}" in dockerfile
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

    # The same code, the same image, also after a commit elsewhere; changed code, a new one.
    (image_registry / "models" / MODEL / "notes.txt").write_text("a commit that is not code\n")
    git(image_registry, "add", "models")
    git(image_registry, "commit", "-qm", "Notes")
    assert package(capsys, image_registry, tmp_path / "again")["image"] == image
    train = image_registry / "src" / "zoo" / "train.py"
    train.write_text(train.read_text() + "\n# changed\n")
    # Uncommitted code is in no commit: the image names none, and package says so.
    changed = package(
        capsys, image_registry, out,
        warning="warning: the image's code has uncommitted changes (src/zoo/train.py), so its "
        "jobs' lineage names no commit; commit, then package again",
    )
    assert changed["image"] != image
    assert not any(ln.startswith("ENV ") for ln in (out / "Dockerfile").read_text().splitlines())
    git(image_registry, "commit", "-qam", "Changed the trainer")
    assert package(capsys, image_registry, out)["image"] not in (image, changed["image"])


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


def test_the_job_is_told_the_registrys_url_from_params_or_the_origin(
    image_registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dry_run = ("compute", "submit", MODEL, "--dry-run", "--job-id", "a", "-r", str(image_registry))

    def job_env() -> dict[str, str]:
        code, out, err = run_cli(capsys, *dry_run)
        assert code == 0, err
        spec = json.loads(out)["custom_job"]["job_spec"]["worker_pool_specs"][0]
        return {e["name"]: e["value"] for e in spec["container_spec"]["env"]}

    assert "REGISTRY_URL" not in job_env()  # no origin, no registry_url: nothing to tell
    git(image_registry, "remote", "add", "origin", "git@github.com:my-lab/registry.git")
    assert job_env()["REGISTRY_URL"] == "git@github.com:my-lab/registry.git"
    set_vertex(image_registry, registry_url="https://github.com/my-lab/registry.git")
    assert job_env()["REGISTRY_URL"] == "https://github.com/my-lab/registry.git"

    # A token in the URL would go into the job: refused, and not repeated.
    token = "ghp_NOTAREALTOKEN42"
    set_vertex(image_registry, registry_url=f"https://ci:{token}@github.com/my-lab/registry.git")
    error = cli_raises(ConfigError, *dry_run)
    assert str(error).startswith("compute.vertex.registry_url holds a password or token")
    assert token not in str(error) and error.exit_code == 2
    set_vertex(image_registry)
    git(image_registry, "remote", "set-url", "origin",
        f"https://ci:{token}@github.com/my-lab/registry.git")
    error = cli_raises(ConfigError, *dry_run)
    assert str(error).startswith("the clone's origin remote URL holds a password or token")
    assert "set compute.vertex.registry_url" in str(error) and token not in str(error)


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


# -- the context, installed as the Dockerfile installs it, trains ------------------------------


@dataclass(frozen=True)
class Dockerfile:
    """What the written Dockerfile does: its pip lines, ENV, ENTRYPOINT and WORKDIR."""

    installs: list[list[str]]
    env: dict[str, str]
    entry: list[str]
    workdir: str

    @classmethod
    def read(cls, context: Path) -> Dockerfile:
        installs, env, entry, workdir = [], {}, [], ""
        pip = ["python", "-m", "pip", "install", "--no-cache-dir"]
        for line in (context / "Dockerfile").read_text().splitlines():
            if line.startswith("RUN "):
                words = shlex.split(line[4:])
                assert words[: len(pip)] == pip, line
                installs.append(words[len(pip):])
            elif line.startswith("ENV "):
                name, value = line[4:].split("=", 1)
                env[name] = value
            elif line.startswith("ENTRYPOINT "):
                entry = json.loads(line.split(" ", 1)[1])
            elif line.startswith("WORKDIR "):
                workdir = line.split(" ", 1)[1]
        return cls(installs, env, entry, workdir)


@dataclass(frozen=True)
class InstalledImage:
    """The training image of a registry on the GCS emulator, installed as its Dockerfile says.

    Attributes:
        made: The registry (digits 1.0.0 released to a bucket; the lab's code committed).
        dockerfile: The context's Dockerfile, read.
        workdir: The context, copied outside the repository: the image's working folder.
        venv: The fresh environment: TensorFlow (the base image's), then the pip lines.
        spec: ``registry compute submit --dry-run``'s job for the packaged image.
        seconds: How long packaging and installing took (warm uv cache: the installs link).
    """

    made: GCSRegistry
    dockerfile: Dockerfile
    workdir: Path
    venv: FreshVenv
    spec: dict[str, Any]
    seconds: float

    @property
    def container(self) -> dict[str, Any]:
        spec = self.spec["custom_job"]["job_spec"]
        return dict(spec["worker_pool_specs"][0]["container_spec"])

    @property
    def output_dir(self) -> str:
        return str(self.spec["custom_job"]["job_spec"]["base_output_directory"][
            "output_uri_prefix"
        ])


def _cli(made: GCSRegistry, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["registry", *args], cwd=made.clone, env=made.env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args}: {done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed_image(
    gcs: GCSEmulator, tmp_path_factory: pytest.TempPathFactory
) -> InstalledImage:
    """``registry compute package`` in a registry releasing to the emulator, and its context
    installed into a fresh virtual environment the way the Dockerfile does."""
    started = time.monotonic()
    base = tmp_path_factory.mktemp("image")
    made = gcs_registry(gcs, base, code=True, vertex={
        "image_uri": BASE,
        "image_repository": REPOSITORY,
        # One quiet epoch: the job's knobs are its arguments, as a lab would set them.
        "args": ["{model}", "--epochs", "1", "--verbose", "0"],
    })
    context = base / "context"
    lines = dict(
        ln.split(": ", 1) for ln in _cli(made, "compute", "package", MODEL, "--out",
                                         str(context)).stdout.splitlines()
    )
    done = _cli(made, "compute", "submit", MODEL, "--dry-run", "--job-id", "image-1")
    assert done.stderr == "", done.stderr  # the image is the one package made: no warning
    spec = json.loads(done.stdout)
    assert spec["custom_job"]["job_spec"]["worker_pool_specs"][0]["container_spec"][
        "image_uri"] == lines["image"]

    # The image: WORKDIR with the context copied in (outside any repository), then the RUNs.
    dockerfile = Dockerfile.read(context)
    assert dockerfile.workdir == "/registry" and dockerfile.installs
    workdir = base / "container" / "registry"
    shutil.copytree(context, workdir)
    # The base image's TensorFlow: this environment's version, as the only thing installed.
    tensorflow = f"tensorflow-cpu=={metadata.version('tensorflow-cpu')}"
    venv = fresh_venv(base / "venv", [tensorflow])
    uv = Path(sys.executable).parent / "uv"
    env = clean_env()
    env["UV_CACHE_DIR"] = str(UV_CACHE)
    for args in dockerfile.installs:
        done = subprocess.run(
            [str(uv), "pip", "install", "--quiet", "--python", str(venv.python), *args],
            cwd=workdir, env=env, capture_output=True, text=True, timeout=900,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    return InstalledImage(made, dockerfile, workdir, venv, spec, time.monotonic() - started)


def _in_image(image: InstalledImage, command: list[str], env: dict[str, str],
              timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as the container would: its ``python`` the venv's, in the WORKDIR, with
    the Dockerfile's ENV under ``env``."""
    argv = [str(image.venv.python) if c == "python" else c for c in command]
    return subprocess.run(argv, cwd=image.workdir, env=clean_env({**image.dockerfile.env, **env}),
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_the_image_holds_the_code_and_the_base_images_tensorflow(
    installed_image: InstalledImage,
) -> None:
    image = installed_image
    assert image.dockerfile.entry == list(TRAIN_COMMAND)
    env = hermetic_env(image.made.base / "probe-home")
    # What the image's Python imports: TensorFlow the base image's, the code the image's.
    probe = (
        "import json, registry, src.zoo.train, tensorflow, mlflow\n"
        "print(json.dumps({'registry': registry.__file__, 'train': src.zoo.train.__file__,"
        " 'tensorflow': tensorflow.__file__}))\n"
    )
    done = _in_image(image, ["python", "-c", probe], env)
    assert done.returncode == 0, done.stderr[-3000:]
    found = {k: Path(v).resolve() for k, v in json.loads(done.stdout.splitlines()[-1]).items()}
    venv, workdir = image.venv.path.resolve(), image.workdir.resolve()
    assert found["tensorflow"].is_relative_to(venv)
    for module in ("registry", "train"):
        assert found[module].is_relative_to(workdir) or found[module].is_relative_to(venv), found
        assert not found[module].is_relative_to(PROJECT_ROOT)


@pytest.mark.slow
def test_the_image_trains_and_its_output_is_fetched_released_and_loaded(
    installed_image: InstalledImage, gcs: GCSEmulator, chdir: Callable[[Path], None],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    image, made = installed_image, installed_image.made
    container = image.container
    assert container["command"] == image.dockerfile.entry == list(TRAIN_COMMAND)
    job_env = {e["name"]: e["value"] for e in container["env"]}
    # What the job needs to find its data, from params.yaml and the clone (not from the test).
    assert job_env == {
        "REGISTRY_MODEL": MODEL,
        "REGISTRY_DATA_URI": f"gs://{made.bucket}/dvc",
        "REGISTRY_URL": str(made.origin),
    }
    assert image.dockerfile.env == {"REGISTRY_COMMIT": made.code_commit}
    # The variables Vertex AI sets, the emulator for Cloud Storage and no credentials at all.
    env = hermetic_env(made.base / "job-home")
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "REGISTRY_URL", "REGISTRY_COMMIT"):
        env.pop(name, None)
    env.update(job_env)
    env.update({
        "AIP_MODEL_DIR": f"{image.output_dir}/model/",
        "AIP_TENSORBOARD_LOG_DIR": f"{image.output_dir}/logs/",
        "CLOUD_ML_JOB_ID": "4242",
        "STORAGE_EMULATOR_HOST": gcs.url,
    })
    started = time.monotonic()
    job = _in_image(image, [*container["command"], *container["args"]], env, timeout=600)
    trained = time.monotonic() - started
    assert job.returncode == 0, f"the job failed:\n{job.stdout[-3000:]}\n{job.stderr[-3000:]}"
    print(f"package + install {image.seconds:.0f} s, the job {trained:.0f} s")

    summary = json.loads(job.stdout.splitlines()[-1])
    lineage = summary["lineage"]
    assert summary["model_dir"] == f"{image.output_dir}/model"
    assert lineage["commit"] == made.code_commit  # the image's REGISTRY_COMMIT: it has no .git
    assert lineage["datasets"] == {"image_classification/digits": "1.0.0"}
    assert lineage["params"]["epochs"] == 1 and lineage["compute"]["backend"] == "vertex"
    assert lineage["compute"]["machine"]["vertex_job"] == "4242"

    # Brought back into the clone, released, loaded.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.url)
    chdir(made.clone)
    out = cli_ok("compute", "fetch", MODEL, image.output_dir, "--json")
    fetched = json.loads(out)
    assert fetched["uri"] == f"{image.output_dir}/model" and fetched["commit"] == made.code_commit
    commit_all(made.clone, "digits-cnn trained on Vertex AI, from the packaged image")
    cli_ok("models", "release", MODEL)
    info = registry.model_info(f"{MODEL}:1.0.0")
    released = info.lineage or {}
    assert released["job"]["commit"] == made.code_commit
    assert released["job"]["uri"] == f"{image.output_dir}/model"
    assert released["weights"]["md5"] == lineage["weights"]["md5"]
    import numpy as np

    model = registry.load_keras_model(f"{MODEL}:1.0.0")
    assert model.predict(np.zeros((2, 8, 8, 1), "float32"), verbose=0).shape == (2, 10)
