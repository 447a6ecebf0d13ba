"""The audit trail of the ETL: a `Run` per execution of one source, a `Checkpoint` per source."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone


class RunAlreadyActive(Exception):
    """Another run of the same source is queued or running and is not stale."""

    def __init__(self, run: Run) -> None:
        self.run = run
        super().__init__(
            f"source {run.source!r} is already running (run {run.pk}, "
            f"last heartbeat {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC)"
        )


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

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
    TERMINAL_STATUSES = (Status.SUCCEEDED, Status.PARTIAL, Status.FAILED)

    source = models.CharField(max_length=32, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(max_length=8, choices=Trigger.choices, default=Trigger.CLI)
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
        options: dict[str, Any] | None = None,
        stale_after: timedelta,
    ) -> Run:
        """Create a running run for `source`, or raise `RunAlreadyActive`.

        A run whose heartbeat is older than `stale_after` belonged to a process that died; it is
        marked failed and this run takes its place.
        """
        now = timezone.now()
        with transaction.atomic():
            active = (
                cls.objects.select_for_update()
                .filter(source=source, status__in=cls.ACTIVE_STATUSES)
                .first()
            )
            if active is not None:
                if active.heartbeat_at > now - stale_after:
                    raise RunAlreadyActive(active)
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
                        status=cls.Status.RUNNING,
                        started_at=now,
                        heartbeat_at=now,
                        options=options or {},
                    )
            except IntegrityError:
                # Lost a race with another process starting the same source.
                raise RunAlreadyActive(
                    cls.objects.get(source=source, status__in=cls.ACTIVE_STATUSES)
                ) from None

    def add_counts(
        self,
        *,
        read: int = 0,
        inserted: int = 0,
        updated: int = 0,
        unchanged: int = 0,
        rejected: int = 0,
    ) -> None:
        """Add one batch's counters and beat the heart, in the caller's transaction."""
        self.records_read += read
        self.records_inserted += inserted
        self.records_updated += updated
        self.records_unchanged += unchanged
        self.records_rejected += rejected
        self.heartbeat_at = timezone.now()
        self.save(
            update_fields=[
                "records_read",
                "records_inserted",
                "records_updated",
                "records_unchanged",
                "records_rejected",
                "heartbeat_at",
            ]
        )

    def finish(self, *, status: str, error: str = "", checkpoint_after: Any = None) -> None:
        """Close the run with a terminal status."""
        if status not in self.TERMINAL_STATUSES:
            raise ValueError(f"{status!r} is not a terminal run status")
        self.status = status
        self.error = error
        self.finished_at = timezone.now()
        self.heartbeat_at = self.finished_at
        if checkpoint_after is not None:
            self.checkpoint_after = checkpoint_after
        self.save(
            update_fields=["status", "error", "finished_at", "heartbeat_at", "checkpoint_after"]
        )


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
