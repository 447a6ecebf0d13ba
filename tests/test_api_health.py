"""/health: database and per-source freshness; degraded when a source is overdue; 503."""

from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from runs.models import Run
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db


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
    finished(timedelta(minutes=1), source="coincap", status=Run.Status.FAILED, error="no key")

    body = APIClient().get("/health").json()

    assert body["status"] == "degraded"
    assert body["sources"][0]["last_success_at"] is None


def test_a_renormalize_run_is_not_a_fetch():
    finished(timedelta(hours=3), source="coingecko")
    finished(timedelta(minutes=30), source="coingecko", status=Run.Status.FAILED, error="x")
    finished(timedelta(minutes=1), source="coingecko", kind=Run.Kind.RENORMALIZE)

    health = APIClient().get("/health").json()
    stats = {s["source"]: s for s in APIClient().get("/stats").json()["sources"]}

    coingecko = health["sources"][0]
    assert (health["status"], coingecko["status"]) == ("degraded", "degraded")
    assert coingecko["last_run"]["status"] == "failed"
    assert (stats["coingecko"]["runs_total"], stats["coingecko"]["succeeded"]) == (2, 1)


@override_settings(HEALTH_MAX_AGE_MINUTES={"csv": 10})
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
