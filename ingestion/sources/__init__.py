"""The registry of sources: one name, one class."""

from __future__ import annotations

from django.conf import settings

from ingestion.sources.base import Source, SourceError
from ingestion.sources.csvfile import CsvSource

SOURCE_NAMES = ("csv",)


def build_source(name: str, *, path: str | None = None, symbol: str | None = None) -> Source:
    """The configured source called `name`."""
    if name == "csv":
        return CsvSource(path=path or settings.CSV_PATH, symbol=symbol)
    raise SourceError(f"unknown source {name!r}; choose one of: {', '.join(SOURCE_NAMES)}")
