"""CoinPaprika: `GET /v1/tickers?quotes=USD`, every active coin in one array (no pages).

Without a key the free host https://api.coinpaprika.com/v1 is used; with `COINPAPRIKA_API_KEY`
the paid host https://api-pro.coinpaprika.com/v1 (a key on the free host, or the paid host
without a key, is refused before any request). The key goes in `Authorization`, either as
`Bearer <key>` (current docs) or bare (older spec and the official Go client):
`COINPAPRIKA_AUTH_SCHEME` is `bearer` or `raw`.

Each row keeps its own `last_updated` (ISO, no milliseconds) as the observation time; the price
and market figures are under `quotes.USD`. Numbers may arrive as `""`, which means missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

from django.conf import settings

from ingestion.normalize import Observation, Rejected, to_decimal, to_positive_price, to_utc
from ingestion.sources.api import JsonApiSource, provider_id, text
from ingestion.sources.base import Item, Unit
from ingestion.sources.http import JsonClient
from runs.drift import Schema, spec

FREE_BASE_URL = "https://api.coinpaprika.com/v1"
PRO_BASE_URL = "https://api-pro.coinpaprika.com/v1"
_FREE_HOST = "api.coinpaprika.com"
_PRO_HOST = "api-pro.coinpaprika.com"
AUTH_SCHEMES = ("bearer", "raw")

_NUMBER = ("number",)
EXPECTED_SCHEMA: Schema = {
    "id": spec("string", required=True),
    "name": spec("string"),
    "symbol": spec("string"),
    "rank": spec(*_NUMBER),
    # Plan-dependent per the spec, yet present in free captures: its absence is not drift.
    "circulating_supply": spec(*_NUMBER, optional=True),
    "total_supply": spec(*_NUMBER),
    "max_supply": spec(*_NUMBER),
    "beta_value": spec(*_NUMBER),
    "first_data_at": spec("string"),
    "last_updated": spec("string", required=True),
    "quotes": spec("object", required=True),
    "quotes.USD": spec("object", required=True),
    "quotes.USD.price": spec(*_NUMBER, required=True),
    "quotes.USD.volume_24h": spec(*_NUMBER),
    "quotes.USD.volume_24h_change_24h": spec(*_NUMBER),
    "quotes.USD.market_cap": spec(*_NUMBER),
    "quotes.USD.market_cap_change_24h": spec(*_NUMBER),
    "quotes.USD.percent_change_15m": spec(*_NUMBER),
    "quotes.USD.percent_change_30m": spec(*_NUMBER),
    "quotes.USD.percent_change_1h": spec(*_NUMBER),
    "quotes.USD.percent_change_6h": spec(*_NUMBER),
    "quotes.USD.percent_change_12h": spec(*_NUMBER),
    "quotes.USD.percent_change_24h": spec(*_NUMBER),
    "quotes.USD.percent_change_7d": spec(*_NUMBER),
    "quotes.USD.percent_change_30d": spec(*_NUMBER),
    "quotes.USD.percent_change_1y": spec(*_NUMBER),
    "quotes.USD.ath_price": spec(*_NUMBER),
    "quotes.USD.ath_date": spec("string"),
    "quotes.USD.percent_from_price_ath": spec(*_NUMBER),
}


class CoinPaprikaSource(JsonApiSource):
    """All tickers quoted in US dollars."""

    name = "coinpaprika"
    reference_column = "coinpaprika_id"
    title = "CoinPaprika"
    key_setting = "COINPAPRIKA_API_KEY"
    calls_per_minute_setting = "COINPAPRIKA_CALLS_PER_MINUTE"
    # Schema | None as on Source: the history sources built on this one have none.
    expected_schema: ClassVar[Schema | None] = EXPECTED_SCHEMA

    def __init__(self, *, base_url: str, api_key: str, auth_scheme: str) -> None:
        api_key = api_key.strip()
        default = PRO_BASE_URL if api_key else FREE_BASE_URL
        super().__init__(base_url=base_url.strip() or default, api_key=api_key)
        self.auth_scheme = auth_scheme.strip().lower()

    @classmethod
    def from_settings(cls, **options: Any) -> Self:
        return cls(
            base_url=settings.COINPAPRIKA_BASE_URL,
            api_key=settings.COINPAPRIKA_API_KEY,
            auth_scheme=settings.COINPAPRIKA_AUTH_SCHEME,
        )

    def configuration_error(self) -> str | None:
        if self.auth_scheme not in AUTH_SCHEMES:
            return f"COINPAPRIKA_AUTH_SCHEME must be bearer or raw, not {self.auth_scheme!r}"
        host = urlsplit(self.base_url).hostname
        if self.api_key and host == _FREE_HOST:
            return (
                f"an API key is only accepted by the paid host {_PRO_HOST}, but "
                f"COINPAPRIKA_BASE_URL points at {_FREE_HOST}; leave COINPAPRIKA_BASE_URL empty "
                "to use the paid host, or unset COINPAPRIKA_API_KEY for the free one"
            )
        if not self.api_key and host == _PRO_HOST:
            return f"{_PRO_HOST} needs a key: set COINPAPRIKA_API_KEY"
        return None

    def headers(self) -> dict[str, str]:
        if not self.api_key:
            return {}
        value = f"Bearer {self.api_key}" if self.auth_scheme == "bearer" else self.api_key
        return {"Authorization": value}

    def fetch_pages(self, client: JsonClient) -> Iterator[Unit]:
        unit = self.page_unit(client, client.get_page("/tickers", params={"quotes": "USD"}))
        if not unit.items:
            # Every active coin comes in this one answer: none at all is a provider fault.
            raise client.fail(
                "/tickers is an empty list, where CoinPaprika always lists every active coin; "
                "nothing was stored. Try again later",
                retryable=True,
            )
        yield unit

    def read_page(self, body: Any, context: dict[str, Any]) -> list[Item]:
        rows = self.expect_rows(body, what="/tickers")
        return self.items_by_id(rows, where=lambda index: f"row {index}")

    def normalize(self, payload: dict[str, Any]) -> Observation:
        coin_id = provider_id(payload)
        quotes = payload.get("quotes")
        usd = quotes.get("USD") if isinstance(quotes, dict) else None
        if not isinstance(usd, dict):
            raise Rejected("missing quotes.USD")
        return Observation(
            identity=coin_id,
            symbol=text(payload.get("symbol")),
            name=text(payload.get("name")),
            observed_at=to_utc(payload.get("last_updated"), field="last_updated"),
            price_usd=to_positive_price(usd.get("price"), field="quotes.USD.price"),
            market_cap_usd=to_decimal(usd.get("market_cap"), field="quotes.USD.market_cap"),
            volume_24h_usd=to_decimal(usd.get("volume_24h"), field="quotes.USD.volume_24h"),
            percent_change_24h=to_decimal(
                usd.get("percent_change_24h"), field="quotes.USD.percent_change_24h"
            ),
        )
