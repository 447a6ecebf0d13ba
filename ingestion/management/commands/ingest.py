"""`manage.py ingest --source csv`: one ETL run, a one-line summary, non-zero exit on failure."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from ingestion.pipeline import ingest
from ingestion.sources import SOURCE_NAMES
from ingestion.sources.base import SourceError
from runs.models import Run, RunAlreadyActive

EXIT_FAILED = 1
EXIT_ALREADY_RUNNING = 3


def summary(run: Run) -> str:
    duration = f"{run.duration.total_seconds():.1f}s" if run.duration else "-"
    line = (
        f"run {run.pk} {run.source} {run.status}: read {run.records_read}, "
        f"inserted {run.records_inserted}, updated {run.records_updated}, "
        f"unchanged {run.records_unchanged}, rejected {run.records_rejected} in {duration}"
    )
    return f"{line}; error: {run.error}" if run.error else line


class Command(BaseCommand):
    help = "Ingest market data from one source into raw records and quotes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", required=True, choices=SOURCE_NAMES)
        parser.add_argument("--path", help="CSV file to read (default: settings.CSV_PATH).")
        parser.add_argument(
            "--symbol", help="Asset symbol for CSV layouts without a Symbol column (Yahoo)."
        )
        parser.add_argument(
            "--fail-after",
            type=int,
            metavar="N",
            help="Crash on purpose after N records, for resume drills "
            "(default: ETL_FAIL_AFTER_N_RECORDS).",
        )
        parser.add_argument(
            "--trigger", choices=[Run.Trigger.CLI, Run.Trigger.CRON], default=Run.Trigger.CLI
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["fail_after"] is not None and options["fail_after"] < 0:
            raise CommandError("--fail-after must be zero (never) or a positive number")
        interactive = sys.stdout.isatty() and options["verbosity"] > 0
        bar = tqdm(unit=" records", dynamic_ncols=True) if interactive else None

        def on_batch(run: Run) -> None:
            if bar is not None:
                bar.update(run.records_read - bar.n)
            elif options["verbosity"] > 0:
                self.stdout.write(
                    f"run {run.pk} {run.source}: read {run.records_read}, "
                    f"rejected {run.records_rejected}"
                )

        try:
            run = ingest(
                source=options["source"],
                trigger=options["trigger"],
                path=options["path"],
                symbol=options["symbol"],
                fail_after=options["fail_after"],
                on_batch=on_batch,
            )
        except RunAlreadyActive as exc:
            raise CommandError(str(exc), returncode=EXIT_ALREADY_RUNNING) from exc
        except SourceError as exc:
            raise CommandError(str(exc), returncode=EXIT_FAILED) from exc
        finally:
            if bar is not None:
                bar.close()
        self.stdout.write(summary(run))
        if run.status == Run.Status.FAILED:
            raise CommandError(f"run {run.pk} failed: {run.error}", returncode=EXIT_FAILED)
