"""CSV ingestion throughput: generate a Kaggle-layout file, ingest it, ingest it again unchanged,
then ingest a second file of other coins into the loaded database.

Prints, from the same run: rows/s end to end; a plain `\\copy` of the same file into an unindexed
table and our rows/s as a share of it; the on-disk size of the raw unit, rejection and quote
tables (with their indexes) against the file's size; the ingest process's peak RSS; the wall time
of the no-change re-run; and the second file's time against the first's. The files' numbers are
synthetic (a throughput test), not market data; they are written under bench/out/ and never
committed.

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


def generate(path: Path, rows: int, coins: int, *, first_coin: int = 0) -> None:
    days = -(-rows // coins)
    start = date(2015, 1, 1)
    with path.open("w") as handle:
        handle.write(HEADER)
        written = 0
        for coin in range(first_coin, first_coin + coins):
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
    # As production runs it: DEBUG off (with it on, Django keeps the last 9,000 queries' SQL).
    env = {**os.environ, "DEBUG": os.environ.get("DEBUG", "false")}
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


def psql(url: str, sql: str) -> str:
    parsed = urlparse(url)
    command = [
        "psql",
        "-qAt",
        "-h",
        parsed.hostname or "127.0.0.1",
        "-U",
        parsed.username or "postgres",
    ]
    result = subprocess.run(
        [*command, "-d", parsed.path.lstrip("/"), "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def plain_copy_seconds(url: str, path: Path) -> float:
    """A plain \\copy of the file into an unindexed table of text columns: what the database
    takes at most, measured in the same run."""
    psql(url, "DROP TABLE IF EXISTS bench_plain_copy")
    columns = ", ".join(f"c{n} text" for n in range(HEADER.count(",") + 1))
    psql(url, f"CREATE TABLE bench_plain_copy ({columns})")
    started = time.perf_counter()
    psql(url, f"\\copy bench_plain_copy FROM '{path}' WITH (FORMAT csv, HEADER true)")
    elapsed = time.perf_counter() - started
    psql(url, "DROP TABLE bench_plain_copy")
    return elapsed


def table_mb(url: str, table: str) -> float:
    return int(psql(url, f"SELECT pg_total_relation_size('{table}')")) / 1e6


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
    second = out / f"kaggle_{args.rows}_second.csv"
    if not path.exists():
        generate(path, args.rows, args.coins)
    if not second.exists():
        generate(second, args.rows, args.coins, first_coin=args.coins)
    manage("migrate", "-v0")
    file_mb = path.stat().st_size / 1e6
    print(f"file: {path.name}, {file_mb:.0f} MB, {args.rows:,} rows")

    copy_seconds = plain_copy_seconds(url, path)
    copy_rate = args.rows / copy_seconds
    print(f"plain \\copy into an unindexed table: {copy_seconds:.1f} s, {copy_rate:,.0f} rows/s")

    elapsed, summary = manage("ingest", "--source", "csv", "--path", str(path))
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rate = args.rows / elapsed
    print(
        f"first ingest: {elapsed:.1f} s, {rate:,.0f} rows/s end to end "
        f"({rate / copy_rate:.0%} of the plain copy)"
    )
    print(f"  {summary}")
    print(f"peak RSS of the ingest process: {peak_rss_mb:.0f} MB")
    sizes = {
        table: table_mb(url, table)
        for table in ("ingestion_rawunit", "ingestion_rejection", "prices_quote")
    }
    raw = sizes["ingestion_rawunit"] + sizes["ingestion_rejection"]
    print(
        f"on disk with indexes: raw units {sizes['ingestion_rawunit']:.1f} MB, rejections "
        f"{sizes['ingestion_rejection']:.1f} MB ({raw / file_mb:.2f} x the file), quotes "
        f"{sizes['prices_quote']:.0f} MB"
    )

    rerun, summary = manage("ingest", "--source", "csv", "--path", str(path))
    print(f"unchanged re-run: {rerun:.2f} s (process start included)")
    print(f"  {summary}")

    again, summary = manage("ingest", "--source", "csv", "--path", str(second))
    print(
        f"second file ({args.rows:,} rows of other coins) into the loaded database: {again:.1f} s, "
        f"{args.rows / again:,.0f} rows/s ({again / elapsed:.2f} x the first)"
    )
    print(f"  {summary}")


if __name__ == "__main__":
    main()
