"""`manage.py crontab add|show|remove|run`: django-crontab's command, failing when it must.

django-crontab calls the `crontab` program and ignores the outcome, so without cron installed
`crontab add` says "adding cronjob" and exits 0. This command (found before django-crontab's,
which comes after ingestion in INSTALLED_APPS) refuses to start without the program, and after
`add` or `remove` reads the table back: it exits 1 unless the table holds what was asked.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import CommandError
from django_crontab.management.commands.crontab import Command as DjangoCrontabCommand

from ingestion.cron import crontab_problem, installed_jobs


class Command(DjangoCrontabCommand):  # type: ignore[misc]  # django-crontab has no type hints
    def handle(self, *args: Any, **options: Any) -> None:
        subcommand = options["subcommand"]
        if subcommand != "run":
            problem = crontab_problem()
            if problem:
                raise CommandError(problem)
        super().handle(*args, **options)
        if subcommand in ("add", "remove"):
            expected = len(settings.CRONJOBS) if subcommand == "add" else 0
            found = len(installed_jobs())
            if found != expected:
                raise CommandError(
                    f"crontab {subcommand}: the crontab holds {found} of this project's jobs, "
                    f"not {expected}; `crontab -l` shows what it has (is this user allowed "
                    "to use cron?)"
                )
