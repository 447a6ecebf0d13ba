"""The one write path: a fetched unit stored once, then its quotes upserted, with counts.

`store_unit` keeps a unit's bytes once per (source, content hash). `write_batch` writes one
prepared batch of observations: on PostgreSQL one COPY into a temporary staging table and one
`INSERT ... ON CONFLICT DO UPDATE` that overwrites a stored quote only when a value differs and
returns only counts; elsewhere (SQLite) the ORM looks up what exists and bulk-writes the rest.
Both give the same rows and the same counts; callers hold the transaction. Ingest, renormalize
and backfill all write through here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from ingestion.models import RawUnit, Rejection, compress
from ingestion.normalize import Observation
from ingestion.sources.base import Unit
from prices.models import Quote

# The values of a quote that an upsert compares and overwrites.
QUOTE_VALUE_FIELDS = (
    "price_usd",
    "market_cap_usd",
    "volume_24h_usd",
    "percent_change_24h",
    "open_usd",
    "high_usd",
    "low_usd",
    "interval",
)


@dataclass
class Written:
    inserted: int  # quotes inserted
    updated: int  # stored quotes whose values changed


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


def store_unit(*, source: str, run_id: int, unit: Unit) -> tuple[int, bool]:
    """Keep `unit` as received, once: its id, and whether it is new (not stored before)."""
    digest = unit.content_hash()
    found = RawUnit.objects.filter(source=source, content_hash=digest).values_list("id", flat=True)
    if existing := found.first():
        return existing, False
    stored = RawUnit.objects.create(
        source=source,
        run_id=run_id,
        kind=unit.kind,
        fetched_at=timezone.now(),
        url=unit.url,
        file_name=unit.file_name,
        byte_start=unit.byte_start,
        byte_end=unit.byte_end,
        line_start=unit.line_start,
        line_end=unit.line_end,
        context=unit.context,
        media_type=unit.media_type,
        content=compress(unit.data),
        size=len(unit.data),
        items=len(unit.items),
        content_hash=digest,
    )
    return stored.pk, True


def store_rejections(
    *, source: str, run_id: int, raw_unit_id: int | None, rejections: Sequence[tuple[str, str, str]]
) -> None:
    """One row per rejected item: (location, reason, text), all already bounded."""
    now = timezone.now()
    Rejection.objects.bulk_create(
        Rejection(
            source=source,
            run_id=run_id,
            raw_unit_id=raw_unit_id,
            location=location,
            reason=reason,
            text=text,
            created_at=now,
        )
        for location, reason, text in rejections
    )


# --- quotes -----------------------------------------------------------------------------------

# The staging table: one row per accepted item, located in its unit, with the provider id that
# names its asset.
_STAGE = (
    ("position", "integer"),
    ("identity", "text"),
    ("observed_at", "timestamptz"),
    *((name, "text" if name == "interval" else "numeric") for name in QUOTE_VALUE_FIELDS),
)
STAGE_TABLE = "_stage_quotes"


def encode_batch(observations: Sequence[tuple[int, Observation]]) -> str:
    """The observations as CSV text for COPY into the staging table. Pure Python, so it can run
    while the database writes the batch before."""
    buffer = io.StringIO()
    # None becomes an unquoted empty field, which COPY reads as NULL.
    csv.writer(buffer).writerows(
        (
            position,
            o.identity,
            o.observed_at.isoformat(),
            o.price_usd,
            o.market_cap_usd,
            o.volume_24h_usd,
            o.percent_change_24h,
            o.open_usd,
            o.high_usd,
            o.low_usd,
            o.interval,
        )
        for position, o in observations
    )
    return buffer.getvalue()


def _upsert_clause() -> str:
    """A stored quote at the same (asset, time, source) is overwritten only when one of its
    values differs: the last value received wins, and an unchanged one writes nothing."""
    table = Quote._meta.db_table
    changed = " OR ".join(
        f"{table}.{name} IS DISTINCT FROM EXCLUDED.{name}" for name in QUOTE_VALUE_FIELDS
    )
    updates = ", ".join(
        f"{name} = EXCLUDED.{name}"
        for name in (*QUOTE_VALUE_FIELDS, "raw_unit_id", "raw_position", "run_id")
    )
    return f"ON CONFLICT (asset_id, observed_at, source) DO UPDATE SET {updates} WHERE {changed}"


_UPSERT = _upsert_clause()


def write_quotes(
    *,
    source: str,
    run_id: int,
    raw_unit_id: int,
    observations: Sequence[tuple[int, Observation]],
    staged: str | None,
    resolve: Callable[[list[Observation]], Mapping[str, int]],
) -> Written:
    """Upsert the quotes of one batch. `resolve` maps the batch's provider ids to canonical
    asset ids. Where several items share an (asset, time), the last one in the unit wins."""
    if not observations:
        return Written(0, 0)
    asset_ids = resolve([observation for _, observation in observations])
    if staged is not None:
        return _write_staged(
            source=source,
            run_id=run_id,
            raw_unit_id=raw_unit_id,
            staged=staged,
            asset_ids=asset_ids,
        )
    return _write_orm(
        source=source,
        run_id=run_id,
        raw_unit_id=raw_unit_id,
        observations=observations,
        asset_ids=asset_ids,
    )


def _write_staged(
    *, source: str, run_id: int, raw_unit_id: int, staged: str, asset_ids: Mapping[str, int]
) -> Written:
    table = Quote._meta.db_table
    values = ", ".join(QUOTE_VALUE_FIELDS)
    columns = f"asset_id, source, observed_at, {values}, raw_unit_id, raw_position, run_id"
    with connection.cursor() as cursor:
        definition = ", ".join(f'"{name}" {type_}' for name, type_ in _STAGE)
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE_TABLE} ({definition}) "
            "ON COMMIT PRESERVE ROWS"
        )
        # Emptied at commit anyway, but several batches can share one transaction (renormalize).
        cursor.execute(f"TRUNCATE {STAGE_TABLE}")
        names = ", ".join(f'"{name}"' for name, _ in _STAGE)
        cursor.copy_expert(
            # An empty interval (a snapshot) is the empty string, not NULL.
            f"COPY {STAGE_TABLE} ({names}) FROM STDIN "
            'WITH (FORMAT csv, FORCE_NOT_NULL ("interval"))',
            io.StringIO(staged),
        )
        cursor.execute(
            f"""
            WITH latest AS (
                SELECT DISTINCT ON (m.asset_id, s.observed_at)
                       m.asset_id, s.observed_at, {values}, s.position
                FROM {STAGE_TABLE} AS s
                JOIN unnest(%(identities)s::text[], %(asset_ids)s::bigint[])
                     AS m (identity, asset_id) ON m.identity = s.identity
                ORDER BY m.asset_id, s.observed_at, s.position DESC
            ),
            written AS (
                INSERT INTO {table} ({columns})
                SELECT asset_id, %(source)s, observed_at, {values}, %(raw_unit_id)s, position,
                       %(run_id)s
                FROM latest
                {_UPSERT}
                -- xmax is 0 on a row this statement inserted, and set on one it updated.
                RETURNING (xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
            FROM written
            """,
            {
                "source": source,
                "run_id": run_id,
                "raw_unit_id": raw_unit_id,
                "identities": list(asset_ids),
                "asset_ids": list(asset_ids.values()),
            },
        )
        inserted, updated = cursor.fetchone()
    return Written(inserted, updated)


def _write_orm(
    *,
    source: str,
    run_id: int,
    raw_unit_id: int,
    observations: Sequence[tuple[int, Observation]],
    asset_ids: Mapping[str, int],
) -> Written:
    wanted: dict[tuple[int, datetime], tuple[int, Observation]] = {}
    for position, observation in observations:
        wanted[(asset_ids[observation.identity], observation.observed_at)] = (
            position,
            observation,
        )
    stored = {
        (quote.asset_id, quote.observed_at): quote
        for quote in Quote.objects.filter(
            source=source,
            asset_id__in={asset_id for asset_id, _ in wanted},
            observed_at__in={observed_at for _, observed_at in wanted},
        ).only("id", "asset_id", "observed_at", *QUOTE_VALUE_FIELDS)
    }
    new: list[Quote] = []
    changed: list[Quote] = []
    for (asset_id, observed_at), (position, observation) in wanted.items():
        values: dict[str, Any] = {name: getattr(observation, name) for name in QUOTE_VALUE_FIELDS}
        provenance = {"raw_unit_id": raw_unit_id, "raw_position": position, "run_id": run_id}
        quote = stored.get((asset_id, observed_at))
        if quote is None:
            new.append(
                Quote(
                    asset_id=asset_id,
                    source=source,
                    observed_at=observed_at,
                    **values,
                    **provenance,
                )
            )
            continue
        # Decimal equality ignores trailing zeros: 1.50 == 1.5.
        if all(getattr(quote, name) == value for name, value in values.items()):
            continue
        for name, value in {**values, **provenance}.items():
            setattr(quote, name, value)
        changed.append(quote)
    Quote.objects.bulk_create(new)
    Quote.objects.bulk_update(
        changed, [*QUOTE_VALUE_FIELDS, "raw_unit", "raw_position", "run"], batch_size=1000
    )
    return Written(len(new), len(changed))
