"""/api/assets/{key}/coverage: present and missing buckets per source, missing spans merged."""

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from tests.factories import AssetFactory, QuoteFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def test_hourly_coverage_counts_and_merges_the_gaps_per_source(client):
    btc = AssetFactory(slug="bitcoin", symbol="BTC")
    hours = [h for h in range(24) if h not in (3, 4, 5, 10)]
    for hour in hours:
        # Drifting minutes past the hour still land in the hour.
        QuoteFactory(
            asset=btc, source="coingecko", observed_at=T0 + timedelta(hours=hour, minutes=7)
        )
    QuoteFactory(asset=btc, source="coincap", observed_at=T0 + timedelta(hours=12))

    body = client.get(
        "/api/assets/BTC/coverage",
        {"interval": "1h", "from": T0.isoformat(), "to": (T0 + timedelta(days=1)).isoformat()},
    ).json()

    by_source = {s["source"]: s for s in body["sources"]}
    gecko = by_source["coingecko"]
    assert (gecko["expected"], gecko["present"], gecko["missing"]) == (24, 20, 4)
    assert gecko["first"] == "2024-03-01T00:00:00Z"
    assert gecko["last"] == "2024-03-01T23:00:00Z"
    assert gecko["missing_spans"] == [
        {"start": "2024-03-01T03:00:00Z", "end": "2024-03-01T06:00:00Z", "buckets": 3},
        {"start": "2024-03-01T10:00:00Z", "end": "2024-03-01T11:00:00Z", "buckets": 1},
    ]
    cap = by_source["coincap"]
    assert (cap["present"], cap["missing"]) == (1, 23)
    assert cap["missing_spans"][0]["start"] == "2024-03-01T00:00:00Z"
    assert cap["missing_spans"][-1]["end"] == "2024-03-02T00:00:00Z"


def test_daily_coverage_defaults_to_the_assets_own_span(client):
    eth = AssetFactory(slug="ethereum", symbol="ETH")
    for day in (0, 1, 4):
        QuoteFactory(asset=eth, source="csv", observed_at=T0 + timedelta(days=day, hours=23))

    body = client.get("/api/assets/ethereum/coverage").json()

    (csv,) = body["sources"]
    assert (csv["expected"], csv["present"], csv["missing"]) == (5, 3, 2)
    assert csv["missing_spans"] == [
        {"start": "2024-03-03T00:00:00Z", "end": "2024-03-05T00:00:00Z", "buckets": 2}
    ]


def test_an_asset_without_quotes_has_no_coverage_and_a_bad_interval_is_a_400(client):
    AssetFactory(slug="empty", symbol="NONE")
    assert client.get("/api/assets/empty/coverage").json()["sources"] == []
    response = client.get("/api/assets/empty/coverage", {"interval": "5m"})
    assert response.status_code == 400
    assert "interval" in response.json()["errors"]
    assert client.get("/api/assets/nothing/coverage").status_code == 404
