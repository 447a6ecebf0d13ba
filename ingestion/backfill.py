"""`backfill`: which assets and slices a history run covers, and the run itself.

The assets are named by slug (`--asset`) or taken from the reference mapping's top ranks
(`--top N`); each one's id at the provider is its identifier there, else the mapping's. With
`gaps`, the slices are exactly the missing buckets the coverage report finds for that source.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ingestion.pipeline import ingest
from ingestion.reference import reference_index
from ingestion.sources.bars import BAR_SOURCES
from ingestion.sources.base import SourceError
from ingestion.sources.history import (
    HISTORY_SOURCES,
    HistoryMixin,
    Slice,
    Target,
    split,
)
from prices.coverage import coverage
from prices.models import AssetIdentifier
from runs.models import Run


def targets(*, source: str, slugs: list[str] | None = None, top: int | None = None) -> list[Target]:
    """The assets to backfill with this provider's id for each, or a `SourceError` naming an
    asset without one."""
    known = dict(
        AssetIdentifier.objects.filter(source=source).values_list("asset__slug", "external_id")
    )
    mapping = {
        asset.slug: external_id
        for (provider, external_id), asset in reference_index().by_provider_id.items()
        if provider == source
    }
    if top is not None:
        ranked = sorted(
            (a for (p, _), a in reference_index().by_provider_id.items() if p == source),
            key=lambda a: (a.rank is None, a.rank or 0, a.slug),
        )
        slugs = list(dict.fromkeys(a.slug for a in ranked))[:top]
    found = []
    for slug in slugs or []:
        external_id = known.get(slug) or mapping.get(slug)
        if not external_id:
            raise SourceError(
                f"no {source} id is known for asset {slug!r}: it is neither in the reference "
                f"mapping nor ingested from {source} yet"
            )
        found.append(Target(slug, external_id))
    return found


def gap_slices(
    *, source: str, found: list[Target], start: datetime, end: datetime, interval: str, days: int
) -> list[Slice]:
    """The missing buckets of each asset's coverage by `source`, as slices to fetch."""
    assets = dict(
        AssetIdentifier.objects.filter(
            source=source, external_id__in=[t.external_id for t in found]
        ).values_list("external_id", "asset_id")
    )
    slices = []
    for target in found:
        asset_id = assets.get(target.external_id)
        if asset_id is None:
            slices += [Slice(target, a, b) for a, b in split(start, end, days)]
            continue
        (report,) = coverage(
            asset_id=asset_id,
            interval=interval,
            start=start,
            end=end,
            sources=[source],
            max_spans=None,
        )
        for span in report.missing_spans:
            slices += [Slice(target, a, b) for a, b in split(span.start, span.end, days)]
    return slices


def backfill(
    *,
    source: str,
    slugs: list[str] | None = None,
    top: int | None = None,
    start: datetime,
    end: datetime,
    interval: str = "1d",
    gaps: bool = False,
    bars: bool = False,
    trigger: str = Run.Trigger.CLI,
    on_batch: Callable[[Run], None] | None = None,
    on_source: Callable[[HistoryMixin], None] | None = None,
) -> Run:
    """One backfill run of `source`; `on_source` sees the scheduled source before it runs (a
    progress bar reads its slices)."""
    registry = BAR_SOURCES if bars else HISTORY_SOURCES
    if source not in registry:
        what = "bar sources" if bars else "sources"
        raise SourceError(f"backfill {what}: {', '.join(registry)}; not {source!r}")
    if gaps and interval not in ("1h", "1d"):
        raise SourceError("--gaps works on hourly or daily coverage: use --interval 1h or 1d")
    cls = registry[source]
    src = cls.from_settings()
    found = targets(source=source, slugs=slugs, top=top)
    if gaps:
        days = cls.slice_days.get(interval, 1)
        src.schedule(
            interval=interval,
            slices=gap_slices(
                source=source, found=found, start=start, end=end, interval=interval, days=days
            ),
        )
    else:
        src.schedule(targets=found, start=start, end=end, interval=interval)
    if on_source is not None:
        on_source(src)
    return ingest(
        source=source, src=src, kind=Run.Kind.BACKFILL, trigger=trigger, on_batch=on_batch
    )
