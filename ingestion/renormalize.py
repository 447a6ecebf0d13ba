"""Rebuild a source's quotes from its stored raw records, without calling any provider.

For use after a mapping fix (a merged asset, a re-mapped identifier) or a normalization fix: the
quotes of the source are replaced, in one transaction, by what the current identifiers and
normalization make of every raw record, oldest first (a later record of the same asset and time
wins, as it did when ingested). Rejections are re-evaluated too. Running it twice gives the same
quotes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from itertools import islice

from django.conf import settings
from django.db import transaction

from ingestion.models import RawRecord
from ingestion.normalize import Observation, Rejected
from ingestion.pipeline import BatchCounts, column_fitter, upsert_observations
from ingestion.sources import build_source
from prices.models import Quote
from runs.models import Run

logger = logging.getLogger(__name__)


def renormalize(
    *,
    source: str,
    batch_size: int | None = None,
    on_batch: Callable[[Run], None] | None = None,
) -> Run:
    """Replace the quotes of `source` with ones rebuilt from its raw records; return the Run.

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
            removed, _ = Quote.objects.filter(source=source).delete()
            fit = column_fitter()
            records = (
                RawRecord.objects.filter(source=source)
                .order_by("id")
                .values_list("id", "payload", "rejection_reason")
                .iterator(chunk_size=batch_size or settings.ETL_BATCH_SIZE)
            )
            while chunk := list(islice(records, batch_size or settings.ETL_BATCH_SIZE)):
                counts = BatchCounts(read=len(chunk))
                accepted: list[tuple[Observation, int]] = []
                reasons: dict[int, str] = {}
                for raw_id, payload, old_reason in chunk:
                    try:
                        accepted.append((fit(src.normalize(payload)), raw_id))
                        reason = ""
                    except Rejected as exc:
                        reason = str(exc)
                        counts.rejected += 1
                    if reason != old_reason:
                        reasons[raw_id] = reason
                RawRecord.objects.bulk_update(
                    [RawRecord(pk=pk, rejection_reason=r) for pk, r in reasons.items()],
                    ["rejection_reason"],
                    batch_size=1000,
                )
                upsert_observations(run=run, source=source, accepted=accepted, counts=counts)
                run.add_counts(
                    read=counts.read,
                    inserted=counts.inserted,
                    updated=counts.updated,
                    unchanged=counts.unchanged,
                    rejected=counts.rejected,
                )
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
