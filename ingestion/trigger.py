"""Start an ETL run from an HTTP request and let it finish outside that request.

The run row is created here, synchronously, so the caller gets its id (or a clear "already
running") at once. The work itself runs in a separate `manage.py ingest --run-id N` process in its
own session: it survives the request, a gunicorn worker restart and a client that hangs up, and it
records progress and outcome on the same run, visible in /runs.

The run is created `queued`: the process that works it takes it up (`Run.claim`), which makes it
`running` and takes its owner lock there, in the process that lives as long as the work. A queued
run is not judged by that lock; one that no process took up within `runs.models.QUEUED_GRACE` is
taken over by the next run.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import timedelta

from django.conf import settings

from ingestion.services import configuration_note
from runs.models import Run

logger = logging.getLogger(__name__)


class SourceNotConfigured(Exception):
    """The source needs settings it does not have (an API key, say)."""


class LaunchFailed(Exception):
    """The ETL process could not be started; the run has been closed as failed."""


def start_run(*, source: str) -> Run:
    """Create a queued `api` run of `source` and hand it to a detached ingest process.

    Raises `RunAlreadyActive` when that source is running, `SourceNotConfigured` when it cannot
    run here, and `LaunchFailed` when no process could be started.
    """
    missing = configuration_note(source)
    if missing:
        raise SourceNotConfigured(missing)
    run = Run.start(
        source=source,
        trigger=Run.Trigger.API,
        options={"requested_via": "http"},
        stale_after=timedelta(seconds=settings.ETL_STALE_RUN_SECONDS),
        queued=True,
    )
    try:
        launch(run_id=run.pk, source=source)
    except OSError as exc:
        logger.error("run %s: could not start the ingest process: %s", run.pk, exc)
        run.finish(status=Run.Status.FAILED, error=f"could not start the ingest process: {exc}")
        raise LaunchFailed(str(exc)) from exc
    logger.info("run %s (%s) started over HTTP", run.pk, source)
    return run


def launch(*, run_id: int, source: str) -> subprocess.Popen[bytes]:
    """Run `manage.py ingest` for an already started run in a new session, not waited for.

    Its output goes where the server's goes (the container log). A process that dies before
    finishing leaves the run `running` or, if it never took the run up, `queued`; on PostgreSQL
    the next run takes the first over at once (its lock ended with its session) and the second
    after `QUEUED_GRACE`, and on SQLite either after ETL_STALE_RUN_SECONDS.
    """
    command = [
        sys.executable,
        str(settings.BASE_DIR / "manage.py"),
        "ingest",
        "--source",
        source,
        "--trigger",
        Run.Trigger.API,
        "--run-id",
        str(run_id),
    ]
    return subprocess.Popen(
        command,
        cwd=settings.BASE_DIR,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
