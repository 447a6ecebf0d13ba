"""Identity resolution: which canonical `Asset` a provider's id stands for.

Lookups are per batch (one query for known identifiers, one for slugs, two bulk inserts for new
assets), never per item.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.text import slugify

from prices.models import Asset, AssetIdentifier


@dataclass(frozen=True, slots=True)
class ProviderAsset:
    """An asset as one provider names it."""

    external_id: str
    symbol: str
    name: str


def resolve_assets(*, source: str, assets: Iterable[ProviderAsset]) -> dict[str, int]:
    """Map each provider id to a canonical asset id, creating assets for ids never seen."""
    wanted = {asset.external_id: asset for asset in assets}
    resolved = dict(
        AssetIdentifier.objects.filter(source=source, external_id__in=list(wanted)).values_list(
            "external_id", "asset_id"
        )
    )
    missing = [asset for external_id, asset in wanted.items() if external_id not in resolved]
    if missing:
        resolved.update(_create_assets(source=source, assets=missing))
    return resolved


def _create_assets(*, source: str, assets: list[ProviderAsset]) -> dict[str, int]:
    """New, unverified canonical assets, one per provider id."""
    options = {asset.external_id: _slug_options(source, asset) for asset in assets}
    taken = set(
        Asset.objects.filter(
            slug__in=[slug for slugs in options.values() for slug in slugs]
        ).values_list("slug", flat=True)
    )
    created: list[Asset] = []
    for asset in assets:
        slug = next(slug for slug in options[asset.external_id] if slug not in taken)
        taken.add(slug)
        created.append(
            Asset(
                slug=slug, symbol=asset.symbol or asset.external_id, name=asset.name or asset.symbol
            )
        )
    Asset.objects.bulk_create(created)
    AssetIdentifier.objects.bulk_create(
        AssetIdentifier(
            asset=row,
            source=source,
            external_id=asset.external_id,
            symbol=asset.symbol,
            name=asset.name,
            method=AssetIdentifier.Method.NEW,
            confidence=0,
        )
        for asset, row in zip(assets, created, strict=True)
    )
    return {asset.external_id: row.pk for asset, row in zip(assets, created, strict=True)}


def _slug_options(source: str, asset: ProviderAsset) -> list[str]:
    """Readable first, then qualified by source and provider id, which is unique per source."""
    base = (slugify(asset.name) or slugify(asset.symbol))[:150]
    qualified = slugify(f"{source}-{asset.external_id}")[:150]
    digest = hashlib.sha1(asset.external_id.encode()).hexdigest()[:12]
    options = [base, f"{base}-{source}"] if base else []
    return [*options, qualified or f"{source}-{digest}", f"{qualified}-{digest}"]
