"""Filters of the run history; a bad value is a 400 naming the parameter."""

from __future__ import annotations

from common.filters import EnumFilter, FilterSet, SourceFilter, UtcDateTimeFilter
from runs.models import Run


class RunFilterSet(FilterSet):
    source = SourceFilter(help_text="Source name, e.g. csv.")
    status = EnumFilter(choices=Run.Status.choices)
    trigger = EnumFilter(choices=Run.Trigger.choices)
    kind = EnumFilter(choices=Run.Kind.choices)
    started_after = UtcDateTimeFilter(
        field_name="started_at", lookup_expr="gte", help_text="Started at or after (ISO 8601)."
    )
    started_before = UtcDateTimeFilter(
        field_name="started_at", lookup_expr="lt", help_text="Started before (ISO 8601)."
    )

    class Meta:
        model = Run
        fields = ["source", "status", "trigger", "kind", "started_after", "started_before"]
