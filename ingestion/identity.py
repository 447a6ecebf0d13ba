"""Identity resolution: which canonical `Asset` a provider's id stands for.

For an id seen for the first time, in this order:
1. the reference mapping (data/reference_assets.csv): the canonical asset, verified; a file row
   with a symbol and no name (Yahoo, CryptoDataDownload) maps to the one reference asset with
   that symbol, if there is exactly one, as a guess to review (method `reference_symbol`);
2. (an id seen before keeps its `AssetIdentifier`, whatever made it);
3. a cross-provider match on normalized name AND symbol, when exactly one asset matches;
4. otherwise a new canonical asset, flagged unverified.
A symbol alone never merges two assets: dozens of coins call themselves USDC.

Everything is per batch (a handful of queries whatever the batch size), never per item.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils.text import slugify

from ingestion.reference import ReferenceAsset, normalize_name, reference_index
from prices.models import Asset, AssetIdentifier

logger = logging.getLogger(__name__)

Method = AssetIdentifier.Method
_CREATE_ATTEMPTS = 3
SYMBOL_LENGTH = Asset._meta.get_field("symbol").max_length
NAME_LENGTH = Asset._meta.get_field("name").max_length
CONFIDENCE: dict[str, Decimal] = {
    Method.REFERENCE: Decimal(1),
    Method.MANUAL: Decimal(1),
    Method.CROSS_PROVIDER: Decimal("0.8"),
    Method.REFERENCE_SYMBOL: Decimal("0.5"),
    Method.NEW: Decimal(0),
}


@dataclass(frozen=True, slots=True)
class ProviderAsset:
    """An asset as one provider names it (symbol and name cut to what the columns hold)."""

    external_id: str
    symbol: str
    name: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbol", self.symbol[:SYMBOL_LENGTH])
        object.__setattr__(self, "name", self.name[:NAME_LENGTH])


def resolve_assets(
    *, source: str, assets: Iterable[ProviderAsset], asset_slug: str | None = None
) -> dict[str, int]:
    """Map each provider id to a canonical asset id, creating what is missing.

    `asset_slug` (the CSV source's --asset) maps every id given to that asset, as an
    operator's decision.
    """
    wanted = {asset.external_id: asset for asset in assets}
    if asset_slug is not None:
        return _assign(source=source, assets=list(wanted.values()), slug=asset_slug)
    resolved = dict(
        AssetIdentifier.objects.filter(source=source, external_id__in=list(wanted)).values_list(
            "external_id", "asset_id"
        )
    )
    missing = [asset for external_id, asset in wanted.items() if external_id not in resolved]
    if not missing:
        return resolved

    reference = reference_index()
    matches: dict[str, tuple[int, str]] = {}  # external id -> (asset id, method)
    from_reference = {
        asset.external_id: found
        for asset in missing
        if (
            found := reference.lookup(
                source=source, external_id=asset.external_id, symbol=asset.symbol, name=asset.name
            )
        )
    }
    by_symbol = {
        asset.external_id: found
        for asset in missing
        if asset.external_id not in from_reference
        and not asset.name
        and (found := reference.lookup_symbol(source=source, symbol=asset.symbol))
    }
    reference_ids = _reference_assets([*from_reference.values(), *by_symbol.values()])
    for external_id, found in from_reference.items():
        matches[external_id] = (reference_ids[found.slug], Method.REFERENCE)
    for external_id, found in by_symbol.items():
        matches[external_id] = (reference_ids[found.slug], Method.REFERENCE_SYMBOL)
        logger.warning(
            "%s %r has no name: mapped to %s, the only reference asset with that symbol "
            "(method %s; review it in the admin)",
            source,
            external_id,
            found.slug,
            Method.REFERENCE_SYMBOL,
        )

    unmatched = [asset for asset in missing if asset.external_id not in matches]
    for attempt in range(1, _CREATE_ATTEMPTS + 1):
        try:
            # A savepoint: another source's run may create an asset with the same slug at the
            # same moment; then match and create again, now seeing its asset.
            with transaction.atomic():
                cross = _cross_provider_matches(source=source, assets=unmatched)
                new = [asset for asset in unmatched if asset.external_id not in cross]
                created = _create_assets(source=source, assets=new, reserved=reference.slugs)
            break
        except IntegrityError:
            if attempt == _CREATE_ATTEMPTS:
                raise
    matches.update({key: (asset_id, Method.CROSS_PROVIDER) for key, asset_id in cross.items()})
    matches.update({key: (asset_id, Method.NEW) for key, asset_id in created.items()})

    AssetIdentifier.objects.bulk_create(
        AssetIdentifier(
            asset_id=asset_id,
            source=source,
            external_id=asset.external_id,
            symbol=asset.symbol,
            name=asset.name,
            method=method,
            confidence=CONFIDENCE[method],
        )
        for asset in missing
        for asset_id, method in [matches[asset.external_id]]
    )
    resolved.update({external_id: asset_id for external_id, (asset_id, _) in matches.items()})
    return resolved


def _assign(*, source: str, assets: list[ProviderAsset], slug: str) -> dict[str, int]:
    target = Asset.objects.filter(slug=slug).first()
    if target is None:
        known = next((a for a in reference_index().by_provider_id.values() if a.slug == slug), None)
        if known is None:
            raise LookupError(f"no asset with slug {slug!r} (see the admin, or the reference file)")
        target = Asset.objects.get(pk=_reference_assets([known])[slug])
    for asset in assets:
        AssetIdentifier.objects.update_or_create(
            source=source,
            external_id=asset.external_id,
            defaults={
                "asset": target,
                "symbol": asset.symbol,
                "name": asset.name,
                "method": Method.MANUAL,
                "confidence": CONFIDENCE[Method.MANUAL],
            },
        )
    return {asset.external_id: target.pk for asset in assets}


def _reference_assets(found: Iterable[ReferenceAsset]) -> dict[str, int]:
    """Ids of the canonical assets for these reference entries, created (verified) if needed."""
    by_slug = {asset.slug: asset for asset in found}
    if not by_slug:
        return {}
    Asset.objects.bulk_create(
        [
            Asset(slug=a.slug, symbol=a.symbol, name=a.name, rank=a.rank, verified=True)
            for a in by_slug.values()
        ],
        # Another source's run may create the same reference asset at the same moment.
        ignore_conflicts=True,
    )
    return dict(Asset.objects.filter(slug__in=list(by_slug)).values_list("slug", "id"))


def _cross_provider_matches(*, source: str, assets: list[ProviderAsset]) -> dict[str, int]:
    """Provider ids whose normalized symbol AND name match exactly one existing asset, which
    `source` does not list under another id (two ids of one provider are two coins)."""
    named = [asset for asset in assets if asset.name and asset.symbol]
    if not named:
        return {}
    candidates: dict[tuple[str, str], list[tuple[int, bool]]] = defaultdict(list)
    for asset_id, symbol, name, listed in (
        Asset.objects.filter(symbol__in={asset.symbol.upper() for asset in named})
        .annotate(
            listed=Exists(AssetIdentifier.objects.filter(asset=OuterRef("pk"), source=source))
        )
        .values_list("id", "symbol", "name", "listed")
    ):
        candidates[(symbol, normalize_name(name))].append((asset_id, listed))
    matches: dict[str, int] = {}
    for asset in named:
        found = candidates.get((asset.symbol.upper(), normalize_name(asset.name)), [])
        if len(found) == 1 and not found[0][1]:
            matches[asset.external_id] = found[0][0]
    # Two ids of this batch matching one asset are as ambiguous as two assets matching one id.
    claimed = Counter(matches.values())
    return {external_id: a for external_id, a in matches.items() if claimed[a] == 1}


def _create_assets(
    *, source: str, assets: list[ProviderAsset], reserved: frozenset[str]
) -> dict[str, int]:
    """New, unverified canonical assets, one per provider id."""
    if not assets:
        return {}
    options = {asset.external_id: _slug_options(source, asset) for asset in assets}
    taken = set(reserved) | set(
        Asset.objects.filter(
            slug__in=[slug for slugs in options.values() for slug in slugs]
        ).values_list("slug", flat=True)
    )
    created: list[Asset] = []
    for asset in assets:
        slug = next(slug for slug in options[asset.external_id] if slug not in taken)
        taken.add(slug)
        symbol = (asset.symbol or asset.external_id).upper()
        created.append(Asset(slug=slug, symbol=symbol, name=asset.name or symbol))
    Asset.objects.bulk_create(created)
    return {asset.external_id: row.pk for asset, row in zip(assets, created, strict=True)}


def _slug_options(source: str, asset: ProviderAsset) -> list[str]:
    """Readable first, then qualified by source and provider id, which is unique per source."""
    base = (slugify(asset.name) or slugify(asset.symbol))[:150]
    qualified = slugify(f"{source}-{asset.external_id}")[:150]
    digest = hashlib.sha1(asset.external_id.encode()).hexdigest()[:12]
    options = [base, f"{base}-{source}"] if base else []
    return [*options, qualified or f"{source}-{digest}", f"{qualified}-{digest}"]
