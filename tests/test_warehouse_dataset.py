"""A warehouse dataset end to end, as a researcher runs it: products/product_b/search_sessions
snapshots its reviewed SQL from a local BigQuery emulator, builds, releases with the snapshot's
hash in its lineage, and rebuilds exactly from that snapshot after the tables changed and with
no warehouse reachable. Every error a user can hit on the way exits with its own code."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from registry.errors import (
    BadQueryError,
    ConfigError,
    CredentialsError,
    ScanLimitError,
    TableNotFoundError,
    WarehousePermissionError,
    WarehouseUnreachableError,
)
from tests.conftest import PROJECT_ROOT, cli_ok, cli_raises, commit_all, git, registry_clone
from tests.test_warehouse import _emulator_or_skip

NAME = "products/product_b/search_sessions"
FOLDER = f"datasets/{NAME}"
SNAPSHOT = f"{FOLDER}/snapshot"

pytestmark = pytest.mark.slow


@pytest.fixture
def clone(tmp_path: Path, chdir: Callable[[Path], None]) -> Path:
    """A registry clone holding search_sessions alone, with a bare origin and a local remote."""
    _emulator_or_skip()
    clone = registry_clone(tmp_path, keep=NAME)
    chdir(clone)
    return clone


def _lock(clone: Path) -> dict:
    return yaml.safe_load((clone / "dvc.lock").read_text())["stages"]


def _snapshot_md5(lock: dict) -> str:
    return lock[f"extract@{NAME}"]["outs"][0]["md5"]


def _set(clone: Path, *path: str, value: object) -> None:
    params = yaml.safe_load((clone / "params.yaml").read_text())
    node = params
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture
def closed_port() -> str:
    """An endpoint where nothing listens: a warehouse that is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_snapshot_build_release_and_rebuild_without_the_warehouse(
    clone: Path, closed_port: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = json.loads(cli_ok("datasets", "extract", NAME, "--dry-run", "--json"))
    assert "WHERE start_time >= TIMESTAMP(DATE '2026-10-01')" in plan["sql"]
    assert plan["parameters"]["session_gap_minutes"] == "30" and not plan["needs_yes"]
    assert "local BigQuery emulator" in plan["warehouse"] and plan["estimate_bytes"] == 0

    out = cli_ok("datasets", "extract", NAME)
    assert "557 rows in 1 file(s)" in out and (clone / SNAPSHOT).is_dir()
    # The same rows give the same bytes: the hash the project's own dvc.lock records.
    project_lock = yaml.safe_load((PROJECT_ROOT / "dvc.lock").read_text())["stages"]
    assert _snapshot_md5(_lock(clone)) == _snapshot_md5(project_lock)
    assert "up to date" in cli_ok("datasets", "extract", NAME)

    assert "built: " + NAME in cli_ok("datasets", "build", NAME)
    commit_all(clone, "Extract and build search_sessions 1.0.0")
    git(clone, "push", "-q", "origin", "main")
    cli_ok("datasets", "release", NAME)
    snapshot_md5 = _snapshot_md5(_lock(clone))

    lineage = json.loads(cli_ok("lineage", f"{NAME}:1.0.0", "--json"))
    raw = next(node for node in lineage["nodes"] if node["id"] == SNAPSHOT)
    assert raw["hash"] == snapshot_md5
    assert raw["details"]["source"].startswith("the warehouse: query query.sql in the local")
    text = cli_ok("lineage", f"{NAME}:1.0.0")
    assert f"built_from {SNAPSHOT} (raw) md5 {snapshot_md5} extracted from the warehouse" in text
    assert "(extract@products/product_b/search_sessions) parameters end_date=2026-11-01" in text
    assert "warehouse.params.session_gap_minutes=30" in text  # the build's params, dotted
    extract = raw["details"]["extract"]
    assert extract["params"]["start_date"] == "2026-10-01"
    assert f"{FOLDER}/query.sql" in extract["files"]

    # The tables change (a day of new searches); a refresh takes them in.
    sample = clone / FOLDER / "warehouse_sample.json"
    tables = json.loads(sample.read_text())
    events = tables["tables"]["product_b.search_events"]["rows"]
    tables["tables"]["product_b.search_events"]["rows"] = events[: len(events) // 2]
    sample.write_text(json.dumps(tables))
    assert "rows in 1 file(s)" in cli_ok("datasets", "extract", NAME, "--refresh")
    assert _snapshot_md5(_lock(clone)) != snapshot_md5

    # 1.0.0 still rebuilds exactly: from its snapshot in the DVC remote, never from the
    # warehouse (down here: any query would fail), with no local copy of the snapshot left.
    shutil.rmtree(clone / SNAPSHOT)
    shutil.rmtree(clone / ".dvc" / "cache")
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", closed_port)
    out = cli_ok("datasets", "rebuild", f"{NAME}:1.0.0")
    assert "equal: the version rebuilds byte for byte from its tag" in out, out


def test_a_query_over_the_scan_limit_needs_yes(
    clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry.cloud.bq_emulator import BigQueryEmulator

    _set(clone, "registry", "max_query_gb", value=1)
    with BigQueryEmulator(dry_run_bytes=5_000_000_000) as emulator:
        emulator.load(clone / FOLDER / "warehouse_sample.json")
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", emulator.url or "")
        plan = json.loads(cli_ok("datasets", "extract", NAME, "--dry-run", "--json"))
        assert plan["needs_yes"] and plan["estimate_bytes"] == 5_000_000_000
        assert "BIGQUERY_EMULATOR_HOST" in plan["warehouse"]
        error = cli_raises(ScanLimitError, "datasets", "extract", NAME)
        assert "would scan 5.00 GB, over the limit of 1 GB" in str(error)
        assert not (clone / SNAPSHOT).exists()  # nothing ran
        assert "557 rows" in cli_ok("datasets", "extract", NAME, "--yes")
    _set(clone, "registry", "max_query_gb", value="lots")
    error = cli_raises(ConfigError, "datasets", "extract", NAME, "--refresh")
    assert "must be a number of GB" in str(error)


def test_every_warehouse_error_is_one_line_and_its_own_exit_code(
    clone: Path, closed_port: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    query = clone / FOLDER / "query.sql"
    good = query.read_text()

    query.write_text(good.replace("FROM sessions", "FROM sessionz", 1))
    error = cli_raises(TableNotFoundError, "datasets", "extract", NAME)
    assert "sessionz" in str(error) and str(error).startswith(f"{FOLDER}/query.sql: Not found")

    query.write_text("SELECT * FROM `Finance-Team.hr.salaries`")  # a project it may not see
    error = cli_raises(WarehousePermissionError, "datasets", "extract", NAME, "--dry-run")
    assert "roles/bigquery.jobUser" in str(error)

    lines = good.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("FROM sessions"))
    lines[at] = lines[at].replace("FROM", "FORM")
    query.write_text("\n".join(lines) + "\n")
    error = cli_raises(BadQueryError, "datasets", "extract", NAME)
    assert f"query.sql, line {at + 1}, column" in str(error) and "FORM sessions" in str(error)
    query.write_text(good)

    _set(clone, "datasets", NAME, "warehouse", "params", "session_gap_minutes", value=None)
    error = cli_raises(ConfigError, "datasets", "extract", NAME)
    assert "uses @session_gap_minutes but params.yaml gives no value" in str(error)

    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", closed_port)
    _set(clone, "datasets", NAME, "warehouse", "params", "session_gap_minutes", value=30)
    error = cli_raises(WarehouseUnreachableError, "datasets", "extract", NAME, "--refresh")
    assert f"{closed_port.removeprefix('http://')} cannot be reached" in str(error)
    assert not (clone / SNAPSHOT).exists()

    monkeypatch.delenv("BIGQUERY_EMULATOR_HOST")
    section = yaml.safe_load((clone / "params.yaml").read_text())["datasets"][NAME]["warehouse"]
    _set(clone, "datasets", NAME, "warehouse", value={"query": "query.sql", "table": "a.b"})
    assert "exactly one of query" in str(cli_raises(ConfigError, "datasets", "extract", NAME))
    _set(clone, "datasets", NAME, "warehouse", value={"query": "../query.sql"})
    assert "in the dataset folder" in str(cli_raises(ConfigError, "datasets", "extract", NAME))
    _set(clone, "datasets", NAME, "warehouse", value={**section, "sample": None})
    assert "no sample of tables" in str(cli_raises(ConfigError, "datasets", "extract", NAME))


def test_a_real_project_without_credentials_says_how_to_log_in(
    clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("BIGQUERY_EMULATOR_HOST", raising=False)
    _set(clone, "warehouse", "project", value="my-lab")
    error = cli_raises(CredentialsError, "datasets", "extract", NAME, "--dry-run")
    assert "BigQuery in project 'my-lab' needs Google Cloud credentials" in str(error)
    assert "gcloud auth application-default login" in str(error)


def test_a_dataset_without_a_warehouse_is_told_how_to_give_it_one(clone: Path) -> None:
    _set(clone, "datasets", NAME, value={"raw_path": "snapshot"})
    error = cli_raises(ConfigError, "datasets", "extract", NAME)
    assert "reads no warehouse: give it a warehouse section" in str(error)

