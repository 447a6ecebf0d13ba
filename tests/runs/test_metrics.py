"""/metrics: request metrics, run metrics read from the database, upstream retries and 429s."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer
from rest_framework.test import APIClient
from werkzeug import Response

from ingestion.sources.http import HttpPolicy, JsonClient
from runs.models import Run
from tests.conftest import FIXTURES
from tests.processes import PYTHON, ROOT, base_env, reference_assets

pytestmark = pytest.mark.django_db

KAGGLE = FIXTURES / "csv" / "kaggle_coin_Ethereum_head.csv"


def scrape() -> str:
    response = APIClient().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def value(text: str, name: str, **labels: str) -> float:
    """The sample's value, 0 when it is absent (a counter nothing has touched yet)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return 0.0


@pytest.fixture(autouse=True)
def _reference_assets(settings, tmp_path: Path) -> None:
    settings.REFERENCE_ASSETS_PATH = reference_assets(tmp_path)


def test_metrics_are_in_prometheus_text_format_with_request_metrics():
    APIClient().get("/health")

    text = scrape()

    names = {family.name for family in text_string_to_metric_families(text)}
    assert {
        "django_http_requests_latency_seconds_by_view_method",
        "django_http_responses_total_by_status_view_method",
        "etl_runs",
        "etl_records",
        "etl_run_duration_seconds",
        "etl_last_success_timestamp_seconds",
        "etl_metrics_database_up",
    } <= names
    assert (
        value(
            text,
            "django_http_responses_total_by_status_view_method_total",
            method="GET",
            status="200",
            view="health",
        )
        >= 1
    )


def test_an_ingest_counts_a_run_its_records_duration_and_last_success():
    before = scrape()

    call_command("ingest", "--source", "csv", "--path", str(KAGGLE))

    after = scrape()
    run = Run.objects.get()
    assert value(after, "etl_runs_total", source="csv", status="succeeded") == (
        value(before, "etl_runs_total", source="csv", status="succeeded") + 1
    )
    assert value(after, "etl_records_total", source="csv", outcome="inserted") == (
        value(before, "etl_records_total", source="csv", outcome="inserted") + 10
    )
    assert value(after, "etl_run_duration_seconds_count", source="csv") == 1
    assert value(after, "etl_run_duration_seconds_sum", source="csv") == pytest.approx(
        run.duration.total_seconds(), abs=1e-3
    )
    assert value(after, "etl_last_success_timestamp_seconds", source="csv") == pytest.approx(
        run.finished_at.timestamp(), abs=1e-3
    )
    assert value(after, "etl_metrics_database_up") == 1


def test_a_failed_run_is_counted_as_failed_and_does_not_move_the_last_success():
    call_command("ingest", "--source", "csv", "--path", str(KAGGLE))
    succeeded = Run.objects.get()
    with pytest.raises(CommandError):
        call_command("ingest", "--source", "csv", "--path", "/nonexistent/prices.csv")

    text = scrape()

    assert value(text, "etl_runs_total", source="csv", status="failed") == 1
    assert value(text, "etl_runs_total", source="csv", status="succeeded") == 1
    assert value(text, "etl_last_success_timestamp_seconds", source="csv") == pytest.approx(
        succeeded.finished_at.timestamp(), abs=1e-3
    )


def test_runs_written_by_any_process_are_counted_including_runs_in_progress():
    # Rows as the scheduler's cron jobs leave them: /metrics reads the table, not memory.
    Run.objects.create(source="coingecko", status=Run.Status.RUNNING)
    finished = Run.objects.create(source="coinpaprika", status=Run.Status.RUNNING)
    finished.add_counts(read=5, inserted=3, unchanged=1, rejected=1)
    finished.finish(status=Run.Status.PARTIAL)

    text = scrape()

    assert value(text, "etl_runs_in_progress", source="coingecko") == 1
    assert value(text, "etl_runs_in_progress", source="coinpaprika") == 0
    assert value(text, "etl_runs_total", source="coinpaprika", status="partial") == 1
    assert value(text, "etl_records_total", source="coinpaprika", outcome="rejected") == 1
    # Partial still counts as a success: the run worked, some records were refused.
    assert value(text, "etl_last_success_timestamp_seconds", source="coinpaprika") > 0


def test_upstream_429s_and_retries_are_counted(httpserver: HTTPServer):
    httpserver.expect_ordered_request("/v1/tickers").respond_with_response(
        Response('{"error": "slow down"}', status=429, headers={"Retry-After": "0"})
    )
    httpserver.expect_ordered_request("/v1/tickers").respond_with_json([])
    client = JsonClient(
        source="coinpaprika",
        title="CoinPaprika",
        base_url=httpserver.url_for("/v1"),
        policy=HttpPolicy(
            connect_timeout=2,
            read_timeout=2,
            max_retries=2,
            backoff_base=0.001,
            max_wait=0.01,
            calls_per_minute=0,
        ),
    )
    before = scrape()

    assert client.get_json("tickers") == []

    after = scrape()
    for name in ("etl_upstream_rate_limited_total", "etl_upstream_retries_total"):
        assert (
            value(after, name, source="coinpaprika")
            == value(before, name, source="coinpaprika") + 1
        ), name


def test_counters_of_other_processes_are_summed_in_multiprocess_mode(tmp_path: Path, monkeypatch):
    """What gunicorn workers and cron jobs do: each process counts in its own file in
    PROMETHEUS_MULTIPROC_DIR, and /metrics, in yet another process, adds them up."""
    shared = tmp_path / "metrics"
    shared.mkdir()
    code = (
        "import django; django.setup(); "
        "from runs.metrics import record_upstream_retry; "
        "record_upstream_retry(source='coingecko'); record_upstream_retry(source='coingecko')"
    )
    for _ in range(3):
        subprocess.run(
            [PYTHON, "-c", code],
            env=base_env(
                DJANGO_SETTINGS_MODULE="config.settings", PROMETHEUS_MULTIPROC_DIR=str(shared)
            ),
            cwd=ROOT,
            check=True,
        )
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))

    text = scrape()

    assert value(text, "etl_upstream_retries_total", source="coingecko") == 6
    # Run metrics still come from the database alongside.
    assert value(text, "etl_metrics_database_up") == 1
