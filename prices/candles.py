"""Candles of one asset on a fixed grid: 5-minute, hourly, daily or weekly buckets.

Every bucket of the range is returned, oldest first; a bucket without quotes is explicit (no
open, high, low or close, `quotes: 0`), or repeats the previous close with `fill="previous"`.

The database groups the asset's quotes by (bucket, source): high, low, count, first and last time
(a minute grid for 5m, merged here; Trunc for the others). A second query reads the opening and
closing quotes by their exact times, served by the (asset, observed_at, source) key. Each
source's candle is built from its own quotes; without a source chosen, a candle is the median of
the sources' candles in that bucket (the consolidated rule the asset detail uses), and names
them.

A stored bar no longer than the candle (the CSV exports' days, provider OHLC) gives its open,
high and low; a longer bar or a snapshot gives its price (a bar's close) only, since where
inside a longer bar its high and low fell is not known.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from statistics import median
from typing import Any

from django.db.models import Case, Count, F, Max, Min, Q, When
from django.db.models.functions import Coalesce, Trunc

from prices.models import Quote

INTERVAL_SECONDS = {"5m": 300, "1h": 3600, "1d": 86400, "1w": 604800}
# The length of each bar interval a quote may carry, in seconds.
BAR_SECONDS = {"5m": 300, "30m": 1800, "1h": 3600, "4h": 14400, "1d": 86400, "4d": 345600}
# The database truncation each interval is grouped by (5m: minutes, merged in Python).
TRUNC = {"5m": "minute", "1h": "hour", "1d": "day", "1w": "week"}
# Weeks start on Monday, as the databases' week truncation does: 1970-01-05 was one.
_ORIGIN = {"1w": datetime(1970, 1, 5, tzinfo=UTC)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CANDLES = 10_000
DEFAULT_CANDLES = 500
FILLS = ("none", "previous")
# Values per IN (...) list: SQLite refuses more than 32,766 bound parameters in one statement.
_EDGE_CHUNK = 5_000


def bucket_start(moment: datetime, interval: str) -> datetime:
    """The start of the `interval` bucket that holds `moment`."""
    origin = _ORIGIN.get(interval, _EPOCH)
    step = INTERVAL_SECONDS[interval]
    offset = int((moment - origin).total_seconds()) // step * step
    return origin + timedelta(seconds=offset)


@dataclass
class Candle:
    start: datetime
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    close: Decimal | None = None
    volume_24h_usd: Decimal | None = None
    quotes: int = 0
    sources: list[str] = field(default_factory=list)
    # True when every quote in it is a stored bar no longer than the candle: real OHLC.
    bars: bool = False
    filled: bool = False


@dataclass
class _Group:
    high: Decimal
    low: Decimal
    quotes: int
    bars: int
    first_at: datetime
    last_at: datetime


def bars_within(seconds: int) -> Q:
    """Quotes that are bars no longer than a candle of `seconds`: their own open, high and low
    belong to it."""
    return Q(interval__in=[name for name, length in BAR_SECONDS.items() if length <= seconds])


def bar_value(bar: Q, column: str) -> Case:
    """A quote's `column` (open_usd, high_usd, low_usd) if it is a `bar` within the candle, else
    its price: where inside a longer bar, or a snapshot, its high and low fell is not known."""
    return Case(When(bar, then=Coalesce(column, "price_usd")), default=F("price_usd"))


def latest_observation(*, asset_id: int, source: str | None = None) -> datetime | None:
    quotes = Quote.objects.filter(asset_id=asset_id)
    if source:
        quotes = quotes.filter(source=source)
    latest: datetime | None = quotes.aggregate(latest=Max("observed_at"))["latest"]
    return latest


def default_range(
    *,
    asset_id: int,
    interval: str,
    start: datetime | None,
    end: datetime | None,
    source: str | None = None,
) -> tuple[datetime, datetime]:
    """The range asked, completed: `end` defaults to just after the asset's latest quote (so an
    asset whose data stopped in 2021 still shows its last candles), `start` to
    `DEFAULT_CANDLES` buckets before `end`."""
    step = timedelta(seconds=INTERVAL_SECONDS[interval])
    if end is None:
        if start is not None:
            end = start + step * DEFAULT_CANDLES
        else:
            latest = latest_observation(asset_id=asset_id, source=source)
            end = (
                bucket_start(latest, interval) + step
                if latest
                else bucket_start(datetime.now(UTC), interval) + step
            )
    if start is None:
        start = end - step * DEFAULT_CANDLES
    return start, end


def bucket_count(start: datetime, end: datetime, interval: str) -> int:
    first = bucket_start(start, interval)
    step = INTERVAL_SECONDS[interval]
    return max(0, -(-int((end - first).total_seconds()) // step))


def candles(
    *,
    asset_id: int,
    interval: str,
    start: datetime,
    end: datetime,
    source: str | None = None,
    fill: str = "none",
) -> list[Candle]:
    """Every `interval` bucket that overlaps [start, end), oldest first."""
    first = bucket_start(start, interval)
    quotes = Quote.objects.filter(asset_id=asset_id, observed_at__gte=first, observed_at__lt=end)
    if source:
        quotes = quotes.filter(source=source)
    bar = bars_within(INTERVAL_SECONDS[interval])
    groups = _groups(quotes, interval, bar)
    opening, closing = _edges(quotes, groups, bar)

    per_bucket: dict[datetime, list[tuple[str, Candle]]] = defaultdict(list)
    for (bucket, src), group in groups.items():
        key = (src, group.first_at)
        last = (src, group.last_at)
        per_bucket[bucket].append(
            (
                src,
                Candle(
                    start=bucket,
                    open=opening[key],
                    high=group.high,
                    low=group.low,
                    close=closing[last][0],
                    volume_24h_usd=closing[last][1],
                    quotes=group.quotes,
                    sources=[src],
                    bars=group.bars == group.quotes,
                ),
            )
        )

    result = []
    previous: Decimal | None = None
    step = timedelta(seconds=INTERVAL_SECONDS[interval])
    moment = first
    while moment < end:
        found = per_bucket.get(moment)
        if found:
            candle = _consolidate(moment, found)
            previous = candle.close
        elif fill == "previous" and previous is not None:
            candle = Candle(moment, previous, previous, previous, previous, filled=True)
        else:
            candle = Candle(moment)
        result.append(candle)
        moment += step
    return result


def _groups(quotes: Any, interval: str, bar: Q) -> dict[tuple[datetime, str], _Group]:
    rows = (
        quotes.annotate(bucket=Trunc("observed_at", TRUNC[interval], tzinfo=UTC))
        .values("bucket", "source")
        .annotate(
            high=Max(bar_value(bar, "high_usd")),
            low=Min(bar_value(bar, "low_usd")),
            quotes=Count("id"),
            bars=Count("id", filter=bar),
            first_at=Min("observed_at"),
            last_at=Max("observed_at"),
        )
        .order_by()
    )
    groups: dict[tuple[datetime, str], _Group] = {}
    for row in rows:
        # 5m buckets merge their minutes; Trunc gives the others' buckets as they are.
        key = (bucket_start(row["bucket"], interval), row["source"])
        seen = groups.get(key)
        if seen is None:
            groups[key] = _Group(
                row["high"], row["low"], row["quotes"], row["bars"], row["first_at"], row["last_at"]
            )
        else:
            seen.high = max(seen.high, row["high"])
            seen.low = min(seen.low, row["low"])
            seen.quotes += row["quotes"]
            seen.bars += row["bars"]
            seen.first_at = min(seen.first_at, row["first_at"])
            seen.last_at = max(seen.last_at, row["last_at"])
    return groups


def _edges(
    quotes: Any, groups: dict[tuple[datetime, str], _Group], bar: Q
) -> tuple[dict[tuple[str, datetime], Decimal], dict[tuple[str, datetime], tuple[Any, Any]]]:
    """The opening value and the closing (price, volume) at each group's first and last time."""
    times = sorted({g.first_at for g in groups.values()} | {g.last_at for g in groups.values()})
    opening: dict[tuple[str, datetime], Decimal] = {}
    closing: dict[tuple[str, datetime], tuple[Any, Any]] = {}
    for start in range(0, len(times), _EDGE_CHUNK):
        rows = (
            quotes.filter(observed_at__in=times[start : start + _EDGE_CHUNK])
            .annotate(opening=bar_value(bar, "open_usd"))
            .order_by("observed_at", "id")
            .values_list("source", "observed_at", "opening", "price_usd", "volume_24h_usd")
        )
        for src, observed_at, opened, price, volume in rows:
            # One quote per (asset, time, source): the key is unique.
            opening[(src, observed_at)] = opened
            closing[(src, observed_at)] = (price, volume)
    return opening, closing


def _consolidate(moment: datetime, found: list[tuple[str, Candle]]) -> Candle:
    if len(found) == 1:
        return found[0][1]
    parts = [candle for _, candle in sorted(found, key=lambda pair: pair[0])]

    def mid(values: list[Decimal | None]) -> Decimal | None:
        present = [v for v in values if v is not None]
        return Decimal(median(present)) if present else None

    return Candle(
        start=moment,
        open=mid([c.open for c in parts]),
        high=mid([c.high for c in parts]),
        low=mid([c.low for c in parts]),
        close=mid([c.close for c in parts]),
        volume_24h_usd=mid([c.volume_24h_usd for c in parts]),
        quotes=sum(c.quotes for c in parts),
        sources=[src for src, _ in sorted(found, key=lambda pair: pair[0])],
        bars=all(c.bars for c in parts),
    )
