"""/api/assets/{key}/candles: a fixed grid of buckets, empty ones explicit, sources named."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from ingestion.pipeline import ingest
from prices.models import Asset
from tests.conftest import FIXTURES
from tests.factories import AssetFactory, QuoteFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 3, 1, tzinfo=UTC)
KAGGLE = FIXTURES / "csv" / "kaggle_coin_Ethereum_head.csv"


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def get(client, url, **params):
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    return response.json()


def quote(asset, source, at, price, **extra):
    return QuoteFactory(
        asset=asset, source=source, observed_at=at, price_usd=Decimal(price), **extra
    )


def test_hourly_candles_are_the_median_of_the_sources_and_name_them(client):
    btc = AssetFactory(slug="bitcoin", symbol="BTC")
    quote(btc, "coingecko", T0 + timedelta(minutes=5), "100")
    quote(btc, "coingecko", T0 + timedelta(minutes=50), "110")
    quote(btc, "coincap", T0 + timedelta(minutes=10), "102")
    quote(btc, "coincap", T0 + timedelta(minutes=40), "90")
    quote(btc, "coinpaprika", T0 + timedelta(minutes=30), "104")
    quote(btc, "coingecko", T0 + timedelta(hours=2, minutes=1), "120")

    body = get(
        client,
        "/api/assets/bitcoin/candles",
        interval="1h",
        **{"from": T0.isoformat(), "to": (T0 + timedelta(hours=3)).isoformat()},
    )

    assert body["asset"]["slug"] == "bitcoin"
    first, empty, third = body["results"]
    assert first["start"] == "2024-03-01T00:00:00Z"
    assert first["sources"] == ["coincap", "coingecko", "coinpaprika"]
    # coincap 102..90, coingecko 100..110, coinpaprika 104: medians of open, high, low, close.
    assert first["open"] == "102"
    assert first["high"] == "104"
    assert first["low"] == "100"
    assert first["close"] == "104"
    assert first["quotes"] == 5
    assert first["bars"] is False
    assert empty == {
        "start": "2024-03-01T01:00:00Z",
        "open": None,
        "high": None,
        "low": None,
        "close": None,
        "volume_24h_usd": None,
        "quotes": 0,
        "sources": [],
        "bars": False,
        "filled": False,
    }
    assert third["close"] == "120"
    assert third["sources"] == ["coingecko"]


def test_one_source_and_fill_previous(client):
    btc = AssetFactory(slug="bitcoin", symbol="BTC")
    quote(btc, "coingecko", T0 + timedelta(minutes=5), "100")
    quote(btc, "coingecko", T0 + timedelta(minutes=50), "110")
    quote(btc, "coincap", T0 + timedelta(hours=1), "999")
    quote(btc, "coingecko", T0 + timedelta(hours=2), "120")

    body = get(
        client,
        "/api/assets/bitcoin/candles",
        interval="1h",
        source="coingecko",
        fill="previous",
        **{"from": T0.isoformat(), "to": (T0 + timedelta(hours=3)).isoformat()},
    )

    results = body["results"]
    assert [c["close"] for c in results] == ["110", "110", "120"]
    assert results[0]["open"] == "100"
    assert results[1]["filled"] is True
    assert results[1]["quotes"] == 0
    assert results[1]["open"] == results[1]["high"] == results[1]["low"] == "110"
    assert {s for c in results for s in c["sources"]} == {"coingecko"}


def test_daily_bars_keep_their_ohlc_and_weeks_aggregate_them(client):
    ingest(source="csv", path=str(KAGGLE))
    eth = Asset.objects.get(symbol="ETH")

    daily = get(client, f"/api/assets/{eth.pk}/candles", interval="1d")["results"]
    days = [c for c in daily if c["quotes"]]
    assert len(days) == 10
    first = days[0]
    assert first["start"] == "2015-08-08T00:00:00Z"
    # The file's own open, high, low and close of 2015-08-08 (SQLite keeps 15 digits of them).
    ohlc = [Decimal(first[name]) for name in ("open", "high", "low", "close")]
    expected = [
        "2.793760061264038",
        "2.7988100051879883",
        "0.7147250175476074",
        "0.7533249855041504",
    ]
    assert all(
        abs(got - Decimal(want)) < Decimal("1e-13")
        for got, want in zip(ohlc, expected, strict=True)
    )
    assert first["bars"] is True
    # The default range ends with the asset's latest day, not today.
    assert daily[-1]["start"] == days[-1]["start"]

    weekly = get(client, "/api/assets/ETH/candles", interval="1w")["results"]
    weeks = [c for c in weekly if c["quotes"]]
    # 2015-08-08 is a Saturday: its week began on Monday 2015-08-03.
    assert weeks[0]["start"] == "2015-08-03T00:00:00Z"
    in_first_week = [d for d in days if d["start"] < "2015-08-10"]
    assert weeks[0]["open"] == in_first_week[0]["open"]
    assert weeks[0]["close"] == in_first_week[-1]["close"]
    assert Decimal(weeks[0]["high"]) == max(Decimal(d["high"]) for d in in_first_week)
    assert weeks[0]["quotes"] == len(in_first_week)
    assert sum(w["quotes"] for w in weeks) == 10


def test_five_minute_buckets(client):
    btc = AssetFactory(slug="bitcoin", symbol="BTC")
    for minute, price in [(0, "1"), (3, "5"), (4, "2"), (5, "7"), (14, "3")]:
        quote(btc, "coingecko", T0 + timedelta(minutes=minute), price)

    results = get(
        client,
        "/api/assets/BTC/candles",
        interval="5m",
        **{"from": T0.isoformat(), "to": (T0 + timedelta(minutes=15)).isoformat()},
    )["results"]

    assert [(c["open"], c["high"], c["low"], c["close"], c["quotes"]) for c in results] == [
        ("1", "5", "1", "2", 3),
        ("7", "7", "7", "7", 1),
        ("3", "3", "3", "3", 1),
    ]


def test_a_symbol_names_its_canonical_asset(client):
    AssetFactory(slug="bridged-usdc", symbol="USDC")
    canonical = AssetFactory(slug="usd-coin", symbol="USDC", verified=True, rank=7)
    quote(canonical, "coingecko", T0, "1")

    assert get(client, "/api/assets/usdc/candles")["asset"]["slug"] == "usd-coin"


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"interval": "2h"}, "interval"),
        ({"fill": "linear"}, "fill"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2024-03-02T00:00:00Z", "to": "2024-03-01T00:00:00Z"}, "to"),
        ({"interval": "5m", "from": "2020-01-01T00:00:00Z", "to": "2024-01-01T00:00:00Z"}, "from"),
        ({"source": "nowhere"}, "source"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(client, params, parameter):
    AssetFactory(slug="bitcoin", symbol="BTC")
    response = client.get("/api/assets/bitcoin/candles", params)
    assert response.status_code == 400
    assert parameter in response.json()["errors"]


def test_unknown_asset_is_a_404(client):
    response = client.get("/api/assets/no-such-coin/candles")
    assert response.status_code == 404
    assert "no-such-coin" in str(response.json())


def test_candles_cost_the_same_queries_for_a_day_or_forty(client):
    btc = AssetFactory(slug="bitcoin", symbol="BTC")
    for hour in range(24 * 40):
        quote(btc, "coingecko" if hour % 2 else "coincap", T0 + timedelta(hours=hour), "100")

    for days in (1, 40):
        params = {
            "interval": "1h",
            "from": T0.isoformat(),
            "to": (T0 + timedelta(days=days)).isoformat(),
        }
        with CaptureQueriesContext(connection) as captured:
            body = get(client, "/api/assets/bitcoin/candles", **params)
        assert len(body["results"]) == 24 * days
        data = [q for q in captured.captured_queries if "prices_" in q["sql"]]
        # The asset, the buckets, and their opening and closing quotes.
        assert len(data) == 3


def test_candles_as_csv(client):
    btc = AssetFactory(slug="bitcoin", symbol="BTC")
    quote(btc, "coingecko", T0 + timedelta(minutes=5), "100")
    quote(btc, "coingecko", T0 + timedelta(hours=2), "120")

    response = client.get(
        "/api/assets/bitcoin/candles",
        {
            "interval": "1h",
            "format": "csv",
            "from": T0.isoformat(),
            "to": (T0 + timedelta(hours=3)).isoformat(),
        },
    )

    assert response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "start,open,high,low,close,volume_24h_usd,quotes,sources,bars,filled"
    assert lines[1].startswith("2024-03-01T00:00:00Z,100,100,100,100,")
    assert lines[2] == "2024-03-01T01:00:00Z,,,,,,0,,False,False"
    assert len(lines) == 4
