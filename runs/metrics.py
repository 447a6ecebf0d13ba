"""Prometheus metrics at `/metrics`, correct however many processes do the work.

Three kinds of process produce what is measured: gunicorn workers (HTTP requests), cron jobs in
the scheduler container (ETL runs, upstream HTTP calls) and one-off commands. Two mechanisms
cover them:

- **Run metrics are read from the database at scrape time** (`RunCollector`): runs by source and
  status, records by outcome, run durations, the last success per source. The `Run` table is the
  truth every process already writes, so the numbers agree whichever worker answers the scrape,
  survive restarts, and include runs made by the scheduler, which serves no HTTP.
- **Event counters use prometheus_client's multiprocess mode** when `PROMETHEUS_MULTIPROC_DIR`
  is set: HTTP requests and latency (django-prometheus) and upstream retries and 429s. Each
  process writes its counters to files in that directory and `/metrics` sums them. docker
  compose mounts one volume there in both web and scheduler, so a retry made by a cron job is
  counted too. Without the variable (tests, `runserver`) counters live in the process.

`configure_process()` must run before any metric value exists; settings.py calls it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Upper bounds, in seconds, of the run duration histogram: API runs take seconds to minutes,
# a large CSV minutes.
RUN_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
_TERMINAL = ("succeeded", "partial", "failed")
_ACTIVE = ("queued", "running")
# `ingest` exits 0 for both: the run worked, even if some records were rejected.
_SUCCESS = ("succeeded", "partial")
_OUTCOMES = ("inserted", "updated", "unchanged", "rejected")


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def process_identifier() -> str:
    """This process's name in the shared metrics directory.

    Web and scheduler are separate containers with separate PID numbering: a bare PID, the
    library's default, would let two live processes write one file. The host name (a
    container's id) makes it unique.
    """
    return f"{socket.gethostname()}-{os.getpid()}"


def configure_process() -> None:
    """Choose where this process keeps metric values; call before any metric is used."""
    if os.environ.get(MULTIPROC_ENV) == "":
        # An empty value (a blank line copied from .env.example) would put metric files in
        # the working directory.
        del os.environ[MULTIPROC_ENV]
        values.ValueClass = values.MutexValue
    elif multiprocess_dir():
        values.ValueClass = values.MultiProcessValue(process_identifier)


def mark_process_dead(pid: int) -> None:
    """Drop a finished gunicorn worker's live gauges (gunicorn's child_exit hook)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(f"{socket.gethostname()}-{pid}")


# --- upstream HTTP -----------------------------------------------------------------------------

UPSTREAM_RETRIES = Counter(
    "etl_upstream_retries",
    "Upstream API requests retried (429, 5xx, timeout or connection error), by source.",
    ["source"],
)
UPSTREAM_RATE_LIMITED = Counter(
    "etl_upstream_rate_limited",
    "Upstream API responses with HTTP 429 Too Many Requests, by source.",
    ["source"],
)


def record_upstream_retry(*, source: str) -> None:
    """Count one retry of an upstream request (call just before waiting to retry)."""
    UPSTREAM_RETRIES.labels(source=source).inc()


def record_upstream_response(*, source: str, status: int) -> None:
    """Count what an upstream response says about us (call for every response received)."""
    if status == 429:
        UPSTREAM_RATE_LIMITED.labels(source=source).inc()


# --- runs, from the database -------------------------------------------------------------------


class RunCollector(Collector):
    """Run metrics computed from the `Run` table on every scrape (two grouped queries)."""

    def describe(self) -> list[Metric]:
        # Describing would query the database at registration time.
        return []

    def collect(self) -> Iterator[Metric]:
        from django.db import DatabaseError

        up = GaugeMetricFamily(
            "etl_metrics_database_up",
            "1 if the run metrics could be read from the database at this scrape, else 0.",
        )
        try:
            families = self._families()
        except DatabaseError as exc:
            logger.warning("run metrics unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> list[Metric]:
        from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Q, Sum

        from runs.models import Run

        runs = CounterMetricFamily(
            "etl_runs",
            "Finished ETL runs by source and final status (succeeded, partial, failed).",
            labels=["source", "status"],
        )
        in_progress = GaugeMetricFamily(
            "etl_runs_in_progress", "ETL runs queued or running now, by source.", labels=["source"]
        )
        records = CounterMetricFamily(
            "etl_records",
            "Records processed by ETL runs, by source and outcome "
            "(inserted, updated, unchanged, rejected).",
            labels=["source", "outcome"],
        )
        last_success = GaugeMetricFamily(
            "etl_last_success_timestamp_seconds",
            "Unix time the last succeeded or partial run of each source finished.",
            labels=["source"],
        )
        duration = HistogramMetricFamily(
            "etl_run_duration_seconds",
            "Duration of finished ETL runs, by source.",
            labels=["source"],
        )

        rows = (
            Run.objects.ingests()
            .order_by()
            .values("source", "status")
            .annotate(
                count=Count("id"),
                last_finished=Max("finished_at"),
                **{outcome: Sum(f"records_{outcome}") for outcome in _OUTCOMES},
            )
        )
        active: dict[str, int] = {}
        totals: dict[tuple[str, str], int] = {}
        latest: dict[str, float] = {}
        for row in rows:
            source, status = row["source"], row["status"]
            if status in _TERMINAL:
                runs.add_metric([source, status], row["count"])
            elif status in _ACTIVE:
                active[source] = active.get(source, 0) + row["count"]
            for outcome in _OUTCOMES:
                key = (source, outcome)
                totals[key] = totals.get(key, 0) + (row[outcome] or 0)
            if status in _SUCCESS and row["last_finished"] is not None:
                stamp = row["last_finished"].timestamp()
                latest[source] = max(stamp, latest.get(source, stamp))
        for source in sorted({source for source, _ in totals}):
            in_progress.add_metric([source], active.get(source, 0))
        for (source, outcome), count in sorted(totals.items()):
            records.add_metric([source, outcome], count)
        for source, stamp in sorted(latest.items()):
            last_success.add_metric([source], stamp)

        elapsed = ExpressionWrapper(
            F("finished_at") - F("started_at"), output_field=DurationField()
        )
        buckets = {
            f"le_{index}": Count("id", filter=Q(elapsed__lte=timedelta(seconds=bound)))
            for index, bound in enumerate(RUN_DURATION_BUCKETS)
        }
        histogram_rows = (
            Run.objects.ingests()
            .order_by()
            .filter(finished_at__isnull=False)
            .annotate(elapsed=elapsed)
            .values("source")
            .annotate(count=Count("id"), total=Sum("elapsed"), **buckets)
        )
        for row in sorted(histogram_rows, key=lambda r: r["source"]):
            total: timedelta | None = row["total"]
            duration.add_metric(
                [row["source"]],
                buckets=[
                    *(
                        (str(float(bound)), row[f"le_{index}"])
                        for index, bound in enumerate(RUN_DURATION_BUCKETS)
                    ),
                    ("+Inf", row["count"]),
                ],
                sum_value=total.total_seconds() if total is not None else 0.0,
            )
        return [runs, in_progress, records, duration, last_success]


_RUN_REGISTRY = CollectorRegistry(auto_describe=False)
_RUN_REGISTRY.register(RunCollector())


def _event_registry() -> CollectorRegistry:
    directory = multiprocess_dir()
    if directory is None:
        return REGISTRY
    # Every process's counter files, summed; a fresh registry per scrape, as the library asks.
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return registry


def render_metrics() -> bytes:
    """The Prometheus text exposition of every metric this service has."""
    return generate_latest(_event_registry()) + generate_latest(_RUN_REGISTRY)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`, for Prometheus to scrape."""
    from django.http import HttpResponse

    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)
