"""One ETL run: fetch, keep raw, normalize, resolve identity, upsert quotes, checkpoint.

Each batch commits its raw records, its quotes, the checkpoint and the run's counters in one
transaction, so a crash at any instant loses at most the batch in flight and the next run
continues from the checkpoint with no duplicate and no gap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from ingestion.identity import ProviderAsset, resolve_assets
from ingestion.models import RawRecord
from ingestion.normalize import Observation, Rejected, fit
from ingestion.sources import build_source
from ingestion.sources.base import Item, Source, SourceError
from prices.models import Quote
from runs.models import Checkpoint, Run

logger = logging.getLogger(__name__)

QUOTE_VALUE_FIELDS = ("price_usd", "market_cap_usd", "volume_24h_usd", "percent_change_24h")


class InjectedFailure(Exception):
    """The crash asked for by --fail-after / ETL_FAIL_AFTER_N_RECORDS."""


@dataclass
class BatchCounts:
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejections: list[tuple[str, str]] = field(default_factory=list)


def ingest(
    *,
    source: str,
    trigger: str = Run.Trigger.CLI,
    path: str | None = None,
    symbol: str | None = None,
    fail_after: int | None = None,
    batch_size: int | None = None,
    on_batch: Callable[[Run], None] | None = None,
) -> Run:
    """Run the ETL once for `source` and return the finished `Run`.

    Raises `RunAlreadyActive` if that source is running elsewhere, and `SourceError` for a
    source that cannot even be built (an unknown name). Every other failure is recorded on the
    returned run, whose status is then `failed`.
    """
    src = build_source(source, path=path, symbol=symbol)
    fail_after = settings.ETL_FAIL_AFTER_N_RECORDS if fail_after is None else fail_after
    run = Run.start(
        source=source,
        trigger=trigger,
        options={**src.describe(), "fail_after": fail_after or None},
        stale_after=timedelta(seconds=settings.ETL_STALE_RUN_SECONDS),
    )
    try:
        _execute(
            run=run,
            src=src,
            fail_after=fail_after or 0,
            batch_size=batch_size or settings.ETL_BATCH_SIZE,
            on_batch=on_batch,
        )
    except (SourceError, InjectedFailure) as exc:
        logger.error("run %s (%s) failed: %s", run.pk, source, exc)
        run.finish(status=Run.Status.FAILED, error=str(exc), checkpoint_after=_cursor(source))
    except Exception as exc:
        logger.exception("run %s (%s) crashed", run.pk, source)
        run.finish(
            status=Run.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}",
            checkpoint_after=_cursor(source),
        )
    else:
        status = Run.Status.PARTIAL if run.records_rejected else Run.Status.SUCCEEDED
        run.finish(status=status, checkpoint_after=_cursor(source))
    return run


def _cursor(source: str) -> dict[str, Any]:
    return Checkpoint.for_source(source).cursor


def _execute(
    *,
    run: Run,
    src: Source,
    fail_after: int,
    batch_size: int,
    on_batch: Callable[[Run], None] | None,
) -> None:
    checkpoint = Checkpoint.for_source(src.name)
    run.checkpoint_before = checkpoint.cursor
    run.save(update_fields=["checkpoint_before"])
    items = src.fetch(checkpoint.cursor)
    if fail_after:
        items = _fail_after(items, fail_after)
    while batch := list(islice(items, batch_size)):
        # The generator is paused right after the batch's last item: its position is the
        # cursor that belongs with this batch.
        cursor = src.position()
        with transaction.atomic():
            counts = store_batch(run=run, src=src, items=batch)
            checkpoint.advance(cursor=cursor, run=run)
            run.add_counts(
                read=counts.read,
                inserted=counts.inserted,
                updated=counts.updated,
                unchanged=counts.unchanged,
                rejected=counts.rejected,
            )
        for where, reason in counts.rejections:
            logger.warning("run %s rejected %s: %s", run.pk, where, reason)
        if on_batch is not None:
            on_batch(run)


def _fail_after(items: Iterator[Item], limit: int) -> Iterator[Item]:
    for count, item in enumerate(items, start=1):
        if count > limit:
            raise InjectedFailure(
                f"injected failure after {limit} records (--fail-after / ETL_FAIL_AFTER_N_RECORDS)"
            )
        yield item


def store_batch(*, run: Run, src: Source, items: list[Item]) -> BatchCounts:
    """Store one batch; the caller holds the transaction."""
    counts = BatchCounts(read=len(items))
    unique: dict[str, Item] = {}
    for item in items:
        unique.setdefault(item.content_hash, item)
    counts.unchanged += len(items) - len(unique)

    # Content already stored (by an earlier run, or a re-read file) writes nothing again.
    known = dict(
        RawRecord.objects.filter(source=src.name, content_hash__in=list(unique)).values_list(
            "content_hash", "rejection_reason"
        )
    )
    for reason in known.values():
        if reason:
            counts.rejected += 1
        else:
            counts.unchanged += 1
    fresh = [item for digest, item in unique.items() if digest not in known]
    if not fresh:
        return counts

    fetched_at = timezone.now()
    raws: list[RawRecord] = []
    observations: list[Observation | None] = []
    for item in fresh:
        try:
            observation: Observation | None = _fit_to_columns(src.normalize(item.payload))
            reason = ""
        except Rejected as exc:
            observation, reason = None, str(exc)
            counts.rejected += 1
            counts.rejections.append((item.external_id, reason))
        observations.append(observation)
        raws.append(
            RawRecord(
                source=src.name,
                run=run,
                external_id=item.external_id,
                payload=item.payload,
                content_hash=item.content_hash,
                fetched_at=fetched_at,
                rejection_reason=reason,
            )
        )
    RawRecord.objects.bulk_create(raws)
    accepted = [(o, raw) for o, raw in zip(observations, raws, strict=True) if o is not None]
    _upsert_quotes(run=run, source=src.name, accepted=accepted, counts=counts)
    return counts


def _fit_to_columns(observation: Observation) -> Observation:
    """Round values to what the database keeps, so comparing with stored quotes is exact."""
    # SQLite keeps decimals as 8-byte floats: 15 significant digits survive a round trip.
    significant = 15 if connection.vendor == "sqlite" else None
    for name in QUOTE_VALUE_FIELDS:
        column = Quote._meta.get_field(name)
        value = fit(
            getattr(observation, name),
            field=name,
            max_digits=column.max_digits,
            places=column.decimal_places,
            significant=significant,
        )
        setattr(observation, name, value)
    return observation


def _upsert_quotes(
    *,
    run: Run,
    source: str,
    accepted: list[tuple[Observation, RawRecord]],
    counts: BatchCounts,
) -> None:
    if not accepted:
        return
    asset_ids = resolve_assets(
        source=source,
        assets=(ProviderAsset(o.identity, o.symbol, o.name) for o, _ in accepted),
    )
    # One row per (asset, time): PostgreSQL refuses to touch a row twice in one statement.
    latest: dict[tuple[int, Any], tuple[Observation, RawRecord]] = {}
    for observation, raw in accepted:
        key = (asset_ids[observation.identity], observation.observed_at)
        if key in latest:
            counts.unchanged += 1
        latest[key] = (observation, raw)

    existing = {
        (quote.asset_id, quote.observed_at): quote
        for quote in Quote.objects.filter(
            source=source,
            asset_id__in={asset_id for asset_id, _ in latest},
            observed_at__in={observed_at for _, observed_at in latest},
        ).only("id", "asset_id", "observed_at", *QUOTE_VALUE_FIELDS)
    }
    new: list[Quote] = []
    changed: list[Quote] = []
    for key, (observation, raw) in latest.items():
        values = {name: getattr(observation, name) for name in QUOTE_VALUE_FIELDS}
        quote = existing.get(key)
        if quote is None:
            new.append(
                Quote(
                    asset_id=key[0],
                    source=source,
                    observed_at=key[1],
                    raw_record=raw,
                    run=run,
                    **values,
                )
            )
        elif _same_values(quote, values):
            counts.unchanged += 1
        else:
            for name, value in values.items():
                setattr(quote, name, value)
            quote.raw_record = raw
            quote.run = run
            changed.append(quote)
    Quote.objects.bulk_create(new)
    Quote.objects.bulk_update(changed, [*QUOTE_VALUE_FIELDS, "raw_record", "run"])
    counts.inserted += len(new)
    counts.updated += len(changed)


def _same_values(quote: Quote, values: dict[str, Decimal | None]) -> bool:
    # Decimal equality ignores trailing zeros: 1.50 == 1.5.
    return all(getattr(quote, name) == value for name, value in values.items())
