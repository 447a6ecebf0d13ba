"""factory_boy factories for the models; values are placeholders for tests, not market data."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory

from ingestion.models import RawRecord
from prices.models import Asset, AssetIdentifier, Quote
from runs.models import Run


class AssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Asset

    slug = factory.Sequence(lambda n: f"asset-{n}")
    symbol = factory.Sequence(lambda n: f"A{n}")
    name = factory.Sequence(lambda n: f"Asset {n}")


class AssetIdentifierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AssetIdentifier

    asset = factory.SubFactory(AssetFactory)
    source = "coingecko"
    external_id = factory.Sequence(lambda n: f"coin-{n}")
    method = AssetIdentifier.Method.NEW


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Run

    source = "csv"
    status = Run.Status.SUCCEEDED
    started_at = factory.LazyFunction(lambda: datetime.now(UTC))
    finished_at = factory.LazyAttribute(lambda run: run.started_at + timedelta(seconds=5))


class RawRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RawRecord

    source = "csv"
    run = factory.SubFactory(RunFactory)
    external_id = factory.Sequence(lambda n: f"file.csv:{n}")
    payload = factory.Dict({})
    content_hash = factory.Sequence(lambda n: f"{n:064x}")
    fetched_at = factory.LazyFunction(lambda: datetime.now(UTC))


class QuoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Quote

    asset = factory.SubFactory(AssetFactory)
    source = "coingecko"
    observed_at = factory.Sequence(lambda n: datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=n))
    price_usd = factory.Sequence(lambda n: Decimal(100 + n))
