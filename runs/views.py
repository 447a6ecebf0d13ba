"""Read-only API over runs with the /compare-runs report, `/health`, and the /stats view that
the project composes (config/views.py adds the other apps' row counts)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView
from rest_framework.viewsets import ReadOnlyModelViewSet

from common.filters import ID_PATTERN, FilterBackend
from common.pagination import KeysetPagination
from runs.filtersets import RunFilterSet
from runs.models import Run
from runs.reports import compare_runs, run_stats, source_health
from runs.serializers import (
    CompareQuerySerializer,
    ComparisonSerializer,
    HealthSerializer,
    RunDetailSerializer,
    RunSerializer,
    StatsSerializer,
)

logger = logging.getLogger(__name__)


@extend_schema(tags=["runs"])
class RunViewSet(ReadOnlyModelViewSet[Run]):
    """ETL runs, newest first: counts, duration, status and error; the detail adds drift and the
    checkpoint before and after."""

    queryset = Run.objects.all()
    filter_backends = [FilterBackend]
    filterset_class = RunFilterSet
    pagination_class = KeysetPagination
    ordering = "-started_at"
    lookup_value_regex = ID_PATTERN

    def get_serializer_class(self) -> type[BaseSerializer[Run]]:
        return RunDetailSerializer if self.action == "retrieve" else RunSerializer

    def get_queryset(self) -> QuerySet[Run]:
        if self.action == "list":
            # The drift report and checkpoints can be large and the list does not show them.
            return self.queryset.defer("drift", "options", "checkpoint_before", "checkpoint_after")
        return self.queryset

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


@extend_schema(tags=["runs"])
class StatsView(APIView):
    """`GET /stats`: per source, runs by outcome, records, last success and failure,
    durations, row counts and the current checkpoint."""

    # Which tables' rows /stats counts per source (name -> queryset with a `source` column):
    # the project gives the quotes, raw units and rejections (config/urls.py).
    tables: Callable[[], Mapping[str, QuerySet[Any]]] = staticmethod(dict)

    @extend_schema(responses=StatsSerializer)
    def get(self, request: Request) -> Response:
        return Response(StatsSerializer({"sources": run_stats(tables=self.tables())}).data)


@extend_schema(tags=["health"])
class HealthView(APIView):
    """`GET /health`: 200 with the database and each source's last run; `"status": "degraded"`
    when a monitored source's last success is older than its schedule allows, or it never
    succeeded; 503 when the database does not answer."""

    # Monitors poll this from one address; a throttled health check would read as an outage.
    throttle_classes: list[type[BaseThrottle]] = []
    # The sources held to their schedule. The project gives the ones cron runs, enabled and
    # configured (config/urls.py); runs itself only knows the setting.
    monitored: Callable[[], list[str]] = staticmethod(lambda: list(settings.ETL_ENABLED_SOURCES))

    @extend_schema(
        responses={
            200: HealthSerializer,
            503: OpenApiResponse(HealthSerializer, description="The database does not answer."),
        }
    )
    def get(self, request: Request) -> Response:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            report = source_health(monitored=self.monitored())
        except DatabaseError as exc:
            logger.error("health: database error: %s", exc)
            return Response(
                {"status": "unavailable", "database": f"error: {type(exc).__name__}"},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return Response(HealthSerializer({**report, "database": "ok"}).data)
