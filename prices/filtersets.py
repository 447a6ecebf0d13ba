"""One FilterSet per model; every parameter is validated, so bad input is a 400 naming it."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field

from common.filters import MAX_ID, FilterSet, SourceFilter, UtcDateTimeFilter
from prices.models import MONEY, Asset, Quote


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """A database id: a whole number that fits a bigint."""

    # The stubs narrow field_class to NumberFilter's DecimalField; any form field works.
    field_class = forms.IntegerField  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class StrictBooleanField(forms.Field):
    """true/false (or 1/0), any case; anything else is an error, not "no filter"."""

    default_error_messages = {"invalid": "Enter true or false."}
    VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value: Any) -> bool | None:
        if value in self.empty_values:
            return None
        try:
            return self.VALUES[str(value).strip().lower()]
        except KeyError:
            raise DjangoValidationError(self.error_messages["invalid"], code="invalid") from None


class StrictBooleanFilter(django_filters.BooleanFilter):
    # The stubs narrow field_class to BooleanFilter's NullBooleanField; any form field works.
    field_class = StrictBooleanField  # type: ignore[assignment]


class QuoteFilterSet(FilterSet):
    symbol = django_filters.CharFilter(
        method="filter_symbol",
        label="Symbol",
        max_length=64,
        help_text="Canonical asset symbol, any case. Where several assets share it, the "
        "canonical one: verified first, then the largest by market-cap rank (use asset= for "
        "another).",
    )
    asset = IdFilter(field_name="asset_id", help_text="Canonical asset id.")
    source = SourceFilter(help_text="Provider, e.g. csv, coingecko.")
    observed_after = UtcDateTimeFilter(
        field_name="observed_at",
        lookup_expr="gte",
        help_text="Observed at or after this ISO 8601 time (any UTC offset; none means UTC).",
    )
    observed_before = UtcDateTimeFilter(
        field_name="observed_at",
        lookup_expr="lt",
        help_text="Observed strictly before this ISO 8601 time.",
    )
    min_price = django_filters.NumberFilter(
        field_name="price_usd", lookup_expr="gte", help_text="Price in USD at least.", **MONEY
    )
    max_price = django_filters.NumberFilter(
        field_name="price_usd", lookup_expr="lte", help_text="Price in USD at most.", **MONEY
    )

    class Meta:
        model = Quote
        fields = [
            "symbol",
            "asset",
            "source",
            "observed_after",
            "observed_before",
            "min_price",
            "max_price",
        ]

    def filter_symbol(self, queryset: QuerySet[Quote], name: str, value: str) -> QuerySet[Quote]:
        # Symbols collide (dozens of coins call themselves USDC): one symbol means one asset.
        # Its id goes in as a literal: with a subquery PostgreSQL cannot see how few quotes one
        # asset has and walks the whole time index instead of the (asset, time) index.
        asset = Asset.objects.by_symbol(value)
        return queryset.filter(asset_id=asset.pk) if asset else queryset.none()


class AssetFilterSet(FilterSet):
    symbol = django_filters.CharFilter(
        field_name="symbol", lookup_expr="iexact", max_length=64, help_text="Symbol, any case."
    )
    slug = django_filters.CharFilter(max_length=200, help_text="Canonical id, e.g. bitcoin.")
    verified = StrictBooleanFilter(help_text="From the reference mapping or checked.")

    class Meta:
        model = Asset
        fields = ["symbol", "slug", "verified"]
