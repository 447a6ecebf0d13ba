"""One ETL run: fetch units, keep each once, normalize, resolve identity, upsert quotes,
checkpoint.

Each unit (a page, a chunk of a file) commits its raw data, its rejections, its quotes, the
checkpoint and the run's counters in one transaction, so a crash at any instant loses at most
the unit in flight and the next run continues from the checkpoint with no duplicate and no gap.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from common.logs import bind_log_context, redact
from ingestion import bulk
from ingestion.identity import ProviderAsset, resolve_assets
from ingestion.models import Rejection, bounded_text
from ingestion.normalize import Observation, Rejected, fit
from ingestion.readahead import read_ahead
from ingestion.sources import build_source
from ingestion.sources.base import Item, Source, SourceError, Unit
from prices.models import AssetIdentifier, Quote
from runs.drift import DriftReport, FieldTally, detect_drift
from runs.models import Checkpoint, Run

logger = logging.getLogger(__name__)

# Both are CharFields, whose max_length is set (the stubs allow None).
IDENTITY_LENGTH = cast(int, AssetIdentifier._meta.get_field("external_id").max_length)
LOCATION_LENGTH = cast(int, Rejection._meta.get_field("location").max_length)
# A rejection's reason and text are for a person to read: a 50 MB value is not copied whole.
REASON_LENGTH = 1000
ITEM_TEXT_LENGTH = 2000
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
    src: Source | None = None,
    kind: str = Run.Kind.INGEST,
) -> Run:
    """Run the ETL once for `source` and return the finished `Run`.

    `src` is the source already built (a backfill's history source, with its assets and
    range), `kind` what the run is recorded as.

    `run_id` takes up a queued run of this source (the HTTP trigger starts the run in the
    request and hands its id to a detached `ingest --run-id` process).

    Raises `RunAlreadyActive` if that source is running elsewhere, and `SourceError` for a
    source that cannot even be built (an unknown name). Every other failure is recorded on the
    returned run, whose status is then `failed`; a lost database connection too, once a new one
    opens (a few tries, ~16 s in all), else its error is raised.
    """
    src = src or build_source(source, path=path, symbol=symbol, asset=asset)
    fail_after = settings.ETL_FAIL_AFTER_N_RECORDS if fail_after is None else fail_after
    options = {**src.describe(), "fail_after": fail_after or None}
    run: Run | None
    if run_id is None:
        run = Run.start(
            source=source,
            trigger=trigger,
            kind=kind,
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
            run.finish(status=Run.Status.FAILED, error=str(exc), checkpoint_after=_cursor(src))
        except Exception as exc:
            if run.lost_connection(exc):
                logger.error("run %s (%s) lost the database connection: %s", run.pk, source, exc)
                # Reconnects (a few tries) to record it; the checkpoint is read on the new one.
                run.finish_after_lost_connection(exc, checkpoint_after=lambda: _cursor(src))
            else:
                logger.exception("run %s (%s) crashed", run.pk, source)
                # An unexpected error's text was not written for users: it may quote a secret.
                run.finish(
                    status=Run.Status.FAILED,
                    error=redact(f"{type(exc).__name__}: {exc}"),
                    checkpoint_after=_cursor(src),
                )
        else:
            # Requests that failed alone (a backfill slice beyond the plan's reach) leave the
            # rest of the run standing; the run says which.
            failures = src.failures()
            if failures and not run.records_read:
                status = Run.Status.FAILED
            elif failures or run.records_rejected:
                status = Run.Status.PARTIAL
            else:
                status = Run.Status.SUCCEEDED
            run.finish(status=status, error="\n".join(failures), checkpoint_after=_cursor(src))
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


def _cursor(src: Source) -> dict[str, Any]:
    cursor: dict[str, Any] = Checkpoint.for_source(src.checkpoint_name).cursor
    return cursor


def _execute(
    *,
    run: Run,
    src: Source,
    fail_after: int,
    batch_size: int,
    on_batch: Callable[[Run], None] | None,
) -> None:
    checkpoint = Checkpoint.for_source(src.checkpoint_name)
    run.checkpoint_before = checkpoint.cursor
    run.save(update_fields=["checkpoint_before"])
    units = src.fetch(checkpoint.cursor, batch_size=batch_size)
    if fail_after:
        units = _fail_after(units, fail_after)
    tally = FieldTally()
    # Decided here: the read-ahead thread that prepares batches must not touch the database.
    prepare = batch_preparer(encode=connection.vendor == "postgresql")

    def prepared() -> Generator[tuple[Unit, PreparedBatch], None, None]:
        for unit in units:
            if src.expected_schema is not None:
                records = (src.schema_record(item.payload) for item in unit.items)
                tally.add_all(records, schema=src.expected_schema)
            yield unit, prepare(src, unit.items)

    try:
        # The next unit is read and normalized while this one is written.
        for unit, batch in read_ahead(prepared):
            with transaction.atomic():
                bulk.relax_commit_durability()
                raw_unit_id, new = bulk.store_unit(source=src.name, run_id=run.pk, unit=unit)
                counts = write_batch(
                    run=run,
                    source=src.name,
                    raw_unit_id=raw_unit_id,
                    batch=batch,
                    record_rejections=new,
                    asset_slug=src.asset_slug,
                )
                # Before the checkpoint moves: refuses, rolling the batch back, if another run
                # took this one over as stale meanwhile.
                run.add_counts(**asdict(counts))
                checkpoint.advance(cursor=unit.cursor, run=run)
            if new:
                for where, reason, _ in batch.rejections:
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


def _fail_after(units: Iterator[Unit], limit: int) -> Iterator[Unit]:
    """The units up to `limit` items in all; then the crash, before the unit that passes it."""
    count = 0
    for unit in units:
        count += len(unit.items)
        if count > limit:
            raise InjectedFailure(
                f"injected failure after {limit} records (--fail-after / ETL_FAIL_AFTER_N_RECORDS)"
            )
        yield unit


@dataclass
class PreparedBatch:
    """One unit's items, normalized and checked, ready to be written."""

    read: int
    observations: list[tuple[int, Observation]]  # (position in the unit, observation)
    rejections: list[tuple[str, str, str]]  # (location, reason, the item's text)
    staged: str | None  # the observations encoded for COPY (PostgreSQL), see bulk.encode_batch


def batch_preparer(*, encode: bool) -> Callable[[Source, list[Item]], PreparedBatch]:
    """The one preparation step of ingest, renormalize and backfill: normalize each item, refuse
    what cannot be stored or would be a wrong answer (each refusal a rejection with its reason),
    round values to the columns, and encode the batch for COPY if `encode`. Python only, no
    database, so it can run in a thread while the database writes the batch before."""
    fit = column_fitter()

    def prepare(src: Source, items: list[Item]) -> PreparedBatch:
        check = observation_checker(now=timezone.now(), fit=fit)
        observations: list[tuple[int, Observation]] = []
        rejections: list[tuple[str, str, str]] = []
        for item in items:
            try:
                if item.rejection:
                    raise Rejected(item.rejection)
                observations.append((item.position, check(src.normalize(item.payload))))
                continue
            except Rejected as exc:
                reason = str(exc) or "rejected"
            except Exception as exc:
                # Whatever one item does, it costs that item only: the items after it load.
                logger.debug("normalizing %s failed", item.location, exc_info=True)
                reason = f"could not read this item: {type(exc).__name__}: {exc}"
            rejections.append(
                (
                    bounded_text(item.location, LOCATION_LENGTH),
                    bounded_text(reason, REASON_LENGTH),
                    bounded_text(_item_text(item.payload), ITEM_TEXT_LENGTH),
                )
            )
        staged = bulk.encode_batch(observations) if encode else None
        return PreparedBatch(len(items), observations, rejections, staged)

    return prepare


def _item_text(payload: dict[str, Any]) -> str:
    try:
        return json.dumps(payload, ensure_ascii=False, default=str)
    except ValueError:
        return repr(payload)


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


def write_batch(
    *,
    run: Run,
    source: str,
    raw_unit_id: int,
    batch: PreparedBatch,
    record_rejections: bool,
    asset_slug: str | None = None,
) -> BatchCounts:
    """Write one prepared batch (the caller holds the transaction): its rejections, if
    `record_rejections` (a unit seen before has its rejections already), and its quotes."""
    if record_rejections and batch.rejections:
        bulk.store_rejections(
            source=source, run_id=run.pk, raw_unit_id=raw_unit_id, rejections=batch.rejections
        )

    def resolve(observations: list[Observation]) -> dict[str, int]:
        # A file names one coin thousands of times: each provider id is resolved once.
        first = {o.identity: o for o in reversed(observations)}
        return resolve_assets(
            source=source,
            assets=(ProviderAsset(o.identity, o.symbol, o.name) for o in first.values()),
            asset_slug=asset_slug,
        )

    written = bulk.write_quotes(
        source=source,
        run_id=run.pk,
        raw_unit_id=raw_unit_id,
        observations=batch.observations,
        staged=batch.staged,
        resolve=resolve,
    )
    return BatchCounts(
        read=batch.read,
        inserted=written.inserted,
        updated=written.updated,
        # Stored before with the same values, or repeated within the unit.
        unchanged=len(batch.observations) - written.inserted - written.updated,
        rejected=len(batch.rejections),
    )


def _decimal_field(name: str) -> models.DecimalField[Any, Any]:
    """The quote's value column `name`: a DecimalField (get_field is typed for any field)."""
    return cast("models.DecimalField[Any, Any]", Quote._meta.get_field(name))


def column_fitter() -> Callable[[Observation], Observation]:
    """Refuse or empty what the columns cannot hold, and round values to what the database
    keeps where comparing them with stored quotes needs it."""
    # SQLite keeps decimals as 8-byte floats: 15 significant digits survive a round trip, so
    # values are rounded here. PostgreSQL rounds to the column's scale itself and compares the
    # rounded values in the upsert: only the range (and the price) needs checking here.
    rounded = connection.vendor == "sqlite"
    columns = [
        (name, _decimal_field(name).max_digits, _decimal_field(name).decimal_places)
        for name in bulk.QUOTE_VALUE_FIELDS
        if name != "interval"
    ]

    def fit_observation(observation: Observation) -> Observation:
        for name, max_digits, places in columns:
            value = getattr(observation, name)
            if value is None:
                continue
            is_price = name == "price_usd"
            if not (rounded or is_price):
                if value.adjusted() >= max_digits - places:
                    # An absurd market cap or volume must not cost the price: it is left empty.
                    setattr(observation, name, None)
                continue
            try:
                fitted = fit(
                    value,
                    field=name,
                    max_digits=max_digits,
                    places=places,
                    significant=15 if rounded else None,
                )
            except Rejected:
                if is_price:
                    raise
                fitted = None
            if is_price and fitted == 0:
                raise Rejected(f"price_usd {value} is below 1e-{places}, the smallest price kept")
            setattr(observation, name, fitted)
        return observation

    return fit_observation
