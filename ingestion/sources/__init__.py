"""The registry of sources: one name, one class."""

from __future__ import annotations

from django.conf import settings

from ingestion.sources.base import Source, SourceError
from ingestion.sources.coincap import CoinCapSource
from ingestion.sources.coingecko import CoinGeckoSource
from ingestion.sources.coinpaprika import CoinPaprikaSource
from ingestion.sources.csvfile import CsvSource

SOURCE_NAMES = ("coingecko", "coinpaprika", "coincap", "csv")


def build_source(
    name: str, *, path: str | None = None, symbol: str | None = None, asset: str | None = None
) -> Source:
    """The configured source called `name`."""
    if name == "csv":
        return CsvSource(path=path or settings.CSV_PATH, symbol=symbol, asset=asset)
    # API sources read their settings now, so a test's settings override applies.
    if name == "coingecko":
        return CoinGeckoSource.from_settings()
    if name == "coinpaprika":
        return CoinPaprikaSource.from_settings()
    if name == "coincap":
        return CoinCapSource.from_settings()
    raise SourceError(f"unknown source {name!r}; choose one of: {', '.join(SOURCE_NAMES)}")
