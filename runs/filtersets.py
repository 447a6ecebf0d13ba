"""Filters of the run history; a bad value is a 400 naming the parameter."""

from __future__ import annotations

import django_filters

from config.filters import FilterSet, UtcDateTimeFilter
from runs.models import Run


class RunFilterSet(FilterSet):
    source = django_filters.CharFilter(max_length=32, help_text="Source name, e.g. csv.")
    status = django_filters.ChoiceFilter(choices=Run.Status.choices)
    trigger = django_filters.ChoiceFilter(choices=Run.Trigger.choices)
    started_after = UtcDateTimeFilter(
        field_name="started_at", lookup_expr="gte", help_text="Started at or after (ISO 8601)."
    )
    started_before = UtcDateTimeFilter(
        field_name="started_at", lookup_expr="lt", help_text="Started before (ISO 8601)."
    )

    class Meta:
        model = Run
        fields = ["source", "status", "trigger", "started_after", "started_before"]
