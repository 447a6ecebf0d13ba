"""Backfill throughput: `manage.py backfill --source coingecko` of the reference mapping's top
assets, 365 daily points then 90 days of hourly points each, from a local stub of
`/coins/{id}/market_chart/range` (no rate-limit spacing), into a fresh PostgreSQL database.

Prints, per pass: points written, wall time (process start included), points/s, and the
backfill process's peak RSS; then the unchanged repeat (every slice already done). The stub's
prices are synthetic (a throughput test), not market data.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_backfill \\
        .venv/bin/python bench/bench_backfill.py --assets 200

The database named in DATABASE_URL is dropped and re-created first (PostgreSQL only).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_csv_ingest import manage, psql, reset_database

PATH = re.compile(r"^/api/v3/coins/([^/]+)/market_chart/range$")


class Stub(BaseHTTPRequestHandler):
    """Daily points for spans over 90 days, hourly ones below, as CoinGecko answers."""

    def do_GET(self) -> None:
        url = urlparse(self.path)
        found = PATH.match(url.path)
        if not found:
            self.send_error(404)
            return
        query = parse_qs(url.query)
        start, end = int(query["from"][0]), int(query["to"][0])
        step = 86400 if end - start > 90 * 86400 else 3600
        seed = sum(map(ord, found.group(1)))
        prices, caps, volumes = [], [], []
        for n, stamp in enumerate(range(start, end, step)):
            price = 1 + (seed * 7919 + n * 104729) % 100000 / 1000
            ms = stamp * 1000
            prices.append([ms, price])
            caps.append([ms, price * 1e8])
            volumes.append([ms, price * 1e6])
        data = json.dumps({"prices": prices, "market_caps": caps, "total_volumes": volumes})
        body = data.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def backfill(*args: str) -> tuple[float, str]:
    return manage("backfill", "--source", "coingecko", *args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=200)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    reset_database(url)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # The settings the backfill processes read (manage() passes os.environ on).
    env = {
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        "COINGECKO_BASE_URL": f"http://127.0.0.1:{server.server_port}/api/v3",
        "COINGECKO_CALLS_PER_MINUTE": "0",
    }
    os.environ.update(env)
    manage("migrate", "-v0")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    passes = [
        ("daily, 365 days", "1d", today - timedelta(days=365)),
        ("hourly, 90 days", "1h", today - timedelta(days=90)),
    ]
    for label, interval, start in passes:
        before = int(psql(url, "SELECT count(*) FROM prices_quote"))
        seconds, line = backfill(
            "--top",
            str(args.assets),
            "--from",
            start.isoformat(),
            "--to",
            today.isoformat(),
            "--interval",
            interval,
        )
        written = int(psql(url, "SELECT count(*) FROM prices_quote")) - before
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"{label}: {written:,} points in {seconds:.1f} s, {written / seconds:,.0f} points/s, "
            f"peak RSS so far {rss:.0f} MB"
        )
        print(f"  {line}")
    seconds, line = backfill(
        "--top",
        str(args.assets),
        "--from",
        passes[1][2].isoformat(),
        "--to",
        today.isoformat(),
        "--interval",
        "1h",
    )
    print(f"unchanged repeat: {seconds:.2f} s ({line})")
    server.shutdown()


if __name__ == "__main__":
    main()
