"""/api/assets/: list, detail with provider ids and consolidated price, OHLC history."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from ingestion.pipeline import ingest
from prices.models import Asset
from tests.conftest import FIXTURES, stored
from tests.factories import AssetFactory, AssetIdentifierFactory, QuoteFactory

pytestmark = pytest.mark.django_db

DAY = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def test_list_is_ordered_by_symbol_and_filters_by_symbol_any_case(client):
    eth = AssetFactory(symbol="ETH")
    btc = AssetFactory(symbol="BTC")
    AssetFactory(symbol="XRP")

    listed = client.get("/api/assets/").json()["results"]
    found = client.get("/api/assets/", {"symbol": "eth"}).json()["results"]

    assert [a["symbol"] for a in listed] == ["BTC", "ETH", "XRP"]
    assert listed[0]["id"] == btc.pk
    assert [a["id"] for a in found] == [eth.pk]


def test_detail_lists_identifiers_and_the_consolidated_price(client):
    asset = AssetFactory(symbol="BTC")
    AssetIdentifierFactory(asset=asset, source="coingecko", external_id="bitcoin")
    AssetIdentifierFactory(asset=asset, source="coinpaprika", external_id="btc-bitcoin")
    now = timezone.now()
    QuoteFactory(asset=asset, source="coingecko", observed_at=now, price_usd=Decimal("100"))
    QuoteFactory(asset=asset, source="coinpaprika", observed_at=now, price_usd=Decimal("102"))

    body = client.get(f"/api/assets/{asset.pk}/").json()

    assert {i["external_id"] for i in body["identifiers"]} == {"bitcoin", "btc-bitcoin"}
    assert Decimal(body["consolidated_price"]["median_usd"]) == Decimal("101")
    assert body["consolidated_price"]["source_count"] == 2


def test_detail_without_fresh_quotes_has_no_consolidated_price(client):
    asset = AssetFactory()
    QuoteFactory(asset=asset, observed_at=DAY - timedelta(days=400))

    assert client.get(f"/api/assets/{asset.pk}/").json()["consolidated_price"] is None


@pytest.mark.parametrize("url", ["/api/assets/999999/", "/api/assets/999999/history/"])
def test_unknown_asset_is_a_404(client, url):
    response = client.get(url)

    assert response.status_code == 404
    assert response.json()["detail"]


def test_hourly_history_is_open_high_low_close_per_bucket(client):
    asset = AssetFactory()
    prices = {0: "10", 15: "14", 30: "9", 45: "12", 60: "20"}
    for minute, price in prices.items():
        QuoteFactory(
            asset=asset,
            observed_at=DAY + timedelta(minutes=minute),
            price_usd=Decimal(price),
            volume_24h_usd=Decimal(minute + 1000),
        )

    body = client.get(f"/api/assets/{asset.pk}/history/", {"interval": "1h"}).json()

    newest, first = body["results"]
    assert body["interval"] == "1h"
    assert newest["start"].startswith("2024-05-01T01:00:00")
    assert Decimal(newest["open"]) == Decimal(newest["close"]) == Decimal("20")
    assert first["start"].startswith("2024-05-01T00:00:00")
    assert [Decimal(first[k]) for k in ("open", "high", "low", "close")] == [10, 14, 9, 12]
    assert Decimal(first["volume_24h_usd"]) == Decimal("1045")
    assert first["quotes"] == 4


def test_daily_history_filters_by_source_and_time(client):
    asset = AssetFactory()
    for day in range(4):
        for source, price in (("coingecko", 100 + day), ("coincap", 200 + day)):
            QuoteFactory(
                asset=asset,
                source=source,
                observed_at=DAY + timedelta(days=day, hours=12),
                price_usd=Decimal(price),
            )

    body = client.get(
        f"/api/assets/{asset.pk}/history/",
        {
            "interval": "1d",
            "source": "coincap",
            "observed_after": "2024-05-02T00:00:00+02:00",
            "limit": 2,
        },
    ).json()

    assert [Decimal(c["close"]) for c in body["results"]] == [203, 202]


@pytest.mark.parametrize(
    "params, parameter",
    [
        ({"interval": "5m"}, "interval"),
        ({"limit": "0"}, "limit"),
        ({"observed_after": "soon"}, "observed_after"),
    ],
)
def test_bad_history_parameter_is_a_400_naming_it(client, params, parameter):
    asset = AssetFactory()

    response = client.get(f"/api/assets/{asset.pk}/history/", params)

    assert response.status_code == 400
    assert parameter in response.json()["errors"]


def test_asset_list_costs_the_same_queries_for_few_or_many(client, django_assert_num_queries):
    AssetFactory()
    client.get("/api/assets/")
    with CaptureQueriesContext(connection) as few:
        client.get("/api/assets/")
    for _ in range(20):
        AssetIdentifierFactory()

    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get("/api/assets/")
    assert len(response.json()["results"]) == 21


def test_history_costs_two_queries_however_many_buckets(client, django_assert_num_queries):
    asset = AssetFactory()
    for hour in range(48):
        QuoteFactory(asset=asset, observed_at=DAY + timedelta(hours=hour))
    client.get(f"/api/assets/{asset.pk}/history/")
    with CaptureQueriesContext(connection) as captured:
        body = client.get(f"/api/assets/{asset.pk}/history/", {"interval": "1h"}).json()

    data = [q for q in captured.captured_queries if "prices_" in q["sql"]]
    assert len(body["results"]) == 48
    # The asset, the buckets, and their opening and closing quotes.
    assert len(data) == 3


def test_daily_history_of_a_csv_export_keeps_its_bars(client):
    """The Kaggle file's own open, high and low, not flat candles made of the close."""
    ingest(source="csv", path=str(FIXTURES / "csv" / "kaggle_coin_Ethereum_head.csv"))
    asset = Asset.objects.get(symbol="ETH")

    body = client.get(f"/api/assets/{asset.pk}/history/", {"interval": "1d", "limit": 20}).json()
    first = body["results"][-1]
    hourly = client.get(f"/api/assets/{asset.pk}/history/", {"interval": "1h"}).json()

    assert first["start"].startswith("2015-08-08")
    # The file's first row: Open 2.79..., High 2.80..., Low 0.71..., Close 0.75...
    ohlc = [Decimal(first[key]) for key in ("open", "high", "low", "close")]
    assert ohlc == [
        stored("2.793760061264038"),
        stored("2.7988100051879883"),
        stored("0.7147250175476074"),
        stored("0.7533249855041504"),
    ]
    # An hour cannot hold a day's range: an hourly candle shows the bar's close only.
    last_hour = hourly["results"][-1]
    assert Decimal(last_hour["open"]) == Decimal(last_hour["high"]) == stored("0.7533249855041504")
