"""factory_boy factories for the models; values are placeholders for tests, not market data."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory

from ingestion.models import RawUnit, Rejection, compress
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


class RawUnitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RawUnit

    source = "csv"
    run = factory.SubFactory(RunFactory)
    kind = RawUnit.Kind.CHUNK
    fetched_at = factory.LazyFunction(lambda: datetime.now(UTC))
    file_name = "/data/file.csv"
    line_start = 2
    line_end = 3
    media_type = "text/csv"
    content = factory.LazyFunction(lambda: compress(b"a,b\n"))
    size = 4
    items = 1
    content_hash = factory.Sequence(lambda n: f"{n:064x}")


class RejectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rejection

    source = "csv"
    run = factory.SubFactory(RunFactory)
    raw_unit = factory.SubFactory(RawUnitFactory, run=factory.SelfAttribute("..run"))
    location = factory.Sequence(lambda n: f"file.csv:{n}")
    reason = "missing Close"
    created_at = factory.LazyFunction(lambda: datetime.now(UTC))


class QuoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Quote

    asset = factory.SubFactory(AssetFactory)
    source = "coingecko"
    observed_at = factory.Sequence(lambda n: datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=n))
    price_usd = factory.Sequence(lambda n: Decimal(100 + n))
