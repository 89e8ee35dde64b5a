"""Lineage both ways, from Git alone: what a version was made of, and what was made from it.

Upstream of a model version: the dataset versions it was trained on (with their DVC hashes), its
base model and that model's own upstream, the commit, params, training run, compute and training
settings, all from the lineage record in its release tag's message
(:func:`registry.repo.records.parse_lineage`). Upstream of a dataset version: the builder's
commit, the params and the raw inputs (with their hashes, and the URL of an import) its build
stage ran with, from the lineage record in its tag's message; for a release made before datasets
recorded one, from ``dvc.lock`` at the tagged commit (:func:`registry.datasets.build_inputs`).
Downstream: every model version trained on a dataset
version, or fine-tuned from a model version, transitively; all model release records are read
in one ``git for-each-ref`` (:meth:`registry.repo.git.GitRepo.tag_messages`). MLflow is never
needed. A release made before lineage was recorded in full is read as far as it goes; the
graph says what is missing instead of failing.

Example:
    >>> import registry
    >>> graph = registry.get_lineage("image_classification/digits:1.0.0", direction="down")
    >>> [n.name for n in graph.nodes.values() if n.kind == "model"]  # doctest: +SKIP
    ['digits-cnn', 'digits-parity']
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from registry import layout
from registry.cards import parse_card
from registry.datasets import build_inputs, released_data_hash
from registry.errors import (
    ArtifactNotFoundError,
    CardError,
    ConfigError,
    InvalidReferenceError,
    MalformedLineageError,
    NotBuiltError,
)
from registry.grammar import RegisterTag, Tag, parse_tag, tag_artifact
from registry.models import released_card
from registry.repo.records import LINEAGE_MARK, bump_override, parse_lineage
from registry.repo.session import Kind, RegistryArg, Session, as_reference, open_session
from registry.repo.tags import Release, TagIndex

__all__ = [
    "Lineage",
    "LineageEdge",
    "LineageNode",
    "LineageReader",
    "downstream",
    "get_lineage",
    "lineage_summary",
]

Direction = Literal["up", "down"]
# What a model release's lineage record holds (schema 2); older records lack some.
# What a dataset node says of a build without raw inputs.
_GENERATED = "generated: the builder generates its data or reads it from a package"
_MODEL_FIELDS = ("commit", "datasets", "base_model", "params", "training_run", "training",
                 "compute", "weights")


@dataclass
class LineageNode:
    """One version (or raw input) in a lineage graph.

    Attributes:
        kind: ``dataset``, ``model`` or ``raw`` (a build's input file or folder).
        name: The artifact name (for ``raw``: its path in the registry).
        version: The version (``None`` for raw inputs).
        tag: The release tag (``None`` where the version is not released here).
        commit: The tagged commit.
        hash: The DVC hash of its bytes: prepared data, weights, or the raw input.
        stages: The stages that point at this version now.
        details: What else is known: params, training run and its link, compute, training,
            builder files, raw inputs' origin.
        missing: What could not be read, one sentence each (an older release, a broken file).
        yanked: Why the version was yanked (``None``: it is not).
    """

    kind: str
    name: str
    version: str | None = None
    tag: str | None = None
    commit: str | None = None
    hash: str | None = None
    stages: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    yanked: str | None = None

    @property
    def id(self) -> str:
        """``name:X.Y.Z`` (a raw input: its path), unique in a graph."""
        return f"{self.name}:{self.version}" if self.version else self.name


@dataclass(frozen=True)
class LineageEdge:
    """``source`` was made from ``target``.

    Attributes:
        source: The derived node's id (a model, or a dataset for ``built_from``).
        target: The node it was made from.
        relation: ``trained_on`` (model -> dataset), ``fine_tuned_from`` (model -> base model)
            or ``built_from`` (dataset -> raw input).
    """

    source: str
    target: str
    relation: str


@dataclass
class Lineage:
    """A lineage graph around one version, upstream or downstream.

    Attributes:
        root: The id of the version asked about.
        direction: ``up`` (what it was made of) or ``down`` (what was made from it).
        nodes: Node id -> node, the root first.
        edges: Every edge, derived -> source, whatever the direction.
    """

    root: str
    direction: Direction
    nodes: dict[str, LineageNode] = field(default_factory=dict)
    edges: list[LineageEdge] = field(default_factory=list)

    def missing(self) -> list[str]:
        """What could not be read, as ``id: sentence`` lines."""
        return [f"{n.id}: {m}" for n in self.nodes.values() for m in n.missing]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``: root, direction, nodes (with their ids), edges, missing.

        Example:
            >>> get_lineage("digits-cnn:1.0.0").to_dict()["edges"]  # doctest: +SKIP
            [{'source': 'digits-cnn:1.0.0', 'target': 'image_classification/digits:1.0.0',
              'relation': 'trained_on'}]
        """
        return {
            "root": self.root,
            "direction": self.direction,
            "nodes": [{"id": n.id, **asdict(n)} for n in self.nodes.values()],
            "edges": [asdict(e) for e in self.edges],
            "missing": self.missing(),
        }

    def _next(self, node_id: str) -> list[LineageEdge]:
        """The edges that lead away from ``node_id`` in this graph's direction."""
        if self.direction == "up":
            return [e for e in self.edges if e.source == node_id]
        return [e for e in self.edges if e.target == node_id]

    def to_text(self) -> str:
        """An indented tree from the root, then the root's details and what is missing."""
        lines = [_describe(self.nodes[self.root])]
        seen = {self.root}

        def walk(node_id: str, indent: int) -> None:
            for edge in self._next(node_id):
                other = edge.target if self.direction == "up" else edge.source
                verb = edge.relation if self.direction == "up" else f"{edge.relation} it:"
                again = " (shown above)" if other in seen else ""
                lines.append(f"{'  ' * indent}{verb} {_describe(self.nodes[other])}{again}")
                if not again:
                    seen.add(other)
                    walk(other, indent + 1)

        walk(self.root, 1)
        root = self.nodes[self.root]
        lines += [f"{key}: {_short(value)}" for key, value in root.details.items()]
        lines += [f"missing: {line}" for line in self.missing()]
        return "\n".join(lines)

    def to_mermaid(self) -> str:
        """A Mermaid flowchart (``flowchart BT``: sources at the top), for Markdown."""
        ids = {node_id: f"n{i}" for i, node_id in enumerate(self.nodes)}
        lines = ["flowchart BT"]
        for node_id, node in self.nodes.items():
            label = _label(node).replace('"', "#quot;").replace("\n", "<br/>")
            lines.append(f'    {ids[node_id]}["{label}"]')
        for e in self.edges:
            lines.append(f"    {ids[e.source]} -->|{e.relation}| {ids[e.target]}")
        return "\n".join(lines)

    def to_dot(self) -> str:
        """A Graphviz digraph (``dot -Tsvg``): an arrow from each version to its sources."""
        shapes = {"model": "box", "dataset": "cylinder", "raw": "note"}
        lines = ["digraph lineage {", "  rankdir=BT;"]
        for node_id, node in self.nodes.items():
            label = _label(node).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            shape = shapes.get(node.kind, "ellipse")
            lines.append(f'  "{_dot_id(node_id)}" [label="{label}", shape={shape}];')
        for e in self.edges:
            lines.append(
                f'  "{_dot_id(e.source)}" -> "{_dot_id(e.target)}" [label="{e.relation}"];'
            )
        lines.append("}")
        return "\n".join(lines)


def _describe(node: LineageNode) -> str:
    """One line: id, kind, hash, stages."""
    parts = [node.id, f"({node.kind})"]
    if node.hash:
        parts.append(f"md5 {node.hash}")
    extract = node.details.get("extract")
    if isinstance(extract, dict):  # a warehouse snapshot: its query and parameters
        parts.append(f"extracted from {node.details.get('source')}")
        if extract.get("params"):
            parts.append(f"parameters {_short(extract['params'])}")
    elif node.details.get("source"):
        parts.append(f"imported from {node.details['source']}")
    if node.stages:
        parts.append("[" + ", ".join(node.stages) + "]")
    if node.yanked is not None:
        parts.append(f"YANKED ({node.yanked})")
    if node.tag is None and node.kind != "raw":
        parts.append("(not released here)")
    return " ".join(parts)


def _label(node: LineageNode) -> str:
    """A node's label in a diagram: id, then kind and stages."""
    extra = f"{node.kind}" + (f" [{', '.join(node.stages)}]" if node.stages else "")
    return f"{node.id}\n{extra}"


def _dot_id(node_id: str) -> str:
    return node_id.replace("\\", "\\\\").replace('"', '\\"')


def _short(value: Any, prefix: str = "") -> str:
    """A detail's value on one line; a nested mapping's keys dotted (``warehouse.query=...``)."""
    if isinstance(value, dict):
        return ", ".join(
            _short(v, f"{prefix}{k}.") if isinstance(v, dict) and v else f"{prefix}{k}={_short(v)}"
            for k, v in value.items()
        ) or "-"
    return "-" if value is None else str(value)


# -- reading -------------------------------------------------------------------------------------


def get_lineage(
    ref: str,
    direction: Direction = "up",
    depth: int | None = None,
    *,
    kind: Kind | None = None,
    strict: bool = False,
    registry: RegistryArg = None,
) -> Lineage:
    """The lineage of a dataset or model version: what it was made of, or what was made from it.

    Args:
        ref: A reference (``name``, ``name:1.2.0``, ``name:1.*``, ``name@prod``).
        direction: ``up``: datasets, base models (recursively), params, run, raw inputs.
            ``down``: every model trained on it or fine-tuned from it, transitively.
        depth: How many edges to follow from the version (``None``: all).
        kind: ``dataset`` or ``model`` to refuse the other kind; ``None``: whatever it is.
        strict: Raise instead of reporting a model release whose lineage record is missing or
            malformed.
        registry: A registry clone or Git URL; default from the configuration.

    Returns:
        The graph; ``missing()`` says what could not be read.

    Raises:
        InvalidReferenceError: If ``ref`` is malformed.
        ArtifactNotFoundError: If no dataset or model has that name.
        VersionNotFoundError: If no release matches.
        WrongKindError: If ``kind`` is given and the name is of the other kind.
        MalformedLineageError: With ``strict``, if a model release has no readable record.
        ConfigError: If ``direction`` or ``depth`` is invalid.

    Example:
        >>> graph = get_lineage("digits-parity@prod")  # doctest: +SKIP
        >>> print(graph.to_text())  # doctest: +SKIP
    """
    if direction not in ("up", "down"):
        raise ConfigError(f"lineage direction must be 'up' or 'down', not {direction!r}")
    if depth is not None and depth < 0:
        raise ConfigError(f"lineage depth must be 0 or more, not {depth}")
    session = open_session(registry)
    reference = as_reference(ref)
    index = session.index()
    found = kind or session.kind_of(reference.name, index)
    if found is None:
        models = ArtifactNotFoundError(reference.name, session.known_models(), kind="model")
        datasets = ArtifactNotFoundError(reference.name, session.known_datasets(), kind="dataset")
        raise models if models.suggestions or not datasets.suggestions else datasets
    release = session.resolve(reference, found, describe=True)
    walker = _Walker(session, session.index(), strict)
    if direction == "up":
        return walker.up(found, release, depth)
    return walker.down(found, release, depth)


def downstream(session: Session, kind: Kind, release: Release) -> Lineage:
    """Every model version made from ``release`` (as ``get_lineage(ref, "down")``), for a
    caller that holds the release already: a yank, whose version no longer resolves quietly.

    Example:
        >>> downstream(session, "dataset", release).nodes  # doctest: +SKIP
    """
    return _Walker(session, session.index(), False).down(kind, release, None)


def lineage_summary(
    ref: str, kind: Kind, *, registry: RegistryArg = None
) -> dict[str, Any]:
    """The short lineage section of ``registry models info`` / ``datasets info``: one step up
    and one step down.

    Returns:
        ``{"upstream": [...], "downstream": [...], "missing": [...]}``; each entry is
        ``{"relation", "ref", "hash", "stages"}``.

    Raises:
        As :func:`get_lineage`.
    """
    up = get_lineage(ref, "up", 1, kind=kind, registry=registry)
    down = get_lineage(ref, "down", 1, kind=kind, registry=registry)

    def entry(graph: Lineage, edge: LineageEdge, other: str) -> dict[str, Any]:
        node = graph.nodes[other]
        return {"relation": edge.relation, "ref": other, "hash": node.hash, "stages": node.stages}

    return {
        "upstream": [entry(up, e, e.target) for e in up.edges if e.source == up.root],
        "downstream": [entry(down, e, e.source) for e in down.edges if e.target == down.root],
        "missing": up.missing() + [m for m in down.missing() if m not in up.missing()],
    }


#: How the catalog and ``lineage`` name a model built in this clone but not released.
UNRELEASED = "unreleased (this clone's build)"


class LineageReader:
    """Many lineage graphs of one registry, every tag's message read once: the catalog draws
    one per model page.

    A released version's graphs are :func:`get_lineage`'s. A model of the work tree that is
    not released (a clone after ``make run``) has a workspace graph read from the work tree's
    cards: its datasets and base model (a released one's own lineage from its records, an
    unreleased one's from its work-tree card), and the work tree's unreleased models whose card
    names it as their base. Those nodes carry no tag and say ``UNRELEASED`` in ``details``.

    Example:
        >>> reader = LineageReader(open_session("."))  # doctest: +SKIP
        >>> up, down = reader.graphs("model", "digits-parity")  # doctest: +SKIP
        >>> sorted(up.nodes)  # doctest: +SKIP
        ['digits-cnn:1.0.0', 'digits-parity', 'image_classification/digits:1.0.0']
    """

    def __init__(self, session: Session, messages: dict[str, str] | None = None) -> None:
        """Args:
            session: The registry.
            messages: Every tag's message, if the caller has read them already.
        """
        self.session = session
        self._walker = _Walker(session, session.index(), False, messages)
        self._walker.ask_server = False  # the catalog is built offline
        self._cards: dict[str, dict[str, Any]] | None = None

    def _work_tree_cards(self) -> dict[str, dict[str, Any]]:
        """Each unreleased work-tree model's card front matter (read once; a card that does
        not parse is left out, as ``models list`` shows it blank)."""
        if self._cards is None:
            self._cards = {}
            root = self.session.repo.work_tree
            index = self._walker.index
            for name in self.session.known_models() if root is not None else []:
                if root is None or index.latest(name) is not None or index.yanked(name):
                    continue
                try:
                    text = (root / layout.card_file(name)).read_text(encoding="utf-8")
                    self._cards[name] = dict(parse_card(text, where=layout.card_file(name)).meta)
                except (OSError, CardError):
                    continue
        return self._cards

    def graphs(self, kind: Kind, name: str) -> tuple[Lineage, Lineage]:
        """The up graph of ``name``'s latest release and the down graph of all its releases
        (yanked ones left out); its work-tree build's when it has no release (a dataset's:
        just its node, its data has no lineage before a release).

        Returns:
            ``(up, down)``, both rooted at the latest release (``name:X.Y.Z``), else at
            ``name``; the down graph holds the work tree's unreleased models made from it too.
        """
        index = self._walker.index
        latest = index.latest(name)
        if latest is None:
            up = self._workspace_up(name) if kind == "model" else Lineage(name, "up")
            down = Lineage(name, "down")
            down.nodes[name] = up.nodes.get(name) or LineageNode(kind, name)
        else:
            up = self._walker.up(kind, latest, None)
            down = self._walker.down(kind, latest, None)
            for release in index.releases(name):
                if release.version != latest.version:
                    self._merge(down, self._walker.down(kind, release, None))
        self._workspace_down(down)
        return up, down

    def _node(self, graph: Lineage, kind: str, name: str, version: str | None) -> LineageNode:
        """A node of a workspace graph: the release's if ``name:version`` is released."""
        node_id = f"{name}:{version}" if version else name
        if node_id not in graph.nodes:
            release = self._walker._release(name, version) if version else None
            graph.nodes[node_id] = LineageNode(
                kind, name, version, release.tag if release else None,
                release.commit if release else None,
                details={} if release else {"build": UNRELEASED},
            )
        return graph.nodes[node_id]

    def _workspace_up(self, name: str) -> Lineage:
        """What an unreleased work-tree model was made of, from the work tree's cards; a
        released source's own upstream from its release."""
        graph = Lineage(name, "up")
        self._node(graph, "model", name, None)
        queue, seen = [(name, name)], set()
        cards = self._work_tree_cards()
        while queue:
            node_id, model = queue.pop(0)
            if node_id in seen or model not in cards:
                continue
            seen.add(node_id)
            card = cards[model]
            sources = [("trained_on", "dataset", str(d)) for d in card.get("datasets") or []]
            if card.get("base_model"):
                sources.append(("fine_tuned_from", "model", str(card["base_model"])))
            for relation, kind, text in sources:
                try:
                    ref = as_reference(text)
                except InvalidReferenceError:
                    graph.nodes[node_id].missing.append(f"its card's {text!r} is not a reference")
                    continue
                version = str(ref.version) if ref.version is not None else None
                source = self._node(graph, kind, ref.name, version)
                graph.edges.append(LineageEdge(node_id, source.id, relation))
                release = self._walker._release(ref.name, version) if version else None
                if release is not None:
                    self._merge(graph, self._walker.up(kind, release, None))  # type: ignore[arg-type]
                elif kind == "model":
                    queue.append((source.id, ref.name))  # its own work-tree card
        return graph

    def _workspace_down(self, graph: Lineage) -> None:
        """Add the work tree's unreleased models whose card names a model of ``graph`` as its
        base (any version), transitively."""
        cards = self._work_tree_cards()
        frontier = [n for n in graph.nodes.values() if n.kind == "model"]
        while frontier:
            node = frontier.pop(0)
            for name, card in sorted(cards.items()):
                base = str(card.get("base_model") or "")
                if not base or base.split(":", 1)[0] != node.name or name in graph.nodes:
                    continue
                child = self._node(graph, "model", name, None)
                graph.edges.append(LineageEdge(child.id, node.id, "fine_tuned_from"))
                frontier.append(child)

    @staticmethod
    def _merge(graph: Lineage, other: Lineage) -> None:
        """Add ``other``'s nodes (those not in ``graph``) and edges to ``graph``."""
        for node_id, node in other.nodes.items():
            graph.nodes.setdefault(node_id, node)
        graph.edges += [e for e in other.edges if e not in graph.edges]


class _Walker:
    """Builds one graph: nodes made once each, edges as they are found."""

    def __init__(
        self, session: Session, index: TagIndex, strict: bool,
        messages: dict[str, str] | None = None,
    ) -> None:
        self.session, self.index, self.strict = session, index, strict
        # Every tag's message, when a caller has read them all already (the catalog).
        self.messages = messages
        # Whether a training run's page may be asked of the tracking server (`registry
        # lineage`); the catalog, built offline, links only what a release recorded.
        self.ask_server = True
        self.graph: Lineage | None = None
        self._made_from: _MadeFrom | None = None

    def _node(self, kind: str, name: str, version: str, release: Release | None) -> LineageNode:
        """The graph's node for a version, made on first sight."""
        assert self.graph is not None
        node_id = f"{name}:{version}"
        if node_id not in self.graph.nodes:
            stages = [s for s, r in sorted(self.index.stages(name).items())
                      if release is not None and r.version == release.version]
            self.graph.nodes[node_id] = LineageNode(
                kind, name, version, release.tag if release else None,
                release.commit if release else None, stages=stages,
                yanked=release.yanked.reason if release and release.yanked else None,
            )
        return self.graph.nodes[node_id]

    def message(self, tag: str) -> str:
        """A tag's message (``""``: none), from the messages given if any."""
        if self.messages is not None:
            return self.messages.get(tag, "")
        return self.session.repo.tag_messages([tag]).get(tag, "")

    def _release(self, name: str, version: str) -> Release | None:
        """The release ``name`` ``version``, yanked or not (``None``: not released here)."""
        every = [*self.index.releases(name), *self.index.yanked(name)]
        return next((r for r in every if str(r.version) == version), None)

    # -- up ----------------------------------------------------------------------------------

    def up(self, kind: Kind, release: Release, depth: int | None) -> Lineage:
        """Breadth first from ``release`` through what each version was made of."""
        self.graph = Lineage(f"{release.name}:{release.version}", "up")
        queue: list[tuple[str, str, str, Release | None, int]] = [
            (kind, release.name, str(release.version), release, 0)
        ]
        expanded: set[str] = set()
        while queue:
            kind_, name, version, rel, level = queue.pop(0)
            node = self._node(kind_, name, version, rel)
            if node.id in expanded:
                continue
            expanded.add(node.id)
            full = depth is None or level < depth
            sources = self._model_up(node, rel) if kind_ == "model" else self._dataset_up(
                node, rel, full
            )
            if not full:
                continue
            for relation, kind2, name2, version2 in sources:
                rel2 = self._release(name2, version2)
                child = self._node(kind2, name2, version2, rel2)
                if rel2 is None:
                    child.missing.append(f"{kind2} version {child.id} is not released here")
                self.graph.edges.append(LineageEdge(node.id, child.id, relation))
                queue.append((kind2, name2, version2, rel2, level + 1))
        return self.graph

    def _record(self, node: LineageNode, release: Release, message: str) -> dict[str, Any] | None:
        """The release's lineage record; ``None`` (noted, or raised if strict) if unreadable."""
        record, problem = parse_lineage(message)
        if record is None:
            if self.strict:
                raise MalformedLineageError(release.tag, str(problem))
            node.missing.append(
                f"the lineage record of {release.tag} cannot be read: {problem}; datasets and "
                "base model are read from its card"
            )
        return record

    def _model_up(
        self, node: LineageNode, release: Release | None
    ) -> list[tuple[str, str, str, str]]:
        """A model version's details and ``(relation, kind, name, version)`` of its sources."""
        if release is None:
            return []
        record = self._record(node, release, self.message(release.tag))
        if record is None:
            return self._card_sources(node, release)
        absent = [f for f in _MODEL_FIELDS if f not in record]
        if absent:
            node.missing.append(
                f"its release records no {', '.join(absent)} (lineage schema "
                f"{record.get('schema', 1)})"
            )
        _model_details(node, record, self.ask_server)
        sources = []
        datasets = record.get("datasets") or {}
        if not isinstance(datasets, dict):
            node.missing.append(f"its recorded datasets are not a mapping: {datasets!r}")
            datasets = {}
        for name, version in sorted(datasets.items()):
            sources.append(("trained_on", "dataset", str(name), str(version)))
        base = record.get("base_model")
        if base:
            sources += self._base(node, str(base))
        return sources

    def _base(self, node: LineageNode, text: str) -> list[tuple[str, str, str, str]]:
        """The ``fine_tuned_from`` source a ``base_model`` reference names, if it parses."""
        try:
            ref = as_reference(text)
        except InvalidReferenceError as e:
            node.missing.append(f"its base model {text!r} is not a reference ({e})")
            return []
        version = str(ref.version) if ref.version is not None else ""
        if ref.version is None or not ref.version.is_exact:
            node.missing.append(f"its base model {text!r} names no exact version")
            return []
        return [("fine_tuned_from", "model", ref.name, version)]

    def _card_sources(self, node: LineageNode, release: Release) -> list[tuple[str, str, str, str]]:
        """Sources from the card at the tagged commit (a release without a lineage record)."""
        try:
            card = released_card(self.session, release)
        except CardError as e:
            node.missing.append(str(e))
            return []
        if card is None:
            node.missing.append(f"{release.tag} has no {layout.card_file(release.name)}")
            return []
        sources = []
        for text in card.datasets:
            try:
                ref = as_reference(text)
            except InvalidReferenceError:
                node.missing.append(f"its card's dataset {text!r} is not a reference")
                continue
            sources.append(("trained_on", "dataset", ref.name, str(ref.version)))
        base = card.get("base_model")
        return sources + (self._base(node, str(base)) if base else [])

    def _dataset_up(
        self, node: LineageNode, release: Release | None, full: bool
    ) -> list[tuple[str, str, str, str]]:
        """A dataset version's hash, params and builder files; raw inputs become nodes.

        From the release's lineage record; a release made before datasets recorded one is read
        from ``dvc.lock`` at its commit instead (and says so)."""
        if release is None:
            return []
        record, _ = parse_lineage(self.message(release.tag))
        raw: list[dict[str, Any]] | None
        if record is not None and record.get("kind") == "dataset":
            raw = _dataset_details(node, release, record)
        else:
            raw = self._locked_inputs(node, release)
        if node.hash is None:
            try:
                node.hash = released_data_hash(self.session, release)
            except (NotBuiltError, ConfigError) as e:
                node.missing.append(str(e))
        if raw is not None and full:
            self._raw_nodes(node, raw)
        return []

    def _locked_inputs(self, node: LineageNode, release: Release) -> list[dict[str, Any]] | None:
        """Raw inputs (and details) of a release without a record, from ``dvc.lock``."""
        stage = layout.build_stage(release.name)
        try:
            inputs = build_inputs(self.session, release.commit, release.name)
        except ConfigError as e:
            node.missing.append(str(e))
            return None
        if inputs is None:
            node.missing.append(f"dvc.lock at {release.tag} records no stage {stage!r}")
            return None
        node.missing.append(
            f"{release.tag} records no lineage (released before datasets recorded it); its "
            "inputs are read from dvc.lock at its commit"
        )
        node.details["builder_commit"] = release.commit
        node.details["params"] = inputs.params
        node.details["builder_files"] = inputs.builder
        if inputs.missing:
            node.missing.append(inputs.missing)
        elif inputs.generated:
            node.details["raw_inputs"] = _GENERATED
        return inputs.raw

    def _raw_nodes(self, node: LineageNode, raw: list[dict[str, Any]]) -> None:
        """A ``raw`` node and a ``built_from`` edge for each raw input of a build."""
        assert self.graph is not None
        for entry in raw:
            path = str(entry.get("path"))
            source = {key: entry[key] for key in ("source", "extract") if entry.get(key)}
            md5 = entry.get("md5")
            self.graph.nodes.setdefault(
                path, LineageNode("raw", path, hash=str(md5) if md5 else None, details=source)
            )
            self.graph.edges.append(LineageEdge(node.id, path, "built_from"))

    # -- down --------------------------------------------------------------------------------

    def down(self, kind: Kind, release: Release, depth: int | None) -> Lineage:
        """Breadth first from ``release`` through every model made from it, a level at a time."""
        self.graph = Lineage(f"{release.name}:{release.version}", "down")
        self._node(kind, release.name, str(release.version), release)
        if self._made_from is None:  # every tag's message, read once per walker
            self._made_from = _MadeFrom(self.session, self)
        made = self._made_from
        level, frontier, expanded = 0, [self.graph.root], {self.graph.root}
        while frontier and (depth is None or level < depth):
            found = [(node_id, relation, tag) for node_id in frontier
                     for relation, tag in made.children(node_id, self.graph.nodes[node_id].kind)]
            # The releases found at this level: their artifacts' tags in one listing.
            tags = {tag: parse_tag(tag) for _, _, tag in found}
            self.index.preload({t.name for t in tags.values() if t is not None})
            frontier = []
            for node_id, relation, tag in found:
                child = self.live_release(tags[tag])
                if child is None:
                    continue
                node = self._node("model", child.name, str(child.version), child)
                self.graph.edges.append(LineageEdge(node.id, node_id, relation))
                if node.id not in expanded:
                    expanded.add(node.id)
                    frontier.append(node.id)
            level += 1
        return self.graph

    def live_release(self, tag: Tag | None) -> Release | None:
        """The release a register tag names, if it is released and not yanked."""
        if not isinstance(tag, RegisterTag):
            return None
        found = self.index.find(tag.name, tag.version)
        return found if found is not None and found.yanked is None else None

    def card_sources(self, release: Release) -> list[tuple[str, str]]:
        """``(relation, source id)`` of a model release without a lineage record, from its
        card."""
        scratch = LineageNode("model", release.name, str(release.version))
        return [(rel, f"{n}:{v}") for rel, _, n, v in self._card_sources(scratch, release)]


class _MadeFrom:
    """Which model releases were made from a version, from every release tag's message.

    The messages come in one ``for-each-ref``. A record names its sources as JSON strings
    (``"digits"`` as a dataset key, ``"base:1.0.0"`` as the base model), and names need no
    JSON escaping, so a version's children are among the messages that hold one of those two
    strings: found with ``str.find`` over all messages at once, and only those records parsed.
    """

    def __init__(self, session: Session, walker: _Walker) -> None:
        self.session, self.walker = session, walker
        self.messages = walker.messages if walker.messages is not None else (
            session.repo.tag_messages(_release_tags(session)))
        # Only records can name a source; a dataset's record never does (it is left out as
        # written by ``lineage_line``: written otherwise, it is searched, and parsed, in vain).
        searched = {tag: message for tag, message in self.messages.items()
                    if LINEAGE_MARK in message and '"kind": "dataset"' not in message}
        self.tags = list(searched)
        # Those messages in one string; starts[i] is where tag i's message begins.
        self.starts: list[int] = []
        offset = 0
        for message in searched.values():
            self.starts.append(offset)
            offset += len(message) + 1
        self.text = "\0".join(searched.values())
        self._without_record: dict[str, list[tuple[str, str]]] | None = None

    def _holding(self, needle: str) -> set[str]:
        """The tags whose message holds ``needle``."""
        found, at = set(), self.text.find(needle)
        while at >= 0:
            found.add(self.tags[bisect_right(self.starts, at) - 1])
            at = self.text.find(needle, at + 1)
        return found

    def children(self, source: str, kind: str) -> list[tuple[str, str]]:
        """``(relation, release tag)`` of each model release made from ``source`` (an id), a
        ``kind`` version."""
        # A record names a dataset by its name (a key), a base model by its id.
        needle = f'"{source}"' if kind == "model" else f'"{source.rpartition(":")[0]}"'
        found = []
        for tag in self._holding(needle):
            record, _ = parse_lineage(self.messages[tag])
            if record is not None and record.get("kind", "model") == "model":
                found += [(rel, tag) for rel, src in _record_sources(record) if src == source]
        found += self._old_releases().get(source, [])
        return sorted(set(found), key=lambda f: (f[1], f[0]))

    def _old_releases(self) -> dict[str, list[tuple[str, str]]]:
        """Model releases whose tag holds no lineage record, by the sources their cards name:
        source id -> ``(relation, tag)`` (read once, on first need)."""
        if self._without_record is None:
            self._without_record = defaultdict(list)
            kinds: dict[str, str | None] = {}
            for tag, message in self.messages.items():
                if LINEAGE_MARK in message or "@v" not in tag or tag.endswith("!"):
                    continue
                name = tag_artifact(tag)
                if name not in kinds:  # a file check, where a release needs its tags listed
                    kinds[name] = self.session.kind_of(name, self.walker.index)
                if kinds[name] != "model":
                    continue
                release = self.walker.live_release(parse_tag(tag))
                if release is not None:
                    for relation, source in self.walker.card_sources(release):
                        self._without_record[source].append((relation, tag))
        return self._without_record


def _release_tags(session: Session) -> list[str]:
    """The release tags that can name a source: every register tag (``@v``, not a yank's ``!``)
    of an artifact that is not a dataset of the tree.

    A stage tag or a dataset's release never does (a dataset's record is skipped as it is
    read), so their messages are not read: on 10,000 dataset releases, 5,000 model releases and
    5,000 stage tags, a quarter of the tag objects (0.01 s against 0.07 s of Git). A dataset
    gone from the tree is read, and skipped as before.
    """
    releases = [
        (tag.name, tag_artifact(tag.name)) for tag in session.repo.tags()
        if "@v" in tag.name and not tag.name.endswith("!")
    ]
    datasets = session.in_tree({artifact for _, artifact in releases}, "dataset")
    return [name for name, artifact in releases if artifact not in datasets]


def _record_sources(record: dict[str, Any]) -> list[tuple[str, str]]:
    """``(relation, source id)`` of a model release, from its lineage record."""
    datasets = record.get("datasets")
    found = [("trained_on", f"{n}:{v}")
             for n, v in (datasets.items() if isinstance(datasets, dict) else [])]
    base = record.get("base_model")
    # Release recorded the base as ``name:X.Y.Z``, a node's id: no parse needed here.
    return found + ([("fine_tuned_from", str(base))] if base else [])


def _model_details(node: LineageNode, record: dict[str, Any], ask_server: bool = True) -> None:
    """A model node's details from its release's lineage record; the training run's page as
    the record names it, else (``ask_server``) as the tracking server says."""
    weights = record.get("weights")
    if isinstance(weights, dict) and weights.get("md5"):
        node.hash = str(weights["md5"])
    if record.get("commit") and record.get("commit") != node.commit:
        node.details["recorded_commit"] = record["commit"]
    node.details["params"] = record.get("params") or {}
    run = record.get("training_run")
    node.details["training_run"] = run
    link = None
    if run:
        # Imported here: the MLflow mirror's module (urllib.request, sockets: ~30 ms) is needed
        # only for a model with a run, not by `datasets info`'s lineage summary.
        from registry.tracking import recorded_run_link, training_run_link

        link = recorded_run_link(record) or (training_run_link(str(run)) if ask_server else None)
    if link:
        node.details["training_run_url"] = link
    if record.get("compute") is not None:
        node.details["compute"] = record["compute"]
    if record.get("training") is not None:
        node.details["training"] = record["training"]
    override = bump_override(record)
    if override is not None:
        node.details["understated_bump"] = override


def _dataset_details(
    node: LineageNode, release: Release, record: dict[str, Any]
) -> list[dict[str, Any]]:
    """A dataset node's details from its release's lineage record; its raw inputs."""
    data = record.get("data")
    if isinstance(data, dict) and data.get("md5"):
        node.hash = str(data["md5"])
    node.details["builder_commit"] = record.get("commit") or release.commit
    node.details["params"] = record.get("params") or {}
    node.details["builder_files"] = record.get("builder") or {}
    override = bump_override(record)
    if override is not None:
        node.details["understated_bump"] = override
    raw = record.get("raw")
    if raw == "generated":
        node.details["raw_inputs"] = _GENERATED
        return []
    if not isinstance(raw, list) or not raw:
        node.missing.append(record.get("raw_missing") or f"its release records no raw inputs "
                            f"({raw!r})")
        return []
    return [entry for entry in raw if isinstance(entry, dict) and entry.get("path")]
