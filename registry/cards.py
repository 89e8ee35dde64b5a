"""Model cards: ``models/<name>/README.md`` with YAML front matter, as Hugging Face cards have.

The front matter holds what search and lineage need (task, architecture, framework, base model,
training datasets with exact versions, metrics, owner, licence, weights); the Markdown body is
for people. :func:`validate_card` says which field is wrong and what is expected
(:class:`~registry.errors.CardError`, re-exported here as ``registry.cards.CardError``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.atomic import atomic_write_text
from registry.errors import CardError, RegistryError, kind_mismatch, yaml_problem

__all__ = [
    "FRAMEWORKS",
    "REQUIRED_FIELDS",
    "CardError",
    "FrontMatterMemo",
    "ModelCard",
    "parse_card",
    "render_card",
    "validate_card",
]

REQUIRED_FIELDS = (
    "task",
    "architecture",
    "framework",
    "datasets",
    "metrics",
    "owner",
    "license",
    "weights",
)
FRAMEWORKS = ("keras", "tensorflow", "pytorch", "jax", "sklearn", "other")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)


@dataclass(frozen=True)
class ModelCard:
    """A parsed model card.

    Attributes:
        meta: The front matter, as plain data.
        body: The Markdown after it.
    """

    meta: dict[str, Any] = field(default_factory=dict)
    body: str = ""

    def get(self, key: str, default: Any = None) -> Any:
        """A front matter field, or ``default``."""
        return self.meta.get(key, default)

    @property
    def datasets(self) -> list[str]:
        """The training datasets' references (``name:X.Y.Z``)."""
        value = self.meta.get("datasets") or []
        return [str(v) for v in value] if isinstance(value, list) else []

    def references(self) -> list[tuple[str, str, str]]:
        """The one rule for which card field names which kind of artifact.

        Returns:
            ``(field, kind, reference)`` for each training dataset (kind ``dataset``) and the
            base model (kind ``model``), as the card gives them.

        Example:
            >>> ModelCard({"datasets": ["digits:1.0.0"], "base_model": "cnn:1.0.0"}).references()
            [('training dataset', 'dataset', 'digits:1.0.0'), ('base_model', 'model', 'cnn:1.0.0')]
        """
        found = [("training dataset", "dataset", d) for d in self.datasets]
        if self.meta.get("base_model") not in (None, ""):
            found.append(("base_model", "model", str(self.meta["base_model"])))
        return found

    @property
    def text(self) -> str:
        """Everything searchable as free text: front matter values and body, lowercased."""
        values = " ".join(str(v) for v in self.meta.values() if v is not None)
        return f"{values} {self.body}".lower()


def _yaml_load(text: str) -> Any:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is ~10x faster
    return yaml.load(text, Loader=loader)


class FrontMatterMemo:
    """Parsed front matter kept on disk, by the hash of its text, for commands that parse the
    same 1,000 cards on every call (``models search``, ``models list``, the catalog).

    YAML takes ~45 µs a card (0.045 s of a 0.2 s search over 1,000 cards, and its import); a
    lookup here takes ~1 µs. The key is a hash of exactly the text parsed, so an entry can never
    be stale; only a mapping that JSON holds exactly is kept (a date or a NaN is parsed each
    time). The file is rewritten whole and atomically when a call parsed something new; a file
    that cannot be read or written is ignored (the cards are parsed, nothing fails).

    Example:
        >>> memo = FrontMatterMemo(None)  # in memory only
        >>> parse_card("---\\ntask: x\\n---\\n", memo=memo).meta
        {'task': 'x'}
        >>> memo.get("task: x")
        {'task': 'x'}
    """

    #: A new value forgets every entry: bump it when what a front matter parses to changes.
    FORMAT = 1
    #: More entries than this and the memo starts again with what one call parsed: every
    #: command that reads cards loads the whole memo (20,000 typical cards: ~3 MB, ~15 ms).
    MAX_ENTRIES = 20_000

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, dict[str, Any]] = {}
        self._added = 0
        if path is not None:
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
                if saved.get("format") == self.FORMAT and isinstance(saved.get("entries"), dict):
                    self._entries = saved["entries"]
            except (OSError, ValueError, AttributeError):
                pass  # none yet, or unreadable: parse, and write a new one

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()

    def get(self, text: str) -> dict[str, Any] | None:
        """The mapping ``text`` parsed to, if it was kept."""
        found = self._entries.get(self._key(text))
        return found if isinstance(found, dict) else None

    def put(self, text: str, meta: dict[str, Any]) -> None:
        """Keep ``meta``, what ``text`` parsed to, if JSON holds it exactly."""
        try:
            exact = json.loads(json.dumps(meta, allow_nan=False)) == meta
        except (TypeError, ValueError):
            exact = False  # a date, a NaN, a key that is not a string
        if exact:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries = {}
            self._entries[self._key(text)] = meta
            self._added += 1

    def save(self) -> None:
        """Write the memo if this call added to it (whole, atomically; failures ignored)."""
        if self.path is None or not self._added:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"format": self.FORMAT, "entries": self._entries})
            atomic_write_text(self.path, text, durable=False)
            self._added = 0
        except OSError:
            pass  # a read-only or full cache: the next call parses again


def parse_card(
    text: str, where: str = "model card", *, memo: FrontMatterMemo | None = None
) -> ModelCard:
    """Parse a card's front matter and body.

    Args:
        text: The card's text.
        where: The card's path, for messages.
        memo: Front matter parsed before, by its text (:class:`FrontMatterMemo`).

    Raises:
        CardError: If the front matter is missing or not a YAML mapping.
    """
    match = _FRONT_MATTER.match(text)
    if not match:
        raise CardError(
            f"{where} has no front matter: start it with a '---' line, the YAML fields "
            f"({', '.join(REQUIRED_FIELDS)}), and another '---' line"
        )
    front = match.group(1)
    kept = memo.get(front) if memo is not None else None
    if kept is not None:
        return ModelCard(kept, text[match.end() :])
    try:
        meta = _yaml_load(front) or {}
    except Exception as e:  # yaml raises several classes
        # One line, with the line number in the file (the front matter starts on line 2).
        raise CardError(
            f"{where}: the front matter is not valid YAML: {yaml_problem(e, start_line=2)}; "
            "fix it there"
        ) from e
    if not isinstance(meta, dict):
        raise CardError(f"{where}: the front matter must be a mapping of fields")
    card = ModelCard({str(k): v for k, v in meta.items()}, text[match.end() :])
    if memo is not None:
        memo.put(front, card.meta)
    return card


def validate_card(
    card: ModelCard,
    where: str = "model card",
    *,
    kind_of: Callable[[str], str | None] | None = None,
) -> None:
    """Check the fields a release needs.

    Args:
        card: The parsed card.
        where: The card's path, for messages.
        kind_of: What a name is (``dataset``, ``model`` or ``None``), e.g. a session's
            :meth:`~registry.repo.session.Session.kind_of`: given, a model among the datasets or
            a dataset as the base model is refused too.

    Raises:
        CardError: Naming the first bad field, what it holds, and what is expected.

    Example:
        >>> validate_card(parse_card(text), "models/cnn/README.md")  # doctest: +SKIP
    """
    from registry.grammar import parse_reference

    meta = card.meta
    missing = [k for k in REQUIRED_FIELDS if meta.get(k) in (None, "", [], {})]
    if missing:
        raise CardError(
            f"{where} is missing required field(s): {', '.join(missing)}; fill them in the front "
            "matter (see 'registry models new --help')"
        )
    for key in ("task", "architecture", "owner", "license", "weights"):
        if not isinstance(meta[key], str):
            raise CardError(f"{where}: {key} must be a string, not {meta[key]!r}")
    if meta["framework"] not in FRAMEWORKS:
        raise CardError(
            f"{where}: framework {meta['framework']!r} is not one of {', '.join(FRAMEWORKS)}"
        )
    weights = meta["weights"]
    if weights.startswith("/") or ".." in weights.split("/"):
        raise CardError(f"{where}: weights {weights!r} must be a path inside the model folder")
    if not isinstance(meta["datasets"], list):
        raise CardError(
            f"{where}: datasets must be a list of exact dataset versions such as "
            f"'image_classification/digits:1.0.0', not {meta['datasets']!r}"
        )
    for ref in meta["datasets"]:
        _exact_reference(str(ref), "datasets", where, parse_reference)
    if meta.get("base_model") not in (None, ""):
        _exact_reference(str(meta["base_model"]), "base_model", where, parse_reference)
    if kind_of is not None:
        _check_kinds(card, where, kind_of)
    metrics = meta["metrics"]
    if not isinstance(metrics, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in metrics.values()
    ):
        raise CardError(f"{where}: metrics must map names to numbers, e.g. {{accuracy: 0.97}}")
    for key in ("tags",):
        if key in meta and meta[key] is not None and not isinstance(meta[key], list):
            raise CardError(f"{where}: {key} must be a list")


def _exact_reference(text: str, key: str, where: str, parse: Any) -> None:
    try:
        ref = parse(text)
    except RegistryError as e:
        raise CardError(f"{where}: {key} entry {text!r} is not a reference: {e}") from e
    if ref.version is None or not ref.version.is_exact:
        raise CardError(
            f"{where}: {key} entry {text!r} needs an exact version, e.g. '{ref.name}:1.0.0'"
        )


def _check_kinds(card: ModelCard, where: str, kind_of: Callable[[str], str | None]) -> None:
    """Refuse a card field that names an artifact of the other kind."""
    for key, kind, text in card.references():
        name = text.split(":", 1)[0]
        actual = kind_of(name)
        if actual is not None and actual != kind:
            raise CardError(
                f"{where}: {key} entry {text!r} is wrong: {kind_mismatch(name, actual, kind)}; "
                f"name a {kind} there (see 'registry {kind}s list')"
            )


def render_card(meta: dict[str, Any], body: str) -> str:
    """Write a card back: front matter (key order kept) then body."""
    import yaml

    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100).strip()
    return f"---\n{front}\n---\n{body if body.startswith(chr(10)) else chr(10) + body}"
