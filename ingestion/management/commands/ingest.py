"""`manage.py ingest --source NAME`: one ETL run, a one-line summary, non-zero exit on failure.

`--source all` runs every source in ETL_ENABLED_SOURCES, one run each, in order. A source that
fails does not stop the others; one that is not configured (CoinCap without a key) is skipped
with a note and does not count as a failure. The exit status is 1 if any source failed.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingestion.cli import EXIT_ALREADY_RUNNING, EXIT_FAILED, EXIT_USAGE, progress, summary
from ingestion.pipeline import ingest
from ingestion.reference import reference_index
from ingestion.sources import SOURCE_NAMES, build_source
from ingestion.sources.base import SourceError
from prices.models import Asset
from runs.models import Run, RunAlreadyActive

ALL = "all"


class Command(BaseCommand):
    help = "Ingest market data from one source into raw units and quotes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--source",
            required=True,
            choices=[*SOURCE_NAMES, ALL],
            help=f"One source, or {ALL!r} for every source in ETL_ENABLED_SOURCES.",
        )
        parser.add_argument(
            "--path",
            help="CSV file, or folder of .csv files, to read (default: settings.CSV_PATH).",
        )
        parser.add_argument(
            "--symbol", help="Asset symbol for CSV layouts without a Symbol column (Yahoo)."
        )
        parser.add_argument(
            "--asset",
            metavar="SLUG",
            help="Canonical asset (slug, e.g. bitcoin) of every row of the CSV file; overrides "
            "matching by symbol and name.",
        )
        parser.add_argument(
            "--fail-after",
            type=int,
            metavar="N",
            help="Crash on purpose after N records, for resume drills "
            "(default: ETL_FAIL_AFTER_N_RECORDS).",
        )
        parser.add_argument("--trigger", choices=Run.Trigger.values, default=Run.Trigger.CLI)
        parser.add_argument(
            "--run-id",
            type=int,
            metavar="N",
            help="Continue run N, already started for this source (used by the HTTP trigger).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self._check_arguments(options)
        if options["source"] == ALL:
            self._ingest_all(options)
            return
        try:
            run = self._ingest(options["source"], options)
        except RunAlreadyActive as exc:
            raise CommandError(str(exc), returncode=EXIT_ALREADY_RUNNING) from exc
        except SourceError as exc:
            raise CommandError(str(exc), returncode=EXIT_FAILED) from exc
        self.stdout.write(summary(run))
        if run.status == Run.Status.FAILED:
            raise CommandError(f"run {run.pk} failed: {run.error}", returncode=EXIT_FAILED)

    def _check_arguments(self, options: dict[str, Any]) -> None:
        """Refuse contradictory arguments before any run starts (exit 2, like argparse)."""
        if options["fail_after"] is not None and options["fail_after"] < 0:
            raise CommandError(
                "--fail-after must be zero (never) or a positive number", returncode=EXIT_USAGE
            )
        if options["run_id"] is not None and options["source"] == ALL:
            raise CommandError(
                "--run-id continues one run: give one --source, not all", returncode=EXIT_USAGE
            )
        csv_only = [f"--{name}" for name in ("path", "symbol", "asset") if options[name]]
        if csv_only and options["source"] != "csv":
            raise CommandError(
                f"{', '.join(csv_only)} only apply to --source csv", returncode=EXIT_USAGE
            )
        slug = options["asset"]
        if slug and not (
            slug in reference_index().slugs or Asset.objects.filter(slug=slug).exists()
        ):
            raise CommandError(
                f"--asset {options['asset']!r}: no asset has that slug (see /api/assets/ or "
                "the admin)",
                returncode=EXIT_USAGE,
            )

    def _ingest_all(self, options: dict[str, Any]) -> None:
        names = list(settings.ETL_ENABLED_SOURCES)
        unknown = [name for name in names if name not in SOURCE_NAMES]
        if unknown or not names:
            raise CommandError(
                f"ETL_ENABLED_SOURCES must list sources among {', '.join(SOURCE_NAMES)}; "
                f"got {', '.join(names) or 'nothing'}",
                returncode=EXIT_FAILED,
            )
        failed: list[str] = []
        busy: list[str] = []
        skipped: list[str] = []
        for name in names:
            note = build_source(
                name, path=options["path"], symbol=options["symbol"]
            ).missing_configuration()
            if note:
                self.stdout.write(f"{name} skipped: {note}")
                skipped.append(name)
                continue
            try:
                run = self._ingest(name, options)
            except RunAlreadyActive as exc:
                self.stdout.write(f"{name} not run: {exc}")
                busy.append(name)
                continue
            except SourceError as exc:
                self.stdout.write(f"{name} failed: {exc}")
                failed.append(name)
                continue
            self.stdout.write(summary(run))
            if run.status == Run.Status.FAILED:
                failed.append(name)
        ran = len(names) - len(skipped) - len(busy)
        self.stdout.write(
            f"all: {len(names)} sources, {ran} run, {len(failed)} failed"
            + (f" ({', '.join(failed)})" if failed else "")
            + (f", skipped {', '.join(skipped)}" if skipped else "")
            + (f", already running {', '.join(busy)}" if busy else "")
        )
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(names)} sources failed: {', '.join(failed)}",
                returncode=EXIT_FAILED,
            )
        if busy:
            raise CommandError(
                f"already running: {', '.join(busy)}", returncode=EXIT_ALREADY_RUNNING
            )

    def _ingest(self, name: str, options: dict[str, Any]) -> Run:
        """One run of `name`, with a progress bar on a terminal and plain lines otherwise."""
        with progress(self.stdout, verbosity=options["verbosity"]) as on_batch:
            return ingest(
                source=name,
                trigger=options["trigger"],
                path=options["path"],
                symbol=options["symbol"],
                asset=options["asset"],
                fail_after=options["fail_after"],
                on_batch=on_batch,
                run_id=options["run_id"],
            )
