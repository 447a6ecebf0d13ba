"""Read-only API over runs, with the /stats and /compare-runs reports."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.viewsets import ReadOnlyModelViewSet

from config.filters import FilterBackend
from config.pagination import KeysetPagination
from runs.filtersets import RunFilterSet
from runs.models import Run
from runs.reports import compare_runs, run_stats
from runs.serializers import (
    CompareQuerySerializer,
    ComparisonSerializer,
    RunDetailSerializer,
    RunSerializer,
    StatsSerializer,
)


@extend_schema(tags=["runs"])
class RunViewSet(ReadOnlyModelViewSet):
    """ETL runs, newest first: counts, duration, status and error; the detail adds drift and the
    checkpoint before and after."""

    queryset = Run.objects.all()
    filter_backends = [FilterBackend]
    filterset_class = RunFilterSet
    pagination_class = KeysetPagination
    ordering = "-started_at"
    lookup_value_regex = r"[0-9]{1,18}"

    def get_serializer_class(self) -> type[BaseSerializer]:
        return RunDetailSerializer if self.action == "retrieve" else RunSerializer

    def get_queryset(self) -> QuerySet[Run]:
        if self.action == "list":
            # The drift report and checkpoints can be large and the list does not show them.
            return self.queryset.defer("drift", "options", "checkpoint_before", "checkpoint_after")
        return self.queryset

    @extend_schema(responses=StatsSerializer)
    @action(detail=False, filter_backends=[], pagination_class=None)
    def stats(self, request: Request) -> Response:
        """Per source: runs by outcome, records, last success and failure, durations, row
        counts and the current checkpoint."""
        return Response(StatsSerializer({"sources": run_stats()}).data)

    @extend_schema(
        parameters=[CompareQuerySerializer],
        responses={
            200: ComparisonSerializer,
            404: OpenApiResponse(description="run_a or run_b does not exist."),
        },
    )
    @action(detail=False, filter_backends=[], pagination_class=None)
    def compare(self, request: Request) -> Response:
        """How run_b differs from run_a, with anomaly flags."""
        params = CompareQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        runs = {}
        for name in ("run_a", "run_b"):
            run_id = params.validated_data[name]
            try:
                runs[name] = Run.objects.get(pk=run_id)
            except Run.DoesNotExist:
                raise NotFound(f"{name}: no run with id {run_id}.") from None
        return Response(ComparisonSerializer(compare_runs(**runs)).data)
