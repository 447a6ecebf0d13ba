"""Set-based writes for the pipeline's hot path, which report what they did.

On PostgreSQL a batch is streamed with COPY into a temporary staging table, then moved with one
`INSERT ... SELECT ... ON CONFLICT` statement, so the unique index does the duplicate check while
inserting (no separate lookup, no per-row SQL, no model instances). Elsewhere (SQLite) the ORM
looks up what exists and bulk-inserts the rest. Both paths give the same rows and the same
counts; callers hold the transaction.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import connection

from ingestion.models import RawRecord
from prices.models import Quote

QUOTE_VALUE_FIELDS = ("price_usd", "market_cap_usd", "volume_24h_usd", "percent_change_24h")
RAW_COLUMNS = (
    "source",
    "run_id",
    "external_id",
    "payload",
    "content_hash",
    "fetched_at",
    "rejection_reason",
)
QUOTE_COLUMNS = (
    "asset_id",
    "source",
    "observed_at",
    *QUOTE_VALUE_FIELDS,
    "raw_record_id",
    "run_id",
)


class RawRow(NamedTuple):
    source: str
    run_id: int
    external_id: str
    payload: dict[str, Any]
    content_hash: str
    fetched_at: datetime
    rejection_reason: str


class QuoteRow(NamedTuple):
    asset_id: int
    source: str
    observed_at: datetime
    price_usd: Decimal
    market_cap_usd: Decimal | None
    volume_24h_usd: Decimal | None
    percent_change_24h: Decimal | None
    raw_record_id: int
    run_id: int


class QuoteCounts(NamedTuple):
    inserted: int
    updated: int


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def relax_commit_durability() -> None:
    """Let this transaction's COMMIT return before its WAL reaches disk (PostgreSQL).

    Safe here because data and checkpoint commit together: a server crash can lose the last
    few batches, but then it loses their checkpoint too, and the next run reads them again.
    """
    if _postgres():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def insert_raw_records(rows: Sequence[RawRow]) -> dict[str, int]:
    """Insert the raw records whose (source, content hash) is not stored yet.

    Returns {content hash: new id} for the rows inserted; rows with known content are skipped.
    Content hashes must be unique within `rows`.
    """
    if not rows:
        return {}
    if not _postgres():
        source = rows[0].source
        known = set(
            RawRecord.objects.filter(
                source=source, content_hash__in=[row.content_hash for row in rows]
            ).values_list("content_hash", flat=True)
        )
        created = RawRecord.objects.bulk_create(
            RawRecord(**row._asdict()) for row in rows if row.content_hash not in known
        )
        return {record.content_hash: record.pk for record in created}
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def dumps(payload: dict[str, Any]) -> str:
        # jsonb refuses NUL characters; they become U+FFFD in the stored copy.
        return encode(payload).replace("\\u0000", "\\ufffd")

    table = RawRecord._meta.db_table
    with connection.cursor() as cursor:
        _stage(
            cursor,
            table=table,
            columns=RAW_COLUMNS,
            rows=(
                (
                    *row[:3],
                    dumps(row.payload),
                    row.content_hash,
                    row.fetched_at.isoformat(),
                    row.rejection_reason,
                )
                for row in rows
            ),
            not_null=("external_id", "rejection_reason"),
        )
        columns = ", ".join(RAW_COLUMNS)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _stage_{table} "
            "ON CONFLICT (source, content_hash) DO NOTHING RETURNING content_hash, id"
        )
        return dict(cursor.fetchall())


def upsert_quotes(rows: Sequence[QuoteRow]) -> QuoteCounts:
    """Insert new quotes; overwrite a stored quote at the same (asset, source, time) only when
    one of its values differs. Keys must be unique within `rows`."""
    if not rows:
        return QuoteCounts(0, 0)
    if not _postgres():
        return _upsert_quotes_orm(rows)
    table = Quote._meta.db_table
    columns = ", ".join(QUOTE_COLUMNS)
    changed = " OR ".join(
        f"{table}.{name} IS DISTINCT FROM EXCLUDED.{name}" for name in QUOTE_VALUE_FIELDS
    )
    updates = ", ".join(
        f"{name} = EXCLUDED.{name}" for name in (*QUOTE_VALUE_FIELDS, "raw_record_id", "run_id")
    )
    with connection.cursor() as cursor:
        _stage(
            cursor,
            table=table,
            columns=QUOTE_COLUMNS,
            # None becomes an unquoted empty field, which COPY reads as NULL.
            rows=((*row[:2], row.observed_at.isoformat(), *row[3:]) for row in rows),
        )
        # xmax is 0 on a row this statement inserted, and set on one it updated.
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _stage_{table} "
            f"ON CONFLICT (asset_id, source, observed_at) DO UPDATE SET {updates} "
            f"WHERE {changed} RETURNING (xmax = 0)"
        )
        outcomes = [inserted for (inserted,) in cursor.fetchall()]
    inserted = sum(outcomes)
    return QuoteCounts(inserted, len(outcomes) - inserted)


def _stage(
    cursor: Any,
    *,
    table: str,
    columns: Sequence[str],
    rows: Any,
    not_null: Sequence[str] = (),
) -> None:
    """COPY rows into an empty per-connection temporary table shaped like `table`."""
    names = ", ".join(columns)
    cursor.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS _stage_{table} ON COMMIT DELETE ROWS AS "
        f"SELECT {names} FROM {table} WITH NO DATA"
    )
    # Emptied at commit anyway, but several batches can share one transaction (in tests).
    cursor.execute(f"TRUNCATE _stage_{table}")
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    buffer.seek(0)
    options = f", FORCE_NOT_NULL ({', '.join(not_null)})" if not_null else ""
    cursor.copy_expert(
        f"COPY _stage_{table} ({names}) FROM STDIN WITH (FORMAT csv{options})", buffer
    )


def _upsert_quotes_orm(rows: Sequence[QuoteRow]) -> QuoteCounts:
    wanted = {(row.asset_id, row.observed_at): row for row in rows}
    source = rows[0].source
    stored = {
        (quote.asset_id, quote.observed_at): quote
        for quote in Quote.objects.filter(
            source=source,
            asset_id__in={row.asset_id for row in rows},
            observed_at__in={row.observed_at for row in rows},
        ).only("id", "asset_id", "observed_at", *QUOTE_VALUE_FIELDS)
    }
    new: list[Quote] = []
    changed: list[Quote] = []
    for key, row in wanted.items():
        quote = stored.get(key)
        if quote is None:
            new.append(Quote(**row._asdict()))
            continue
        values = {name: getattr(row, name) for name in QUOTE_VALUE_FIELDS}
        # Decimal equality ignores trailing zeros: 1.50 == 1.5.
        if all(getattr(quote, name) == value for name, value in values.items()):
            continue
        for name, value in {
            **values,
            "raw_record_id": row.raw_record_id,
            "run_id": row.run_id,
        }.items():
            setattr(quote, name, value)
        changed.append(quote)
    Quote.objects.bulk_create(new)
    Quote.objects.bulk_update(changed, [*QUOTE_VALUE_FIELDS, "raw_record", "run"], batch_size=1000)
    return QuoteCounts(len(new), len(changed))
