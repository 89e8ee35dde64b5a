-- products/product_b/search_sessions: product B's site search, one row per search session.
--
-- Product B is the lab's second-hand marketplace; every search a visitor runs on it is logged
-- to `product_b.search_events` (one row per search), and `product_b.visitors` holds one row per
-- visitor (a first-party cookie id, or a signed-in account). This query turns the raw log into
-- search sessions of real people, labelled with whether the visitor found what they searched
-- for. It is standard BigQuery SQL (GoogleSQL), reviewed like code, with these named
-- parameters (from params.yaml; written with an at sign in the SQL below, never in these
-- comments: the local emulator would take a parameter's name in a comment for a use of it):
--
--   start_date   DATE   first day of the window (included)
--   end_date     DATE   first day AFTER the window (excluded): the window is half-open,
--                       [start_date, end_date), in UTC, so consecutive windows
--                       (2026-10-01..2026-11-01, 2026-11-01..2026-12-01) never overlap and
--                       never leave a gap.
--   session_gap_minutes      INT64  a pause this long or longer ends a session (30: the
--                                   industry's usual inactivity timeout).
--   max_searches_per_minute  INT64  a visitor with MORE searches than this within any
--                                   60 seconds is a script, not a person (10).
--
-- Tables are written dataset.table and resolve in the job's project (the lab's warehouse
-- project, or the local emulator's `lab-warehouse` on the embedded default).
--
-- WHAT A SESSION IS. A visitor's searches, in time order, with no pause of
-- session_gap_minutes or more between two consecutive ones. Sessions are cut by inactivity
-- only, never at midnight: a session that starts at 23:50 and goes on after midnight is one
-- session. A session belongs to the window its FIRST search is in, so the query reads one day
-- more on each side of the window: the last day's sessions end after end_date, and a session
-- already running at start_date is recognised as one and left to the window before.
--
-- WHO IS NOT A REAL USER. These rows are dropped, in this order:
--   1. Client retries: the app re-sends an event it got no answer for, with the same event_id;
--      one copy is kept.
--   2. Empty searches: a query that is NULL or blank is the search page being opened, not a
--      search.
--   3. Crawlers and scripts, by user agent: a NULL or empty user agent (monitoring probes,
--      scripts; every browser sends one), or one that names a bot: `bot/` or `bot;` (Googlebot/2.1,
--      bingbot/2.0, AhrefsBot/7.0; a bare `bot` would also match phones such as CUBOT_X50),
--      `crawl`, `spider`, `slurp`, `headless` (HeadlessChrome), `+http` (the contact URL bots
--      put in their user agent), `python-requests`, `curl/`, `wget/`, `externalhit`
--      (facebookexternalhit, link previews). Crawlers keep no cookie, so each of their requests
--      arrives as a new visitor with one search: left in, they would be thousands of one-search
--      "sessions" that never succeed.
--   4. Staff and QA accounts: `visitors.is_internal` (test searches, demos, monitoring). A
--      visitor with no `visitors` row yet (the table is loaded nightly, so the day's new
--      visitors are missing from it) is a real user.
--   5. Rapid-fire visitors: more than max_searches_per_minute searches within any 60 seconds
--      (a sliding window, so a burst across a clock minute is caught too). Nobody types that
--      fast; these are scrapers behind a browser's user agent. ALL of such a visitor's searches
--      in the scanned days go, not only the burst: the rest of a scraper's traffic is no more
--      human.
--
-- THE LABEL. A session succeeds (`success`) when its LAST search got a click on a result: the
-- visitor found something and stopped searching. A click followed by more searches usually
-- means the result did not answer (the visitor came back and rephrased), so it is not a
-- success; neither is a session that ends on a search without a click (abandoned).
--
-- OUTPUT: one row per session whose first search is in the window.
--   session_id        STRING     visitor_id-YYYYMMDDTHHMMSS of the first search (UTC): stable
--                                across windows and re-runs
--   visitor_id        STRING
--   start_time        TIMESTAMP  the first search
--   country           STRING     ISO 3166-1 alpha-2 from `visitors`, or 'unknown'
--   device            STRING     desktop / mobile / tablet / unknown, of the first search
--   num_searches      INT64
--   num_zero_results  INT64      searches that found nothing
--   num_clicks        INT64      searches with a click on a result
--   duration_seconds  INT64      first search to last search (0 for a single search)
--   queries           ARRAY<STRING>  the queries in order, lower-cased, spaces collapsed
--   success           BOOL       the label (above)
-- Rows come in no particular order: the snapshot writer sorts them.

WITH
  -- The window, plus one day either side (see WHAT A SESSION IS). `event_date` is the table's
  -- partition column (the UTC date of event_time): filtering on it is what keeps the scan, and
  -- the bill, to the days asked for.
  scanned AS (
    SELECT
      event_id, visitor_id, event_time, query, results, clicked_position, device, user_agent
    FROM product_b.search_events
    WHERE event_date >= DATE_SUB(@start_date, INTERVAL 1 DAY)
      AND event_date < DATE_ADD(@end_date, INTERVAL 1 DAY)
  ),

  -- 1. Client retries: one copy per event_id.
  unique_events AS (
    SELECT * EXCEPT (copy)
    FROM (
      SELECT *, ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY event_time) AS copy
      FROM scanned
    )
    WHERE copy = 1
  ),

  -- 2.-4. Real searches, by browsers, of visitors who are not staff; text and devices cleaned
  -- (old app versions log `Mobile`, some clients no device at all).
  searches AS (
    SELECT
      e.event_id,
      e.visitor_id,
      e.event_time,
      REGEXP_REPLACE(LOWER(TRIM(e.query)), r'\s+', ' ') AS query,
      e.results,
      e.clicked_position,
      CASE LOWER(TRIM(e.device))
        WHEN 'desktop' THEN 'desktop'
        WHEN 'mobile' THEN 'mobile'
        WHEN 'tablet' THEN 'tablet'
        ELSE 'unknown'
      END AS device,
      IFNULL(UPPER(v.country), 'unknown') AS country
    FROM unique_events AS e
    LEFT JOIN product_b.visitors AS v USING (visitor_id)
    WHERE TRIM(IFNULL(e.query, '')) != ''
      AND TRIM(IFNULL(e.user_agent, '')) != ''
      AND NOT REGEXP_CONTAINS(
        LOWER(e.user_agent),
        r'bot/|bot;|crawl|spider|slurp|headless|\+http|python-requests|curl/|wget/|externalhit')
      AND v.is_internal IS NOT TRUE
  ),

  -- 5. Rapid-fire visitors: the searches in the 60 seconds up to each search, per visitor.
  rapid_fire_visitors AS (
    SELECT DISTINCT visitor_id
    FROM (
      SELECT
        visitor_id,
        COUNT(*) OVER (
          PARTITION BY visitor_id
          ORDER BY UNIX_SECONDS(event_time)
          RANGE BETWEEN 59 PRECEDING AND CURRENT ROW
        ) AS searches_in_last_minute
      FROM searches
    )
    WHERE searches_in_last_minute > @max_searches_per_minute
  ),

  human_searches AS (
    SELECT *
    FROM searches
    WHERE visitor_id NOT IN (SELECT visitor_id FROM rapid_fire_visitors)
  ),

  -- Sessions: a search starts one when it is the visitor's first or follows a pause of
  -- session_gap_minutes or more (LAG); the running SUM of those starts numbers the sessions.
  -- event_id breaks ties between searches logged in the same second.
  marked AS (
    SELECT
      *,
      IF(
        LAG(event_time) OVER by_visitor IS NULL
          OR TIMESTAMP_DIFF(event_time, LAG(event_time) OVER by_visitor, SECOND)
            >= @session_gap_minutes * 60,
        1, 0) AS starts_session
    FROM human_searches
    WINDOW by_visitor AS (PARTITION BY visitor_id ORDER BY event_time, event_id)
  ),

  numbered AS (
    SELECT
      *,
      SUM(starts_session) OVER (
        PARTITION BY visitor_id
        ORDER BY event_time, event_id
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) AS session_number
    FROM marked
  ),

  sessions AS (
    SELECT
      visitor_id,
      country,
      MIN(event_time) AS start_time,
      MAX(event_time) AS end_time,
      ARRAY_AGG(device ORDER BY event_time, event_id LIMIT 1)[OFFSET(0)] AS device,
      COUNT(*) AS num_searches,
      COUNTIF(results = 0) AS num_zero_results,
      COUNTIF(clicked_position IS NOT NULL) AS num_clicks,
      ARRAY_AGG(query ORDER BY event_time, event_id) AS queries,
      ARRAY_AGG(clicked_position IS NOT NULL ORDER BY event_time DESC, event_id DESC LIMIT 1)[
        OFFSET(0)] AS success
    FROM numbered
    GROUP BY visitor_id, country, session_number
  )

SELECT
  CONCAT(visitor_id, '-', FORMAT_TIMESTAMP('%Y%m%dT%H%M%S', start_time, 'UTC')) AS session_id,
  visitor_id,
  start_time,
  country,
  device,
  num_searches,
  num_zero_results,
  num_clicks,
  TIMESTAMP_DIFF(end_time, start_time, SECOND) AS duration_seconds,
  queries,
  success
FROM sessions
WHERE start_time >= TIMESTAMP(@start_date)
  AND start_time < TIMESTAMP(@end_date)
