"""Build a dataset the way a Dataflow worker runs it: from the installed worker package only.

Not a test module: ``tests/test_dataflow_workers.py`` copies this file into a folder outside the
repository and runs it with the Python of a fresh virtual environment that holds Apache Beam and
the worker package that ``registry.cloud.dataflow.write_worker_package`` generated (installed
from its sdist). Everything is imported from that environment: the builder module by the name
the package installs it under, and the registry's own build steps (deterministic serialization,
the statistics branch). The raw data is read through Beam's filesystems (``gs://`` on the GCS
emulator, found through ``STORAGE_EMULATOR_HOST``).

Usage: ``python -I worker_build.py '<json>'`` with ``module``, ``params``, ``data_dir``,
``statistics_dir``, ``anonymous_gcs`` (see :func:`anonymous_gcs`), ``metadata_dir`` (the
unpacked sdist: the ``README.md`` and ``CITATIONS.bib`` the package ships, which TFDS reads on
the submitting machine) and ``beam`` (the ``beam`` settings). Prints one JSON line: where each
module came from, ``sys.path`` and the built folder.
"""

import importlib
import json
import sys


def anonymous_gcs() -> None:
    """Let Beam connect to Cloud Storage anonymously (the emulator) without first looking for
    credentials: with none here it retries Google's lookup 4 times (24 s of back-off), then
    connects anonymously all the same. Its answer is given up front; nothing else changes."""
    from apache_beam.internal.gcp import auth

    auth._Credentials._credentials_init = True
    auth._Credentials._credentials = None


def main() -> None:
    """Build, then say where the code came from."""
    args = json.loads(sys.argv[1])
    from etils import epath

    import registry
    from registry.build.beam import beam_download_config
    from registry.build.builders import download_and_prepare

    if args.get("anonymous_gcs"):
        anonymous_gcs()
    module = importlib.import_module(args["module"])
    builder_class = module.Builder
    builder_class.pkg_dir_path = epath.Path(args["metadata_dir"])
    builder = builder_class(params=args["params"], data_dir=args["data_dir"])
    download_and_prepare(builder, beam_download_config(args["beam"]), args["statistics_dir"])
    import apache_beam
    import tensorflow_datasets

    print(
        json.dumps(
            {
                "registry": registry.__file__,
                "builder": module.__file__,
                "beam": apache_beam.__file__,
                "tfds": tensorflow_datasets.__file__,
                "sys_path": sys.path,
                "prefix": sys.prefix,
                "data_dir": str(builder.data_dir),
            }
        )
    )


if __name__ == "__main__":
    main()
