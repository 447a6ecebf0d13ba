"""`renormalize` rebuilds quotes from raw units, without any provider."""

from io import StringIO

import pytest
from django.core.management import call_command

from ingestion.models import RawUnit
from ingestion.pipeline import ingest
from ingestion.renormalize import renormalize
from prices.models import AssetIdentifier, Quote
from runs.models import Run
from tests.conftest import FIXTURES
from tests.factories import AssetFactory

pytestmark = pytest.mark.django_db

KAGGLE = FIXTURES / "csv" / "kaggle_coin_Ethereum_head.csv"


def quotes() -> set[tuple]:
    return set(
        Quote.objects.values_list(
            "asset__slug", "source", "observed_at", "price_usd", "raw_unit", "raw_position"
        )
    )


def test_renormalize_is_idempotent():
    ingest(source="csv", path=str(KAGGLE))
    before = quotes()

    first = renormalize(source="csv")
    second = renormalize(source="csv")

    assert first.status == second.status == Run.Status.SUCCEEDED
    assert first.records_read == second.records_read == 10
    assert first.records_inserted == second.records_inserted == 10
    assert quotes() == before


def test_renormalize_after_a_remap_moves_quotes_to_the_new_asset():
    ingest(source="csv", path=str(KAGGLE))
    target = AssetFactory(slug="ether-fixed", symbol="ETH", name="Ether")
    AssetIdentifier.objects.filter(source="csv").update(asset=target)

    run = renormalize(source="csv")

    assert run.status == Run.Status.SUCCEEDED
    assert set(Quote.objects.values_list("asset__slug", flat=True)) == {"ether-fixed"}
    assert Quote.objects.count() == 10


def test_renormalize_command_reports_each_source():
    ingest(source="csv", path=str(KAGGLE))
    out = StringIO()

    call_command("renormalize", stdout=out)

    assert "csv succeeded: read 10, inserted 10" in out.getvalue()
    assert "10 quotes replaced" in out.getvalue()
    assert RawUnit.objects.count() == 1
