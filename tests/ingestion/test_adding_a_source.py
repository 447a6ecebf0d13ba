"""What README's "Adding a source" promises: a module, a line in the registry, a settings block.

`ExampleSource` below is such a module, a small JSON API provider; the tests register it with
`settings.ETL_SOURCES` alone and use it as any source is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest
from django.conf import settings
from django.core.management import call_command
from rest_framework.test import APIClient

# Imported before any test registers a source, as a server has its views before a request.
import ingestion.views  # noqa: F401
from ingestion.normalize import Observation, to_positive_price, to_utc
from ingestion.services import enabled_sources, monitored_sources
from ingestion.sources.api import JsonApiSource, provider_id, text
from ingestion.sources.base import Item, Unit
from ingestion.sources.http import JsonClient
from prices.models import AssetIdentifier, Quote
from runs.models import Run


class ExampleSource(JsonApiSource):
    """A provider answering `GET /prices` with `[{"id", "symbol", "name", "usd", "at"}]`."""

    name = "example"
    reference_column = "example_id"
    title = "Example"
    key_setting = "EXAMPLE_API_KEY"
    calls_per_minute_setting = "EXAMPLE_CALLS_PER_MINUTE"

    @classmethod
    def from_settings(cls, **options: Any) -> Self:
        return cls(base_url=settings.EXAMPLE_BASE_URL, api_key=settings.EXAMPLE_API_KEY)

    def missing_configuration(self) -> str | None:
        return None if self.api_key else "EXAMPLE_API_KEY is not set"

    def fetch_pages(self, client: JsonClient) -> Iterator[Unit]:
        yield self.page_unit(client, client.get_page("/prices"))

    def read_page(self, body: Any, context: dict[str, Any]) -> list[Item]:
        rows = self.expect_rows(body, what="/prices")
        return self.items_by_id(rows, where=lambda index: f"row {index}")

    def normalize(self, payload: dict[str, Any]) -> Observation:
        return Observation(
            identity=provider_id(payload),
            symbol=text(payload.get("symbol")),
            name=text(payload.get("name")),
            observed_at=to_utc(payload.get("at"), field="at"),
            price_usd=to_positive_price(payload.get("usd"), field="usd"),
        )


@pytest.fixture
def example(settings, httpserver, tmp_path: Path):
    """The registry line and the settings block of the example provider, and its server."""
    settings.ETL_SOURCES = {
        **settings.ETL_SOURCES,
        "example": f"{__name__}.ExampleSource",
    }
    settings.ETL_ENABLED_SOURCES = ["example"]
    settings.EXAMPLE_BASE_URL = httpserver.url_for("/v1")
    settings.EXAMPLE_API_KEY = "example-key-123"
    settings.EXAMPLE_CALLS_PER_MINUTE = 6000
    reference = tmp_path / "reference_assets.csv"
    reference.write_text(
        "rank,slug,symbol,name,coingecko_id,coinpaprika_id,coincap_id,example_id\n"
        "1,bitcoin,BTC,Bitcoin,bitcoin,btc-bitcoin,bitcoin,XBT-1\n"
    )
    settings.REFERENCE_ASSETS_PATH = str(reference)
    httpserver.expect_request("/v1/prices").respond_with_json(
        [
            {"id": "XBT-1", "symbol": "BTC", "name": "Bitcoin", "usd": "64000.5", "at": 1.7e9},
            {"id": "NEW-9", "symbol": "NEW", "name": "Newcoin", "usd": "0.25", "at": 1.7e9},
        ]
    )
    return httpserver


@pytest.mark.django_db
def test_a_registered_source_ingests_from_the_command(example, capsys):
    call_command("ingest", source="example")

    run = Run.objects.get(source="example")
    assert run.status == Run.Status.SUCCEEDED
    assert sorted(Quote.objects.filter(source="example").values_list("price_usd", flat=True)) == [
        pytest.approx(0.25),
        pytest.approx(64000.5),
    ]
    # Its reference column maps its ids to the canonical assets.
    mapped = AssetIdentifier.objects.get(source="example", external_id="XBT-1")
    assert (mapped.asset.slug, mapped.method) == ("bitcoin", AssetIdentifier.Method.REFERENCE)
    assert f"run {run.pk} example succeeded" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_registered_source_is_known_to_the_api_and_the_schedule(example):
    call_command("ingest", source="all")

    client = APIClient()
    body = client.get("/api/prices/", {"source": "example"}).json()
    assert {row["asset_symbol"] for row in body["results"]} == {"BTC", "NEW"}
    assert client.get("/runs", {"source": "example"}).json()["results"][0]["source"] == "example"
    assert client.get("/health").json()["sources"][0]["source"] == "example"
    assert enabled_sources() == ["example"]


@pytest.mark.django_db
def test_a_registered_source_can_be_started_over_http(example, admin_user, monkeypatch):
    launched: list[dict[str, Any]] = []
    monkeypatch.setattr("ingestion.trigger.launch", lambda **kwargs: launched.append(kwargs))
    client = APIClient()
    client.force_authenticate(admin_user)

    response = client.post("/api/runs/", {"source": "example"}, format="json")

    assert response.status_code == 202, response.json()
    assert launched == [{"run_id": response.json()["id"], "source": "example"}]


@pytest.mark.django_db
def test_a_registered_source_without_its_key_is_skipped_by_all_and_not_monitored(example, capsys):
    settings.EXAMPLE_API_KEY = ""

    call_command("ingest", source="all")

    assert "example skipped: EXAMPLE_API_KEY is not set" in capsys.readouterr().out
    assert monitored_sources() == []
    assert not Run.objects.exists()
