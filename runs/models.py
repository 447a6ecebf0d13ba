"""The audit trail of the ETL: a `Run` per execution of one source, a `Checkpoint` per source."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, OperationalError, models, transaction
from django.db.models import F, Q
from django.utils import timezone

logger = logging.getLogger(__name__)

# PostgreSQL's SQLSTATE for a NOWAIT lock request that would have to wait.
LOCK_NOT_AVAILABLE = "55P03"


class RunAlreadyActive(Exception):
    """Another run of the same source is queued or running and is not stale."""

    def __init__(self, source: str, run: Run | None = None) -> None:
        self.source = source
        self.run = run
        if run is None:
            detail = "another process is starting or finishing a run of it"
        else:
            detail = f"run {run.pk}, last heartbeat {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
        super().__init__(f"source {source!r} is already running ({detail})")


class RunTakenOver(Exception):
    """This run was declared dead (stale) and replaced while it was still working."""

    def __init__(self, run: Run) -> None:
        self.run = run
        super().__init__(f"run {run.pk} ({run.source}) was taken over by a newer run")


class RunQuerySet(models.QuerySet["Run"]):
    def ingests(self) -> RunQuerySet:
        """Runs that fetched data, not maintenance (renormalize): what health and stats
        judge a source by."""
        return self.filter(kind=Run.Kind.INGEST)


class Run(models.Model):
    """One execution of the ETL for one source, from start to a terminal status."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        PARTIAL = "partial"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        CLI = "cli"
        CRON = "cron"
        API = "api"

    class Kind(models.TextChoices):
        INGEST = "ingest"
        RENORMALIZE = "renormalize", "renormalize (quotes rebuilt from raw records)"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
    TERMINAL_STATUSES = (Status.SUCCEEDED, Status.PARTIAL, Status.FAILED)

    source = models.CharField(max_length=32, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(max_length=8, choices=Trigger.choices, default=Trigger.CLI)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.INGEST)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(default=timezone.now)

    records_read = models.PositiveBigIntegerField(default=0)
    records_inserted = models.PositiveBigIntegerField(default=0)
    records_updated = models.PositiveBigIntegerField(default=0)
    records_unchanged = models.PositiveBigIntegerField(default=0)
    records_rejected = models.PositiveBigIntegerField(default=0)

    error = models.TextField(blank=True)
    drift = models.JSONField(default=dict, blank=True)
    options = models.JSONField(default=dict, blank=True, help_text="How the run was invoked.")
    checkpoint_before = models.JSONField(null=True, blank=True)
    checkpoint_after = models.JSONField(null=True, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # The lock: at most one queued-or-running run per source, held by the database.
            models.UniqueConstraint(
                fields=["source"],
                condition=Q(status__in=["queued", "running"]),
                name="runs_run_one_active_per_source",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running"]) | Q(finished_at__isnull=False),
                name="runs_run_terminal_has_finished_at",
            ),
        ]
        indexes = [models.Index(fields=["source", "-started_at"], name="runs_run_source_started")]

    def __str__(self) -> str:
        return f"run {self.pk} {self.source} {self.status}"

    @property
    def duration(self) -> timedelta | None:
        if self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @classmethod
    def start(
        cls,
        *,
        source: str,
        trigger: str = Trigger.CLI,
        kind: str = Kind.INGEST,
        options: dict[str, Any] | None = None,
        stale_after: timedelta,
    ) -> Run:
        """Create a running run for `source`, or raise `RunAlreadyActive`.

        A run whose heartbeat is older than `stale_after` belonged to a process that died; it is
        marked failed and this run takes its place.
        """
        now = timezone.now()
        with transaction.atomic():
            try:
                # NOWAIT: a run row locked by a long transaction (renormalize) means "busy",
                # at once, rather than a wait.
                active = (
                    cls.objects.select_for_update(nowait=True)
                    .filter(source=source, status__in=cls.ACTIVE_STATUSES)
                    .first()
                )
            except OperationalError as exc:
                if getattr(exc.__cause__, "pgcode", None) != LOCK_NOT_AVAILABLE:
                    raise
                raise RunAlreadyActive(source) from None
            if active is not None:
                if active.heartbeat_at > now - stale_after:
                    raise RunAlreadyActive(source, active)
                active.finish(
                    status=cls.Status.FAILED,
                    error=(
                        f"abandoned: no heartbeat since {active.heartbeat_at:%Y-%m-%d %H:%M:%S} "
                        "UTC; taken over by a new run"
                    ),
                )
            try:
                with transaction.atomic():
                    return cls.objects.create(
                        source=source,
                        trigger=trigger,
                        kind=kind,
                        status=cls.Status.RUNNING,
                        started_at=now,
                        heartbeat_at=now,
                        options=options or {},
                    )
            except IntegrityError:
                # Lost a race with another process starting the same source.
                winner = cls.objects.filter(source=source, status__in=cls.ACTIVE_STATUSES).first()
                raise RunAlreadyActive(source, winner) from None

    def add_counts(
        self,
        *,
        read: int = 0,
        inserted: int = 0,
        updated: int = 0,
        unchanged: int = 0,
        rejected: int = 0,
    ) -> None:
        """Add one batch's counters and beat the heart, in the caller's transaction.

        Raises `RunTakenOver` (so the caller's transaction, and its batch, roll back) if another
        run has declared this one dead meanwhile.
        """
        self.heartbeat_at = timezone.now()
        changed = Run.objects.filter(pk=self.pk, status__in=self.ACTIVE_STATUSES).update(
            records_read=F("records_read") + read,
            records_inserted=F("records_inserted") + inserted,
            records_updated=F("records_updated") + updated,
            records_unchanged=F("records_unchanged") + unchanged,
            records_rejected=F("records_rejected") + rejected,
            heartbeat_at=self.heartbeat_at,
        )
        if not changed:
            raise RunTakenOver(self)
        self.records_read += read
        self.records_inserted += inserted
        self.records_updated += updated
        self.records_unchanged += unchanged
        self.records_rejected += rejected

    def finish(self, *, status: str, error: str = "", checkpoint_after: Any = None) -> None:
        """Close the run with a terminal status.

        A run already closed (taken over as stale by another run) keeps its status: the
        process that comes back to it late must not overwrite what the takeover recorded.
        """
        if status not in self.TERMINAL_STATUSES:
            raise ValueError(f"{status!r} is not a terminal run status")
        finished_at = timezone.now()
        values = {
            "status": status,
            "error": error,
            "finished_at": finished_at,
            "heartbeat_at": finished_at,
        }
        if checkpoint_after is not None:
            values["checkpoint_after"] = checkpoint_after
        changed = Run.objects.filter(pk=self.pk, status__in=self.ACTIVE_STATUSES).update(**values)
        if changed:
            for name, value in values.items():
                setattr(self, name, value)
        else:
            logger.warning("run %s was closed by another process; its status stays", self.pk)
            self.refresh_from_db()


class Checkpoint(models.Model):
    """Where a source stopped: its cursor is source-specific JSON, committed with the data."""

    source = models.CharField(max_length=32)
    cursor = models.JSONField(default=dict, blank=True)
    run = models.ForeignKey(
        Run,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The run that last moved this checkpoint.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["source"]
        constraints = [
            models.UniqueConstraint(fields=["source"], name="runs_checkpoint_unique_source"),
        ]

    def __str__(self) -> str:
        return f"checkpoint {self.source}"

    @classmethod
    def for_source(cls, source: str) -> Checkpoint:
        checkpoint, _ = cls.objects.get_or_create(source=source)
        return checkpoint

    def advance(self, *, cursor: dict[str, Any], run: Run) -> None:
        """Move the checkpoint; call it inside the transaction that commits the batch."""
        self.cursor = cursor
        self.run = run
        self.save(update_fields=["cursor", "run", "updated_at"])


def drift_lines(drift: Mapping[str, Any]) -> list[str]:
    """A run's schema drift report (`Run.drift`, written by ingestion.drift) as a headline and
    one line per change: what the admin and the log show."""
    if not drift:
        return ["not checked (this source has no expected schema)"]
    items = drift.get("items", 0)
    changes = [
        *(
            f"added: {entry['field']} in {entry['count']} of {items} items ({entry['share']:.0%})"
            for entry in drift.get("added", [])
        ),
        *(
            f"missing{' (required)' if entry.get('required') else ''}: {entry['field']} in "
            f"{entry['count']} of {items} items ({entry['share']:.0%})"
            for entry in drift.get("missing", [])
        ),
        *(
            f"type changed: {entry['field']} expected {'/'.join(entry['expected'])}, got "
            f"{', '.join(f'{kind} x{count}' for kind, count in entry['seen'].items())} "
            f"({entry['share']:.0%})"
            for entry in drift.get("type_changes", [])
        ),
    ]
    if not changes:
        return [f"no drift in {items} items"]
    return [f"{len(changes)} change(s) in {items} items", *changes]
