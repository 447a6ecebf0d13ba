"""The console without a browser: the dashboard's content and query budget, readable admin
pages, the quote CSV export, the landing page and the browsable API's text."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from common.display import readable
from prices.numbers import plain
from runs.models import Run
from tests.factories import AssetFactory, AssetIdentifierFactory, QuoteFactory, RunFactory

pytestmark = pytest.mark.django_db


def fill(assets: int, sources=("coingecko", "coinpaprika")) -> None:
    now = timezone.now().replace(microsecond=0)
    for n in range(assets):
        asset = AssetFactory(rank=n + 1)
        for source in sources:
            for hour in range(0, 48, 6):
                QuoteFactory(asset=asset, source=source, observed_at=now - timedelta(hours=hour))
    for source in sources:
        RunFactory(source=source, started_at=now - timedelta(minutes=20))
        RunFactory(source=source, status=Run.Status.FAILED, error="boom\nsecond line")


def test_the_dashboard_costs_the_same_queries_for_few_or_many(admin_client):
    fill(2)
    admin_client.get("/admin/")
    with CaptureQueriesContext(connection) as few:
        admin_client.get("/admin/")
    fill(9, sources=("coingecko", "coinpaprika", "csv"))

    with CaptureQueriesContext(connection) as many:
        response = admin_client.get("/admin/")

    assert response.status_code == 200
    assert len(response.context["assets"]) == 10
    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_dashboard_tiles_follow_the_health_rules(admin_client, settings):
    settings.ETL_ENABLED_SOURCES = ["coingecko", "coinpaprika", "csv"]
    now = timezone.now()
    RunFactory(source="csv", started_at=now - timedelta(minutes=5))
    RunFactory(source="coingecko", started_at=now - timedelta(hours=1))
    RunFactory(
        source="coingecko",
        status=Run.Status.FAILED,
        started_at=now - timedelta(minutes=10),
        error="CoinGecko: 429 Too Many Requests\nretry-after: 119",
    )
    RunFactory(source="coinpaprika", started_at=now - timedelta(days=3))

    response = admin_client.get("/admin/")

    tiles = {tile.source: tile for tile in response.context["tiles"]}
    assert (tiles["csv"].state, tiles["csv"].label) == ("healthy", "healthy")
    # A recent success, then a failure: /health still says ok, the tile says what happened last.
    assert tiles["coingecko"].state == "healthy"
    assert tiles["coingecko"].last_error == "CoinGecko: 429 Too Many Requests"
    assert tiles["coinpaprika"].state == "degraded"
    html = response.content.decode()
    assert 'data-source="coinpaprika" data-state="degraded"' in html
    assert "CoinGecko: 429 Too Many Requests" in html
    assert "retry-after" not in html


def test_a_source_whose_last_run_failed_too_long_ago_to_be_ok_is_failing(admin_client, settings):
    settings.ETL_ENABLED_SOURCES = ["coingecko"]
    RunFactory(source="coingecko", status=Run.Status.FAILED, error="down")
    tiles = admin_client.get("/admin/").context["tiles"]
    assert [(t.source, t.state, t.label) for t in tiles] == [("coingecko", "failing", "failing")]


def test_the_top_assets_show_a_stale_asset_with_its_last_price(admin_client):
    old = datetime(2021, 7, 6, 23, 59, 59, tzinfo=UTC)
    asset = AssetFactory(symbol="ETH", name="Ethereum", rank=2)
    QuoteFactory(asset=asset, source="csv", observed_at=old - timedelta(days=1), price_usd=100)
    QuoteFactory(asset=asset, source="csv", observed_at=old, price_usd=Decimal("2324.68"))

    (row,) = admin_client.get("/admin/").context["assets"]

    assert row.fresh is False
    assert row.price == Decimal("2324.68")
    assert row.as_of == old
    assert row.change_24h == (Decimal("2324.68") - 100) / 100
    assert row.sparkline  # two points drawn
    html = admin_client.get("/admin/").content.decode()
    assert "2,324.68" in html
    assert "+2,224.68 %" in html


def test_the_run_list_reads_at_a_glance(admin_client):
    start = datetime(2024, 3, 1, 12, tzinfo=UTC)
    RunFactory(
        source="coingecko",
        status=Run.Status.FAILED,
        started_at=start,
        finished_at=start + timedelta(seconds=0.5666),
        records_read=12345,
        error="CoinGecko: connection reset\nTraceback: a long story",
    )

    html = admin_client.get("/admin/runs/run/").content.decode()

    assert '<span class="badge badge-run-failed">failed</span>' in html
    assert "0.57 s" in html
    assert "12,345" in html
    assert "CoinGecko: connection reset" in html
    assert "a long story" not in html
    assert "2024-03-01 12:00:00" in html
    assert "0:00:00.566" not in html


def test_the_run_page_shows_the_whole_error_and_tables_of_checkpoint_and_options(admin_client):
    run = RunFactory(
        status=Run.Status.FAILED,
        error="first line\nsecond line",
        options={"path": "/data/coin_Bitcoin.csv", "fail_after": None},
        checkpoint_before={"file": "coin_Bitcoin.csv", "line": 1200},
    )

    html = admin_client.get(f"/admin/runs/run/{run.pk}/change/").content.decode()

    assert "first line\nsecond line" in html
    assert "<tr><th>line</th><td>1200</td></tr>" in html
    assert "<tr><th>path</th><td>/data/coin_Bitcoin.csv</td></tr>" in html


def test_quote_list_numbers_are_readable_and_filter_by_asset(admin_client):
    btc = AssetFactory(symbol="BTC", name="Bitcoin")
    eth = AssetFactory(symbol="ETH", name="Ethereum")
    QuoteFactory(asset=btc, price_usd=Decimal("64123.456789"), market_cap_usd=Decimal("1.2e12"))
    QuoteFactory(asset=eth, price_usd=Decimal("3450"))

    html = admin_client.get("/admin/prices/quote/").content.decode()
    assert "64,123.457" in html
    assert "1,200,000,000,000" in html
    assert "000000000000000000" not in html

    filtered = admin_client.get(f"/admin/prices/quote/?asset={btc.pk}").content.decode()
    assert "BTC (Bitcoin)" in filtered
    assert "ETH (Ethereum)" not in filtered.split('id="result_list"')[1]

    found = admin_client.get(
        "/admin/autocomplete/",
        {"term": "ether", "app_label": "prices", "model_name": "quote", "field_name": "asset"},
    ).json()
    assert [r["text"] for r in found["results"]] == ["ETH (Ethereum)"]


def test_the_asset_list_searches_provider_ids(admin_client):
    asset = AssetFactory(symbol="BTC", name="Bitcoin")
    AssetIdentifierFactory(asset=asset, source="coinpaprika", external_id="btc-bitcoin")
    AssetFactory(symbol="ETH", name="Ethereum")

    html = admin_client.get("/admin/prices/asset/", {"q": "btc-bitcoin"}).content.decode()
    assert "Bitcoin" in html
    assert "Ethereum" not in html


def test_the_quote_export_streams_the_filtered_rows_as_csv(admin_client):
    btc = AssetFactory(slug="bitcoin", symbol="BTC")
    for hour in range(5):
        QuoteFactory(asset=btc, source="coingecko", price_usd=Decimal("64000.5") + hour)
    QuoteFactory(asset=btc, source="coincap")
    QuoteFactory(asset=AssetFactory(symbol="ETH"), source="coingecko")

    response = admin_client.get(
        "/admin/prices/quote/export.csv", {"asset": btc.pk, "source": "coingecko"}
    )

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 5
    assert {r["asset_slug"] for r in rows} == {"bitcoin"}
    assert {r["source"] for r in rows} == {"coingecko"}
    assert rows[0]["price_usd"] == "64000.5"
    assert rows[0]["observed_at"].endswith("Z")


def test_an_exported_cell_never_starts_a_spreadsheet_formula(admin_client):
    QuoteFactory(asset=AssetFactory(symbol="=HYPERLINK(1)", slug="odd"))

    response = admin_client.get("/admin/prices/quote/export.csv")

    (row,) = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    assert row["asset_symbol"] == "'=HYPERLINK(1)"


def test_the_export_needs_a_staff_login(client):
    response = client.get("/admin/prices/quote/export.csv")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_asset_page_has_a_chart_fed_by_the_candles_endpoint(admin_client):
    asset = AssetFactory(symbol="BTC")
    AssetIdentifierFactory(asset=asset, source="coingecko")
    QuoteFactory(asset=asset, source="coingecko")

    html = admin_client.get(f"/admin/prices/asset/{asset.pk}/change/").content.decode()

    assert f'data-candles-url="/api/assets/{asset.pk}/candles"' in html
    assert "prices/chart.js" in html
    assert 'data-range="1y"' in html


def test_the_landing_page_links_the_console_docs_api_and_health(client):
    html = client.get("/").content.decode()
    for link in ('href="/admin/"', 'href="/docs"', 'href="/api/"', 'href="/health"'):
        assert link in html


@pytest.mark.parametrize("path", ["/data", "/health"])
def test_root_paths_answer_with_or_without_a_slash(client, path):
    without, with_slash = client.get(path), client.get(f"{path}/")
    assert without.status_code == with_slash.status_code == 200
    assert without.json().keys() == with_slash.json().keys()


def test_the_browsable_api_renders_descriptions_and_labels_every_filter(client):
    html = client.get("/data", HTTP_ACCEPT="text/html").content.decode()
    assert "<code>/api/prices/</code>" in html
    assert "`/api/prices/`" not in html
    assert (
        "[invalid name]" not in client.get("/api/prices/", HTTP_ACCEPT="text/html").content.decode()
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("3450.000000000000000000", "3,450.00"),
        ("64123.456789", "64,123.46"),
        ("0.000012345678", "0.0000123457"),
        ("1234567890123.5", "1,234,567,890,124"),
        ("0", "0"),
    ],
)
def test_readable_numbers(value, text):
    assert readable(Decimal(value)) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [("3450.000000000000000000", "3450"), ("0E-18", "0"), ("1E+3", "1000"), ("-0.50", "-0.5")],
)
def test_plain_decimals(value, text):
    assert plain(Decimal(value)) == text


def test_the_asset_page_shows_each_sources_daily_coverage(admin_client):
    asset = AssetFactory(symbol="ETH")
    start = datetime(2024, 3, 1, 23, tzinfo=UTC)
    for day in (0, 1, 2, 6, 7):
        QuoteFactory(asset=asset, source="csv", observed_at=start + timedelta(days=day))
    QuoteFactory(asset=asset, source="coingecko", observed_at=start + timedelta(days=7))

    html = admin_client.get(f"/admin/prices/asset/{asset.pk}/change/").content.decode()

    assert "<td>csv</td><td>2024-03-01</td><td>2024-03-08</td>" in html
    assert "5 / 8" in html
    assert "2024-03-04 to 2024-03-06 (3 d)" in html
    assert "<td>coingecko</td><td>2024-03-08</td><td>2024-03-08</td>" in html
