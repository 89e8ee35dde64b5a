"""text_generation/ad_copy: ad copy (headline + body) written from a product brief.

Each example is a brief (product name, category, tone, target language, key selling points) and
the ad copy that answers it. By default the raw copies are generated deterministically from
``seed`` by a small template grammar in English, French and German, with the messiness of real
scraped ad copy mixed in (stray HTML markup and entities, shouting, ragged whitespace, badly cased
fields, duplicates, empty and keyword-stuffed copies); ``raw_path`` reads the lab's own JSONL/CSV
exports instead (a local folder or file, or ``gs://`` through Beam's filesystems). The Beam
pipeline cleans either source the same way, removes exact duplicates, drops empty and over-long
copies, and assigns each product to one split by a stable hash of its name, so no product seen
in training appears in validation or test.

Helpers live at module level: Beam pickles this module by value to ship them to its workers.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import html
import io
import json
import random
import re
from pathlib import Path
from typing import Any, ClassVar

import tensorflow_datasets as tfds

_HERE = Path(__file__).resolve().parent

SPLITS = ("train", "validation", "test")
# Cumulative percentage of products per split, by the hash of the product name.
_SPLIT_PERCENT = {"train": 80, "validation": 90, "test": 100}
# Raw copies generated per Beam work item: bounds memory per worker, scales to millions.
_SHARD_SIZE = 10_000

CATEGORIES = ("electronics", "fashion", "home", "sports", "beauty", "food", "travel", "toys")
TONES = ("friendly", "professional", "playful", "luxurious", "urgent")
LANGUAGES = ("en", "fr", "de")
_LANGUAGE_NAMES = {"en": "English", "fr": "French", "de": "German"}

# --------------------------------------------------------------------------------------------
# The grammar. Selling points are keyed by their English phrase (what the brief shows) and
# rendered in the copy's language; product names are brand names, the same in every language.
# --------------------------------------------------------------------------------------------

_BRANDS = (
    "Nimbus", "Aurora", "Vela", "Kestrel", "Lumen", "Orbit", "Tandem", "Juniper", "Solace",
    "Quarry", "Mistral", "Pebble", "Harbor", "Zephyr", "Cobalt", "Fable", "Ember", "Atlas",
    "Willow", "Nova",
)
_LINES = ("One", "Pro", "Air", "Go", "Max", "Lite", "X2", "Flow", "Prime", "Edge", "Core", "Duo")

_PRODUCTS: dict[str, tuple[str, ...]] = {
    "electronics": ("Earbuds", "Smartwatch", "Speaker", "Tablet", "Power Bank", "Camera"),
    "fashion": ("Sneakers", "Raincoat", "Backpack", "Sunglasses", "Wool Scarf", "Denim Jacket"),
    "home": ("Coffee Maker", "Desk Lamp", "Air Purifier", "Blender", "Duvet", "Kettle"),
    "sports": ("Trail Shoes", "Yoga Mat", "Bike Helmet", "Water Bottle", "Tent", "Dumbbells"),
    "beauty": ("Face Serum", "Hair Dryer", "Lip Balm", "Sunscreen", "Night Cream", "Shampoo"),
    "food": ("Cold Brew", "Granola", "Olive Oil", "Green Tea", "Dark Chocolate", "Hot Sauce"),
    "travel": ("Carry-On", "Neck Pillow", "Packing Cubes", "Travel Adapter", "Duffel Bag"),
    "toys": ("Building Blocks", "Puzzle", "Plush Bear", "Kite", "Robot Kit", "Board Game"),
}

# English phrase -> (French, German).
_POINTS: dict[str, dict[str, tuple[str, str]]] = {
    "electronics": {
        "all-day battery life": ("une autonomie d'une journée", "Akku für den ganzen Tag"),
        "crystal-clear sound": ("un son cristallin", "glasklarer Klang"),
        "fast wireless charging": ("une recharge sans fil rapide", "schnelles kabelloses Laden"),
        "a featherweight design": ("un design ultraléger", "federleichtes Design"),
        "a two-year warranty": ("une garantie de deux ans", "zwei Jahre Garantie"),
    },
    "fashion": {
        "organic cotton": ("du coton bio", "Bio-Baumwolle"),
        "a timeless cut": ("une coupe intemporelle", "zeitloser Schnitt"),
        "waterproof fabric": ("un tissu imperméable", "wasserdichter Stoff"),
        "free returns": ("des retours gratuits", "kostenlose Rücksendung"),
        "sizes for everyone": ("des tailles pour tous", "Größen für alle"),
    },
    "home": {
        "whisper-quiet operation": ("un fonctionnement silencieux", "flüsterleiser Betrieb"),
        "energy-saving mode": ("un mode économie d'énergie", "Energiesparmodus"),
        "dishwasher-safe parts": ("des pièces lavables au lave-vaisselle",
                                  "spülmaschinenfeste Teile"),
        "a compact footprint": ("un format compact", "kompakte Stellfläche"),
        "one-touch controls": ("des commandes en un geste", "Bedienung mit einem Knopf"),
    },
    "sports": {
        "breathable materials": ("des matières respirantes", "atmungsaktive Materialien"),
        "extra grip": ("une adhérence renforcée", "extra Grip"),
        "ultralight construction": ("une construction ultralégère", "ultraleichte Bauweise"),
        "a design tested by athletes": ("une conception testée par des athlètes",
                                        "von Profis getestetes Design"),
        "a lifetime guarantee": ("une garantie à vie", "lebenslange Garantie"),
    },
    "beauty": {
        "a dermatologist-tested formula": ("une formule testée sous contrôle dermatologique",
                                            "dermatologisch getestete Formel"),
        "vegan ingredients": ("des ingrédients vegan", "vegane Inhaltsstoffe"),
        "a fragrance-free formula": ("une formule sans parfum", "Formel ohne Duftstoffe"),
        "visible results in a week": ("des résultats visibles en une semaine",
                                      "sichtbare Ergebnisse in einer Woche"),
        "refillable packaging": ("un flacon rechargeable", "nachfüllbare Verpackung"),
    },
    "food": {
        "small-batch roasting": ("une torréfaction artisanale", "Röstung in kleinen Chargen"),
        "a recipe with no added sugar": ("une recette sans sucres ajoutés", "kein Zuckerzusatz"),
        "fair-trade sourcing": ("un approvisionnement équitable", "fair gehandelte Zutaten"),
        "bold flavour": ("une saveur intense", "kräftiger Geschmack"),
        "recyclable packaging": ("un emballage recyclable", "recycelbare Verpackung"),
    },
    "travel": {
        "a size that fits every overhead bin": ("un format cabine universel", "Handgepäckgröße"),
        "tear-resistant nylon": ("un nylon indéchirable", "reißfestes Nylon"),
        "a built-in USB port": ("un port USB intégré", "integrierter USB-Anschluss"),
        "a fold-flat design": ("un rangement à plat", "flach faltbares Design"),
        "a ten-year warranty": ("une garantie de dix ans", "zehn Jahre Garantie"),
    },
    "toys": {
        "safe play for ages 3 and up": ("un jeu sûr dès 3 ans", "sicherer Spielspaß ab 3 Jahren"),
        "screen-free fun": ("du jeu sans écran", "Unterhaltung ohne Bildschirm"),
        "sustainably sourced wood": ("du bois durable", "Holz aus nachhaltiger Forstwirtschaft"),
        "hours of creative play": ("des heures de jeu créatif", "stundenlanges kreatives Spielen"),
        "award-winning design": ("un design primé", "preisgekröntes Design"),
    },
}

# Per language: headline templates, body templates, tone openers and calls to action.
# Slots: {product} {p0} {p1} {p2} (selling points) {opener} {cta} {discount}.
_HEADLINES: dict[str, tuple[str, ...]] = {
    "en": (
        "{product}: {p0}",
        "{opener} {product} is here",
        "Meet {product}, with {p0}",
        "{product}. {P0}. {P1}.",
        "{opener} {p0}, meet {product}",
        "Say hello to {product}",
    ),
    "fr": (
        "{product} : {p0}",
        "{opener} {product} est arrivé",
        "Découvrez {product}",
        "{product}. {P0}. {P1}.",
        "{opener} {product}, tout simplement",
    ),
    "de": (
        "{product}: {p0}",
        "{opener} {product} ist da",
        "Entdecken Sie {product}",
        "{product}. {P0}. {P1}.",
        "{opener} {product} – {p0}",
    ),
}
_BODIES: dict[str, tuple[str, ...]] = {
    "en": (
        "{product} brings you {p0} and {p1}. {cta}",
        "With {p0}, {p1} and {p2}, {product} is made for every day. {cta}",
        "Why settle for less? {product} combines {p0} with {p1}. {cta}",
        "{P0}, {p1}, {p2}: {product} has it all. {discount} {cta}",
        "Everything you want, nothing you don't: {product} offers {p0} and {p2}. {cta}",
    ),
    "fr": (
        "{product} vous offre {p0} et {p1}. {cta}",
        "Avec {p0}, {p1} et {p2}, {product} vous suit au quotidien. {cta}",
        "{P0}, {p1}, {p2} : {product} a tout pour plaire. {discount} {cta}",
        "Pourquoi attendre ? {product} associe {p0} et {p1}. {cta}",
    ),
    "de": (
        "{product} bietet alles, was Sie brauchen: {p0} und {p1}. {cta}",
        "Das spricht für {product}: {p0}, {p1} und {p2}. {cta}",
        "{P0}, {p1}, {p2}: {product} hat alles. {discount} {cta}",
        "Warum warten? {product} überzeugt auf ganzer Linie: {p0} und {p1}. {cta}",
    ),
}
_OPENERS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "friendly": ("Hey there!", "Good news:"),
        "professional": ("Introducing", "Now available:"),
        "playful": ("Psst!", "Guess what?", "Ta-da!"),
        "luxurious": ("Indulge:", "Exquisitely crafted:"),
        "urgent": ("Last chance!", "Hurry!", "Today only:"),
    },
    "fr": {
        "friendly": ("Bonne nouvelle :", "Coucou !"),
        "professional": ("Nouveau :", "Disponible dès maintenant :"),
        "playful": ("Psst !", "Devinez quoi ?"),
        "luxurious": ("L'exception :", "Raffinement absolu :"),
        "urgent": ("Dernière chance !", "Vite !"),
    },
    "de": {
        "friendly": ("Gute Nachricht:", "Hallo!"),
        "professional": ("Neu:", "Ab sofort erhältlich:"),
        "playful": ("Psst!", "Rate mal!"),
        "luxurious": ("Exklusiv:", "Vollendete Eleganz:"),
        "urgent": ("Letzte Chance!", "Schnell sein!"),
    },
}
_CTAS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "friendly": ("Give it a try today.", "We think you'll love it."),
        "professional": ("Learn more on our website.", "Order now."),
        "playful": ("Go on, treat yourself!", "Your move!"),
        "luxurious": ("Discover the collection.", "Experience it for yourself."),
        "urgent": ("Order before midnight!", "Shop now while stocks last!"),
    },
    "fr": {
        "friendly": ("Essayez-le dès aujourd'hui.", "Vous allez l'adorer."),
        "professional": ("En savoir plus sur notre site.", "Commandez maintenant."),
        "playful": ("Allez, faites-vous plaisir !", "À vous de jouer !"),
        "luxurious": ("Découvrez la collection.", "Laissez-vous séduire."),
        "urgent": ("Commandez avant minuit !", "Dans la limite des stocks !"),
    },
    "de": {
        "friendly": ("Probieren Sie es noch heute aus.", "Sie werden es lieben."),
        "professional": ("Mehr auf unserer Website.", "Jetzt bestellen."),
        "playful": ("Los, gönn dir was!", "Du bist dran!"),
        "luxurious": ("Entdecken Sie die Kollektion.", "Erleben Sie es selbst."),
        "urgent": ("Bestellen Sie bis Mitternacht!", "Nur solange der Vorrat reicht!"),
    },
}
_DISCOUNTS = {"en": "Save {n}% this week.", "fr": "-{n} % cette semaine.",
              "de": "Diese Woche {n} % sparen."}


def _cap(text: str) -> str:
    """Upper-case the first letter only (``str.capitalize`` would lower the rest)."""
    return text[:1].upper() + text[1:]


def _render_point(category: str, point: str, language: str) -> str:
    if language == "en":
        return point
    return _POINTS[category][point][LANGUAGES.index(language) - 1]


def _clean_record(index: int, seed: int) -> dict[str, Any]:
    """The clean brief and copy of raw record ``index``: a pure function of (seed, index)."""
    rng = random.Random(f"{seed}:{index}:copy")
    category = rng.choice(CATEGORIES)
    tone = rng.choice(TONES)
    language = rng.choice(LANGUAGES)
    product = f"{rng.choice(_BRANDS)} {rng.choice(_LINES)} {rng.choice(_PRODUCTS[category])}"
    points = rng.sample(sorted(_POINTS[category]), 3)
    rendered = [_render_point(category, p, language) for p in points]
    slots = {
        "product": product,
        "p0": rendered[0], "p1": rendered[1], "p2": rendered[2],
        "P0": _cap(rendered[0]), "P1": _cap(rendered[1]),
        "opener": rng.choice(_OPENERS[language][tone]),
        "cta": rng.choice(_CTAS[language][tone]),
        "discount": _DISCOUNTS[language].format(n=rng.choice((10, 15, 20, 25, 30))),
    }
    headline = _cap(rng.choice(_HEADLINES[language]).format(**slots))
    body = _cap(rng.choice(_BODIES[language]).format(**slots))
    return {
        "product_name": product,
        "category": category,
        "tone": tone,
        "language": language,
        "selling_points": points,
        "headline": headline,
        "body": body,
    }


def _mess_up(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Add the defects of scraped ad copy that the pipeline must clean away."""
    record = dict(record)
    roll = rng.random
    if roll() < 0.06:
        record["headline"] = record["headline"].upper()  # shouting
    if roll() < 0.08:  # HTML entities, as exported by the ad server
        record["body"] = html.escape(record["body"]).replace(" ", "&nbsp;", rng.randint(1, 3))
    if roll() < 0.06:  # stray markup
        record["headline"] = f"<b>{record['headline']}</b>"
        record["body"] = record["body"].replace(". ", ".<br/> ", 1)
    if roll() < 0.10:  # ragged whitespace
        record["body"] = "  " + record["body"].replace(" ", "   ", 2) + "\n\t"
        record["headline"] = record["headline"] + "  "
    if roll() < 0.05:  # badly cased fields
        record["category"] = f" {record['category'].title()}"
        record["tone"] = record["tone"].upper()
        record["language"] = record["language"].upper() + " "
    if roll() < 0.02:  # empty copy
        record[rng.choice(("headline", "body"))] = rng.choice(("", "   ", "<p></p>"))
    if roll() < 0.02:  # keyword stuffing: far over the length limit
        record["body"] = record["body"] + " " + " ".join([record["product_name"]] * 40)
    return record


def _raw_record(index: int, seed: int) -> dict[str, Any]:
    """Raw record ``index``: a clean record with defects, sometimes a re-scraped earlier one."""
    rng = random.Random(f"{seed}:{index}:raw")
    source = index
    if index > 0 and rng.random() < 0.04:
        # The same ad scraped twice: identical after cleaning, maybe not before.
        source = max(0, index - rng.randint(1, 50))
    return _mess_up(_clean_record(source, seed), rng)


def _generate_shard(shard: int, seed: int, num_examples: int) -> list[dict[str, Any]]:
    start = shard * _SHARD_SIZE
    return [_raw_record(i, seed) for i in range(start, min(start + _SHARD_SIZE, num_examples))]


def _read_raw_file(path: str) -> list[dict[str, Any]]:
    """Rows of a raw ``.jsonl``/``.csv`` file (optionally ``.gz``); an unparseable JSON line
    becomes an empty row, which the cleaning step drops and counts."""
    if "://" in path:
        # gs:// (a Dataflow build's export): Beam's filesystems, .gz decompressed by its suffix.
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path) as raw:
            text = raw.read().decode("utf-8")
    else:
        opener: Any = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            text = f.read()
    stem = path[:-3] if path.endswith(".gz") else path
    if stem.endswith(".csv"):
        rows = list(csv.DictReader(io.StringIO(text)))
        for row in rows:
            # CSV holds the selling points in one cell, separated by '|'.
            row["selling_points"] = (row.get("selling_points") or "").split("|")
        return rows
    records = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            value = None
        records.append(value if isinstance(value, dict) else {})
    return records


_TAG_RE = re.compile(r"<[^<>]{0,200}>")
_SPACE_RE = re.compile(r"\s+")
_REPEATED_PUNCT_RE = re.compile(r"([!?.])\1+")
_WORD_RE = re.compile(r"[^\W\d_][\w'-]*")
_SENTENCE_START_RE = re.compile(r"(^|[.!?]\s+)(\w)")


def _lexicon_casing(language: str) -> dict[str, str]:
    """Words the grammar of ``language`` always capitalises mid-sentence (German nouns, 'USB'),
    by their lower case: un-shouting lower-cases a text, and this restores them, as a truecaser
    would."""
    i = LANGUAGES.index(language)
    texts = [(key, *pair)[i] for points in _POINTS.values() for key, pair in points.items()]
    texts += [*_HEADLINES[language], *_BODIES[language], _DISCOUNTS[language]]
    for table in (_OPENERS, _CTAS):
        texts += [t for by_tone in table[language].values() for t in by_tone]
    capitalised, lowered = {}, set()
    for text in texts:
        for match in _WORD_RE.finditer(text):
            word, before = match.group(), text[: match.start()].rstrip()
            if word.islower():
                lowered.add(word)
            elif before and before[-1] not in ".!?":
                capitalised[word.lower()] = word
    return {low: word for low, word in capitalised.items() if low not in lowered}


_CASING = {language: _lexicon_casing(language) for language in LANGUAGES}


def _clean_text(value: Any) -> str:
    """Strip markup and HTML entities, collapse whitespace and repeated punctuation."""
    if not isinstance(value, str):
        return ""
    text = _TAG_RE.sub(" ", value)
    text = html.unescape(text)
    text = _TAG_RE.sub(" ", text)  # markup that was itself escaped
    text = _SPACE_RE.sub(" ", text).strip()  # \s also matches the NBSP of &nbsp;
    return _REPEATED_PUNCT_RE.sub(r"\1", text)


def _unshout(text: str, product_name: str, language: str) -> str:
    """Turn an all-caps text to sentence case, keeping the product name's and the language's
    own capitals; any other text is returned unchanged."""
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 8 or any(c.islower() for c in letters):
        return text
    casing = _CASING.get(language, {})
    out = _WORD_RE.sub(lambda m: casing.get(m.group(), m.group()), text.lower())
    if product_name:
        out = re.sub(re.escape(product_name), lambda _: product_name, out, flags=re.IGNORECASE)
    return _SENTENCE_START_RE.sub(lambda m: m.group(1) + m.group(2).upper(), out)


def _clean_field(value: Any) -> str:
    return _SPACE_RE.sub(" ", value).strip().lower() if isinstance(value, str) else ""


def _count(reason: str) -> None:
    from apache_beam.metrics import Metrics

    Metrics.counter("ad_copy", reason).inc()


def _clean(
    raw: dict[str, Any], max_headline_chars: int, max_body_chars: int
) -> list[tuple[str, dict[str, Any]]]:
    """A raw record -> [(key, example)], or [] if it cannot be repaired (counted by reason)."""
    category = _clean_field(raw.get("category"))
    tone = _clean_field(raw.get("tone"))
    language = _clean_field(raw.get("language"))
    if category not in CATEGORIES or tone not in TONES or language not in LANGUAGES:
        _count("dropped_bad_field")
        return []
    product = _clean_text(raw.get("product_name"))
    points_raw = raw.get("selling_points")
    if isinstance(points_raw, str):
        points_raw = points_raw.split("|")
    points = [_clean_text(p) for p in points_raw] if isinstance(points_raw, list) else []
    points = [p for p in points if p]
    headline = _unshout(_clean_text(raw.get("headline")), product, language)
    body = _unshout(_clean_text(raw.get("body")), product, language)
    if not (product and points and headline and body):
        _count("dropped_empty")
        return []
    if len(headline) > max_headline_chars or len(body) > max_body_chars:
        _count("dropped_too_long")
        return []
    example = {
        "prompt": (
            f"Write {'an' if tone[0] in 'aeiou' else 'a'} {tone} {category} ad in "
            f"{_LANGUAGE_NAMES[language]} for {product}. "
            f"Key selling points: {'; '.join(points)}."
        ),
        "target": f"{headline}\n\n{body}",
        "product_name": product,
        "category": category,
        "tone": tone,
        "language": language,
        "selling_points": points,
        "headline": headline,
        "body": body,
    }
    key = hashlib.sha1(json.dumps(example, sort_keys=True).encode("utf-8")).hexdigest()
    return [(key, example)]


def split_of(product_name: str) -> str:
    """The split of every copy of ``product_name``: a stable hash, independent of row order."""
    bucket = int(hashlib.sha1(product_name.lower().encode("utf-8")).hexdigest()[:8], 16) % 100
    return next(split for split in SPLITS if bucket < _SPLIT_PERCENT[split])


def _in_split(keyed: tuple[str, dict[str, Any]], split: str) -> bool:
    return split_of(keyed[1]["product_name"]) == split


def _first(examples: Any) -> Any:
    """Keep one of a group of identical examples."""
    return next(iter(examples))


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for text_generation/ad_copy."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "Initial release: briefs -> headline + body in en/fr/de, cleaned, "
        "deduplicated, split 80/10/10 by product.",
    }
    # Knobs that params.yaml (datasets.text_generation/ad_copy) may override.
    DEFAULT_PARAMS: ClassVar[dict[str, Any]] = {
        # Raw copies to generate (before cleaning drops ~10%); scales to millions with Beam.
        "num_examples": 5000,
        # Seed of the template grammar: the same seed always gives the same dataset.
        "seed": 0,
        # File or folder of raw .jsonl/.csv exports (relative to this folder) to read instead of
        # generating; None generates.
        "raw_path": None,
        # Copies whose cleaned headline or body is longer are dropped (keyword stuffing).
        "max_headline_chars": 120,
        "max_body_chars": 400,
    }

    def __init__(self, *, params: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.params = {**self.DEFAULT_PARAMS, **(params or {})}
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "prompt": tfds.features.Text(),
                    "target": tfds.features.Text(),
                    "product_name": tfds.features.Text(),
                    "category": tfds.features.ClassLabel(names=CATEGORIES),
                    "tone": tfds.features.ClassLabel(names=TONES),
                    "language": tfds.features.ClassLabel(names=LANGUAGES),
                    "selling_points": tfds.features.Sequence(tfds.features.Text()),
                    "headline": tfds.features.Text(),
                    "body": tfds.features.Text(),
                }
            ),
            supervised_keys=("prompt", "target"),
        )

    def _raw_files(self) -> list[str]:
        if "://" in str(self.params["raw_path"]):
            return self._remote_raw_files(str(self.params["raw_path"]).rstrip("/"))
        raw = Path(self.params["raw_path"])
        path = raw if raw.is_absolute() else _HERE / raw
        if path.is_dir():
            files = sorted(
                str(p) for p in path.iterdir()
                if p.name.endswith((".jsonl", ".jsonl.gz", ".csv", ".csv.gz"))
            )
        else:
            files = [str(path)] if path.is_file() else []
        if not files:
            raise FileNotFoundError(
                f"no raw .jsonl/.csv files at {path}: fix datasets.text_generation/ad_copy."
                "raw_path in params.yaml, or set it to null to generate the copies"
            )
        return files

    def _remote_raw_files(self, url: str) -> list[str]:
        """The raw files at ``url`` (``gs://``: one file, or a folder's files) through Beam."""
        from apache_beam.io.filesystems import FileSystems

        suffixes = (".jsonl", ".jsonl.gz", ".csv", ".csv.gz")
        for pattern in (url, f"{url}/*"):
            found = FileSystems.match([pattern])[0].metadata_list
            files = sorted(m.path for m in found if m.path.endswith(suffixes))
            if files:
                return files
        raise FileNotFoundError(
            f"no raw .jsonl/.csv files at {url}: fix datasets.text_generation/ad_copy."
            "raw_path in params.yaml, or set it to null to generate the copies"
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager, pipeline: Any):
        beam = tfds.core.lazy_imports.apache_beam
        if self.params["raw_path"] is None:
            num = int(self.params["num_examples"])
            shards = -(-num // _SHARD_SIZE)
            raw = (
                pipeline
                | "Shards" >> beam.Create(range(shards))
                | "Generate" >> beam.FlatMap(_generate_shard, int(self.params["seed"]), num)
            )
        else:
            raw = (
                pipeline
                | "Files" >> beam.Create(self._raw_files())
                | "Read" >> beam.FlatMap(_read_raw_file)
            )
        # Cleaned and deduplicated once, shared by the three splits.
        examples = (
            raw
            | "Reshuffle" >> beam.Reshuffle()
            | "Clean" >> beam.FlatMap(
                _clean, self.params["max_headline_chars"], self.params["max_body_chars"]
            )
            # Exact duplicates (after cleaning) share a key: keep one.
            | "Dedupe" >> beam.CombinePerKey(_first)
        )
        return {split: examples | split >> self._generate_examples(split) for split in SPLITS}

    def _generate_examples(self, split: str):
        beam = tfds.core.lazy_imports.apache_beam
        return beam.Filter(_in_split, split)
