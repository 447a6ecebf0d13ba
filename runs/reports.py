"""Reports over runs: per-source statistics, comparison of two runs, and source health.

Plain functions returning plain data; the views only serialize what these return. Each report
costs a fixed number of queries, however many runs there are.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet, Sum, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from runs.models import Checkpoint, Run

# How many of a source's latest finished runs the duration figures of /stats cover.
STATS_DURATION_WINDOW = 100
# Fewer earlier runs than this make no median worth comparing with.
MIN_RUNS_FOR_MEDIAN = 3
SUCCESSFUL = (Run.Status.SUCCEEDED, Run.Status.PARTIAL)
# Worse is larger: a move up this scale between two runs is a degradation.
STATUS_RANK: dict[str, int] = {Run.Status.SUCCEEDED: 0, Run.Status.PARTIAL: 1, Run.Status.FAILED: 2}
COUNT_FIELDS = (
    "records_read",
    "records_inserted",
    "records_updated",
    "records_unchanged",
    "records_rejected",
)


def latest_per_source(runs: QuerySet[Run], *, keep: int = 1, by: str = "started_at") -> list[Run]:
    """The newest `keep` runs of each source, newest first, in one query."""
    ranked = runs.annotate(
        rank=Window(
            RowNumber(), partition_by=[F("source")], order_by=[F(by).desc(), F("id").desc()]
        )
    )
    return list(ranked.filter(rank__lte=keep).order_by("source", f"-{by}", "-id"))


def _seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else round(delta.total_seconds(), 3)


def _finished_at(run: Run) -> datetime:
    """When `run` finished, for a run from a `finished_at__isnull=False` query."""
    return cast(datetime, run.finished_at)


def _run_ref(run: Run | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "id": run.pk,
        "status": run.status,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "error": run.error,
    }


def rows_per_source(rows: QuerySet[Any]) -> dict[str, int]:
    """How many of `rows` (a table with a `source` column) each source has."""
    counted = rows.order_by().values("source").annotate(rows=Count("id"))
    return {row["source"]: row["rows"] for row in counted}


def run_stats(*, tables: Mapping[str, QuerySet[Any]] | None = None) -> list[dict[str, Any]]:
    """Per source: run counts by outcome, records, last success and failure, durations, the
    current checkpoint, and the rows each of `tables` (name -> a table with a `source`
    column) holds for it: /stats gives the quotes, raw units and rejections, which runs does
    not know."""
    totals = {
        row["source"]: row
        for row in Run.objects.ingests()
        .order_by()
        .values("source")
        .annotate(
            runs_total=Count("id"),
            succeeded=Count("id", filter=Q(status=Run.Status.SUCCEEDED)),
            partial=Count("id", filter=Q(status=Run.Status.PARTIAL)),
            failed=Count("id", filter=Q(status=Run.Status.FAILED)),
            active=Count("id", filter=Q(status__in=Run.ACTIVE_STATUSES)),
            records_processed=Sum("records_read"),
            records_rejected=Sum("records_rejected"),
        )
    }
    finished = Run.objects.ingests().filter(finished_at__isnull=False)
    last_success = {
        r.source: r
        for r in latest_per_source(finished.filter(status__in=SUCCESSFUL), by="finished_at")
    }
    last_failure = {
        r.source: r
        for r in latest_per_source(finished.filter(status=Run.Status.FAILED), by="finished_at")
    }
    durations: dict[str, list[float]] = {}
    for run in latest_per_source(finished, keep=STATS_DURATION_WINDOW, by="finished_at"):
        # A finished run has a duration.
        duration = cast(timedelta, run.duration)
        durations.setdefault(run.source, []).append(duration.total_seconds())
    checkpoints = {c.source: c for c in Checkpoint.objects.all()}
    rows = {name: rows_per_source(table) for name, table in (tables or {}).items()}

    sources = sorted(set(totals) | set(checkpoints).union(*rows.values()))
    report = []
    for source in sources:
        row = totals.get(source, {})
        seconds = durations.get(source, [])
        checkpoint = checkpoints.get(source)
        report.append(
            {
                "source": source,
                "runs_total": row.get("runs_total", 0),
                "succeeded": row.get("succeeded", 0),
                "partial": row.get("partial", 0),
                "failed": row.get("failed", 0),
                "active": row.get("active", 0),
                "records_processed": row.get("records_processed") or 0,
                "records_rejected": row.get("records_rejected") or 0,
                "last_success": _run_ref(last_success.get(source)),
                "last_failure": _run_ref(last_failure.get(source)),
                "duration_seconds": {
                    "window": len(seconds),
                    "mean": round(statistics.fmean(seconds), 3) if seconds else None,
                    "median": round(statistics.median(seconds), 3) if seconds else None,
                    "last": round(seconds[0], 3) if seconds else None,
                },
                "rows": {name: counts.get(source, 0) for name, counts in rows.items()},
                "checkpoint": None
                if checkpoint is None
                else {
                    "cursor": checkpoint.cursor,
                    "updated_at": checkpoint.updated_at,
                    "run": checkpoint.run_id,
                },
            }
        )
    return report


def recent_median_duration(*, source: str, before: Run) -> float | None:
    """Median duration in seconds of `source`'s latest finished runs started before `before`."""
    window = settings.COMPARE_MEDIAN_WINDOW
    earlier = (
        Run.objects.ingests()
        .filter(source=source, finished_at__isnull=False)
        .filter(
            Q(started_at__lt=before.started_at) | Q(started_at=before.started_at, id__lt=before.pk)
        )
        .order_by("-started_at", "-id")
        .values_list("started_at", "finished_at")[:window]
    )
    # finished_at__isnull=False: every end is a datetime.
    seconds = [(cast(datetime, end) - start).total_seconds() for start, end in earlier]
    if len(seconds) < MIN_RUNS_FOR_MEDIAN:
        return None
    return round(statistics.median(seconds), 3)


def _rejected_share(run: Run) -> float | None:
    return round(run.records_rejected / run.records_read, 4) if run.records_read else None


def _status_change(a: str, b: str) -> str:
    if a not in STATUS_RANK or b not in STATUS_RANK:
        return "not_comparable"
    if STATUS_RANK[b] > STATUS_RANK[a]:
        return "degraded"
    return "improved" if STATUS_RANK[b] < STATUS_RANK[a] else "same"


def compare_runs(*, run_a: Run, run_b: Run) -> dict[str, Any]:
    """How `run_b` differs from the baseline `run_a`, with anomaly flags."""
    anomalies: list[dict[str, str]] = []
    counts = {}
    for name in COUNT_FIELDS:
        a, b = getattr(run_a, name), getattr(run_b, name)
        counts[name] = {
            "a": a,
            "b": b,
            "change": b - a,
            "change_ratio": round((b - a) / a, 4) if a else None,
        }
    read = counts["records_read"]
    threshold = settings.COMPARE_RECORD_CHANGE_THRESHOLD
    if read["a"] and abs(read["change"]) > threshold * read["a"]:
        anomalies.append(
            {
                "code": "record_count_change",
                "message": f"records read went from {read['a']} to {read['b']} "
                f"({read['change_ratio']:+.0%}; threshold ±{threshold:.0%})",
            }
        )
    elif not read["a"] and read["b"]:
        anomalies.append(
            {"code": "record_count_change", "message": f"records read went from 0 to {read['b']}"}
        )

    seconds_a, seconds_b = _seconds(run_a.duration), _seconds(run_b.duration)
    median = recent_median_duration(source=run_b.source, before=run_b)
    factor = settings.COMPARE_DURATION_SPIKE_FACTOR
    if (
        seconds_b is not None
        and median is not None
        and seconds_b > factor * median
        and seconds_b - median >= settings.COMPARE_DURATION_MIN_EXCESS_SECONDS
    ):
        anomalies.append(
            {
                "code": "duration_spike",
                "message": f"run {run_b.pk} took {seconds_b:.1f}s, over {factor:g}x the recent "
                f"median of {median:.1f}s for {run_b.source}",
            }
        )

    status_change = _status_change(run_a.status, run_b.status)
    if status_change == "degraded":
        anomalies.append(
            {
                "code": "status_degradation",
                "message": f"status went from {run_a.status} to {run_b.status}",
            }
        )

    share_a, share_b = _rejected_share(run_a), _rejected_share(run_b)
    rise = settings.COMPARE_REJECTED_SHARE_RISE
    if share_b is not None and share_b - (share_a or 0.0) > rise:
        anomalies.append(
            {
                "code": "rejected_share_rise",
                "message": f"rejected share rose from {share_a or 0:.1%} to {share_b:.1%} "
                f"(threshold +{rise:.1%})",
            }
        )

    return {
        "run_a": _run_ref(run_a),
        "run_b": _run_ref(run_b),
        "same_source": run_a.source == run_b.source,
        "counts": counts,
        "duration_seconds": {
            "a": seconds_a,
            "b": seconds_b,
            "change": None if seconds_a is None or seconds_b is None else seconds_b - seconds_a,
            "recent_median": median,
        },
        "status": {"a": run_a.status, "b": run_b.status, "change": status_change},
        "rejected_share": {"a": share_a, "b": share_b},
        "drift": {"a": run_a.drift, "b": run_b.drift, "changed": run_a.drift != run_b.drift},
        "anomalies": anomalies,
    }


def max_age(source: str) -> timedelta:
    minutes = settings.HEALTH_MAX_AGE_MINUTES.get(source, settings.HEALTH_DEFAULT_MAX_AGE_MINUTES)
    return timedelta(minutes=minutes)


def source_health(*, monitored: Sequence[str], now: datetime | None = None) -> dict[str, Any]:
    """Each monitored source and each source that has run: its last run, its last success, and
    whether that success is recent enough for its schedule (`HEALTH_MAX_AGE_MINUTES`).

    `monitored` are the sources expected to run (the caller knows which are enabled and
    configured; runs cannot ask ingestion). One of them is "ok" when its last success is recent
    enough, "degraded" when it is too old or there is none, and "never_ran" without any run.
    Any other source that ran (a manual run of a source cron skips) is listed as
    "not_monitored" and leaves the verdict alone. Overall "degraded" if a monitored source is
    not "ok".
    """
    now = now or timezone.now()
    last_run = {r.source: r for r in latest_per_source(Run.objects.ingests())}
    last_success = {
        r.source: r
        for r in latest_per_source(
            Run.objects.ingests().filter(status__in=SUCCESSFUL, finished_at__isnull=False),
            by="finished_at",
        )
    }
    sources = []
    for source in sorted(set(monitored) | set(last_run)):
        run = last_run.get(source)
        success = last_success.get(source)
        allowed = max_age(source)
        if source not in monitored:
            verdict = "not_monitored"
        elif run is None:
            verdict = "never_ran"
        elif success is not None and now - _finished_at(success) <= allowed:
            verdict = "ok"
        else:
            verdict = "degraded"
        sources.append(
            {
                "source": source,
                "status": verdict,
                "last_run": None
                if run is None
                else {
                    "id": run.pk,
                    "status": run.status,
                    "started_at": run.started_at,
                    "finished_at": run.finished_at,
                    "age_seconds": _seconds(now - (run.finished_at or run.started_at)),
                    **{name: getattr(run, name) for name in COUNT_FIELDS},
                    "error": run.error,
                },
                "last_success_at": success.finished_at if success else None,
                "last_success_age_seconds": _seconds(now - _finished_at(success))
                if success
                else None,
                "max_age_minutes": allowed.total_seconds() / 60,
            }
        )
    degraded = any(s["status"] not in ("ok", "not_monitored") for s in sources)
    return {"status": "degraded" if degraded else "ok", "sources": sources}
