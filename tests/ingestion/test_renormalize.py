"""`renormalize` rebuilds quotes from raw units, without any provider."""

from io import StringIO

import pytest
from django.core.management import call_command

from ingestion.models import RawUnit, Rejection
from ingestion.pipeline import ingest
from ingestion.renormalize import renormalize
from prices.models import AssetIdentifier, Quote
from runs.models import Run
from tests.conftest import FIXTURES
from tests.factories import AssetFactory
from tests.ingestion.test_bad_items import HEADER, kaggle_row
from tests.provider_helpers import (
    COINGECKO_PATH,
    coingecko_rows,
    json_response,
    use_local_providers,
)

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


def rejection_rows(source: str) -> list[tuple[str, str]]:
    return sorted(Rejection.objects.filter(source=source).values_list("location", "reason"))


def test_renormalize_rejects_exactly_what_ingest_rejected(write_csv):
    """Replaying stored units goes through ingest's own checks: a row ingest refused (an identity
    of 300 characters, a NUL, a date that overflows, a number of 5,000 digits, a price that is
    not a number) is refused again with the same reason, on either database, and the run does
    not fail for it."""
    bad = [
        kaggle_row(2, name="E" * 300),
        kaggle_row(3, name="Ether\x00eum"),
        kaggle_row(4, date="0001-01-01T00:00:00+01:00"),
        kaggle_row(5, close="1" * 5000),
        kaggle_row(6, close="abc"),
    ]
    path = write_csv(HEADER + kaggle_row(1) + "".join(bad) + kaggle_row(7))
    ingested = ingest(source="csv", path=str(path))
    assert (ingested.records_inserted, ingested.records_rejected) == (2, 5)
    rejected_by_ingest = rejection_rows("csv")
    quotes_by_ingest = quotes()

    run = renormalize(source="csv")

    assert run.status == Run.Status.PARTIAL, run.error
    assert (run.records_read, run.records_inserted, run.records_rejected) == (7, 2, 5)
    assert rejection_rows("csv") == rejected_by_ingest
    assert [where for where, _ in rejected_by_ingest] == [f"{path.name}:{n}" for n in range(3, 8)]
    assert "longer than 255" in rejected_by_ingest[0][1]
    assert quotes() == quotes_by_ingest


def test_renormalize_of_a_provider_page_rejects_its_over_long_id(settings, httpserver):
    use_local_providers(settings, httpserver)
    rows = coingecko_rows(3)
    rows[0]["id"] = "b" * 300
    httpserver.expect_request(f"{COINGECKO_PATH}/coins/markets").respond_with_response(
        json_response(rows)
    )
    ingested = ingest(source="coingecko")
    assert (ingested.records_inserted, ingested.records_rejected) == (2, 1)
    rejected_by_ingest = rejection_rows("coingecko")

    run = renormalize(source="coingecko")

    assert (run.status, run.records_inserted, run.records_rejected) == ("partial", 2, 1)
    assert rejection_rows("coingecko") == rejected_by_ingest
    assert "longer than 255" in rejected_by_ingest[0][1]
