"""OHLC candles of one asset's quotes, aggregated by the database.

One query groups the quotes into hour or day buckets (high, low, count, first and last time); a
second fetches the opening and closing quotes by their exact times, so open and close come from
the index, not from scanning every quote in Python. Across sources, quotes are pooled: a source
can be chosen to get one provider's candles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import Count, Max, Min
from django.db.models.functions import Trunc

from prices.models import Quote

INTERVALS = {"1h": "hour", "1d": "day"}


@dataclass(frozen=True)
class Candle:
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    # The 24-hour volume reported with the closing quote: providers report rolling 24 h volume,
    # not volume per bucket.
    volume_24h_usd: Decimal | None
    quotes: int


def price_history(
    *,
    asset_id: int,
    interval: str,
    source: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
) -> list[Candle]:
    """The newest `limit` candles of `asset_id` in [start, end), newest first."""
    quotes = Quote.objects.filter(asset_id=asset_id)
    if source:
        quotes = quotes.filter(source=source)
    if start is not None:
        quotes = quotes.filter(observed_at__gte=start)
    if end is not None:
        quotes = quotes.filter(observed_at__lt=end)
    buckets = list(
        quotes.annotate(bucket=Trunc("observed_at", INTERVALS[interval], tzinfo=UTC))
        .values("bucket")
        .annotate(
            high=Max("price_usd"),
            low=Min("price_usd"),
            quotes=Count("id"),
            first_at=Min("observed_at"),
            last_at=Max("observed_at"),
        )
        .order_by("-bucket")[:limit]
    )
    if not buckets:
        return []
    edges = {b["first_at"] for b in buckets} | {b["last_at"] for b in buckets}
    # Several sources can report the same instant: the lowest id opens, the highest closes.
    at_time: dict[datetime, list[tuple[int, Decimal, Decimal | None]]] = {}
    for row_id, observed_at, price, volume in (
        quotes.filter(observed_at__in=edges)
        .order_by("observed_at", "id")
        .values_list("id", "observed_at", "price_usd", "volume_24h_usd")
    ):
        at_time.setdefault(observed_at, []).append((row_id, price, volume))
    return [
        Candle(
            start=bucket["bucket"],
            open=at_time[bucket["first_at"]][0][1],
            high=bucket["high"],
            low=bucket["low"],
            close=at_time[bucket["last_at"]][-1][1],
            volume_24h_usd=at_time[bucket["last_at"]][-1][2],
            quotes=bucket["quotes"],
        )
        for bucket in buckets
    ]
