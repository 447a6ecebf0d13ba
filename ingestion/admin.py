"""The operator's view of what arrived: raw units decoded and downloadable, and rejections."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from ingestion.models import RawUnit, Rejection
from runs.admin import ReadOnlyAdmin
from runs.models import Run

# Lines shown on a unit's page; the download has all of it.
SHOWN_LINES = 2000


def decoded(unit: RawUnit) -> list[tuple[str, str]]:
    """A unit's content as (line number, text) pairs: pretty JSON for a page, the file's lines
    with their own numbers for a chunk."""
    text = unit.data().decode("utf-8", errors="replace")
    if unit.media_type == "application/json":
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    first = (unit.line_start or 1) if unit.kind == RawUnit.Kind.CHUNK else 1
    return [(str(first + n), line) for n, line in enumerate(text.splitlines()[:SHOWN_LINES])]


@admin.register(RawUnit)
class RawUnitAdmin(ReadOnlyAdmin):
    list_display = ["id", "source", "kind", "origin", "items", "size", "run", "fetched_at"]
    list_filter = ["source", "kind", "fetched_at"]
    search_fields = ["=content_hash", "file_name", "url"]
    date_hierarchy = "fetched_at"
    list_select_related = ["run"]
    exclude = ["content"]
    readonly_fields = [
        "source",
        "kind",
        "run",
        "fetched_at",
        "url",
        "file_name",
        "byte_start",
        "byte_end",
        "line_start",
        "line_end",
        "context",
        "media_type",
        "size",
        "items",
        "content_hash",
        "download",
        "content_shown",
    ]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> Any:
        # The list never needs the bytes.
        return super().get_queryset(request).defer("content")

    def get_urls(self) -> list[URLPattern]:
        download = self.admin_site.admin_view(self.download_view)
        return [
            path("<int:pk>/download/", download, name="ingestion_rawunit_download"),
            *super().get_urls(),
        ]

    def download_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        unit = get_object_or_404(RawUnit, pk=pk)
        extension = "csv" if unit.kind == RawUnit.Kind.CHUNK else "json"
        if unit.kind == RawUnit.Kind.RECORDS:
            extension = "jsonl"
        response = HttpResponse(unit.data(), content_type=unit.media_type)
        response["Content-Disposition"] = (
            f'attachment; filename="{unit.source}-unit-{unit.pk}.{extension}"'
        )
        return response

    @admin.display(description="download")
    def download(self, unit: RawUnit) -> str:
        url = reverse("admin:ingestion_rawunit_download", args=[unit.pk])
        return format_html('<a href="{}">the {} bytes as received</a>', url, unit.size)

    @admin.display(description="content")
    def content_shown(self, unit: RawUnit) -> str:
        rows = format_html_join(
            "\n",
            '<span style="color:#888;user-select:none">{:>6}</span>  {}',
            decoded(unit),
        )
        return format_html(
            '<pre style="max-height:40em;overflow:auto;font-size:12px">{}</pre>', rows
        )


class RunFilter(admin.SimpleListFilter):
    """The rejections of one run, as a run's rejected count links to them. Only the chosen run
    is offered (a list of every run would be long); it shows the list is filtered and how to
    clear it."""

    title = "run"
    parameter_name = "run__id__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        run = Run.objects.filter(pk=int(value)).first() if value and value.isdigit() else None
        return [(str(run.pk), str(run))] if run is not None else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(run_id=int(value)) if value.isdigit() else queryset.none()


@admin.register(Rejection)
class RejectionAdmin(ReadOnlyAdmin):
    list_display = ["id", "source", "location", "reason", "run", "raw_unit", "created_at"]
    list_filter = [RunFilter, "source", "created_at"]
    search_fields = ["location", "reason", "text"]
    date_hierarchy = "created_at"
    list_select_related = ["run", "raw_unit"]
    readonly_fields = [field.name for field in Rejection._meta.fields]
    show_full_result_count = False
