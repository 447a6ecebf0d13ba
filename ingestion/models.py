"""Every record as it was received, good or rejected, before normalization."""

from __future__ import annotations

from django.db import models


class RawRecord(models.Model):
    """One provider item or one CSV row, kept exactly as received.

    `content_hash` identifies the content (not where it was found), so the same item seen again,
    in a later run or a re-read file, is recognised and stored once.
    """

    source = models.CharField(max_length=32)
    run = models.ForeignKey("runs.Run", on_delete=models.PROTECT, related_name="raw_records")
    external_id = models.CharField(
        max_length=255, help_text="Provider id, or file name and line for a CSV row."
    )
    payload = models.JSONField()
    content_hash = models.CharField(max_length=64)
    fetched_at = models.DateTimeField()
    rejection_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-fetched_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "content_hash"], name="ingestion_rawrecord_unique_content"
            ),
        ]
        indexes = [
            models.Index(fields=["source", "-fetched_at"], name="ingestion_raw_source_fetched"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"

    @property
    def rejected(self) -> bool:
        return bool(self.rejection_reason)
