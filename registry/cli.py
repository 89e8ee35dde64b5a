"""The ``registry`` command: a thin skin over the library.

Each command parses its arguments, calls one function of the library and prints the result.
Errors of the registry's own (:class:`registry.errors.RegistryError`) print as one line on
stderr and exit with the error's code; ``--traceback`` shows the full traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, NoReturn

import click

from registry.errors import RegistryError

if TYPE_CHECKING:
    from registry.repo.session import Kind
    from registry.storage.cache import FetchResult

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

_EPILOG = """\b
Where is the registry? In order: --registry, $REGISTRY_URL, the clone around the
working directory, `url` in the user config file ($REGISTRY_CONFIG or
~/.config/lab-registry/config.toml). The cache is $REGISTRY_CACHE_DIR or
~/.cache/lab-registry; a lab's read-only shared cache, looked in before the
DVC remote, is $REGISTRY_SHARED_CACHE (or shared_cache_dir in the user
config file or in the registry's params.yaml).

\b
Exit codes: 0 ok, 1 other error, 2 bad input or config, 3 not found, 4 not built,
5 build failed, 6 release refused, 7 remote unreachable, 8 corrupt data,
9 git failed, 10 missing dependency, 11 name already taken, 12 DVC failed,
13 version not signed as required, 14 no space left for the cache,
15 version yanked: loaded strictly or promoted, 16 version purged,
17 a rebuild's input is gone from the remote, 18 diff of two different datasets,
19 version understates the change, 20 warehouse table not found, 21 SQL refused
by BigQuery, 22 warehouse permission refused, 23 query over the scan limit,
24 cloud job output unfinished or incomplete, 25 trained on an unreleased dataset,
26 a Vertex AI job's image not produced by `registry compute package`.
"""


def _registry_option(f: Any) -> Any:
    return click.option(
        "--registry",
        "-r",
        metavar="PATH|URL",
        help="Registry clone or Git URL (default: $REGISTRY_URL or the enclosing clone).",
    )(f)


def _json_option(f: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(f)


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@click.group(context_settings=CONTEXT_SETTINGS, epilog=_EPILOG)
@click.version_option(package_name="lab-registry", prog_name="registry")
@click.option("--traceback", is_flag=True, help="Show the full traceback of an error.")
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Show the log of DVC, TFDS, Beam and TensorFlow live (also: REGISTRY_VERBOSE=1); "
    "otherwise a build writes it to .registry/logs/.",
)
def cli(traceback: bool, verbose: bool) -> None:
    """Lab Registry: the lab's datasets and pretrained models, versioned in Git and DVC.

    \b
    Load a released dataset in Python:
        import registry
        ds = registry.load_dataset("products/product_a/ad_clicks:1.0.0", split="train")

    \b
    References: NAME (latest release), NAME:1.2.0, NAME:1.* (latest 1.x), NAME@prod.
    """
    from registry import console

    console.set_verbose(verbose)
    console.configure_logging(traceback=traceback or _traceback_from_environment())


@cli.group(context_settings=CONTEXT_SETTINGS)
def datasets() -> None:
    """List, describe, load, build, release and author datasets.

    \b
    A dataset is a TFDS builder folder under datasets/ (e.g.
    datasets/products/product_a/ad_clicks/), built by the dvc.yaml stage
    build@<name> into datasets/<name>/prepared, released as the Git tag
    <name>@v<VERSION>.
    """


@datasets.command("list")
@_registry_option
@_json_option
def datasets_list(registry: str | None, as_json: bool) -> None:
    """List every dataset: released versions, stages, and what is built in this clone.

    \b
    Python: registry.list_datasets()
    """
    from registry.datasets import list_datasets

    summaries = list_datasets(registry=registry)
    if as_json:
        _print_json([asdict(s) for s in summaries])
        return
    if not summaries:
        click.echo("No datasets yet. Create one with: registry datasets new <group>/<name>")
        return
    rows = [
        (
            s.name,
            s.latest or "-",
            str(len(s.versions)),
            ", ".join(f"{k}={v}" for k, v in s.stages.items()) or "-",
            (f"{s.built['version']} ({s.built['examples']:,} examples"
             + (f", config {s.configs[0]})" if s.built.get("configs") else ")"))
            if s.built else "-",
            ", ".join(s.configs) or "-",
            ("deprecated" if s.deprecated else "") + ("" if s.in_tree else " (removed)")
            + _yanked_mark(s.yanked),
        )
        for s in summaries
    ]
    _print_table(("NAME", "LATEST", "VERSIONS", "STAGES", "BUILT HERE", "CONFIGS", ""), rows)


def _yanked_mark(yanked: dict[str, str]) -> str:
    """The yanked versions and why, for a listing's last column."""
    return "".join(f" yanked {v} ({reason})" for v, reason in yanked.items())


def _print_yanked(version: str | None, yanked: dict[str, str], purged: str | None) -> None:
    """Mark ``version`` loudly if it is yanked (or purged), and list the yanked versions
    (``info``)."""
    if version in yanked:
        click.secho(f"YANKED: {yanked[version]}", fg="red", bold=True)
    if purged:
        click.secho(f"PURGED {purged}: its bytes are deleted, it cannot be loaded", fg="red",
                    bold=True)
    if yanked:
        click.echo("yanked: " + ", ".join(f"{v} ({reason})" for v, reason in yanked.items()))


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@datasets.command("info")
@click.argument("ref")
@click.option(
    "--config",
    metavar="NAME",
    help="For a builder with BUILDER_CONFIGS: describe this config's splits and features "
    "(default: the default config, the first).",
)
@_registry_option
@_json_option
def datasets_info(ref: str, config: str | None, registry: str | None, as_json: bool) -> None:
    """Describe a dataset version: card, features, splits and sizes, versions, notes.

    \b
    REF is NAME, NAME:1.2.0, NAME:1.* or NAME@stage. Reads Git only: no data is fetched.
    A builder with configs lists them, each with its example counts:
        registry datasets info demo/sizes --config large
    Python: registry.dataset_info(REF, config=None)
    """
    from registry.datasets import dataset_info

    info = dataset_info(ref, config=config, registry=registry)
    summary = _lineage_summary(info.name, info.version, "dataset", registry)
    if as_json:
        _print_json({**info.to_dict(), "lineage_summary": summary})
        return
    title = f"{info.name} {info.version}" if info.version else f"{info.name} (unreleased)"
    click.secho(title, bold=True)
    if info.tag:
        click.echo(f"tag: {info.tag}  commit: {info.commit}")
    click.echo(f"versions: {', '.join(info.versions) or 'none released'}")
    _print_yanked(info.version, info.yanked, info.purged)
    if info.understated_bump:
        click.secho(f"VERSION OVERRIDE: {info.understated_bump}", fg="yellow", bold=True)
    if info.stages:
        click.echo("stages: " + ", ".join(f"{k}={v}" for k, v in info.stages.items()))
    _echo_reproduced(info.reproduced)
    _echo_lineage_summary(summary, f"{info.name}:{info.version}")
    _echo_configs(info.configs, info.default_config, info.config)
    if info.supported_versions:
        click.echo(
            f"the builder can also build: {', '.join(info.supported_versions)} "
            "(SUPPORTED_VERSIONS)"
        )
    if info.build:
        random = "random access: output='data_source'"
        click.echo(f"shards: {info.file_format}" + (
            f" ({random})" if info.file_format == "array_record" else ""))
        click.echo("\nsplits:")
        for split, s in info.build.get("splits", {}).items():
            click.echo(
                f"  {split:<12} {s['num_examples']:>10,} examples  {_size(s['num_bytes']):>9}"
                f"  {s['num_shards']} shard(s)"
            )
        click.echo("features:")
        for key, f in info.build.get("features", {}).items():
            extra = f"  {f['num_classes']} classes" if "num_classes" in f else ""
            click.echo(f"  {key:<24} {f['type']:<12} {f['dtype']:<8} {f['shape']}{extra}")
        _echo_statistics(info.statistics)
    else:
        click.echo("\nnot built yet: run 'registry datasets build " + info.name + "'")
    if info.release_notes:
        click.echo("\nrelease notes:")
        for version, note in info.release_notes.items():
            click.echo(f"  {version}: {note}")
    click.echo("\n" + info.card.strip())


def _echo_configs(configs: dict[str, Any], default: str | None, shown: str | None) -> None:
    """A builder's configs (the default marked), each with its description and example counts;
    which one the splits below describe."""
    if not configs:
        return
    click.echo(
        "configs: " + ", ".join(f"{c} (default)" if c == default else c for c in configs)
    )
    for config, summary in configs.items():
        counts = ", ".join(
            f"{split} {s['num_examples']:,}" for split, s in summary.get("splits", {}).items()
        )
        described = f"{summary['description']}  " if summary.get("description") else ""
        click.echo(f"  config {config}: {described}({counts})")
    click.echo(
        f"splits and features below: config {shown} "
        "(load one with registry.load_dataset(REF, config=NAME))"
    )


def _echo_statistics(statistics: dict[str, Any] | None) -> None:
    """The build's statistics: per split, one line a feature."""
    if not statistics:
        click.echo("statistics: not recorded (built before build statistics)")
        return
    click.echo("statistics:")
    for split, s in statistics.get("splits", {}).items():
        click.echo(f"  {split} ({s.get('num_examples', 0):,} examples)")
        for key, f in s.get("features", {}).items():
            click.echo(f"    {key:<22} {f.get('kind', '?'):<11} {_feature_line(f)}".rstrip())


def _feature_line(f: dict[str, Any]) -> str:
    """One feature's statistics in a few words, e.g. ``mean 1.5 ± 0.2 [0.1, 9]  3 missing``."""

    def spread(m: dict[str, Any]) -> str:
        if m.get("mean") is None:
            return "no values"
        return f"{m['mean']:.4g} ± {m['std']:.3g} [{m['min']:.4g}, {m['max']:.4g}]"

    kind, count = f.get("kind"), f.get("count") or 0
    if kind == "categorical":
        classes = sorted(f.get("classes", {}).items(), key=lambda kv: (-kv[1], kv[0]))
        total = sum(n for _, n in classes) or 1
        text = " ".join(f"{name} {100 * n / total:.0f}%" for name, n in classes[:6])
        text += f" (+{len(classes) - 6} more)" if len(classes) > 6 else ""
    elif kind == "numeric":
        text = spread(f)
    elif kind == "text":
        text = "length " + spread(f.get("length", {}))
    elif kind == "image":
        shapes = sorted(f.get("shapes", {}).items(), key=lambda kv: -kv[1])
        text = " ".join(f"{shape} {100 * n / (count or 1):.0f}%" for shape, n in shapes[:3])
        if f.get("mean_pixel") is not None:
            text += f"  mean pixel {f['mean_pixel']:.4g}"
    else:
        text = f"{count:,} values"
    missing = f.get("missing") or 0
    return text + (f"  {missing:,} missing" if missing else "")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


@contextmanager
def _progress_bar(label: str, enabled: bool) -> Iterator[Any]:
    """A rich progress bar on stderr, fed by ``(done_bytes, total_bytes)`` callbacks."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@datasets.command("pull")
@click.argument("ref")
@_registry_option
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Parallel downloads.")
@click.option("--verify", is_flag=True, help="Re-hash every cached file before trusting it.")
@_json_option
def datasets_pull(
    ref: str, registry: str | None, jobs: int | None, verify: bool, as_json: bool
) -> None:
    """Fetch a released dataset version into the local cache, with a progress bar.

    \b
    Prints the cached folder (a TFDS prepared folder that
    tfds.builder_from_directory reads; for a builder with configs, a
    folder of them, one per config). A second pull transfers nothing.
    The shared cache ($REGISTRY_SHARED_CACHE, shared_cache_dir) is looked
    in before the DVC remote.
    Python: registry.pull_dataset(REF)
    """
    from registry.datasets import pull_dataset

    with _progress_bar(f"pulling {ref}", enabled=not as_json and sys.stderr.isatty()) as bar:
        result = pull_dataset(ref, registry=registry, progress=bar, jobs=jobs, verify=verify)
    if as_json:
        _print_json(asdict(result))
        return
    click.echo(_pull_summary(result), err=True)
    click.echo(str(result.path))


def _pull_summary(result: FetchResult) -> str:
    """One line on what a pull took from the remote and from the shared cache."""
    parts = []
    if result.fetched_files:
        parts.append(
            f"fetched {result.fetched_files} of {result.files} files "
            f"({_size(result.fetched_bytes)})"
        )
    if result.shared_files:
        parts.append(
            f"found in the shared cache {result.shared_cache} ({result.shared_files} files, "
            f"{_size(result.shared_bytes)})"
        )
    return "; ".join(parts) or f"already cached ({result.files} files)"


_DRY_RUN_HELP = (
    "Print the Beam pipeline options, one flag a line (with --json: as JSON), and on Dataflow "
    "write the worker package; run, submit and contact nothing."
)


def _print_options(options: dict[str, list[str]], as_json: bool, headers: bool) -> None:
    if as_json:
        _print_json(options)
        return
    for i, (name, flags) in enumerate(options.items()):
        if headers:
            click.echo(("\n" if i else "") + f"# {name}")
        for flag in flags:
            click.echo(flag)


@datasets.command("build")
@click.argument("names", nargs=-1)
@_registry_option
@click.option("--force", "-f", is_flag=True, help="Rebuild even if up to date.")
@click.option("--dry-run", is_flag=True, help=_DRY_RUN_HELP)
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print JSON, name -> flags.")
def datasets_build(
    names: tuple[str, ...], registry: str | None, force: bool, dry_run: bool, as_json: bool
) -> None:
    """Build datasets through their dvc.yaml stages (dvc repro build@NAME).

    \b
    With no NAMES, builds every dataset of the pipeline. Stages whose builder,
    card and params did not change are skipped. Commit dvc.lock afterwards.
    --dry-run prints each dataset's Beam options (as `prepare --dry-run` does)
    under a `# NAME` line, and builds nothing.
    Python: registry.build_dataset([NAME, ...])
    """
    if dry_run:
        from registry.datasets import pipeline_options

        _print_options(pipeline_options(names, registry=registry), as_json, headers=True)
        return
    if as_json:
        raise click.UsageError("--json goes with --dry-run")
    from registry.datasets import build_dataset

    built = build_dataset(names, registry=registry, force=force)
    if built:
        click.echo("built: " + ", ".join(built))
    else:
        click.echo("everything is up to date")


@datasets.command("raw")
@click.argument("name")
@click.argument("source")
@_registry_option
@click.option("--to", "to", metavar="PATH",
              help="Where an import goes, relative to the dataset folder (default: raw).")
def datasets_raw(name: str, source: str, registry: str | None, to: str | None) -> None:
    """Make SOURCE the raw input of dataset NAME, so its build depends on it.

    \b
    SOURCE is one of:
      datasets/NAME/raw            a folder or file in the dataset folder,
                                   tracked in place (dvc add)
      gs://bucket/exports/clicks   an export elsewhere (gs://, s3://, https://,
      /nfs/exports/clicks          or a folder outside the repository),
                                   imported into datasets/NAME/raw
                                   (dvc import-url; `dvc update` re-imports)
    Running it again with a URL (the same, or a newer export) replaces the
    import; `dvc update datasets/NAME/raw.dvc` fetches the same URL again.
    gs:// uses your Google Cloud credentials, or the emulator named by
    STORAGE_EMULATOR_HOST (anonymously).
    Then raw_path in params.yaml names it and build@NAME depends on it:
    changing the raw files makes `registry datasets build` rebuild, and the
    release records their hash (see `registry lineage NAME:X.Y.Z`). Commit
    the .dvc file, dvc.yaml and params.yaml afterwards.
    Python: registry.datasets.add_raw_input(NAME, SOURCE)
    """
    from registry.datasets import add_raw_input

    raw_path = add_raw_input(name, source, to=to, registry=registry)
    click.echo(f"raw input of {name}: {raw_path} (raw_path in params.yaml; a dependency of "
               f"build@{name})")
    click.echo(f"next: git add -A && git commit, then `registry datasets build {name}`")


@datasets.command("extract")
@click.argument("name")
@_registry_option
@click.option("--refresh", is_flag=True,
              help="Query the warehouse again, even if the recorded snapshot is up to date.")
@click.option("--dry-run", is_flag=True,
              help="Print the query with its parameters filled in and BigQuery's estimate of "
              "the bytes it scans; run nothing.")
@click.option("--yes", "-y", is_flag=True,
              help="Run a query whose estimate is over registry.max_query_gb.")
@_json_option
def datasets_extract(
    name: str, registry: str | None, refresh: bool, dry_run: bool, yes: bool, as_json: bool
) -> None:
    """Snapshot a dataset's warehouse query into datasets/NAME/snapshot.

    \b
    The dataset's SQL lives beside its builder (query.sql, reviewed like
    code) with named parameters (@start_date) set in params.yaml:
      datasets:
        products/product_b/search_sessions:
          warehouse:
            query: query.sql             # or  table: dataset.table
            params: {start_date: 2026-10-01, end_date: 2026-10-31}
            sample: warehouse_sample.json
          raw_path: snapshot
    The rows are written as Parquet shards (the same rows give the same
    bytes, whatever order BigQuery returns them in), recorded in dvc.lock as
    the output of the extract@NAME stage; build@NAME reads them, the release
    records their hash, and a rebuild reads them from the DVC remote, never
    from the warehouse.

    \b
    The query runs when the stage is out of date (the SQL, its parameters or
    the warehouse changed) or with --refresh (the tables changed); otherwise
    the recorded snapshot stays. A query whose dry run is over
    registry.max_query_gb (default 100) runs only with --yes.
    Where: warehouse.project (and location) in params.yaml, with Application
    Default Credentials (`gcloud auth application-default login`); empty, a
    local BigQuery emulator loaded with the dataset's sample (no account).
        registry datasets extract products/product_b/search_sessions --dry-run
        registry datasets extract products/product_b/search_sessions --refresh
    Commit dvc.lock afterwards, then `registry datasets build NAME`.
    Python: registry.datasets.extract_dataset(NAME, refresh=True),
    registry.datasets.extract_plan(NAME)
    """
    from registry import console

    if dry_run:
        from registry.datasets import extract_plan

        with console.step("dry run", name, root=registry) as line:
            plan = extract_plan(name, registry=registry)
            line.done(_size(plan.estimate))
        _print_plan(plan, as_json)
        return
    from registry.datasets import extract_dataset

    with console.step("extract", name, root=registry) as line:
        outcome = extract_dataset(name, refresh=refresh, yes=yes, registry=registry)
        done = outcome.extracted
        line.done(f"{done.info.rows:,} rows" if done else "up to date")
    if as_json:
        _print_json({
            "name": outcome.name, "ran": outcome.ran, "note": outcome.note,
            "snapshot": done.snapshot if done else None,
            "rows": done.info.rows if done else None,
            "files": list(done.info.files) if done else None,
            "bytes": done.info.bytes if done else None,
            "job_id": done.job_id if done else None,
        })
        return
    if done is None:
        click.echo(f"{name}: {outcome.note} (--refresh queries the warehouse again)")
        return
    click.echo(
        f"{name}: {done.info.rows:,} rows in {len(done.info.files)} file(s), "
        f"{_size(done.info.bytes)}, from {done.plan.warehouse} -> {done.snapshot}"
    )
    click.echo(f"next: git add dvc.lock && git commit, then `registry datasets build {name}`")


def _print_plan(plan: Any, as_json: bool) -> None:
    """The query as it would run, where, and its estimate (``extract --dry-run``)."""
    query = plan.query
    limit = f"{plan.limit_gb:g} GB (registry.max_query_gb)"
    if as_json:
        _print_json({
            "name": plan.source.name, "query": query.where, "sql": plan.sql,
            "table": query.table,
            "parameters": {k: str(v) for k, v in (query.parameters or {}).items()},
            "warehouse": plan.warehouse, "estimate_bytes": plan.estimate,
            "max_query_gb": plan.limit_gb, "needs_yes": plan.over_limit,
        })
        return
    click.echo(f"-- {query.where}, its parameters filled in")
    click.echo((plan.sql or f"SELECT * FROM `{query.table}`").rstrip())
    click.echo(f"-- runs in: {plan.warehouse}")
    over = "over the limit: it runs only with --yes" if plan.over_limit else "under the limit"
    click.echo(f"-- would scan: {_size(plan.estimate)} (BigQuery's dry-run estimate), {over} "
               f"of {limit}")


@datasets.command("prepare")
@click.argument("name")
@_registry_option
@click.option("--dry-run", is_flag=True, help=_DRY_RUN_HELP)
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print JSON, name -> flags.")
def datasets_prepare(name: str, registry: str | None, dry_run: bool, as_json: bool) -> None:
    """Run a dataset's builder into datasets/NAME/prepared (what its DVC stage runs).

    \b
    Uses the Beam settings under `beam` in params.yaml and the knobs under
    `datasets.NAME`. Prefer `registry datasets build NAME`, which runs this
    through DVC so that the result is tracked. Prints one line; the log of
    TFDS, Beam and its workers goes to .registry/logs/build-NAME.log (or
    $REGISTRY_LOG_FILE); -v shows it live.

    \b
    On Dataflow (beam.runner: DataflowRunner) the options come from
    beam.dataflow, and a worker package holding the builder and the registry is
    generated in .registry/dataflow/NAME/ and passed as --setup_file.
    Credentials: `gcloud auth application-default login` or
    $GOOGLE_APPLICATION_CREDENTIALS; --dry-run needs none.
    Python: registry.datasets.pipeline_options(NAME),
    registry.datasets.prepare_dataset(NAME)
    """
    if dry_run:
        from registry.datasets import pipeline_options

        _print_options(pipeline_options(name, registry=registry), as_json, headers=False)
        return
    if as_json:
        raise click.UsageError("--json goes with --dry-run")
    from registry import console
    from registry.datasets import prepare_dataset

    with console.step("build", name, root=registry) as line:
        prepare_dataset(name, registry=registry)
        line.done(_built(name, registry))


def _built(name: str, registry: str | None) -> str:
    """``1.0.0, 1,797 examples``: what the work tree now holds of dataset ``name``."""
    from registry.datasets import list_datasets

    built = next((s.built for s in list_datasets(registry=registry) if s.name == name), None)
    return _built_text(built)


def _built_text(built: dict[str, Any] | None) -> str:
    """``1.0.0, 1,797 examples``; with configs ``1.0.0, small 10 examples, large 40 examples``."""
    if not built:
        return ""
    if built.get("configs"):
        counts = ", ".join(f"{c} {n:,} examples" for c, n in built["configs"].items())
        return f"{built['version']}, {counts}"
    return f"{built['version']}, {built['examples']:,} examples"


def _release_remote_options(command: Any) -> Any:
    """``--remote NAME --allow-unshared-remote``: where a release pushes its bytes."""
    command = click.option(
        "--allow-unshared-remote",
        is_flag=True,
        help="Allow --remote to name a remote the committed .dvc/config does not make the default.",
    )(command)
    return click.option(
        "--remote",
        "remote",
        metavar="NAME",
        help="DVC remote for the bytes (default: the committed .dvc/config's default).",
    )(command)


def _bump_override_options(what: str) -> Callable[[Any], Any]:
    """``--allow-understated-bump --reason TEXT``: release ``what`` anyway, recorded in the tag."""

    def add(command: Any) -> Any:
        command = click.option(
            "--reason", metavar="TEXT", help="Why the override (--allow-understated-bump)."
        )(command)
        return click.option(
            "--allow-understated-bump",
            is_flag=True,
            help=f"Release {what} anyway (needs --reason; recorded in the tag).",
        )(command)

    return add


@datasets.command("release")
@click.argument("name")
@_registry_option
@click.option("--no-push", is_flag=True, help="Do not push the tag to the Git remote.")
@_release_remote_options
@_bump_override_options("a VERSION that understates the change since the previous release")
@click.option("--notes", metavar="TEXT",
              help="Release notes, for a builder without a RELEASE_NOTES entry for its VERSION "
              "(recorded in the tag).")
def datasets_release(
    name: str,
    registry: str | None,
    no_push: bool,
    remote: str | None,
    allow_unshared_remote: bool,
    allow_understated_bump: bool,
    reason: str | None,
    notes: str | None,
) -> None:
    """Release the built version of a dataset: push its bytes, then tag it.

    \b
    The version is the builder's VERSION; RELEASE_NOTES must have an entry for it,
    it must be greater than every release, the built data must be up to date and
    the work tree committed; the Git remote's tags are fetched first, so a stale
    clone never releases out of order. The bytes go to the DVC remote that the
    committed .dvc/config names, the one loads by Git URL read (a
    .dvc/config.local or REGISTRY_REMOTE override is refused without --remote
    NAME --allow-unshared-remote); the tag NAME@vVERSION is created only after
    the bytes are there, and is never moved.

    \b
    VERSION is checked against the data: the build is diffed with the previous
    release (the highest not yanked; see 'registry datasets diff'), and a
    version that understates the change is refused (exit 19) with the smallest
    acceptable one: an example changed or removed, or a feature removed or
    changed in type, shape, dtype or classes -> MAJOR; only examples or
    features added -> MINOR; the same examples -> PATCH. To release anyway:
        registry datasets release NAME --allow-understated-bump --reason "..."
    (the override and its reason are recorded in the tag's lineage record).

    \b
    A builder brought in as it is (registry datasets add --from) may have no
    RELEASE_NOTES entry for its VERSION: say what the version holds with --notes
    (then required; recorded in the tag message):
        registry datasets release image_classification/dummy_mnist \\
            --notes "DummyMnist from tensorflow-datasets, as it is."
    Python: registry.release_dataset(NAME, notes=TEXT)
    """
    from registry import console
    from registry.datasets import release_dataset

    # One line while it runs (the check against the previous release reads both builds); the
    # libraries' chatter (TensorFlow's start-up, DVC's push) goes to the step's log.
    with console.step("release", name, root=registry) as line:
        release = release_dataset(
            name,
            registry=registry,
            push=not no_push,
            remote=remote,
            allow_unshared_remote=allow_unshared_remote,
            allow_understated_bump=allow_understated_bump,
            reason=reason,
            notes=notes,
        )
        line.done(str(release.version))
    click.echo(f"released {release.name} {release.version} (tag {release.tag})")


@datasets.command("search")
@click.option("--task", help="Task, e.g. image-classification (TAGS.txt's ml.task, else group).")
@click.option("--owner", help="Owner, as the card's **Owner** line says.")
@click.option("--language", help="Language of its text (TAGS.txt's content.language), e.g. en.")
@click.option("--feature", "features", multiple=True, metavar="NAME",
              help="Has this feature (repeat: every one).")
@click.option("--min-size", metavar="SIZE", help="At least this big (all splits): 500kB, 10MB.")
@click.option("--max-size", metavar="SIZE", help="At most this big (all splits).")
@click.argument("text", nargs=-1)
@_registry_option
@_json_option
def datasets_search(
    text: tuple[str, ...], registry: str | None, as_json: bool, **filters: Any
) -> None:
    """Find datasets by free TEXT, task, owner, language, feature names or size.

    \b
    The same index and rule as the catalog's search box (registry catalog build).
    Which datasets have an image feature and a label?
        registry datasets search --feature image --feature label
    Product A's data under 50 MB:
        registry datasets search product_a --max-size 50MB
    Python: registry.search_datasets(text=..., features=[...], max_size="50MB")
    """
    from registry.catalog import search_datasets
    from registry.catalog.search import format_size

    found = search_datasets(" ".join(text) or None, registry=registry, **filters)
    if as_json:
        _print_json([asdict(d) for d in found])
    elif not found:
        click.echo("no dataset matches", err=True)
    else:
        _print_table(
            ("NAME", "LATEST", "TASK", "OWNER", "EXAMPLES", "SIZE", "FEATURES"),
            [(d.name, d.latest or "-", d.task or "-", d.owner or "-",
              f"{d.examples:,}" if d.examples else "-", format_size(d.size_bytes),
              ", ".join(d.features) or "-") for d in found],
        )


@datasets.command("diff")
@click.argument("ref_a")
@click.argument("ref_b", required=False)
@click.option(
    "--show",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="Print up to N concrete differing examples (key and changed fields).",
)
@click.option(
    "--config",
    metavar="NAME",
    help="For a builder with BUILDER_CONFIGS: the config to compare (default: the default).",
)
@_registry_option
@_json_option
def datasets_diff(
    ref_a: str,
    ref_b: str | None,
    show: int,
    config: str | None,
    registry: str | None,
    as_json: bool,
) -> None:
    """Show what changed between two versions or builds of a dataset.

    \b
    Schema (features added, removed, changed in type, shape, dtype or class
    names), splits (examples and bytes, before and after), examples per split
    (added, removed, changed), and per-feature statistics, largest shift
    first. Examples are matched by the key the builder declares (KEY_FEATURE =
    "id", or def example_key(example) in class Builder), else by a content
    hash (a changed example is then one removed and one added). Memory stays
    flat whatever the size.

    \b
    REF_A and REF_B are NAME:X.Y.Z, NAME@stage, NAME (latest release) or the
    path of a prepared folder; without REF_B, REF_A is compared with this
    clone's workspace build (datasets/NAME/prepared). Releases are fetched
    through the cache, as loads fetch them.
        registry datasets diff products/product_a/ad_clicks:1.0.0
        registry datasets diff image_classification/digits:1.0.0 \\
            image_classification/digits:2.0.0 --show 5
        registry datasets diff old/prepared new/prepared --json
        registry datasets diff demo/sizes:1.0.0 --config large
    Python: registry.diff_datasets(REF_A, REF_B, show=N, config=None)
    """
    from registry import console
    from registry.diff import diff_datasets

    with console.step("diff", ref_a, root=registry) as line:
        diff = diff_datasets(ref_a, ref_b, registry=registry, show=show, config=config)
        line.done("no changes" if diff.identical else "changed")
    if as_json:
        _print_json(diff.to_dict())
    else:
        click.echo(diff.to_text())


@datasets.command("new")
@click.argument("name")
@_registry_option
@click.option("--description", "-d", help="One line saying what the dataset holds.")
@click.option("--owner", help="Who to ask about it (team or person).")
@click.option("--query", is_flag=True,
              help="A warehouse dataset: query.sql and a sample table, snapshotted by the "
              "extract stage, read by the builder as Parquet.")
def datasets_new(
    name: str, registry: str | None, description: str | None, owner: str | None, query: bool
) -> None:
    """Write a ready-to-build dataset folder, as `tfds new` does, and add its stage.

    \b
    NAME is a path under datasets/, grouped by product or task, e.g.
    products/product_a/ad_clicks or image_classification/digits; its last part
    must be a Python identifier. The folder holds a TFDS builder with a Beam
    pipeline, a card (README.md), CITATIONS.bib, dummy data and a test.
        registry datasets new products/product_b/reviews --owner "ads team"

    \b
    --query starts a dataset from the lab's warehouse: query.sql (GoogleSQL,
    commented, with a named parameter @start_date set in params.yaml),
    warehouse_sample.json (a tiny table for the local BigQuery emulator: no
    account needed), a builder that reads the extract's snapshot (Parquet)
    with Beam, and dummy_data/ holding the query's output on the sample. It
    joins the extract stage of dvc.yaml, so the build runs the query first.
        registry datasets new products/demo/orders --query
        registry datasets extract products/demo/orders --dry-run
        registry datasets build products/demo/orders
    Python: registry.new_dataset(NAME, query=True)
    """
    from registry.datasets import new_dataset

    folder = new_dataset(
        name, registry=registry, description=description, owner=owner, query=query
    )
    click.echo(f"created {folder}")
    if query:
        click.echo(f"next: edit query.sql, warehouse_sample.json and the builder, check the "
                   f"query with `registry datasets extract {name} --dry-run`, then "
                   f"`registry datasets build {name}`")
    else:
        click.echo(f"next: edit it, then `registry datasets build {name}`")


@datasets.command("add")
@click.argument("name")
# The value is parsed by add_dataset (registry.build.adopt.parse_source), the one home of that rule.
@click.option("--from", "source", required=True, metavar="PATH|MODULE:CLASS",
              help="A builder file or TFDS dataset folder (PATH[:CLASS]), or an importable "
              "class (package.module:Class).")
@_registry_option
def datasets_add(name: str, source: str, registry: str | None) -> None:
    """Bring in an existing TFDS builder as it is, as dataset NAME.

    \b
    A builder file or TFDS dataset folder is copied into datasets/NAME/ (its
    module becomes <leaf>_dataset_builder.py; PATH:CLASS names the class when
    it is not Builder or the only one); an importable class is wrapped by a
    module whose class Builder inherits it whole. The dataset joins the build
    stage of dvc.yaml with no params, and gets a card stub if it has none.
    VERSION and RELEASE_NOTES may be inherited; TFDS's manual_dir is its raw
    data folder (raw/, or raw_path: registry datasets raw NAME PATH).
        registry datasets add image_classification/dummy_mnist \\
            --from tensorflow_datasets.testing.test_utils:DummyMnist
        registry datasets add text_generation/poems --from ~/src/poems/
        registry datasets add products/product_a/views --from views.py:ViewsData
        registry datasets build image_classification/dummy_mnist
        registry datasets release image_classification/dummy_mnist --notes "As it is."
    Python: registry.add_dataset(NAME, SOURCE)
    """
    from registry.datasets import add_dataset

    folder = add_dataset(name, source, registry=registry)
    click.echo(f"added {folder}")
    click.echo(f"next: `registry datasets build {name}`, then commit datasets/{name}/, dvc.yaml "
               "and params.yaml")


@cli.group(context_settings=CONTEXT_SETTINGS)
def models() -> None:
    """Share, find, load and promote pretrained models (the model zoo).

    \b
    A model is a folder models/<name>/ with a card (README.md, YAML front matter:
    task, architecture, framework, base_model, datasets with exact versions,
    metrics, owner, license, weights) and its weights, tracked by DVC. Releases
    are tags <name>@vX.Y.Z; stages are tags <name>#<stage>#<n> (as GTO writes).
    """


def _model_rows(summaries: Sequence[Any]) -> list[tuple[str, ...]]:
    return [
        (
            s.name,
            s.latest or "-",
            ", ".join(f"{k}={v}" for k, v in s.stages.items()) or "-",
            str(s.card.get("task") or "-"),
            str(s.card.get("architecture") or "-"),
            str(s.card.get("framework") or "-"),
            str(s.card.get("owner") or "-"),
            ("deprecated" if s.deprecated else "") + _yanked_mark(s.yanked),
        )
        for s in summaries
    ]


_MODEL_HEADER = ("NAME", "LATEST", "STAGES", "TASK", "ARCHITECTURE", "FRAMEWORK", "OWNER", "")


@models.command("list")
@_registry_option
@_json_option
def models_list(registry: str | None, as_json: bool) -> None:
    """List every model with its latest version, stages and card fields.

    \b
    Python: registry.list_models()
    """
    from registry.models import list_models

    summaries = list_models(registry=registry)
    if as_json:
        _print_json([asdict(s) for s in summaries])
    elif not summaries:
        click.echo("No models yet. Create one with: registry models new <name>")
    else:
        _print_table(_MODEL_HEADER, _model_rows(summaries))


@models.command("search")
@click.option("--task", help="Card task, e.g. image-classification.")
@click.option("--architecture", help="Card architecture, e.g. resnet18 or bert-base.")
@click.option("--framework", help="Card framework: keras, tensorflow, pytorch ...")
@click.option("--dataset", metavar="REF", help="Trained on it: NAME, NAME:1.* or NAME:1.2.0.")
@click.option("--base-model", metavar="REF", help="Fine-tuned from it: NAME or NAME:<version>.")
@click.option("--owner", help="Card owner.")
@click.option("--language", help="Card language of the data, e.g. ja.")
@click.option("--stage", help="Has a version in this stage (e.g. prod).")
@click.option(
    "--sort",
    default="name",
    show_default=True,
    help="name, latest (newest release first) or a metric name (highest first).",
)
@click.argument("text", nargs=-1)
@_registry_option
@_json_option
def models_search(
    text: tuple[str, ...], registry: str | None, as_json: bool, sort: str, **filters: Any
) -> None:
    """Find models by card fields, training data, base model, stage or free TEXT.

    \b
    Who has a BERT on our Japanese text?
        registry models search --architecture bert-base --language ja
        registry models search bert japanese
    What was trained on any 1.x of ad_clicks?
        registry models search --dataset products/product_a/ad_clicks:1.*
    Python: registry.search_models(task=..., dataset=..., text=...)
    """
    from registry.models import search_models

    found = search_models(
        **filters, text=" ".join(text) or None, sort=sort, registry=registry
    )
    if as_json:
        _print_json([asdict(s) for s in found])
    elif not found:
        click.echo("no model matches", err=True)
    else:
        _print_table(_MODEL_HEADER, _model_rows(found))


@models.command("info")
@click.argument("ref")
@_registry_option
@_json_option
def models_info(ref: str, registry: str | None, as_json: bool) -> None:
    """Describe a model version: card, versions, stages and lineage.

    \b
    REF is NAME, NAME:1.2.0, NAME:1.* or NAME@stage. Reads Git only.
    Python: registry.model_info(REF)
    """
    from registry.models import model_info

    info = model_info(ref, registry=registry)
    summary = _lineage_summary(info.name, info.version, "model", registry)
    if as_json:
        _print_json({**info.to_dict(), "lineage_summary": summary})
        return
    title = f"{info.name} {info.version}" if info.version else f"{info.name} (unreleased)"
    click.secho(title + ("  [deprecated]" if info.deprecated else ""), bold=True)
    if info.tag:
        click.echo(f"tag: {info.tag}  commit: {info.commit}")
    click.echo(f"versions: {', '.join(info.versions) or 'none released'}")
    _print_yanked(info.version, info.yanked, info.purged)
    if info.stages:
        click.echo("stages: " + ", ".join(f"{k}={v}" for k, v in info.stages.items()))
    for key in ("task", "architecture", "framework", "base_model", "owner", "license", "weights"):
        if info.card.get(key):
            click.echo(f"{key}: {info.card[key]}")
    if info.card.get("datasets"):
        click.echo("datasets: " + ", ".join(map(str, info.card["datasets"])))
    if info.card.get("metrics"):
        click.echo("metrics: " + ", ".join(f"{k}={v}" for k, v in info.card["metrics"].items()))
    if info.lineage:
        click.echo(f"lineage: commit {info.lineage.get('commit')}, params "
                   f"{info.lineage.get('params') or {}}, training run "
                   f"{info.lineage.get('training_run') or '-'}")
    _echo_reproduced(info.reproduced)
    _echo_lineage_summary(summary, f"{info.name}:{info.version}")
    click.echo("\n" + info.body.strip())


@models.command("new")
@click.argument("name")
@_registry_option
@click.option("--task", help="What the model does, e.g. image-classification.")
@click.option("--architecture", help="e.g. resnet18, bert-base, small-cnn.")
@click.option("--framework", default="keras", show_default=True, help="keras, pytorch, ...")
@click.option("--owner", help="Who to ask about it (team or person).")
def models_new(name: str, registry: str | None, **fields: Any) -> None:
    """Write the card template of a new model (models/NAME/README.md).

    \b
    Fill in the front matter, then add weights (registry models add NAME --from
    FILE) or make them the output of a dvc.yaml stage.
    Python: registry.new_model(NAME)
    """
    from registry.models import new_model

    path = new_model(name, registry=registry, **fields)
    click.echo(f"created {path}")


@models.command("add")
@click.argument("name")
# The path is checked by add_model (SourceNotFoundError), the one home of that rule.
@click.option("--from", "source", required=True, type=click.Path(), help="Weights file or folder.")
@_registry_option
@click.option("--force", is_flag=True, help="Replace weights the model already has.")
def models_add(name: str, source: str, registry: str | None, force: bool) -> None:
    """Bring in weights trained elsewhere: copy them into models/NAME/ and track them with DVC.

    \b
    Writes the card template if the model has none. Commit the card and the .dvc
    file afterwards. Python: registry.add_model(NAME, PATH)
    """
    from registry.models import add_model

    path = add_model(name, source, registry=registry, force=force)
    click.echo(f"added {path} (tracked by DVC); commit models/{name}/ and dvc.yaml")


@models.command("release")
@click.argument("name")
@_registry_option
@click.option("--version", "version", help="The version to release, X.Y.Z.")
@click.option("--bump", type=click.Choice(["major", "minor", "patch"]), help="Bump the latest.")
@click.option("--no-push", is_flag=True, help="Do not push the tag to the Git remote.")
@_release_remote_options
@_bump_override_options("a version that understates a signature change")
def models_release(
    name: str,
    registry: str | None,
    version: str | None,
    bump: str | None,
    no_push: bool,
    remote: str | None,
    allow_unshared_remote: bool,
    allow_understated_bump: bool,
    reason: str | None,
) -> None:
    """Release a model version: check card and weights, push the bytes, then tag.

    \b
    Refuses a card with missing fields, training datasets that are not released
    versions, or weights not up to date. The first release defaults to 1.0.0.
    A card whose input/output `signature` differs from the previous release's
    needs a MAJOR version (exit 19 otherwise; --allow-understated-bump
    --reason TEXT releases it anyway, recorded in the tag). A changed
    architecture or framework, or a training dataset's new major version,
    only suggests MAJOR: a warning, recorded in the tag.
    The tag message records the lineage (datasets, base model, commit, params).
    The Git remote's tags are fetched first; the bytes go to the DVC remote the
    committed .dvc/config names (see 'registry datasets release --help').
    Python: registry.release_model(NAME, bump="minor")
    """
    from registry.models import release_model

    release = release_model(
        name,
        version=version,
        bump=bump,  # type: ignore[arg-type]
        registry=registry,
        push=not no_push,
        remote=remote,
        allow_unshared_remote=allow_unshared_remote,
        allow_understated_bump=allow_understated_bump,
        reason=reason,
    )
    click.echo(f"released {release.name} {release.version} (tag {release.tag})")


@models.command("promote")
@click.argument("ref")
@click.argument("stage")
@_registry_option
@click.option("--no-push", is_flag=True, help="Do not push the tag to the Git remote.")
def models_promote(ref: str, stage: str, registry: str | None, no_push: bool) -> None:
    """Put a released version (REF = NAME:X.Y.Z) in STAGE (dev, staging, prod ...).

    \b
    Writes GTO's tag NAME#STAGE#N; `registry.load_model("NAME@STAGE")` then loads it.
    Python: registry.promote_model(REF, STAGE)
    """
    from registry.models import promote_model

    click.echo(f"tagged {promote_model(ref, stage, registry=registry, push=not no_push)}")


@models.command("demote")
@click.argument("name")
@click.argument("stage")
@_registry_option
@click.option("--no-push", is_flag=True, help="Do not push the tag to the Git remote.")
def models_demote(name: str, stage: str, registry: str | None, no_push: bool) -> None:
    """Take STAGE away from the version of NAME that holds it (GTO's NAME#STAGE!#N).

    \b
    Python: registry.demote_model(NAME, STAGE)
    """
    from registry.models import demote_model

    click.echo(f"tagged {demote_model(name, stage, registry=registry, push=not no_push)}")


@models.command("deprecate")
@click.argument("name")
@_registry_option
@click.option("--no-push", is_flag=True, help="Do not push the tag to the Git remote.")
def models_deprecate(name: str, registry: str | None, no_push: bool) -> None:
    """Mark a whole model deprecated (GTO's NAME@deprecated#N); versions stay loadable.

    \b
    Python: registry.deprecate_model(NAME)
    """
    from registry.models import deprecate_model

    click.echo(f"tagged {deprecate_model(name, registry=registry, push=not no_push)}")


def _yank_options(f: Any) -> Any:
    """The options both yank commands take (the first listed is the first in --help)."""
    f = _json_option(f)
    f = click.option(
        "--dry-run", "-n", is_flag=True,
        help="With --purge: show what would be deleted and kept; tag and delete nothing.",
    )(f)
    f = click.option(
        "--purge", is_flag=True,
        help="Also delete its bytes from the DVC remote and the caches (personal data, a legal "
        "request), except objects a live version or branch uses; a later load says it was "
        "purged. Asked with the yank: a yanked version cannot be purged later.",
    )(f)
    f = click.option("--no-push", is_flag=True, help="Do not push the tag to the Git remote.")(f)
    f = _registry_option(f)
    f = click.option("--yes", is_flag=True, help="Do not ask: a yank cannot be undone.")(f)
    return click.option("--reason", help="Why (required): shown to everyone who pins it.")(f)


@datasets.command("yank")
@click.argument("ref")
@_yank_options
def datasets_yank(ref: str, **options: Any) -> None:
    """Yank a dataset version (REF = NAME:X.Y.Z): GTO's NAME@vX.Y.Z!, final.

    \b
    NAME and NAME:1.* never resolve to it again; NAME:X.Y.Z still loads with a
    warning (refused with REGISTRY_STRICT=1). Prints the model versions trained
    on it and their stages. To undo, release the same data as a new PATCH version.
    --purge also deletes its .dir object and every file it lists from the DVC
    remote, the cache, the clone's .dvc/cache and a writable shared cache; a load
    of it then fails (exit 16). A failed delete: run the same command again.
    Python: registry.yank_dataset(REF, reason=..., purge=False)
    """
    _yank("dataset", ref, **options)


@models.command("yank")
@click.argument("ref")
@_yank_options
def models_yank(ref: str, **options: Any) -> None:
    """Yank a model version (REF = NAME:X.Y.Z): GTO's NAME@vX.Y.Z!, final.

    \b
    NAME and NAME:1.* never resolve to it again; NAME:X.Y.Z and a stage that
    holds it still load with a warning (refused with REGISTRY_STRICT=1). Prints
    the model versions fine-tuned from it. To undo, release it as a new PATCH version.
    --purge also deletes its weights from the DVC remote and the caches.
    Python: registry.yank_model(REF, reason=..., purge=False)
    """
    _yank("model", ref, **options)


def _yank(
    kind: Kind,
    ref: str,
    *,
    reason: str | None,
    yes: bool,
    registry: str | None,
    no_push: bool,
    purge: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Check the reason, confirm, yank, and print the tag and the affected models."""
    from registry.errors import ConfirmationRequiredError
    from registry.release import check_reason

    check_reason(kind, ref, reason)
    command = f"registry {kind}s yank {ref} --reason ..." + (" --purge" if purge else "")
    what = "yanking and purging" if purge else "yanking"
    if not (yes or dry_run):
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise ConfirmationRequiredError(f"{what} {ref}", command)
        gone = " and delete its bytes" if purge else ""
        click.confirm(
            f"Yank{gone} {ref}? This cannot be undone (GTO cannot re-register a version)",
            abort=True,
        )
    from registry.withdraw import yank_dataset, yank_model

    withdraw = yank_dataset if kind == "dataset" else yank_model
    result = withdraw(
        ref, reason=reason or "", registry=registry, push=not no_push, purge=purge,
        dry_run=dry_run,
    )
    if as_json:
        _print_json(result.to_dict())
        return
    if dry_run:
        click.echo(f"dry run: would tag {result.tag}: {result.name} {result.version} is yanked")
    else:
        click.echo(
            f"tagged {result.tag}: {result.name} {result.version} is yanked ({result.reason})"
        )
    if result.purge is not None:
        _print_purge(result.purge)
    if not result.affected:
        click.echo("no released model was trained on it")
        return
    click.echo("trained on it (retrain, or demote from their stages):")
    for a in result.affected:
        stages = f"  stages: {', '.join(a.stages)}" if a.stages else ""
        click.echo(f"  {a.name} {a.version}  (via {a.via}){stages}")


def _print_purge(purge: Any) -> None:
    """What a purge deleted (or would), what it kept and why, and the caches."""
    verb = "would delete" if purge.dry_run else "deleted"
    again = " (finishing the purge its tag records)" if purge.resumed else ""
    click.echo(
        f"purge{again}: {verb} {len(purge.deleted)} objects "
        f"({_size(sum(purge.deleted.values()))}) from DVC remote {purge.remote}"
    )
    if purge.kept:
        click.echo(f"kept {len(purge.kept)} objects that a live version or branch still uses:")
        for md5, user in purge.kept.items():
            click.echo(f"  {md5}  used by {user}")
    for line in purge.caches:
        click.echo(f"  {line}")
    click.echo(f"{'would free' if purge.dry_run else 'freed'} {_size(purge.freed_bytes)} in all")


@models.command("pull")
@click.argument("ref")
@_registry_option
@click.option(
    "--jobs", "-j", type=click.IntRange(min=1), help="Parallel downloads (folder weights)."
)
def models_pull(ref: str, registry: str | None, jobs: int | None) -> None:
    """Fetch a released model's weights into the cache and print their path.

    \b
    Shows a progress bar while downloading; a folder of weights (a SavedModel)
    is fetched file by file in parallel, as `datasets pull` does.
    Python: registry.load_model(REF) (the path), registry.load_keras_model(REF)
    """
    from registry.models import load_model

    with _progress_bar(f"pulling {ref}", enabled=sys.stderr.isatty()) as bar:
        path = load_model(ref, registry=registry, progress=bar, jobs=jobs)
    click.echo(str(path))


def _lineage_summary(
    name: str, version: str | None, kind: str, registry: str | None
) -> dict[str, Any] | None:
    """One step of lineage up and down for ``info`` (``None`` for an unreleased work tree)."""
    from registry.lineage import lineage_summary

    if version is None:
        return None
    return lineage_summary(f"{name}:{version}", kind, registry=registry)  # type: ignore[arg-type]


def _echo_lineage_summary(summary: dict[str, Any] | None, ref: str) -> None:
    """The few lines of lineage that ``info`` shows."""
    if summary is None:
        return
    click.echo("\nlineage:")
    for entry in summary["upstream"]:
        click.echo(f"  {entry['relation']} {entry['ref']}" + _hash_and_stages(entry))
    for entry in summary["downstream"]:
        click.echo(f"  used by {entry['ref']} ({entry['relation']})" + _hash_and_stages(entry))
    if not summary["upstream"] and not summary["downstream"]:
        click.echo("  nothing recorded upstream, nothing made from it yet")
    for line in summary["missing"]:
        click.echo(f"  missing: {line}")
    click.echo(f"  (the whole graph: registry lineage {ref} [--down])")


def _hash_and_stages(entry: dict[str, Any]) -> str:
    """`` md5 H [prod]`` for a lineage entry, as far as known."""
    text = f" md5 {entry['hash']}" if entry.get("hash") else ""
    return text + (f" [{', '.join(entry['stages'])}]" if entry.get("stages") else "")


@cli.command("lineage")
@click.argument("ref")
@click.option(
    "--down",
    is_flag=True,
    help="Downstream: every model trained on this dataset version or fine-tuned from this "
    "model version, transitively, with the stages each holds now (default: upstream).",
)
@click.option(
    "--depth",
    type=click.IntRange(min=0),
    metavar="N",
    help="Follow at most N edges from REF (default: all the way).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "mermaid", "dot"]),
    default="text",
    show_default=True,
    help="text: an indented tree; mermaid: a flowchart for Markdown; dot: Graphviz "
    "(registry lineage REF --format dot | dot -Tsvg > lineage.svg).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Fail on a model release whose lineage record is missing or malformed, instead of "
    "reading its card and saying what is missing.",
)
@_registry_option
@_json_option
def lineage(
    ref: str, down: bool, depth: int | None, fmt: str, strict: bool, registry: str | None,
    as_json: bool,
) -> None:
    """Show what a dataset or model version was made of, or (--down) what was made from it.

    \b
    Upstream of a model version: the dataset versions it was trained on
    (with their DVC hashes), its base model and that model's upstream, the
    commit, params, training run (and its page where $MLFLOW_TRACKING_URI is
    a server), compute backend and strategy, training settings.
    Upstream of a dataset version: the builder's commit, its params and the
    raw inputs its build stage depended on (dvc.lock at the tag).

    \b
    A dataset version is wrong? Find what it affects:
        registry lineage products/product_a/ad_clicks:1.2.0 --down
    Everything is read from Git (tags, dvc.lock, cards); MLflow is not needed.
    A release made before lineage was recorded in full shows what can be read
    and says what is missing.

    \b
    Python: registry.get_lineage(REF, direction="up" | "down", depth=N)
    """
    from registry.lineage import get_lineage

    graph = get_lineage(
        ref, "down" if down else "up", depth, strict=strict, registry=registry
    )
    if as_json:
        _print_json(graph.to_dict())
    elif fmt == "mermaid":
        click.echo(graph.to_mermaid())
    elif fmt == "dot":
        click.echo(graph.to_dot())
    else:
        click.echo(graph.to_text())


@cli.group(context_settings=CONTEXT_SETTINGS)
def mlflow() -> None:
    """Mirror training runs, releases and stages into MLflow (Git and DVC stay the truth).

    \b
    Where: --tracking-uri, $MLFLOW_TRACKING_URI (a tracking server), else the
    local SQLite store mlflow/mlflow.db in the registry clone.
    """


@mlflow.command("sync")
@_registry_option
@click.option(
    "--tracking-uri",
    metavar="URI",
    help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///<clone>/mlflow/mlflow.db).",
)
@_json_option
def mlflow_sync(registry: str | None, tracking_uri: str | None, as_json: bool) -> None:
    """Replay pending runs and mirror every model release and stage into MLflow.

    \b
    Each released version becomes a registered model version (name: the model
    name with / as .), linked to its training run where that run is in the
    tracking store (the others are listed), each stage an alias (prod -> that
    version); aliases of stages no longer held are deleted. Safe to rerun: a
    second sync changes nothing. Safe to run from several clones at once: on
    a tracking server one sync at a time holds a lease in the store (exit 7
    after 10 minutes of waiting for another).
    Python: registry.tracking.sync()
    """
    from registry.tracking import sync

    report = sync(registry=registry, tracking_uri=tracking_uri)
    if as_json:
        _print_json(report.to_dict())
        return
    for line in report.actions:
        click.echo(line)
    for item in report.unlinked:
        click.echo(
            f"version {item['model']} {item['version']}: its training run {item['training_run']} "
            "is not in the tracking store; mirrored without the link (a later sync adds it)"
        )
    click.echo(
        f"synced to {report.tracking_uri}: {report.replayed} runs replayed, "
        f"{report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.deleted} deleted, {len(report.unlinked)} without their run"
    )


@cli.group(context_settings=CONTEXT_SETTINGS)
def remote() -> None:
    """Where released bytes live: set and check the registry's DVC remote.

    \b
    The embedded default is a local folder (.dvc-storage). A lab moves to a
    Google Cloud Storage bucket with one command, then commits .dvc/config:
        registry remote set gs://my-lab-registry/dvc
        registry remote check --write
    Credentials come from `gcloud auth application-default login` or
    $GOOGLE_APPLICATION_CREDENTIALS (a key file outside the repository); they
    are never written to .dvc/config, params.yaml, MLflow or logs.
    """


def _echo_remote(status: Any, as_json: bool, verb: str) -> None:
    if as_json:
        _print_json(status.to_dict())
        return
    default = " (default)" if status.default else ""
    click.echo(f"{verb} DVC remote {status.name!r}{default}: {status.url}")
    click.echo(f"credentials: {status.credentials}")


@remote.command("set")
@click.argument("url")
@_registry_option
@click.option("--name", "-n", help="Remote name (default: gcs for gs:// URLs, else storage).")
@click.option(
    "--endpoint-url",
    metavar="URL",
    help="Another Cloud Storage endpoint: an emulator (http://127.0.0.1:4443) or a private one.",
)
@click.option(
    "--anonymous", is_flag=True, help="Use no credentials (a public bucket, or an emulator)."
)
@click.option(
    "--local",
    is_flag=True,
    help="Write .dvc/config.local (this clone only) instead of the committed .dvc/config.",
)
@_json_option
def remote_set(
    url: str,
    registry: str | None,
    name: str | None,
    endpoint_url: str | None,
    anonymous: bool,
    local: bool,
    as_json: bool,
) -> None:
    """Make URL (gs://BUCKET/PREFIX, or any DVC remote) the default remote.

    \b
    Then commit .dvc/config, so that every clone, `registry` loader and
    `dvc import` of the registry uses it, and copy earlier releases there:
    `dvc fetch -r OLD --all-tags && dvc push -r NAME --all-tags`. Check
    access with `registry remote check --write`.
    Python: registry.remotes.set_remote(URL)
    """
    from registry.remotes import set_remote

    status = set_remote(
        url,
        registry=registry,
        name=name,
        endpoint_url=endpoint_url,
        anonymous=anonymous,
        local=local,
    )
    _echo_remote(status, as_json, "set")
    if not as_json:
        where = ".dvc/config.local" if local else ".dvc/config (commit it)"
        click.echo(f"written to {where}")


@remote.command("gc")
@_registry_option
@click.option("--remote", "remote_name", metavar="NAME", help="DVC remote (default: the default).")
@click.option("--delete", is_flag=True, help="Delete them (default: only list them).")
@_json_option
def remote_gc(registry: str | None, remote_name: str | None, delete: bool, as_json: bool) -> None:
    """List the objects on the DVC remote that no tag or branch uses; --delete removes them.

    \b
    Kept: every object of a released version (live, staged, or yanked but not
    purged: a pin still loads it) and every output at a branch head. Listed:
    leftovers of a purge that failed part way, pushes never released ...
    A remote that cannot be read fails with nothing deleted.
    Python: registry.cache_admin.gc_remote(delete=False)
    """
    from registry.cache_admin import gc_remote

    report = gc_remote(delete=delete, remote=remote_name, registry=registry)
    if as_json:
        _print_json(asdict(report))
        return
    for md5, size in report.objects.items():
        click.echo(f"{md5}  {_size(size)}")
    verb = "deleted" if report.deleted else "unreferenced"
    click.echo(
        f"{len(report.objects)} objects {verb} on DVC remote {report.remote} "
        f"({_size(report.total_bytes)})" + ("" if delete else "; --delete removes them")
    )


@remote.command("check")
@_registry_option
@click.option("--remote", "remote_name", metavar="NAME", help="DVC remote (default: the default).")
@click.option("--write", is_flag=True, help="Also check that releases can be pushed.")
@_json_option
def remote_check(
    registry: str | None, remote_name: str | None, write: bool, as_json: bool
) -> None:
    """Check credentials, bucket and permissions of the DVC remote.

    \b
    Lists the remote's folder; with --write also writes and deletes a small
    probe object, as `registry datasets release` does before uploading.
    Exits 2 on missing or refused credentials, 7 on a missing bucket or an
    unreachable server.
    Python: registry.remotes.check_remote()
    """
    from registry.remotes import check_remote

    status = check_remote(registry=registry, remote=remote_name, write=write)
    _echo_remote(status, as_json, "ok:")
    if not as_json:
        click.echo("readable" + (" and writable" if write else ""))


@cli.group(context_settings=CONTEXT_SETTINGS)
def cache() -> None:
    """Check and trim the local cache of released bytes.

    
    The cache ($REGISTRY_CACHE_DIR or ~/.cache/lab-registry) holds every
    version loaded on this machine, shared by all registries and projects.
    Every load re-hashes a version's small metadata files (dataset_info.json,
    features.json, label files) and repairs a corrupt one; data shards are
    checked by size and time only. After a disk scare, or if a load reports
    'corrupted record', re-hash everything:
        registry cache verify
    To free space, remove what no current release of this registry uses:
        registry cache gc --dry-run
        registry cache gc
    """


@contextmanager
def _count_bar(label: str, enabled: bool) -> Iterator[Any]:
    """A rich progress bar on stderr, fed by ``(done, total)`` item counts."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    with Progress(
        *columns, TimeRemainingColumn(), console=Console(stderr=True), transient=True
    ) as progress:
        task = progress.add_task(label, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


@cache.command("verify")
@click.argument("refs", nargs=-1, metavar="[REF]...")
@_registry_option
@click.option(
    "--all",
    "all_objects",
    is_flag=True,
    help="Also re-hash every object in the cache, whichever registry it came from.",
)
@_json_option
def cache_verify(
    refs: tuple[str, ...], registry: str | None, all_objects: bool, as_json: bool
) -> None:
    """Re-hash cached files and repair the corrupt ones from the remote.

    
    Checks the cached versions of REFs (datasets or models: NAME, NAME:1.2.0,
    NAME@prod), or of every release of the registry; nothing that is not
    cached is downloaded. A corrupt file is replaced from the shared cache or
    the DVC remote. Prints how many files were checked, repaired and (--all)
    removed; exits 8 if something stays corrupt.
    Python: registry.cache_admin.verify_cache([REF, ...])
    """
    from registry.cache_admin import verify_cache
    from registry.errors import CorruptArtifactError

    with _count_bar("verifying", enabled=not as_json and sys.stderr.isatty()) as bar:
        report = verify_cache(refs, all_objects=all_objects, registry=registry, progress=bar)
    if as_json:
        _print_json({**asdict(report), "ok": report.ok})
    else:
        click.echo(
            f"checked {report.checked}, repaired {report.repaired}, "
            f"removed {report.removed}, unrepairable {len(report.unrepairable)}"
        )
        for line in report.unrepairable:
            click.echo(f"  {line}", err=True)
    if not report.ok:
        raise CorruptArtifactError(
            f"{len(report.unrepairable)} cached version(s) stay corrupt or incomplete "
            f"(first: {report.unrepairable[0]}); fix what the line says (e.g. the remote's "
            "access), then run 'registry cache verify' again"
        )


@cache.command("gc")
@_registry_option
@click.option("--dry-run", "-n", is_flag=True, help="Show what would be removed, remove nothing.")
@_json_option
def cache_gc(registry: str | None, dry_run: bool, as_json: bool) -> None:
    """Remove cached versions no current tag of the registry uses.

    
    Keeps every released version of this registry's datasets and models, and
    removes other snapshots and objects, plus what killed downloads left in
    tmp/. The cache is shared by every registry used on this machine: their
    versions are removed too (and fetched again when next loaded), so try
    --dry-run first. Anything another process holds a lock on is kept.
    Python: registry.cache_admin.gc_cache()
    """
    from registry.cache_admin import gc_cache

    report = gc_cache(dry_run=dry_run, registry=registry)
    if as_json:
        _print_json(asdict(report))
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {report.snapshots} snapshot(s), {report.objects} object(s) and "
        f"{report.leftovers} leftover(s): {_size(report.freed_bytes)}"
        + (f"; {report.held} kept, in use by another process" if report.held else "")
    )


@cli.group(context_settings=CONTEXT_SETTINGS)
def compute() -> None:
    """Train in the cloud: Vertex AI custom jobs on GPUs or TPUs, and fetch their weights.

    \b
    The job comes from `compute:` in params.yaml (backend: vertex, and under
    vertex: project, region, buckets, machine_type, accelerator_type, image_uri,
    command, args ...). Credentials come from `gcloud auth application-default
    login` or $GOOGLE_APPLICATION_CREDENTIALS, never from params.yaml.
    """


@compute.command("package")
@click.argument("model")
@_registry_option
@click.option(
    "--out",
    metavar="DIR",
    type=click.Path(file_okay=False),
    help="Where to write the build context (replaced whole; default .registry/vertex/image).",
)
def compute_package(model: str, registry: str | None, out: str | None) -> None:
    """Write the container build context of the image that trains MODEL on Vertex AI.

    \b
    A Dockerfile FROM compute.vertex.image_uri (the prebuilt TensorFlow GPU/TPU
    image) that installs this repository's package and src/, entry command
    `python -m src.zoo.train`, REGISTRY_COMMIT the commit of that code (the
    newest that changed it; none, with a warning, if it has uncommitted
    changes); no .git, data or credentials. Prints the image
    (compute.vertex.image_repository/lab-registry-train:TAG, TAG a hash of the
    context) and the `gcloud builds submit` line that builds it; `compute submit`
    then runs that image.
    Python: registry.compute.package(MODEL, out=DIR)
    """
    from registry.compute import package

    built = package(model, registry=registry, out=out)
    if built.uncommitted:
        click.secho(
            f"warning: the image's code has uncommitted changes ({', '.join(built.uncommitted)}), "
            "so its jobs' lineage names no commit; commit, then package again",
            fg="yellow", err=True,
        )
    click.echo(f"context: {built.context}")
    click.echo(f"image: {built.image}")
    click.echo(f"build it: {built.build_command}")


@compute.command("submit")
@click.argument("model")
@_registry_option
@click.option(
    "--dry-run", is_flag=True, help="Print the job specification as JSON; submit nothing."
)
@click.option(
    "--job-id",
    metavar="ID",
    help="Name of this run (default: the UTC time, YYYYmmdd-HHMMSS); the job is MODEL-ID and "
    "writes under OUTPUT_URI/MODEL/ID.",
)
def compute_submit(model: str, registry: str | None, dry_run: bool, job_id: str | None) -> None:
    """Submit a Vertex AI custom job that trains MODEL, as compute.vertex describes it.

    \b
    Without --dry-run, compute.backend must be vertex, and the job's image must be
    the one `registry compute package` produced for this code (--dry-run warns).
    Prints the job's resource name and console link; the job runs on without this
    command.
    Python: registry.compute.job_spec(MODEL), registry.compute.check_image(spec),
    registry.compute.submit(spec)
    """
    from registry.compute import check_image, job_spec, submit
    from registry.errors import UnpackagedImageError

    spec = job_spec(model, registry=registry, job_id=job_id, for_submit=not dry_run)
    if dry_run:
        try:
            check_image(spec, registry=registry)
        except UnpackagedImageError as e:
            click.secho(f"warning: {e}", fg="yellow", err=True)
        _print_json(spec)
        return
    job = submit(spec, registry=registry)
    click.echo(f"submitted {job.name}")
    click.echo(f"output: {job.output_dir}")
    click.echo(f"console: {job.console_url}")


@compute.command("fetch")
@click.argument("model")
@click.argument("job", metavar="JOB_ID_OR_URI")
@_registry_option
@_json_option
def compute_fetch(model: str, job: str, registry: str | None, as_json: bool) -> None:
    """Bring a finished Vertex AI job's weights into models/MODEL/, ready to release.

    \b
    JOB_ID_OR_URI: the job id given to (or printed by) `compute submit`, found at
    <compute.vertex.output_uri>/MODEL/<id>/model, or the job's gs:// output folder.
    The output must be complete (the job writes registry-job.json last, listing
    each file's MD5) and its training datasets released here, with the same bytes.
    The weights are tracked by DVC; the card gets datasets, base_model, metrics and
    training; training.json, training.csv and job.json (the job's lineage) are
    written beside it. Then commit and run `registry models release MODEL`.
    Python: registry.compute.fetch(MODEL, JOB_ID_OR_URI)
    """
    from registry.compute import fetch

    fetched = fetch(model, job, registry=registry)
    if as_json:
        _print_json(fetched.to_dict())
        return
    accuracy = fetched.metrics.get("accuracy")
    scored = f", test accuracy {accuracy}" if accuracy is not None else ""
    click.echo(
        f"fetched {fetched.model} from {fetched.uri}: {fetched.weights} ({fetched.tracked}), "
        f"trained on {', '.join(fetched.datasets)}{scored}"
    )
    click.echo(f"next: commit, then 'registry models release {fetched.model}'")


def _traceback_from_environment() -> bool:
    """``REGISTRY_TRACEBACK``: show the traceback of an error (a boolean, like ``-v``'s)."""
    from registry.config import parse_bool

    return parse_bool(
        os.environ.get("REGISTRY_TRACEBACK", ""), "the environment variable REGISTRY_TRACEBACK"
    )


def _exit_with(error: RegistryError) -> NoReturn:
    """Print a registry error as its one line and exit with its code."""
    click.secho(f"error: {error}", fg="red", err=True)
    sys.exit(error.exit_code)


# -- rebuild and reproduce ----------------------------------------------------------------------

_RECORD_HELP = (
    "Append the outcome (date, versions of Python, TF, TFDS, Beam, DVC and the registry, equal "
    "or what differs, who) to the version's lineage: a Git note under refs/notes/registry on "
    "the tagged commit, pushed to the Git remote (and with every later release)."
)
_VERIFY_HELP = (
    "Compare with the released hash (the default); --no-verify only rebuilds."
)


@datasets.command("rebuild")
@click.argument("ref")
@click.option("--verify/--no-verify", default=True, help=_VERIFY_HELP)
@click.option(
    "--output",
    "-o",
    metavar="DIR",
    help="Keep the rebuilt folder here (a new or empty folder); default: a temporary "
    "folder, removed afterwards.",
)
@click.option("--record", is_flag=True, help=_RECORD_HELP)
@_registry_option
@_json_option
def datasets_rebuild(
    ref: str, verify: bool, output: str | None, record: bool, registry: str | None,
    as_json: bool,
) -> None:
    """Rebuild an old dataset version from its tag and check it against the release.

    \b
    Checks the tagged commit's dataset folder and pipeline files out into a
    temporary folder (git archive), puts its raw inputs there at their recorded
    hashes (from the cache or the DVC remote), builds it with that commit's
    builder and params, and compares the DVC hash
    of the result with the released one. The released bytes are never touched.
    A yanked version is rebuilt with a warning; a purged one is refused (exit 16);
    a raw input gone from the remote is exit 17. Exit 0 when equal, 1 when not:
    then the report names the files that differ and what differs in the data
    (schema, counts, examples, statistics: 'registry datasets diff' of the
    release and the rebuild).

    \b
    Examples:
        registry datasets rebuild products/product_a/ad_clicks:1.0.0
        registry datasets rebuild image_classification/digits:1.0.0 --output /tmp/d1 --record
    Python: registry.rebuild_dataset(REF, output=None, record=False)
    """
    from registry import console
    from registry.reproduce import rebuild_dataset

    name = ref.split(":", 1)[0].split("@", 1)[0]
    with console.step("rebuild", name, root=registry) as line:
        result = rebuild_dataset(
            ref, verify=verify, output=output, record=record, registry=registry
        )
        line.done(
            "not compared" if result.equal is None else "equal" if result.equal else "DIFFERS"
        )
    if as_json:
        _print_json(result.to_dict())
    else:
        _echo_rebuild(result)
    if result.equal is False:
        sys.exit(1)


def _echo_rebuild(result: Any) -> None:
    """The text report of a rebuild: hashes, what differs, where the folder is."""
    click.echo(f"{result.name} {result.version} ({result.tag}, commit {result.commit[:12]})")
    if result.yanked:
        click.echo(f"YANKED ({result.yanked}): rebuilt to check what was released")
    click.echo(f"released: {result.released}")
    click.echo(f"rebuilt:  {result.rebuilt}")
    if result.equal is None:
        click.echo("not compared (--no-verify)")
    elif result.equal:
        click.echo("equal: the version rebuilds byte for byte from its tag")
    else:
        click.echo(f"DIFFERS: {len(result.differences)} file(s)")
        for d in result.differences:
            size = "" if d.rebuilt_size is None else f"  {_size(d.rebuilt_size)}"
            click.echo(f"  {d.change:<8} {d.path}{size}")
        if result.diff is not None:
            click.echo("\nwhat differs in the data (registry datasets diff):")
            click.echo(textwrap.indent(result.diff.to_text().rstrip("\n"), "  "))
    for gap in result.unchecked:
        click.echo(f"not checked: {gap}")
    if result.output is not None:
        click.echo(f"rebuilt folder: {result.output}")
    else:
        click.echo("rebuilt folder: removed (--output DIR keeps it)")
    if result.recorded:
        click.echo(f"recorded in the lineage of {result.tag} (git notes, refs/notes/registry)")


@models.command("reproduce")
@click.argument("ref")
@click.option("--verify/--no-verify", default=True, help=_VERIFY_HELP)
@click.option("--record", is_flag=True, help=_RECORD_HELP)
@_registry_option
@_json_option
def models_reproduce(
    ref: str, verify: bool, record: bool, registry: str | None, as_json: bool
) -> None:
    """Retrain a model version from its tag and check the weights against the release.

    \b
    Checks the tagged commit out into a temporary git worktree, puts its
    training datasets (the released versions its lineage names) and its base
    model's weights there, runs the train@NAME command dvc.lock records at that
    commit, and compares the weights' md5 and the training metrics with the
    release. Exit 0 when equal, 1 when not.

    \b
    Examples:
        registry models reproduce digits-cnn:1.0.0
        registry models reproduce digits-parity@staging --record
    Python: registry.reproduce_model(REF, record=False)
    """
    from registry import console
    from registry.reproduce import reproduce_model

    name = ref.split(":", 1)[0].split("@", 1)[0]
    with console.step("reproduce", name, root=registry) as line:
        result = reproduce_model(ref, verify=verify, record=record, registry=registry)
        line.done(
            "not compared" if result.equal is None else "equal" if result.equal else "DIFFERS"
        )
    if as_json:
        _print_json(result.to_dict())
    else:
        click.echo(f"{result.name} {result.version} ({result.tag}, commit {result.commit[:12]})")
        if result.yanked:
            click.echo(f"YANKED ({result.yanked}): retrained to check what was released")
        click.echo(f"released weights: {result.released}")
        click.echo(f"retrained:        {result.rebuilt}")
        if result.equal is not None:
            click.echo("equal: the weights retrain bit for bit from the tag" if result.equal
                       else "DIFFERS:")
        for difference in result.differences:
            click.echo(f"  {difference}")
        for gap in result.unchecked:
            click.echo(f"not checked: {gap}")
        if result.recorded:
            click.echo(f"recorded in the lineage of {result.tag} (git notes, refs/notes/registry)")
    if result.equal is False:
        sys.exit(1)


def _echo_reproduced(reproduced: dict[str, Any] | None) -> None:
    """``last reproduced: DATE, equal (who)`` for ``info``, when a note records one."""
    if reproduced:
        outcome = "equal" if reproduced.get("equal") else "differs"
        who = f" ({reproduced['by']})" if reproduced.get("by") else ""
        click.echo(f"last reproduced: {str(reproduced.get('date'))[:10]}, {outcome}{who}")


@cli.group(context_settings=CONTEXT_SETTINGS)
def catalog() -> None:
    """A static website of every dataset and model: browse the registry offline.

    \b
    Cards, versions with notes and who released them, stage history, features,
    splits, statistics with charts, example previews (of versions in this
    machine's cache), how to load, metrics, and each model's lineage graph.
    Built from Git alone; it opens from file://, any web server or a bucket,
    with no network at view time:
        registry catalog build site/ && xdg-open site/index.html
    Publish it:
        gcloud storage rsync --recursive site/ gs://BUCKET/catalog
    """


@catalog.command("build")
@click.argument("out_dir", type=click.Path(file_okay=True, dir_okay=True, writable=False))
@_registry_option
@_json_option
def catalog_build(out_dir: str, registry: str | None, as_json: bool) -> None:
    """Write the catalog into OUT_DIR (rewriting only files that change).

    \b
    OUT_DIR gets index.html (search and filters work from file://), a page
    per dataset and per model, catalog.json (everything the pages show, for
    scripts), search-index.js, catalog.css, catalog.js and assets/ (charts,
    thumbnails). A second build with nothing changed writes nothing.
    Python: registry.catalog.build("site")
    """
    from registry.catalog import build

    report = build(out_dir, registry=registry)
    if as_json:
        _print_json({"out_dir": str(report.out_dir), "written": report.written,
                     "unchanged": report.unchanged, "removed": report.removed,
                     "datasets": report.datasets,
                     "models": report.models})
        return
    click.echo(
        f"{report.datasets} datasets, {report.models} models: {len(report.written)} files "
        f"written, {report.unchanged} unchanged, {len(report.removed)} removed in "
        f"{report.out_dir}"
    )
    click.echo(f"open {report.out_dir / 'index.html'}")


@catalog.command("serve")
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port on 127.0.0.1 (0: any free one).")
@click.option("--open", "open_browser", is_flag=True, help="Open the home page in a browser.")
@_registry_option
def catalog_serve(port: int, open_browser: bool, registry: str | None) -> None:
    """Build the catalog into a temporary folder and serve it on 127.0.0.1 (Ctrl-C stops).

    \b
    For a quick look; to publish, build into a folder and copy it to a bucket
    or static host instead.
    Python: registry.catalog.serve(port=8000)
    """
    from registry.catalog import serve

    serve(port=port, open_browser=open_browser, registry=registry,
          ready=lambda url: click.echo(f"serving the catalog at {url} (Ctrl-C stops)"))


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI; registry errors print as one line, never a traceback unless asked."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        show_traceback = "--traceback" in args or _traceback_from_environment()
    except RegistryError as e:
        _exit_with(e)
    try:
        cli.main(args=args, prog_name="registry", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except RegistryError as e:
        if show_traceback:
            # The traceback as asked, and still the error's own exit code (a script's `case` on
            # it must not change with --traceback); the error is the SystemExit's cause.
            import traceback

            traceback.print_exc()
            raise SystemExit(e.exit_code) from e
        _exit_with(e)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as e:
        if show_traceback:
            raise
        click.secho(
            f"error: unexpected {type(e).__name__}: {e} (rerun with --traceback and report it)",
            fg="red",
            err=True,
        )
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
