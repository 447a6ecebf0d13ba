"""/health: database and per-source freshness; degraded when an enabled, configured source is
overdue or never ran; 503."""

import secrets
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from runs.models import Run
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def enabled_sources(settings):
    """Sources that run without a key, unless a test says otherwise."""
    settings.ETL_ENABLED_SOURCES = ["coingecko", "csv"]
    settings.COINCAP_API_KEY = ""


def finished(ago: timedelta, **fields) -> Run:
    end = timezone.now() - ago
    return RunFactory(started_at=end - timedelta(seconds=30), finished_at=end, **fields)


def test_ok_with_each_sources_last_run_and_its_age():
    finished(timedelta(minutes=30), source="coingecko")
    finished(timedelta(hours=20), source="csv")

    response = APIClient().get("/health")

    body = response.json()
    assert response.status_code == 200
    assert (body["status"], body["database"]) == ("ok", "ok")
    by_source = {s["source"]: s for s in body["sources"]}
    assert by_source["coingecko"]["last_run"]["status"] == "succeeded"
    assert 1700 < by_source["coingecko"]["last_run"]["age_seconds"] < 1900
    assert by_source["csv"]["max_age_minutes"] == 26 * 60


def test_degraded_when_the_last_success_is_older_than_the_schedule_allows():
    finished(timedelta(hours=3), source="coingecko")  # hourly source, 2 h allowed
    finished(timedelta(minutes=5), source="coingecko", status=Run.Status.FAILED, error="x")
    finished(timedelta(hours=3), source="csv")  # daily source: fine

    response = APIClient().get("/health")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    by_source = {s["source"]: s for s in body["sources"]}
    assert by_source["coingecko"]["status"] == "degraded"
    assert by_source["coingecko"]["last_run"]["status"] == "failed"
    assert by_source["csv"]["status"] == "ok"


def test_a_source_that_never_succeeded_is_degraded():
    finished(timedelta(minutes=1), source="csv")
    finished(timedelta(minutes=1), source="coingecko", status=Run.Status.FAILED, error="429")

    body = APIClient().get("/health").json()

    by_source = {s["source"]: s for s in body["sources"]}
    assert body["status"] == "degraded"
    assert by_source["coingecko"]["status"] == "degraded"
    assert by_source["coingecko"]["last_success_at"] is None


def test_an_enabled_source_that_never_ran_is_degraded(settings):
    settings.ETL_ENABLED_SOURCES = ["coingecko", "coinpaprika", "csv"]
    finished(timedelta(minutes=5), source="coingecko")
    finished(timedelta(minutes=5), source="csv")

    response = APIClient().get("/health")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    by_source = {s["source"]: s for s in body["sources"]}
    assert by_source["coinpaprika"]["status"] == "never_ran"
    assert by_source["coinpaprika"]["last_run"] is None
    assert by_source["coingecko"]["status"] == "ok"


def test_a_fresh_install_is_degraded_until_every_enabled_source_ran():
    body = APIClient().get("/health").json()

    assert body["status"] == "degraded"
    assert [(s["source"], s["status"]) for s in body["sources"]] == [
        ("coingecko", "never_ran"),
        ("csv", "never_ran"),
    ]


def test_a_source_cron_skips_does_not_hold_the_verdict(settings):
    """CoinCap without its key (skipped by `all` and cron) and a source not enabled: one manual
    run each, long ago, and they are listed but leave the verdict alone."""
    settings.ETL_ENABLED_SOURCES = ["coingecko", "coincap", "csv"]
    finished(timedelta(minutes=5), source="coingecko")
    finished(timedelta(minutes=5), source="csv")
    finished(timedelta(days=3), source="coincap", status=Run.Status.FAILED, error="no key")
    finished(timedelta(days=3), source="coinpaprika")

    body = APIClient().get("/health").json()

    assert body["status"] == "ok"
    by_source = {s["source"]: s for s in body["sources"]}
    assert by_source["coincap"]["status"] == "not_monitored"
    assert by_source["coinpaprika"]["status"] == "not_monitored"
    assert by_source["coinpaprika"]["last_run"]["status"] == "succeeded"


def test_coincap_with_its_key_is_held_to_its_schedule(settings):
    settings.ETL_ENABLED_SOURCES = ["coincap"]
    settings.COINCAP_API_KEY = secrets.token_hex(16)
    finished(timedelta(days=3), source="coincap")

    body = APIClient().get("/health").json()

    assert (body["status"], body["sources"][0]["status"]) == ("degraded", "degraded")


def test_a_renormalize_run_is_not_a_fetch():
    finished(timedelta(minutes=5), source="csv")
    finished(timedelta(hours=3), source="coingecko")
    finished(timedelta(minutes=30), source="coingecko", status=Run.Status.FAILED, error="x")
    finished(timedelta(minutes=1), source="coingecko", kind=Run.Kind.RENORMALIZE)

    health = APIClient().get("/health").json()
    stats = {s["source"]: s for s in APIClient().get("/stats").json()["sources"]}

    coingecko = next(s for s in health["sources"] if s["source"] == "coingecko")
    assert (health["status"], coingecko["status"]) == ("degraded", "degraded")
    assert coingecko["last_run"]["status"] == "failed"
    assert (stats["coingecko"]["runs_total"], stats["coingecko"]["succeeded"]) == (2, 1)


@override_settings(HEALTH_MAX_AGE_MINUTES={"csv": 10}, ETL_ENABLED_SOURCES=["csv"])
def test_schedule_comes_from_settings():
    finished(timedelta(minutes=15), source="csv")

    assert APIClient().get("/health").json()["status"] == "degraded"


def test_503_when_the_database_is_unreachable(monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)

    response = APIClient().get("/health")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response["X-Request-ID"]


def test_other_endpoints_answer_503_not_500_without_a_database(monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("could not connect to server: Connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)

    response = APIClient().get("/api/runs/")

    assert response.status_code == 503
    assert response.json()["detail"] == "The database is unavailable."
