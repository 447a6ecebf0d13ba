"""The consolidated price: median across fresh sources, spread, and the deviation flag."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from prices.consolidation import consolidated_price, consolidated_prices
from tests.factories import AssetFactory, QuoteFactory

pytestmark = pytest.mark.django_db


def flags(result: dict) -> dict[str, bool]:
    return {s["source"]: s["flagged"] for s in result["sources"]}


def test_median_spread_and_count_from_latest_quote_per_source(settings):
    settings.CONSOLIDATION_FRESHNESS_MINUTES = 60
    now = timezone.now()
    asset = AssetFactory()
    QuoteFactory(
        asset=asset, source="coingecko", observed_at=now - timedelta(minutes=30), price_usd=90
    )
    QuoteFactory(
        asset=asset, source="coingecko", observed_at=now - timedelta(minutes=5), price_usd=100
    )
    QuoteFactory(
        asset=asset, source="coinpaprika", observed_at=now - timedelta(minutes=2), price_usd=102
    )
    QuoteFactory(
        asset=asset, source="coincap", observed_at=now - timedelta(minutes=1), price_usd=101
    )
    QuoteFactory(
        asset=asset, source="csv", observed_at=now - timedelta(days=2), price_usd=50
    )  # stale

    result = consolidated_price(asset_id=asset.pk, now=now)

    assert result["source_count"] == 3
    assert result["median_usd"] == Decimal(101)
    assert result["spread"] == Decimal("0.019802")  # (102 - 100) / 101
    assert {s["source"]: s["price_usd"] for s in result["sources"]} == {
        "coingecko": 100,
        "coinpaprika": 102,
        "coincap": 101,
    }


def test_deviation_flag_is_raised_and_cleared(settings):
    settings.CONSOLIDATION_DEVIATION_THRESHOLD = 0.05
    now = timezone.now()
    asset = AssetFactory()
    QuoteFactory(
        asset=asset, source="coingecko", observed_at=now - timedelta(minutes=9), price_usd=100
    )
    QuoteFactory(
        asset=asset, source="coinpaprika", observed_at=now - timedelta(minutes=9), price_usd=101
    )
    QuoteFactory(
        asset=asset, source="coincap", observed_at=now - timedelta(minutes=9), price_usd=130
    )

    raised = consolidated_price(asset_id=asset.pk, now=now)
    QuoteFactory(
        asset=asset, source="coincap", observed_at=now - timedelta(minutes=1), price_usd=99
    )
    cleared = consolidated_price(asset_id=asset.pk, now=now)

    assert flags(raised) == {"coingecko": False, "coinpaprika": False, "coincap": True}
    assert flags(cleared) == {"coingecko": False, "coinpaprika": False, "coincap": False}


def test_no_fresh_quote_means_no_consolidated_price():
    asset = AssetFactory()
    QuoteFactory(asset=asset, observed_at=timezone.now() - timedelta(days=30))

    assert consolidated_price(asset_id=asset.pk) is None


def test_many_assets_in_one_query(django_assert_num_queries):
    now = timezone.now()
    assets = [AssetFactory() for _ in range(20)]
    for asset in assets:
        QuoteFactory(asset=asset, source="coingecko", observed_at=now)

    with django_assert_num_queries(1):
        result = consolidated_prices(asset_ids=[a.pk for a in assets], now=now)

    assert len(result) == 20
