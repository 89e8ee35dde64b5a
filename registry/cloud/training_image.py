"""The Vertex AI training image: a container build context holding this repository's code.

Vertex AI's prebuilt TensorFlow images (``compute.vertex.image_uri``, GPU or TPU) hold TensorFlow
but not the registry or the lab's ``src/``, so a job run on one cannot train. ``registry compute
package MODEL`` (:func:`registry.compute.package`) writes a build context instead:

- ``Dockerfile``: ``FROM`` the prebuilt image, ``COPY`` of the context, the ``pip install``
  lines of :data:`PIP_INSTALLS` (the runtime requirements of ``pyproject.toml`` without
  TensorFlow, which the base image provides, held to ``constraints.txt``; then the package
  itself, ``--no-deps``), ``ENV REGISTRY_COMMIT`` (the commit that holds the image's code, which
  a job's lineage names: the image has no ``.git``), and ``ENTRYPOINT``
  :data:`registry.cloud.vertex.TRAIN_COMMAND`;
- ``registry/`` and ``src/`` (sources only: no ``__pycache__``, no tests), ``pyproject.toml``,
  ``README.md``, ``constraints.txt``, ``requirements.txt`` and a ``params.yaml`` holding only
  its ``train`` section (the trainer's settings). No ``.git``, no data, no DVC config, no
  credentials: files are taken from a fixed list of folders, and a symbolic link leading out of
  the repository is refused.

The image's name is ``<compute.vertex.image_repository>/lab-registry-train:<tag>``, the tag a
hash of the context's files (the Dockerfile's commit among them): the same code gives the same
name, any change a new one. What
``compute package`` produced is recorded in ``.registry/vertex/images.json`` (ignored by Git),
so that ``compute submit`` can tell an image of this code from one that lacks it.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry import layout
from registry.atomic import atomic_write_text, replace_dir
from registry.cloud.vertex import TRAIN_COMMAND
from registry.errors import ConfigError

__all__ = [
    "COMMIT_ENV",
    "IMAGE_NAME",
    "PIP_INSTALLS",
    "SOURCE_PATHS",
    "TrainingImage",
    "check_base_python",
    "context_files",
    "image_requirements",
    "packaged_images",
    "write_context",
]

IMAGE_NAME = "lab-registry-train"
# The folders and files of the repository that the image holds (sources only).
_FOLDERS = ("registry", "src")
_FILES = ("pyproject.toml", "README.md", "constraints.txt")
_SKIP_PARTS = {"__pycache__", "tests"}
_SKIP_SUFFIXES = (".pyc", ".pyo")
# Distributions the prebuilt image provides (its TensorFlow, GPU or TPU build).
_FROM_BASE = re.compile(r"^\s*(tensorflow|tensorflow-cpu|tensorflow-gpu)\s*([<>=!~;\[]|$)")
# The `pip install` arguments of each RUN line, in order (the Dockerfile's and the test's).
PIP_INSTALLS: tuple[tuple[str, ...], ...] = (
    ("-c", "constraints.txt", "-r", "requirements.txt"),
    ("--no-deps", "."),
)
_PIP = ("python", "-m", "pip", "install", "--no-cache-dir")
# The variable naming the commit of the image's code (read by registry.compute._code_commit).
COMMIT_ENV = "REGISTRY_COMMIT"
# The repository paths the image's files come from: its commit is the newest that changed them.
SOURCE_PATHS: tuple[str, ...] = (*_FOLDERS, *_FILES, "params.yaml")
_WORKDIR = "/registry"
_RECORD = ("vertex", "images.json")


@dataclass(frozen=True)
class TrainingImage:
    """A written build context.

    Attributes:
        context: Its folder.
        dockerfile: Its ``Dockerfile``.
        base: The prebuilt image it starts ``FROM``.
        image: The image to build from it (``REPOSITORY/lab-registry-train:TAG``).
        build_command: The ``gcloud builds submit`` line that builds and pushes it.
        commit: The commit its ``REGISTRY_COMMIT`` names, or ``None`` (code not committed).
        uncommitted: The repository's paths in the image with uncommitted changes (then
            ``commit`` is ``None``).
    """

    context: Path
    dockerfile: Path
    base: str
    image: str
    build_command: str
    commit: str | None = None
    uncommitted: tuple[str, ...] = ()


def image_requirements(pyproject: Path) -> list[str]:
    """The runtime requirements of ``pyproject.toml`` that the image installs: all of
    ``[project].dependencies`` but TensorFlow, which the prebuilt base image provides.

    Example:
        >>> image_requirements(Path("pyproject.toml"))[:1]  # doctest: +SKIP
        ['dvc[gs]>=3.67,<4']
    """
    import tomllib

    project = tomllib.loads(pyproject.read_text()).get("project") or {}
    return [r for r in project.get("dependencies") or [] if not _FROM_BASE.match(r)]


_IMAGE_PYTHON_RE = re.compile(r"[.-]py(3)(\d{1,2})(?=[.:@-]|$)")


def check_base_python(base: str, pyproject: Path) -> None:
    """Refuse a prebuilt image whose Python (``...tf-gpu.2-17.py310``: 3.10) cannot install this
    repository (``requires-python`` of ``pyproject.toml``); an image that does not say is taken.

    Raises:
        ConfigError: Naming the image, its Python and what the repository requires.

    Example:
        >>> check_base_python("tf-gpu.2-21.py311:latest", Path("pyproject.toml"))  # doctest: +SKIP
    """
    import tomllib

    from packaging.specifiers import SpecifierSet

    found = _IMAGE_PYTHON_RE.search(base.rsplit("/", 1)[-1])
    required = (tomllib.loads(pyproject.read_text()).get("project") or {}).get("requires-python")
    if found is None or not required:
        return
    python = f"{found.group(1)}.{found.group(2)}"
    if not SpecifierSet(required).contains(python):
        raise ConfigError(
            f"compute.vertex.image_uri {base} runs Python {python}, but this repository needs "
            f"Python {required} (pyproject.toml), so the image could not install it; choose a "
            "prebuilt TensorFlow image with a Python it takes (e.g. a .py311 image) in "
            "params.yaml"
        )


def context_files(root: Path) -> list[tuple[str, Path]]:
    """The repository's files that go into the image: (path in the context, source), sorted.

    Raises:
        ConfigError: If one is a symbolic link leading outside the repository, or a file the
            image needs (``pyproject.toml``, ``registry/``, ``src/``) is missing.
    """
    files: list[tuple[str, Path]] = []
    for name in _FILES:
        if not (root / name).is_file():
            raise ConfigError(
                f"{root / name} is missing: the training image installs this repository's "
                "package from it; run `registry compute package` in a clone of the registry"
            )
        files.append((name, root / name))
    for folder in _FOLDERS:
        if not (root / folder).is_dir():
            raise ConfigError(
                f"{root / folder}/ is missing: the training image needs the repository's "
                f"{folder}/; run `registry compute package` in a clone of the registry"
            )
        for path in sorted((root / folder).rglob("*")):
            rel = path.relative_to(root)
            if (
                path.is_dir()
                or _SKIP_PARTS & set(rel.parts)
                or path.suffix in _SKIP_SUFFIXES
            ):
                continue
            files.append((rel.as_posix(), path))
    for name, source in files:
        link = layout.link_outside(root, source)
        if link is not None:
            raise ConfigError(
                f"{name} is a symbolic link to {link.resolve()}, outside the repository: the "
                "training image takes only files of the repository; copy the file instead"
            )
    return sorted(files)


def _params_text(params: Mapping[str, Any]) -> str:
    """The image's ``params.yaml``: the ``train`` section alone (what the trainer reads)."""
    import yaml

    train = {"train": params["train"]} if "train" in params else {}
    return (
        "# The trainer's settings, from the registry's params.yaml (generated by `registry "
        "compute package`).\n" + yaml.safe_dump(train, sort_keys=True)
    )


def _dockerfile(base: str, commit: str | None) -> str:
    """The Dockerfile: FROM the base, the context copied, the pip lines, the code's commit (if
    known), the entry command."""
    runs = "".join(f"RUN {shlex.join([*_PIP, *args])}\n" for args in PIP_INSTALLS)
    env = f"ENV {COMMIT_ENV}={commit}\n" if commit is not None else ""
    return (
        "# The training image of this registry (generated by `registry compute package`: do not\n"
        "# edit). Its TensorFlow is the base image's; the registry and src/ are installed here.\n"
        f"FROM {base}\n"
        f"WORKDIR {_WORKDIR}\n"
        f"COPY . {_WORKDIR}\n"
        f"{runs}"
        f"{env}"
        f"ENTRYPOINT {json.dumps(list(TRAIN_COMMAND))}\n"
    )


def _tag(contents: Iterable[tuple[str, bytes]]) -> str:
    """12 hex digits of a hash of the context's files: the same code, the same tag."""
    digest = hashlib.sha256()
    for rel, data in sorted(contents):
        digest.update(rel.encode() + b"\0" + data + b"\0")
    return digest.hexdigest()[:12]


def _contents(
    root: Path, params: Mapping[str, Any], base: str, commit: str | None
) -> dict[str, bytes]:
    """Every file of the context, by its path in the context."""
    contents = {rel: path.read_bytes() for rel, path in context_files(root)}
    requirements = image_requirements(root / "pyproject.toml")
    contents["requirements.txt"] = (
        "# pyproject.toml's runtime requirements but TensorFlow (the base image's).\n"
        + "".join(f"{r}\n" for r in requirements)
    ).encode()
    contents["params.yaml"] = _params_text(params).encode()
    contents["Dockerfile"] = _dockerfile(base, commit).encode()
    contents[".dockerignore"] = b"# The context holds only what the image needs.\n"
    return contents


def image_name(
    repository: str, root: Path, params: Mapping[str, Any], base: str, commit: str | None
) -> str:
    """The name ``compute package`` gives the image of the code at ``root`` (nothing written);
    ``commit``: the commit of that code (:func:`code_commit`).

    Example:
        >>> image_name("us-docker.pkg.dev/my-lab/training", Path("."), params, base, None)
        ... # doctest: +SKIP
        'us-docker.pkg.dev/my-lab/training/lab-registry-train:3f0c5e1a9b2d'
    """
    tag = _tag(_contents(root, params, base, commit).items())
    return f"{repository.rstrip('/')}/{IMAGE_NAME}:{tag}"


def write_context(
    root: Path,
    params: Mapping[str, Any],
    *,
    base: str,
    repository: str,
    dest: Path,
    commit: str | None = None,
) -> TrainingImage:
    """Write the build context of the training image into ``dest`` (replaced whole) and record
    the image as produced by ``compute package``.

    Args:
        root: The registry work tree.
        params: Its ``params.yaml`` (the ``train`` section goes into the image).
        base: The prebuilt TensorFlow image to start from (``compute.vertex.image_uri``).
        repository: Where the image goes (``compute.vertex.image_repository``).
        dest: The context's folder.
        commit: The commit holding the code (:func:`code_commit`), set as ``REGISTRY_COMMIT``
            in the image; ``None``: none set (the job's lineage then names no commit).

    Returns:
        The context, the image's name and the ``gcloud builds submit`` line.

    Raises:
        ConfigError: If the base image's Python cannot install the repository
            (:func:`check_base_python`), or see :func:`context_files`.
    """
    check_base_python(base, root / "pyproject.toml")
    contents = _contents(root, params, base, commit)
    image = f"{repository.rstrip('/')}/{IMAGE_NAME}:{_tag(contents.items())}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for rel, data in contents.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        replace_dir(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _record(root, image, base)
    return TrainingImage(
        context=dest,
        dockerfile=dest / "Dockerfile",
        base=base,
        image=image,
        build_command=shlex.join(["gcloud", "builds", "submit", "--tag", image, str(dest)]),
        commit=commit,
    )


def _record_file(root: Path) -> Path:
    return layout.scratch_dir(root, *_RECORD[:-1]) / _RECORD[-1]


def packaged_images(root: Path) -> dict[str, str]:
    """The images ``compute package`` produced in this clone: image name -> base image."""
    path = root / layout.SCRATCH_DIR / Path(*_RECORD)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _record(root: Path, image: str, base: str) -> None:
    """Add ``image`` to the clone's record of packaged images."""
    images = packaged_images(root)
    images[image] = base
    atomic_write_text(_record_file(root), json.dumps(images, indent=2, sort_keys=True) + "\n")
