"""The clean data: canonical assets, the provider ids that point at them, and price quotes."""

from __future__ import annotations

from typing import TypedDict

from django.db import models
from django.db.models.functions import Upper


class Digits(TypedDict):
    max_digits: int
    decimal_places: int


# Micro-cap coins trade below 1e-8 USD and market caps reach 1e13: 18 places after the point and
# 22 before cover both with room.
MONEY: Digits = {"max_digits": 40, "decimal_places": 18}


class AssetQuerySet(models.QuerySet["Asset"]):
    def by_symbol(self, symbol: str) -> Asset | None:
        """The canonical asset of a symbol, any case. Dozens of coins call themselves USDC:
        verified first, then the largest by market-cap rank, then the oldest."""
        return (
            self.filter(symbol__iexact=symbol)
            .order_by("-verified", models.F("rank").asc(nulls_last=True), "id")
            .first()
        )

    def by_key(self, key: str) -> Asset | None:
        """The asset a URL names: its id, its slug, or a symbol (the canonical asset)."""
        if key.isdigit() and len(key) <= 18:
            found = self.filter(pk=int(key)).first()
            if found:
                return found
        return self.filter(slug=key).first() or self.by_symbol(key)


class Asset(models.Model):
    """A canonical coin: bitcoin is one Asset whichever provider or file reported it."""

    slug = models.SlugField(max_length=200, help_text="Stable canonical id, e.g. 'bitcoin'.")
    # Not unique: dozens of coins call themselves USDC.
    symbol = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=200)
    rank = models.PositiveIntegerField(
        null=True, blank=True, help_text="Market-cap rank in the reference mapping."
    )
    verified = models.BooleanField(
        default=False,
        help_text="True when the asset comes from the reference mapping or an operator checked it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AssetQuerySet.as_manager()

    class Meta:
        ordering = ["symbol", "slug"]
        constraints = [models.UniqueConstraint(fields=["slug"], name="prices_asset_unique_slug")]
        indexes = [
            # `?symbol=` matches any case (iexact): UPPER(symbol) = UPPER(%s) on PostgreSQL.
            models.Index(Upper("symbol"), name="prices_asset_symbol_upper"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} ({self.name})"


class AssetIdentifier(models.Model):
    """One provider's id for an asset (`bitcoin` at CoinGecko, `btc-bitcoin` at CoinPaprika)."""

    class Method(models.TextChoices):
        REFERENCE = "reference", "reference mapping"
        REFERENCE_SYMBOL = "reference_symbol", "reference mapping, by symbol only (review)"
        CROSS_PROVIDER = "cross_provider", "cross-provider name and symbol match"
        NEW = "new", "new asset"
        MANUAL = "manual", "set by an operator"

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="identifiers")
    source = models.CharField(max_length=32)
    external_id = models.CharField(max_length=255)
    symbol = models.CharField(max_length=64, blank=True, help_text="As the provider spells it.")
    name = models.CharField(max_length=200, blank=True, help_text="As the provider spells it.")
    method = models.CharField(max_length=16, choices=Method.choices)
    confidence = models.DecimalField(max_digits=3, decimal_places=2, default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["source", "external_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], name="prices_identifier_unique_source_external_id"
            ),
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0, confidence__lte=1),
                name="prices_identifier_confidence_0_1",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id} -> {self.asset_id}"


class Quote(models.Model):
    """One price observation of one asset from one source at the provider's own time."""

    # The composite indexes below lead with asset; a separate FK index would only slow inserts.
    asset = models.ForeignKey(
        Asset, on_delete=models.PROTECT, related_name="quotes", db_index=False
    )
    source = models.CharField(max_length=32)
    observed_at = models.DateTimeField()
    price_usd = models.DecimalField(**MONEY)
    market_cap_usd = models.DecimalField(**MONEY, null=True, blank=True)
    volume_24h_usd = models.DecimalField(**MONEY, null=True, blank=True)
    percent_change_24h = models.DecimalField(
        max_digits=30, decimal_places=10, null=True, blank=True
    )
    # A bar (a CSV export's day, a provider's OHLC) keeps its open, high and low; the price is
    # its close. A snapshot (a provider's price now) has no interval and no OHLC.
    open_usd = models.DecimalField(**MONEY, null=True, blank=True)
    high_usd = models.DecimalField(**MONEY, null=True, blank=True)
    low_usd = models.DecimalField(**MONEY, null=True, blank=True)
    interval = models.CharField(
        max_length=8, blank=True, help_text="The bar's length (1d, 1h...); empty for a snapshot."
    )
    # Provenance links, followed from a quote and never searched by: no index and no foreign-key
    # check, so they cost nothing per inserted row. A raw unit removed by retention leaves its
    # id here.
    raw_unit = models.ForeignKey(
        "ingestion.RawUnit",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    raw_position = models.PositiveIntegerField(
        null=True, blank=True, help_text="The item's place in its raw unit: file line or index."
    )
    run = models.ForeignKey(
        "runs.Run",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )

    class Meta:
        ordering = ["-observed_at", "-id"]
        constraints = [
            # The upsert's conflict target, and the index of every per-asset query: /data?symbol=,
            # an asset's history and candles (asset = X AND observed_at in a range), the
            # consolidated price (latest per asset and source).
            models.UniqueConstraint(
                fields=["asset", "observed_at", "source"], name="prices_quote_unique_observation"
            ),
            models.CheckConstraint(
                condition=models.Q(price_usd__gt=0), name="prices_quote_price_positive"
            ),
        ]
        indexes = [
            # /data and /api/quotes/ without an asset: newest first, keyset on (observed_at, id).
            models.Index(fields=["observed_at", "id"], name="prices_quote_time_id"),
            # ?source= on /data, /api/quotes/ and the admin's source filter, newest first.
            models.Index(fields=["source", "-observed_at"], name="prices_quote_source_time"),
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} {self.source} {self.observed_at:%Y-%m-%d %H:%M} {self.price_usd}"
