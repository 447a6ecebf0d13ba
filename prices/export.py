"""Quotes and candles as CSV, streamed: a header, then every matching row (not one page), read
from the database in chunks so memory stays flat however many rows match. The admin's export,
`/data?format=csv` and `/api/prices/?format=csv` write through `quote_csv`; the candles
endpoint's `?format=csv` through `candle_lines`."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from rest_framework.request import Request

from prices.models import Quote
from prices.numbers import plain

COLUMNS = [
    ("id", "id"),
    ("asset", "asset_id"),
    ("asset_slug", "asset__slug"),
    ("asset_symbol", "asset__symbol"),
    ("source", "source"),
    ("observed_at", "observed_at"),
    ("price_usd", "price_usd"),
    ("open_usd", "open_usd"),
    ("high_usd", "high_usd"),
    ("low_usd", "low_usd"),
    ("interval", "interval"),
    ("market_cap_usd", "market_cap_usd"),
    ("volume_24h_usd", "volume_24h_usd"),
    ("percent_change_24h", "percent_change_24h"),
]
CHUNK = 2_000


class _Echo:
    """A file-like object whose write returns the line, for csv.writer over a generator."""

    def write(self, value: str) -> str:
        return value


# A cell starting with one of these is a formula to a spreadsheet: a provider's symbol such as
# "=HYPERLINK(...)" must stay text when an operator opens the export.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return f"'{value}" if value.startswith(_FORMULA_START) else value
    if hasattr(value, "is_finite"):
        return plain(value)
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    return value


def quote_lines(quotes: QuerySet[Quote]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow([name for name, _ in COLUMNS])
    rows = quotes.values_list(*(column for _, column in COLUMNS)).iterator(chunk_size=CHUNK)
    for row in rows:
        yield writer.writerow([_cell(value) for value in row])


def csv_requested(request: Request) -> bool:
    """`?format=csv`: the rows as a CSV download instead of a JSON page."""
    return request.query_params.get("format") == "csv"


def candle_lines(candles: list[Any]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    fields = ["start", "open", "high", "low", "close", "volume_24h_usd", "quotes", "sources"]
    yield writer.writerow([*fields, "bars", "filled"])
    for candle in candles:
        row = [_cell(getattr(candle, name)) for name in fields[:-1]]
        yield writer.writerow([*row, " ".join(candle.sources), candle.bars, candle.filled])


def csv_response(lines: Iterator[str], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def quote_csv(quotes: QuerySet[Quote], filename: str = "quotes.csv") -> StreamingHttpResponse:
    return csv_response(quote_lines(quotes), filename)
