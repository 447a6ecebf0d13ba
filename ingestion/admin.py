from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from ingestion.models import RawRecord
from runs.admin import ReadOnlyAdmin


class RejectedFilter(admin.SimpleListFilter):
    title = "rejected"
    parameter_name = "rejected"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Rejected"), ("no", "Accepted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.exclude(rejection_reason="")
        if self.value() == "no":
            return queryset.filter(rejection_reason="")
        return queryset


@admin.register(RawRecord)
class RawRecordAdmin(ReadOnlyAdmin):
    list_display = ["id", "source", "external_id", "run", "fetched_at", "rejection_reason"]
    list_filter = ["source", RejectedFilter, "fetched_at"]
    search_fields = ["external_id", "=content_hash", "rejection_reason"]
    date_hierarchy = "fetched_at"
    list_select_related = ["run"]
    readonly_fields = [field.name for field in RawRecord._meta.fields]
    show_full_result_count = False
