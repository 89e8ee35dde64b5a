"""``registry datasets diff``: what changed between two versions or builds of a dataset.

A reference names each side: a released version (``NAME:1.2.0``, ``NAME@prod``, ``NAME`` for
the latest), fetched through the content cache as :func:`registry.load_dataset` fetches it; a
prepared folder on disk (a path); or, for the second side left out, this clone's workspace build
(``datasets/NAME/prepared`` and the work tree's ``build_info.json``). The comparison itself
(schema, splits, examples streamed and matched by the builder's key or by content, statistics)
is :func:`registry.build.compare.compare`; the bump a diff calls for is
:func:`registry.semver.required_bump`.

Above the public APIs: it reads releases through :mod:`registry.datasets`.

Example:
    >>> import registry
    >>> diff = registry.diff_datasets("products/product_a/ad_clicks:1.0.0")  # vs the workspace
    >>> [(s.split, s.added, s.removed, s.changed) for s in diff.splits]  # doctest: +SKIP
    [('test', 0, 0, 12), ('train', 40, 0, 51)]
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from registry.build.compare import DatasetDiff, Side, compare, declared_key
from registry.datasets import config_side, released_side, workspace_side
from registry.errors import ConfigError, DatasetMismatchError, NotBuiltError
from registry.repo.session import RegistryArg, Session, as_reference, open_session

__all__ = ["DatasetDiff", "diff_datasets"]


def diff_datasets(
    ref_a: str | os.PathLike[str],
    ref_b: str | os.PathLike[str] | None = None,
    *,
    registry: RegistryArg = None,
    show: int = 0,
    config: str | None = None,
) -> DatasetDiff:
    """Compare two versions or builds of one dataset: schema, splits, examples, statistics.

    Steps: make each side (a release fetched through the cache; a folder on disk; the workspace
    build when ``ref_b`` is left out); refuse two different datasets; compare
    (:func:`registry.build.compare.compare`), streaming the examples so that memory stays flat.

    Args:
        ref_a: The build before: ``NAME:X.Y.Z``, ``NAME@stage``, ``NAME`` (latest release), or
            the path of a prepared folder.
        ref_b: The build after, the same way; ``None`` for this clone's workspace build of the
            dataset ``ref_a`` names.
        registry: A registry clone or Git URL; default from the configuration (not needed for
            two folders on disk).
        show: How many concrete differing examples to report (key and changed fields).
        config: For a builder with ``BUILDER_CONFIGS``, the config to compare (default: each
            side's default config).

    Returns:
        The diff (``to_text()`` for the report, ``to_dict()`` for JSON).

    Raises:
        DatasetMismatchError: If the two sides are different datasets.
        InvalidReferenceError, ArtifactNotFoundError, VersionNotFoundError: For a bad reference.
        WrongKindError: If a reference names a model.
        NotBuiltError: If there is no workspace build (or a folder is not a prepared folder).
        RemoteError: If a release's bytes are missing from the DVC remote.
        ConfigError: If ``show`` is negative, the workspace's dataset cannot be told, or
            ``config`` is not one of a side's configs.

    Example:
        >>> diff = diff_datasets("image_classification/digits:1.0.0", show=3)  # doctest: +SKIP
        >>> print(diff.to_text())  # doctest: +SKIP
    """
    if show < 0:
        raise ConfigError(f"--show must be 0 or more, not {show}")
    sessions: list[Session] = []

    def session() -> Session:
        if not sessions:
            sessions.append(open_session(registry))
        return sessions[0]

    a = _side(ref_a, session)
    if ref_b is None:
        if a.name is None:
            raise ConfigError(
                f"{ref_a} is a folder of no dataset this registry knows, so it has no "
                "workspace build to compare with: name the second build too"
            )
        b = workspace_side(session(), a.name)
    else:
        b = _side(ref_b, session)
    _check_same_dataset(a, b)
    a, b = config_side(a, config), config_side(b, config)
    return compare(a, b, show=show, name=b.name or a.name)


def _side(ref: str | os.PathLike[str], session: Callable[[], Session]) -> Side:
    """A reference's side: a prepared folder on disk, or a release."""
    path = Path(ref)
    if path.is_dir():
        return _folder_side(path)
    if str(ref).startswith(("/", "./", "../", "~")) or path.name == "prepared":
        raise NotBuiltError(
            f"{ref} is not a folder: a path names a built dataset's prepared folder (e.g. "
            "datasets/NAME/prepared); a release is NAME:X.Y.Z"
        )
    s: Session = session()
    reference = as_reference(str(ref))
    release = s.resolve(reference, "dataset", command="pull")
    return released_side(s, release)


def _folder_side(path: Path) -> Side:
    """A prepared folder on disk; in a registry's layout (``datasets/NAME/prepared``), its
    ``build_info.json`` and builder beside it name the dataset and its key."""
    folder = path.resolve()
    info = None
    if (folder.parent / "build_info.json").is_file():
        try:
            info = json.loads((folder.parent / "build_info.json").read_text())
        except ValueError:
            info = None
    builders = sorted(folder.parent.glob("*_dataset_builder.py"))
    key = declared_key(builders[0].read_text(), builders[0].name) if builders else None
    name = info.get("name") if isinstance(info, dict) else None
    return Side(str(path), folder, info if isinstance(info, dict) else None, key,
                str(name) if name else None)


def _tfds_name(side: Side) -> str | None:
    try:
        name = json.loads((side.path / "dataset_info.json").read_text()).get("name")
    except (OSError, ValueError, AttributeError):
        return None
    return str(name) if name else None


def _check_same_dataset(a: Side, b: Side) -> None:
    """Refuse two different datasets: by registry name where both are known, else TFDS's."""
    if a.name is not None and b.name is not None:
        if a.name != b.name:
            raise DatasetMismatchError(a.name, b.name)
        return
    name_a, name_b = _tfds_name(a), _tfds_name(b)
    if name_a is not None and name_b is not None and name_a != name_b:
        raise DatasetMismatchError(a.name or name_a, b.name or name_b)
