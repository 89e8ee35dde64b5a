"""Bring an existing TFDS builder into the registry as it is: ``registry datasets add NAME --from
PATH_OR_MODULE:CLASS``.

Three sources, told apart by :func:`parse_source`:

- a builder file (``path/to/my_dataset.py``, optionally ``:CLASS``): copied, byte for byte, to
  ``datasets/NAME/<leaf>_dataset_builder.py``;
- a TFDS dataset folder (``path/to/my_dataset/``, optionally ``:CLASS``): copied whole, its
  builder module renamed to ``<leaf>_dataset_builder.py``;
- an importable class (``package.module:Class``, e.g.
  ``tensorflow_datasets.testing.test_utils:DummyMnist``): wrapped by a two-line module whose
  ``class Builder(Class)`` inherits everything (``VERSION``, ``RELEASE_NOTES``, features).

A copied builder whose class is not named ``Builder`` gets one line appended, ``Builder = CLASS``
(the name the registry loads). The dataset then joins ``dvc.yaml``'s build stage with no params,
and gets a card stub (``README.md``) and ``CITATIONS.bib`` when it has none; it builds at once
(``registry datasets build NAME``) and, when its builder has no release notes for its version,
releases with ``registry datasets release NAME --notes TEXT``.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from registry import layout
from registry.errors import ArtifactExistsError, BuilderSourceError, SourceNotFoundError

__all__ = ["BuilderSource", "adopt_builder", "parse_source"]

_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_ACTION = "cannot add the builder"


@dataclass(frozen=True)
class BuilderSource:
    """Where a builder comes from.

    Attributes:
        kind: ``file``, ``folder`` or ``module``.
        location: The path (as given) or the dotted module name.
        cls: The class name (``None``: find it: ``Builder``, else the one builder class).
    """

    kind: Literal["file", "folder", "module"]
    location: str
    cls: str | None = None

    def __str__(self) -> str:
        return f"{self.location}:{self.cls}" if self.cls else self.location


def parse_source(spec: str) -> BuilderSource:
    """Tell a builder file, folder or importable class apart in ``--from``'s value.

    A path that exists wins (relative paths are from the current folder); ``PATH:CLASS`` names
    the class in it; otherwise ``package.module:Class`` is an importable class.

    Raises:
        SourceNotFoundError: If it reads as a path (``/``, ``.py``) that does not exist.
        BuilderSourceError: If it is neither a path nor ``module:Class``.

    Example:
        >>> parse_source("tensorflow_datasets.testing.test_utils:DummyMnist")
        BuilderSource(kind='module', location='tensorflow_datasets.testing.test_utils', \
cls='DummyMnist')
    """
    head, sep, cls = spec.rpartition(":")
    for path, name in ((spec, None), (head, cls) if sep else (None, None)):
        if path and Path(path).exists():
            if name is not None and not name.isidentifier():
                raise BuilderSourceError(spec, f"{name!r} is not a class name")
            return BuilderSource("folder" if Path(path).is_dir() else "file", path, name)
    looks_like_path = "/" in (head or spec) or (head or spec).endswith(".py") or os.sep in spec
    if sep and _DOTTED.fullmatch(head) and cls.isidentifier() and not head.endswith(".py"):
        return BuilderSource("module", head, cls)
    if looks_like_path:
        raise SourceNotFoundError(head if sep else spec, _ACTION)
    raise BuilderSourceError(
        spec, "it is neither an existing file or folder nor package.module:Class"
    )


def adopt_builder(root: Path, name: str, source: BuilderSource) -> Path:
    """Write dataset ``name``'s folder from ``source`` and add it to the pipeline.

    The caller has checked that the name is free (``Session.check_new_name``). The folder
    appears whole or not at all, and is removed again if adding it to ``dvc.yaml`` fails.

    Returns:
        The new dataset folder.

    Raises:
        BuilderSourceError: If the module cannot be imported, the class is missing or not a TFDS
            builder, or the file or folder holds no (or more than one) builder class.
        ArtifactExistsError: If the folder appears while it is being written.

    Example:
        >>> adopt_builder(Path("."), "image_classification/dummy_mnist",
        ...               parse_source("tensorflow_datasets.testing.test_utils:DummyMnist"))
        ... # doctest: +SKIP
        PosixPath('datasets/image_classification/dummy_mnist')
    """
    from registry.build.scaffold import check_builder_name

    check_builder_name(name)
    target = root / layout.dataset_dir(name)
    made = [d for d in (target.parent, *target.parent.parents) if not d.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.add-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    builder = staging / Path(layout.builder_file(name)).name
    try:
        # Each kind of source: its builder module in the staging folder.
        if source.kind == "module":
            staging.mkdir()
            builder.write_text(_wrapper(name, source, _import_class(source)), encoding="utf-8")
        elif source.kind == "file":
            staging.mkdir()
            _copy_file(Path(source.location), builder, source)
        else:
            _copy_folder(Path(source.location), staging, builder, source)
        _write_stubs(staging, name, source)
        try:
            os.rename(staging, target)
        except OSError as e:
            raise ArtifactExistsError(
                name, name, f"{layout.dataset_dir(name)}/ appeared while it was being written",
                kind="dataset",
            ) from e
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        for folder in made if not target.exists() else []:  # refused: no empty group left
            with contextlib.suppress(OSError):
                folder.rmdir()

    from registry.build.dvcfiles import add_dataset, remove_dataset

    try:
        # No params: a builder brought in as it is takes none (its raw data folder, if it needs
        # one, is raw/ or the raw_path that `registry datasets raw` sets).
        add_dataset(root, name, {})
    except BaseException:
        remove_dataset(root, name)
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def _import_class(source: BuilderSource) -> type:
    """The class ``source`` names, imported; refused unless it is a TFDS dataset builder."""
    try:
        module = importlib.import_module(source.location)
    except Exception as e:
        raise BuilderSourceError(
            str(source), f"importing {source.location} failed ({type(e).__name__}: {e}); "
            "install the package that holds it in this environment"
        ) from e
    cls = getattr(module, source.cls or "", None)
    if not isinstance(cls, type):
        raise BuilderSourceError(
            str(source), f"{source.location} has no class {source.cls!r}"
            + _choices(sorted(n for n, v in vars(module).items() if _is_builder(v)))
        )
    if not _is_builder(cls):
        raise BuilderSourceError(
            str(source), f"{source.cls} is not a TFDS dataset builder (a subclass of "
            "tfds.core.DatasetBuilder)"
        )
    return cls


def _is_builder(value: object) -> bool:
    from tensorflow_datasets.core import dataset_builder

    return isinstance(value, type) and issubclass(value, dataset_builder.DatasetBuilder)


def _choices(names: list[str]) -> str:
    return f"; its builder classes: {', '.join(names[:10])}" if names else ""


def _wrapper(name: str, source: BuilderSource, cls: type) -> str:
    """The builder module of an importable class: ``class Builder(Class)``, nothing else."""
    return (
        f'"""{name}: {source.location}.{source.cls}, as it is.\n\n'
        f"Added with `registry datasets add {name} --from {source}`: the class comes from the\n"
        "installed package, so its VERSION, RELEASE_NOTES, features and splits are its own.\n"
        '"""\n\n'
        f"from {source.location} import {source.cls}\n\n\n"
        f"class Builder({source.cls}):\n"
        f'    """{cls.__name__} from {source.location}, under the name the registry loads."""\n'
    )


def _builder_classes(text: str, where: str, source: BuilderSource) -> list[str]:
    """The top-level classes of a module's source that look like TFDS builders (a base whose
    name ends in ``Builder``, or a builder of the same module), less those another one there
    extends: ``class Data(_Base)`` is the builder, not ``_Base``."""
    try:
        tree = ast.parse(text)
    except SyntaxError as e:
        raise BuilderSourceError(str(source), f"{where} is not valid Python ({e.msg}, line "
                                 f"{e.lineno})") from e
    bases = {
        node.name: [ast.unparse(b).split(".")[-1] for b in node.bases]
        for node in tree.body if isinstance(node, ast.ClassDef)
    }
    builders = {
        n for n, b in bases.items() if n == "Builder" or any(x.endswith("Builder") for x in b)
    }
    grown = True
    while grown:  # a subclass of a builder of this module is one too
        more = {n for n, b in bases.items() if set(b) & builders} - builders
        builders |= more
        grown = bool(more)
    extended = {b for n in builders for b in bases[n]}
    return [n for n in bases if n in builders and n not in extended]


def _defines(text: str, cls: str) -> bool:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return False
    return any(isinstance(n, ast.ClassDef) and n.name == cls for n in tree.body)


def _pick_class(text: str, where: str, source: BuilderSource) -> str:
    """The builder class of a copied module: the one named, else ``Builder``, else the only one."""
    if source.cls is not None:
        if not _defines(text, source.cls):
            raise BuilderSourceError(
                str(source), f"{where} defines no class {source.cls!r}"
                + _choices(_builder_classes(text, where, source))
            )
        return source.cls
    classes = _builder_classes(text, where, source)
    if "Builder" in classes:
        return "Builder"
    if len(classes) == 1:
        return classes[0]
    problem = (
        f"{where} holds several builder classes ({', '.join(classes)})" if classes
        else f"{where} defines no TFDS builder class"
    )
    raise BuilderSourceError(str(source), f"{problem}; name one: --from {source.location}:CLASS")


def _copy_file(path: Path, builder: Path, source: BuilderSource) -> None:
    """Copy a builder file as ``builder``; alias its class as ``Builder`` if named otherwise."""
    text = path.read_text(encoding="utf-8")
    cls = _pick_class(text, str(path), source)
    shutil.copyfile(path, builder)
    if cls != "Builder":
        with builder.open("a", encoding="utf-8") as f:
            f.write(("" if text.endswith("\n") else "\n")
                    + f"\n\nBuilder = {cls}  # the name the registry loads\n")


def _copy_folder(folder: Path, staging: Path, builder: Path, source: BuilderSource) -> None:
    """Copy a TFDS dataset folder into ``staging``; its builder module becomes ``builder``."""
    for path in folder.rglob("*"):
        link = layout.link_outside(folder, path)
        if link is not None:
            raise BuilderSourceError(
                str(source), f"{link} is a symbolic link out of the folder; copy its target "
                "into the folder instead"
            )
    modules = sorted(
        p for p in folder.glob("*.py")
        if not p.name.endswith("_test.py") and p.name != "__init__.py"
    )
    if source.cls is not None:
        chosen = [p for p in modules if _defines(p.read_text(encoding="utf-8"), source.cls)]
    else:
        named = [p for p in modules if p.name.endswith(layout.BUILDER_SUFFIX)]
        chosen = named or [
            p for p in modules if _builder_classes(p.read_text(encoding="utf-8"), str(p), source)
        ]
    if len(chosen) != 1:
        what = f"class {source.cls!r}" if source.cls else "builder module"
        found = ", ".join(p.name for p in chosen) or "none"
        raise BuilderSourceError(
            str(source), f"{folder} must hold one {what} (found: {found}); name the class: "
            f"--from {source.location}:CLASS"
        )
    shutil.copytree(folder, staging, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    moved = staging / chosen[0].name
    if moved != builder:
        if builder.exists():
            builder.unlink()
        moved.rename(builder)
    _copy_file(builder, builder.with_suffix(".tmp"), source)
    builder.with_suffix(".tmp").replace(builder)


def _write_stubs(folder: Path, name: str, source: BuilderSource) -> None:
    """A card stub (``README.md``) and an empty ``CITATIONS.bib`` where the builder has none:
    the build stage depends on both."""
    card = folder / "README.md"
    if not card.exists():
        card.write_text(
            f"# {name}\n\n"
            "TODO: one line saying what the dataset holds.\n\n"
            "<!-- TODO: where the data comes from, what one example is, what it is for. -->\n\n"
            f"- **Builder**: `{source}`, brought in as it is "
            "(`registry datasets add --from`).\n"
            "- **Owner**: TODO: the team or person to ask about it. **Licence**: TODO.\n\n"
            "```python\nimport registry\n\n"
            f'ds = registry.load_dataset("{name}", split="train")\n```\n',
            encoding="utf-8",
        )
    citations = folder / "CITATIONS.bib"
    if not citations.exists():
        citations.write_text("", encoding="utf-8")
