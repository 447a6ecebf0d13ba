"""The CSV exports the csv source reads, recognised by their header, and how a row of each
becomes an observation (every row a daily bar: open, high, low and close are kept).

Layouts (header names compared case-, space- and underscore-insensitively):
- Kaggle / CoinMarketCap: SNo,Name,Symbol,Date,High,Low,Open,Close,Volume,Marketcap
- Yahoo Finance: Date,Open,High,Low,Close,Adj Close,Volume (symbol from --symbol or the file name)
- CryptoDataDownload: Unix Timestamp,Date,Symbol,Open,High,Low,Close,Volume <base>,Volume USD
  (Symbol is a pair such as BTCUSD; an optional first line with the site's URL is skipped)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingestion.normalize import (
    Observation,
    Rejected,
    is_missing,
    to_decimal,
    to_positive_price,
    to_utc,
)


def _key(column: str) -> str:
    return re.sub(r"[\s_]+", "", column.strip().lstrip("\ufeff")).lower()


@dataclass(frozen=True)
class Layout:
    name: str
    title: str
    required: tuple[str, ...]  # header keys (see _key) that must all be present
    example: str

    def matches(self, keys: set[str]) -> bool:
        return set(self.required) <= keys


CRYPTODATADOWNLOAD = Layout(
    "cryptodatadownload",
    "CryptoDataDownload",
    ("date", "symbol", "open", "high", "low", "close", "volumeusd"),
    "Unix Timestamp,Date,Symbol,Open,High,Low,Close,Volume <base>,Volume USD",
)
KAGGLE = Layout(
    "kaggle",
    "Kaggle/CoinMarketCap",
    ("name", "symbol", "date", "high", "low", "open", "close", "volume", "marketcap"),
    "SNo,Name,Symbol,Date,High,Low,Open,Close,Volume,Marketcap",
)
YAHOO = Layout(
    "yahoo",
    "Yahoo Finance",
    ("date", "open", "high", "low", "close", "adjclose", "volume"),
    "Date,Open,High,Low,Close,Adj Close,Volume",
)
# Most specific first: a CryptoDataDownload header also has every Yahoo column but one.
LAYOUTS = (CRYPTODATADOWNLOAD, KAGGLE, YAHOO)
LAYOUTS_BY_NAME = {layout.name: layout for layout in LAYOUTS}

_PAIR = re.compile(r"^(?P<base>.+?)[/\-_ ]?USD$", re.IGNORECASE)
_FILE_SYMBOL = re.compile(r"^(?P<symbol>[A-Za-z0-9]+)[-_ ]?USD", re.IGNORECASE)


def detect_layout(header: list[str]) -> Layout | None:
    keys = {_key(column) for column in header}
    return next((layout for layout in LAYOUTS if layout.matches(keys)), None)


def unrecognised_layout_message(header: list[str]) -> str:
    expected = "; ".join(f"{layout.title}: {layout.example}" for layout in LAYOUTS)
    return f"unrecognised CSV layout, header was {','.join(header)!r}. Expected one of: {expected}"


def symbol_from_filename(path: Path) -> str | None:
    match = _FILE_SYMBOL.match(path.stem)
    return match["symbol"].upper() if match else None


@functools.lru_cache(maxsize=64)
def _columns_by_key(header: tuple[str, ...]) -> dict[str, str]:
    return {_key(column): column for column in header}


class _Row:
    """A stored row read by header key, whatever the file's spelling of the header."""

    __slots__ = ("columns", "values")

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.columns = _columns_by_key(tuple(values))

    def get(self, *keys: str) -> str | None:
        """The value of the first column whose header key is in `keys`."""
        for key in keys:
            column = self.columns.get(key)
            if column is not None:
                return self.values[column]
        return None

    def require(self, key: str, label: str) -> str:
        value = self.get(key)
        if value is None or is_missing(value):
            raise Rejected(f"missing {label}")
        return value.strip()


def _bar(row: _Row) -> dict[str, Any]:
    """A daily row's open, high and low (its close is the price)."""
    return {
        "open_usd": to_decimal(row.get("open"), field="Open"),
        "high_usd": to_decimal(row.get("high"), field="High"),
        "low_usd": to_decimal(row.get("low"), field="Low"),
        "interval": "1d",
    }


def _normalize_kaggle(payload: dict[str, Any]) -> Observation:
    row = _Row(payload["row"])
    symbol = row.require("symbol", "Symbol").upper()
    name = row.require("name", "Name")
    return Observation(
        identity=f"{symbol}/{name}",
        symbol=symbol,
        name=name,
        observed_at=to_utc(row.get("date"), field="Date"),
        price_usd=to_positive_price(row.get("close"), field="Close"),
        market_cap_usd=to_decimal(row.get("marketcap"), field="Marketcap"),
        volume_24h_usd=to_decimal(row.get("volume"), field="Volume"),
        **_bar(row),
    )


def _normalize_yahoo(payload: dict[str, Any]) -> Observation:
    row = _Row(payload["row"])
    symbol = payload["symbol"]
    return Observation(
        identity=symbol,
        symbol=symbol,
        name="",
        observed_at=to_utc(row.get("date"), field="Date"),
        price_usd=to_positive_price(row.get("close"), field="Close"),
        volume_24h_usd=to_decimal(row.get("volume"), field="Volume"),
        **_bar(row),
    )


def _normalize_cryptodatadownload(payload: dict[str, Any]) -> Observation:
    row = _Row(payload["row"])
    pair = row.require("symbol", "Symbol")
    match = _PAIR.match(pair)
    if not match:
        raise Rejected(f"Symbol {pair!r} is not a pair quoted in USD")
    symbol = match["base"].upper()
    timestamp = row.get("unixtimestamp", "unix")
    observed_at = (
        to_utc(timestamp, field="Unix Timestamp")
        if not is_missing(timestamp)
        else to_utc(row.get("date"), field="Date")
    )
    return Observation(
        identity=symbol,
        symbol=symbol,
        name="",
        observed_at=observed_at,
        price_usd=to_positive_price(row.get("close"), field="Close"),
        volume_24h_usd=to_decimal(row.get("volumeusd"), field="Volume USD"),
        **_bar(row),
    )


NORMALIZERS: dict[str, Callable[[dict[str, Any]], Observation]] = {
    "kaggle": _normalize_kaggle,
    "yahoo": _normalize_yahoo,
    "cryptodatadownload": _normalize_cryptodatadownload,
}
