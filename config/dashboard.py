"""What the operator's dashboard shows: one tile per source, the top assets with a sparkline.

Plain data for the admin's index page, in a fixed number of queries whatever the table sizes:
the sources' health (the rules of /health), their last failures, the last 24 hours' counts, the
top assets with their latest quote time, the fresh consolidated prices, the latest quotes of
assets that have none fresh, and one grouped query for every sparkline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import reduce
from operator import or_
from statistics import median
from typing import TYPE_CHECKING, Any, cast

from django.db.models import Avg, Exists, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Trunc
from django.utils import timezone

from ingestion.services import monitored_sources
from prices.consolidation import consolidated_prices
from prices.models import Asset, Quote
from runs.models import Run, first_line
from runs.reports import latest_per_source, source_health

if TYPE_CHECKING:
    from typing import TypedDict

    from django_stubs_ext import WithAnnotations

    class _LatestAt(TypedDict):
        latest_at: datetime

    # An asset annotated with its latest quote's time (top_assets takes assets with quotes).
    LatestAsset = WithAnnotations[Asset, _LatestAt]

TOP_ASSETS = 10
SPARKLINE_DAYS = 7
SPARKLINE_WIDTH, SPARKLINE_HEIGHT = 120, 28

# /health's verdict per source, as a tile says it.
TILE = {
    "ok": ("healthy", "healthy"),
    "degraded": ("degraded", "degraded"),
    "failing": ("failing", "failing"),
    "never_ran": ("degraded", "never ran"),
    "not_monitored": ("idle", "not scheduled"),
}


@dataclass
class SourceTile:
    source: str
    state: str  # healthy, degraded, failing or idle: the tile's colour
    label: str  # the state in words
    last_run: dict[str, Any] | None
    last_success_at: datetime | None
    max_age_minutes: float
    last_error: str
    last_error_run: int | None
    rows_24h: int
    rejected_24h: int


@dataclass
class AssetRow:
    asset: Asset
    price: Decimal | None
    fresh: bool  # the consolidated price of fresh quotes; else the latest quotes' median
    as_of: datetime | None
    change_24h: Decimal | None  # a ratio: 0.0123 is +1.23 %
    sources: int
    deviating: list[str]
    points: list[tuple[datetime, Decimal]] = field(default_factory=list)

    @property
    def sparkline(self) -> str:
        """The points as an SVG polyline's `points`, scaled to the sparkline's box."""
        if len(self.points) < 2:
            return ""
        times = [t.timestamp() for t, _ in self.points]
        prices = [float(p) for _, p in self.points]
        span_t = (times[-1] - times[0]) or 1.0
        low, high = min(prices), max(prices)
        span_p = (high - low) or 1.0
        pad = 2
        return " ".join(
            f"{pad + (t - times[0]) / span_t * (SPARKLINE_WIDTH - 2 * pad):.1f},"
            f"{SPARKLINE_HEIGHT - pad - (p - low) / span_p * (SPARKLINE_HEIGHT - 2 * pad):.1f}"
            for t, p in zip(times, prices, strict=True)
        )

    @property
    def rising(self) -> bool:
        return len(self.points) >= 2 and self.points[-1][1] >= self.points[0][1]


def source_tiles(now: datetime | None = None) -> list[SourceTile]:
    now = now or timezone.now()
    health = source_health(monitored=monitored_sources(), now=now)
    failures = {
        run.source: run
        for run in latest_per_source(
            Run.objects.ingests().filter(status=Run.Status.FAILED), by="started_at"
        )
    }
    recent = {
        row["source"]: row
        for row in Run.objects.ingests()
        .filter(started_at__gte=now - timedelta(hours=24))
        .order_by()
        .values("source")
        .annotate(
            inserted=Sum("records_inserted"),
            updated=Sum("records_updated"),
            rejected=Sum("records_rejected"),
        )
    }
    tiles = []
    for entry in health["sources"]:
        verdict = entry["status"]
        last = entry["last_run"]
        if verdict == "degraded" and last and last["status"] == Run.Status.FAILED:
            verdict = "failing"
        state, label = TILE[verdict]
        failure = failures.get(entry["source"])
        counts = recent.get(entry["source"], {})
        tiles.append(
            SourceTile(
                source=entry["source"],
                state=state,
                label=label,
                last_run=last,
                last_success_at=entry["last_success_at"],
                max_age_minutes=entry["max_age_minutes"],
                last_error=first_line(failure.error) if failure else "",
                last_error_run=failure.pk if failure else None,
                rows_24h=(counts.get("inserted") or 0) + (counts.get("updated") or 0),
                rejected_24h=counts.get("rejected") or 0,
            )
        )
    return tiles


def top_assets(limit: int = TOP_ASSETS, now: datetime | None = None) -> list[AssetRow]:
    """The highest-ranked assets that have quotes, with their price now (or last known)."""
    now = now or timezone.now()
    latest = Quote.objects.filter(asset=OuterRef("pk")).order_by("-observed_at")
    top = (
        Asset.objects.filter(Exists(Quote.objects.filter(asset=OuterRef("pk"))))
        .annotate(latest_at=Subquery(latest.values("observed_at")[:1]))
        .order_by(F("rank").asc(nulls_last=True), "-verified", "symbol")[:limit]
    )
    # The plugin types the annotated queryset, but iterating it yields plain Assets.
    assets = cast("list[LatestAsset]", list(top))
    if not assets:
        return []
    fresh = consolidated_prices(asset_ids=[a.pk for a in assets], now=now)
    stale = [a for a in assets if a.pk not in fresh]
    last_prices: dict[int, list[Decimal]] = {}
    if stale:
        at_latest = reduce(or_, (Q(asset_id=a.pk, observed_at=a.latest_at) for a in stale))
        for asset_id, last in Quote.objects.filter(at_latest).values_list("asset_id", "price_usd"):
            last_prices.setdefault(asset_id, []).append(last)
    points = _sparklines(assets)

    rows = []
    for asset in assets:
        consolidated = fresh.get(asset.pk)
        if consolidated is not None:
            price: Decimal | None = consolidated.median_usd
            sources = consolidated.source_count
            deviating = [s.source for s in consolidated.sources if s.flagged]
            as_of = max(s.observed_at for s in consolidated.sources)
        else:
            found = last_prices.get(asset.pk, [])
            price = Decimal(median(found)) if found else None
            sources, deviating, as_of = len(found), [], asset.latest_at
        line = points.get(asset.pk, [])
        rows.append(
            AssetRow(
                asset=asset,
                price=price,
                fresh=consolidated is not None,
                as_of=as_of,
                change_24h=_change(line, as_of, price),
                sources=sources,
                deviating=deviating,
                points=line,
            )
        )
    return rows


def _sparklines(assets: list[LatestAsset]) -> dict[int, list[tuple[datetime, Decimal]]]:
    """Hourly mean prices over each asset's last `SPARKLINE_DAYS` of quotes, in one query."""
    window = timedelta(days=SPARKLINE_DAYS)
    recent = reduce(
        or_,
        (
            Q(asset_id=a.pk, observed_at__gt=a.latest_at - window, observed_at__lte=a.latest_at)
            for a in assets
        ),
    )
    rows = (
        Quote.objects.filter(recent)
        .annotate(bucket=Trunc("observed_at", "hour", tzinfo=UTC))
        .values("asset_id", "bucket")
        .annotate(price=Avg("price_usd"))
        .order_by("asset_id", "bucket")
    )
    lines: dict[int, list[tuple[datetime, Decimal]]] = {}
    for row in rows:
        lines.setdefault(row["asset_id"], []).append((row["bucket"], Decimal(str(row["price"]))))
    return lines


def _change(
    line: list[tuple[datetime, Decimal]], as_of: datetime | None, price: Decimal | None
) -> Decimal | None:
    """The change from the last point at least 24 hours before `as_of` to `price`."""
    if not line or as_of is None or price is None:
        return None
    cutoff = as_of - timedelta(hours=24)
    before = [p for t, p in line if t <= cutoff]
    if not before or before[-1] == 0:
        return None
    return (price - before[-1]) / before[-1]
