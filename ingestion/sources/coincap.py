"""CoinCap v3: `GET /v3/assets?limit=&offset=` (at most 2000 a request), key as a Bearer token.

v3 needs a key (`COINCAP_API_KEY`); without one this source does not run (`ingest --source
coincap` fails saying so; `--source all` skips it with a note). v2 (api.coincap.io/v2) is shut
down: it answers `{"data": {"message": ...}}`, an object where the list of assets should be,
which is reported as an error, never as "no data".

Every value is a string (`"rank": "1"`, 16-decimal prices); only the response has a time, its
`timestamp` in epoch milliseconds, which is the observation time of every row in it.

Each page is kept as received (one raw unit); its items are read with the response timestamp
attached (`{"item": row, "timestamp": ms}`), so a replayed page gives the same observations. As
the timestamp moves on every call, each run observes every coin anew, at that time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

from django.conf import settings

from ingestion.normalize import (
    Observation,
    Rejected,
    is_missing,
    to_decimal,
    to_positive_price,
    to_utc,
)
from ingestion.sources.api import JsonApiSource, provider_id, text
from ingestion.sources.base import Item, SourceError, Unit
from ingestion.sources.http import JsonClient, error_message
from runs.drift import Schema, spec

BASE_URL = "https://rest.coincap.io/v3"
_V2_HOST = "api.coincap.io"
PAGE_LIMIT = 2000

_STRING = ("string",)
EXPECTED_SCHEMA: Schema = {
    "id": spec(*_STRING, required=True),
    # The docs show rank as a number, the real API sends a string: both are expected.
    "rank": spec("string", "number"),
    "symbol": spec(*_STRING),
    "name": spec(*_STRING),
    "supply": spec(*_STRING),
    "maxSupply": spec(*_STRING),
    "marketCapUsd": spec(*_STRING),
    "volumeUsd24Hr": spec(*_STRING),
    "priceUsd": spec(*_STRING, required=True),
    "changePercent24Hr": spec(*_STRING),
    "vwap24Hr": spec(*_STRING),
    # Added to the API over time (explorer by 2021, tokens in v3): their absence is not drift.
    "explorer": spec(*_STRING, optional=True),
    "tokens": spec("object", optional=True),
}


class CoinCapSource(JsonApiSource):
    """The top `max_assets` assets by rank."""

    name = "coincap"
    reference_column = "coincap_id"
    title = "CoinCap"
    key_setting = "COINCAP_API_KEY"
    calls_per_minute_setting = "COINCAP_CALLS_PER_MINUTE"
    # Schema | None as on Source: the history sources built on this one have none.
    expected_schema: ClassVar[Schema | None] = EXPECTED_SCHEMA

    def __init__(self, *, base_url: str, api_key: str, max_assets: int) -> None:
        super().__init__(base_url=base_url.strip() or BASE_URL, api_key=api_key)
        self.max_assets = max_assets

    @classmethod
    def from_settings(cls, **options: Any) -> Self:
        return cls(
            base_url=settings.COINCAP_BASE_URL,
            api_key=settings.COINCAP_API_KEY,
            max_assets=settings.COINCAP_MAX_ASSETS,
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "max_assets": self.max_assets}

    def missing_configuration(self) -> str | None:
        if not self.api_key:
            return (
                "COINCAP_API_KEY is not set; CoinCap v3 needs an API key "
                "(free prepaid keys at https://pro.coincap.io/dashboard)"
            )
        return None

    def configuration_error(self) -> str | None:
        if urlsplit(self.base_url).hostname == _V2_HOST:
            return (
                f"COINCAP_BASE_URL points at {_V2_HOST}, the v2 API that was shut down on "
                f"2025-03-31; use {BASE_URL}"
            )
        if self.max_assets < 1:
            return "COINCAP_MAX_ASSETS must be at least 1"
        return self.missing_configuration()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def schema_record(self, payload: dict[str, Any]) -> Mapping[str, Any]:
        item = payload.get("item")
        return item if isinstance(item, dict) else {}

    def fetch_pages(self, client: JsonClient) -> Iterator[Unit]:
        offset = 0
        page_no = 0
        while offset < self.max_assets:
            page_no += 1
            limit = min(PAGE_LIMIT, self.max_assets - offset)
            page = client.get_page("/assets", params={"limit": limit, "offset": offset})
            unit = self.page_unit(client, page, page=page_no, offset=offset)
            if not unit.items and page_no == 1:
                # An empty later page is the end of the list; an empty first one is not an
                # answer CoinCap gives when it works.
                raise client.fail(
                    "/assets page 1 has an empty `data` list, where CoinCap always lists "
                    "assets; nothing was stored. Try again later",
                    retryable=True,
                )
            yield unit
            rows = len(page.body["data"])
            if rows < limit:
                break
            offset += rows

    def read_page(self, body: Any, context: dict[str, Any]) -> list[Item]:
        offset = context.get("offset", 0)
        rows, timestamp = self._page(body, what=f"/assets page {context.get('page', 1)}")
        return self.items_by_id(
            rows,
            where=lambda index: f"position {offset + index}",
            wrap=lambda row: {"item": row, "timestamp": timestamp},
        )

    def _page(self, body: Any, *, what: str) -> tuple[list[dict[str, Any]], int]:
        """The rows and timestamp of one response, or a `SourceError` saying what came."""
        if not isinstance(body, dict):
            raise SourceError(f"{what}: expected an object with data and timestamp")
        data = body.get("data")
        if isinstance(data, dict):
            _, message = error_message(body)
            raise SourceError(
                f"{what}: `data` is an object, not a list of assets: {message or data!r}. "
                "This is what the shut-down v2 API answers; use the v3 base URL "
                f"{BASE_URL} with COINCAP_API_KEY"
            )
        if not isinstance(data, list):
            _, message = error_message(body)
            found = f"an error {message!r}" if message else "no `data` list"
            raise SourceError(f"{what}: expected a list of assets, got {found}")
        rows = self.expect_rows(data, what=what)
        timestamp = body.get("timestamp")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int | float) or timestamp <= 0:
            raise SourceError(f"{what}: the response has no valid timestamp ({timestamp!r})")
        return rows, int(timestamp)

    def normalize(self, payload: dict[str, Any]) -> Observation:
        row = payload.get("item")
        if not isinstance(row, dict):
            raise Rejected("not a CoinCap asset record (no item)")
        asset_id = provider_id(row)
        if is_missing(payload.get("timestamp")):
            raise Rejected("missing response timestamp")
        return Observation(
            identity=asset_id,
            symbol=text(row.get("symbol")),
            name=text(row.get("name")),
            observed_at=to_utc(payload["timestamp"], field="timestamp"),
            price_usd=to_positive_price(row.get("priceUsd"), field="priceUsd"),
            market_cap_usd=to_decimal(row.get("marketCapUsd"), field="marketCapUsd"),
            volume_24h_usd=to_decimal(row.get("volumeUsd24Hr"), field="volumeUsd24Hr"),
            percent_change_24h=to_decimal(row.get("changePercent24Hr"), field="changePercent24Hr"),
        )
