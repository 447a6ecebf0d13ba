"""/api/prices/ and /data: filters, ordering, keyset paging, errors and query counts."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers
from rest_framework.test import APIClient

from prices.models import Quote
from prices.serializers import QUOTE_COLUMNS, QuoteSerializer
from tests.factories import AssetFactory, QuoteFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def walk(client: APIClient, url: str, params: dict | None = None) -> list[int]:
    """Every id reached by following `next` links from `url`."""
    seen: list[int] = []
    response = client.get(url, params)
    while True:
        seen += ids(response)
        next_url = response.json()["next"]
        if next_url is None:
            return seen
        response = client.get(next_url)


def test_symbol_filter_is_case_insensitive_and_picks_the_canonical_asset(client):
    bridged = AssetFactory(symbol="USDC", name="Bridged USDC")
    usd_coin = AssetFactory(symbol="USDC", name="USDC", verified=True, rank=7)
    minor = AssetFactory(symbol="USDC", name="Another USDC", verified=True, rank=900)
    wanted = [QuoteFactory(asset=usd_coin, source=s) for s in ("coingecko", "coincap", "csv")]
    for asset in (bridged, minor, AssetFactory(symbol="BTC")):
        QuoteFactory(asset=asset)

    response = client.get("/api/prices/", {"symbol": "Usdc"})

    assert sorted(ids(response)) == sorted(q.pk for q in wanted)
    assert {row["asset"] for row in response.json()["results"]} == {usd_coin.pk}


def test_symbol_filter_of_an_unknown_symbol_is_empty(client):
    QuoteFactory()

    assert ids(client.get("/api/prices/", {"symbol": "NOPE"})) == []


def test_asset_and_source_filters(client):
    asset = AssetFactory()
    mine = QuoteFactory(asset=asset, source="coincap")
    QuoteFactory(asset=asset, source="coingecko")
    QuoteFactory(source="coincap")

    response = client.get("/api/prices/", {"asset": asset.pk, "source": "coincap"})

    assert ids(response) == [mine.pk]


@pytest.mark.parametrize(
    "after, before",
    [
        ("2024-03-01T01:00:00Z", "2024-03-01T03:00:00Z"),
        ("2024-03-01T06:00:00+05:00", "2024-03-01T08:00:00+05:00"),
        ("2024-02-29T20:00:00-05:00", "2024-02-29T22:00:00-05:00"),
        # A '+' the caller forgot to encode arrives as a space.
        ("2024-03-01T06:00:00 05:00", "2024-03-01T08:00:00 05:00"),
        # No offset means UTC.
        ("2024-03-01T01:00:00", "2024-03-01 03:00:00"),
    ],
)
def test_time_range_accepts_any_utc_offset_and_is_half_open(client, after, before):
    asset = AssetFactory()
    quotes = [QuoteFactory(asset=asset, observed_at=T0 + timedelta(hours=h)) for h in range(5)]

    response = client.get("/api/prices/", {"observed_after": after, "observed_before": before})

    # [01:00, 03:00) UTC: hours 1 and 2, newest first.
    assert ids(response) == [quotes[2].pk, quotes[1].pk]


def test_price_range_filters_are_inclusive(client):
    asset = AssetFactory()
    by_price = {p: QuoteFactory(asset=asset, price_usd=Decimal(p)) for p in ("1", "2.5", "4")}

    response = client.get("/api/prices/", {"min_price": "2.5", "max_price": "4"})

    assert sorted(ids(response)) == sorted([by_price["2.5"].pk, by_price["4"].pk])


def test_default_order_is_newest_first_with_id_breaking_ties(client):
    asset_a, asset_b = AssetFactory(), AssetFactory()
    older = QuoteFactory(asset=asset_a, observed_at=T0)
    tie_1 = QuoteFactory(asset=asset_a, observed_at=T0 + timedelta(hours=1))
    tie_2 = QuoteFactory(asset=asset_b, observed_at=T0 + timedelta(hours=1))

    assert ids(client.get("/api/prices/")) == [tie_2.pk, tie_1.pk, older.pk]


def test_ordering_by_price_both_ways_pages_through_ties_without_loss(client):
    asset = AssetFactory()
    prices = ["3", "1", "2", "2", "2", "5", "1"]
    quotes = [QuoteFactory(asset=asset, price_usd=Decimal(p)) for p in prices]
    ascending = [q.pk for q in sorted(quotes, key=lambda q: (q.price_usd, q.pk))]

    assert walk(client, "/api/prices/", {"ordering": "price_usd", "limit": 2}) == ascending
    assert walk(client, "/api/prices/", {"ordering": "-price_usd", "limit": 2}) == ascending[::-1]


def test_previous_link_returns_the_page_before(client):
    asset = AssetFactory()
    for _ in range(7):
        QuoteFactory(asset=asset)
    first = client.get("/api/prices/", {"limit": 3}).json()
    second = client.get(first["next"]).json()

    back = client.get(second["previous"]).json()

    assert [r["id"] for r in back["results"]] == [r["id"] for r in first["results"]]
    assert first["previous"] is None


def test_cursor_is_stable_while_new_rows_arrive(client):
    """Rows inserted after the first page, at the same instant as its boundary row and newer,
    neither repeat nor push out any row of the original listing."""
    instant = T0 + timedelta(hours=5)
    assets = [AssetFactory() for _ in range(8)]
    original = [QuoteFactory(asset=a, observed_at=instant) for a in assets[:6]]
    original += [QuoteFactory(asset=assets[0], observed_at=T0 + timedelta(hours=h)) for h in (1, 2)]
    expected = [q.pk for q in sorted(original, key=lambda q: (q.observed_at, q.pk), reverse=True)]

    first = client.get("/api/prices/", {"limit": 3}).json()
    # Same instant as the page boundary (higher ids sort before it) and strictly newer rows.
    QuoteFactory(asset=assets[6], observed_at=instant)
    QuoteFactory(asset=assets[7], observed_at=instant)
    QuoteFactory(asset=assets[1], observed_at=T0 + timedelta(days=1))
    rest = walk(client, first["next"])

    assert [r["id"] for r in first["results"]] + rest == expected


def data_queries(captured: CaptureQueriesContext) -> list[str]:
    """The SQL a request ran for its data, without the throttle's counter in the cache table
    (and the savepoint around its write)."""
    return [
        q["sql"].upper()
        for q in captured.captured_queries
        if "django_cache" not in q["sql"] and "SAVEPOINT" not in q["sql"].upper()
    ]


def test_paging_never_counts_or_offsets(client):
    asset = AssetFactory()
    for _ in range(6):
        QuoteFactory(asset=asset)
    first = client.get("/api/prices/", {"limit": 2}).json()

    with CaptureQueriesContext(connection) as captured:
        client.get(first["next"])

    sql = data_queries(captured)
    assert len(sql) == 1
    assert "OFFSET" not in sql[0]
    assert "COUNT(" not in sql[0]


@pytest.mark.parametrize(
    "params, parameter",
    [
        ({"observed_after": "yesterday"}, "observed_after"),
        ({"observed_before": "2024-13-01T00:00:00Z"}, "observed_before"),
        ({"observed_after": "0001-01-01T00:00:00+05:00"}, "observed_after"),
        ({"min_price": "cheap"}, "min_price"),
        ({"max_price": "1e99999"}, "max_price"),
        ({"asset": "bitcoin"}, "asset"),
        ({"asset": "99999999999999999999999"}, "asset"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"ordering": "market_cap_usd"}, "ordering"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"symbol": "X" * 65}, "symbol"),
        ({"source": "a\x00b"}, "source"),
    ],
)
def test_bad_parameter_is_a_400_naming_it(client, params, parameter):
    response = client.get("/api/prices/", params)

    assert response.status_code == 400
    body = response.json()
    assert parameter in body["errors"]
    assert parameter in body["detail"]
    assert body["request_id"] == response["X-Request-ID"]


def test_cursor_from_another_ordering_is_refused(client):
    asset = AssetFactory()
    for _ in range(3):
        QuoteFactory(asset=asset)
    next_url = client.get("/api/prices/", {"limit": 1}).json()["next"]

    response = client.get(next_url + "&ordering=price_usd")

    assert response.status_code == 400
    assert "cursor" in response.json()["errors"]


def test_quote_detail_and_unknown_id(client):
    quote = QuoteFactory()

    assert client.get(f"/api/prices/{quote.pk}/").json()["id"] == quote.pk
    missing = client.get(f"/api/prices/{quote.pk + 1000}/")
    assert missing.status_code == 404
    assert missing.json()["detail"]


def test_data_body_carries_request_id_and_latency(client):
    QuoteFactory()

    response = client.get("/data", HTTP_X_REQUEST_ID="trace-42")

    body = response.json()
    assert response["X-Request-ID"] == "trace-42"
    assert body["request_id"] == "trace-42"
    assert isinstance(body["api_latency_ms"], float)
    assert len(body["results"]) == 1


def test_api_prices_body_has_no_data_extras(client):
    QuoteFactory()

    assert set(client.get("/api/prices/").json()) == {"next", "previous", "results"}


@pytest.mark.parametrize("url", ["/api/prices/", "/data"])
def test_list_costs_the_same_queries_for_few_or_many_rows(client, url, django_assert_num_queries):
    QuoteFactory()
    client.get(url)  # the throttle's counter for this client now exists
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(30):
        QuoteFactory(asset=AssetFactory())

    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(url)
    assert len(response.json()["results"]) == 31
    # One query for the page, with the asset joined in.
    assert len(data_queries(few)) == 1


@pytest.mark.parametrize("filled", [True, False])
def test_fast_quote_serializer_matches_drfs_generic_output(filled):
    values = {"market_cap_usd": Decimal("1.5e12"), "volume_24h_usd": Decimal("0.000000012")}
    made = QuoteFactory(percent_change_24h=Decimal("-3.25") if filled else None, **values)
    serializer = QuoteSerializer()

    loaded = Quote.objects.select_related("asset").get(pk=made.pk)
    row = Quote.objects.values(*QUOTE_COLUMNS).get(pk=made.pk)

    assert serializer.to_representation(row) == serializer.to_representation(loaded)
    for quote in (made, loaded):
        fast = serializer.to_representation(quote)
        generic = serializers.ModelSerializer.to_representation(serializer, quote)
        assert fast == dict(generic)
        assert list(fast) == list(generic)


def test_prices_are_exact_strings_without_the_columns_trailing_zeros(client):
    asset = AssetFactory(symbol="BTC")
    QuoteFactory(
        asset=asset,
        price_usd=Decimal("64000.12345678"),
        market_cap_usd=Decimal("3450"),
        volume_24h_usd=Decimal("0.000000000000000001"),
        percent_change_24h=Decimal("-1.5"),
    )

    for url in ("/api/prices/", "/data"):
        (row,) = client.get(url).json()["results"]
        assert row["price_usd"] == "64000.12345678"
        assert row["market_cap_usd"] == "3450"
        assert row["volume_24h_usd"] == "0.000000000000000001"
        assert row["percent_change_24h"] == "-1.5"
    detail = client.get(f"/api/prices/{Quote.objects.get().pk}/").json()
    assert detail["price_usd"] == "64000.12345678"


@pytest.mark.parametrize("url", ["/data", "/api/prices/"])
def test_format_csv_streams_every_matching_row_not_one_page(client, url):
    btc = AssetFactory(symbol="BTC", slug="bitcoin")
    for n in range(120):
        QuoteFactory(asset=btc, source="coingecko", price_usd=Decimal("64000.5") + n)
    QuoteFactory(asset=btc, source="coincap")
    QuoteFactory(asset=AssetFactory(symbol="ETH"), source="coingecko")

    response = client.get(url, {"format": "csv", "symbol": "btc", "source": "coingecko"})

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("id,asset,asset_slug,asset_symbol,source,observed_at,price_usd")
    assert len(lines) == 1 + 120
    # Newest first, as the JSON list.
    assert lines[1].split(",")[6] == "64119.5"


def test_format_csv_with_a_bad_filter_is_a_json_400(client):
    response = client.get("/data", {"format": "csv", "source": "nowhere"})
    assert response.status_code == 400
    assert "source" in response.json()["errors"]


def test_an_unknown_format_is_a_400_naming_it(client):
    response = client.get("/data", {"format": "xml"})
    assert response.status_code == 400
    assert "format" in response.json()["errors"]


def test_format_csv_refuses_paging_parameters(client):
    response = client.get("/data", {"format": "csv", "limit": 5})
    assert response.status_code == 400
    assert "limit" in response.json()["errors"]
