"""Recorded provider responses and a local server setup for the API source tests.

Every base URL points at pytest-httpserver on 127.0.0.1, so no test reaches the internet; every
wait (backoff, Retry-After, rate limit) is made tiny through settings.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ingestion.models import RawUnit, Rejection
from prices.models import AssetIdentifier, Quote
from tests.conftest import FIXTURES

PROVIDERS = FIXTURES / "providers"
# A key made up per test session (nothing key-shaped is written in the repository); assertions
# check it never leaks anywhere.
SECRET = f"test-key-{secrets.token_hex(10)}"

COINGECKO_PATH = "/coingecko/api/v3"
COINPAPRIKA_PATH = "/coinpaprika/v1"
COINCAP_PATH = "/coincap/v3"
# Served when no expectation matches: not retried, so a wrong request fails fast and clearly.
UNEXPECTED_STATUS = 418


def fixture_path(name: str) -> Path:
    return PROVIDERS / name


def load(name: str) -> Any:
    return json.loads(fixture_path(name).read_bytes())


def use_local_providers(settings: Any, server: HTTPServer, *, retries: int = 2) -> None:
    """Point every API source at `server`, with tiny waits and no rate limit."""
    server.no_handler_status_code = UNEXPECTED_STATUS
    settings.COINGECKO_BASE_URL = server.url_for(COINGECKO_PATH)
    settings.COINGECKO_API_KEY = ""
    settings.COINGECKO_API_PLAN = ""
    settings.COINGECKO_MAX_COINS = 500
    settings.COINPAPRIKA_BASE_URL = server.url_for(COINPAPRIKA_PATH)
    settings.COINPAPRIKA_API_KEY = ""
    settings.COINPAPRIKA_AUTH_SCHEME = "bearer"
    settings.COINCAP_BASE_URL = server.url_for(COINCAP_PATH)
    settings.COINCAP_API_KEY = SECRET
    settings.COINCAP_MAX_ASSETS = 2000
    for name in ("COINGECKO", "COINPAPRIKA", "COINCAP"):
        setattr(settings, f"{name}_CALLS_PER_MINUTE", 0)
    settings.HTTP_CONNECT_TIMEOUT = 2.0
    settings.HTTP_READ_TIMEOUT = 2.0
    settings.HTTP_MAX_RETRIES = retries
    settings.HTTP_BACKOFF_BASE_SECONDS = 0.001
    settings.HTTP_RETRY_AFTER_CAP_SECONDS = 0.01


# --- bodies ------------------------------------------------------------------------------------


def coingecko_rows(count: int, *, start: int = 0) -> list[dict[str, Any]]:
    """`count` /coins/markets rows: the five real ones, then copies of them as other coins
    (new id, name and symbol; the market values are the real ones)."""
    real = load("coingecko_coins_markets_2023-01-02_gusgoros_5rows.json")
    rows = []
    for n in range(start, start + count):
        row = copy.deepcopy(real[n % len(real)])
        if n >= len(real):
            row["id"] = f"{row['id']}-copy-{n}"
            row["name"] = f"{row['name']} Copy {n}"
            row["symbol"] = f"{row['symbol']}{n}"
        rows.append(row)
    return rows


def coinpaprika_rows() -> list[dict[str, Any]]:
    """The two real /v1/tickers rows (BTC 2022-09-21, ADA 2021-05-17)."""
    return [
        *load("coinpaprika_v1_tickers_2022-09-21_TRUNCATED_1row.json"),
        load("coinpaprika_v1_tickers_ada-cardano_2021-05-17.json"),
    ]


COINCAP_TIMESTAMP = 1754937925536  # the real capture's, 2025-08-11T18:45:25.536Z


def coincap_rows(count: int = 1) -> list[dict[str, Any]]:
    """The real v3 bitcoin row, then copies of it as other assets (new id, name, symbol)."""
    real = load("coincap_v3_assets_bitcoin_2025-08-11.json")["data"]
    rows = []
    for n in range(count):
        row = copy.deepcopy(real)
        if n:
            row["id"] = f"bitcoin-copy-{n}"
            row["name"] = f"Bitcoin Copy {n}"
            row["symbol"] = f"BTC{n}"
            row["rank"] = str(n + 1)
        rows.append(row)
    return rows


def coincap_body(rows: list[dict[str, Any]], *, timestamp: int = COINCAP_TIMESTAMP) -> dict:
    return {"data": rows, "timestamp": timestamp}


# --- serving -----------------------------------------------------------------------------------


def json_response(body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None):
    return Response(
        json.dumps(body),
        status=status,
        headers=dict(headers or {}),
        content_type="application/json",
    )


def raw_response(body: bytes | str, *, status: int, content_type: str, headers=None) -> Response:
    return Response(body, status=status, headers=dict(headers or {}), content_type=content_type)


def serve_by_param(
    server: HTTPServer, path: str, *, param: str, responses: Mapping[str, Callable[[], Response]]
) -> None:
    """Answer `path` according to one query parameter (e.g. page=1, page=2)."""

    def handler(request: Request) -> Response:
        value = request.args.get(param, "")
        if value not in responses:
            return Response(f"no response for {param}={value}", status=UNEXPECTED_STATUS)
        return responses[value]()

    server.expect_request(path).respond_with_handler(handler)


def requests_to(server: HTTPServer, path: str) -> list[Request]:
    return [request for request, _ in server.log if request.path == path]


# --- what a user sees ----------------------------------------------------------------------------


def quotes_by_provider_id(source: str) -> dict[str, Quote]:
    """The quotes of `source`, keyed by the provider id of the raw record each came from."""
    ids = dict(AssetIdentifier.objects.filter(source=source).values_list("asset_id", "external_id"))
    return {ids[quote.asset_id]: quote for quote in Quote.objects.filter(source=source)}


def stored_counts(source: str) -> tuple[int, int]:
    """(quotes, raw units) of `source`."""
    return (
        Quote.objects.filter(source=source).count(),
        RawUnit.objects.filter(source=source).count(),
    )


def rejections(source: str) -> dict[str, str]:
    """Reason by location (provider id, or file and line) of the items of `source` rejected."""
    return dict(Rejection.objects.filter(source=source).values_list("location", "reason"))


def stored_payloads(source: str) -> list:
    """Every item of every page of `source` kept as received, decoded."""
    return [json.loads(unit.data()) for unit in RawUnit.objects.filter(source=source)]
