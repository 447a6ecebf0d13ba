"""CoinGecko: `GET /coins/markets?vs_currency=usd`, 250 coins a page, by market cap.

Hosts and keys (CoinGecko rejects a key sent to the wrong host with error 10010 or 10011):
- Demo plan, or no key: https://api.coingecko.com/api/v3, key in `x-cg-demo-api-key`;
- Pro plan: https://pro-api.coingecko.com/api/v3, key in `x-cg-pro-api-key`.
`COINGECKO_API_PLAN` (demo or pro) picks the header and, when `COINGECKO_BASE_URL` is empty, the
host; left empty, the plan follows the host. A plan that contradicts a CoinGecko host is refused
before any request.

Pages: `ceil(COINGECKO_MAX_COINS / 250)` pages, stopping early at a short page. Ranks move
while the pages are read, so a coin can show up on two pages: the first sighting wins. Each row
keeps its own `last_updated` as the observation time (rows of one page differ by minutes).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

from django.conf import settings

from ingestion.normalize import Observation, to_decimal, to_positive_price, to_utc
from ingestion.sources.api import JsonApiSource, provider_id, text
from ingestion.sources.base import Item, Unit
from ingestion.sources.http import JsonClient
from runs.drift import Schema, spec

DEMO_BASE_URL = "https://api.coingecko.com/api/v3"
PRO_BASE_URL = "https://pro-api.coingecko.com/api/v3"
_PLAN_HOSTS = {"demo": "api.coingecko.com", "pro": "pro-api.coingecko.com"}
PER_PAGE = 250

_NUMBER = ("number",)
EXPECTED_SCHEMA: Schema = {
    "id": spec("string", required=True),
    "symbol": spec("string"),
    "name": spec("string"),
    "image": spec("string"),
    "current_price": spec(*_NUMBER, required=True),
    "market_cap": spec(*_NUMBER),
    "market_cap_rank": spec(*_NUMBER),
    "fully_diluted_valuation": spec(*_NUMBER),
    "total_volume": spec(*_NUMBER),
    "high_24h": spec(*_NUMBER),
    "low_24h": spec(*_NUMBER),
    "price_change_24h": spec(*_NUMBER),
    "price_change_percentage_24h": spec(*_NUMBER),
    "market_cap_change_24h": spec(*_NUMBER),
    "market_cap_change_percentage_24h": spec(*_NUMBER),
    "circulating_supply": spec(*_NUMBER),
    "total_supply": spec(*_NUMBER),
    "max_supply": spec(*_NUMBER),
    "ath": spec(*_NUMBER),
    "ath_change_percentage": spec(*_NUMBER),
    "ath_date": spec("string"),
    "atl": spec(*_NUMBER),
    "atl_change_percentage": spec(*_NUMBER),
    "atl_date": spec("string"),
    "roi": spec("object"),
    "last_updated": spec("string", required=True),
}


class CoinGeckoSource(JsonApiSource):
    """The top `max_coins` coins by market cap, in US dollars."""

    name = "coingecko"
    reference_column = "coingecko_id"
    title = "CoinGecko"
    key_setting = "COINGECKO_API_KEY"
    calls_per_minute_setting = "COINGECKO_CALLS_PER_MINUTE"
    # Schema | None as on Source: the history sources built on this one have none.
    expected_schema: ClassVar[Schema | None] = EXPECTED_SCHEMA

    def __init__(self, *, base_url: str, api_key: str, plan: str, max_coins: int) -> None:
        self.plan_setting = plan.strip().lower()
        host_plan = _host_plan(base_url)
        self.plan = self.plan_setting or host_plan or "demo"
        default = PRO_BASE_URL if self.plan == "pro" else DEMO_BASE_URL
        super().__init__(base_url=base_url.strip() or default, api_key=api_key)
        self.max_coins = max_coins

    @classmethod
    def from_settings(cls, **options: Any) -> Self:
        return cls(
            base_url=settings.COINGECKO_BASE_URL,
            api_key=settings.COINGECKO_API_KEY,
            plan=settings.COINGECKO_API_PLAN,
            max_coins=settings.COINGECKO_MAX_COINS,
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "plan": self.plan, "max_coins": self.max_coins}

    def configuration_error(self) -> str | None:
        if self.plan not in _PLAN_HOSTS:
            return f"COINGECKO_API_PLAN must be demo or pro, not {self.plan_setting!r}"
        if self.max_coins < 1:
            return "COINGECKO_MAX_COINS must be at least 1"
        if self.plan == "pro" and not self.api_key:
            return "the Pro plan needs a key: set COINGECKO_API_KEY"
        host_plan = _host_plan(self.base_url)
        if host_plan and host_plan != self.plan:
            return (
                f"a {self.plan.title()} plan key is only accepted by {_PLAN_HOSTS[self.plan]}, "
                f"but COINGECKO_BASE_URL points at {_PLAN_HOSTS[host_plan]}. Set "
                f"COINGECKO_API_PLAN={host_plan} if the key is a {host_plan.title()} key, or "
                "leave COINGECKO_BASE_URL empty to use the plan's host"
            )
        return None

    def headers(self) -> dict[str, str]:
        return {f"x-cg-{self.plan}-api-key": self.api_key} if self.api_key else {}

    def error_hints(self) -> dict[int, str]:
        return {
            10002: "The API key is missing: set COINGECKO_API_KEY",
            10010: "This is a Pro key: set COINGECKO_API_PLAN=pro (host pro-api.coingecko.com)",
            10011: "This is a Demo key: set COINGECKO_API_PLAN=demo (host api.coingecko.com)",
        }

    def fetch_pages(self, client: JsonClient) -> Iterator[Unit]:
        taken = 0
        for page_no in range(1, math.ceil(self.max_coins / PER_PAGE) + 1):
            page = client.get_page(
                "/coins/markets",
                params={
                    "vs_currency": "usd",
                    "order": "market_cap_desc",
                    "per_page": PER_PAGE,
                    "page": page_no,
                    "sparkline": "false",
                },
            )
            unit = self.page_unit(client, page, page=page_no)
            if not unit.items and page_no == 1:
                # An empty later page is the end of the list; an empty first one is not an
                # answer CoinGecko gives when it works (it lists thousands of coins).
                raise client.fail(
                    "/coins/markets page 1 is an empty list, where CoinGecko always lists "
                    "coins; nothing was stored. Try again later",
                    retryable=True,
                )
            # Ranks move between requests: a coin may show on two pages. Both are observations.
            unit.items = unit.items[: self.max_coins - taken]
            yield unit
            taken += len(unit.items)
            if len(page.body) < PER_PAGE:
                break

    def read_page(self, body: Any, context: dict[str, Any]) -> list[Item]:
        page_no = context.get("page", 1)
        rows = self.expect_rows(body, what=f"/coins/markets page {page_no}")
        return self.items_by_id(rows, where=lambda index: f"page {page_no} row {index}")

    def normalize(self, payload: dict[str, Any]) -> Observation:
        return Observation(
            identity=provider_id(payload),
            symbol=text(payload.get("symbol")),
            name=text(payload.get("name")),
            observed_at=to_utc(payload.get("last_updated"), field="last_updated"),
            price_usd=to_positive_price(payload.get("current_price"), field="current_price"),
            market_cap_usd=to_decimal(payload.get("market_cap"), field="market_cap"),
            volume_24h_usd=to_decimal(payload.get("total_volume"), field="total_volume"),
            percent_change_24h=to_decimal(
                payload.get("price_change_percentage_24h"), field="price_change_percentage_24h"
            ),
        )


def _host_plan(base_url: str) -> str | None:
    """The plan a real CoinGecko host implies; None for any other host (a local server)."""
    host = urlsplit(base_url.strip()).hostname if base_url.strip() else None
    return next((plan for plan, name in _PLAN_HOSTS.items() if name == host), None)
