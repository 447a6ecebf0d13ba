"""Cross-cutting endpoints: the landing page at / and /health."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingestion.sources import SOURCE_NAMES, build_source
from prices.models import Asset, Quote
from runs.reports import source_health
from runs.serializers import HealthSerializer

logger = logging.getLogger(__name__)


def monitored_sources() -> list[str]:
    """The sources /health holds to their schedule: what `ingest --source all` and cron run,
    i.e. enabled in ETL_ENABLED_SOURCES and configured (CoinCap without its key is neither
    run nor expected)."""
    return [
        name
        for name in settings.ETL_ENABLED_SOURCES
        if name in SOURCE_NAMES and not build_source(name).missing_configuration()
    ]


@extend_schema(tags=["health"])
class HealthView(APIView):
    """`GET /health`: 200 with the database and each source's last run; `"status": "degraded"`
    when an enabled, configured source's last success is older than its schedule allows, or it
    never succeeded; 503 when the database does not answer."""

    # Monitors poll this from one address; a throttled health check would read as an outage.
    throttle_classes: list = []

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
            report = source_health(monitored=monitored_sources())
        except DatabaseError as exc:
            logger.error("health: database error: %s", exc)
            return Response(
                {"status": "unavailable", "database": f"error: {type(exc).__name__}"},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        return Response(HealthSerializer({**report, "database": "ok"}).data)


def landing(request: HttpRequest) -> HttpResponse:
    """`/`: what this is and where to go: the dashboard, the API docs, the API, health."""
    # The quote count is the planner's estimate on PostgreSQL: an exact count of a large
    # table on every visit of the front page would cost a full scan.
    return render(
        request, "landing.html", {"assets": Asset.objects.count(), "quotes": estimated_quotes()}
    )


def estimated_quotes() -> int:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [Quote._meta.db_table],
            )
            (estimate,) = cursor.fetchone()
        if estimate and estimate > 0:
            return int(estimate)
    return Quote.objects.count()
