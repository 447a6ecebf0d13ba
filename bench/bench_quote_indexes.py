"""What each index of the quote table costs an insert (PostgreSQL).

Stages N synthetic quote rows in a temporary table, then times the pipeline's kind of
`INSERT ... SELECT ... ON CONFLICT DO UPDATE` into an empty quote table: once with every index,
then once without each secondary index in turn. Prints µs per row and the difference.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_idx \\
        .venv/bin/python bench/bench_quote_indexes.py --rows 500000

The database named in DATABASE_URL is dropped and re-created first.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))
from bench_csv_ingest import manage, reset_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    args = parser.parse_args()
    reset_database(os.environ.get("DATABASE_URL", ""))
    manage("migrate", "-v0")

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DEBUG", "true")
    import django

    django.setup()
    from django.db import connection

    from ingestion.bulk import _UPSERT, QUOTE_VALUE_FIELDS
    from prices.models import Asset, Quote

    table = Quote._meta.db_table
    assets = Asset.objects.bulk_create(
        Asset(slug=f"bench-{n}", symbol=f"B{n}", name=f"Bench {n}") for n in range(500)
    )
    values = ", ".join(QUOTE_VALUE_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE stage AS SELECT "
            f"{assets[0].pk} + (n % 500) AS asset_id, "
            "timestamptz '2015-01-01' + (n / 500) * interval '1 day' AS observed_at, "
            "(1 + (n % 1000) / 1000.0)::numeric AS price_usd, n::numeric * 1000 AS market_cap_usd, "
            "n::numeric AS volume_24h_usd, NULL::numeric AS percent_change_24h, "
            "1.01::numeric AS open_usd, 1.05::numeric AS high_usd, 0.95::numeric AS low_usd, "
            "'1d'::text AS interval, n AS position "
            f"FROM generate_series(0, {args.rows - 1}) AS n"
        )
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
            "AND indexname NOT LIKE %s AND indexname <> %s",
            [table, "%pkey", "prices_quote_unique_observation"],
        )
        secondary = cursor.fetchall()

    def timed() -> float:
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {table}")
            cursor.execute("CHECKPOINT")
            started = time.perf_counter()
            cursor.execute(
                f"INSERT INTO {table} (asset_id, source, observed_at, {values}, raw_unit_id, "
                f"raw_position, run_id) SELECT asset_id, 'bench', observed_at, {values}, 1, "
                f"position, 1 FROM stage {_UPSERT}"
            )
            return (time.perf_counter() - started) / args.rows * 1e6

    connection.set_autocommit(True)
    full = timed()
    print(f"{args.rows:,} rows; every index: {full:.2f} µs/row")
    for name, definition in secondary:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX {name}")
        without = timed()
        print(f"  without {name}: {without:.2f} µs/row (the index costs {full - without:.2f})")
        with connection.cursor() as cursor:
            cursor.execute(definition)


if __name__ == "__main__":
    main()
