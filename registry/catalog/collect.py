"""Everything the catalog shows, read from Git alone.

One ``git for-each-ref`` lists every tag (who made it, when), one more reads every tag's message
(release notes, lineage records); cards, ``build_info.json`` and ``TAGS.txt`` are read at each
artifact's latest release through the repository's one long-lived ``git cat-file`` process. No
data bytes are fetched: example previews (:mod:`registry.catalog.previews`) are read only from
versions already in the local content cache.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

from registry import layout
from registry.datasets import (
    DatasetSummary,
    builder_metadata,
    configs_of,
    dataset_summaries,
    tag_notes,
)
from registry.grammar import StageTag, parse_tag, parse_version, tag_artifact
from registry.lineage import UNRELEASED, Lineage, LineageReader
from registry.models import model_summaries, read_lineage, released_card
from registry.repo.git import TagRef
from registry.repo.session import Session
from registry.repo.tags import Release
from registry.tracking import recorded_run_link

__all__ = ["SCHEMA", "collect"]

#: The version of ``catalog.json``'s layout.
SCHEMA = 1
# How many releases the home page lists as "recently released".
_RECENT = 10
# Markdown a one-line description drops: a link keeps its text, emphasis and code marks go.
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"\*\*|__|`")
_OWNER = re.compile(r"\*\*Owner\*\*:\s*([^\n]+?)\.?\s*(?:\*\*|$)", re.MULTILINE)


def collect(session: Session, *, models: bool = True) -> dict[str, Any]:
    """Every dataset and model of the registry, as plain data (what ``catalog.json`` holds).

    Args:
        session: The registry (refreshed by the caller).
        models: Read the models too (``False``: a dataset search, which needs none).

    Returns:
        ``{"schema", "datasets", "models", "counts", "recent"}``; each artifact a dict of the
        fields its page shows, sorted by name.

    Example:
        >>> data = collect(open_session("."))  # doctest: +SKIP
        >>> [d["name"] for d in data["datasets"]]  # doctest: +SKIP
        ['image_classification/digits']
    """
    tags = {t.name: t for t in session.repo.tag_details()}  # who and when, for every tag
    messages = session.repo.tag_messages()
    _prefetch(session)
    reader = _Reader(session, tags, messages)
    # The listings on this session: its Git process has their files prefetched.
    datasets = [reader.dataset(s) for s in dataset_summaries(session)]
    found = [reader.model(s.name, s.card) for s in model_summaries(session)] if models else []
    _link_models(datasets, found)
    releases = [
        {"name": a["name"], "kind": a["kind"], "version": v["version"], "date": v["date"],
         "by": v["by"]}
        for a in [*datasets, *found] for v in a["versions"] if not v["yanked"]
    ]
    recent = sorted(releases, key=lambda r: (r["date"], r["name"]), reverse=True)[:_RECENT]
    return {
        "schema": SCHEMA,
        "datasets": datasets,
        "models": found,
        "counts": {
            "datasets": len(datasets),
            "models": len(found),
            "releases": len(releases),
        },
        "recent": recent,
    }


def _prefetch(session: Session) -> None:
    """Read, in one ``git cat-file`` run, every file the pages need at a release: each model
    version's card, and each artifact's latest files (card, builder, build_info.json ...)."""
    index = session.index()
    datasets, models = set(session.known_datasets()), set(session.known_models())
    wanted = []
    for name in index.every_name():
        releases = [*index.releases(name), *index.yanked(name)]
        if name not in datasets:  # a model's, or one gone from the tree: either kind
            wanted += [(r.commit, layout.card_file(name)) for r in releases]
        latest = index.latest(name)
        if latest is not None and name not in models:
            folder = layout.dataset_dir(name)
            wanted += [(latest.commit, path) for path in (
                layout.builder_file(name), layout.build_info_file(name), f"{folder}/README.md",
                f"{folder}/TAGS.txt", f"{folder}/CITATIONS.bib",
            )]
    session.repo.prefetch(wanted)


class _Reader:
    """Reads one artifact at a time from the tags listed once and the cat-file process."""

    def __init__(self, session: Session, tags: dict[str, TagRef], messages: dict[str, str]) -> None:
        self.session = session
        self.index = session.index()
        self.tags = tags
        self.messages = messages
        self.lineage = LineageReader(session, messages)
        self.by_artifact: dict[str, list[TagRef]] = defaultdict(list)
        for ref in tags.values():
            self.by_artifact[tag_artifact(ref.name) or ""].append(ref)

    def _text(self, release: Release | None, path: str) -> str:
        """A file at the release's commit, else in the work tree (unreleased); ``""`` if none."""
        if release is not None:
            data = self.session.repo.read_file(release.commit, path)
            return "" if data is None else data.decode("utf-8", errors="replace")
        root = self.session.repo.work_tree
        if root is not None and (root / path).is_file():
            return (root / path).read_text(encoding="utf-8", errors="replace")
        return ""

    def _versions(self, name: str, notes: dict[str, str]) -> list[dict[str, Any]]:
        """Every release of ``name``, yanked ones included, newest first, with who and when."""
        every = sorted(
            [*self.index.releases(name), *self.index.yanked(name)],
            key=lambda r: r.version, reverse=True,
        )
        out = []
        for release in every:
            ref = self.tags.get(release.tag)
            message = self.messages.get(release.tag, "")
            version = str(release.version)
            out.append({
                "version": version,
                "tag": release.tag,
                "commit": release.commit,
                "date": ref.created if ref else "",
                "by": ref.tagger if ref else "",
                "notes": notes.get(version) or tag_notes(message),
                "yanked": release.yanked.reason if release.yanked else None,
                "yanked_by": release.yanked.by if release.yanked else None,
            })
        return out

    def stage_history(self, name: str) -> list[dict[str, Any]]:
        """Who put which version in which stage, or took it out, and when: every stage tag of
        ``name`` in the order it was made (its counter)."""
        by_commit = {
            r.commit: str(r.version)
            for r in [*self.index.releases(name), *self.index.yanked(name)]
        }
        events = []
        for ref in self.by_artifact.get(name, []):
            tag = parse_tag(ref.name)
            if isinstance(tag, StageTag):
                events.append((tag.counter, {
                    "stage": tag.stage,
                    "action": "demoted" if tag.unassign else "promoted",
                    "version": by_commit.get(ref.commit),
                    "by": ref.tagger,
                    "date": ref.created,
                    "tag": ref.name,
                }))
        return [event for _, event in sorted(events, key=lambda e: e[0], reverse=True)]

    def dataset(self, summary: DatasetSummary) -> dict[str, Any]:
        """A dataset's page data: card, versions, features, splits, statistics, how to load;
        this clone's own build when it is not a released version (``workspace``)."""
        name = summary.name
        latest = self.index.latest(name)
        folder = layout.dataset_dir(name)
        build_text = self._text(latest, layout.build_info_file(name))
        try:
            build = json.loads(build_text) if build_text else {}
        except ValueError:
            build = {}
        configs = configs_of(build)
        if configs:
            # The default config (the first) describes the dataset, as ``datasets info`` does.
            build = {**build, **next(iter(configs.values()))}
        notes = builder_metadata(self._text(latest, layout.builder_file(name)))[1]
        card = self._text(latest, f"{folder}/README.md")
        tags = [
            line.split("#", 1)[0].strip()
            for line in self._text(latest, f"{folder}/TAGS.txt").splitlines()
            if line.split("#", 1)[0].strip()
        ]
        splits = {
            split: {"examples": int(s.get("num_examples", 0)), "bytes": int(s.get("num_bytes", 0))}
            for split, s in sorted((build.get("splits") or {}).items())
        }
        owner = _OWNER.search(card)
        return {
            "kind": "dataset",
            "name": name,
            "description": _description(card),
            "task": _tag_values(tags, "ml.task.") or name.split("/", 1)[0].replace("_", "-"),
            "language": _tag_values(tags, "content.language."),
            "data_type": _tag_values(tags, "content.data-type."),
            "owner": owner.group(1).strip() if owner else "",
            "tags": tags,
            "latest": str(latest.version) if latest else None,
            "stages": {s: str(r.version) for s, r in sorted(self.index.stages(name).items())},
            "stage_history": self.stage_history(name),
            "deprecated": self.index.is_deprecated(name),
            "versions": self._versions(name, notes),
            "card": card,
            "citation": self._text(latest, f"{folder}/CITATIONS.bib"),
            "features": build.get("features") or {},
            "splits": splits,
            "examples": sum(s["examples"] for s in splits.values()),
            "size_bytes": sum(s["bytes"] for s in splits.values()),
            "statistics": build.get("statistics") or None,
            "configs": list(configs),
            "models": [],
            "workspace": _workspace_build(summary),
        }

    def model(self, name: str, card_meta: dict[str, Any]) -> dict[str, Any]:
        """A model's page data: card, versions with metrics, stage history, lineage."""
        latest = self.index.latest(name)
        body = ""
        if latest is not None:
            card = released_card(self.session, latest)
            body = card.body if card else ""
        elif self.session.repo.work_tree is not None:
            text = self._text(None, layout.card_file(name))
            front_matter = text.startswith("---") and text.count("---") >= 2
            body = text.split("---", 2)[2] if front_matter else text
        versions = self._versions(name, {})
        for entry in versions:
            record = read_lineage(self.messages.get(entry["tag"], "")) or {}
            found = self.index.find(name, parse_version(entry["version"]))
            card_then = released_card(self.session, found) if found else None
            meta = card_then.meta if card_then else {}
            entry["metrics"] = dict(meta.get("metrics") or {}) if meta else {}
            used = record.get("datasets") or {}
            entry["datasets"] = [f"{n}:{v}" for n, v in sorted(used.items())]
            entry["base_model"] = record.get("base_model")
            entry["training_run"] = record.get("training_run")
            # Its page on the tracking server that logged it, as the release recorded it.
            entry["training_run_url"] = recorded_run_link(record)
        base = card_meta.get("base_model")
        up, down = self.lineage.graphs("model", name)
        return {
            "kind": "model",
            "name": name,
            "description": _description(body) or str(card_meta.get("intended_use") or ""),
            "task": str(card_meta.get("task") or ""),
            "architecture": str(card_meta.get("architecture") or ""),
            "framework": str(card_meta.get("framework") or ""),
            "language": [str(card_meta["language"])] if card_meta.get("language") else [],
            "owner": str(card_meta.get("owner") or ""),
            "license": str(card_meta.get("license") or ""),
            "tags": [str(t) for t in card_meta.get("tags") or []],
            "datasets": [str(d) for d in card_meta.get("datasets") or []],
            "base_model": str(base) if base else None,
            "weights": str(card_meta.get("weights") or ""),
            "card_metrics": dict(card_meta.get("metrics") or {}),
            "latest": str(latest.version) if latest else None,
            "stages": {s: str(r.version) for s, r in sorted(self.index.stages(name).items())},
            "stage_history": self.stage_history(name),
            "deprecated": self.index.is_deprecated(name),
            "versions": versions,
            "card": body,
            # Fine-tuned from any of its versions: the down graph's edges into its nodes.
            "children": list(dict.fromkeys(
                e.source.split(":", 1)[0] for e in down.edges
                if e.relation == "fine_tuned_from" and down.nodes[e.target].name == name
            )),
            "lineage": _graph(up, down),
            "workspace": self._model_build(name, card_meta) if latest is None else None,
        }

    def _model_build(self, name: str, card_meta: dict[str, Any]) -> dict[str, Any] | None:
        """An unreleased model's weights built in the work tree (``make run``): its card's
        metrics; ``None`` when no weights are there."""
        root = self.session.repo.work_tree
        weights = str(card_meta.get("weights") or "")
        if root is None or not weights or not (root / layout.model_dir(name) / weights).is_file():
            return None
        return {"label": UNRELEASED, "metrics": dict(card_meta.get("metrics") or {})}


def _workspace_build(summary: DatasetSummary) -> dict[str, Any] | None:
    """This clone's build of a dataset (``datasets list``'s ``built``), when it is no released
    version: ``{"label", "version", "examples"}``; else ``None``."""
    built = summary.built
    if not built or built["version"] in summary.versions or built["version"] in summary.yanked:
        return None
    return {"label": UNRELEASED, "version": built["version"], "examples": built["examples"]}


def _graph(up: Lineage, down: Lineage) -> dict[str, Any]:
    """A model's lineage graph for its page, from :class:`registry.lineage.LineageReader`'s
    two graphs: datasets and models (raw inputs left out), each edge from what was made of it
    to what was made, with the relation."""
    nodes: dict[str, dict[str, Any]] = {}
    edges = set()
    for graph in (up, down):
        for node_id, node in graph.nodes.items():
            if node.kind in ("dataset", "model") and node_id not in nodes:
                nodes[node_id] = {"kind": node.kind, "name": node.name, "version": node.version,
                                  "released": node.tag is not None, "yanked": node.yanked}
        edges |= {(e.target, e.source, e.relation) for e in graph.edges
                  if e.source in nodes and e.target in nodes}
    return {"root": up.root, "nodes": nodes, "edges": sorted(edges)}


def _link_models(datasets: list[dict[str, Any]], models: list[dict[str, Any]]) -> None:
    """Fill each dataset's ``models`` (trained on it), from the models' cards (the latest
    release's, or the work tree's)."""
    by_dataset = {d["name"]: d for d in datasets}
    for model in models:
        for ref in model["datasets"]:
            dataset = by_dataset.get(ref.split(":", 1)[0])
            if dataset is not None and model["name"] not in dataset["models"]:
                dataset["models"].append(model["name"])


def _tag_values(tags: list[str], prefix: str) -> Any:
    """The values of TFDS tags with ``prefix`` (``ml.task.`` is one value, the others a list)."""
    values = [t.removeprefix(prefix) for t in tags if t.startswith(prefix)]
    if prefix == "ml.task.":
        return values[0] if values else ""
    return values


def _description(markdown: str) -> str:
    """A card's first paragraph of prose (no heading, list or front matter), on one line."""
    paragraph: list[str] = []
    for line in markdown.splitlines():
        stripped = line.strip()
        if not stripped:
            if paragraph:
                break
            continue
        if stripped.startswith(("#", "-", "*", "|", "```", "<", "---")) and not paragraph:
            continue
        paragraph.append(stripped)
    text = _LINK.sub(r"\1", " ".join(paragraph))
    return _EMPHASIS.sub("", text)
