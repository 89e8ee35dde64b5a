"""Loading a dataset's TFDS builder from its folder, and running it so that it writes
reproducible bytes.

A dataset folder is a TFDS dataset folder (``tfds build datasets/<name>`` works on it as well).
The registry imports its builder module from the file (:func:`load_builder_module`), passes it
the dataset's knobs from ``params.yaml`` (``datasets.<name>``, :func:`make_builder`) and runs
``download_and_prepare`` with TFDS's serializer swapped for a deterministic one
(:func:`download_and_prepare`, see :mod:`registry.build.reproducible`).

Any TFDS builder works as it is: one that takes no ``params`` is made with its own defaults (the
``raw_path`` knob then names its raw data folder, TFDS's ``manual_dir``: :func:`manual_dir`), and
its ``VERSION``, ``RELEASE_NOTES`` and ``SUPPORTED_VERSIONS`` may be inherited or computed
(:func:`class_metadata`, read from the class in a work tree at build or release time only).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import inspect
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from registry import layout
from registry.build.dvcfiles import builder_params
from registry.errors import BuildError, NotBuiltError, first_line
from registry.grammar import Version, parse_version

if TYPE_CHECKING:
    import tensorflow_datasets as tfds

__all__ = [
    "RAW_DIR",
    "BuilderMetadata",
    "builder_configs",
    "class_metadata",
    "download_and_prepare",
    "load_builder_class",
    "load_builder_module",
    "make_builder",
    "manual_dir",
    "with_manual_dir",
]

# A dataset's raw data folder when params.yaml names none (``raw_path``): TFDS's ``manual_dir``.
RAW_DIR = "raw"


# Builder modules loaded in this process, by builder file and its modification time: two
# registries (or two datasets with the same last name) never share a module, and an edited
# builder is loaded again.
_MODULES: dict[tuple[Path, int], ModuleType] = {}


def load_builder_module(root: Path, name: str) -> ModuleType:
    """Import the builder module of dataset ``name`` from its file (once per process).

    The module is also registered with Beam's pickler "by value", so that Beam worker processes,
    which cannot import a module loaded from a folder, receive its functions' code.

    Raises:
        NotBuiltError: If the builder file does not exist.
        BuildError: If importing it raises.
    """
    path = (root / layout.builder_file(name)).resolve()
    # A top-level module named like the file, as `tfds build` imports it: TFDS derives the
    # dataset name from `<name>_dataset_builder` and looks for a package when the name is dotted.
    module_name = path.stem
    if not path.is_file():
        raise NotBuiltError(
            f"dataset {name!r} has no builder at {path}; create one with "
            f"'registry datasets new {name}'"
        )
    cache_key = (path, path.stat().st_mtime_ns)
    if cache_key in _MODULES:
        module = _MODULES[cache_key]
        # Another registry's builder of the same last name may have taken the name since.
        sys.modules[module_name] = module
        return module
    import tensorflow_datasets as tfds

    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        # Registering by name would make two datasets with the same last name collide.
        with tfds.core.registered.skip_registration():
            spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(module_name, None)
        raise BuildError(
            f"importing the builder of {name!r} ({path}) failed: {type(e).__name__}: "
            f"{first_line(e)}; fix {layout.builder_file(name)}"
        ) from e
    try:
        from apache_beam.internal.cloudpickle import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    except ImportError:  # pragma: no cover - Beam is a dependency; guard a broken install
        pass
    _MODULES[cache_key] = module
    return module


def load_builder_class(root: Path, name: str) -> type[tfds.core.GeneratorBasedBuilder]:
    """Return the ``Builder`` class of dataset ``name`` in the registry at ``root``."""
    module = load_builder_module(root, name)
    cls = getattr(module, "Builder", None)
    if cls is None:
        raise BuildError(
            f"{layout.builder_file(name)} defines no class named 'Builder' (TFDS's convention)"
        )
    if cls.__dict__.get("pkg_dir_path") is None:
        # TFDS finds README.md and CITATIONS.bib through the module's package, which a module
        # loaded from a file does not have: point it at the dataset folder.
        from etils import epath

        cls.pkg_dir_path = epath.Path(root / layout.dataset_dir(name))
    return cls


def make_builder(
    root: Path, name: str, params: Mapping[str, Any] | None = None, **kwargs: Any
) -> tfds.core.GeneratorBasedBuilder:
    """Instantiate dataset ``name``'s builder with its ``params`` (and TFDS keyword arguments).

    The extract stage's ``warehouse`` knobs are not the builder's: they are left out.
    """
    params = builder_params(dict(params or {}))
    cls = load_builder_class(root, name)
    # Ask the signature rather than catching TypeError, which the builder's own code may raise.
    if _accepts_params(cls):
        return cls(params=dict(params or {}), **kwargs)
    # A plain TFDS builder that takes no params: still usable, with its own defaults. Its
    # raw_path is not a knob of its own but its raw data folder, handed over as manual_dir.
    params.pop("raw_path", None)
    if params:
        raise BuildError(
            f"the builder of {name!r} takes no params, but params.yaml sets "
            f"datasets.{name}: {dict(params)}; add `params` to its __init__ (see the "
            "template of 'registry datasets new') or remove them"
        )
    return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class BuilderMetadata:
    """What a builder class says about its versions.

    Attributes:
        version: ``VERSION`` (``None``: the class has none).
        release_notes: ``RELEASE_NOTES``, version -> notes.
        supported_versions: ``SUPPORTED_VERSIONS``: older versions it can still build.
    """

    version: Version | None
    release_notes: dict[str, str]
    supported_versions: list[str]


def class_metadata(root: Path, name: str) -> BuilderMetadata:
    """Read ``VERSION``, ``RELEASE_NOTES`` and ``SUPPORTED_VERSIONS`` from the builder class
    itself, inherited or computed: this imports the builder (TensorFlow, seconds) and runs its
    module's code, so it is for a work tree at build or release time; loading and describing a
    version read the literals of its source instead (:func:`registry.datasets.builder_metadata`).

    Raises:
        NotBuiltError: If the builder file does not exist.
        BuildError: If importing it raises, or it defines no ``Builder``.
        InvalidVersionError: If its ``VERSION`` is not ``X.Y.Z``.

    Example:
        >>> class_metadata(Path("."), "image_classification/dummy_mnist")  # doctest: +SKIP
        BuilderMetadata(version=Version(major=3, minor=0, patch=1), release_notes={}, ...)
    """
    cls = load_builder_class(root, name)
    version = getattr(cls, "VERSION", None)
    notes = getattr(cls, "RELEASE_NOTES", None) or {}
    supported = getattr(cls, "SUPPORTED_VERSIONS", None) or []
    return BuilderMetadata(
        version=parse_version(str(version)) if version is not None else None,
        release_notes={str(k): str(v) for k, v in dict(notes).items()},
        supported_versions=[str(v) for v in supported],
    )


def manual_dir(root: Path, name: str, params: Mapping[str, Any] | None = None) -> Path:
    """The dataset's raw data folder, which TFDS's builders know as ``manual_dir``: its
    ``raw_path`` in ``params.yaml``, else ``raw/`` in the dataset folder.

    Example:
        >>> manual_dir(Path("/r"), "a/b", {"raw_path": "exports"})
        PosixPath('/r/datasets/a/b/exports')
        >>> manual_dir(Path("/r"), "a/b", {})
        PosixPath('/r/datasets/a/b/raw')
    """
    raw = (params or {}).get("raw_path") or RAW_DIR
    return root / layout.dataset_dir(name) / str(raw)


def with_manual_dir(
    builder: tfds.core.DatasetBuilder,
    root: Path,
    name: str,
    params: Mapping[str, Any] | None,
    download_config: Any,
) -> Any:
    """``download_config`` with ``manual_dir`` set to the dataset's raw data folder
    (:func:`manual_dir`), so that a builder with ``MANUAL_DOWNLOAD_INSTRUCTIONS`` reads the files
    put there (tracked with ``registry datasets raw NAME PATH``).

    Raises:
        BuildError: If the builder needs manual files and the folder is missing or empty (with
            the first line of its instructions).
    """
    folder = manual_dir(root, name, params)
    instructions = getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None)
    if instructions and not (folder.is_dir() and any(folder.iterdir())):
        relative = folder.relative_to(root / layout.dataset_dir(name)).as_posix()
        first = next((ln.strip() for ln in str(instructions).splitlines() if ln.strip()), "")
        raise BuildError(
            f"the builder of {name!r} needs files downloaded by hand (TFDS's manual_dir), and "
            f"{layout.dataset_dir(name)}/{relative}/ is missing or empty; its instructions: "
            f"{first!r}; put the files there and track them with 'registry datasets raw {name} "
            f"{layout.dataset_dir(name)}/{relative}', or name another folder with raw_path in "
            "params.yaml"
        )
    return dataclasses.replace(download_config, manual_dir=str(folder))


def builder_configs(root: Path, name: str) -> list[str]:
    """The names of dataset ``name``'s ``BUILDER_CONFIGS``, the default (TFDS's: the first) first;
    empty for a builder without configs.

    Every config is built, released and tagged at the builder's own ``VERSION``: one release tags
    them all. A config that declares another version of its own is refused (for now).

    Raises:
        BuildError: If a config declares a version other than the builder's ``VERSION``, or two
            configs share a name.

    Example:
        >>> builder_configs(Path("."), "demo/sizes")  # doctest: +SKIP
        ['small', 'large']
    """
    cls = load_builder_class(root, name)
    names: list[str] = []
    for config in getattr(cls, "BUILDER_CONFIGS", None) or []:
        own = getattr(config, "version", None)
        if own is not None and str(own) != str(cls.VERSION):
            raise BuildError(
                f"config {config.name!r} of {name!r} declares version {own}, but configs share "
                f"the builder's VERSION ({cls.VERSION}), and one release tags them all: remove "
                f"version= from the config in {layout.builder_file(name)} (set VERSION in class "
                "Builder instead)"
            )
        if config.name in names:
            raise BuildError(
                f"two configs of {name!r} are named {config.name!r}: rename one in "
                f"{layout.builder_file(name)}"
            )
        names.append(str(config.name))
    return names


def _accepts_params(cls: type) -> bool:
    """Whether the builder's ``__init__`` takes a ``params`` keyword argument."""
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # pragma: no cover - a C-level __init__
        return False
    return "params" in parameters


@contextlib.contextmanager
def _reproducible_serialization() -> Iterator[None]:
    """Make TFDS serialize examples deterministically while the block runs.

    TFDS's own serialization differs from process to process (see
    :mod:`registry.build.reproducible`), so a rebuild would never match the released hash. TFDS
    creates its serializer by looking up ``example_serializer.ExampleSerializer``: the subclass is
    swapped in for the build, and pickled by value so that Beam workers use it too.
    """
    from tensorflow_datasets.core import example_serializer

    from registry.build import reproducible as _reproducible

    try:
        from apache_beam.internal.cloudpickle import cloudpickle

        cloudpickle.register_pickle_by_value(_reproducible)
    except ImportError:  # pragma: no cover - Beam is a dependency; guard a broken install
        pass
    original = example_serializer.ExampleSerializer
    example_serializer.ExampleSerializer = _reproducible.DeterministicExampleSerializer
    try:
        yield
    finally:
        example_serializer.ExampleSerializer = original


@contextlib.contextmanager
def _statistics_tee(folder: str | None) -> Iterator[None]:
    """Compute each split's statistics while TFDS writes it (see :mod:`registry.build.stats`),
    into ``<folder>/<split>.json``; ``folder=None``: none.

    TFDS hands every split's examples to ``SplitBuilder.submit_split_generation``, once the
    builder's legacy or modern ``_split_generators`` is normalised: a Beam ``PTransform`` (applied
    here as TFDS applies it), a ``PCollection``, or a plain generator. A Beam split gets a second
    branch in the same pipeline, a ``CombineGlobally`` beside TFDS's writer; a generator is
    accumulated in this process as TFDS consumes it. The statistics module is pickled by value,
    like the builder, so Beam workers need no ``registry`` install.
    """
    if folder is None:
        yield
        return
    from tensorflow_datasets.core import split_builder as split_builder_lib

    from registry.build import stats as _stats

    try:
        from apache_beam.internal.cloudpickle import cloudpickle

        cloudpickle.register_pickle_by_value(_stats)
    except ImportError:  # pragma: no cover - Beam is a dependency; guard a broken install
        pass
    original = split_builder_lib.SplitBuilder.submit_split_generation

    def submit(self: Any, split_name: str, generator: Any, *args: Any, **kwargs: Any) -> Any:
        specs = _stats.feature_specs(self._features)
        path = f"{folder}/{split_name}.json"
        if isinstance(generator, Iterable):
            statistics = _stats.SplitStatistics(specs)

            def tee(examples: Iterable[Any]) -> Iterator[Any]:
                for example in examples:
                    statistics.add(example)
                    yield example

            # TFDS consumes a generator before this returns (it writes the split in-process).
            future = original(self, split_name, tee(generator), *args, **kwargs)
            _stats.write_split_statistics(statistics.to_dict(), path)
            return future
        import apache_beam as beam

        if isinstance(generator, beam.PTransform):
            generator = self.beam_pipeline | split_name >> generator
        if isinstance(generator, beam.PCollection):
            _ = generator | f"{split_name}_statistics" >> _stats.statistics_branch(specs, path)
        return original(self, split_name, generator, *args, **kwargs)

    split_builder_lib.SplitBuilder.submit_split_generation = submit
    try:
        yield
    finally:
        split_builder_lib.SplitBuilder.submit_split_generation = original


def download_and_prepare(
    builder: tfds.core.DatasetBuilder,
    download_config: Any,
    statistics_dir: str | None = None,
    file_format: str | None = None,
) -> None:
    """Run ``builder.download_and_prepare`` so that it writes reproducible bytes.

    Args:
        builder: The dataset's builder.
        download_config: TFDS's download config (the Beam runner and options).
        statistics_dir: Where each split's statistics go (``<split>.json``, local or
            ``gs://``; read them with :func:`registry.build.stats.read_statistics`); ``None``:
            no statistics are computed.
        file_format: The shards' format, ``"tfrecord"`` or ``"array_record"`` (random access);
            ``None``: TFDS's default (``tfrecord``). ArrayRecord's writer is deterministic too
            (TFDS writes one record a chunk, ``group_size:1``, in the examples' order), so the
            same examples give the same shard bytes in either format.
    """
    kwargs = {"file_format": file_format} if file_format else {}
    with _reproducible_serialization(), _statistics_tee(statistics_dir):
        builder.download_and_prepare(download_config=download_config, **kwargs)
