"""A file that names its coin by symbol only (Yahoo BTC-USD.csv) joins the one reference asset
with that symbol, as a guess an operator can review, instead of making a hidden second coin."""

import pytest
from rest_framework.test import APIClient

from ingestion.pipeline import ingest
from prices.models import Asset, AssetIdentifier, Quote
from tests.conftest import FIXTURES
from tests.factories import AssetFactory

pytestmark = pytest.mark.django_db

YAHOO_ETH = (FIXTURES / "csv" / "ETH-USD.csv").read_text()


def test_yahoo_file_of_a_reference_symbol_joins_that_asset(write_csv):
    path = write_csv(YAHOO_ETH, name="ETH-USD.csv")

    run = ingest(source="csv", path=str(path))

    assert run.records_inserted == 5
    identifier = AssetIdentifier.objects.get(source="csv", external_id="ETH")
    assert identifier.asset.slug == "ethereum"
    assert identifier.asset.verified
    assert identifier.method == AssetIdentifier.Method.REFERENCE_SYMBOL
    assert identifier.confidence < 1
    assert Asset.objects.filter(symbol="ETH").count() == 1
    body = APIClient().get("/data", {"symbol": "ETH"}).json()
    assert len(body["results"]) == 5


def test_symbol_shared_by_two_reference_assets_is_not_guessed(settings, tmp_path, write_csv):
    reference = tmp_path / "reference.csv"
    reference.write_text(
        "rank,slug,symbol,name,coingecko_id,coinpaprika_id,coincap_id\n"
        "1,usd-coin,USDC,USD Coin,usd-coin,,\n"
        "2,usdc-other,USDC,Another USDC,usdc-other,,\n"
    )
    settings.REFERENCE_ASSETS_PATH = reference
    path = write_csv(YAHOO_ETH, name="USDC-USD.csv")

    ingest(source="csv", path=str(path))

    identifier = AssetIdentifier.objects.get(source="csv", external_id="USDC")
    assert identifier.method == AssetIdentifier.Method.NEW
    assert not identifier.asset.verified


def test_asset_option_still_decides(write_csv):
    other = AssetFactory(slug="my-eth-fork", symbol="ETH", name="My fork")
    path = write_csv(YAHOO_ETH, name="ETH-USD.csv")

    ingest(source="csv", path=str(path), asset=other.slug)

    assert set(Quote.objects.values_list("asset__slug", flat=True)) == {"my-eth-fork"}
    assert AssetIdentifier.objects.get(source="csv").method == AssetIdentifier.Method.MANUAL
