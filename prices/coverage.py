"""Coverage: which hourly or daily buckets of an asset each source has quotes in, and which it
is missing (merged into spans), over a range. One grouped query, whatever the range's size."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Max, Min
from django.db.models.functions import Trunc

from prices.candles import INTERVAL_SECONDS, TRUNC, bucket_start
from prices.models import Quote

COVERAGE_INTERVALS = ("1h", "1d")
# Spans listed per source; the counts cover them all.
MAX_SPANS = 1000


@dataclass
class Span:
    start: datetime  # the first missing bucket
    end: datetime  # the end of the last missing bucket
    buckets: int


@dataclass
class SourceCoverage:
    source: str
    first: datetime | None
    last: datetime | None
    expected: int
    present: int
    missing: int
    missing_spans: list[Span] = field(default_factory=list)


def asset_span(asset_id: int) -> tuple[datetime | None, datetime | None]:
    found = Quote.objects.filter(asset_id=asset_id).aggregate(
        first=Min("observed_at"), last=Max("observed_at")
    )
    return found["first"], found["last"]


def coverage(
    *,
    asset_id: int,
    interval: str,
    start: datetime,
    end: datetime,
    sources: list[str] | None = None,
    max_spans: int | None = MAX_SPANS,
) -> list[SourceCoverage]:
    """Per source (those given, else every source with quotes of the asset in the range): its
    first and last bucket in [start, end), and the buckets it has and misses there (at most
    `max_spans` missing spans listed; None lists them all)."""
    step = timedelta(seconds=INTERVAL_SECONDS[interval])
    first = bucket_start(start, interval)
    grid: list[datetime] = []
    moment = first
    while moment < end:
        grid.append(moment)
        moment += step
    quotes = Quote.objects.filter(asset_id=asset_id, observed_at__gte=first, observed_at__lt=end)
    if sources:
        quotes = quotes.filter(source__in=sources)
    rows = (
        quotes.annotate(bucket=Trunc("observed_at", TRUNC[interval], tzinfo=UTC))
        .values_list("source", "bucket")
        .distinct()
        .order_by()
    )
    present: dict[str, set[datetime]] = {name: set() for name in sources or []}
    for source, bucket in rows:
        present.setdefault(source, set()).add(bucket)
    report = []
    for source in sorted(present):
        have = present[source]
        spans: list[Span] = []
        missing = 0
        for bucket in grid:
            if bucket in have:
                continue
            missing += 1
            if spans and spans[-1].end == bucket:
                spans[-1].end = bucket + step
                spans[-1].buckets += 1
            elif max_spans is None or len(spans) < max_spans:
                spans.append(Span(bucket, bucket + step, 1))
        report.append(
            SourceCoverage(
                source=source,
                first=min(have) if have else None,
                last=max(have) if have else None,
                expected=len(grid),
                present=len(have),
                missing=missing,
                missing_spans=spans,
            )
        )
    return report
