"""Operator corrections of identity: merging assets and re-mapping a provider id.

Each returns a report of what it changed; the admin shows it. Quotes move with their asset; where
two quotes would collide on (asset, source, time) — the same source reported the same coin twice
at one instant under two ids — the target's quote is kept and the other is dropped (its raw
record stays, so `renormalize` can rebuild it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from prices.models import Asset, AssetIdentifier, Quote


@dataclass
class MergeReport:
    target: str
    merged: list[str] = field(default_factory=list)
    quotes_moved: int = 0
    identifiers_moved: int = 0
    duplicates_dropped: int = 0

    def __str__(self) -> str:
        text = (
            f"merged {', '.join(self.merged) or 'nothing'} into {self.target}: "
            f"{self.quotes_moved} quotes and {self.identifiers_moved} identifiers moved"
        )
        if self.duplicates_dropped:
            text += f", {self.duplicates_dropped} duplicate observations dropped"
        return text


@dataclass
class RemapReport:
    identifier: str
    old_asset: str
    new_asset: str
    quotes_moved: int = 0
    duplicates_dropped: int = 0
    renormalize_needed: bool = False

    def __str__(self) -> str:
        text = f"{self.identifier}: {self.old_asset} -> {self.new_asset}"
        if self.renormalize_needed:
            source = self.identifier.split(":", 1)[0]
            return (
                f"{text}; its quotes share {self.old_asset} with other ids of that source, so "
                f"none were moved: run `manage.py renormalize --source {source}`"
            )
        text += f", {self.quotes_moved} quotes moved"
        if self.duplicates_dropped:
            text += f", {self.duplicates_dropped} duplicate observations dropped"
        return text


def merge_assets(*, target: Asset, others: Iterable[Asset]) -> MergeReport:
    """Fold `others` into `target`: their identifiers and quotes move, then they are deleted."""
    report = MergeReport(target=target.slug)
    with transaction.atomic():
        for other in others:
            if other.pk == target.pk:
                continue
            moved, dropped = _move_quotes(quotes=Quote.objects.filter(asset=other), to_asset=target)
            report.quotes_moved += moved
            report.duplicates_dropped += dropped
            report.identifiers_moved += AssetIdentifier.objects.filter(asset=other).update(
                asset=target
            )
            report.merged.append(other.slug)
            other.delete()
    return report


def remap_identifier(*, identifier: AssetIdentifier, target: Asset) -> RemapReport:
    """Point one provider id at another asset, as an operator's decision.

    Its quotes move too when no other id of the same source shares the old asset; otherwise
    which quote came through which id is known only from the raw units, and `renormalize`
    sorts them out.
    """
    old = identifier.asset
    report = RemapReport(
        identifier=f"{identifier.source}:{identifier.external_id}",
        old_asset=old.slug,
        new_asset=target.slug,
    )
    with transaction.atomic():
        shared = (
            AssetIdentifier.objects.filter(asset=old, source=identifier.source)
            .exclude(pk=identifier.pk)
            .exists()
        )
        identifier.asset = target
        identifier.method = AssetIdentifier.Method.MANUAL
        identifier.confidence = 1
        identifier.save(update_fields=["asset", "method", "confidence"])
        if shared:
            report.renormalize_needed = True
        elif old.pk != target.pk:
            report.quotes_moved, report.duplicates_dropped = _move_quotes(
                quotes=Quote.objects.filter(asset=old, source=identifier.source),
                to_asset=target,
            )
    return report


def _move_quotes(*, quotes: QuerySet[Quote], to_asset: Asset) -> tuple[int, int]:
    """Re-point quotes to `to_asset`, dropping those it already has at the same source and time."""
    clash = Quote.objects.filter(
        asset=to_asset, source=OuterRef("source"), observed_at=OuterRef("observed_at")
    )
    dropped, _ = quotes.filter(Exists(clash)).delete()
    moved = quotes.update(asset=to_asset)
    return moved, dropped
