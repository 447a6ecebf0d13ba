"""A database written before raw units existed migrates forward with nothing lost.

The rows are built with the historical models (the ones the migrations knew at the time), then
the database migrates to the latest state and the new rows are compared with the old ones.
"""

import json
import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from ingestion.models import RawUnit, Rejection
from ingestion.renormalize import renormalize
from prices.models import Quote
from runs.models import Run

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [
    ("runs", "0003_run_session_pid"),
    ("ingestion", "0001_initial"),
    ("prices", "0003_identifier_method_reference_symbol"),
]

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def coingecko_item(coin_id, symbol, price, observed):
    return {
        "id": coin_id,
        "symbol": symbol,
        "name": coin_id.title(),
        "current_price": price,
        "market_cap": 1000,
        "total_volume": 10,
        "price_change_percentage_24h": 1.5,
        "last_updated": observed.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }


def build_old_database(apps):
    """Two runs as the old code wrote them: one fetch each, one rejected record in the first."""
    Run = apps.get_model("runs", "Run")
    RawRecord = apps.get_model("ingestion", "RawRecord")
    Asset = apps.get_model("prices", "Asset")
    AssetIdentifier = apps.get_model("prices", "AssetIdentifier")
    Quote = apps.get_model("prices", "Quote")

    bitcoin = Asset.objects.create(slug="bitcoin", symbol="BTC", name="Bitcoin", verified=True)
    ethereum = Asset.objects.create(slug="ethereum", symbol="ETH", name="Ethereum", verified=True)
    for asset in (bitcoin, ethereum):
        AssetIdentifier.objects.create(
            asset=asset, source="coingecko", external_id=asset.slug, method="reference"
        )

    expected = []
    for hour, prices in enumerate([("64000.5", "3100.25"), ("64100.75", "3110.5")]):
        fetched = T0 + timedelta(hours=hour)
        run = Run.objects.create(
            source="coingecko",
            status="partial" if hour == 0 else "succeeded",
            started_at=fetched,
            finished_at=fetched + timedelta(seconds=2),
        )
        for position, (asset, price) in enumerate(
            zip((bitcoin, ethereum), prices, strict=True), start=1
        ):
            payload = coingecko_item(asset.slug, asset.symbol.lower(), float(price), fetched)
            record = RawRecord.objects.create(
                source="coingecko",
                external_id=asset.slug,
                payload=payload,
                content_hash=f"{hour}-{asset.slug}",
                fetched_at=fetched,
                run=run,
            )
            Quote.objects.create(
                asset=asset,
                source="coingecko",
                observed_at=fetched,
                price_usd=Decimal(price),
                market_cap_usd=Decimal("1000"),
                raw_record=record,
                run=run,
            )
            expected.append((asset.slug, fetched, Decimal(price), run.pk, position, payload))
        if hour == 0:
            RawRecord.objects.create(
                source="coingecko",
                external_id="broken-coin",
                payload={"id": "broken-coin", "current_price": -1},
                content_hash="0-broken",
                fetched_at=fetched,
                run=run,
                rejection_reason="price must be positive",
            )
    return expected


def test_raw_records_become_units_and_quotes_keep_values_and_provenance():
    try:
        expected = build_old_database(migrate(BEFORE))
        migrate(latest())

        quotes = {(q.asset.slug, q.observed_at): q for q in Quote.objects.select_related("asset")}
        assert len(quotes) == len(expected)
        units = {unit.pk: unit for unit in RawUnit.objects.all()}
        # One unit per (source, run, fetch): two runs with one fetch each.
        assert len(units) == 2
        assert {unit.kind for unit in units.values()} == {RawUnit.Kind.RECORDS}
        assert sorted(unit.items for unit in units.values()) == [2, 3]

        for slug, fetched, price, run_id, position, payload in expected:
            quote = quotes[(slug, fetched)]
            assert quote.price_usd == price
            assert quote.market_cap_usd == Decimal("1000")
            assert quote.run_id == run_id
            unit = units[quote.raw_unit_id]
            assert unit.run_id == run_id
            assert unit.fetched_at == fetched
            lines = zlib.decompress(bytes(unit.content)).decode().splitlines()
            assert quote.raw_position == position
            assert json.loads(lines[position - 1]) == {"location": slug, "payload": payload}

        (rejection,) = Rejection.objects.all()
        assert rejection.reason == "price must be positive"
        assert rejection.location == "broken-coin"
        assert rejection.source == "coingecko"
        assert rejection.raw_unit.run_id == rejection.run_id
        assert rejection.run.status == Run.Status.PARTIAL
        assert "broken-coin" in rejection.text

        # The migrated units replay: renormalize rebuilds the same quotes from them.
        before = set(Quote.objects.values_list("asset_id", "observed_at", "price_usd"))
        run = renormalize(source="coingecko")
        assert run.records_read == 5
        assert run.records_rejected == 1
        assert set(Quote.objects.values_list("asset_id", "observed_at", "price_usd")) == before
    finally:
        migrate(latest())


def test_an_empty_old_database_migrates():
    try:
        migrate(BEFORE)
        migrate(latest())
        assert RawUnit.objects.count() == 0
        assert Rejection.objects.count() == 0
    finally:
        migrate(latest())
