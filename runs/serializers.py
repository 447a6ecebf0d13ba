"""Runs as JSON, and the shapes of the run reports (stats, comparison, health)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.filters import MAX_ID
from runs.models import Run


class RunSerializer(serializers.ModelSerializer[Run]):
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = [
            "id",
            "source",
            "status",
            "trigger",
            "kind",
            "started_at",
            "finished_at",
            "heartbeat_at",
            "duration_seconds",
            "records_read",
            "records_inserted",
            "records_updated",
            "records_unchanged",
            "records_rejected",
            "error",
        ]

    @extend_schema_field(OpenApiTypes.FLOAT)
    def get_duration_seconds(self, run: Run) -> float | None:
        return None if run.duration is None else round(run.duration.total_seconds(), 3)


class RunDetailSerializer(RunSerializer):
    """A run with its drift report, options and the checkpoint before and after it."""

    class Meta(RunSerializer.Meta):
        fields = [
            *RunSerializer.Meta.fields,
            "drift",
            "options",
            "checkpoint_before",
            "checkpoint_after",
        ]


class CompareQuerySerializer(serializers.Serializer[Any]):
    run_a = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Baseline run id.")
    run_b = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="Run to compare.")


class RunRefSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    status = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_blank=True)


class CountChangeSerializer(serializers.Serializer[Any]):
    a = serializers.IntegerField()
    b = serializers.IntegerField()
    change = serializers.IntegerField()
    change_ratio = serializers.FloatField(allow_null=True, help_text="(b - a) / a")


class CountsSerializer(serializers.Serializer[Any]):
    records_read = CountChangeSerializer()
    records_inserted = CountChangeSerializer()
    records_updated = CountChangeSerializer()
    records_unchanged = CountChangeSerializer()
    records_rejected = CountChangeSerializer()


class DurationChangeSerializer(serializers.Serializer[Any]):
    a = serializers.FloatField(allow_null=True)
    b = serializers.FloatField(allow_null=True)
    change = serializers.FloatField(allow_null=True)
    recent_median = serializers.FloatField(
        allow_null=True, help_text="Median of run_b's source's recent finished runs before it."
    )


class StatusChangeSerializer(serializers.Serializer[Any]):
    a = serializers.CharField()
    b = serializers.CharField()
    change = serializers.CharField(help_text="same, improved, degraded or not_comparable")


class ShareChangeSerializer(serializers.Serializer[Any]):
    a = serializers.FloatField(allow_null=True)
    b = serializers.FloatField(allow_null=True)


class DriftChangeSerializer(serializers.Serializer[Any]):
    a = serializers.JSONField()
    b = serializers.JSONField()
    changed = serializers.BooleanField()


class AnomalySerializer(serializers.Serializer[Any]):
    code = serializers.CharField(
        help_text="record_count_change, duration_spike, status_degradation or rejected_share_rise"
    )
    message = serializers.CharField()


class ComparisonSerializer(serializers.Serializer[Any]):
    run_a = RunRefSerializer()
    run_b = RunRefSerializer()
    same_source = serializers.BooleanField()
    counts = CountsSerializer()
    duration_seconds = DurationChangeSerializer()
    status = StatusChangeSerializer()
    rejected_share = ShareChangeSerializer()
    drift = DriftChangeSerializer()
    anomalies = AnomalySerializer(many=True)


class DurationStatsSerializer(serializers.Serializer[Any]):
    window = serializers.IntegerField(help_text="Latest finished runs these figures cover.")
    mean = serializers.FloatField(allow_null=True)
    median = serializers.FloatField(allow_null=True)
    last = serializers.FloatField(allow_null=True)


class RowCountsSerializer(serializers.Serializer[Any]):
    quotes = serializers.IntegerField()
    raw_units = serializers.IntegerField(help_text="Pages and file chunks kept as received.")
    rejections = serializers.IntegerField(help_text="Items rejected, each with its reason.")


class CheckpointSerializer(serializers.Serializer[Any]):
    cursor = serializers.JSONField()
    updated_at = serializers.DateTimeField()
    run = serializers.IntegerField(allow_null=True)


class SourceStatsSerializer(serializers.Serializer[Any]):
    # Declared fields named like attributes of a serializer (Field.source,
    # BaseSerializer.partial): the serializer's metaclass takes them off the class.
    source = serializers.CharField()  # type: ignore[assignment]
    runs_total = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    partial = serializers.IntegerField()  # type: ignore[assignment]
    failed = serializers.IntegerField()
    active = serializers.IntegerField(help_text="Queued or running now.")
    records_processed = serializers.IntegerField()
    records_rejected = serializers.IntegerField()
    last_success = RunRefSerializer(allow_null=True)
    last_failure = RunRefSerializer(allow_null=True)
    duration_seconds = DurationStatsSerializer()
    rows = RowCountsSerializer()
    checkpoint = CheckpointSerializer(allow_null=True)


class StatsSerializer(serializers.Serializer[Any]):
    sources = SourceStatsSerializer(many=True)


class LastRunSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    status = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    age_seconds = serializers.FloatField()


class SourceHealthSerializer(serializers.Serializer[Any]):
    source = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.source
    status = serializers.CharField(
        help_text="ok; degraded when the last success is too old or there is none; never_ran; "
        "not_monitored (not enabled or not configured: not part of the verdict)"
    )
    last_run = LastRunSerializer(allow_null=True)
    last_success_at = serializers.DateTimeField(allow_null=True)
    last_success_age_seconds = serializers.FloatField(allow_null=True)
    max_age_minutes = serializers.FloatField()


class HealthSerializer(serializers.Serializer[Any]):
    status = serializers.CharField(help_text="ok, degraded or unavailable")
    database = serializers.CharField()
    sources = SourceHealthSerializer(many=True, required=False)
