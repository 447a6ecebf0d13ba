from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

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
        lines = _drift_lines(run.drift)
        text = "; ".join(lines[1:]) or lines[0]
        return text if len(text) <= 160 else f"{text[:157]}..."

    @admin.display(description="schema drift, field by field")
    def drift_details(self, run: Run) -> str:
        lines = _drift_lines(run.drift)
        return format_html(
            "<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((x,) for x in lines))
        )


def _drift_lines(drift: dict[str, Any]) -> list[str]:
    """A headline, then one line per change (the report is written by ingestion.drift; it is
    read here as plain JSON, since runs does not import ingestion)."""
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


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    """Deleting a checkpoint makes the next run of that source start from the beginning."""

    list_display = ["source", "run", "updated_at"]
    readonly_fields = ["source", "cursor", "run", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
