"""Set-based writes for the pipeline's hot path, which report what they did.

On PostgreSQL a whole batch (raw records and their normalized values) is streamed with one COPY
into a temporary staging table. One statement inserts the raw records
(`INSERT ... ON CONFLICT DO NOTHING`) and marks the staged rows it stored; the provider ids of
those rows are resolved to assets; a second statement upserts their quotes
(`INSERT ... ON CONFLICT DO UPDATE`) and returns only counts. The unique indexes do the duplicate
checks while inserting: no lookups, no per-row SQL, no model instances, no ids sent back and
forth. Elsewhere (SQLite) the ORM looks up what exists and bulk-inserts the rest. Both paths give
the same rows and the same counts; callers hold the transaction.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import connection

from ingestion.models import RawRecord
from prices.models import Quote

QUOTE_VALUE_FIELDS = ("price_usd", "market_cap_usd", "volume_24h_usd", "percent_change_24h")
QUOTE_COLUMNS = (
    "asset_id",
    "source",
    "observed_at",
    *QUOTE_VALUE_FIELDS,
    "raw_record_id",
    "run_id",
)


def _quote_upsert() -> str:
    """The conflict clause of both quote upserts: a stored quote at the same (asset, source,
    time) is overwritten only when one of its values differs."""
    table = Quote._meta.db_table
    changed = " OR ".join(
        f"{table}.{name} IS DISTINCT FROM EXCLUDED.{name}" for name in QUOTE_VALUE_FIELDS
    )
    updates = ", ".join(
        f"{name} = EXCLUDED.{name}" for name in (*QUOTE_VALUE_FIELDS, "raw_record_id", "run_id")
    )
    return f"ON CONFLICT (asset_id, source, observed_at) DO UPDATE SET {updates} WHERE {changed}"


_QUOTE_UPSERT = _quote_upsert()


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


def insert_raw_records(rows: Sequence[RawRow]) -> tuple[dict[str, int], set[str]]:
    """Insert the raw records whose (source, content hash) is not stored yet (the ORM path).

    Returns {content hash: id} of every row, stored before or now, and the hashes inserted now.
    Content hashes must be unique within `rows`.
    """
    if not rows:
        return {}, set()
    source = rows[0].source
    ids = dict(
        RawRecord.objects.filter(
            source=source, content_hash__in=[row.content_hash for row in rows]
        ).values_list("content_hash", "id")
    )
    created = RawRecord.objects.bulk_create(
        RawRecord(**row._asdict()) for row in rows if row.content_hash not in ids
    )
    new = {record.content_hash: record.pk for record in created}
    return {**ids, **new}, set(new)


# --- PostgreSQL: one COPY and one statement per batch ---------------------------------------------

STAGE_TABLE = "_stage_batch"
# The staging table: each raw row of a batch with its normalized values, and the id of its raw
# record once this batch has stored it.
_STAGE = (
    ("ord", "integer"),
    ("external_id", "text"),
    ("payload", "jsonb"),
    ("content_hash", "text"),
    ("rejection_reason", "text"),
    ("identity", "text"),
    ("observed_at", "timestamptz"),
    *((name, "numeric") for name in QUOTE_VALUE_FIELDS),
    ("raw_record_id", "bigint"),
    ("stored_now", "boolean"),
)
STAGE_COLUMNS = tuple(name for name, _ in _STAGE[:-2])  # what encode_batch writes


class BatchWrite(NamedTuple):
    inserted: int  # quotes inserted
    updated: int  # stored quotes whose values changed
    rejections: list[tuple[str, str]]  # (where, reason) of rejected rows not stored before


# A JSON \u0000 escape: one preceded by an even number of backslashes (an odd number would
# make it the text "\u0000" after an escaped backslash).
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _without_nul(text: str) -> str:
    """JSON text with each NUL character replaced by U+FFFD: jsonb refuses NUL."""
    return _NUL_ESCAPE.sub(r"\1\\ufffd", text) if "\\u0000" in text else text


def encode_batch(rows: Sequence[RawRow], observations: Mapping[str, Any]) -> str:
    """The batch as CSV text for COPY into the staging table: each raw row with its normalized
    values (empty for a rejected row). Pure Python, so it can run while the database works.

    `observations` maps content hashes to `ingestion.normalize.Observation`s.
    """
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    empty = ("",) * (2 + len(QUOTE_VALUE_FIELDS))
    buffer = io.StringIO()
    write = csv.writer(buffer).writerow
    for ord_, row in enumerate(rows):
        observation = observations.get(row.content_hash)
        if observation is None:
            values: tuple[Any, ...] = empty
        else:
            values = (
                observation.identity,
                observation.observed_at.isoformat(),
                observation.price_usd,
                observation.market_cap_usd,
                observation.volume_24h_usd,
                observation.percent_change_24h,
            )
        write(
            (
                ord_,
                row.external_id,
                _without_nul(encode(row.payload)),
                row.content_hash,
                row.rejection_reason,
                *values,
            )
        )
    return buffer.getvalue()


def write_staged_batch(
    *,
    source: str,
    run_id: int,
    fetched_at: datetime,
    staged: str,
    resolve: Callable[[list[str]], Mapping[str, int]],
) -> BatchWrite:
    """Write a batch encoded by `encode_batch` (PostgreSQL).

    The raw records go in first. `resolve` then gets the provider ids of the accepted rows
    among those just inserted (nothing else: rows stored before leave assets alone) and returns
    their canonical asset ids. Quotes are written for those rows; where several rows of the batch
    share an (asset, time), the last one wins.
    """
    raw_table, quote_table = RawRecord._meta.db_table, Quote._meta.db_table
    raw_columns = "source, run_id, external_id, payload, content_hash, fetched_at, rejection_reason"
    quote_columns = ", ".join(QUOTE_COLUMNS)
    values = ", ".join(QUOTE_VALUE_FIELDS)
    with connection.cursor() as cursor:
        definition = ", ".join(f"{name} {type_}" for name, type_ in _STAGE)
        _copy_into_stage(
            cursor,
            name=STAGE_TABLE,
            shape=f"({definition}) ON COMMIT DELETE ROWS",
            columns=STAGE_COLUMNS,
            data=staged,
            options=", FORCE_NOT_NULL (external_id, rejection_reason)",
        )
        # Content stored before (an earlier run, a re-read file) is skipped by the unique index;
        # the rows inserted get their new id in the staging table.
        cursor.execute(
            f"""
            WITH raw AS (
                INSERT INTO {raw_table} ({raw_columns})
                SELECT %(source)s, %(run_id)s, external_id, payload, content_hash,
                       %(fetched_at)s, rejection_reason
                FROM {STAGE_TABLE} ORDER BY ord
                ON CONFLICT (source, content_hash) DO NOTHING
                RETURNING id, content_hash
            )
            UPDATE {STAGE_TABLE} AS s SET raw_record_id = raw.id, stored_now = true
            FROM raw WHERE s.content_hash = raw.content_hash
            """,
            {"source": source, "run_id": run_id, "fetched_at": fetched_at},
        )
        # Content stored before still counts: a value that returns to an earlier one (A, B, A)
        # must end at A, though A's raw record exists. Found through the unique index.
        cursor.execute(
            f"""
            UPDATE {STAGE_TABLE} AS s SET raw_record_id = r.id
            FROM {raw_table} AS r
            WHERE s.raw_record_id IS NULL AND s.rejection_reason = ''
              AND r.source = %(source)s AND r.content_hash = s.content_hash
            """,
            {"source": source},
        )
        cursor.execute(
            f"SELECT DISTINCT identity FROM {STAGE_TABLE} "
            "WHERE raw_record_id IS NOT NULL AND rejection_reason = ''"
        )
        identities = [identity for (identity,) in cursor.fetchall()]
        asset_ids = resolve(identities) if identities else {}
        cursor.execute(
            f"""
            WITH latest AS (
                SELECT DISTINCT ON (m.asset_id, s.observed_at)
                       m.asset_id, s.observed_at, {values}, s.raw_record_id
                FROM {STAGE_TABLE} AS s
                JOIN unnest(%(identities)s::text[], %(asset_ids)s::bigint[])
                     AS m (identity, asset_id) ON m.identity = s.identity
                WHERE s.raw_record_id IS NOT NULL AND s.rejection_reason = ''
                ORDER BY m.asset_id, s.observed_at, s.ord DESC
            ),
            written AS (
                INSERT INTO {quote_table} ({quote_columns})
                SELECT asset_id, %(source)s, observed_at, {values}, raw_record_id, %(run_id)s
                FROM latest
                {_QUOTE_UPSERT}
                -- xmax is 0 on a row this statement inserted, and set on one it updated.
                RETURNING (xmax = 0) AS inserted
            )
            SELECT
                (SELECT count(*) FROM written WHERE inserted),
                (SELECT count(*) FROM written WHERE NOT inserted),
                (SELECT coalesce(json_agg(json_build_array(external_id, rejection_reason)
                                          ORDER BY ord), '[]')
                 FROM {STAGE_TABLE} WHERE stored_now AND rejection_reason <> '')
            """,
            {
                "source": source,
                "run_id": run_id,
                "identities": list(asset_ids),
                "asset_ids": list(asset_ids.values()),
            },
        )
        inserted, updated, rejections = cursor.fetchone()
    if isinstance(rejections, str):
        rejections = json.loads(rejections)
    return BatchWrite(inserted, updated, [(where, reason) for where, reason in rejections])


def upsert_quotes(rows: Sequence[QuoteRow]) -> QuoteCounts:
    """Insert new quotes; overwrite a stored quote at the same (asset, source, time) only when
    one of its values differs. Keys must be unique within `rows`."""
    if not rows:
        return QuoteCounts(0, 0)
    if not _postgres():
        return _upsert_quotes_orm(rows)
    table = Quote._meta.db_table
    columns = ", ".join(QUOTE_COLUMNS)
    with connection.cursor() as cursor:
        buffer = io.StringIO()
        # None becomes an unquoted empty field, which COPY reads as NULL.
        csv.writer(buffer).writerows(
            (*row[:2], row.observed_at.isoformat(), *row[3:]) for row in rows
        )
        _copy_into_stage(
            cursor,
            name=f"_stage_{table}",
            shape=f"ON COMMIT DELETE ROWS AS SELECT {columns} FROM {table} WITH NO DATA",
            columns=QUOTE_COLUMNS,
            data=buffer.getvalue(),
        )
        # xmax is 0 on a row this statement inserted, and set on one it updated.
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _stage_{table} "
            f"{_QUOTE_UPSERT} RETURNING (xmax = 0)"
        )
        outcomes = [inserted for (inserted,) in cursor.fetchall()]
    inserted = sum(outcomes)
    return QuoteCounts(inserted, len(outcomes) - inserted)


def _copy_into_stage(
    cursor: Any, *, name: str, shape: str, columns: Sequence[str], data: str, options: str = ""
) -> None:
    """COPY CSV `data` into the empty per-connection temporary table `name`, created on first
    use as `CREATE TEMPORARY TABLE name <shape>`."""
    cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} {shape}")
    # Emptied at commit anyway, but several batches can share one transaction (in tests).
    cursor.execute(f"TRUNCATE {name}")
    cursor.copy_expert(
        f"COPY {name} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv{options})",
        io.StringIO(data),
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
