"""`manage.py ingest --source NAME`: one ETL run, a one-line summary, non-zero exit on failure.

`--source all` runs every source in ETL_ENABLED_SOURCES, one run each, in order. A source that
fails does not stop the others; one that is not configured (CoinCap without a key) is skipped
with a note and does not count as a failure. The exit status is 1 if any source failed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingestion.cli import (
    EXIT_ALREADY_RUNNING,
    EXIT_FAILED,
    EXIT_USAGE,
    Progress,
    progress,
    summary,
)
from ingestion.services import (
    InvalidRequest,
    Outcome,
    check_request,
    enabled_sources,
    ingest_sources,
)
from ingestion.sources import source_names
from ingestion.sources.base import SourceError
from runs.models import Run

ALL = "all"


class Command(BaseCommand):
    help = "Ingest market data from one source into raw units and quotes."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--source",
            required=True,
            choices=[*source_names(), ALL],
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
        one = options["source"] != ALL
        asked = {name: options[name] for name in ("path", "symbol", "asset", "fail_after")}
        try:
            # Usage first (exit 2), as argparse would, whatever the settings say.
            check_request([options["source"]] if one else None, run_id=options["run_id"], **asked)
            names = [options["source"]] if one else enabled_sources()
        except InvalidRequest as exc:
            raise CommandError(str(exc), returncode=EXIT_USAGE) from exc
        except SourceError as exc:
            raise CommandError(str(exc), returncode=EXIT_FAILED) from exc
        # One progress display for every run; each report closes its bar before the summary.
        with progress(self.stdout, verbosity=options["verbosity"]) as on_batch:
            outcomes = ingest_sources(
                names,
                trigger=options["trigger"],
                path=options["path"],
                symbol=options["symbol"],
                asset=options["asset"],
                fail_after=options["fail_after"],
                run_id=options["run_id"],
                on_batch=on_batch,
                skip_unconfigured=not one,
            )
            done = [self._report(outcome, one=one, shown=on_batch) for outcome in outcomes]
        if not one:
            self._report_all(done)

    def _report(self, outcome: Outcome, *, one: bool, shown: Progress) -> Outcome:
        """Print what became of one source; for a single source, fail the command with it."""
        shown.close()
        if outcome.run is not None:
            self.stdout.write(summary(outcome.run))
            if one and outcome.failed:
                run = outcome.run
                raise CommandError(f"run {run.pk} failed: {run.error}", returncode=EXIT_FAILED)
        elif one:
            code = EXIT_ALREADY_RUNNING if outcome.busy else EXIT_FAILED
            raise CommandError(outcome.busy or outcome.error, returncode=code)
        elif outcome.skipped:
            self.stdout.write(f"{outcome.source} skipped: {outcome.skipped}")
        elif outcome.busy:
            self.stdout.write(f"{outcome.source} not run: {outcome.busy}")
        else:
            self.stdout.write(f"{outcome.source} failed: {outcome.error}")
        return outcome

    def _report_all(self, done: list[Outcome]) -> None:
        failed = [o.source for o in done if o.failed]
        skipped = [o.source for o in done if o.skipped]
        busy = [o.source for o in done if o.busy]
        ran = len(done) - len(skipped) - len(busy)
        self.stdout.write(
            f"all: {len(done)} sources, {ran} run, {len(failed)} failed"
            + (f" ({', '.join(failed)})" if failed else "")
            + (f", skipped {', '.join(skipped)}" if skipped else "")
            + (f", already running {', '.join(busy)}" if busy else "")
        )
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(done)} sources failed: {', '.join(failed)}",
                returncode=EXIT_FAILED,
            )
        if busy:
            raise CommandError(
                f"already running: {', '.join(busy)}", returncode=EXIT_ALREADY_RUNNING
            )
