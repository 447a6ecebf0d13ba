"""Runs of the CSV source: idempotent, incremental, resumable, one at a time."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from ingestion.models import RawUnit, Rejection
from ingestion.pipeline import ingest
from prices.models import Asset, Quote
from runs.models import Checkpoint, Run, RunAlreadyActive, RunTakenOver
from tests.conftest import FIXTURES, stored

pytestmark = pytest.mark.django_db

KAGGLE = FIXTURES / "csv" / "kaggle_coin_Ethereum_head.csv"


def kaggle_lines() -> list[str]:
    return KAGGLE.read_text().splitlines(keepends=True)


def snapshot() -> set[tuple]:
    """What a user of the data sees: every quote, every raw unit's content, every rejection."""
    quotes = set(
        Quote.objects.values_list(
            "asset__slug", "source", "observed_at", "price_usd", "volume_24h_usd"
        )
    )
    raws = set(RawUnit.objects.values_list("content_hash", "line_start", "line_end"))
    rejected = set(Rejection.objects.values_list("location", "reason"))
    return quotes | raws | rejected


def test_rerun_adds_nothing(write_csv):
    path = write_csv(KAGGLE.read_text())
    first = ingest(source="csv", path=str(path))
    before = snapshot()

    second = ingest(source="csv", path=str(path))

    assert first.records_inserted == 10
    assert second.status == Run.Status.SUCCEEDED
    assert (second.records_read, second.records_inserted) == (0, 0)
    assert snapshot() == before
    assert Quote.objects.count() == 10
    assert RawUnit.objects.count() == 1


def test_appended_rows_are_the_only_ones_read(write_csv):
    lines = kaggle_lines()
    path = write_csv("".join(lines[:6]))
    ingest(source="csv", path=str(path))

    with path.open("a") as handle:
        handle.write("".join(lines[6:]))
    run = ingest(source="csv", path=str(path))

    assert (run.records_read, run.records_inserted, run.records_unchanged) == (5, 5, 0)
    assert Quote.objects.count() == 10


def test_replaced_file_is_reread_without_duplicates(write_csv):
    lines = kaggle_lines()
    path = write_csv("".join(lines[:8]))
    ingest(source="csv", path=str(path))

    # Same header, rows in another order, three rows more, one price corrected.
    rows = lines[1:]
    rows[0] = rows[0].replace("0.7533249855041504", "0.75")
    path.write_text(lines[0] + "".join(reversed(rows)))
    run = ingest(source="csv", path=str(path))

    assert run.records_read == 10
    assert (run.records_inserted, run.records_updated, run.records_unchanged) == (3, 1, 6)
    assert Quote.objects.count() == 10
    assert str(Quote.objects.order_by("observed_at").first().price_usd).startswith("0.75000")


@pytest.mark.parametrize("fail_after", [1, 4, 7, 9])
def test_fail_after_then_resume_equals_one_clean_run(settings, write_csv, fail_after):
    settings.ETL_BATCH_SIZE = 3
    path = write_csv(KAGGLE.read_text())
    ingest(source="csv", path=str(path))
    clean = snapshot()
    for model in (Quote, Rejection, RawUnit, Checkpoint, Run, Asset):
        model.objects.all().delete()

    crashed = ingest(source="csv", path=str(path), fail_after=fail_after)
    committed = fail_after // 3 * 3
    assert crashed.status == Run.Status.FAILED
    assert "injected failure" in crashed.error
    assert Quote.objects.count() == crashed.records_inserted == committed
    assert Checkpoint.objects.get(source="csv").cursor == crashed.checkpoint_after

    resumed = ingest(source="csv", path=str(path), fail_after=0)

    assert resumed.status == Run.Status.SUCCEEDED
    assert resumed.records_read == 10 - committed
    assert snapshot() == clean


def test_fail_after_from_the_environment_setting(settings, write_csv):
    settings.ETL_FAIL_AFTER_N_RECORDS = 2
    settings.ETL_BATCH_SIZE = 1

    run = ingest(source="csv", path=str(write_csv(KAGGLE.read_text())))

    assert run.status == Run.Status.FAILED
    assert Quote.objects.count() == 2


def test_second_run_of_a_running_source_is_refused(write_csv):
    Run.objects.create(source="csv", status=Run.Status.RUNNING)

    with pytest.raises(RunAlreadyActive):
        ingest(source="csv", path=str(write_csv(KAGGLE.read_text())))

    assert not Quote.objects.exists()
    assert Run.objects.count() == 1


def test_database_refuses_two_running_runs_of_one_source():
    from django.db import IntegrityError, transaction

    Run.objects.create(source="csv", status=Run.Status.RUNNING)
    with pytest.raises(IntegrityError), transaction.atomic():
        Run.objects.create(source="csv", status=Run.Status.RUNNING)
    Run.objects.create(source="coingecko", status=Run.Status.RUNNING)  # other sources are free


def test_stale_run_is_taken_over(settings, write_csv):
    settings.ETL_STALE_RUN_SECONDS = 60
    dead = Run.objects.create(
        source="csv",
        status=Run.Status.RUNNING,
        heartbeat_at=timezone.now() - timedelta(seconds=61),
    )

    run = ingest(source="csv", path=str(write_csv(KAGGLE.read_text())))

    dead.refresh_from_db()
    assert dead.status == Run.Status.FAILED
    assert "abandoned" in dead.error
    assert run.status == Run.Status.SUCCEEDED
    assert run.records_inserted == 10


def test_a_line_cut_mid_write_is_read_again_whole_next_time(write_csv):
    lines = kaggle_lines()
    last = lines[10]
    cut = last.rindex(",") + 4  # inside Marketcap: the half-written row still parses
    path = write_csv("".join(lines[:10]) + last[:cut])
    first = ingest(source="csv", path=str(path))
    half = Quote.objects.order_by("-observed_at").first().market_cap_usd

    with path.open("a") as handle:
        handle.write(last[cut:])
    second = ingest(source="csv", path=str(path))

    assert first.records_read == 10
    # Only the finished line is read again, and it corrects the half-read value.
    assert (second.records_read, second.records_inserted, second.records_updated) == (1, 0, 1)
    assert Quote.objects.count() == 10
    whole = Quote.objects.order_by("-observed_at").first().market_cap_usd
    assert half == stored("872") and whole == stored("87295366.5007")


def test_a_run_taken_over_as_stale_cannot_write_or_reopen(settings, write_csv):
    settings.ETL_STALE_RUN_SECONDS = 60
    old = Run.objects.create(
        source="csv", status=Run.Status.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    new = ingest(source="csv", path=str(write_csv(KAGGLE.read_text())))

    # The old process comes back: its next batch and its finish must change nothing.
    with pytest.raises(RunTakenOver):
        old.add_counts(read=5, inserted=5)
    old.finish(status=Run.Status.SUCCEEDED)

    old.refresh_from_db()
    assert (old.status, old.records_read) == (Run.Status.FAILED, 0)
    assert "taken over" in old.error
    assert new.status == Run.Status.SUCCEEDED


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs two concurrent sessions")
def test_a_run_row_locked_by_a_long_transaction_means_busy_at_once(write_csv):
    import psycopg2

    run = Run.objects.create(source="csv", status=Run.Status.RUNNING)
    params = connection.settings_dict
    other = psycopg2.connect(
        dbname=params["NAME"],
        user=params["USER"],
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        password=params["PASSWORD"] or None,
    )
    try:
        with other.cursor() as cursor:  # e.g. renormalize, holding its run for minutes
            cursor.execute("SELECT id FROM runs_run WHERE id = %s FOR UPDATE", [run.pk])
        with pytest.raises(RunAlreadyActive, match="already running"):
            ingest(source="csv", path=str(write_csv(KAGGLE.read_text())))
    finally:
        other.rollback()
        other.close()


def test_raw_payload_keeps_text_that_looks_like_a_json_escape(write_csv):
    header, first = kaggle_lines()[:2]
    path = write_csv(header + first.replace(",Ethereum,", ",Ether \\u0000 fork,"))

    ingest(source="csv", path=str(path))

    assert b",Ether \\u0000 fork," in RawUnit.objects.get().data()
    assert Quote.objects.get().asset.name == "Ether \\u0000 fork"
