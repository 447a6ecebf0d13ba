"""OHLC candles of one asset's quotes, pooled across sources, newest first (/history/).

The grid of /candles, each source's candle and their median, is prices.candles; this is the
older pooled form, kept as the API gives it, built from the same bar rules.

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

from django.db.models import Count, Max, Min
from django.db.models.functions import Trunc

from prices.candles import INTERVAL_SECONDS, bar_value, bars_within
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
    whole_bar = bars_within(INTERVAL_SECONDS[interval])
    buckets = list(
        quotes.annotate(bucket=Trunc("observed_at", INTERVALS[interval], tzinfo=UTC))
        .values("bucket")
        .annotate(
            high=Max(bar_value(whole_bar, "high_usd")),
            low=Min(bar_value(whole_bar, "low_usd")),
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
        .annotate(opening=bar_value(whole_bar, "open_usd"))
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
