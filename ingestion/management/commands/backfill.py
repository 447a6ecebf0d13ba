"""`manage.py backfill --source S (--asset SLUG[,SLUG...] | --top N) --from DATE [--bars]`:
history from a provider's history endpoints, one run (kind backfill), resumable; the exit codes
of `ingest`. On a terminal the progress bar counts slices, with an ETA."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ingestion.backfill import backfill
from ingestion.cli import EXIT_ALREADY_RUNNING, EXIT_FAILED, EXIT_USAGE, progress, summary
from ingestion.sources.base import SourceError
from ingestion.sources.history import HISTORY_SOURCES, INTERVALS
from runs.models import Run, RunAlreadyActive


def moment(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(
            f"{name} {text!r}: give a date (2024-01-31) or an ISO 8601 time", returncode=EXIT_USAGE
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Command(BaseCommand):
    help = "Backfill history from a provider's history endpoints (resumable, idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", required=True, choices=list(HISTORY_SOURCES))
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--asset", help="Canonical slugs, comma-separated (bitcoin,ethereum).")
        which.add_argument("--top", type=int, metavar="N", help="The reference mapping's top N.")
        parser.add_argument("--from", dest="start", required=True, help="First day (UTC).")
        parser.add_argument("--to", dest="end", help="End, exclusive (default: now).")
        parser.add_argument(
            "--interval",
            choices=INTERVALS,
            default="1d",
            help="Points: 5m, 1h, 1d (by source). Bars: CoinGecko 30m, 4h, 4d; CoinPaprika 1d.",
        )
        parser.add_argument(
            "--bars",
            action="store_true",
            help="Fetch OHLC bars (CoinGecko /ohlc, CoinPaprika ohlcv) instead of points.",
        )
        parser.add_argument(
            "--gaps",
            action="store_true",
            help="Fetch only the buckets the coverage report finds missing (1h or 1d).",
        )
        parser.add_argument("--trigger", choices=Run.Trigger.values, default=Run.Trigger.CLI)

    def handle(self, *args: Any, **options: Any) -> None:
        start = moment(options["start"], "--from")
        end = moment(options["end"], "--to") if options["end"] else timezone.now()
        if start >= end:
            raise CommandError("--from must be before --to", returncode=EXIT_USAGE)
        if options["top"] is not None and options["top"] < 1:
            raise CommandError("--top must be at least 1", returncode=EXIT_USAGE)
        slugs = [s.strip() for s in (options["asset"] or "").split(",") if s.strip()] or None
        try:
            with progress(self.stdout, verbosity=options["verbosity"], unit=" points") as shown:
                run = backfill(
                    source=options["source"],
                    slugs=slugs,
                    top=options["top"],
                    start=start,
                    end=end,
                    interval=options["interval"],
                    gaps=options["gaps"],
                    bars=options["bars"],
                    trigger=options["trigger"],
                    on_batch=shown,
                    on_source=lambda src: shown.count(src.progress, what="slices"),
                )
        except RunAlreadyActive as exc:
            raise CommandError(str(exc), returncode=EXIT_ALREADY_RUNNING) from exc
        except SourceError as exc:
            raise CommandError(str(exc), returncode=EXIT_FAILED) from exc
        self.stdout.write(summary(run))
        if run.status == Run.Status.FAILED:
            raise CommandError(f"run {run.pk} failed: {run.error}", returncode=EXIT_FAILED)
