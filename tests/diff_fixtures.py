"""A small keyed dataset, built with Beam and released as 1.0.0, for the diff and semver tests.

``demo/shop`` is the ``registry datasets new`` scaffold (CSV rows ``id,text,label``) with the id
kept as a feature and declared the key (``KEY_FEATURE = "id"``). The template is made once per
session through the real CLI, DVC and Beam; each test gets a private copy of the clone and of its
DVC remote (``keyed_shop``), edits rows, rebuilds and diffs or releases.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import commit_all, hermetic_env, registry_tree

NAME = "demo/shop"
FOLDER = f"datasets/{NAME}"
BUILDER = f"{FOLDER}/shop_dataset_builder.py"
ROWS = f"{FOLDER}/dummy_data/shop.csv"


@dataclass(frozen=True)
class Shop:
    """A clone with ``demo/shop`` 1.0.0 released (no Git remote) and its local DVC remote."""

    repo: Path
    storage: Path

    def rows(self) -> str:
        """The raw CSV rows the builder reads."""
        return (self.repo / ROWS).read_text()

    def write_rows(self, text: str) -> None:
        """Replace the raw CSV rows."""
        (self.repo / ROWS).write_text(text)

    def edit_builder(self, old: str, new: str) -> None:
        """Replace ``old`` (which must occur) with ``new`` in the builder."""
        path = self.repo / BUILDER
        source = path.read_text()
        assert old in source, f"{old!r} not in the builder"
        path.write_text(source.replace(old, new))

    def set_version(self, version: str, note: str = "Changed.") -> None:
        """Set the builder's VERSION, with a RELEASE_NOTES entry for it."""
        self.edit_builder('VERSION = tfds.core.Version("1.0.0")',
                          f'VERSION = tfds.core.Version("{version}")')
        self.edit_builder('"1.0.0": "Initial release.",',
                          f'"1.0.0": "Initial release.",\n        "{version}": "{note}",')


def _keyed(source: str) -> str:
    """The scaffold's builder with ``id`` a feature and the key."""
    source = source.replace(
        'return [(key, {"text": text, "label": label})]',
        'return [(key, {"id": key, "text": text, "label": label})]',
    )
    source = source.replace(
        '"text": tfds.features.Text(),',
        '"id": tfds.features.Text(),\n                    "text": tfds.features.Text(),',
    )
    return re.sub(
        r'(    VERSION = tfds.core.Version\("1.0.0"\)\n)',
        r'    KEY_FEATURE = "id"\n\1',
        source,
    )


def build_shop_template(base: Path) -> Shop:
    """Make, in the empty folder ``base``, a clone with ``demo/shop`` built and released."""
    env = hermetic_env(base / "home")
    repo, storage = base / "clone", base / "storage"

    def run(*args: str) -> None:
        done = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"

    storage.mkdir()
    registry_tree(repo)
    run("git", "init", "-q", "-b", "main")
    run("dvc", "remote", "add", "--force", "--default", "storage", "../storage")
    run("registry", "datasets", "new", NAME)
    builder = repo / BUILDER
    builder.write_text(_keyed(builder.read_text()))
    run("git", "add", "-A")
    run("git", "commit", "-q", "-m", f"Add {NAME}, keyed by id")
    run("registry", "datasets", "build", NAME)
    run("git", "add", "-A")
    run("git", "commit", "-q", "-m", f"Build {NAME} 1.0.0")
    run("registry", "datasets", "release", NAME)
    return Shop(repo, storage)


def copy_shop(template: Shop, dest: Path) -> Shop:
    """A private copy of the template (the remote is ``../storage``: it follows the copy)."""
    shutil.copytree(template.repo.parent, dest, symlinks=True,
                    ignore=shutil.ignore_patterns("home"))
    return Shop(dest / "clone", dest / "storage")


def rebuild(shop: Shop, message: str) -> None:
    """Build ``demo/shop`` again through DVC and commit everything."""
    import registry

    registry.build_dataset([NAME], registry=shop.repo)
    commit_all(shop.repo, message)


_TEMPLATES: dict[str, Shop] = {}


def shop_template(tmp_path_factory: object) -> Shop:
    """The template, made once per test process (the diff and semver tests share it)."""
    if "shop" not in _TEMPLATES:
        base = tmp_path_factory.mktemp("keyed-shop")  # type: ignore[attr-defined]
        _TEMPLATES["shop"] = build_shop_template(base)
    return _TEMPLATES["shop"]
