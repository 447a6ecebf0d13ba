"""`manage.py prune_raw [--days N] [--dry-run]`: delete raw units older than the retention."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from ingestion.retention import prune_raw_units


def positive_int(value: str) -> int:
    days = int(value)
    if days <= 0:
        raise ValueError(value)
    return days


class Command(BaseCommand):
    help = (
        "Delete raw units fetched more than RAW_RETENTION_DAYS (or --days) days ago. Quotes and "
        "rejections stay."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=positive_int,
            help="Keep this many days of raw units (default: RAW_RETENTION_DAYS).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would be deleted; delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"] or settings.RAW_RETENTION_DAYS
        if days is None:
            self.stdout.write(
                "no retention configured (RAW_RETENTION_DAYS is unset and no --days): "
                "every raw unit is kept"
            )
            return
        self.stdout.write(prune_raw_units(days=days, dry_run=options["dry_run"]).summary())
