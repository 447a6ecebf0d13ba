"""The consolidated price of an asset: what its sources say now, and which of them disagree.

The database finds each source's latest quote within the freshness window (one query for any
number of assets, served by the (asset, source, observed_at) index); only those few rows, one per
source, come back to Python for the median.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from statistics import median
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from prices.models import Quote

_RATIO = Decimal("0.000001")


@dataclass(frozen=True)
class SourcePrice:
    source: str
    price_usd: Decimal
    observed_at: datetime
    deviation: Decimal  # |price - median| / median
    flagged: bool  # deviation above the threshold: a stale or broken feed


@dataclass(frozen=True)
class ConsolidatedPrice:
    asset_id: int
    median_usd: Decimal
    spread: Decimal  # (max - min) / median
    source_count: int
    sources: list[SourcePrice]

    def as_dict(self) -> dict[str, Any]:
        return {
            "median_usd": self.median_usd,
            "spread": self.spread,
            "source_count": self.source_count,
            "sources": [
                {
                    "source": s.source,
                    "price_usd": s.price_usd,
                    "observed_at": s.observed_at,
                    "deviation": s.deviation,
                    "flagged": s.flagged,
                }
                for s in self.sources
            ],
        }


def consolidated_prices(
    *,
    asset_ids: Iterable[int],
    now: datetime | None = None,
    freshness: timedelta | None = None,
    threshold: Decimal | None = None,
) -> dict[int, ConsolidatedPrice]:
    """Consolidated prices of these assets; an asset with no fresh quote is left out."""
    since = (now or timezone.now()) - (
        freshness or timedelta(minutes=settings.CONSOLIDATION_FRESHNESS_MINUTES)
    )
    limit = (
        threshold
        if threshold is not None
        else Decimal(str(settings.CONSOLIDATION_DEVIATION_THRESHOLD))
    )
    latest_time = (
        Quote.objects.filter(
            asset_id=OuterRef("asset_id"), source=OuterRef("source"), observed_at__gte=since
        )
        .order_by("-observed_at")
        .values("observed_at")[:1]
    )
    rows = Quote.objects.filter(
        asset_id__in=list(asset_ids), observed_at__gte=since, observed_at=Subquery(latest_time)
    ).values_list("asset_id", "source", "price_usd", "observed_at")
    by_asset: dict[int, list[tuple[str, Decimal, datetime]]] = defaultdict(list)
    for asset_id, source, price, observed_at in rows:
        by_asset[asset_id].append((source, price, observed_at))
    return {
        asset_id: _consolidate(asset_id, quotes, limit) for asset_id, quotes in by_asset.items()
    }


def consolidated_price(*, asset_id: int, now: datetime | None = None) -> dict[str, Any] | None:
    """One asset's consolidated price as plain data (for the API and the admin), or None."""
    found = consolidated_prices(asset_ids=[asset_id], now=now).get(asset_id)
    return found.as_dict() if found else None


def _consolidate(
    asset_id: int, quotes: list[tuple[str, Decimal, datetime]], threshold: Decimal
) -> ConsolidatedPrice:
    prices = [price for _, price, _ in quotes]
    mid = Decimal(median(prices))
    sources = []
    for source, price, observed_at in sorted(quotes):
        deviation = (abs(price - mid) / mid).quantize(_RATIO)
        sources.append(SourcePrice(source, price, observed_at, deviation, deviation > threshold))
    return ConsolidatedPrice(
        asset_id=asset_id,
        median_usd=mid,
        spread=((max(prices) - min(prices)) / mid).quantize(_RATIO),
        source_count=len(quotes),
        sources=sources,
    )
