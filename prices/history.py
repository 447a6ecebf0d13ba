"""OHLC candles of one asset's quotes, aggregated by the database.

One query groups the quotes into hour or day buckets (high, low, count, first and last time); a
second fetches the opening and closing quotes by their exact times, so open and close come from
the index, not from scanning every quote in Python. Across sources, quotes are pooled: a source
can be chosen to get one provider's candles.

A stored bar (a CSV export's day, a provider's OHLC) no longer than the candle contributes its
own open, high and low; a longer bar, or a snapshot, contributes its price (a bar's close) only,
since where inside the bar its high and low fell is not known.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import Case, Count, F, Max, Min, Q, When
from django.db.models.functions import Coalesce, Trunc

from prices.models import Quote

INTERVALS = {"1h": "hour", "1d": "day"}
# The length of each bar interval a quote may carry, in seconds.
BAR_SECONDS = {"5m": 300, "30m": 1800, "1h": 3600, "4h": 14400, "1d": 86400, "4d": 345600}
CANDLE_SECONDS = {"1h": 3600, "1d": 86400}


def _within(interval: str) -> Q:
    """Quotes that are bars no longer than a candle of `interval`."""
    return Q(interval__in=[i for i, s in BAR_SECONDS.items() if s <= CANDLE_SECONDS[interval]])


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
    whole_bar = _within(interval)
    buckets = list(
        quotes.annotate(bucket=Trunc("observed_at", INTERVALS[interval], tzinfo=UTC))
        .values("bucket")
        .annotate(
            high=Max(
                Case(When(whole_bar, then=Coalesce("high_usd", "price_usd")), default="price_usd")
            ),
            low=Min(
                Case(When(whole_bar, then=Coalesce("low_usd", "price_usd")), default="price_usd")
            ),
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
    at_time: dict[datetime, list[tuple[Decimal, Decimal, Decimal | None]]] = {}
    for observed_at, opening, price, volume in (
        quotes.filter(observed_at__in=edges)
        .annotate(
            opening=Case(
                When(whole_bar, then=Coalesce("open_usd", "price_usd")), default=F("price_usd")
            )
        )
        .order_by("observed_at", "id")
        .values_list("observed_at", "opening", "price_usd", "volume_24h_usd")
    ):
        at_time.setdefault(observed_at, []).append((opening, price, volume))
    return [
        Candle(
            start=bucket["bucket"],
            open=at_time[bucket["first_at"]][0][0],
            high=bucket["high"],
            low=bucket["low"],
            close=at_time[bucket["last_at"]][-1][1],
            volume_24h_usd=at_time[bucket["last_at"]][-1][2],
            quotes=bucket["quotes"],
        )
        for bucket in buckets
    ]
