"""`manage.py renormalize [--source S]`: rebuild quotes from raw units, no provider called."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingestion.cli import EXIT_ALREADY_RUNNING, EXIT_FAILED, summary
from ingestion.models import RawUnit
from ingestion.renormalize import renormalize
from ingestion.sources import source_names
from runs.models import Run, RunAlreadyActive


class Command(BaseCommand):
    help = "Rebuild quotes from stored raw units (after a mapping fix), one Run per source."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--source",
            choices=source_names(),
            help="Only this source (default: every source that has raw units).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        sources = (
            [options["source"]]
            if options["source"]
            else sorted(RawUnit.objects.order_by().values_list("source", flat=True).distinct())
        )
        failed = []
        for source in sources:
            try:
                run = renormalize(source=source)
            except RunAlreadyActive as exc:
                raise CommandError(str(exc), returncode=EXIT_ALREADY_RUNNING) from exc
            removed = run.options.get("quotes_removed", 0)
            self.stdout.write(f"{summary(run)}; {removed} quotes replaced")
            if run.status == Run.Status.FAILED:
                failed.append(f"run {run.pk} ({source}): {run.error}")
        if failed:
            raise CommandError("; ".join(failed), returncode=EXIT_FAILED)
