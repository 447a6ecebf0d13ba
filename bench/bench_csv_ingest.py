"""CSV ingestion throughput: generate a Kaggle-layout file, ingest it, ingest it again unchanged.

Prints rows/s end to end (raw records and quotes written), the ingest process's peak RSS, and
the wall time of the no-change re-run. The file's numbers are synthetic (a throughput test), not
market data; it is written under bench/out/ and never committed.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_csv \
        .venv/bin/python bench/bench_csv_ingest.py --rows 1000000

The database named in DATABASE_URL is dropped and re-created first (PostgreSQL only).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
HEADER = "SNo,Name,Symbol,Date,High,Low,Open,Close,Volume,Marketcap\n"


def generate(path: Path, rows: int, coins: int) -> None:
    days = -(-rows // coins)
    start = date(2015, 1, 1)
    with path.open("w") as handle:
        handle.write(HEADER)
        written = 0
        for coin in range(coins):
            name, symbol = f"Benchcoin {coin:04d}", f"BC{coin:04d}"
            for day in range(days):
                if written == rows:
                    return
                when = start + timedelta(days=day)
                close = 1 + (coin * 7919 + day * 104729) % 100000 / 1000
                handle.write(
                    f"{written + 1},{name},{symbol},{when} 23:59:59,{close * 1.05:.6f},"
                    f"{close * 0.95:.6f},{close:.6f},{close:.6f},{close * 1e6:.2f},"
                    f"{close * 1e8:.2f}\n"
                )
                written += 1


def reset_database(url: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        sys.exit("bench_csv_ingest needs a PostgreSQL DATABASE_URL")
    name = parsed.path.lstrip("/")
    host, user = parsed.hostname or "127.0.0.1", parsed.username or "postgres"
    psql = ["psql", "-q", "-h", host, "-U", user, "-d", "postgres", "-c"]
    subprocess.run([*psql, f'DROP DATABASE IF EXISTS "{name}"'], check=True)
    subprocess.run([*psql, f'CREATE DATABASE "{name}"'], check=True)


def manage(*args: str) -> tuple[float, str]:
    env = {**os.environ, "DEBUG": os.environ.get("DEBUG", "true")}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--coins", type=int, default=500)
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    reset_database(url)
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    path = out / f"kaggle_{args.rows}.csv"
    if not path.exists():
        generate(path, args.rows, args.coins)
    manage("migrate", "-v0")

    elapsed, summary = manage("ingest", "--source", "csv", "--path", str(path))
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"file: {path.name}, {path.stat().st_size / 1e6:.0f} MB, {args.rows} rows")
    print(f"first ingest: {elapsed:.1f} s, {args.rows / elapsed:,.0f} rows/s end to end")
    print(f"  {summary}")
    print(f"peak RSS of the ingest process: {peak_rss_mb:.0f} MB")

    elapsed, summary = manage("ingest", "--source", "csv", "--path", str(path))
    print(f"unchanged re-run: {elapsed:.2f} s (process start included)")
    print(f"  {summary}")


if __name__ == "__main__":
    main()
