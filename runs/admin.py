from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from runs.models import Checkpoint, Run, drift_lines


class ReadOnlyAdmin(admin.ModelAdmin):
    """Operational records are written by the ETL only; the admin inspects them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "source",
        "status",
        "trigger",
        "kind",
        "started_at",
        "duration",
        "records_read",
        "records_inserted",
        "records_updated",
        "records_unchanged",
        "records_rejected",
        "short_error",
        "drift_summary",
    ]
    list_filter = ["source", "status", "trigger", "kind", "started_at"]
    search_fields = ["=id", "source", "error"]
    date_hierarchy = "started_at"
    readonly_fields = [*(field.name for field in Run._meta.fields), "drift_details"]

    @admin.display(description="error")
    def short_error(self, run: Run) -> str:
        return run.error[:120]

    @admin.display(description="schema drift")
    def drift_summary(self, run: Run) -> str:
        if not run.drift:
            return "-"
        lines = drift_lines(run.drift)
        text = "; ".join(lines[1:]) or lines[0]
        return text if len(text) <= 160 else f"{text[:157]}..."

    @admin.display(description="schema drift, field by field")
    def drift_details(self, run: Run) -> str:
        lines = drift_lines(run.drift)
        return format_html(
            "<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((x,) for x in lines))
        )


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    """Deleting a checkpoint makes the next run of that source start from the beginning."""

    list_display = ["source", "run", "updated_at"]
    readonly_fields = ["source", "cursor", "run", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
