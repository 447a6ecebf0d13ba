from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from runs.models import Checkpoint, Run


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
        "started_at",
        "duration",
        "records_read",
        "records_inserted",
        "records_updated",
        "records_unchanged",
        "records_rejected",
        "short_error",
    ]
    list_filter = ["source", "status", "trigger", "started_at"]
    search_fields = ["=id", "source", "error"]
    date_hierarchy = "started_at"
    readonly_fields = [field.name for field in Run._meta.fields]

    @admin.display(description="error")
    def short_error(self, run: Run) -> str:
        return run.error[:120]


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    """Deleting a checkpoint makes the next run of that source start from the beginning."""

    list_display = ["source", "run", "updated_at"]
    readonly_fields = ["source", "cursor", "run", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
