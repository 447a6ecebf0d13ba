"""API benchmark: millions of quotes in PostgreSQL, gunicorn with 2 workers, wrk at 16 connections.

Measures four /data queries (first page, symbol filter, time range, a page deep in the cursor
chain) and prints requests/s, p50 and p99 for each; then checks that the anonymous rate limit
holds across both workers. Throttling stays on during the measurements (with a limit too high to
trip), so its cost is included.

    createdb -h 127.0.0.1 -U postgres bench_api
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_api \\
        .venv/bin/python bench/bench_api.py [--quotes 5000000] [--duration 10] [--rounds 3]

Needs `wrk` (apt-get install -y wrk). Everything runs on the loopback address and stops by
itself: each wrk run is bounded by --duration, and gunicorn is stopped on exit.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import caches  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from common.pagination import Cursor, encode_cursor  # noqa: E402

logger = logging.getLogger("bench_api")

ASSETS = 1000
SOURCE = "coingecko"
START = datetime(2020, 1, 1, tzinfo=UTC)


def load(quotes: int) -> None:
    """Fill the database with `quotes` hourly quotes of ASSETS assets (asset 1 is BTC)."""
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM prices_quote")
        have = cur.fetchone()[0]
        if have >= quotes:
            logger.info("%d quotes already loaded", have)
            return
        logger.info("loading %d quotes (%d assets x %d hours)", quotes, ASSETS, quotes // ASSETS)
        cur.execute("TRUNCATE prices_quote, prices_asset RESTART IDENTITY CASCADE")
        cur.execute(
            """
            INSERT INTO prices_asset (slug, symbol, name, verified, created_at)
            SELECT 'bench-' || i, CASE WHEN i = 1 THEN 'BTC' ELSE 'B' || i END,
                   'Bench asset ' || i, true, now()
            FROM generate_series(1, %s) AS i
            """,
            [ASSETS],
        )
        hours = quotes // ASSETS
        chunk = 250
        started = time.monotonic()
        # Inserted in time order, as ingestion would: ids grow with observation time.
        for first in range(0, hours, chunk):
            last = min(first + chunk, hours)
            cur.execute(
                """
                INSERT INTO prices_quote (asset_id, source, observed_at, price_usd,
                                          market_cap_usd, volume_24h_usd, percent_change_24h,
                                          interval)
                SELECT a.id, %s, %s::timestamptz + make_interval(hours => h),
                       round((a.id * 10 + 1000 * (1 + sin(h / 24.0 + a.id)))::numeric, 8),
                       (a.id * 1e9)::numeric, (a.id * 1e7 + h)::numeric,
                       round((sin(h + a.id) * 5)::numeric, 4), ''
                FROM generate_series(%s, %s) AS h CROSS JOIN prices_asset AS a
                ORDER BY h, a.id
                """,
                [SOURCE, START, first, last - 1],
            )
            logger.info("  %d / %d hours, %.0fs", last, hours, time.monotonic() - started)
        cur.execute("VACUUM ANALYZE prices_quote")
        cur.execute("ANALYZE prices_asset")


def deep_cursor(depth: int) -> str:
    """The cursor a client holds after paging `depth` rows down /data's default order."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT observed_at, id FROM prices_quote ORDER BY observed_at DESC, id DESC "
            "OFFSET %s LIMIT 1",
            [depth - 1],
        )
        observed_at, row_id = cur.fetchone()
    return encode_cursor(
        Cursor(ordering="-observed_at", value=observed_at, id=row_id, reverse=False)
    )


def start_gunicorn(port: int, anon_rate: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "THROTTLE_ANON_RATE": anon_rate,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            # Production's settings file (logging, timeouts), with this benchmark's address.
            "--config",
            "config/gunicorn_conf.py",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    stop(process)
    raise SystemExit("gunicorn did not answer /health within 30 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def fetch(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def wrk(url: str, duration: int) -> dict[str, float]:
    """requests/s, p50 and p99 (ms) of `url` at 16 connections for `duration` seconds."""
    subprocess.run(["wrk", "-t2", "-c16", "-d3s", url], check=True, capture_output=True)
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{duration}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise SystemExit(f"{non_2xx.group(1)} error responses from {url}:\n{out}")

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return {"rps": rps, "p50_ms": ms("50"), "p99_ms": ms("99")}


def check_throttle(port: int, rate: int) -> tuple[int, int]:
    """Send 2 x rate requests one after another; count the 200s and 429s across both workers."""
    ok = limited = 0
    # Start early in a minute, so the whole check falls in one throttle window.
    if time.time() % 60 > 40:
        time.sleep(61 - time.time() % 60)
    for _ in range(2 * rate):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/data?limit=1", timeout=10):
                ok += 1
        except urllib.error.HTTPError as exc:
            if exc.code != 429 or not exc.headers.get("Retry-After"):
                raise
            limited += 1
    return ok, limited


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=5_000_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="wrk runs per query")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--load-only", action="store_true")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("set DATABASE_URL to a PostgreSQL database")

    load(args.quotes)
    if args.load_only:
        return
    hours = args.quotes // ASSETS
    middle = START + timedelta(hours=hours // 2)
    window = {
        "observed_after": middle.isoformat().replace("+00:00", "Z"),
        "observed_before": (middle + timedelta(days=7)).isoformat().replace("+00:00", "Z"),
    }
    base = f"http://127.0.0.1:{args.port}"
    cases = {
        "first page": f"{base}/data",
        "symbol=BTC": f"{base}/data?symbol=BTC",
        "time range (7 days)": f"{base}/data?" + "&".join(f"{k}={v}" for k, v in window.items()),
        "deep page (row 4,500,000)": f"{base}/data?cursor="
        + deep_cursor(min(4_500_000, args.quotes - 100)),
    }
    # One asset's last year of hourly quotes: candles at two intervals, and its coverage.
    end = START + timedelta(hours=hours)
    year = f"from={(end - timedelta(days=365)).isoformat()}&to={end.isoformat()}".replace(
        "+00:00", "Z"
    )
    history = {
        "candles 1h, a year (BTC)": f"{base}/api/assets/BTC/candles?interval=1h&{year}",
        "candles 1d, a year (BTC)": f"{base}/api/assets/BTC/candles?interval=1d&{year}",
        "coverage 1h, a year (BTC)": f"{base}/api/assets/BTC/coverage?interval=1h&{year}",
    }
    connection.close()

    server = start_gunicorn(args.port, anon_rate="1000000000/minute")
    try:
        for name, url in cases.items():
            body = fetch(url)
            if len(body["results"]) != 50 or body["next"] is None:
                raise SystemExit(f"{name}: expected a full page with a next link")
        for name, url in history.items():
            body = fetch(url)
            if not body.get("results", body.get("sources")):
                raise SystemExit(f"{name}: expected candles or coverage")
        cases = {**cases, **history}
        # Rounds interleave the cases, so a burst of other load on the machine does not land on
        # one case only; each case reports its median round (by p99).
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, url in cases.items():
                rounds[name].append(wrk(url, args.duration))
        results = {
            name: sorted(runs, key=lambda r: r["p99_ms"])[len(runs) // 2]
            for name, runs in rounds.items()
        }
    finally:
        stop(server)

    cache = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
    print(
        f"\n{args.quotes:,} quotes, gunicorn 2 sync workers, wrk -t2 -c16 -d{args.duration}s, "
        f"median of {args.rounds} rounds"
    )
    print(f"throttle cache: {cache}; load average after: {os.getloadavg()[0]:.2f}")
    print(f"{'query':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, r in results.items():
        print(f"{name:<28}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}")
    first, deep = results["first page"], results["deep page (row 4,500,000)"]
    print(
        f"deep / first page: p50 {deep['p50_ms'] / first['p50_ms']:.2f}x, "
        f"p99 {deep['p99_ms'] / first['p99_ms']:.2f}x"
    )

    rate = 30
    # The measurements above counted thousands of requests from this address in the current
    # window; start the check from empty counters.
    caches["default"].clear()
    server = start_gunicorn(args.port, anon_rate=f"{rate}/minute")
    try:
        ok, limited = check_throttle(args.port, rate)
    finally:
        stop(server)
    print(f"throttle {rate}/minute across 2 workers: {ok} answered, {limited} got 429")


if __name__ == "__main__":
    main()
