"""Rebuild a source's quotes from its stored raw units, without calling any provider.

For use after a mapping fix (a merged asset, a re-mapped identifier) or a normalization fix: the
quotes that came from the source's stored units are replaced, in one transaction, by what the
current identifiers and normalization make of every unit, oldest first (a later unit's value of
the same asset and time wins, as it did when ingested). Each unit is read again by the source's
own reader (`Source.replay`) and goes through the same preparation and the same write as
ingest. Rejections are re-evaluated too. Quotes whose unit retention removed stay as they are.
Running it twice gives the same quotes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from ingestion.models import RawUnit, Rejection
from ingestion.pipeline import batch_preparer, write_batch
from ingestion.sources import build_source
from ingestion.sources.base import Item, Source
from prices.models import Quote
from runs.models import Run

logger = logging.getLogger(__name__)


def renormalize(
    *,
    source: str,
    on_batch: Callable[[Run], None] | None = None,
) -> Run:
    """Replace the quotes of `source` with ones rebuilt from its raw units; return the Run.

    Raises `RunAlreadyActive` while that source is being ingested. A lost database connection
    is recorded on the run once a new one opens (a few tries), else its error is raised.
    """
    src = build_source(source)
    run = Run.start(
        source=source,
        kind=Run.Kind.RENORMALIZE,
        stale_after=timedelta(seconds=settings.ETL_STALE_RUN_SECONDS),
    )
    try:
        with transaction.atomic():
            units = RawUnit.objects.filter(source=source)
            removed, _ = Quote.objects.filter(
                source=source, raw_unit_id__in=units.values("id")
            ).delete()
            Rejection.objects.filter(source=source).delete()
            prepare = batch_preparer(encode=connection.vendor == "postgresql")
            fields = ["id", "kind", "content", "context", "line_start", "file_name"]
            for unit in units.order_by("id").only(*fields).iterator(chunk_size=20):
                batch = prepare(src, replayed_items(src, unit))
                counts = write_batch(
                    run=run,
                    source=source,
                    raw_unit_id=unit.pk,
                    batch=batch,
                    record_rejections=True,
                    asset_slug=src.asset_slug,
                )
                run.add_counts(**asdict(counts))
                if on_batch is not None:
                    on_batch(run)
    except Exception as exc:
        if run.lost_connection(exc):
            logger.error("renormalize run %s (%s) lost the database connection", run.pk, source)
            run.finish_after_lost_connection(exc)
        else:
            logger.exception("renormalize run %s (%s) failed", run.pk, source)
            run.finish(status=Run.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        return run
    logger.info(
        "renormalize run %s (%s): %s quotes removed, %s rebuilt",
        run.pk,
        source,
        removed,
        run.records_inserted,
    )
    run.options = {**run.options, "quotes_removed": removed}
    run.save(update_fields=["options"])
    status = Run.Status.PARTIAL if run.records_rejected else Run.Status.SUCCEEDED
    run.finish(status=status)
    return run


def replayed_items(src: Source, unit: RawUnit) -> list[Item]:
    """A stored unit's items, read again as they were read when it arrived."""
    data = unit.data()
    if unit.kind == RawUnit.Kind.RECORDS:
        # Migrated per-record data: JSON lines of {"location", "payload"}.
        rows: list[dict[str, Any]] = [json.loads(line) for line in data.splitlines() if line]
        return [
            Item(row["location"], position, row["payload"])
            for position, row in enumerate(rows, start=1)
        ]
    return src.replay(
        data=data, context=unit.context, line_start=unit.line_start, file_name=unit.file_name
    )
