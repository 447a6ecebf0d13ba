"""The audit trail of the ETL: a `Run` per execution of one source, a `Checkpoint` per source."""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    models,
    transaction,
)
from django.db.models import F, Q
from django.utils import timezone

logger = logging.getLogger(__name__)

# PostgreSQL's SQLSTATE for a NOWAIT lock request that would have to wait.
LOCK_NOT_AVAILABLE = "55P03"
# PostgreSQL's SQLSTATEs for a session the server ended (admin shutdown, crash, cannot connect).
CONNECTION_ENDED_CODES = ("57P01", "57P02", "57P03")

# On PostgreSQL the database session working a run holds a session-level advisory lock on it,
# (OWNER_LOCK_SPACE, run id), for the run's life. The server releases it when that session ends
# (the process was killed, or its connection lost), so a running run whose lock nobody holds has
# no owner left and is taken over at once, without waiting for its heartbeat to go stale.
OWNER_LOCK_SPACE = zlib.crc32(b"runs.Run owner") & 0x7FFFFFFF
# How long a queued run (started by the HTTP trigger) may wait for its ingest process to take
# it up before it counts as abandoned.
QUEUED_GRACE = timedelta(seconds=60)
# Waits between attempts to reconnect and record a run's failure after its connection was lost.
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)
# Longest `Run.error` kept: the head and tail of a longer text, and its length.
MAX_ERROR_LENGTH = 4000


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


def first_line(text: str, limit: int = 140) -> str:
    """The first non-empty line of `text`, cut to `limit` characters with an ellipsis."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else f"{line[: limit - 1]}…"


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
        RENORMALIZE = "renormalize", "renormalize (quotes rebuilt from raw units)"
        BACKFILL = "backfill", "backfill (history from the providers' history endpoints)"

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
    session_pid = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="PostgreSQL backend pid of the database session working the run; it holds "
        "the run's advisory lock until the run ends (empty on SQLite, and while queued).",
    )

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

    def error_first_line(self, limit: int = 140) -> str:
        """The error's first line, cut to `limit` characters: what a list or a tile shows."""
        return first_line(self.error, limit)

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
        queued: bool = False,
    ) -> Run:
        """Create a running run for `source`, or raise `RunAlreadyActive`.

        On PostgreSQL this database session takes the run's advisory lock, held until `finish`.
        `queued=True` creates a queued run instead, without the lock: for the process that will
        `claim` it (the HTTP trigger's).

        An active run whose owner is gone is marked failed, ending at its last heartbeat, and
        this run takes its place: a running run whose lock no session holds (PostgreSQL), a
        queued run nobody claimed within `QUEUED_GRACE`, or any run whose heartbeat is older
        than `stale_after`.
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
                reason = active._abandoned(now=now, stale_after=stale_after)
                if reason is None:
                    raise RunAlreadyActive(source, active)
                active.finish(
                    status=cls.Status.FAILED,
                    error=f"{reason}; taken over by a new run",
                    finished_at=active.heartbeat_at,
                )
            try:
                with transaction.atomic():
                    run = cls.objects.create(
                        source=source,
                        trigger=trigger,
                        kind=kind,
                        status=cls.Status.QUEUED if queued else cls.Status.RUNNING,
                        started_at=now,
                        heartbeat_at=now,
                        options=options or {},
                        session_pid=None if queued else _backend_pid(),
                    )
                    if not queued:
                        # Before the row is committed: no one sees the run without its lock.
                        _take_owner_lock(run.pk)
                    return run
            except IntegrityError:
                # Lost a race with another process starting the same source.
                winner = cls.objects.filter(source=source, status__in=cls.ACTIVE_STATUSES).first()
                raise RunAlreadyActive(source, winner) from None

    @classmethod
    def claim(cls, *, pk: int, source: str) -> Run | None:
        """Take up the queued run `pk` of `source` in this process: lock it (PostgreSQL) and
        mark it running. None if there is no such queued run (taken up, or taken over)."""
        with transaction.atomic():
            run = (
                cls.objects.select_for_update()
                .filter(pk=pk, source=source, status=cls.Status.QUEUED)
                .first()
            )
            if run is None:
                return None
            _take_owner_lock(run.pk)
            run.status = cls.Status.RUNNING
            run.session_pid = _backend_pid()
            run.heartbeat_at = timezone.now()
            run.save(update_fields=["status", "session_pid", "heartbeat_at"])
        return run

    def _abandoned(self, *, now: datetime, stale_after: timedelta) -> str | None:
        """Why this active run has no owner left, or None if it may still be working."""
        since = f"{self.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
        if self.heartbeat_at <= now - stale_after:
            return f"abandoned: no heartbeat since {since}"
        if connection.vendor != "postgresql":
            return None
        # A running run without a session pid never took the lock (an older version started
        # it): only its heartbeat tells.
        if self.status == self.Status.RUNNING:
            if self.session_pid is not None and not _owner_lock_held(self.pk):
                return f"abandoned: its process or database session ended (last heartbeat {since})"
        elif self.heartbeat_at <= now - QUEUED_GRACE and not _owner_lock_held(self.pk):
            # Queued: the HTTP trigger's process never started, or died before taking it up.
            return (
                f"abandoned: no process took it up within {QUEUED_GRACE.seconds} s "
                f"(queued at {since})"
            )
        return None

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
        _keep_owner_lock(self.pk)
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

    def finish(
        self,
        *,
        status: str,
        error: str = "",
        checkpoint_after: Any = None,
        finished_at: datetime | None = None,
    ) -> None:
        """Close the run with a terminal status, and release its lock if this session holds it.

        `finished_at` defaults to now (a run taken over ends at its last heartbeat). `error` is
        kept to `MAX_ERROR_LENGTH` characters (its head and tail).

        A run already closed (taken over as stale by another run) keeps its status: the
        process that comes back to it late must not overwrite what the takeover recorded.
        """
        if status not in self.TERMINAL_STATUSES:
            raise ValueError(f"{status!r} is not a terminal run status")
        finished_at = finished_at or timezone.now()
        values = {
            "status": status,
            "error": bounded_error(error),
            "finished_at": finished_at,
            "heartbeat_at": finished_at,
        }
        if checkpoint_after is not None:
            values["checkpoint_after"] = checkpoint_after
        changed = Run.objects.filter(pk=self.pk, status__in=self.ACTIVE_STATUSES).update(**values)
        _release_owner_lock(self.pk)
        if changed:
            for name, value in values.items():
                setattr(self, name, value)
        else:
            logger.warning("run %s was closed by another process; its status stays", self.pk)
            self.refresh_from_db()

    def lost_connection(self, exc: BaseException) -> bool:
        """Whether `exc`, raised while this run worked, means its database session is gone:
        the one holding its lock was closed (Django may have opened a new one since), or the
        current one is broken."""
        if not isinstance(exc, OperationalError | InterfaceError):
            return False
        holder = _OWNER_LOCKS.get(self.pk)
        if holder is not None and bool(getattr(holder, "closed", 0)):
            return True
        return connection_lost(exc)

    def finish_after_lost_connection(
        self,
        exc: BaseException,
        *,
        checkpoint_after: Callable[[], Any] | None = None,
    ) -> None:
        """Record that the run failed because its database connection was lost (`exc`).

        Closes the broken connection and opens a new one, a few times with short waits (the
        server may be restarting), then finishes the run as failed; `checkpoint_after` is read
        on the new connection. Raises the last connection error if the database stays out of
        reach: the run then stays running, and as its lock died with the lost session, the next
        run takes it over.
        """
        lines = str(exc).strip().splitlines()
        error = f"lost the database connection: {lines[0] if lines else type(exc).__name__}"
        _OWNER_LOCKS.pop(self.pk, None)  # it ended with the lost session
        if connection.in_atomic_block:
            raise exc  # the caller's transaction is gone; only it can recover
        for attempt, delay in enumerate((0.0, *RECONNECT_DELAYS), start=1):
            time.sleep(delay)
            connection.close()
            try:
                cursor = checkpoint_after() if checkpoint_after is not None else None
                self.finish(status=self.Status.FAILED, error=error, checkpoint_after=cursor)
                return
            except (OperationalError, InterfaceError) as retry_exc:
                logger.warning(
                    "run %s: reconnect attempt %d failed: %s", self.pk, attempt, retry_exc
                )
                last = retry_exc
        logger.error("run %s: could not record its failure, the database is out of reach", self.pk)
        raise last


def bounded_error(text: str, limit: int = MAX_ERROR_LENGTH) -> str:
    """`text`, or if longer than `limit` its head and tail around a note of its full length."""
    if len(text) <= limit:
        return text

    def note(omitted: int) -> str:
        return f"\n[... {omitted:,} of {len(text):,} characters left out ...]\n"

    room = limit - len(note(len(text)))  # the longest the note can be
    head = room * 2 // 3
    tail = room - head
    return text[:head] + note(len(text) - head - tail) + text[len(text) - tail :]


def connection_lost(exc: BaseException) -> bool:
    """Whether `exc` comes from the database connection going away, not from a statement."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    if isinstance(exc, InterfaceError) and connection.vendor == "postgresql":
        return True  # psycopg2: "connection already closed" (SQLite's is a bad parameter)
    code = getattr(exc.__cause__, "pgcode", None) or ""
    # Class 08: connection exception; 57P01-57P03: the server shut the session down.
    if code.startswith("08") or code in CONNECTION_ENDED_CODES:
        return True
    cursor = getattr(exc.__cause__, "cursor", None)
    if cursor is not None and bool(getattr(cursor.connection, "closed", 0)):
        return True
    raw = connection.connection
    if raw is None or bool(getattr(raw, "closed", 0)):
        return True
    return not connection.is_usable()


# --- the owner's advisory lock (PostgreSQL) ----------------------------------------------------

# Run id -> the DB-API connection (session) that holds that run's lock, in this process.
_OWNER_LOCKS: dict[int, Any] = {}


def _lock_key(pk: int) -> list[int]:
    return [OWNER_LOCK_SPACE, pk % 2**31]


def _backend_pid() -> int | None:
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid: int = cursor.fetchone()[0]
        return pid


def _take_owner_lock(pk: int) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", _lock_key(pk))
        if not cursor.fetchone()[0]:
            raise RuntimeError(f"run {pk}: another session holds its owner lock")
    _OWNER_LOCKS[pk] = connection.connection


def _keep_owner_lock(pk: int) -> None:
    """Take the lock again if Django replaced this process's connection since it was taken
    (the old session's lock ended with it)."""
    holder = _OWNER_LOCKS.get(pk)
    if holder is not None and holder is not connection.connection:
        connection.ensure_connection()
        _take_owner_lock(pk)


def _release_owner_lock(pk: int) -> None:
    holder = _OWNER_LOCKS.pop(pk, None)
    if holder is None or holder is not connection.connection:
        return  # not held here, or it ended with its session
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", _lock_key(pk))


def _owner_lock_held(pk: int) -> bool:
    """Whether some session (this one included) holds run `pk`'s lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s AND objid = %s AND objsubid = 2)",
            _lock_key(pk),
        )
        held: bool = cursor.fetchone()[0]
        return held


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
