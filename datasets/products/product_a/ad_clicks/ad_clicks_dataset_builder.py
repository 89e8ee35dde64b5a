"""products/product_a/ad_clicks: product A's ad impression log, for click prediction.

The raw source is product A's impression log (one CSV row per ad shown) and its campaign table
(one row per campaign), exported as they are: impressions logged twice, empty fields, malformed
values. By default the builder generates a synthetic log of that shape from ``seed`` (no download,
no account), in chunks that Beam generates in parallel; ``raw_path`` reads a real export instead.

The Beam pipeline parses the rows, drops malformed ones, de-duplicates impressions, joins them
with the cleaned campaign table (a side input: the table is small), fills missing values, derives
numeric features and splits train/test by a stable hash of the impression id. The cleaning rules
are listed in README.md; every one of them is exercised by ``dummy_data/``.

Every function the pipeline runs is at module level: Beam pickles this module by value to send
them to its workers.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import tensorflow_datasets as tfds

_HERE = Path(__file__).resolve().parent

IMPRESSION_COLUMNS = (
    "impression_id",
    "timestamp",
    "campaign_id",
    "device",
    "country",
    "position",
    "bid",
    "query",
    "clicked",
)
CAMPAIGN_COLUMNS = ("campaign_id", "advertiser", "category", "daily_budget", "headline")
DEVICES = ("desktop", "mobile", "tablet", "unknown")
CATEGORIES = (
    "apparel",
    "electronics",
    "travel",
    "finance",
    "food",
    "gaming",
    "home",
    "health",
    "unknown",
)
UNKNOWN = "unknown"
MAX_POSITION = 10

# Generated logs are made of chunks of this many raw rows, each generated from (seed, chunk), so
# the data depends on (seed, num_records, num_campaigns) only, never on how many workers ran.
_CHUNK_SIZE = 10_000
_START = datetime(2024, 6, 1, tzinfo=UTC)
# Log-bids are summed in millionths: exact, in any order, and far from int64 overflow.
_FIXED_POINT = 10**6
_DAYS = 28


# ---------------------------------------------------------------------------------------------
# Synthetic raw data: what product A's logging exports, mess included.

_COUNTRIES = ("US", "GB", "DE", "FR", "JP", "BR", "IN", "CA")
_COUNTRY_P = (0.35, 0.12, 0.11, 0.09, 0.1, 0.08, 0.1, 0.05)
_BRANDS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Vandelay")
_TRADES = {
    "apparel": ("Outfitters", ("trainers", "rain jackets", "linen shirts", "denim")),
    "electronics": ("Electronics", ("4K TVs", "headphones", "laptops", "smart watches")),
    "travel": ("Travel", ("flights to Lisbon", "city breaks", "beach hotels", "car rental")),
    "finance": ("Bank", ("savings accounts", "credit cards", "mortgages", "ISAs")),
    "food": ("Foods", ("meal kits", "coffee beans", "groceries", "vegan snacks")),
    "gaming": ("Games", ("season passes", "gaming mice", "indie games", "consoles")),
    "home": ("Home", ("sofas", "garden tools", "LED lamps", "bed linen")),
    "health": ("Health", ("vitamin D", "yoga mats", "sleep trackers", "protein powder")),
}
_OFFERS = ("from $9", "- 20% off today", ", free shipping", "- shop now", ": new season, new deals")
_QUERIES = {
    "apparel": ("running shoes", "waterproof jacket", "summer dress", "mens jeans sale"),
    "electronics": ("4k tv deals", "wireless headphones", "cheap laptop", "smart watch"),
    "travel": ("cheap flights lisbon", "hotel paris", "beach holiday", "car hire airport"),
    "finance": ("best savings rate", "credit card offers", "mortgage calculator", "isa"),
    "food": ("pizza delivery", "vegan recipes", "grocery delivery", "coffee subscription"),
    "gaming": ("new rpg games", "console bundle", "gaming mouse", "indie games"),
    "home": ("sofa sale", "garden tools", "desk lamp", "bed linen"),
    "health": ("vitamin d", "yoga mat", "sleep tracker", "protein powder"),
}
_HOUR_P = np.array(
    [1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 5, 5, 6, 5, 5, 5, 5, 6, 7, 8, 8, 7, 4, 2], dtype=float
)
_HOUR_P /= _HOUR_P.sum()


def _csv_lines(rows: list[list[str]]) -> list[str]:
    """Render rows as CSV lines (quoted where needed), as the logging export writes them."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().splitlines()


def _campaigns(seed: int, num_campaigns: int) -> list[tuple[str, str, str, float, str]]:
    """The true campaign table: (campaign_id, advertiser, category, daily_budget, headline)."""
    rng = np.random.default_rng([seed, 0])
    trades = list(_TRADES)
    rows = []
    for i in range(num_campaigns):
        category = trades[int(rng.integers(len(trades)))]
        trade, products = _TRADES[category]
        brand = _BRANDS[int(rng.integers(len(_BRANDS)))]
        product = products[int(rng.integers(len(products)))]
        offer = _OFFERS[int(rng.integers(len(_OFFERS)))]
        headline = f"{brand} {trade}: {product} {offer}".replace(" ,", ",")
        budget = round(float(rng.lognormal(6.0, 0.8)), 2)
        rows.append((f"c{i:05d}", f"{brand} {trade}", category, budget, headline))
    return rows


def _campaign_lines(seed: int, num_campaigns: int) -> list[str]:
    """The campaign table as exported: a few empty or malformed fields, one row twice."""
    rng = np.random.default_rng([seed, 1])
    rows = []
    for campaign_id, advertiser, category, budget, headline in _campaigns(seed, num_campaigns):
        row = [campaign_id, advertiser, category, f"{budget:.2f}", headline]
        kind = rng.random()
        if kind < 0.03:
            row[1] = ""
        elif kind < 0.06:
            row[2] = ""
        elif kind < 0.08:
            row[3] = rng.choice(["", "n/a", "1.000,00"])
        elif kind < 0.10:
            row[4] = ""
        rows.append(row)
    if rows:
        rows.append(list(rows[int(rng.integers(len(rows)))]))
    return _csv_lines(rows)


def _generate_chunk(chunk: int, seed: int, num_records: int, num_campaigns: int) -> list[str]:
    """Raw impression log lines of chunk ``chunk`` (rows ``chunk * _CHUNK_SIZE`` onwards)."""
    n = min(_CHUNK_SIZE, num_records - chunk * _CHUNK_SIZE)
    if n <= 0:
        return []
    rng = np.random.default_rng([seed, 2, chunk])
    campaigns = _campaigns(seed, num_campaigns)
    campaign_category = np.array([CATEGORIES.index(c[2]) for c in campaigns])
    trades = list(_TRADES)

    # About 2% of the rows are an impression logged a second time (a client retry).
    n_dup = min(int(rng.binomial(n, 0.02)), n - 1)
    m = n - n_dup
    ids = rng.integers(0, 2**62, size=m)
    day = rng.integers(0, _DAYS, size=m)
    hour = rng.choice(24, size=m, p=_HOUR_P)
    second = rng.integers(0, 3600, size=m)
    campaign = rng.integers(0, num_campaigns, size=m)
    device = rng.choice(3, size=m, p=[0.35, 0.55, 0.10])
    country = rng.choice(len(_COUNTRIES), size=m, p=_COUNTRY_P)
    position = rng.choice(5, size=m, p=[0.4, 0.25, 0.15, 0.12, 0.08]) + 1
    bid = np.round(np.clip(rng.lognormal(-0.5, 0.6, size=m), 0.01, 50.0), 2)
    # Most searches are about what the ad sells; the click model rewards that.
    relevant = rng.random(m) < 0.6
    query_category = np.where(relevant, campaign_category[campaign], rng.integers(8, size=m))
    query_pick = rng.integers(4, size=m)
    no_query = rng.random(m) < 0.1
    logit = (
        -3.2
        + 1.3 * relevant
        - 0.35 * (position - 1)
        + np.array([-0.1, 0.3, 0.1])[device]
        + 0.5 * np.cos((hour - 20) / 24 * 2 * np.pi)
        + 0.4 * np.log1p(bid)
    )
    clicked = rng.random(m) < 1 / (1 + np.exp(-logit))
    noise = rng.random((m, 4))
    corruption = rng.random(m)
    corrupt_kind = rng.integers(7, size=m)

    rows = []
    for i in range(m):
        ts = _START.timestamp() + int(day[i]) * 86400 + int(hour[i]) * 3600 + int(second[i])
        row = [
            f"{int(ids[i]):016x}",
            datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            campaigns[int(campaign[i])][0],
            ("desktop", "mobile", "tablet")[device[i]],
            _COUNTRIES[country[i]],
            str(position[i]),
            f"{bid[i]:.2f}",
            "" if no_query[i] else _QUERIES[trades[query_category[i]]][query_pick[i]],
            "1" if clicked[i] else "0",
        ]
        # Empty fields, and the casing noise of several client versions.
        if noise[i, 0] < 0.03:
            row[3] = ""
        elif noise[i, 0] < 0.06:
            row[3] = f" {row[3].capitalize()}"
        elif noise[i, 0] < 0.065:
            row[3] = "smart-tv"
        if noise[i, 1] < 0.03:
            row[4] = ""
        elif noise[i, 1] < 0.05:
            row[4] = row[4].lower()
        if noise[i, 2] < 0.02:
            row[6] = ""
        if noise[i, 3] < 0.02:
            row[7] = f"  {row[7].upper()} "
        # About 1.5% of the rows are malformed, one way or another.
        if corruption[i] < 0.015:
            kind = corrupt_kind[i]
            if kind == 0:
                row[6] = ("n/a", "1.2.3", "1,25", "-0.40", "nan")[i % 5]
            elif kind == 1:
                row[2] = f"c{num_campaigns + i % 97:05d}"
            elif kind == 2:
                row[1] = ("2024-06-31T25:00:00Z", "yesterday", "")[i % 3]
            elif kind == 3:
                row[5] = ("first", "0", "")[i % 3]
            elif kind == 4:
                row[8] = ("yes", "", "2")[i % 3]
            elif kind == 5:
                row = row[:5]
            else:
                row[0] = ""
        rows.append(row)
    for j in rng.integers(0, m, size=n_dup):
        rows.append(list(rows[j]))
    order = rng.permutation(len(rows))
    return _csv_lines([rows[k] for k in order])


# ---------------------------------------------------------------------------------------------
# Cleaning: parse, validate, de-duplicate, join, fill, featurise, split.


def _split_csv(line: str) -> list[str] | None:
    try:
        return next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return None


def _text(value: str) -> str:
    """Lower-case text with runs of whitespace collapsed."""
    return " ".join(value.lower().split())


def _parse_impression(line: str) -> list[tuple[str, tuple[Any, ...]]]:
    """One raw row -> ``[(impression_id, record)]``, or ``[]`` for a malformed row.

    A record is ``(epoch_seconds, campaign_id, device, country, position, bid_or_None, query,
    clicked)``. Malformed: a wrong number of fields, an empty impression id or campaign id, a
    timestamp that is not ISO 8601, a position outside 1..MAX_POSITION, a bid that is not a
    finite non-negative number, a label other than 0/1. Missing device, country, bid and query
    are kept here and filled later.
    """
    fields = _split_csv(line)
    if fields is None or len(fields) != len(IMPRESSION_COLUMNS):
        return []
    impression_id, timestamp, campaign_id, device, country, position, bid, query, clicked = (
        f.strip() for f in fields
    )
    if not impression_id or not campaign_id or clicked not in ("0", "1"):
        return []
    try:
        when = datetime.fromisoformat(timestamp)
        slot = int(position)
        price = float(bid) if bid else None
    except ValueError:
        return []
    if when.tzinfo is None:  # the export writes UTC; some clients drop the "Z"
        when = when.replace(tzinfo=UTC)
    if not 1 <= slot <= MAX_POSITION:
        return []
    if price is not None and not (math.isfinite(price) and price >= 0):
        return []
    device = device.lower()
    country = country.upper()
    record = (
        int(when.timestamp()),
        campaign_id,
        device if device in DEVICES else UNKNOWN,
        country if len(country) == 2 and country.isalpha() else UNKNOWN,
        slot,
        price,
        _text(query),
        int(clicked),
    )
    return [(impression_id, record)]


def _pick_one(records: Any) -> tuple[Any, ...]:
    """The record kept among copies of one impression: the same one whatever the order."""
    return min(records, key=repr)


def _parse_campaign(line: str) -> list[tuple[str, str, str, float | None, str]]:
    """One raw campaign row -> ``[(id, advertiser, category, budget_or_None, headline)]``.

    Rows with a wrong number of fields or no id are dropped; an empty advertiser or an unknown
    category become ``unknown``, an empty headline ``""``, a missing or malformed budget
    ``None`` (filled with the median budget by :func:`_campaign_table`).
    """
    fields = _split_csv(line)
    if fields is None or len(fields) != len(CAMPAIGN_COLUMNS):
        return []
    campaign_id, advertiser, category, budget, headline = (f.strip() for f in fields)
    if not campaign_id:
        return []
    try:
        amount: float | None = float(budget)
    except ValueError:
        amount = None
    if amount is not None and not (math.isfinite(amount) and amount >= 0):
        amount = None
    category = category.lower()
    return [
        (
            campaign_id,
            " ".join(advertiser.split()) or UNKNOWN,
            category if category in CATEGORIES else UNKNOWN,
            amount,
            " ".join(headline.split()),
        )
    ]


def _campaign_table(
    rows: list[tuple[str, str, str, float | None, str]],
) -> dict[str, tuple[str, str, float, str]]:
    """Cleaned campaign rows -> ``{campaign_id: (advertiser, category, budget, headline)}``.

    A campaign listed twice keeps one row (the same whatever the order); missing budgets take
    the median of the known ones.
    """
    by_id: dict[str, tuple[str, str, str, float | None, str]] = {}
    for row in sorted(rows, key=repr):
        by_id.setdefault(row[0], row)
    budgets = [row[3] for row in by_id.values() if row[3] is not None]
    median = float(statistics.median(budgets)) if budgets else 0.0
    return {
        cid: (advertiser, category, median if budget is None else budget, headline)
        for cid, advertiser, category, budget, headline in by_id.values()
    }


def _join(
    keyed: tuple[str, tuple[Any, ...]], campaigns: dict[str, tuple[str, str, float, str]]
) -> list[tuple[str, tuple[Any, ...], tuple[str, str, float, str]]]:
    """Attach the impression's campaign, or drop the impression if its campaign is unknown."""
    impression_id, record = keyed
    campaign = campaigns.get(record[1])
    return [] if campaign is None else [(impression_id, record, campaign)]


def is_test(impression_id: str, test_percent: int) -> bool:
    """Whether an impression belongs to the test split: a stable hash of its id."""
    digest = hashlib.md5(impression_id.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:4], "big") % 100 < test_percent


def _train_log_bid(
    joined: tuple[str, tuple[Any, ...], Any], test_percent: int
) -> list[tuple[int, int]]:
    """``[(log_bid in fixed point, 1)]`` for a train impression with a known bid, else ``[]``.

    Integers sum exactly in any order, so the mean (and the data) never depends on how Beam
    split the work; a float sum would differ in its last bits from one run to the next.
    """
    impression_id, record, _ = joined
    bid = record[5]
    if bid is None or is_test(impression_id, test_percent):
        return []
    return [(round(math.log1p(bid) * _FIXED_POINT), 1)]


def _add_pairs(pairs: Any) -> tuple[int, int]:
    """Combiner: element-wise sum of ``(total, count)`` pairs."""
    total = count = 0
    for pair_total, pair_count in pairs:
        total += pair_total
        count += pair_count
    return total, count


def _to_example(
    joined: tuple[str, tuple[Any, ...], tuple[str, str, float, str]],
    train_log_bids: tuple[int, int],
) -> tuple[str, dict[str, Any]]:
    """A joined impression -> ``(impression_id, example)``, missing bid filled, features derived."""
    impression_id, record, campaign = joined
    epoch, campaign_id, device, country, position, bid, query, clicked = record
    advertiser, category, budget, headline = campaign
    when = datetime.fromtimestamp(epoch, UTC)
    total, count = train_log_bids
    fill = total / count / _FIXED_POINT if count else 0.0
    return impression_id, {
        "impression_id": impression_id,
        "hour": when.hour,
        "day_of_week": when.weekday(),
        "device": device,
        "country": country,
        "position": position,
        "log_bid": fill if bid is None else math.log1p(bid),
        "bid_imputed": bid is None,
        "query": query,
        "campaign_id": campaign_id,
        "advertiser": advertiser,
        "category": category,
        "log_daily_budget": math.log1p(budget),
        "headline": headline,
        "clicked": clicked,
    }


def _split_index(keyed: tuple[str, Any], num_partitions: int, test_percent: int) -> int:
    """Partition function: 0 = train, 1 = test."""
    return int(is_test(keyed[0], test_percent))


def _check_header(path: str, expected: tuple[str, ...]) -> None:
    """Fail early, in the launching process, on an export with other columns.

    ``path`` is local or on a Beam filesystem (``gs://``); ``.gz`` files are read decompressed.
    """
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as raw, io.TextIOWrapper(raw, newline="") as f:
        header = tuple(h.strip() for h in next(csv.reader(f), []))
    if header != expected:
        raise ValueError(
            f"{path} has columns {list(header)}; expected {list(expected)} (in this order)"
        )


def _match(pattern: str) -> list[str]:
    """The files matching a glob, local or on a Beam filesystem, sorted."""
    from apache_beam.io.filesystems import FileSystems

    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


class Builder(tfds.core.GeneratorBasedBuilder):
    """DatasetBuilder for products/product_a/ad_clicks."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {
        "1.0.0": "Initial release: cleaned, de-duplicated impressions joined with campaigns; "
        "80/20 split by a hash of the impression id.",
    }
    # Knobs that params.yaml (datasets.products/product_a/ad_clicks) may override.
    DEFAULT_PARAMS: ClassVar[dict[str, Any]] = {
        # Raw impression rows to generate (duplicates and malformed rows included).
        "num_records": 20_000,
        # Campaigns in the generated campaign table.
        "num_campaigns": 200,
        # Seed of the generated log: same seed and sizes, same data.
        "seed": 0,
        # Folder of a raw export (impressions*.csv + campaigns.csv, with headers), absolute or
        # relative to this folder; None generates the log from the knobs above.
        "raw_path": None,
        # Share of impressions in the test split (by a hash of the impression id), 0..100.
        "test_percent": 20,
    }

    def __init__(self, *, params: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.params = {**self.DEFAULT_PARAMS, **(params or {})}
        unknown = sorted(set(self.params) - set(self.DEFAULT_PARAMS))
        if unknown:
            raise ValueError(
                f"unknown params {unknown} for products/product_a/ad_clicks; "
                f"known: {sorted(self.DEFAULT_PARAMS)}"
            )
        percent = self.params["test_percent"]
        if not isinstance(percent, int) or not 0 <= percent <= 100:
            raise ValueError(f"test_percent must be an integer in 0..100, not {percent!r}")
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        features = tfds.features.FeaturesDict(
            {
                "impression_id": tfds.features.Text(doc="Unique id of the impression."),
                "hour": tfds.features.Scalar(np.int32, doc="Hour of day (UTC), 0..23."),
                "day_of_week": tfds.features.Scalar(np.int32, doc="0 = Monday .. 6 = Sunday."),
                "device": tfds.features.ClassLabel(names=DEVICES, doc="Device class."),
                "country": tfds.features.Text(doc="ISO country code, or 'unknown'."),
                "position": tfds.features.Scalar(
                    np.int32, doc=f"Ad slot on the page, 1 (top)..{MAX_POSITION}."
                ),
                "log_bid": tfds.features.Scalar(
                    np.float32, doc="log1p of the bid (USD CPM); imputed if missing."
                ),
                "bid_imputed": tfds.features.Scalar(
                    np.bool_, doc="The bid was missing and log_bid is the train mean."
                ),
                "query": tfds.features.Text(doc="Search query, lower-cased; may be empty."),
                "campaign_id": tfds.features.Text(doc="Campaign of the ad."),
                "advertiser": tfds.features.Text(doc="Advertiser, or 'unknown'."),
                "category": tfds.features.ClassLabel(names=CATEGORIES, doc="Campaign category."),
                "log_daily_budget": tfds.features.Scalar(
                    np.float32, doc="log1p of the campaign's daily budget (USD)."
                ),
                "headline": tfds.features.Text(doc="Ad headline; may be empty."),
                "clicked": tfds.features.ClassLabel(names=("no", "yes"), doc="The label."),
            }
        )
        inputs = {key: key for key in features if key not in ("impression_id", "clicked")}
        return self.dataset_info_from_configs(
            features=features,
            supervised_keys=(inputs, "clicked"),
            homepage="https://example.com/product-a/ads",
        )

    def _raw_folder(self) -> str | None:
        """The raw export's folder: a local path (relative to this folder) or a ``gs://`` URL."""
        raw = self.params["raw_path"]
        if raw is None:
            return None
        raw = str(raw).rstrip("/")
        if "://" in raw:
            return raw  # read through Beam's filesystems (gs:// with Application Default Creds)
        path = Path(raw) if Path(raw).is_absolute() else _HERE / raw
        if not path.is_dir():
            raise FileNotFoundError(f"raw_path {raw!r}: no folder at {path}")
        return str(path)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager, pipeline: Any):
        # One pipeline for both splits: clean once, then partition (not once per split).
        beam = tfds.core.lazy_imports.apache_beam
        examples = pipeline | "Examples" >> self._generate_examples(self._raw_folder())
        train, test = examples | "Split" >> beam.Partition(
            _split_index, 2, self.params["test_percent"]
        )
        return {"train": train, "test": test}

    def _generate_examples(self, raw: str | None):
        """All cleaned examples, keyed by impression id, from the export at ``raw`` or generated."""
        beam = tfds.core.lazy_imports.apache_beam
        p = self.params

        @beam.ptransform_fn
        def examples(root):
            if raw is None:
                impressions = (
                    root
                    | "Chunks" >> beam.Create(range(math.ceil(p["num_records"] / _CHUNK_SIZE)))
                    # Spread the chunks over the workers before generating them.
                    | "SpreadChunks" >> beam.Reshuffle()
                    | "GenerateImpressions"
                    >> beam.FlatMap(
                        _generate_chunk,
                        seed=p["seed"],
                        num_records=p["num_records"],
                        num_campaigns=p["num_campaigns"],
                    )
                )
                campaigns = root | "CampaignRows" >> beam.Create(
                    _campaign_lines(p["seed"], p["num_campaigns"])
                )
            else:
                shards = _match(f"{raw}/impressions*.csv*")
                table = f"{raw}/campaigns.csv"
                if not shards or table not in _match(table):
                    found = [name.rsplit("/", 1)[-1] for name in _match(f"{raw}/*")]
                    raise FileNotFoundError(
                        f"{raw} must hold impressions*.csv and campaigns.csv (found {found})"
                    )
                for shard in shards:
                    _check_header(shard, IMPRESSION_COLUMNS)
                _check_header(table, CAMPAIGN_COLUMNS)
                impressions = root | "ReadImpressions" >> beam.io.ReadFromText(
                    f"{raw}/impressions*.csv*", skip_header_lines=1
                )
                campaigns = root | "ReadCampaigns" >> beam.io.ReadFromText(
                    table, skip_header_lines=1
                )
            # The campaign table is small (hundreds of rows): a side input joins it without a
            # shuffle of the impressions. A table too big for worker memory would need a
            # CoGroupByKey on campaign_id instead.
            table = (
                campaigns
                | "ParseCampaigns" >> beam.FlatMap(_parse_campaign)
                | "CollectCampaigns" >> beam.combiners.ToList()
                | "CampaignTable" >> beam.Map(_campaign_table)
            )
            joined = (
                impressions
                | "ParseImpressions" >> beam.FlatMap(_parse_impression)
                | "Dedupe" >> beam.CombinePerKey(_pick_one)
                | "JoinCampaigns" >> beam.FlatMap(_join, campaigns=beam.pvalue.AsSingleton(table))
            )
            # Missing bids take the mean log-bid of the train split (no test statistics leak).
            train_log_bids = (
                joined
                | "TrainLogBids" >> beam.FlatMap(_train_log_bid, p["test_percent"])
                | "SumTrainLogBids" >> beam.CombineGlobally(_add_pairs)
            )
            return joined | "ToExamples" >> beam.Map(
                _to_example, train_log_bids=beam.pvalue.AsSingleton(train_log_bids)
            )

        return examples()
