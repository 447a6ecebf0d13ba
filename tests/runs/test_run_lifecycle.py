"""How a run ends when its process or its database connection does not: takeover, duration, and
the size of what it records."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import psycopg2
import pytest
from django.db import connection
from django.db.backends.signals import connection_created
from django.utils import timezone
from rest_framework.test import APIClient

from ingestion.pipeline import ingest
from ingestion.renormalize import renormalize
from prices.models import Quote
from runs.models import MAX_ERROR_LENGTH, QUEUED_GRACE, Run, RunAlreadyActive
from tests.conftest import FIXTURES
from tests.processes import MANAGE, PYTHON, ROOT, base_env, database_url, reference_assets

pytestmark = pytest.mark.django_db

KAGGLE = FIXTURES / "csv" / "kaggle_coin_Ethereum_head.csv"
KAGGLE_HEADER = "SNo,Name,Symbol,Date,High,Low,Open,Close,Volume,Marketcap\n"
HOUR = timedelta(hours=1)
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="session-level advisory locks and pg_terminate_backend are PostgreSQL's",
)


def many_rows_csv(path: Path, *, coins: int = 10, days: int = 600) -> Path:
    """A Kaggle-layout file of `coins` x `days` rows: long enough to kill a run in the middle."""
    start = timezone.datetime(2016, 1, 1)
    lines = [KAGGLE_HEADER]
    for coin in range(coins):
        for day in range(days):
            date = (start + timedelta(days=day)).strftime("%Y-%m-%d 23:59:59")
            price = 1 + coin + day / 1000
            lines.append(
                f"{day},Lifecycle Coin {coin},LC{coin},{date},{price},{price},{price},{price},"
                f"{1000 + day},{10_000 + day}\n"
            )
    path.write_text("".join(lines))
    return path


def other_session() -> psycopg2.extensions.connection:
    """A second session on the test database, as an operator's psql would be."""
    params = connection.settings_dict
    other = psycopg2.connect(
        dbname=params["NAME"],
        user=params["USER"],
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        password=params["PASSWORD"] or None,
    )
    other.autocommit = True
    return other


def terminate(session: psycopg2.extensions.connection, pid: int) -> None:
    """pg_terminate_backend, waiting (up to 5 s) until that backend is gone."""
    with session.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
        assert cursor.fetchone()[0], f"backend {pid} was not terminated"


OTHER_BACKENDS = (
    "SELECT pid, backend_xid IS NOT NULL FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> %s"
)


def child_backends(session: psycopg2.extensions.connection) -> dict[int, bool]:
    """The backends on the test database other than this test's two sessions: pid -> whether
    it is in a transaction that has written."""
    with session.cursor() as cursor:
        cursor.execute(OTHER_BACKENDS, [connection.connection.get_backend_pid()])
        return dict(cursor.fetchall())


def wait_until_alone(session: psycopg2.extensions.connection) -> None:
    """Until the server has noticed that the killed child's backends lost their client
    (milliseconds)."""
    deadline = time.monotonic() + 10
    while backends := child_backends(session):
        assert time.monotonic() < deadline, f"backends {list(backends)} outlived their client"
        time.sleep(0.05)


def start_child(command: list[str], tmp_path: Path, **env: str) -> subprocess.Popen[bytes]:
    log = (tmp_path / "child.log").open("wb")
    return subprocess.Popen(
        [PYTHON, str(MANAGE), *command],
        env=base_env(
            DATABASE_URL=database_url(tmp_path),
            REFERENCE_ASSETS_PATH=reference_assets(tmp_path),
            **env,
        ),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_for_run(child: subprocess.Popen[bytes], tmp_path: Path, ready) -> Run:
    """The child's run, once `ready(run)` holds; fails if the child ends first."""
    deadline = time.monotonic() + 60
    while True:
        run = Run.objects.filter(status=Run.Status.RUNNING).first()
        if run is not None and ready(run):
            return run
        log = (tmp_path / "child.log").read_text()
        assert child.poll() is None, f"the child ended before it could be killed:\n{log}"
        assert time.monotonic() < deadline, f"the child's run never got going:\n{log}"
        time.sleep(0.02)


# --- item 7: bounded error text --------------------------------------------------------------


def test_a_huge_error_is_stored_as_its_head_and_tail_and_the_pages_stay_small():
    run = Run.start(source="csv", stale_after=HOUR)
    error = "HEAD " + "x" * 5_000_000 + " TAIL"

    run.finish(status=Run.Status.FAILED, error=error)

    stored = Run.objects.get(pk=run.pk).error
    assert len(stored) <= MAX_ERROR_LENGTH
    assert stored.startswith("HEAD xxx") and stored.endswith("xxx TAIL")
    assert "5,000,010 characters" in stored
    client = APIClient()
    for url in ["/runs?limit=1", "/api/runs/", f"/api/runs/{run.pk}/", "/stats"]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert len(response.content) < 20_000, url


def test_a_short_error_is_stored_whole():
    run = Run.start(source="csv", stale_after=HOUR)
    error = "y" * MAX_ERROR_LENGTH

    run.finish(status=Run.Status.FAILED, error=error)

    assert Run.objects.get(pk=run.pk).error == error


def test_a_csv_whose_header_is_10_kb_long_fails_with_a_bounded_error(write_csv):
    path = write_csv("Date," + "Q" * 10_000 + "\n2020-01-01,1\n")

    run = ingest(source="csv", path=str(path))

    assert run.status == Run.Status.FAILED
    assert 0 < len(Run.objects.get(pk=run.pk).error) <= MAX_ERROR_LENGTH


# --- item 6: a taken-over run ends at its last heartbeat --------------------------------------


def test_a_run_taken_over_as_stale_ends_at_its_last_heartbeat(settings, write_csv):
    settings.ETL_STALE_RUN_SECONDS = 60
    now = timezone.now()
    dead = Run.objects.create(
        source="csv",
        status=Run.Status.RUNNING,
        started_at=now - timedelta(hours=3),
        heartbeat_at=now - timedelta(hours=2, minutes=50),
    )

    new = ingest(source="csv", path=str(write_csv(KAGGLE.read_text())))

    dead.refresh_from_db()
    assert dead.status == Run.Status.FAILED
    assert dead.finished_at == now - timedelta(hours=2, minutes=50)
    assert dead.duration == timedelta(minutes=10)
    listed = APIClient().get(f"/api/runs/{dead.pk}/").json()
    assert listed["duration_seconds"] == 600
    assert new.status == Run.Status.SUCCEEDED


# --- item 5: a dead owner is known at once; a lost connection is recorded ---------------------


def test_a_run_whose_owner_is_working_is_not_taken_over():
    working = Run.start(source="csv", stale_after=HOUR)

    with pytest.raises(RunAlreadyActive, match="already running"):
        Run.start(source="csv", stale_after=HOUR)

    working.refresh_from_db()
    assert working.status == Run.Status.RUNNING
    working.finish(status=Run.Status.SUCCEEDED)


def test_a_queued_run_waits_for_its_process_to_take_it_up():
    """The HTTP trigger's run holds no lock until its process claims it: that is no reason to
    take it over."""
    queued = Run.start(source="csv", trigger=Run.Trigger.API, stale_after=HOUR, queued=True)

    with pytest.raises(RunAlreadyActive):
        Run.start(source="csv", stale_after=HOUR)

    claimed = Run.claim(pk=queued.pk, source="csv")
    assert claimed is not None and claimed.status == Run.Status.RUNNING
    assert Run.claim(pk=queued.pk, source="csv") is None  # only once
    with pytest.raises(RunAlreadyActive):
        Run.start(source="csv", stale_after=HOUR)
    claimed.finish(status=Run.Status.SUCCEEDED)


@postgresql_only
def test_a_queued_run_no_process_took_up_is_taken_over_after_the_grace():
    never = Run.start(source="csv", trigger=Run.Trigger.API, stale_after=HOUR, queued=True)
    queued_at = timezone.now() - QUEUED_GRACE - timedelta(seconds=1)
    Run.objects.filter(pk=never.pk).update(started_at=queued_at, heartbeat_at=queued_at)

    new = Run.start(source="csv", stale_after=HOUR)

    never.refresh_from_db()
    assert never.status == Run.Status.FAILED
    assert never.error.startswith("abandoned: no process took it up")
    assert never.finished_at == queued_at
    new.finish(status=Run.Status.SUCCEEDED)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_after_a_kill_9_of_ingest_the_next_run_starts_at_once(tmp_path):
    path = many_rows_csv(tmp_path / "many.csv")
    child = start_child(
        ["ingest", "--source", "csv", "--path", str(path)], tmp_path, ETL_BATCH_SIZE="10"
    )
    try:
        victim = wait_for_run(child, tmp_path, lambda run: run.records_read >= 50)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    session = other_session()
    try:
        wait_until_alone(session)
    finally:
        session.close()
    victim.refresh_from_db()
    assert victim.status == Run.Status.RUNNING  # killed mid-run, nothing recorded its end
    last_heartbeat = victim.heartbeat_at

    # The default stale time (an hour) has not passed: only the dead session tells.
    new = ingest(source="csv", path=str(path))

    victim.refresh_from_db()
    assert victim.status == Run.Status.FAILED
    assert victim.error.startswith("abandoned: its process or database session ended")
    assert victim.finished_at == last_heartbeat
    assert new.status == Run.Status.SUCCEEDED
    # It continued from the killed run's checkpoint: nothing lost, nothing twice.
    assert new.records_read == 6000 - victim.records_read
    assert Quote.objects.count() == 6000


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_after_a_kill_9_of_renormalize_the_next_run_starts_at_once(tmp_path):
    # Many small batches stored: a renormalize of them takes long enough to be killed in it.
    ingest(source="csv", path=str(many_rows_csv(tmp_path / "many.csv", days=300)), batch_size=10)
    child = start_child(["renormalize", "--source", "csv"], tmp_path, ETL_BATCH_SIZE="10")
    session = other_session()
    try:

        def rebuilding(run: Run) -> bool:
            # Its one long transaction has begun writing.
            return run.kind == Run.Kind.RENORMALIZE and any(child_backends(session).values())

        try:
            victim = wait_for_run(child, tmp_path, rebuilding)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        wait_until_alone(session)
    finally:
        session.close()

    new = renormalize(source="csv")

    victim.refresh_from_db()
    assert victim.status == Run.Status.FAILED
    assert victim.error.startswith("abandoned: its process or database session ended")
    assert new.status == Run.Status.SUCCEEDED
    assert Quote.objects.count() == 3000


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_terminated_backend_fails_the_run_with_a_clear_error(write_csv):
    path = write_csv(KAGGLE.read_text())
    session = other_session()

    def kill_the_session(run: Run) -> None:
        if run.records_read == 2:
            terminate(session, connection.connection.get_backend_pid())

    try:
        run = ingest(source="csv", path=str(path), batch_size=2, on_batch=kill_the_session)
    finally:
        session.close()

    assert run.status == Run.Status.FAILED
    assert run.error.startswith("lost the database connection: ")
    assert "connection" in run.error.removeprefix("lost the database connection: ")
    stored = Run.objects.get(pk=run.pk)  # what /runs shows
    assert (stored.status, stored.error, stored.records_read) == (run.status, run.error, 2)
    assert stored.finished_at is not None
    # The source is free at once, and the next run continues after the committed batch.
    again = ingest(source="csv", path=str(path))
    assert (again.status, again.records_read) == (Run.Status.SUCCEEDED, 8)
    assert Quote.objects.count() == 10


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_second_terminate_during_the_reconnect_is_survived(write_csv):
    """Two pg_terminate_backends in a row: the first reconnect is killed too; the next one
    records the failure."""
    path = write_csv(KAGGLE.read_text())
    session = other_session()
    reconnects: list[int] = []

    def kill_the_first_reconnect(sender, connection, **kwargs) -> None:
        reconnects.append(connection.connection.get_backend_pid())
        if len(reconnects) == 1:
            terminate(session, reconnects[0])

    def kill_the_session(run: Run) -> None:
        if run.records_read == 2:
            terminate(session, connection.connection.get_backend_pid())
            connection_created.connect(kill_the_first_reconnect)

    try:
        run = ingest(source="csv", path=str(path), batch_size=2, on_batch=kill_the_session)
    finally:
        connection_created.disconnect(kill_the_first_reconnect)
        session.close()

    assert len(reconnects) == 2
    assert run.status == Run.Status.FAILED
    assert run.error.startswith("lost the database connection:")
    assert Run.objects.get(pk=run.pk).status == Run.Status.FAILED


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_terminated_renormalize_fails_with_a_clear_error(write_csv):
    ingest(source="csv", path=str(write_csv(KAGGLE.read_text())))
    session = other_session()

    def kill_the_session(run: Run) -> None:
        terminate(session, connection.connection.get_backend_pid())

    try:
        run = renormalize(source="csv", on_batch=kill_the_session)
    finally:
        session.close()

    assert run.status == Run.Status.FAILED
    assert run.error.startswith("lost the database connection:")
    assert Run.objects.get(pk=run.pk).status == Run.Status.FAILED
    assert Quote.objects.count() == 10  # its transaction rolled back whole
    assert renormalize(source="csv").status == Run.Status.SUCCEEDED
