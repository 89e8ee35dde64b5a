"""Write ``warehouse_sample.json``: a small, made-up copy of product B's two search tables.

The embedded default has no warehouse: its extract stage loads this file into a local BigQuery
emulator and runs ``query.sql`` on it. This script made the file; it is not part of the build
and nothing runs it. Re-run it only to change the sample, then commit both::

    python datasets/products/product_b/search_sessions/make_warehouse_sample.py

It is deterministic (NumPy generator seeded with ``SEED``): the same script writes the same
bytes. The file is BigQuery's JSON (schemas as ``bq show --schema`` prints them, rows as
``bq load --source_format=NEWLINE_DELIMITED_JSON`` reads them), one row per line so that a
change to the sample reads well in a diff.

What it holds, six weeks (``FIRST_DAY`` onwards, so some of it is outside the default window,
October 2026):

- ``product_b.visitors``: a few hundred visitors (ids ``v00001``...) with country, language,
  sign-up time and ``is_internal``, and ``product_b.search_events``: their searches, a few
  sessions each (a need, searched and rephrased until a click satisfies it or the visitor gives
  up; typos find nothing), from browsers whose user agent matches the visitor's device.
- Every case a rule of ``query.sql`` handles, planted: client retries logged twice, blank
  queries, crawlers (a fresh cookie per request, no ``visitors`` row), a monitoring probe with no
  user agent, a phone whose model name contains ``bot`` (``CUBOT_X50``, a real user), staff and
  QA accounts, scrapers firing more than ten searches a minute (one burst across a clock
  minute), a fast person at exactly ten, visitors not yet in ``visitors``, unknown countries and
  devices, pauses of exactly the session gap and a second under it, and sessions across
  midnight at both ends of the window. The planted visitors have ids ``v9xxxx`` (crawlers
  ``v8xxxx``).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

SEED = 13
PROJECT = "lab-warehouse"
FIRST_DAY = date(2026, 9, 21)  # a Monday; six weeks, to 2026-11-01 included
DAYS = 42
NUM_VISITORS = 280
OUT = Path(__file__).resolve().parent / "warehouse_sample.json"

VISITORS_SCHEMA = [
    ("visitor_id", "STRING", "REQUIRED", "First-party cookie id, or the signed-in account's."),
    ("created_at", "TIMESTAMP", "REQUIRED", "First seen (UTC)."),
    (
        "country",
        "STRING",
        "NULLABLE",
        "ISO 3166-1 alpha-2 from geo-IP at first visit; NULL: unknown.",
    ),
    ("language", "STRING", "NULLABLE", "Browser language (BCP 47) at first visit."),
    ("is_internal", "BOOLEAN", "REQUIRED", "Staff or QA test account: not a real user."),
]
EVENTS_SCHEMA = [
    ("event_id", "STRING", "REQUIRED", "Id of the search event; a client retry re-sends it."),
    ("event_date", "DATE", "REQUIRED", "Partition column: the UTC date of event_time."),
    ("event_time", "TIMESTAMP", "REQUIRED", "When the search ran (UTC)."),
    ("visitor_id", "STRING", "REQUIRED", "Who searched (product_b.visitors)."),
    ("query", "STRING", "NULLABLE", "The text as typed; blank when the search page opened."),
    ("results", "INTEGER", "REQUIRED", "Number of listings found."),
    (
        "clicked_position",
        "INTEGER",
        "NULLABLE",
        "1-based rank of the result clicked from this search; NULL: no click.",
    ),
    ("device", "STRING", "NULLABLE", "Device class the client reports (desktop, mobile, tablet)."),
    (
        "user_agent",
        "STRING",
        "NULLABLE",
        "The client's User-Agent header (a browser's, or "
        "product B's app: ProductB/<version> (<device>)).",
    ),
]

# Phones and tablets search in product B's app, whose user agent is short; desktops in a browser.
UA = {
    "desktop": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/129.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.6; rv:131.0) Gecko/20100101 Firefox/131.0",
    ),
    "mobile": (
        "ProductB/4.13.0 (iPhone; iOS 18.0)",
        "ProductB/4.13.0 (Android 14; Pixel 8)",
        "ProductB/4.12.1 (Android 13; SM-A536B)",
    ),
    "tablet": ("ProductB/4.13.0 (iPad; iPadOS 17.6)",),
}
CUBOT_UA = "ProductB/4.12.1 (Android 12; CUBOT_X50)"
CRAWLER_UAS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/129.0.0.0 Safari/537.36",
    "python-requests/2.32.3",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
)
COUNTRIES = ("GB", "DE", "FR", "ES", "IT", "NL", "PL", "US")
COUNTRY_P = (0.3, 0.18, 0.14, 0.1, 0.09, 0.07, 0.06, 0.06)
LANGUAGES = {
    "GB": "en-GB",
    "DE": "de-DE",
    "FR": "fr-FR",
    "ES": "es-ES",
    "IT": "it-IT",
    "NL": "nl-NL",
    "PL": "pl-PL",
    "US": "en-US",
}
# What people look for, each as the queries they try in turn (rephrasing, narrowing).
NEEDS = (
    ("road bike", "road bike 54cm", "specialized allez", "racing bike"),
    ("iphone 13", "iphone 13 128gb", "iphone 13 pro"),
    ("sofa", "grey sofa", "2 seater sofa", "corner sofa"),
    ("lego", "lego technic", "lego star wars"),
    ("winter coat", "mens winter coat", "north face jacket"),
    ("standing desk", "desk", "electric standing desk"),
    ("kids bike", "kids bike 16 inch", "balance bike"),
    ("nintendo switch", "switch oled", "switch games"),
    ("coffee machine", "espresso machine", "delonghi"),
    ("pram", "stroller", "bugaboo"),
    ("dining table", "oak dining table", "extendable table"),
    ("camera", "sony a6000", "canon 50mm lens"),
    ("vinyl records", "jazz vinyl", "record player"),
    ("garden chairs", "garden furniture", "bistro set"),
    ("ps5", "ps5 controller", "ps5 digital"),
)
TYPOS = ("iphnoe 13", "sofaa", "nintedo switch", "lgeo", "bugabo", "expresso machne", "desl")
HOUR_P = np.array(
    [1, 1, 1, 1, 1, 1, 2, 4, 6, 6, 5, 5, 6, 5, 5, 5, 6, 7, 9, 10, 10, 8, 5, 2], dtype=float
)
HOUR_P /= HOUR_P.sum()


def _ts(when: datetime) -> str:
    """BigQuery's JSON for a TIMESTAMP (UTC, whole seconds)."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class Sample:
    """The two tables, filled visitor by visitor."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.visitors: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    def visitor(
        self,
        visitor_id: str,
        first_seen: datetime,
        *,
        country: str | None = "draw",
        internal: bool = False,
    ) -> None:
        """A ``visitors`` row; ``country="draw"`` picks one (about 3% unknown)."""
        rng = self.rng
        if country == "draw":
            country = None if rng.random() < 0.03 else str(rng.choice(COUNTRIES, p=COUNTRY_P))
        language = LANGUAGES.get(country or "") if rng.random() < 0.95 else None
        self.visitors.append(
            {
                "visitor_id": visitor_id,
                "created_at": _ts(first_seen),
                "country": country,
                "language": language,
                "is_internal": internal,
            }
        )

    def search(
        self,
        visitor_id: str,
        when: datetime,
        query: str | None,
        *,
        results: int,
        click: int | None,
        device: str | None,
        user_agent: str | None,
    ) -> None:
        """A ``search_events`` row (its id is given once every row is in)."""
        self.events.append(
            {
                "event_id": None,
                "event_date": when.date().isoformat(),
                "event_time": _ts(when),
                "visitor_id": visitor_id,
                "query": query,
                "results": results,
                "clicked_position": click,
                "device": device,
                "user_agent": user_agent,
            }
        )

    def results_for(self, query: str) -> int:
        """How many listings a query finds: none for typos, sometimes none for narrow ones."""
        if query in TYPOS or self.rng.random() < 0.06:
            return 0
        return int(self.rng.lognormal(3.5, 1.0)) + 1

    def session(self, visitor_id: str, start: datetime, device: str, user_agent: str) -> None:
        """One person's session: a need searched, rephrased, until satisfied or given up."""
        rng = self.rng
        need = NEEDS[int(rng.integers(len(NEEDS)))]
        when = start
        for step in range(8):
            if step and rng.random() < 0.12:
                query = str(rng.choice(TYPOS))
            else:
                query = need[min(step, len(need) - 1)]
            if rng.random() < 0.05:  # casing and stray spaces from the search box
                query = f"  {query.title()} "
            results = self.results_for(query.strip().lower())
            clicked = results > 0 and rng.random() < 0.5
            click = int(min(rng.geometric(0.4), results)) if clicked else None
            shown = device
            if rng.random() < 0.03:  # old clients: no device, or capitalised
                shown = None if rng.random() < 0.5 else device.capitalize()
            self.search(
                visitor_id,
                when,
                query,
                results=results,
                click=click,
                device=shown,
                user_agent=user_agent,
            )
            if rng.random() < 0.02:  # the search page opened without a query
                when += timedelta(seconds=int(rng.integers(3, 30)))
                self.search(
                    visitor_id,
                    when,
                    str(rng.choice(["", "   "])) or None,
                    results=0,
                    click=None,
                    device=shown,
                    user_agent=user_agent,
                )
            if (clicked and rng.random() < 0.7) or (not clicked and rng.random() < 0.35):
                return
            # Pauses inside a session: mostly seconds, sometimes minutes, under the 30 min gap.
            when += timedelta(seconds=int(min(rng.exponential(90), 25 * 60)) + 5)

    def day_time(self) -> datetime:
        """A random moment in the six weeks, busier in the evening."""
        rng = self.rng
        day = FIRST_DAY + timedelta(days=int(rng.integers(DAYS)))
        hour = int(rng.choice(24, p=HOUR_P))
        return datetime(day.year, day.month, day.day, hour, tzinfo=UTC) + timedelta(
            seconds=int(rng.integers(3600))
        )

    def regular_visitors(self, n: int) -> None:
        """People: a device and browser each, one to a few sessions over the six weeks."""
        rng = self.rng
        for i in range(1, n + 1):
            visitor_id = f"v{i:05d}"
            device = str(rng.choice(["desktop", "mobile", "tablet"], p=[0.3, 0.58, 0.12]))
            user_agent = str(rng.choice(UA[device]))
            starts = sorted(self.day_time() for _ in range(1 + int(rng.poisson(1.6))))
            first_seen = starts[0] - timedelta(days=int(rng.integers(0, 400)), hours=1)
            self.visitor(visitor_id, first_seen)
            for start in starts:
                self.session(visitor_id, start, device, user_agent)
        # Visitors who never searched are in the table too.
        for i in range(n + 1, n + 31):
            self.visitor(f"v{i:05d}", self.day_time())

    def planted(self) -> None:
        """The cases of query.sql's rules that chance would leave out or make rare."""
        rng = self.rng
        chrome, iphone = UA["desktop"][0], UA["mobile"][0]

        def at(text: str) -> datetime:
            return datetime.fromisoformat(text).replace(tzinfo=UTC)

        def burst(visitor_id: str, start: str, n: int, every: int, ua: str, device: str) -> None:
            for k in range(n):
                query = NEEDS[k % len(NEEDS)][0]
                self.search(
                    visitor_id,
                    at(start) + timedelta(seconds=k * every),
                    query,
                    results=15,
                    click=None,
                    device=device,
                    user_agent=ua,
                )

        # Crawlers: no cookie, so every request is a new visitor with one search, no row in
        # visitors; all day long, every day.
        crawler = 0
        for day in range(DAYS):
            for _ in range(4):
                crawler += 1
                when = datetime(2026, 9, 21, tzinfo=UTC) + timedelta(
                    days=day, seconds=int(rng.integers(86400))
                )
                need = NEEDS[int(rng.integers(len(NEEDS)))]
                query = need[int(rng.integers(len(need)))]
                self.search(
                    f"v8{crawler:04d}",
                    when,
                    query,
                    results=self.results_for(query),
                    click=None,
                    device="desktop",
                    user_agent=CRAWLER_UAS[crawler % len(CRAWLER_UAS)],
                )
        # An uptime probe: no user agent, one search an hour on three days.
        self.visitor("v90001", at("2026-09-01T00:00:00"), country="GB", internal=False)
        for hour in range(72):
            self.search(
                "v90001",
                at("2026-10-12T00:00:17") + timedelta(hours=hour),
                "sofa",
                results=42,
                click=None,
                device=None,
                user_agent=None,
            )
        # Staff and QA accounts: test searches in and out of the window, clicks included.
        for k in range(8):
            visitor_id = f"v9010{k}"
            self.visitor(visitor_id, at("2025-01-06T09:00:00"), country="GB", internal=True)
            for _ in range(3):
                start = self.day_time()
                for step, query in enumerate(("test listing", "qa smoke test", "sofa")):
                    self.search(
                        visitor_id,
                        start + timedelta(minutes=step),
                        query,
                        results=3,
                        click=1 if step == 2 else None,
                        device="desktop",
                        user_agent=chrome,
                    )
        # Scrapers behind Chrome's user agent: 25 searches in 50 seconds, plus a few slow ones
        # (also dropped: the whole visitor goes).
        self.visitor("v90201", at("2026-10-02T10:00:00"), country="NL")
        burst("v90201", "2026-10-03T02:14:05", 25, 2, chrome, "desktop")
        for day in (5, 9, 20):
            self.search(
                "v90201",
                at(f"2026-10-{day:02d}T03:00:00"),
                "ps5",
                results=12,
                click=None,
                device="desktop",
                user_agent=chrome,
            )
        # 12 searches in 44 seconds across a clock minute (6 + 6 per clock minute).
        self.visitor("v90202", at("2026-10-02T10:00:00"), country="DE")
        burst("v90202", "2026-10-14T04:00:38", 12, 4, chrome, "desktop")
        # A fast person: exactly ten searches in 54 seconds, clicks on the last: kept.
        self.visitor("v90203", at("2026-03-02T10:00:00"), country="FR")
        burst("v90203", "2026-10-16T20:00:00", 10, 6, iphone, "mobile")
        self.events[-1]["clicked_position"] = 2
        # A real user on a CUBOT phone ("bot" in its user agent, not a crawler).
        self.visitor("v90301", at("2026-05-11T10:00:00"), country="ES")
        self.session("v90301", at("2026-10-07T19:30:00"), "mobile", CUBOT_UA)
        self.session("v90301", at("2026-10-21T21:05:00"), "mobile", CUBOT_UA)
        # New visitors, not yet in visitors (it is loaded nightly): real, country unknown.
        for k in range(4):
            self.session(f"v9040{k}", self.day_time(), "mobile", iphone)
        # Pauses at the gap: 30:00 exactly starts a new session, 29:59 does not.
        self.visitor("v90501", at("2026-02-02T10:00:00"), country="IT")
        for offset, query, click in (
            (0, "camera", None),
            (1800, "sony a6000", 1),
            (3599, "canon 50mm lens", 3),
        ):
            self.search(
                "v90501",
                at("2026-10-20T18:00:00") + timedelta(seconds=offset),
                query,
                results=20,
                click=click,
                device="desktop",
                user_agent=chrome,
            )
        # Across midnight at the window's edges: 30 Sep 23:50 -> 1 Oct belongs to September;
        # 31 Oct 23:45 -> 1 Nov belongs to October, whole.
        self.visitor("v90502", at("2026-06-01T10:00:00"), country="GB")
        for offset, query in ((0, "pram"), (600, "stroller"), (1200, "bugaboo")):
            self.search(
                "v90502",
                at("2026-09-30T23:50:00") + timedelta(seconds=offset),
                query,
                results=30,
                click=2 if query == "bugaboo" else None,
                device="mobile",
                user_agent=iphone,
            )
        self.visitor("v90503", at("2026-06-01T10:00:00"), country="PL")
        for offset, query in (
            (0, "winter coat"),
            (540, "mens winter coat"),
            (1260, "north face jacket"),
        ):
            self.search(
                "v90503",
                at("2026-10-31T23:45:00") + timedelta(seconds=offset),
                query,
                results=25,
                click=1 if query == "north face jacket" else None,
                device="tablet",
                user_agent=UA["tablet"][0],
            )

    def finish(self) -> None:
        """Order the log, give events their ids, then log about 1.5% of them twice (retries)."""
        self.events.sort(key=lambda e: (e["event_time"], e["visitor_id"]))
        for number, event in enumerate(self.events, 1):
            event["event_id"] = f"e{number:06d}"
        again = [dict(e) for e in self.events if self.rng.random() < 0.015]
        self.events = sorted(self.events + again, key=lambda e: (e["event_time"], e["event_id"]))
        self.visitors.sort(key=lambda v: v["visitor_id"])


def _table(
    description: str,
    schema: list[tuple[str, str, str, str]],
    rows: list[dict[str, Any]],
    last: bool,
) -> list[str]:
    """A table's lines: description and schema, then one row per line."""
    fields = [{"name": n, "type": t, "mode": m, "description": d} for n, t, m, d in schema]
    lines = [f'      "description": {json.dumps(description)},', '      "schema": [']
    lines += [f"        {json.dumps(f)}," for f in fields]
    lines[-1] = lines[-1].rstrip(",")
    lines += ["      ],", '      "rows": [']
    compact = (",", ":")
    for row in rows:  # NULLs left out, as BigQuery's JSON export does
        row = {key: value for key, value in row.items() if value is not None}
        lines.append(f"        {json.dumps(row, ensure_ascii=False, separators=compact)},")
    lines[-1] = lines[-1].rstrip(",")
    lines += ["      ]", "    }" if last else "    },"]
    return lines


def main() -> None:
    """Generate the sample and write it to ``OUT``."""
    sample = Sample(SEED)
    sample.regular_visitors(NUM_VISITORS)
    sample.planted()
    sample.finish()
    lines = ["{", f'  "project": {json.dumps(PROJECT)},', '  "tables": {']
    lines.append('    "product_b.search_events": {')
    lines += _table(
        "Product B's site search log: one row per search (partitioned by event_date). Made-up "
        "sample for the embedded default.",
        EVENTS_SCHEMA,
        sample.events,
        last=False,
    )
    lines.append('    "product_b.visitors": {')
    lines += _table(
        "Product B's visitors: one row per cookie or account, loaded nightly. Made-up sample "
        "for the embedded default.",
        VISITORS_SCHEMA,
        sample.visitors,
        last=True,
    )
    lines += ["  }", "}"]
    text = "\n".join(lines) + "\n"
    json.loads(text)  # the hand-made layout is valid JSON
    OUT.write_text(text, encoding="utf-8")
    print(
        f"{OUT.name}: {len(sample.events)} events, {len(sample.visitors)} visitors, "
        f"{len(text.encode()) // 1024} KiB"
    )


if __name__ == "__main__":
    main()
