"""Raw-data retention: delete raw units fetched before a cutoff, in bounded batches.

Quotes and rejections stay: a quote keeps the id of the unit it came from (prices/models.py), a
rejection keeps its reason and the item's text, its unit link set to empty. What is deleted can
no longer be replayed by `renormalize`, which leaves the quotes of a deleted unit as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from ingestion.models import RawUnit

# Units per transaction: a year of hourly pages is deleted in short transactions, not one.
DELETE_BATCH = 1000


@dataclass(frozen=True)
class Pruned:
    cutoff: datetime
    units: int
    bytes_received: int
    dry_run: bool

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"{verb} {self.units:,} raw units ({self.bytes_received:,} bytes as received) "
            f"fetched before {self.cutoff:%Y-%m-%d %H:%M:%S} UTC; quotes and rejections kept"
        )


def prune_raw_units(*, days: int, dry_run: bool = False, now: datetime | None = None) -> Pruned:
    """Delete the raw units fetched more than `days` days before `now`."""
    if days <= 0:
        raise ValueError(f"days must be above 0, got {days}")
    cutoff = (now or timezone.now()) - timedelta(days=days)
    old = RawUnit.objects.filter(fetched_at__lt=cutoff)
    if dry_run:
        totals = old.aggregate(size=Sum("size"))
        return Pruned(cutoff, old.count(), totals["size"] or 0, dry_run=True)
    units = size = 0
    while True:
        with transaction.atomic():
            batch = list(old.order_by("pk").values_list("pk", "size")[:DELETE_BATCH])
            if not batch:
                break
            ids = [pk for pk, _ in batch]
            # Rejections' links are set to empty by the foreign key's SET_NULL; the units'
            # bytes are never loaded to delete them.
            RawUnit.objects.filter(pk__in=ids).only("pk").delete()
        units += len(batch)
        size += sum(bytes_ for _, bytes_ in batch)
    return Pruned(cutoff, units, size, dry_run=False)
