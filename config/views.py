"""What the project composes from its apps: the landing page at /, and what /stats and /health
are given by the apps that runs sits below (row counts, the sources cron runs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ingestion.models import RawUnit, Rejection
from prices.models import Asset, Quote


def stats_tables() -> Mapping[str, QuerySet[Any]]:
    """The tables /stats counts per source, each app's own."""
    return {
        "quotes": Quote.objects.all(),
        "raw_units": RawUnit.objects.all(),
        "rejections": Rejection.objects.all(),
    }


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
