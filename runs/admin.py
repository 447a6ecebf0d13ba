from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from common.console_tags import seconds
from common.display import badge, kv_table, number
from runs.drift import drift_lines
from runs.models import Checkpoint, Run

# django-stubs makes ModelAdmin generic in its model, but Django's class cannot be subscripted:
# the parametrized bases are for the type checker only.
if TYPE_CHECKING:
    AnyModelAdmin = admin.ModelAdmin[Any]
    _CheckpointModelAdmin = admin.ModelAdmin[Checkpoint]
else:
    AnyModelAdmin = _CheckpointModelAdmin = admin.ModelAdmin


class ReadOnlyAdmin(AnyModelAdmin):
    """Operational records are written by the ETL only; the admin inspects them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    # One line a run at 1,400 px: short count headers, the error's first line (all of it, and
    # the drift field by field, on the run's page).
    list_display = [
        "id",
        "source",
        "kind_name",
        "status_badge",
        "trigger_name",
        "started_at",
        "duration_text",
        "read",
        "new",
        "updated",
        "same",
        "rejected",
        "error_line",
        "drift_summary",
    ]
    list_display_links = ["id", "source"]
    list_filter = ["source", "status", "trigger", "kind", "started_at"]
    search_fields = ["=id", "source", "error"]
    date_hierarchy = "started_at"
    fieldsets = [
        (None, {"fields": ["source", "kind", "status_badge", "trigger", "options_table"]}),
        ("Time", {"fields": ["started_at", "finished_at", "duration_text", "heartbeat_at"]}),
        ("Records", {"fields": ["read", "new", "updated", "same", "rejected"]}),
        ("Error", {"fields": ["error_text"]}),
        ("Schema drift", {"fields": ["drift_details"]}),
        ("Checkpoint", {"fields": ["checkpoint_before_table", "checkpoint_after_table"]}),
    ]
    readonly_fields = [
        "source",
        "kind",
        "status_badge",
        "trigger",
        "options_table",
        "started_at",
        "finished_at",
        "duration_text",
        "heartbeat_at",
        "read",
        "new",
        "updated",
        "same",
        "rejected",
        "error_text",
        "drift_details",
        "checkpoint_before_table",
        "checkpoint_after_table",
    ]

    @admin.display(description="status", ordering="status")
    def status_badge(self, run: Run) -> str:
        return badge(f"run-{run.status}", run.get_status_display().lower())

    @admin.display(description="kind", ordering="kind")
    def kind_name(self, run: Run) -> str:
        return run.kind

    @admin.display(description="trigger", ordering="trigger")
    def trigger_name(self, run: Run) -> str:
        return run.trigger

    @admin.display(description="duration")
    def duration_text(self, run: Run) -> str:
        return seconds(run.duration)

    @admin.display(description="read", ordering="records_read")
    def read(self, run: Run) -> str:
        return number(run.records_read)

    @admin.display(description="new", ordering="records_inserted")
    def new(self, run: Run) -> str:
        return number(run.records_inserted)

    @admin.display(description="updated", ordering="records_updated")
    def updated(self, run: Run) -> str:
        return number(run.records_updated)

    @admin.display(description="same", ordering="records_unchanged")
    def same(self, run: Run) -> str:
        return number(run.records_unchanged)

    @admin.display(description="rejected", ordering="records_rejected")
    def rejected(self, run: Run) -> str:
        if not run.records_rejected:
            return "0"
        url = reverse("admin:ingestion_rejection_changelist")
        return format_html(
            '<a href="{}?run__id__exact={}">{}</a>', url, run.pk, number(run.records_rejected)
        )

    @admin.display(description="error")
    def error_line(self, run: Run) -> str:
        return run.error_first_line(100) or "-"

    @admin.display(description="error")
    def error_text(self, run: Run) -> str:
        return format_html('<pre class="error-text">{}</pre>', run.error) if run.error else "-"

    @admin.display(description="invoked with")
    def options_table(self, run: Run) -> str:
        return kv_table(run.options)

    @admin.display(description="checkpoint before")
    def checkpoint_before_table(self, run: Run) -> str:
        return kv_table(run.checkpoint_before)

    @admin.display(description="checkpoint after")
    def checkpoint_after_table(self, run: Run) -> str:
        return kv_table(run.checkpoint_after)

    @admin.display(description="schema drift")
    def drift_summary(self, run: Run) -> str:
        if not run.drift:
            return "-"
        lines = drift_lines(run.drift)
        text = "; ".join(lines[1:]) or lines[0]
        return text if len(text) <= 80 else f"{text[:79]}…"

    @admin.display(description="schema drift, field by field")
    def drift_details(self, run: Run) -> str:
        lines = drift_lines(run.drift)
        return format_html(
            "<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((x,) for x in lines))
        )


@admin.register(Checkpoint)
class CheckpointAdmin(_CheckpointModelAdmin):
    """Deleting a checkpoint makes the next run of that source start from the beginning."""

    list_display = ["source", "position", "run", "updated_at"]
    readonly_fields = ["source", "cursor_table", "run", "updated_at"]
    fields = [*readonly_fields]

    @admin.display(description="cursor")
    def position(self, checkpoint: Checkpoint) -> str:
        cursor = checkpoint.cursor
        if not isinstance(cursor, dict):
            return str(cursor)
        text = ", ".join(f"{key}={value}" for key, value in cursor.items())
        return text if len(text) <= 80 else f"{text[:79]}…"

    @admin.display(description="cursor")
    def cursor_table(self, checkpoint: Checkpoint) -> str:
        return kv_table(checkpoint.cursor)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
