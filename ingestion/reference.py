"""The reference mapping of canonical assets to provider ids (data/reference_assets.csv)."""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from ingestion.sources import source_class, source_names


def provider_columns() -> dict[str, str]:
    """Which column of the reference file holds each source's provider ids
    (`Source.reference_column`); sources without provider ids are not listed."""
    columns = {name: source_class(name).reference_column for name in source_names()}
    return {name: column for name, column in columns.items() if column}


@dataclass(frozen=True, slots=True)
class ReferenceAsset:
    slug: str
    symbol: str
    name: str
    rank: int | None


@dataclass(frozen=True)
class ReferenceIndex:
    by_provider_id: dict[tuple[str, str], ReferenceAsset]
    by_symbol_and_name: dict[tuple[str, str], ReferenceAsset]
    # Symbols that name exactly one asset of the mapping.
    by_unique_symbol: dict[str, ReferenceAsset]
    slugs: frozenset[str]
    # The sources whose rows carry provider ids (a file's rows do not).
    id_sources: frozenset[str]

    def lookup(
        self, *, source: str, external_id: str, symbol: str, name: str
    ) -> ReferenceAsset | None:
        """The reference asset for a provider id; for CSV files (no provider ids), the one
        whose symbol AND name match. A symbol alone never matches."""
        found = self.by_provider_id.get((source, external_id))
        if found is None and source not in self.id_sources and name:
            found = self.by_symbol_and_name.get((symbol.upper(), normalize_name(name)))
        return found

    def lookup_symbol(self, *, source: str, symbol: str) -> ReferenceAsset | None:
        """For a file row with a symbol and no name (Yahoo, CryptoDataDownload): the reference
        asset when exactly one has that symbol. A guess, recorded as one, for an operator to
        review; provider ids never match this way."""
        if source in self.id_sources:
            return None
        return self.by_unique_symbol.get(symbol.upper())


def normalize_name(name: str) -> str:
    """'Wrapped Bitcoin', 'wrapped-bitcoin' and 'WrappedBitcoin' compare equal."""
    return re.sub(r"[\W_]+", "", name.casefold())


def reference_index() -> ReferenceIndex:
    """The reference mapping named by settings.REFERENCE_ASSETS_PATH, read once per process."""
    return _load(Path(settings.REFERENCE_ASSETS_PATH), tuple(provider_columns().items()))


@functools.cache
def _load(path: Path, columns: tuple[tuple[str, str], ...]) -> ReferenceIndex:
    by_provider_id: dict[tuple[str, str], ReferenceAsset] = {}
    by_symbol_and_name: dict[tuple[str, str], ReferenceAsset] = {}
    slugs: set[str] = set()
    by_symbol: dict[str, list[ReferenceAsset]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            asset = ReferenceAsset(
                slug=row["slug"].strip(),
                symbol=row["symbol"].strip().upper(),
                name=row["name"].strip(),
                rank=int(row["rank"]) if row.get("rank", "").strip() else None,
            )
            for source, column in columns:
                if external_id := (row.get(column) or "").strip():
                    by_provider_id[(source, external_id)] = asset
            by_symbol_and_name.setdefault((asset.symbol, normalize_name(asset.name)), asset)
            by_symbol.setdefault(asset.symbol, []).append(asset)
            slugs.add(asset.slug)
    return ReferenceIndex(
        by_provider_id=by_provider_id,
        by_symbol_and_name=by_symbol_and_name,
        by_unique_symbol={
            symbol: found[0] for symbol, found in by_symbol.items() if len(found) == 1
        },
        slugs=frozenset(slugs),
        id_sources=frozenset(source for source, _ in columns),
    )
