"""One ETL run: fetch, keep raw, normalize, resolve identity, upsert quotes, checkpoint.

Each batch commits its raw records, its quotes, the checkpoint and the run's counters in one
transaction, so a crash at any instant loses at most the batch in flight and the next run
continues from the checkpoint with no duplicate and no gap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.logging import bind_log_context, redact
from ingestion import bulk
from ingestion.drift import DriftReport, FieldTally, detect_drift
from ingestion.identity import ProviderAsset, resolve_assets
from ingestion.models import RawRecord
from ingestion.normalize import Observation, Rejected, fit
from ingestion.readahead import read_ahead
from ingestion.sources import build_source
from ingestion.sources.base import Item, Source, SourceError
from prices.models import AssetIdentifier, Quote
from runs.models import Checkpoint, Run

logger = logging.getLogger(__name__)

IDENTITY_LENGTH = AssetIdentifier._meta.get_field("external_id").max_length
RAW_EXTERNAL_ID_LENGTH = RawRecord._meta.get_field("external_id").max_length
# A rejection's reason is for a person to read: a 50 MB value must not be copied into it.
REASON_LENGTH = 1000
# Bitcoin's genesis block: no quote of any coin is older.
EARLIEST_OBSERVATION = datetime(2009, 1, 3, tzinfo=UTC)


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
    asset: str | None = None,
    fail_after: int | None = None,
    batch_size: int | None = None,
    on_batch: Callable[[Run], None] | None = None,
    run_id: int | None = None,
) -> Run:
    """Run the ETL once for `source` and return the finished `Run`.

    `run_id` takes up a queued run of this source (the HTTP trigger starts the run in the
    request and hands its id to a detached `ingest --run-id` process).

    Raises `RunAlreadyActive` if that source is running elsewhere, and `SourceError` for a
    source that cannot even be built (an unknown name). Every other failure is recorded on the
    returned run, whose status is then `failed`; a lost database connection too, once a new one
    opens (a few tries, ~16 s in all), else its error is raised.
    """
    src = build_source(source, path=path, symbol=symbol, asset=asset)
    fail_after = settings.ETL_FAIL_AFTER_N_RECORDS if fail_after is None else fail_after
    options = {**src.describe(), "fail_after": fail_after or None}
    if run_id is None:
        run = Run.start(
            source=source,
            trigger=trigger,
            options=options,
            stale_after=timedelta(seconds=settings.ETL_STALE_RUN_SECONDS),
        )
    else:
        # Taken up in this process, which holds its lock while it works.
        run = Run.claim(pk=run_id, source=source)
        if run is None:
            raise SourceError(
                f"run {run_id} is not a queued run of {source!r}; nothing to continue"
            )
        run.options = {**run.options, **options}
        run.save(update_fields=["options"])
    # Every line logged while the run works carries its run_id and source.
    with bind_log_context(run_id=run.pk, source=source):
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
            if run.lost_connection(exc):
                logger.error("run %s (%s) lost the database connection: %s", run.pk, source, exc)
                # Reconnects (a few tries) to record it; the checkpoint is read on the new one.
                run.finish_after_lost_connection(exc, checkpoint_after=lambda: _cursor(source))
            else:
                logger.exception("run %s (%s) crashed", run.pk, source)
                # An unexpected error's text was not written for users: it may quote a secret.
                run.finish(
                    status=Run.Status.FAILED,
                    error=redact(f"{type(exc).__name__}: {exc}"),
                    checkpoint_after=_cursor(source),
                )
        else:
            status = Run.Status.PARTIAL if run.records_rejected else Run.Status.SUCCEEDED
            run.finish(status=status, checkpoint_after=_cursor(source))
        logger.info(
            "run %s (%s) %s: read %d, inserted %d, updated %d, unchanged %d, rejected %d",
            run.pk,
            source,
            run.status,
            run.records_read,
            run.records_inserted,
            run.records_updated,
            run.records_unchanged,
            run.records_rejected,
            extra={"status": run.status},
        )
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
    tally = FieldTally()
    fit = column_fitter()
    # Decided here: the read-ahead thread that prepares batches must not touch the database.
    encode = connection.vendor == "postgresql"

    def prepared() -> Iterator[PreparedBatch]:
        while batch := list(islice(items, batch_size)):
            if src.expected_schema is not None:
                records = (src.schema_record(item.payload) for item in batch)
                tally.add_all(records, schema=src.expected_schema)
            # The generator is paused right after the batch's last item: its position is the
            # cursor that belongs with this batch.
            yield prepare_batch(
                src=src,
                run_id=run.pk,
                items=batch,
                cursor=src.position(),
                fit=fit,
                encode=encode,
            )

    try:
        # The next batch is read and normalized while this one is written.
        for batch in read_ahead(prepared):
            with transaction.atomic():
                bulk.relax_commit_durability()
                counts = write_batch(run=run, src=src, batch=batch)
                # Before the checkpoint moves: refuses, rolling the batch back, if another run
                # took this one over as stale meanwhile.
                run.add_counts(
                    read=counts.read,
                    inserted=counts.inserted,
                    updated=counts.updated,
                    unchanged=counts.unchanged,
                    rejected=counts.rejected,
                )
                checkpoint.advance(cursor=batch.cursor, run=run)
            for where, reason in counts.rejections:
                logger.warning("run %s rejected %s: %s", run.pk, where, reason)
            if on_batch is not None:
                on_batch(run)
    finally:
        # Kept for a failed run too: the drift may be why a later page failed.
        report = _record_drift(run=run, src=src, tally=tally)
    if report is not None and report.removed_required:
        fields = ", ".join(report.removed_required)
        raise SourceError(
            f"{src.name}: schema drift: required field(s) {fields} missing from every item "
            f"({report.items}); the provider changed its response format. {report.summary()}"
        )


def _record_drift(*, run: Run, src: Source, tally: FieldTally) -> DriftReport | None:
    """Store on the run how the items' fields differ from the source's schema, and warn."""
    if src.expected_schema is None or not tally.items:
        return None
    report = detect_drift(tally=tally, schema=src.expected_schema)
    run.drift = report.as_json()
    run.save(update_fields=["drift"])
    if report.has_drift:
        logger.warning("run %s (%s) schema drift: %s", run.pk, src.name, report.summary())
    return report


def _fail_after(items: Iterator[Item], limit: int) -> Iterator[Item]:
    for count, item in enumerate(items, start=1):
        if count > limit:
            raise InjectedFailure(
                f"injected failure after {limit} records (--fail-after / ETL_FAIL_AFTER_N_RECORDS)"
            )
        yield item


@dataclass
class PreparedBatch:
    """One batch, read and normalized, ready to be written."""

    read: int
    duplicates: int  # items repeating another item's content in the same batch
    cursor: dict[str, Any]
    raws: list[bulk.RawRow]
    observations: dict[str, Observation]  # by content hash; rejected items have none
    staged: str | None  # the batch encoded for COPY (PostgreSQL), see bulk.encode_batch


def prepare_batch(
    *,
    src: Source,
    run_id: int,
    items: list[Item],
    cursor: dict[str, Any],
    fit: Callable[[Observation], Observation],
    encode: bool,
) -> PreparedBatch:
    """Read and normalize a batch, and encode it for COPY if `encode`: Python only, no
    database, so it can run in a thread while the database writes the batch before."""
    unique: dict[str, Item] = {}
    for item in items:
        unique.setdefault(item.content_hash, item)
    fetched_at = timezone.now()
    check = observation_checker(now=fetched_at, fit=fit)
    raws: list[bulk.RawRow] = []
    observations: dict[str, Observation] = {}
    for digest, item in unique.items():
        try:
            if item.rejection:
                raise Rejected(item.rejection)
            observations[digest] = check(src.normalize(item.payload))
            reason = ""
        except Rejected as exc:
            # Never empty: an empty reason is what marks a row as accepted.
            reason = bounded(str(exc) or "rejected", REASON_LENGTH)
        except Exception as exc:
            # Whatever one item does, it costs that item only: the rows after it still load.
            logger.debug("normalizing %s failed", item.external_id, exc_info=True)
            reason = bounded(
                f"could not read this item: {type(exc).__name__}: {exc}", REASON_LENGTH
            )
        # PostgreSQL text cannot hold NUL; an over-long location is cut, not fatal.
        where = item.external_id.replace("\x00", "\ufffd")[-RAW_EXTERNAL_ID_LENGTH:]
        raws.append(bulk.RawRow(src.name, run_id, where, item.payload, digest, fetched_at, reason))
    staged = bulk.encode_batch(raws, observations) if encode else None
    return PreparedBatch(len(items), len(items) - len(unique), cursor, raws, observations, staged)


def bounded(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, keeping its head and tail and saying how long it was."""
    if len(text) <= limit:
        return text
    marker = f" [... {len(text):,} characters in all ...] "
    keep = max(limit - len(marker), 0)
    return text[: keep - keep // 4] + marker + text[len(text) - keep // 4 :]


def observation_checker(
    *, now: datetime, fit: Callable[[Observation], Observation]
) -> Callable[[Observation], Observation]:
    """Refuse what the tables cannot hold or what would be a wrong answer once stored (a quote
    dated in the future stays "the latest" for ever), then round values to the columns."""
    latest = now + timedelta(seconds=settings.ETL_MAX_FUTURE_SKEW_SECONDS)

    def check(observation: Observation) -> Observation:
        if len(observation.identity) > IDENTITY_LENGTH:
            raise Rejected(f"provider id is longer than {IDENTITY_LENGTH} characters")
        for label, value in (
            ("provider id", observation.identity),
            ("symbol", observation.symbol),
            ("name", observation.name),
        ):
            if "\x00" in value:
                raise Rejected(f"{label} contains a NUL character")
        if observation.observed_at > latest:
            raise Rejected(
                f"time {observation.observed_at:%Y-%m-%d %H:%M:%S} UTC is in the future (more "
                f"than ETL_MAX_FUTURE_SKEW_SECONDS={settings.ETL_MAX_FUTURE_SKEW_SECONDS} ahead)"
            )
        if observation.observed_at < EARLIEST_OBSERVATION:
            raise Rejected(
                f"time {observation.observed_at:%Y-%m-%d} is before {EARLIEST_OBSERVATION:%Y-%m-%d}"
                ", the first day any cryptocurrency had a price"
            )
        return fit(observation)

    return check


def write_batch(*, run: Run, src: Source, batch: PreparedBatch) -> BatchCounts:
    """Store one prepared batch; the caller holds the transaction."""
    if batch.staged is not None:
        return _write_staged_batch(run=run, src=src, batch=batch)
    counts = BatchCounts(read=batch.read, unchanged=batch.duplicates)
    # Content stored before (an earlier run, a re-read file) is not stored twice, but its
    # values are still upserted: the quote must end at the last value received.
    ids, inserted = bulk.insert_raw_records(batch.raws)
    for raw in batch.raws:
        if raw.rejection_reason:
            counts.rejected += 1
            if raw.content_hash in inserted:
                counts.rejections.append((raw.external_id, raw.rejection_reason))
    accepted = [(observation, ids[digest]) for digest, observation in batch.observations.items()]
    upsert_observations(
        run=run, source=src.name, accepted=accepted, counts=counts, asset_slug=src.asset_slug
    )
    return counts


def _write_staged_batch(*, run: Run, src: Source, batch: PreparedBatch) -> BatchCounts:
    assert batch.staged is not None
    providers: dict[str, ProviderAsset] = {}
    for observation in batch.observations.values():
        providers[observation.identity] = ProviderAsset(
            observation.identity, observation.symbol, observation.name
        )

    def resolve(identities: list[str]) -> dict[str, int]:
        fresh = set(identities)
        return resolve_assets(
            source=src.name,
            assets=(asset for identity, asset in providers.items() if identity in fresh),
            asset_slug=src.asset_slug,
        )

    written = bulk.write_staged_batch(
        source=src.name,
        run_id=run.pk,
        fetched_at=batch.raws[0].fetched_at,  # one time per batch
        staged=batch.staged,
        resolve=resolve,
    )
    return BatchCounts(
        read=batch.read,
        inserted=written.inserted,
        updated=written.updated,
        # Repeated in the batch, stored before, or stored with the same values.
        unchanged=batch.duplicates + len(batch.observations) - written.inserted - written.updated,
        rejected=len(batch.raws) - len(batch.observations),
        rejections=written.rejections,
    )


def column_fitter() -> Callable[[Observation], Observation]:
    """Round an observation's values to what the database keeps, so comparing them with stored
    quotes is exact."""
    # SQLite keeps decimals as 8-byte floats: 15 significant digits survive a round trip.
    significant = 15 if connection.vendor == "sqlite" else None
    columns = [
        (name, Quote._meta.get_field(name).max_digits, Quote._meta.get_field(name).decimal_places)
        for name in bulk.QUOTE_VALUE_FIELDS
    ]

    def fit_observation(observation: Observation) -> Observation:
        for name, max_digits, places in columns:
            value = getattr(observation, name)
            if value is None:
                continue
            try:
                fitted = fit(
                    value,
                    field=name,
                    max_digits=max_digits,
                    places=places,
                    significant=significant,
                )
            except Rejected:
                if name == "price_usd":
                    raise
                # An absurd market cap or volume must not cost the price: it is left empty.
                fitted = None
            if name == "price_usd" and fitted == 0:
                raise Rejected(f"price_usd {value} is below 1e-{places}, the smallest price kept")
            setattr(observation, name, fitted)
        return observation

    return fit_observation


def upsert_observations(
    *,
    run: Run,
    source: str,
    accepted: list[tuple[Observation, int]],
    counts: BatchCounts,
    asset_slug: str | None = None,
) -> None:
    if not accepted:
        return
    asset_ids = resolve_assets(
        source=source,
        assets=(ProviderAsset(o.identity, o.symbol, o.name) for o, _ in accepted),
        asset_slug=asset_slug,
    )
    # One row per (asset, time), the last one winning: PostgreSQL refuses to touch a row twice
    # in one statement.
    latest: dict[tuple[int, datetime], bulk.QuoteRow] = {}
    for observation, raw_id in accepted:
        asset_id = asset_ids[observation.identity]
        latest[(asset_id, observation.observed_at)] = bulk.QuoteRow(
            asset_id,
            source,
            observation.observed_at,
            observation.price_usd,
            observation.market_cap_usd,
            observation.volume_24h_usd,
            observation.percent_change_24h,
            raw_id,
            run.pk,
        )
    written = bulk.upsert_quotes(list(latest.values()))
    counts.inserted += written.inserted
    counts.updated += written.updated
    counts.unchanged += len(accepted) - written.inserted - written.updated
