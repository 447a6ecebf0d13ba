"""/api/runs/, /runs, /stats and /compare-runs."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from runs.models import Checkpoint, Run
from tests.factories import QuoteFactory, RawUnitFactory, RejectionFactory, RunFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def run_at(hour: int, seconds: float = 10, **fields) -> Run:
    started = T0 + timedelta(hours=hour)
    return RunFactory(
        started_at=started, finished_at=started + timedelta(seconds=seconds), **fields
    )


@pytest.mark.parametrize("url", ["/api/runs/", "/runs"])
def test_runs_list_newest_first_filtered_by_source_and_status(client, url):
    old = run_at(0, source="csv")
    failed = run_at(1, source="csv", status=Run.Status.FAILED, error="boom")
    newest = run_at(2, source="csv")
    run_at(3, source="coingecko")

    everything = client.get(url, {"source": "csv"}).json()["results"]
    only_failed = client.get(url, {"status": "failed"}).json()["results"]
    limited = client.get(url, {"source": "csv", "limit": 1}).json()

    assert [r["id"] for r in everything] == [newest.pk, failed.pk, old.pk]
    assert [(r["id"], r["error"]) for r in only_failed] == [(failed.pk, "boom")]
    assert len(limited["results"]) == 1
    assert limited["next"]
    assert everything[0]["duration_seconds"] == 10.0


@pytest.mark.parametrize(
    "params, parameter",
    [({"status": "exploded"}, "status"), ({"limit": "-1"}, "limit"), ({"trigger": "x"}, "trigger")],
)
def test_bad_runs_parameter_is_a_400_naming_it(client, params, parameter):
    response = client.get("/api/runs/", params)

    assert response.status_code == 400
    assert parameter in response.json()["errors"]


def test_run_detail_has_counts_duration_error_drift_and_checkpoints(client):
    run = run_at(
        0,
        seconds=42.5,
        status=Run.Status.PARTIAL,
        records_read=10,
        records_rejected=2,
        error="",
        drift={"added": ["new_field"]},
        checkpoint_before={"offset": 0},
        checkpoint_after={"offset": 100},
    )

    body = client.get(f"/api/runs/{run.pk}/").json()

    assert body["duration_seconds"] == 42.5
    assert (body["records_read"], body["records_rejected"]) == (10, 2)
    assert body["drift"] == {"added": ["new_field"]}
    assert (body["checkpoint_before"], body["checkpoint_after"]) == ({"offset": 0}, {"offset": 100})
    assert client.get(f"/api/runs/{run.pk + 1}/").status_code == 404


def test_runs_list_costs_the_same_queries_for_few_or_many(client, django_assert_num_queries):
    run_at(0)
    client.get("/api/runs/")
    with CaptureQueriesContext(connection) as few:
        client.get("/api/runs/")
    for hour in range(1, 25):
        run_at(hour)

    with django_assert_num_queries(len(few.captured_queries)):
        assert len(client.get("/api/runs/").json()["results"]) == 25


# --- /compare-runs -----------------------------------------------------------------------------


def compare(client: APIClient, a: Run, b: Run) -> dict:
    response = client.get("/compare-runs", {"run_a": a.pk, "run_b": b.pk})
    assert response.status_code == 200, response.content
    return response.json()


def codes(body: dict) -> set[str]:
    return {a["code"] for a in body["anomalies"]}


def test_similar_runs_raise_no_anomaly(client):
    history = [run_at(h, seconds=10, records_read=1000) for h in range(5)]
    latest = run_at(5, seconds=11, records_read=1040, records_rejected=10)

    body = compare(client, history[-1], latest)

    assert body["anomalies"] == []
    assert body["counts"]["records_read"] == {
        "a": 1000,
        "b": 1040,
        "change": 40,
        "change_ratio": 0.04,
    }
    assert body["status"]["change"] == "same"
    assert body["duration_seconds"]["recent_median"] == 10.0


@pytest.mark.parametrize("read_b", [400, 1600, 0])
def test_record_count_change_beyond_threshold_is_flagged(client, read_b):
    a = run_at(0, records_read=1000)
    b = run_at(1, records_read=read_b)

    assert "record_count_change" in codes(compare(client, a, b))


def test_duration_spike_against_the_sources_recent_median(client):
    for hour in range(5):
        run_at(hour, seconds=10 + hour)  # median 12 s
    a = run_at(5, seconds=12)
    b = run_at(6, seconds=60)
    other_source = run_at(7, seconds=60, source="coingecko")

    body = compare(client, a, b)

    assert "duration_spike" in codes(body)
    assert body["duration_seconds"]["recent_median"] == 12.0
    # Without a history of its own, a source has no median to spike against.
    assert "duration_spike" not in codes(compare(client, a, other_source))


def test_a_slow_run_within_the_factor_is_not_a_spike(client):
    for hour in range(5):
        run_at(hour, seconds=10)
    a, b = run_at(5, seconds=10), run_at(6, seconds=25)

    assert "duration_spike" not in codes(compare(client, a, b))


@pytest.mark.parametrize(
    "status_a, status_b, flagged",
    [
        (Run.Status.SUCCEEDED, Run.Status.FAILED, True),
        (Run.Status.SUCCEEDED, Run.Status.PARTIAL, True),
        (Run.Status.PARTIAL, Run.Status.FAILED, True),
        (Run.Status.FAILED, Run.Status.SUCCEEDED, False),
        (Run.Status.PARTIAL, Run.Status.PARTIAL, False),
    ],
)
def test_status_degradation(client, status_a, status_b, flagged):
    a, b = run_at(0, status=status_a), run_at(1, status=status_b)

    assert ("status_degradation" in codes(compare(client, a, b))) is flagged


def test_rise_in_rejected_share_is_flagged(client):
    a = run_at(0, records_read=1000, records_rejected=10)  # 1 %
    b = run_at(1, records_read=1000, records_rejected=80)  # 8 %

    body = compare(client, a, b)

    assert "rejected_share_rise" in codes(body)
    assert body["rejected_share"] == {"a": 0.01, "b": 0.08}


def test_compare_reports_drift_change(client):
    a = run_at(0, drift={})
    b = run_at(1, drift={"missing": ["price"]})

    assert compare(client, a, b)["drift"] == {"a": {}, "b": {"missing": ["price"]}, "changed": True}


@pytest.mark.parametrize("url", ["/compare-runs", "/api/runs/compare/"])
def test_compare_needs_both_ids_and_knows_unknown_ones(client, url):
    run = run_at(0)

    missing = client.get(url, {"run_a": run.pk})
    bad = client.get(url, {"run_a": "first", "run_b": run.pk})
    unknown = client.get(url, {"run_a": run.pk, "run_b": run.pk + 99})

    assert missing.status_code == 400
    assert "run_b" in missing.json()["errors"]
    assert bad.status_code == 400
    assert "run_a" in bad.json()["errors"]
    assert unknown.status_code == 404
    assert "run_b" in unknown.json()["detail"]


# --- /stats ------------------------------------------------------------------------------------


def test_stats_per_source(client):
    run_at(0, seconds=10, records_read=100)
    run_at(1, seconds=30, records_read=50, status=Run.Status.PARTIAL, records_rejected=5)
    failure = run_at(2, seconds=20, status=Run.Status.FAILED, error="provider said 500")
    last_ok = run_at(3, seconds=5, records_read=7)
    Checkpoint.objects.create(source="csv", cursor={"offset": 123}, run=last_ok)
    QuoteFactory(source="csv")
    QuoteFactory(source="csv")
    RawUnitFactory(source="csv", run=last_ok)
    RejectionFactory(source="csv", run=last_ok, reason="bad number")
    run_at(0, source="coingecko", status=Run.Status.FAILED, error="timeout")

    body = client.get("/stats").json()
    csv = next(s for s in body["sources"] if s["source"] == "csv")
    gecko = next(s for s in body["sources"] if s["source"] == "coingecko")

    assert (csv["runs_total"], csv["succeeded"], csv["partial"], csv["failed"]) == (4, 2, 1, 1)
    assert csv["records_processed"] == 157
    assert csv["last_success"]["id"] == last_ok.pk
    assert csv["last_failure"]["id"] == failure.pk
    assert csv["last_failure"]["error"] == "provider said 500"
    assert csv["duration_seconds"] == {"window": 4, "mean": 16.25, "median": 15.0, "last": 5.0}
    assert csv["rows"] == {"quotes": 2, "raw_units": 2, "rejections": 1}
    assert csv["checkpoint"]["cursor"] == {"offset": 123}
    assert csv["checkpoint"]["run"] == last_ok.pk
    assert gecko["last_success"] is None
    assert gecko["last_failure"]["error"] == "timeout"


def test_stats_costs_the_same_queries_however_many_runs(client, django_assert_num_queries):
    run_at(0)
    client.get("/stats")
    with CaptureQueriesContext(connection) as few:
        client.get("/stats")
    for hour in range(1, 20):
        run_at(hour, source="coingecko" if hour % 2 else "csv")

    with django_assert_num_queries(len(few.captured_queries)):
        assert client.get("/api/runs/stats/").status_code == 200
