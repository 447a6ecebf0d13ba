"""Quotes, assets and candles as JSON. Prices are strings: exact decimals, never floats."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.filters import BLANK_MESSAGE, UtcDateTimeField, is_blank, source_choices
from prices.candles import DEFAULT_CANDLES, FILLS, INTERVAL_SECONDS
from prices.coverage import COVERAGE_INTERVALS
from prices.history import INTERVALS
from prices.models import Asset, AssetIdentifier, Quote
from prices.numbers import ExactDecimalField, plain

_M = TypeVar("_M", bound=models.Model)

ZERO = timedelta(0)
DECIMALS = ("price_usd", "market_cap_usd", "volume_24h_usd", "percent_change_24h")
# What a quote list fetches per row: plain values, the asset's symbol and name joined in. Two model
# instances per row (quote and asset) cost more than the query itself.
QUOTE_COLUMNS = (
    "id",
    "asset_id",
    "asset__symbol",
    "asset__name",
    "source",
    "observed_at",
    *DECIMALS,
)


@extend_schema_field(OpenApiTypes.DATETIME)
class UtcDateTimeParam(serializers.Field[datetime, Any, str, Any]):
    """The serializer counterpart of `UtcDateTimeField`, for query-parameter serializers."""

    def to_internal_value(self, data: Any) -> datetime:
        try:
            # A required form field: an empty value is refused, never cleaned to None.
            value: datetime = UtcDateTimeField().clean(data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return value

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class EnumParam(serializers.ChoiceField):
    """DRF's ChoiceField, whose refusal lists the values it accepts."""

    def to_internal_value(self, data: Any) -> Any:
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError:
            allowed = ", ".join(str(key) for key in self.choices)
            raise serializers.ValidationError(f"Choose one of: {allowed}.") from None


class SourceParam(serializers.CharField):
    """A source name, checked against `source_choices()` when a request comes, not at import."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        allowed = [name for name, _ in source_choices()]
        if value not in allowed:
            raise serializers.ValidationError(f"Choose one of: {', '.join(allowed)}.")
        return value


class QueryParams(serializers.Serializer[Any]):
    """Base of the query-parameter serializers: a parameter given empty is refused as such, as
    the FilterSets refuse it, rather than with the field's own message ("This field is
    required.", for a parameter that is there)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        # Iterating the fields yields their names, as for any mapping (the stubs say fields).
        names = cast("Iterable[str]", self.fields)
        blank = {name: [BLANK_MESSAGE] for name in names if is_blank(data.get(name))}
        try:
            value: dict[str, Any] = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            # A serializer's own errors are keyed by field name.
            detail = cast("dict[str, Any]", exc.detail)
            raise serializers.ValidationError({**detail, **blank}) from None
        if blank:
            raise serializers.ValidationError(blank)
        return value


class ExactModelSerializer(serializers.ModelSerializer[_M]):
    """Decimal columns rendered exactly, without their trailing zeros."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DecimalField: ExactDecimalField,
    }


class QuoteSerializer(ExactModelSerializer[Quote]):
    """A quote with its canonical asset's id and symbol on the row."""

    asset_symbol = serializers.CharField(source="asset.symbol", read_only=True)
    asset_name = serializers.CharField(source="asset.name", read_only=True)

    class Meta:
        model = Quote
        fields = [
            "id",
            "asset",
            "asset_symbol",
            "asset_name",
            "source",
            "observed_at",
            "price_usd",
            "market_cap_usd",
            "volume_24h_usd",
            "percent_change_24h",
        ]

    def to_representation(self, quote: Quote | dict[str, Any]) -> dict[str, Any]:
        # The hot path of /data: DRF's generic per-field walk costs more than the page's query.
        # Same output as the generic path (a test compares both), fewer lookups. Lists pass
        # plain rows (QUOTE_COLUMNS values), a single quote passes the model instance.
        row = quote if isinstance(quote, dict) else quote_row(quote)

        def decimal(name: str) -> str | None:
            value = row[name]
            return None if value is None else plain(value)

        observed_at = row["observed_at"]
        if observed_at.utcoffset() == ZERO and settings.TIME_ZONE == "UTC":
            # What DateTimeField renders for UTC, without its per-call time zone lookup.
            observed = observed_at.replace(tzinfo=None).isoformat() + "Z"
        else:
            observed = self.fields["observed_at"].to_representation(observed_at)
        return {
            "id": row["id"],
            "asset": row["asset_id"],
            "asset_symbol": row["asset__symbol"],
            "asset_name": row["asset__name"],
            "source": row["source"],
            "observed_at": observed,
            "price_usd": decimal("price_usd"),
            "market_cap_usd": decimal("market_cap_usd"),
            "volume_24h_usd": decimal("volume_24h_usd"),
            "percent_change_24h": decimal("percent_change_24h"),
        }


def quote_row(quote: Quote) -> dict[str, Any]:
    """A quote instance as the plain row a list fetches with `values(*QUOTE_COLUMNS)`."""
    row = {name: getattr(quote, name) for name in QUOTE_COLUMNS if "__" not in name}
    row["asset__symbol"] = quote.asset.symbol
    row["asset__name"] = quote.asset.name
    return row


class AssetSerializer(serializers.ModelSerializer[Asset]):
    class Meta:
        model = Asset
        fields = ["id", "slug", "symbol", "name", "verified", "created_at"]


class AssetIdentifierSerializer(ExactModelSerializer[AssetIdentifier]):
    class Meta:
        model = AssetIdentifier
        fields = ["source", "external_id", "symbol", "name", "method", "confidence"]


class SourcePriceSerializer(serializers.Serializer[Any]):
    source = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.source
    price_usd = ExactDecimalField()
    observed_at = serializers.DateTimeField()
    deviation = ExactDecimalField(help_text="|price - median| / median")
    flagged = serializers.BooleanField(help_text="Deviation above the threshold.")


class ConsolidatedPriceSerializer(serializers.Serializer[Any]):
    median_usd = ExactDecimalField()
    spread = ExactDecimalField(help_text="(max - min) / median")
    source_count = serializers.IntegerField()
    sources = SourcePriceSerializer(many=True)


class AssetDetailSerializer(AssetSerializer):
    """An asset with every provider id that points at it and its consolidated price: the
    median of each source's latest fresh quote (null when no source is fresh)."""

    identifiers = AssetIdentifierSerializer(many=True, read_only=True)
    consolidated_price = ConsolidatedPriceSerializer(
        source="consolidated", read_only=True, allow_null=True
    )

    class Meta(AssetSerializer.Meta):
        fields = [*AssetSerializer.Meta.fields, "identifiers", "consolidated_price"]


class HistoryQuerySerializer(QueryParams):
    """Query parameters of /api/assets/{id}/history/."""

    interval = EnumParam(choices=list(INTERVALS), default="1d")
    # A declared field named like Field.source: the serializer's metaclass takes it off the class.
    source = SourceParam(  # type: ignore[assignment]
        required=False, max_length=32, help_text="One provider only."
    )
    observed_after = UtcDateTimeParam(required=False, help_text="Buckets from this time on.")
    observed_before = UtcDateTimeParam(required=False, help_text="Quotes before this time.")
    limit = serializers.IntegerField(
        required=False, default=500, min_value=1, max_value=1000, help_text="Newest N buckets."
    )


class CandleSerializer(serializers.Serializer[Any]):
    start = serializers.DateTimeField()
    open = ExactDecimalField()
    high = ExactDecimalField()
    low = ExactDecimalField()
    close = ExactDecimalField()
    volume_24h_usd = ExactDecimalField(
        allow_null=True,
        help_text="Rolling 24-hour volume reported with the closing quote.",
    )
    quotes = serializers.IntegerField(help_text="Quotes in the bucket.")


class HistorySerializer(serializers.Serializer[Any]):
    asset = serializers.IntegerField()
    interval = serializers.CharField()
    results = CandleSerializer(many=True)


class CandleQuerySerializer(QueryParams):
    """Query parameters of /api/assets/{key}/candles."""

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # `from` is a Python keyword, so the fields are named here rather than as attributes.
        return {
            "interval": EnumParam(choices=list(INTERVAL_SECONDS), default="1d"),
            "from": UtcDateTimeParam(
                required=False,
                help_text="The first bucket is the one holding this time (ISO 8601). "
                f"Default: {DEFAULT_CANDLES} buckets before `to`.",
            ),
            "to": UtcDateTimeParam(
                required=False,
                help_text="Buckets before this time. Default: just after the asset's latest "
                "quote (its latest for `source` when given).",
            ),
            "source": SourceParam(
                required=False,
                max_length=32,
                help_text="One provider's candles. Without it, each candle is the median of "
                "the sources' candles in its bucket.",
            ),
            "fill": EnumParam(
                choices=list(FILLS),
                default="none",
                help_text="`previous`: an empty bucket repeats the last close (`filled`: true).",
            ),
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("from"), attrs.get("to")
        if start is not None and end is not None and start >= end:
            raise serializers.ValidationError({"to": ["Must be after `from`."]})
        return attrs


class CandleBarSerializer(serializers.Serializer[Any]):
    start = serializers.DateTimeField(help_text="The bucket's start (UTC).")
    open = ExactDecimalField(allow_null=True)
    high = ExactDecimalField(allow_null=True)
    low = ExactDecimalField(allow_null=True)
    close = ExactDecimalField(allow_null=True)
    volume_24h_usd = ExactDecimalField(
        allow_null=True, help_text="Rolling 24-hour volume reported with the closing quote."
    )
    quotes = serializers.IntegerField(help_text="Quotes in the bucket; 0 for an empty one.")
    sources = serializers.ListField(
        child=serializers.CharField(), help_text="The sources the candle was built from."
    )
    bars = serializers.BooleanField(
        help_text="Built from stored bars (real open, high and low), not from snapshots."
    )
    filled = serializers.BooleanField(help_text="An empty bucket filled with the last close.")


class CandleAssetSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    symbol = serializers.CharField()
    name = serializers.CharField()


class CandlesSerializer(serializers.Serializer[Any]):
    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        return {
            "asset": CandleAssetSerializer(),
            "interval": serializers.CharField(),
            "source": serializers.CharField(allow_null=True),
            "fill": serializers.CharField(),
            "from": serializers.DateTimeField(help_text="The first bucket's start."),
            "to": serializers.DateTimeField(help_text="The end of the range asked."),
            "results": CandleBarSerializer(many=True),
        }


class CoverageQuerySerializer(QueryParams):
    """Query parameters of /api/assets/{key}/coverage."""

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        return {
            "interval": EnumParam(choices=list(COVERAGE_INTERVALS), default="1d"),
            "from": UtcDateTimeParam(
                required=False, help_text="Default: the asset's first quote (ISO 8601)."
            ),
            "to": UtcDateTimeParam(
                required=False, help_text="Default: just after the asset's latest quote."
            ),
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("from"), attrs.get("to")
        if start is not None and end is not None and start >= end:
            raise serializers.ValidationError({"to": ["Must be after `from`."]})
        return attrs


class SpanSerializer(serializers.Serializer[Any]):
    start = serializers.DateTimeField(help_text="The first missing bucket.")
    end = serializers.DateTimeField(help_text="The end of the last missing bucket.")
    buckets = serializers.IntegerField()


class SourceCoverageSerializer(serializers.Serializer[Any]):
    source = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.source
    first = serializers.DateTimeField(allow_null=True, help_text="Its first bucket in the range.")
    last = serializers.DateTimeField(allow_null=True, help_text="Its last bucket in the range.")
    expected = serializers.IntegerField(help_text="Buckets in the range.")
    present = serializers.IntegerField()
    missing = serializers.IntegerField()
    missing_spans = SpanSerializer(many=True, help_text="Missing buckets, merged into spans.")


class CoverageSerializer(serializers.Serializer[Any]):
    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        return {
            "asset": CandleAssetSerializer(),
            "interval": serializers.CharField(),
            "from": serializers.DateTimeField(allow_null=True),
            "to": serializers.DateTimeField(allow_null=True),
            "sources": SourceCoverageSerializer(many=True),
        }
