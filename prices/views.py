"""Read-only API over quotes and assets. Logic lives in filtersets, pagination and history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView
from rest_framework.viewsets import ReadOnlyModelViewSet

from common.filters import ID_PATTERN, FilterBackend, KeysetOrderingFilter
from prices.candles import (
    INTERVAL_SECONDS,
    MAX_CANDLES,
    bucket_count,
    bucket_start,
    candles,
    default_range,
)
from prices.consolidation import consolidated_price
from prices.coverage import asset_span, coverage
from prices.export import candle_lines, csv_requested, csv_response, quote_csv
from prices.filtersets import AssetFilterSet, QuoteFilterSet
from prices.history import price_history
from prices.models import Asset, Quote
from prices.pagination import AssetPagination, DataPagination, QuotePagination
from prices.serializers import (
    QUOTE_COLUMNS,
    AssetDetailSerializer,
    AssetSerializer,
    CandleQuerySerializer,
    CandlesSerializer,
    CoverageQuerySerializer,
    CoverageSerializer,
    HistoryQuerySerializer,
    HistorySerializer,
    QuoteSerializer,
)

FORMAT_PARAMETER = OpenApiParameter(
    "format",
    str,
    enum=["json", "csv"],
    description="`csv`: every matching row as a CSV download (streamed, with a header row).",
)


class CsvFormat:
    """`?format=csv` or `?format=json` (or the browsable API's `api`); another value is a 400
    naming the parameter, and whatever a CSV request answers besides its rows (a 400) is
    JSON."""

    FORMATS = ("json", "csv", "api")

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        wanted = request.query_params.get("format")
        if wanted is not None and wanted not in self.FORMATS:
            if force:  # rendering the refusal below
                return (JSONRenderer(), JSONRenderer.media_type)
            raise ValidationError({"format": ["Choose one of: json, csv."]})
        if csv_requested(request):
            return (JSONRenderer(), JSONRenderer.media_type)
        return super().perform_content_negotiation(request, force)  # type: ignore[misc]


@extend_schema(tags=["prices"])
class QuoteViewSet(CsvFormat, ReadOnlyModelViewSet[Quote]):
    """Price quotes, newest first; filter by symbol, asset, source, time and price."""

    queryset = Quote.objects.select_related("asset")
    serializer_class = QuoteSerializer
    filter_backends = [FilterBackend, KeysetOrderingFilter]
    filterset_class = QuoteFilterSet
    pagination_class = QuotePagination
    ordering = "-observed_at"
    ordering_fields = ["observed_at", "price_usd"]
    lookup_value_regex = ID_PATTERN

    def get_queryset(self) -> QuerySet[Quote, Any]:
        if self.action == "list":
            # Plain rows, which QuoteSerializer renders as it renders a quote.
            rows: QuerySet[Quote, dict[str, Any]] = Quote.objects.values(*QUOTE_COLUMNS)
            return rows
        return self.queryset

    @extend_schema(
        parameters=[FORMAT_PARAMETER],
        responses={(200, "application/json"): QuoteSerializer, (200, "text/csv"): OpenApiTypes.STR},
    )
    # A CSV export streams: not the Response of ListModelMixin.list, but DRF's dispatch sends
    # any HttpResponseBase.
    def list(  # type: ignore[override]
        self, request: Request, *args: Any, **kwargs: Any
    ) -> Response | StreamingHttpResponse:
        if csv_requested(request):
            # Every matching row in the list's order, not one page: paging has no say.
            paging = [name for name in ("limit", "cursor") if name in request.query_params]
            if paging:
                message = "format=csv exports every matching row: leave this out."
                raise ValidationError({name: [message] for name in paging})
            return quote_csv(self.filter_queryset(self.get_queryset()), "quotes.csv")
        return super().list(request, *args, **kwargs)


@extend_schema(tags=["prices"])
class DataViewSet(QuoteViewSet):
    """`GET /data`: quotes as `/api/prices/` serves them, plus `request_id` and
    `api_latency_ms` in the body."""

    pagination_class = DataPagination


@extend_schema(tags=["assets"])
class AssetViewSet(ReadOnlyModelViewSet[Asset]):
    """Canonical assets; the detail adds the provider ids and the consolidated price."""

    queryset = Asset.objects.all()
    filter_backends = [FilterBackend, KeysetOrderingFilter]
    filterset_class = AssetFilterSet
    pagination_class = AssetPagination
    ordering = "symbol"
    ordering_fields = ["symbol", "created_at"]
    lookup_value_regex = ID_PATTERN

    def get_queryset(self) -> QuerySet[Asset]:
        if self.action == "retrieve":
            return self.queryset.prefetch_related("identifiers")
        return self.queryset

    def get_serializer_class(self) -> type[BaseSerializer[Asset]]:
        return AssetDetailSerializer if self.action == "retrieve" else AssetSerializer

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        asset = self.get_object()
        # For AssetDetailSerializer's consolidated_price (source="consolidated"); not a field.
        asset.consolidated = consolidated_price(asset_id=asset.pk)  # type: ignore[attr-defined]
        return Response(self.get_serializer(asset).data)

    @extend_schema(parameters=[HistoryQuerySerializer], responses=HistorySerializer)
    @action(detail=True, filter_backends=[], pagination_class=None)
    def history(self, request: Request, pk: str | None = None) -> Response:
        """Open, high, low, close and volume per hour (`1h`) or day (`1d`), newest first."""
        asset = self.get_object()
        params = HistoryQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        candles = price_history(
            asset_id=asset.pk,
            interval=params.validated_data["interval"],
            source=params.validated_data.get("source"),
            start=params.validated_data.get("observed_after"),
            end=params.validated_data.get("observed_before"),
            limit=params.validated_data["limit"],
        )
        body = {"asset": asset.pk, "interval": params.validated_data["interval"]}
        return Response(HistorySerializer({**body, "results": candles}).data)


@extend_schema(tags=["assets"])
class CandleView(CsvFormat, APIView):
    """`GET /api/assets/{key}/candles`: OHLC candles of one asset, every bucket of the range
    oldest first, empty ones included. `key` is the asset's id, its slug (`bitcoin`) or a
    symbol (`BTC`: the canonical asset of that symbol, as `/data?symbol=` picks it)."""

    @extend_schema(
        parameters=[CandleQuerySerializer, FORMAT_PARAMETER],
        responses={
            (200, "application/json"): CandlesSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
        },
    )
    def get(self, request: Request, key: str) -> Response | StreamingHttpResponse:
        asset = asset_or_404(key)
        params = CandleQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        interval, source = params.validated_data["interval"], params.validated_data.get("source")
        start, end = default_range(
            asset_id=asset.pk,
            interval=interval,
            start=params.validated_data.get("from"),
            end=params.validated_data.get("to"),
            source=source,
        )
        if bucket_count(start, end, interval) > MAX_CANDLES:
            raise ValidationError(
                {
                    "from": [
                        f"The range holds more than {MAX_CANDLES:,} {interval} buckets: "
                        "narrow it or choose a longer interval."
                    ]
                }
            )
        found = candles(
            asset_id=asset.pk,
            interval=interval,
            start=start,
            end=end,
            source=source,
            fill=params.validated_data["fill"],
        )
        if csv_requested(request):
            return csv_response(candle_lines(found), f"{asset.slug}-{interval}.csv")
        body = {
            "asset": asset,
            "interval": interval,
            "source": source,
            "fill": params.validated_data["fill"],
            "from": found[0].start if found else start,
            "to": end,
            "results": found,
        }
        return Response(CandlesSerializer(body).data)


def asset_or_404(key: str) -> Asset:
    asset = Asset.objects.by_key(key)
    if asset is None:
        raise NotFound(f"No asset with id, slug or symbol {key!r}.")
    return asset


@extend_schema(tags=["assets"])
class CoverageView(APIView):
    """`GET /api/assets/{key}/coverage`: per source, its first and last bucket, how many hourly
    or daily buckets the range holds, how many it has quotes in, and the missing ones merged into
    spans. `key` as for candles."""

    @extend_schema(parameters=[CoverageQuerySerializer], responses=CoverageSerializer)
    def get(self, request: Request, key: str) -> Response:
        asset = asset_or_404(key)
        params = CoverageQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        interval = params.validated_data["interval"]
        start, end = params.validated_data.get("from"), params.validated_data.get("to")
        if start is None or end is None:
            first, last = asset_span(asset.pk)
            start = start or first
            step = timedelta(seconds=INTERVAL_SECONDS[interval])
            end = end or (bucket_start(last, interval) + step if last else None)
        report = []
        if start is not None and end is not None and start < end:
            if bucket_count(start, end, interval) > MAX_CANDLES * 10:
                raise ValidationError(
                    {"from": [f"The range holds more than {MAX_CANDLES * 10:,} buckets."]}
                )
            report = coverage(asset_id=asset.pk, interval=interval, start=start, end=end)
        body = {"asset": asset, "interval": interval, "from": start, "to": end, "sources": report}
        return Response(CoverageSerializer(body).data)
