"""The job django-crontab runs: one cron run of a source, as `ingest --source all` runs each
source (skipped with a warning, exit 0, when it is not configured; else the exit status `ingest
--source NAME` would have); and the checks that make `manage.py crontab add` fail when it
installed nothing.

settings.CRONJOBS lists one `ingest_job(NAME)` per scheduled source; `manage.py crontab add`
turns them into crontab lines that call `manage.py crontab run <hash>`, which calls this.

django-crontab calls a job inside a bare `except:` and then exits 0 whatever happened: an
exception, even `SystemExit`, becomes one log line and a success for cron. So the job catches
everything itself, logs the outcome with its exit status, and a failing job ends its own process
with that status (`os._exit`, the one exit the wrapper cannot catch). The failed run is a `Run`
row either way: `ingest()` records every failure it can.

django-crontab also runs the `crontab` program without looking at the outcome: with no cron
installed, `crontab add` would print "adding cronjob" and exit 0. The project's `crontab`
command (ingestion/management/commands/crontab.py) checks first with `crontab_problem()` and
reads the table back with `installed_jobs()`.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.db import connections

from common.logs import bind_log_context
from ingestion.cli import EXIT_ALREADY_RUNNING, EXIT_FAILED, EXIT_OK, summary
from ingestion.services import ingest_sources
from runs.models import Run

logger = logging.getLogger(__name__)

# django-crontab's default for settings.CRONTAB_EXECUTABLE.
DEFAULT_CRONTAB = "/usr/bin/crontab"


def crontab_executable() -> str:
    return getattr(settings, "CRONTAB_EXECUTABLE", DEFAULT_CRONTAB)


def crontab_problem() -> str | None:
    """Why `manage.py crontab` cannot work here (no crontab program), or None."""
    executable = crontab_executable()
    if shutil.which(executable) is None:
        return (
            f"no crontab program at {executable}: install cron (Debian, Ubuntu: "
            "apt-get install cron) and start its service; no job was installed"
        )
    return None


def installed_jobs() -> list[str]:
    """The lines of this project's jobs in the user's crontab, as `crontab -l` lists them."""
    result = subprocess.run(
        [crontab_executable(), "-l"], capture_output=True, text=True, timeout=30, check=False
    )
    # Exit status 1 with "no crontab for USER" is an empty table, not an error.
    marker = f"# {settings.CRONTAB_COMMENT}"
    return [line for line in result.stdout.splitlines() if line.rstrip().endswith(marker)]


def run_ingest_job(source: str) -> int:
    """Run `source` once as cron's run and return the exit status `ingest` would have."""
    with bind_log_context(source=source):
        try:
            # As `ingest --source all`: a source without its required settings (CoinCap
            # without a key) is skipped with a warning, not failed every hour.
            (outcome,) = ingest_sources([source], trigger=Run.Trigger.CRON)
        except Exception:
            logger.exception("cron job ingest --source %s crashed (exit status 1)", source)
            return EXIT_FAILED
        if outcome.skipped:
            logger.warning("cron job ingest --source %s skipped: %s", source, outcome.skipped)
            return EXIT_OK
        run = outcome.run
        if run is None or outcome.failed:
            status = EXIT_ALREADY_RUNNING if outcome.busy else EXIT_FAILED
            failure = f"run {run.pk} failed: {run.error}" if run else ""
            detail = outcome.busy or outcome.error or failure
            logger.error(
                "cron job ingest --source %s exited with status %d: %s", source, status, detail
            )
            return status
        logger.info("cron job ingest --source %s exited with status 0: %s", source, summary(run))
        return EXIT_OK


def ingest_job(source: str) -> None:
    """The CRONJOBS entry point: the process exits with the job's status."""
    _exit_with(run_ingest_job(source))


def run_prune_job() -> int:
    """Run `prune_raw` once (raw units older than RAW_RETENTION_DAYS) and return its status."""
    out = io.StringIO()
    try:
        call_command("prune_raw", stdout=out)
    except Exception:
        logger.exception("cron job prune_raw crashed (exit status 1)")
        return EXIT_FAILED
    logger.info("cron job prune_raw exited with status 0: %s", out.getvalue().strip())
    return EXIT_OK


def prune_job() -> None:
    """The CRONJOBS entry point of retention: the process exits with the job's status."""
    _exit_with(run_prune_job())


def _exit_with(status: int) -> None:
    if status != EXIT_OK:
        # os._exit skips interpreter cleanup: close what would otherwise be lost or left open.
        connections.close_all()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
